"""pgexact: policy-gradient mathematics, exactly, on problems small enough to solve.

The data flow: models -> parametrizations -> exact closed forms / sampled estimators ->
updates -> theorems, errata, figures, command line (the design document of the repository,
``DESIGN.md``, describes the layers and the conventions).
"""

from __future__ import annotations

__version__ = "0.1.0"

# --- errors
from .errors import MultichainError, NotUniqueError, NumericalError, SingularSystemError, UnstableGainError

# --- models and parametrizations (exact core)
from .models import FiniteMDP
from .policies import LinearSoftmax, TabularSoftmax
from . import policies
from . import mdps

# --- exact closed forms (exact core)
from . import exact
from .exact import (
    evaluate,
    fisher,
    fisher_vector_product,
    kl_expected,
    kl_max,
    kl_per_state,
    natural_gradient,
    occupancy,
    performance_difference,
    policy_gradient,
    state_marginals,
    stationary_distribution,
    surrogate,
    surrogate_gradient,
    trajectory_fisher,
    value_and_gradient,
)

# --- exact second order
from .exact import hessian, hessian_vector_product

# --- LQR
from . import lqr
from .lqr import LQR, LinearGaussian
from . import average  # the average-reward objective (unichain)

# --- sampling: rollout kernel and estimators
from .sampling import Trajectories, rollout, rollout_chunks
from . import estimators

# --- updates
from . import updates
from .updates import ExactSource

# --- scale-out
# pgexact.gym does not import gymnasium (make_env does, on first call): optional extra "gym".
# pgexact.distributed works with any concurrent.futures.Executor (Dask: optional extra "dask").
from . import distributed, gym

__all__ = [
    "__version__",
    # errors
    "MultichainError", "NotUniqueError", "NumericalError", "SingularSystemError", "UnstableGainError",
    # models and parametrizations
    "FiniteMDP", "LinearSoftmax", "TabularSoftmax", "LQR", "LinearGaussian",
    # exact closed forms
    "evaluate", "fisher", "fisher_vector_product", "kl_expected", "kl_max", "kl_per_state",
    "natural_gradient", "occupancy", "performance_difference", "policy_gradient",
    "state_marginals", "stationary_distribution", "surrogate", "surrogate_gradient",
    "trajectory_fisher", "value_and_gradient",
    # sampling and updates
    "Trajectories", "rollout", "rollout_chunks", "ExactSource",
    # subpackages
    "mdps", "exact", "lqr", "estimators", "updates", "distributed", "gym",
    # exact second order
    "hessian", "hessian_vector_product",
]
