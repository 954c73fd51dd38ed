r"""Driver ``"torchrl-ppo"``: TorchRL's collector, GymWrapper, GAE value estimator and ClipPPOLoss.

What TorchRL does with a batch (read from ``torchrl`` 0.14: ``collectors/_single.py``,
``envs/batched_envs.py``, ``envs/libs/gym.py``, ``objectives/value/advantages.py`` and
``functional.py``, ``objectives/ppo.py``):

- environments: ``SerialEnv(n_envs, GymWrapper(make_env(...)))``; ``GymWrapper`` maps
  gymnasium's ``terminated``/``truncated`` to the entries of the same names and
  ``done = terminated | truncated``, and a ``Discrete`` observation to a one-hot vector;
- collection: ``Collector(env, actor, frames_per_batch=n_envs * n_steps)`` steps with
  ``env.step_and_maybe_reset``: the row of an episode's last step keeps the final observation in
  ``("next", "observation")`` and the collector resets that environment at once (rows as under
  same-step autoreset, no row after an episode's end; the single gymnasium environments are not
  vectorized by gymnasium, so its autoreset never applies); episodes in progress go on in the
  next batch (``reset_at_each_iter=False``); the buffer's last row is not marked
  (``set_truncated=False``);
- advantages: ``GAE`` (the loss's default value estimator, ``lmbda=0.95``,
  ``average_gae=False``) computes
  :math:`\delta_j = r_j + \gamma (1 - \text{terminated}_j) V(s'_j) - V(s_j)` with :math:`s'_j`
  the ``("next", "observation")`` and cuts the recursion at ``done``
  (:math:`\hat A_j = \delta_j + \gamma\lambda(1 - \text{done}_j)\hat A_{j+1}`), so a time
  limit is bootstrapped with :math:`V(s_T)` and the buffer's last row with :math:`V(s')`;
- loss: ``ClipPPOLoss`` at its defaults (``clip_epsilon=0.2``, ``entropy_coeff=0.01``,
  ``critic_coeff=1.0``, ``normalize_advantage=False``, mean reduction), the entropy exact
  (``OneHotCategorical.entropy``):

.. math::

    L = -\frac{1}{|B|}\sum_{j\in B}\min\bigl(\hat A_j\rho_j, \hat A_j\,\mathrm{clip}(\rho_j,
        1-\epsilon, 1+\epsilon)\bigr) - c_{\text{ent}}\frac{1}{|B|}\sum_{j\in B} H(\pi(\cdot|s_j))
        + c_v L_V

(Schulman et al. 2017, "Proximal policy optimization algorithms", eq. 7 and 9). TorchRL has no
default minibatch size (its PPO tutorial samples minibatches from a replay buffer); the loss is
evaluated on the whole batch, which at the collecting parameters (ratio 1) and without advantage
normalization is the mean of the gradients of any split into equal minibatches. The recorded
update is :math:`-\partial L/\partial\,\text{logits}` of the whole batch (a hook on the logits
table; nothing steps). The actor is a ``ProbabilisticActor`` over a logits table read through the
one-hot observation (float64), the critic a ``ValueOperator`` returning the frozen table. γ is
the MDP's unless ``gamma`` is passed.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

from .._driver import DriverRun
from ._common import check_driver_args, check_library_kwargs, collect_docstring, gradient_record, logits_unchanged

NAME = "torchrl-ppo"
__all__ = ["NAME", "LIBRARY", "DEFAULTS"]  # collect: reached through get_driver (see drivers/__init__)
LIBRARY = "torchrl"

#: ClipPPOLoss's and its default GAE estimator's defaults for the settings a caller may override
#: (γ: the MDP's).
DEFAULTS: dict[str, Any] = {
    "gamma": None, "lmbda": 0.95, "average_gae": False, "clip_epsilon": 0.2, "entropy_coeff": 0.01,
    "critic_coeff": 1.0, "normalize_advantage": False, "loss_critic_type": "smooth_l1",
}


def collect(mdp: Any, logits: Any, values: Any = None, *, time_limit: int, n_envs: int, n_steps: int,
            n_batches: int, seed: int, **library_kwargs: Any) -> DriverRun:
    args = check_driver_args(mdp, logits, values, time_limit=time_limit, n_envs=n_envs, n_steps=n_steps,
                             n_batches=n_batches, seed=seed)
    s = check_library_kwargs(NAME, library_kwargs, DEFAULTS)
    if s["gamma"] is None:
        s["gamma"] = args.mdp.gamma
    updates = _run(args, s)
    import torchrl

    norm = "batch" if (s["normalize_advantage"] or s["average_gae"]) else False
    config = dict(s, gamma=float(s["gamma"]), lam=float(s["lmbda"]), ent_coef=float(s["entropy_coeff"]),
                  n_envs=args.n_envs, n_steps=args.n_steps, time_limit=args.time_limit,
                  normalize_advantages=norm, seed=args.seed, autoreset="same_step")
    return DriverRun(updates, LIBRARY, str(torchrl.__version__), config, NAME)


collect.__doc__ = collect_docstring(
    "torchrl-ppo", "TorchRL's collector, GAE and ClipPPOLoss",
    sizes=("Episode time limit, environments (``SerialEnv``), steps per environment per batch "
        "(``frames_per_batch = n_envs * n_steps``) and batches (one continuous stream)."),
    seed=("Seeds torch's global generator (action sampling) and the environments "
        "(``SerialEnv.set_seed``)."),
    overrides=("(TorchRL's names: ``lmbda`` and ``average_gae`` go to ``GAE``, the others to "
        "``ClipPPOLoss``)."))


@functools.lru_cache(maxsize=None)
def _classes() -> dict:
    import torch

    class TableActor(torch.nn.Module):
        """Logits of the one-hot observation: ``onehot @ table`` (float64)."""

        def __init__(self, table: np.ndarray) -> None:
            super().__init__()
            self.table = torch.nn.Parameter(torch.tensor(table, dtype=torch.float64))

        def forward(self, observation: Any) -> Any:
            return observation.to(torch.float64) @ self.table

    class TableCritic(torch.nn.Module):
        """The frozen value table of the one-hot observation, shape (..., 1)."""

        def __init__(self, table: np.ndarray) -> None:
            super().__init__()
            self.register_buffer("table", torch.tensor(table, dtype=torch.float64))

        def forward(self, observation: Any) -> Any:
            return (observation.to(torch.float64) @ self.table)[..., None]

    return {"TableActor": TableActor, "TableCritic": TableCritic}


def _run(args: Any, s: dict) -> np.ndarray:
    import torch

    with warnings.catch_warnings():
        # torchrl 0.14 announces, on import, the deprecation of classes this driver does not use
        warnings.simplefilter("ignore", DeprecationWarning)
        from tensordict.nn import TensorDictModule
        from torchrl.collectors import Collector
        from torchrl.envs import GymWrapper, SerialEnv
        from torchrl.modules import OneHotCategorical, ProbabilisticActor, ValueOperator
        from torchrl.objectives import ClipPPOLoss, ValueEstimators

    from ...gym import make_env

    c = _classes()
    torch.manual_seed(args.seed)
    frames = args.n_envs * args.n_steps
    env = SerialEnv(args.n_envs, functools.partial(_wrapped, GymWrapper, make_env, args.mdp, args.time_limit))
    collector = None
    try:
        env.set_seed(args.seed)
        table = c["TableActor"](args.logits)
        actor = ProbabilisticActor(TensorDictModule(table, in_keys=["observation"], out_keys=["logits"]),
                                   in_keys=["logits"], distribution_class=OneHotCategorical,
                                   return_log_prob=True, spec=env.action_spec)
        critic = ValueOperator(c["TableCritic"](args.values), in_keys=["observation"])
        loss = ClipPPOLoss(actor, critic, clip_epsilon=s["clip_epsilon"], entropy_coeff=s["entropy_coeff"],
                           critic_coeff=s["critic_coeff"], normalize_advantage=s["normalize_advantage"],
                           loss_critic_type=s["loss_critic_type"])
        loss.make_value_estimator(ValueEstimators.GAE, gamma=float(s["gamma"]), lmbda=float(s["lmbda"]),
                                  average_gae=bool(s["average_gae"]))
        with warnings.catch_warnings():
            # TorchRL 0.14 warns that a future version will append policy transforms to the env;
            # the tabular actor needs none
            warnings.simplefilter("ignore", FutureWarning)
            collector = Collector(env, actor, frames_per_batch=frames, total_frames=frames * args.n_batches)
        record = gradient_record(table.table)
        updates = []
        for data in collector:
            if tuple(data.batch_size) != (args.n_envs, args.n_steps):  # pragma: no cover - a changed collector
                raise RuntimeError(f"TorchRL collected a batch of shape {tuple(data.batch_size)}, expected "
                                   f"({args.n_envs}, {args.n_steps})")
            out = loss(data)
            total = out["loss_objective"] + out["loss_entropy"] + out["loss_critic"]
            total.backward()
            grads = record.take()
            if len(grads) != 1:  # pragma: no cover - a changed loss
                raise RuntimeError(f"TorchRL ClipPPOLoss: {len(grads)} gradients for one batch")
            updates.append(-grads[0])
            table.table.grad = None
        record.remove()
    finally:
        if collector is not None:
            collector.shutdown()
        if not env.is_closed:
            env.close()
    logits_unchanged(args.logits, table.table.detach().numpy(), NAME)
    if len(updates) != args.n_batches:  # pragma: no cover - a changed collector
        raise RuntimeError(f"TorchRL's collector gave {len(updates)} batches, expected {args.n_batches}")
    return np.stack(updates)


def _wrapped(wrapper: Any, make_env: Any, mdp: Any, time_limit: int) -> Any:
    return wrapper(make_env(mdp, max_episode_steps=time_limit))
