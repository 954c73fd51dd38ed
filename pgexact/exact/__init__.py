"""Exact closed forms on finite MDPs. Nothing here draws a random number."""

from .discretization import DiscretizationError, discretization_error
from .divergences import kl_expected, kl_expected_gradient, kl_max, kl_per_state, tv_max, tv_per_state
from .evaluation import (
    Evaluation,
    discounted_visitation,
    evaluate,
    occupancy,
    state_marginals,
    stationary_distribution,
)
from .fisher import fisher, fisher_vector_product, natural_gradient, trajectory_fisher
from .gradients import (
    PolicyGradientForms,
    TrajectoryEnumeration,
    policy_gradient,
    policy_gradient_forms,
    reinforce_by_enumeration,
    value_and_gradient,
)
from .policy_free import (
    advantage_vjp,
    fisher_pi_metric,
    fisher_vector_product_jvp,
    minimum_norm_solve,
    occupancy_vjp,
    pi_gradient,
    value_and_pi_gradient,
    value_vjp,
)
from .hessian import hessian, hessian_vector_product, value_gradient_hessian
from .second_order import pi_hessian, pi_hessian_vector_product
from .surrogate import PerformanceDifference, performance_difference, surrogate, surrogate_gradient

__all__ = [
    "DiscretizationError",
    "discretization_error",
    "Evaluation",
    "PerformanceDifference",
    "PolicyGradientForms",
    "TrajectoryEnumeration",
    "discounted_visitation",
    "evaluate",
    "fisher",
    "fisher_vector_product",
    "kl_expected",
    "kl_expected_gradient",
    "kl_max",
    "kl_per_state",
    "natural_gradient",
    "occupancy",
    "performance_difference",
    "policy_gradient",
    "policy_gradient_forms",
    "reinforce_by_enumeration",
    "state_marginals",
    "stationary_distribution",
    "surrogate",
    "surrogate_gradient",
    "trajectory_fisher",
    "value_and_gradient",
    "tv_max",
    "tv_per_state",
    "advantage_vjp",
    "fisher_pi_metric",
    "fisher_vector_product_jvp",
    "minimum_norm_solve",
    "occupancy_vjp",
    "pi_gradient",
    "value_and_pi_gradient",
    "value_vjp",
    "pi_hessian",
    "pi_hessian_vector_product",
    "hessian",
    "hessian_vector_product",
    "value_gradient_hessian",
]
