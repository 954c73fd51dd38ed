r"""Driver ``"rlax"``: rlax's own GAE and clipped surrogate on a gymnasium vector-env stream.

rlax offers functions, not a training loop, so this driver is the loop a user writes around
them, on a gymnasium ``SyncVectorEnv`` with same-step autoreset (the reset observation returned
by the ending step; every row a real transition):

- per environment column of the batch, ``rlax.truncated_generalized_advantage_estimation(r_t,
  discount_t, lambda_, values)`` with ``discount_t = gamma * (1 - done_t)``, ``done = terminated
  | truncated`` (rlax has one discount per step, so a time limit is a termination unless the
  user splits the sequence; rlax leaves that to the user), and ``values`` the frozen critic at
  the batch's observations followed by ``V(next_obs)`` of the last step (the buffer's end is
  bootstrapped);
- the loss ``rlax.clipped_surrogate_pg_loss(ratio, advantages, epsilon)``, a mean over all rows,
  plus ``ent_coef`` times ``rlax.entropy_loss`` (0 by default); no advantage normalization:

.. math::

    L = -\frac{1}{n_{\text{envs}} n_{\text{steps}}}\sum_j \min\bigl(\rho_j \hat A_j,
        \mathrm{clip}(\rho_j, 1-\epsilon, 1+\epsilon)\hat A_j\bigr),
    \quad \hat A_t = \sum_{k \ge 0} \prod_{i=1}^{k} (\gamma_{t+i}\lambda)\, \delta_{t+k}

(Schulman et al. 2017, "Proximal policy optimization algorithms", eq. 7 and 11; rlax's
``policy_gradients.py`` and ``multistep.py``). The recorded update is
:math:`-\partial L/\partial\,\text{logits}` (``jax.grad``, float64) at the collecting parameters.
γ is the MDP's unless ``gamma`` is passed.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

from .._driver import DriverRun
from ._common import check_driver_args, check_library_kwargs, collect_docstring

NAME = "rlax"
__all__ = ["NAME", "LIBRARY", "DEFAULTS"]  # collect: reached through get_driver (see drivers/__init__)
LIBRARY = "rlax"

#: The loop's settings a caller may override (γ: the MDP's).
DEFAULTS: dict[str, Any] = {
    "gamma": None, "lambda_": 0.95, "epsilon": 0.2, "ent_coef": 0.0, "truncation_discount": 0.0,
}


def collect(mdp: Any, logits: Any, values: Any = None, *, time_limit: int, n_envs: int, n_steps: int,
            n_batches: int, seed: int, **library_kwargs: Any) -> DriverRun:
    args = check_driver_args(mdp, logits, values, time_limit=time_limit, n_envs=n_envs, n_steps=n_steps,
                             n_batches=n_batches, seed=seed)
    s = check_library_kwargs(NAME, library_kwargs, DEFAULTS)
    if s["gamma"] is None:
        s["gamma"] = args.mdp.gamma
    updates = _run(args, s)
    import rlax

    config = dict(s, n_envs=args.n_envs, n_steps=args.n_steps, time_limit=args.time_limit,
                  lam=float(s["lambda_"]), normalize_advantages=False, seed=args.seed,
                  autoreset="same_step")
    return DriverRun(updates, LIBRARY, str(rlax.__version__), config, NAME)


collect.__doc__ = collect_docstring(
    "rlax", "the rlax loop",
    sizes=("Episode time limit, environments, steps per environment per batch and batches (one "
        "continuous stream)."),
    seed=("Seeds the action draws (a numpy ``Generator``) and the environments (env i: ``seed +"
        " i``)."),
    overrides=("(``lambda_`` and ``epsilon``, rlax's names; ``ent_coef``; ``truncation_discount``, "
        "the factor of γ in ``discount_t`` at a truncation: 0 treats it as a termination, 1 "
        "lets GAE run on into the next episode)."))


@functools.lru_cache(maxsize=None)
def _update_fn(with_entropy: bool) -> Any:
    import jax
    import jax.numpy as jnp
    import rlax

    def loss(table: Any, obs: Any, actions: Any, rewards: Any, discounts: Any, values: Any,
             old_logp: Any, lam: Any, epsilon: Any, ent_coef: Any) -> Any:
        # columns are environments: GAE runs along time (axis 0) of each column
        adv = jax.vmap(rlax.truncated_generalized_advantage_estimation, in_axes=(1, 1, None, 1), out_axes=1)(
            rewards, discounts, lam, values)
        logp_all = jax.nn.log_softmax(table[obs.reshape(-1)], axis=-1)
        logp = jnp.take_along_axis(logp_all, actions.reshape(-1, 1), axis=1)[:, 0]
        ratio = jnp.exp(logp - old_logp.reshape(-1))
        pg = rlax.clipped_surrogate_pg_loss(ratio, adv.reshape(-1), epsilon)
        if not with_entropy:
            return pg
        return pg + ent_coef * rlax.entropy_loss(table[obs.reshape(-1)], jnp.ones(ratio.shape))

    return jax.jit(jax.grad(loss))


def _run(args: Any, s: dict) -> np.ndarray:
    import gymnasium as gym
    import jax

    from ...gym import make_env

    envs = gym.vector.SyncVectorEnv(
        [functools.partial(make_env, args.mdp, max_episode_steps=args.time_limit)] * args.n_envs,
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    T, N = args.n_steps, args.n_envs
    gamma = float(s["gamma"])
    pi = np.exp(args.logits - args.logits.max(axis=1, keepdims=True))
    pi /= pi.sum(axis=1, keepdims=True)
    cdf = np.cumsum(pi, axis=1)
    rng = np.random.default_rng(args.seed)
    obs = np.zeros((T, N), dtype=np.int64)
    actions = np.zeros((T, N), dtype=np.int64)
    rewards = np.zeros((T, N))
    discounts = np.zeros((T, N))
    updates = np.empty((args.n_batches, args.n_states, args.n_actions))
    grad = _update_fn(float(s["ent_coef"]) != 0.0)
    try:
        next_obs, _ = envs.reset(seed=args.seed)
        for b in range(args.n_batches):
            for t in range(T):
                obs[t] = next_obs
                u = rng.random(N)
                actions[t] = np.minimum((u[:, None] > cdf[next_obs]).sum(axis=1), args.n_actions - 1)
                next_obs, rewards[t], term, trunc, _ = envs.step(actions[t])
                discounts[t] = gamma * np.where(term, 0.0, np.where(trunc, float(s["truncation_discount"]), 1.0))
            vals = np.concatenate([args.values[obs], args.values[next_obs][None]], axis=0)
            old_logp = np.log(pi[obs, actions])
            with jax.enable_x64(True), warnings.catch_warnings():
                # rlax.entropy_loss announces its own move to distrax (PendingDeprecationWarning)
                warnings.simplefilter("ignore", PendingDeprecationWarning)
                g = grad(args.logits, obs, actions, rewards, discounts, vals, old_logp,
                         float(s["lambda_"]), float(s["epsilon"]), float(s["ent_coef"]))
                updates[b] = -np.asarray(g, dtype=np.float64)
    finally:
        envs.close()
    return updates
