r"""Driver ``"skrl-ppo"``: skrl's PPO agent, its own trainer, memory, GAE and loss.

What skrl does with a batch (read from ``skrl`` 2.x: ``agents/torch/ppo/ppo.py``,
``trainers/torch/base.py``, ``envs/wrappers/torch/gymnasium_envs.py``):

- collection: ``SequentialTrainer`` steps the wrapped gymnasium vector environment and, with more
  than one environment, never resets it itself: the vector environment's autoreset applies
  (gymnasium ≥ 1.0: next-step, so the step after an episode's end is recorded as an ordinary
  transition, from the final observation, reward 0, neither terminated nor truncated);
- truncation (``time_limit_bootstrap=False``, the default): ``compute_gae`` cuts GAE only at
  ``terminated``; at a truncated row it continues with the next row's value and advantage, i.e.
  into the next-step reset row and the next episode; with ``time_limit_bootstrap=True`` it adds
  ``gamma * V(next_obs)`` to the truncated row's reward and cuts there;
- buffer end: bootstrapped with ``V(next_obs)`` of the last step (cut only if terminated);
- advantages standardized over the whole memory (``(A - mean) / (std + 1e-8)``);
- per minibatch (``mini_batches=2`` of a random permutation) the clipped surrogate, an entropy
  term (``entropy_loss_scale=0``) and the value loss (scale 2.5):

.. math::

    L = -\frac{1}{|B|}\sum_{j\in B}\min\bigl(\tilde A_j\rho_j, \tilde A_j\,\mathrm{clip}(\rho_j,
        1-\epsilon, 1+\epsilon)\bigr) - c_{\text{ent}}\frac{1}{|B|}\sum_{j\in B} H(\pi(\cdot|s_j))
        + c_v L_V

(Schulman et al. 2017, "Proximal policy optimization algorithms", eq. 7 and 9). The recorded
update is the mean over the first epoch's minibatches of :math:`-\partial L/\partial\,\text{logits}`
at the collecting parameters (a hook on the logits table, before skrl's gradient clipping; the
optimizer never steps and ends the update after the first epoch). The policy is a
``CategoricalMixin`` model whose output is the logits table row of the observation (float64);
the value model returns the frozen table. γ (``discount_factor``) is the MDP's unless passed;
``rollouts`` is ``n_steps``.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np

from .._driver import DriverRun
from ._common import check_driver_args, check_library_kwargs, collect_docstring, gradient_record, logits_unchanged

NAME = "skrl-ppo"
__all__ = ["NAME", "LIBRARY", "DEFAULTS"]  # collect: reached through get_driver (see drivers/__init__)
LIBRARY = "skrl"

#: skrl's ``PPO_CFG`` defaults for the settings a caller may override (γ: the MDP's).
DEFAULTS: dict[str, Any] = {
    "discount_factor": None, "gae_lambda": 0.95, "learning_epochs": 8, "mini_batches": 2,
    "ratio_clip": 0.2, "entropy_loss_scale": 0.0, "time_limit_bootstrap": False, "grad_norm_clip": 0.5,
    "autoreset_mode": "next_step",
}


class _FirstEpochDone(Exception):
    """Raised by the recording optimizer once the first epoch's minibatches are recorded."""


def collect(mdp: Any, logits: Any, values: Any = None, *, time_limit: int, n_envs: int, n_steps: int,
            n_batches: int, seed: int, **library_kwargs: Any) -> DriverRun:
    args = check_driver_args(mdp, logits, values, time_limit=time_limit, n_envs=n_envs, n_steps=n_steps,
                             n_batches=n_batches, seed=seed)
    s = check_library_kwargs(NAME, library_kwargs, DEFAULTS)
    if s["discount_factor"] is None:
        s["discount_factor"] = args.mdp.gamma
    if s["autoreset_mode"] not in ("next_step", "same_step"):
        raise ValueError(f"autoreset_mode must be 'next_step' or 'same_step', got {s['autoreset_mode']!r}")
    updates = _run(args, s)
    import skrl

    config = dict(s, gamma=float(s["discount_factor"]), lam=float(s["gae_lambda"]), n_envs=args.n_envs,
                  n_steps=args.n_steps, time_limit=args.time_limit, normalize_advantages="batch",
                  ent_coef=float(s["entropy_loss_scale"]), seed=args.seed, autoreset=s["autoreset_mode"])
    return DriverRun(updates, LIBRARY, str(skrl.__version__), config, NAME)


collect.__doc__ = collect_docstring(
    "skrl-ppo", "skrl's PPO",
    sizes=("Episode time limit, environments (a gymnasium ``SyncVectorEnv`` wrapped by skrl), "
        "skrl's ``rollouts`` and batches (one continuous stream)."),
    seed=("``skrl.utils.set_seed(seed)`` (global generators; the environments are reset with "
        "it)."),
    overrides=('(``PPO_CFG`` names; ``autoreset_mode`` ``"next_step"`` or ``"same_step"`` picks the '
        "vector environment's mode)."))


@functools.lru_cache(maxsize=None)
def _classes() -> dict:
    import torch
    from skrl.agents.torch.ppo import PPO
    from skrl.models.torch import CategoricalMixin, DeterministicMixin, Model

    class TablePolicy(CategoricalMixin, Model):
        def __init__(self, observation_space: Any, action_space: Any, table: np.ndarray) -> None:
            Model.__init__(self, observation_space=observation_space, action_space=action_space, device="cpu")
            CategoricalMixin.__init__(self, unnormalized_log_prob=True)
            self.table = torch.nn.Parameter(torch.as_tensor(table, dtype=torch.float64).clone())

        def compute(self, inputs: dict, role: str = "") -> tuple:
            return self.table[inputs["observations"].long().view(-1)], {}

    class TableValue(DeterministicMixin, Model):
        def __init__(self, observation_space: Any, action_space: Any, table: np.ndarray) -> None:
            Model.__init__(self, observation_space=observation_space, action_space=action_space, device="cpu")
            DeterministicMixin.__init__(self, clip_actions=False)
            self.register_buffer("table", torch.as_tensor(table, dtype=torch.float64).clone())

        def compute(self, inputs: dict, role: str = "") -> tuple:
            return self.table[inputs["observations"].long().view(-1)][:, None], {}

    class RecordingOptimizer(torch.optim.Optimizer):
        """Never steps; ends the update after ``limit`` minibatches (the first epoch)."""

        def __init__(self, params: Any, limit: int) -> None:
            super().__init__(params, {"lr": 0.0})
            self.steps, self.limit = 0, limit

        def step(self, closure: Any = None) -> None:
            self.steps += 1
            if self.steps >= self.limit:
                raise _FirstEpochDone

    class RecordedPPO(PPO):
        def update(self, *, timestep: int, timesteps: int) -> None:
            self.optimizer.steps = 0
            try:
                super().update(timestep=timestep, timesteps=timesteps)
            except _FirstEpochDone:
                pass
            else:  # pragma: no cover - skrl stopped before stepping
                raise RuntimeError("skrl PPO.update returned before its first epoch ended")
            grads = self.record.take()
            if len(grads) != self.optimizer.limit:  # pragma: no cover - a changed skrl loop
                raise RuntimeError(f"skrl PPO: {len(grads)} gradients for {self.optimizer.limit} minibatches")
            self.updates.append(-np.mean(grads, axis=0))

    return {"TablePolicy": TablePolicy, "TableValue": TableValue, "RecordingOptimizer": RecordingOptimizer,
            "RecordedPPO": RecordedPPO}


def _run(args: Any, s: dict) -> np.ndarray:
    from skrl.utils import set_seed

    c = _classes()
    log = logging.getLogger("skrl")
    level = log.level
    log.setLevel(logging.WARNING)  # skrl logs its seed and environment details at INFO on stdout
    try:
        set_seed(args.seed)
        return _train(args, s, c)
    finally:
        log.setLevel(level)


def _train(args: Any, s: dict, c: dict) -> np.ndarray:
    import gymnasium as gym
    from skrl.agents.torch.ppo import PPO_CFG
    from skrl.envs.wrappers.torch import wrap_env
    from skrl.memories.torch import RandomMemory
    from skrl.trainers.torch import SequentialTrainer

    from ...gym import make_env

    mode = {"next_step": gym.vector.AutoresetMode.NEXT_STEP,
            "same_step": gym.vector.AutoresetMode.SAME_STEP}[s["autoreset_mode"]]
    venv = gym.vector.SyncVectorEnv(
        [functools.partial(make_env, args.mdp, max_episode_steps=args.time_limit)] * args.n_envs,
        autoreset_mode=mode,
    )
    env = wrap_env(venv, wrapper="gymnasium", verbose=False)
    try:
        policy = c["TablePolicy"](env.observation_space, env.action_space, args.logits)
        value = c["TableValue"](env.observation_space, env.action_space, args.values)
        memory = RandomMemory(memory_size=args.n_steps, num_envs=args.n_envs, device="cpu")
        cfg_kw = {k: v for k, v in s.items() if k != "autoreset_mode"}
        cfg = PPO_CFG(rollouts=args.n_steps, **cfg_kw)
        # no TensorBoard files or checkpoints (skrl writes them under ./runs by default)
        cfg.experiment.write_interval = 0
        cfg.experiment.checkpoint_interval = 0
        agent = c["RecordedPPO"](models={"policy": policy, "value": value}, memory=memory,
                                 observation_space=env.observation_space, action_space=env.action_space,
                                 device="cpu", cfg=cfg)
        agent.optimizer = c["RecordingOptimizer"](policy.parameters(), limit=int(s["mini_batches"]))
        agent.record = gradient_record(policy.table)
        agent.updates = []
        trainer = SequentialTrainer(env=env, agents=agent,
                                    cfg={"timesteps": args.n_batches * args.n_steps, "headless": True,
                                         "disable_progressbar": True, "close_environment_at_exit": False})
        trainer.train()
        agent.record.remove()
    finally:
        env.close()
    logits_unchanged(args.logits, policy.table.detach().numpy(), NAME)
    if len(agent.updates) != args.n_batches:  # pragma: no cover - a changed skrl trainer
        raise RuntimeError(f"skrl ran {len(agent.updates)} updates for {args.n_batches} batches")
    return np.stack(agent.updates)
