"""Argument checks shared by the exact LQR modules (the model itself is validated at construction)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_float_array, check_covariance
from .model import LQR
from .policy import LinearGaussian

__all__ = ["check_lqr", "check_gain", "check_action_cov", "check_noise_allowed", "check_policy",
           "check_infinite", "freeze_fields"]


def check_lqr(lqr: Any, name: str = "lqr") -> LQR:
    if not isinstance(lqr, LQR):
        hint = " (the exact functions take (lqr, policy, theta) or (lqr, K))" if isinstance(lqr, LinearGaussian) else ""
        raise TypeError(f"{name} must be a pgexact.LQR, got {type(lqr).__name__}{hint}")
    return lqr


def check_gain(lqr: LQR, K: Any, allow_time_varying: bool = True, name: str = "K") -> np.ndarray:
    if isinstance(K, (LQR, LinearGaussian)):
        raise TypeError(f"{name} must be a gain matrix (n_actions, n_states), got {type(K).__name__}")
    K = as_float_array(name, K)
    m, n = lqr.n_actions, lqr.n_states
    if K.shape == (m, n):
        return K
    if allow_time_varying and lqr.horizon is not None and K.shape == (lqr.horizon, m, n):
        return K
    want = f"({m}, {n})" + (
        f" or time-varying ({lqr.horizon}, {m}, {n})" if allow_time_varying and lqr.horizon else ""
    )
    raise ValueError(f"{name} must have shape {want} (n_actions, n_states), got {K.shape}")


def check_action_cov(lqr: LQR, noise_cov: Any) -> np.ndarray:
    m = lqr.n_actions
    if noise_cov is None:
        return np.zeros((m, m))
    return check_covariance("noise_cov", noise_cov, m, " (n_actions, n_actions)")


def check_noise_allowed(lqr: LQR, Su: np.ndarray) -> None:
    if lqr.horizon is None and lqr.gamma == 1.0 and np.any(Su != 0.0):
        raise ValueError(
            "gamma=1 and horizon=None with policy noise (noise_cov != 0): the cost diverges; "
            "use gamma < 1 or a finite horizon"
        )


def check_policy(lqr: LQR, policy: Any, theta: Any) -> tuple[LinearGaussian, np.ndarray]:
    if not isinstance(policy, LinearGaussian):
        raise TypeError(f"policy must be a pgexact.LinearGaussian, got {type(policy).__name__}")
    if policy.n_states != lqr.n_states or policy.n_actions != lqr.n_actions:
        raise ValueError(
            f"policy has (n_states, n_actions) = ({policy.n_states}, {policy.n_actions}), "
            f"the LQR has ({lqr.n_states}, {lqr.n_actions})"
        )
    return policy, policy.check_theta(theta)


def check_infinite(lqr: LQR, what: str) -> None:
    if lqr.horizon is not None:
        raise ValueError(f"{what} is defined for an infinite horizon (horizon=None), got horizon={lqr.horizon}")


def freeze_fields(record: Any, names: tuple[str, ...]) -> None:
    """Replace the array fields ``names`` of a frozen dataclass by read-only views.

    Result records store what they are given: anything that is not an array is left as it is,
    and the caller's arrays are not modified (a view, not the array, is made read-only).
    """
    for name in names:
        value = getattr(record, name)
        if isinstance(value, np.ndarray):
            view = value.view()
            view.flags.writeable = False
            object.__setattr__(record, name, view)
