"""Exact LQR closed forms, gathered from their modules: :mod:`~pgexact.lqr.evaluation` (cost,
:math:`P_K`, :math:`\\Sigma_K`, V, Q, A), :mod:`~pgexact.lqr.gradients` (gradients, Fisher,
natural and Gauss-Newton directions) and :mod:`~pgexact.lqr.riccati` (optimal control)."""

from __future__ import annotations

from ._stein import STEIN_RESIDUAL_RTOL
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
from .riccati import OptimalControl, optimal_gain, riccati

__all__ = [
    "LQREvaluation",
    "OptimalControl",
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
    "STEIN_RESIDUAL_RTOL",
]
