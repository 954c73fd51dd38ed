r"""LQR with linear-Gaussian policies: model, policy, exact closed forms and Monte Carlo estimators.

Cost convention: the LQR cost :math:`C` is minimized; wherever a reward is meant (``J``, ``V``,
``Q``, ``A``, :func:`policy_gradient`, the estimators) pgexact reports :math:`J = -C`.
"""

from .exact import (
    LQREvaluation,
    OptimalControl,
    cost_and_gradient,
    cost_gradient,
    evaluate,
    fisher,
    gauss_newton_direction,
    natural_gradient,
    noise_gradient,
    npg_direction,
    optimal_gain,
    policy_gradient,
    riccati,
    spectral_radius,
)
from .model import LQR
from .policy import LinearGaussian
from .sampling import (
    GradientSamples,
    LQRRollout,
    dpg,
    reinforce,
    reinforce_baseline,
    reinforce_to_go,
    rollout,
)

__all__ = [
    "LQR",
    "LinearGaussian",
    "LQREvaluation",
    "OptimalControl",
    "GradientSamples",
    "LQRRollout",
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
]
