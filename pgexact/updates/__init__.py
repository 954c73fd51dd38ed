r"""Policy optimization updates driven by a gradient source, exact or sampled.

* sources: :class:`ExactSource` (closed forms) and :class:`SampledSource` (Monte Carlo, with a
  sample budget and a seed) behind one interface (:mod:`pgexact.updates.sources`);
* steps (:mod:`.pg`, :mod:`.trpo`, :mod:`.ppo`): :func:`pg_step`, :func:`npg_step`, :func:`trpo_step`, :func:`ppo_update`
  (clipped), :func:`ppo_kl_update` (adaptive KL penalty), :func:`ppo_dual_update` (dual
  gradient descent on the multiplier) — pure functions returning frozen results with ``.theta``;
* optimal references: :func:`value_iteration`, :func:`policy_iteration`, and the soft
  (entropy-regularized) :func:`soft_evaluate`, :func:`soft_improve`,
  :func:`soft_policy_iteration`, :func:`soft_value_iteration`;
* :func:`train`: a loop recording exact J, KL moved, step sizes and wall time.
"""

from .planning import (
    PolicyIterationResult,
    ValueIterationResult,
    greedy_policy,
    policy_iteration,
    value_iteration,
)
from .soft import (
    SoftEvaluation,
    SoftOptimum,
    SoftPolicyIterationResult,
    soft_evaluate,
    soft_improve,
    soft_policy_iteration,
    soft_value_iteration,
)
from .sources import (
    ExactOracle,
    ExactSource,
    GradientSource,
    Oracle,
    SurrogateBatch,
    clipped_objective,
    kl_and_gradient,
    surrogate_and_gradient,
    surrogate_value,
)
from .pg import NPGStep, PGStep, npg_step, pg_step
from .newton import NewtonStep, cubic_newton_step, newton_step
from .ppo import PPOStep, ppo_dual_update, ppo_kl_update, ppo_update
from .trpo import TRPOStep, trpo_step
from .sampled import CRITICS, SampledOracle, SampledSource
from .training import TrainingHistory, train
from .average_source import AverageOracle, AverageSource

__all__ = [
    "CRITICS",
    "ExactOracle",
    "ExactSource",
    "GradientSource",
    "NPGStep",
    "Oracle",
    "PGStep",
    "PPOStep",
    "PolicyIterationResult",
    "SoftEvaluation",
    "SoftOptimum",
    "SoftPolicyIterationResult",
    "SampledOracle",
    "SampledSource",
    "SurrogateBatch",
    "TRPOStep",
    "TrainingHistory",
    "ValueIterationResult",
    "clipped_objective",
    "greedy_policy",
    "kl_and_gradient",
    "npg_step",
    "pg_step",
    "policy_iteration",
    "ppo_dual_update",
    "ppo_kl_update",
    "ppo_update",
    "soft_evaluate",
    "soft_improve",
    "soft_policy_iteration",
    "soft_value_iteration",
    "surrogate_and_gradient",
    "surrogate_value",
    "train",
    "trpo_step",
    "value_iteration",
    "AverageOracle",
    "AverageSource",
    "NewtonStep",
    "newton_step",
    "cubic_newton_step",
]
