r"""LQR with linear-Gaussian policies: model, policy, exact closed forms and Monte Carlo estimators.

Cost convention: the LQR cost :math:`C` is minimized; wherever a reward is meant (``J``, ``V``,
``Q``, ``A``, :func:`policy_gradient`, the estimators) pgexact reports :math:`J = -C`.
Modules: :mod:`~pgexact.lqr.model`, :mod:`~pgexact.lqr.policy`, :mod:`~pgexact.lqr.evaluation`,
:mod:`~pgexact.lqr.gradients`, :mod:`~pgexact.lqr.riccati`, :mod:`~pgexact.lqr.sampling`
(rollouts), :mod:`~pgexact.lqr.estimators` (Monte Carlo gradient estimators),
:mod:`~pgexact.lqr.soft` (entropy-regularized LQR), :mod:`~pgexact.lqr.offpolicy` (DDPG's gradient and its bias).

Floating point: the public functions and methods ignore underflow whatever the caller's
:func:`numpy.errstate` (gradual underflow to subnormals or zero is benign in these closed forms);
overflow is detected and raised as :class:`~pgexact.errors.NumericalError`, never returned as
inf or NaN.
"""

from .evaluation import LQREvaluation, evaluate, spectral_radius
from .gradients import (
    cost_and_gradient,
    cost_gradient,
    fisher,
    gauss_newton_direction,
    natural_gradient,
    noise_gradient,
    npg_direction,
    policy_gradient,
)
from .hessian import cost_hessian, cost_hessian_vector_product, newton_direction, policy_hessian
from .model import LQR
from .offpolicy import ddpg_bias, ddpg_gradient
from .policy import LinearGaussian
from .riccati import OptimalControl, optimal_gain, riccati
from .soft import (
    SoftEvaluation,
    SoftOptimal,
    gaussian_entropy,
    soft_evaluate,
    soft_optimal,
    soft_policy_improvement,
    soft_policy_iteration,
)
from .estimators import dpg, reinforce, reinforce_baseline, reinforce_to_go
from .sampling import LQRTrajectories, rollout

__all__ = [
    "LQR",
    "LinearGaussian",
    "LQREvaluation",
    "OptimalControl",
    "LQRTrajectories",
    "evaluate",
    "spectral_radius",
    "cost_gradient",
    "cost_and_gradient",
    "noise_gradient",
    "policy_gradient",
    "fisher",
    "natural_gradient",
    "npg_direction",
    "gauss_newton_direction",
    "riccati",
    "optimal_gain",
    "rollout",
    "reinforce",
    "reinforce_to_go",
    "reinforce_baseline",
    "dpg",
    "SoftEvaluation",
    "SoftOptimal",
    "gaussian_entropy",
    "soft_evaluate",
    "soft_optimal",
    "soft_policy_improvement",
    "soft_policy_iteration",
    "ddpg_gradient",
    "ddpg_bias",
    "cost_hessian",
    "cost_hessian_vector_product",
    "policy_hessian",
    "newton_direction",
]
