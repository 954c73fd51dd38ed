"""Stable-Baselines3's PPO and A2C driven with a logits-table actor and a frozen critic.

What SB3 does with a batch (read from ``stable_baselines3`` 2.x, ``common/on_policy_algorithm.py``,
``common/buffers.py``, ``ppo/ppo.py``, ``a2c/a2c.py``):

- collection: ``DummyVecEnv`` resets an ended environment inside the ending step (same-step
  autoreset) and keeps the final observation in ``info["terminal_observation"]``, with
  ``info["TimeLimit.truncated"] = truncated and not terminated``;
- truncation: ``collect_rollouts`` adds ``gamma * V(terminal_observation)`` to the reward of a
  truncated step, and ``RolloutBuffer.compute_returns_and_advantage`` cuts GAE at every done, so a
  time limit is bootstrapped with the value of the final state (correct);
- buffer end: GAE starts from ``V(new_obs)`` unless the last step ended an episode;
- loss: a mean over the minibatch rows; PPO normalizes the advantages per minibatch (``batch_size``
  64) and runs ``n_epochs`` passes; A2C takes one gradient of the whole buffer, no normalization.

The actor is ``action_net``, a bias-free linear map of the one-hot observation (a logits table,
float64, no orthogonal initialization, no hidden layers); the critic ``value_net`` is the table
``values`` with ``requires_grad`` off. The optimizer records and never steps: a hook on the
logits table keeps each minibatch's loss gradient as autograd computes it (before SB3's gradient
clipping), and the optimizer ends ``train`` after the first epoch's minibatches.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from ._common import DriverArgs, gradient_record, logits_unchanged

LIBRARY = "stable-baselines3"


class _FirstEpochDone(Exception):
    """Raised by the recording optimizer once the first epoch's minibatches are recorded."""


@functools.lru_cache(maxsize=None)
def _classes() -> dict:
    import torch as th
    from stable_baselines3.common.policies import ActorCriticPolicy
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class OneHotFeatures(BaseFeaturesExtractor):
        """SB3 one-hot encodes Discrete observations; flatten them (the buffer adds an axis) as float64."""

        def __init__(self, observation_space: Any) -> None:
            super().__init__(observation_space, features_dim=int(observation_space.n))

        def forward(self, observations: Any) -> Any:
            return observations.reshape(observations.shape[0], -1).double()

    class RecordingOptimizer(th.optim.Optimizer):
        """Never steps; ends the update after ``limit`` minibatches (the first epoch)."""

        def __init__(self, params: Any, lr: float = 0.0) -> None:
            super().__init__(params, {"lr": lr})
            self.steps = 0
            self.limit = 1

        def step(self, closure: Any = None) -> None:
            self.steps += 1
            if self.steps >= self.limit:
                raise _FirstEpochDone

    class TablePolicy(ActorCriticPolicy):
        """Actor: logits table on one-hot observations; critic: a frozen value table."""

        def __init__(self, observation_space: Any, action_space: Any, lr_schedule: Any, *,
                     table_logits: np.ndarray, table_values: np.ndarray, **kwargs: Any) -> None:
            self._table_logits = table_logits
            self._table_values = table_values
            kwargs.update(net_arch=[], ortho_init=False, features_extractor_class=OneHotFeatures,
                          share_features_extractor=True, optimizer_class=RecordingOptimizer,
                          optimizer_kwargs={})
            super().__init__(observation_space, action_space, lr_schedule, **kwargs)

        def _build(self, lr_schedule: Any) -> None:
            super()._build(lr_schedule)
            S, A = self._table_logits.shape
            self.action_net = th.nn.Linear(S, A, bias=False, dtype=th.float64)
            self.value_net = th.nn.Linear(S, 1, bias=False, dtype=th.float64)
            with th.no_grad():
                self.action_net.weight.copy_(th.as_tensor(self._table_logits.T))
                self.value_net.weight.copy_(th.as_tensor(self._table_values[None, :]))
            self.value_net.weight.requires_grad_(False)
            self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1))

    return {"TablePolicy": TablePolicy}


def version() -> str:
    import stable_baselines3

    return str(stable_baselines3.__version__)


def run(algorithm: str, args: DriverArgs, settings: dict, n_minibatches: Any) -> tuple[np.ndarray, dict]:
    """Run SB3's ``algorithm`` ("PPO" or "A2C") with ``settings``; the recorded updates.

    ``n_minibatches(model)`` is the number of minibatches of the first epoch.
    """
    import stable_baselines3
    from stable_baselines3.common.vec_env import DummyVecEnv

    from ...gym import make_env

    base = getattr(stable_baselines3, algorithm)
    updates: list[np.ndarray] = []

    class Recorded(base):  # type: ignore[misc, valid-type]
        def train(self) -> None:
            opt = self.policy.optimizer
            opt.steps, opt.limit = 0, n_minibatches(self)
            try:
                super().train()
            except _FirstEpochDone:
                pass
            else:  # pragma: no cover - SB3 stopped before stepping (e.g. target_kl at ratio 1)
                raise RuntimeError(f"SB3 {algorithm}.train returned before its first epoch ended")
            grads = record.take()
            if len(grads) != opt.limit:  # pragma: no cover - a changed SB3 loop
                raise RuntimeError(f"SB3 {algorithm}: {len(grads)} gradients for {opt.limit} minibatches")
            updates.append(-np.mean(grads, axis=0).T)

    env = DummyVecEnv([functools.partial(make_env, args.mdp, max_episode_steps=args.time_limit)] * args.n_envs)
    model = Recorded(
        _classes()["TablePolicy"], env, n_steps=args.n_steps, seed=args.seed, device="cpu", verbose=0,
        policy_kwargs={"table_logits": args.logits, "table_values": args.values}, **settings,
    )
    weight = model.policy.action_net.weight
    record = gradient_record(weight)
    try:
        model.learn(total_timesteps=args.n_batches * args.n_steps * args.n_envs)
    finally:
        record.remove()
        env.close()
    logits_unchanged(args.logits, weight.detach().numpy().T, f"sb3-{algorithm.lower()}")
    if len(updates) != args.n_batches:  # pragma: no cover - a changed SB3 learn loop
        raise RuntimeError(f"SB3 {algorithm}.learn ran {len(updates)} updates for {args.n_batches} batches")
    return np.stack(updates), {"n_minibatches": int(n_minibatches(model))}


def ppo_minibatches(model: Any) -> int:
    return math.ceil(model.n_steps * model.n_envs / model.batch_size)


__all__ = ["LIBRARY", "run", "version", "ppo_minibatches"]
