r"""Driver ``"cleanrl-ppo"``: CleanRL's single-file PPO (``cleanrl/ppo.py``) restated in torch.

CleanRL is not a library but a file people copy; this module restates its buffer, advantage and
loss logic on a gymnasium ``SyncVectorEnv`` (gymnasium ≥ 1.0: next-step autoreset by default),
with the actor a logits table and the critic frozen at ``values``:

- storage ``obs[t]``, ``dones[t]`` (the done flag *before* step t), ``actions``, ``logprobs``,
  ``rewards``, ``values`` of shape (num_steps, num_envs); ``next_done = terminations |
  truncations``, so a time limit is treated as a termination (no bootstrap);
- GAE(λ) backwards over the buffer, ``nextnonterminal = 1 - dones[t + 1]``, bootstrapped at the
  end with ``V(next_obs)`` unless ``next_done``;
- with next-step autoreset the step after an episode's end is an ordinary row: its observation is
  the final one, its (ignored) action is scored, its reward is 0 and GAE runs through it into the
  next episode;
- per minibatch (``num_minibatches = 4`` of a shuffled permutation): advantages standardized
  (``(A - mean) / (std + 1e-8)``, torch's unbiased std), clipped surrogate, entropy bonus
  ``ent_coef = 0.01``:

.. math::

    L = \frac{1}{|B|}\sum_{j\in B}\max\bigl(-\tilde A_j \rho_j, -\tilde A_j\,\mathrm{clip}(\rho_j,
        1-\epsilon, 1+\epsilon)\bigr) - c_{\text{ent}}\frac{1}{|B|}\sum_{j\in B} H(\pi(\cdot|s_j))
        + c_v L_V

(Schulman et al. 2017, "Proximal policy optimization algorithms", eq. 7 and 9; Huang et al.
2022, "The 37 implementation details of proximal policy optimization"). The recorded update is
the mean over the first epoch's minibatches of :math:`-\partial L/\partial\,\text{logits}` at the
collecting parameters (:math:`\rho = 1`); the value loss does not touch the logits.

Randomness: CleanRL seeds Python's, numpy's and torch's global generators; this restatement draws
the actions from a ``torch.Generator`` and the minibatch permutations from a numpy ``Generator``,
both seeded by ``seed``, and resets the environments with ``seed`` (env i gets ``seed + i``), so
it leaves the global generators alone. γ is the MDP's unless ``gamma`` is passed.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .._driver import DriverRun
from ._common import check_driver_args, check_library_kwargs, collect_docstring

NAME = "cleanrl-ppo"
__all__ = ["NAME", "LIBRARY", "DEFAULTS"]  # collect: reached through get_driver (see drivers/__init__)
LIBRARY = "cleanrl (ppo.py, restated)"
#: The CleanRL file restated here (repository vwxyzjn/cleanrl, file cleanrl/ppo.py).
SOURCE_COMMIT = "fe8d8a03c41a7ef5b523e2e354bd01c363e786bb"

#: CleanRL ppo.py's ``Args`` defaults for the settings a caller may override (γ: the MDP's).
DEFAULTS: dict[str, Any] = {
    "gamma": None, "gae_lambda": 0.95, "num_minibatches": 4, "update_epochs": 4, "norm_adv": True,
    "clip_coef": 0.2, "ent_coef": 0.01, "vf_coef": 0.5, "autoreset_mode": "next_step",
}


def collect(mdp: Any, logits: Any, values: Any = None, *, time_limit: int, n_envs: int, n_steps: int,
            n_batches: int, seed: int, **library_kwargs: Any) -> DriverRun:
    args = check_driver_args(mdp, logits, values, time_limit=time_limit, n_envs=n_envs, n_steps=n_steps,
                             n_batches=n_batches, seed=seed)
    s = check_library_kwargs(NAME, library_kwargs, DEFAULTS)
    if s["gamma"] is None:
        s["gamma"] = args.mdp.gamma
    if s["autoreset_mode"] not in ("next_step", "same_step"):
        raise ValueError(f"autoreset_mode must be 'next_step' or 'same_step', got {s['autoreset_mode']!r}")
    batch_size = args.n_envs * args.n_steps
    if not (isinstance(s["num_minibatches"], int) and 1 <= s["num_minibatches"] <= batch_size):
        raise ValueError(f"num_minibatches must be an int in 1..{batch_size} (num_envs * num_steps), "
                         f"got {s['num_minibatches']!r}")
    updates = _run(args, s)
    norm = (("minibatch" if s["num_minibatches"] > 1 else "batch") if s["norm_adv"] else False)
    config = dict(s, n_envs=args.n_envs, n_steps=args.n_steps, time_limit=args.time_limit,
                  lam=float(s["gae_lambda"]), normalize_advantages=norm, seed=args.seed,
                  minibatch_size=batch_size // s["num_minibatches"], source_commit=SOURCE_COMMIT,
                  autoreset=s["autoreset_mode"])
    import gymnasium

    return DriverRun(updates, LIBRARY, f"ppo.py@{SOURCE_COMMIT[:12]}, gymnasium {gymnasium.__version__}",
                     config, NAME)


collect.__doc__ = collect_docstring(
    "cleanrl-ppo", "CleanRL's PPO loop",
    sizes=("Episode time limit, CleanRL's ``num_envs`` and ``num_steps``, and batches "
        "(iterations of one continuous stream)."),
    seed=("CleanRL's ``seed``."),
    overrides=('(CleanRL\'s ``Args`` names; ``autoreset_mode`` ``"next_step"`` or ``"same_step"`` '
        "picks the ``SyncVectorEnv``'s mode)."))


def _run(args: Any, s: dict) -> np.ndarray:
    import gymnasium as gym
    import torch

    from ...gym import make_env

    mode = {"next_step": gym.vector.AutoresetMode.NEXT_STEP,
            "same_step": gym.vector.AutoresetMode.SAME_STEP}[s["autoreset_mode"]]
    envs = gym.vector.SyncVectorEnv(
        [functools.partial(make_env, args.mdp, max_episode_steps=args.time_limit)] * args.n_envs,
        autoreset_mode=mode,
    )
    T, N = args.n_steps, args.n_envs
    batch_size = T * N
    minibatch_size = batch_size // s["num_minibatches"]
    gamma, lam = float(s["gamma"]), float(s["gae_lambda"])
    table = torch.tensor(args.logits, dtype=torch.float64, requires_grad=True)
    V = torch.as_tensor(args.values, dtype=torch.float64)
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    obs = torch.zeros((T, N), dtype=torch.long)
    actions = torch.zeros((T, N), dtype=torch.long)
    logprobs = torch.zeros((T, N), dtype=torch.float64)
    rewards = torch.zeros((T, N), dtype=torch.float64)
    dones = torch.zeros((T, N), dtype=torch.float64)
    values = torch.zeros((T, N), dtype=torch.float64)
    updates = np.empty((args.n_batches, args.n_states, args.n_actions))
    try:
        o, _ = envs.reset(seed=args.seed)
        next_obs = torch.as_tensor(o, dtype=torch.long)
        next_done = torch.zeros(N, dtype=torch.float64)
        for b in range(args.n_batches):
            for step in range(T):
                obs[step] = next_obs
                dones[step] = next_done
                with torch.no_grad():
                    probs = torch.softmax(table[next_obs], dim=-1)
                    action = torch.multinomial(probs, 1, generator=gen)[:, 0]
                    logprobs[step] = torch.log(probs.gather(1, action[:, None])[:, 0])
                    values[step] = V[next_obs]
                actions[step] = action
                o, reward, terminations, truncations, _ = envs.step(action.numpy())
                rewards[step] = torch.as_tensor(reward, dtype=torch.float64)
                next_obs = torch.as_tensor(o, dtype=torch.long)
                next_done = torch.as_tensor(np.logical_or(terminations, truncations), dtype=torch.float64)
            with torch.no_grad():
                next_value = V[next_obs]
                advantages = torch.zeros_like(rewards)
                lastgaelam = torch.zeros(N, dtype=torch.float64)
                for t in reversed(range(T)):
                    if t == T - 1:
                        nextnonterminal, nextvalues = 1.0 - next_done, next_value
                    else:
                        nextnonterminal, nextvalues = 1.0 - dones[t + 1], values[t + 1]
                    delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
                    advantages[t] = lastgaelam = delta + gamma * lam * nextnonterminal * lastgaelam
            b_obs, b_actions = obs.reshape(-1), actions.reshape(-1)
            b_logprobs, b_advantages = logprobs.reshape(-1), advantages.reshape(-1)
            b_inds = np.arange(batch_size)
            rng.shuffle(b_inds)  # the first epoch (later epochs would start from moved parameters)
            grads = []
            for start in range(0, batch_size, minibatch_size):
                mb = torch.as_tensor(b_inds[start:start + minibatch_size])
                logp_all = torch.log_softmax(table[b_obs[mb]], dim=-1)
                newlogprob = logp_all.gather(1, b_actions[mb][:, None])[:, 0]
                entropy = -(logp_all.exp() * logp_all).sum(-1)
                ratio = (newlogprob - b_logprobs[mb]).exp()
                mb_adv = b_advantages[mb]
                if s["norm_adv"]:
                    mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss1 = -mb_adv * ratio
                pg_loss2 = -mb_adv * torch.clamp(ratio, 1 - s["clip_coef"], 1 + s["clip_coef"])
                pg_loss = torch.max(pg_loss1, pg_loss2).mean()
                loss = pg_loss - s["ent_coef"] * entropy.mean()
                (grad,) = torch.autograd.grad(loss, table)
                grads.append(-grad.numpy())
            updates[b] = np.mean(grads, axis=0)
    finally:
        envs.close()
    return updates
