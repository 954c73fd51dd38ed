r"""Driver ``"tianshou-ppo"``: Tianshou's PPO algorithm, its own collector, buffer, GAE and loss.

What Tianshou does with a batch (read from ``tianshou`` 2.x: ``data/collector.py``,
``algorithm/algorithm_base.py``, ``algorithm/modelfree/a2c.py`` and ``ppo.py``, ``trainer.py``):

- collection: ``Collector.collect(n_step=n_envs * n_steps)`` on a ``DummyVectorEnv``; the
  collector stores ``obs_next`` = the final observation of an ended episode and resets that
  environment itself (rows as under same-step autoreset, no junk rows); the episodes in progress
  go on in the next collect (the on-policy trainer resets only the buffer);
- truncation: ``compute_episodic_return`` ends GAE at ``terminated | truncated`` and at the
  buffer's unfinished episodes, with :math:`V(s')` masked only where ``terminated``
  (``value_mask``), so a time limit and the buffer's end are bootstrapped with ``V(obs_next)``
  (correct);
- per minibatch (``batch_size=64`` of a shuffled split, the trainer's default; one repetition)
  advantages standardized (``advantage_normalization=True``), clipped surrogate, entropy bonus
  ``ent_coef=0.01``:

.. math::

    L = -\frac{1}{|B|}\sum_{j\in B}\min\bigl(\tilde A_j\rho_j, \tilde A_j\,\mathrm{clip}(\rho_j,
        1-\epsilon, 1+\epsilon)\bigr) - c_{\text{ent}}\frac{1}{|B|}\sum_{j\in B} H(\pi(\cdot|s_j))
        + c_v L_V

(Schulman et al. 2017, "Proximal policy optimization algorithms", eq. 7 and 9). The recorded
update is the mean over the first repetition's minibatches of
:math:`-\partial L/\partial\,\text{logits}` at the collecting parameters (a hook on the logits
table; the optimizer never steps and ends the update after the first pass). The actor is a
logits table indexed by the observation (float64); the critic returns the frozen table.
γ is the MDP's unless ``gamma`` is passed.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .._driver import DriverRun
from ._common import check_driver_args, check_library_kwargs, collect_docstring, gradient_record, logits_unchanged

NAME = "tianshou-ppo"
LIBRARY = "tianshou"

#: Tianshou PPO's (and its on-policy trainer's) defaults for the settings a caller may override.
DEFAULTS: dict[str, Any] = {
    "gamma": None, "gae_lambda": 0.95, "eps_clip": 0.2, "advantage_normalization": True,
    "ent_coef": 0.01, "vf_coef": 0.5, "batch_size": 64,
}


class _FirstPassDone(Exception):
    """Raised by the recording optimizer once the first pass's minibatches are recorded."""


def collect(mdp: Any, logits: Any, values: Any = None, *, time_limit: int, n_envs: int, n_steps: int,
            n_batches: int, seed: int, **library_kwargs: Any) -> DriverRun:
    args = check_driver_args(mdp, logits, values, time_limit=time_limit, n_envs=n_envs, n_steps=n_steps,
                             n_batches=n_batches, seed=seed)
    s = check_library_kwargs(NAME, library_kwargs, DEFAULTS)
    if s["gamma"] is None:
        s["gamma"] = args.mdp.gamma
    rows = args.n_envs * args.n_steps
    n_mb = max(1, rows // int(s["batch_size"]))  # Batch.split(..., merge_last=True)
    updates = _run(args, s, n_mb)
    import tianshou

    norm = ("minibatch" if n_mb > 1 else "batch") if s["advantage_normalization"] else False
    config = dict(s, lam=float(s["gae_lambda"]), n_envs=args.n_envs, n_steps=args.n_steps,
                  time_limit=args.time_limit, normalize_advantages=norm, seed=args.seed, n_minibatches=n_mb,
                  autoreset="same_step")
    return DriverRun(updates, LIBRARY, str(tianshou.__version__), config, NAME)


collect.__doc__ = collect_docstring(
    "tianshou-ppo", "Tianshou's PPO",
    sizes=("Episode time limit, environments (``DummyVectorEnv``), steps per environment per "
        "batch (one collect of ``n_envs * n_steps`` steps) and batches (one continuous "
        "stream)."),
    seed=("Seeds torch's global generator (action sampling), numpy's (minibatch shuffles) and "
        "the environments (env i: ``seed + i``)."),
    overrides=("(Tianshou's names)."))


@functools.lru_cache(maxsize=None)
def _classes() -> dict:
    import torch

    class TableActor(torch.nn.Module):
        def __init__(self, table: np.ndarray) -> None:
            super().__init__()
            self.table = torch.nn.Parameter(torch.as_tensor(table, dtype=torch.float64).clone())

        def forward(self, obs: Any, state: Any = None, info: Any = None) -> tuple:
            idx = torch.as_tensor(np.asarray(obs), dtype=torch.long).view(-1)
            return self.table[idx], state

    class TableCritic(torch.nn.Module):
        def __init__(self, table: np.ndarray) -> None:
            super().__init__()
            self.register_buffer("table", torch.as_tensor(table, dtype=torch.float64).clone())

        def forward(self, obs: Any, **kwargs: Any) -> Any:
            idx = torch.as_tensor(np.asarray(obs), dtype=torch.long).view(-1)
            return self.table[idx][:, None]

    class RecordingOptimizer(torch.optim.Optimizer):
        """Never steps; ends the update after ``limit`` minibatches (the first pass)."""

        limit = 1

        def __init__(self, params: Any, lr: float = 0.0) -> None:
            super().__init__(params, {"lr": lr})
            self.steps = 0

        def step(self, closure: Any = None) -> None:
            self.steps += 1
            if self.steps >= self.limit:
                raise _FirstPassDone

    return {"TableActor": TableActor, "TableCritic": TableCritic, "RecordingOptimizer": RecordingOptimizer}


def _run(args: Any, s: dict, n_mb: int) -> np.ndarray:
    import torch
    from tianshou.algorithm import PPO
    from tianshou.algorithm.modelfree.reinforce import DiscreteActorPolicy
    from tianshou.algorithm.optim import TorchOptimizerFactory
    from tianshou.data import Collector, VectorReplayBuffer
    from tianshou.env import DummyVectorEnv
    from tianshou.utils.torch_utils import policy_within_training_step

    from ...gym import make_env

    c = _classes()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    envs = DummyVectorEnv([functools.partial(make_env, args.mdp, max_episode_steps=args.time_limit)] * args.n_envs)
    envs.seed([args.seed + i for i in range(args.n_envs)])
    try:
        actor = c["TableActor"](args.logits)
        critic = c["TableCritic"](args.values)
        env0 = make_env(args.mdp, max_episode_steps=args.time_limit)
        policy = DiscreteActorPolicy(actor=actor, action_space=env0.action_space,
                                     observation_space=env0.observation_space)
        optim_cls = type("Recording", (c["RecordingOptimizer"],), {"limit": n_mb})
        algo = PPO(policy=policy, critic=critic, optim=TorchOptimizerFactory(optim_cls),
                   eps_clip=s["eps_clip"], advantage_normalization=s["advantage_normalization"],
                   ent_coef=s["ent_coef"], vf_coef=s["vf_coef"], gae_lambda=s["gae_lambda"], gamma=s["gamma"])
        buffer = VectorReplayBuffer(args.n_envs * args.n_steps, args.n_envs)
        collector = Collector(algo, envs, buffer)
        collector.reset()
        record = gradient_record(actor.table)
        with policy_within_training_step(policy):  # as the on-policy trainer does
            updates = _loop(args, s, n_mb, collector, buffer, algo, record)
        record.remove()
    finally:
        envs.close()
    logits_unchanged(args.logits, actor.table.detach().numpy(), NAME)
    return np.stack(updates)


def _loop(args: Any, s: dict, n_mb: int, collector: Any, buffer: Any, algo: Any, record: Any) -> list:
    updates = []
    for _ in range(args.n_batches):
        collector.collect(n_step=args.n_envs * args.n_steps)
        if len(buffer) != args.n_envs * args.n_steps:  # pragma: no cover - a changed collector
            raise RuntimeError(f"Tianshou collected {len(buffer)} rows, expected {args.n_envs * args.n_steps}")
        algo.optim._optim.steps = 0
        try:
            algo.update(buffer=buffer, batch_size=int(s["batch_size"]), repeat=1)
        except _FirstPassDone:
            pass
        else:  # pragma: no cover - the update ended before stepping
            raise RuntimeError("Tianshou PPO.update returned before its first pass ended")
        grads = record.take()
        if len(grads) != n_mb:  # pragma: no cover - a changed update loop
            raise RuntimeError(f"Tianshou PPO: {len(grads)} gradients for {n_mb} minibatches")
        updates.append(-np.mean(grads, axis=0))
        collector.reset_buffer(keep_statistics=True)
    return updates


__all__ = ["NAME", "LIBRARY", "DEFAULTS"]
