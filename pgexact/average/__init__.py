r"""The average-reward objective: evaluation of a policy (:mod:`.evaluation`) and control (:mod:`.control`).

* :func:`evaluate` — gain, bias, differential Q and A, stationary distribution of a unichain
  policy; :func:`multichain_evaluate` — gain of every state and bias of any policy;
* :func:`policy_gradient`, :func:`pi_gradient`, :func:`natural_gradient` — derivatives of the
  gain;
* :func:`optimal` — the optimal gain, a bias and an optimal deterministic policy, by policy
  iteration, relative value iteration or a linear program, unichain or multichain.

No γ is needed: a :class:`~pgexact.FiniteMDP` (its γ and horizon ignored) or a pair
``(P, r)`` is accepted everywhere.
"""

from .control import METHODS, AverageOptimum, optimal
from .evaluation import (
    MAX_DENSE_STATES,
    MAX_STRUCTURED_STATES,
    AverageEvaluation,
    MultichainError,
    MultichainEvaluation,
    as_average_model,
    closed_classes,
    evaluate,
    multichain_evaluate,
    natural_gradient,
    pi_gradient,
    policy_gradient,
)

__all__ = [
    "AverageEvaluation",
    "AverageOptimum",
    "MAX_DENSE_STATES",
    "MAX_STRUCTURED_STATES",
    "METHODS",
    "MultichainError",
    "MultichainEvaluation",
    "as_average_model",
    "closed_classes",
    "evaluate",
    "multichain_evaluate",
    "natural_gradient",
    "optimal",
    "pi_gradient",
    "policy_gradient",
]
