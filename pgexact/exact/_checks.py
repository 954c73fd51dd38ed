"""Argument checks shared by the exact modules (validated once, at the public boundary)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_theta
from ..models.finite_mdp import FiniteMDP, check_mdp, check_pi
from ..policies.softmax import SoftmaxPolicy


def check_policy(mdp: FiniteMDP, policy: Any, name: str = "policy") -> SoftmaxPolicy:
    if not isinstance(policy, SoftmaxPolicy):
        raise TypeError(
            f"{name} must be a pgexact.TabularSoftmax or pgexact.LinearSoftmax, "
            f"got {type(policy).__name__}"
        )
    if (policy.n_states, policy.n_actions) != (mdp.n_states, mdp.n_actions):
        raise ValueError(
            f"{name} is for (n_states, n_actions)=({policy.n_states}, {policy.n_actions}), "
            f"but mdp has ({mdp.n_states}, {mdp.n_actions})"
        )
    if mdp.action_mask is not None and (
        policy.action_mask is None or np.any(policy.action_mask & ~mdp.action_mask)
    ):
        raise ValueError(
            f"{name} gives probability to actions that mdp.action_mask marks infeasible: build it "
            f"with action_mask=mdp.action_mask"
        )
    return policy


def check_policy_theta(
    mdp: Any, policy: Any, theta: Any, name: str = "theta"
) -> tuple[FiniteMDP, SoftmaxPolicy, np.ndarray]:
    """Validate an (mdp, policy, theta) triple; ``name`` is the theta argument's name."""
    mdp = check_mdp(mdp)
    policy = check_policy(mdp, policy)
    return mdp, policy, check_theta(theta, policy.n_params, name=name)
