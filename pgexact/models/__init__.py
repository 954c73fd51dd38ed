"""Models: environments as frozen, validated data. They know nothing of policies."""

from .finite_mdp import FiniteMDP, check_mdp, check_pi, validate_policy_matrix

__all__ = ["FiniteMDP", "validate_policy_matrix"]
