r"""Monte Carlo estimators of policy gradients, Fisher matrices and surrogates, with their exact moments.

Gradient estimators take sampled :class:`~pgexact.Trajectories` (from :func:`pgexact.rollout`),
a softmax parametrization and θ, and return an :class:`Estimate` (per-episode terms, mean,
standard error). Advantage targets (:func:`gae`, :func:`n_step_returns`, :func:`td_errors`) work
on plain arrays. :mod:`~pgexact.estimators.exact_moments` computes estimators' exact means and
variances by enumeration, :mod:`~pgexact.estimators.moments` by recursions over time and state
(:func:`estimator_moments`); :mod:`~pgexact.estimators.stats` tests sampled means
against exact values with a stated false-alarm probability.
"""

from ._advantage import gae, n_step_returns, td_errors
from ._base import Estimate, rewards_to_go, value_array, weighted_score
from ._baselines import fit_value_baseline, learned_baseline
from ._fisher_surrogate import (
    fisher_estimate,
    surrogate_estimate,
    surrogate_gradient_estimate,
    trajectory_fisher_estimate,
)
from ._policy_gradients import (
    advantage,
    constant_baseline,
    gae_gradient,
    n_step,
    normalized_advantage,
    reinforce,
    reward_to_go,
    state_baseline,
)
from ._second_order import hessian_reinforce, hessian_reward_to_go
from ._dice import hessian_aided_difference, hessian_loaded_dice, hessian_shen
from .exact_moments import (
    enumerate_trajectories,
    exact_covariance,
    exact_mean,
    gae_expected_advantage,
    gae_expected_gradient,
)
from .baselines import OptimalBaselines, optimal_baselines
from .moments import ESTIMATORS, EstimatorMoments, estimator_moments
from .stats import MIN_EPISODES, MeanTest, StreamedMean, episodes_needed, mean_test, mean_test_power, streaming_mean

__all__ = [
    "hessian_reinforce",
    "hessian_reward_to_go",
    "ESTIMATORS",
    "Estimate",
    "EstimatorMoments",
    "MeanTest",
    "OptimalBaselines",
    "StreamedMean",
    "advantage",
    "constant_baseline",
    "enumerate_trajectories",
    "estimator_moments",
    "episodes_needed",
    "exact_covariance",
    "exact_mean",
    "fisher_estimate",
    "fit_value_baseline",
    "gae",
    "gae_expected_advantage",
    "gae_expected_gradient",
    "gae_gradient",
    "learned_baseline",
    "mean_test",
    "mean_test_power",
    "n_step",
    "n_step_returns",
    "normalized_advantage",
    "optimal_baselines",
    "reinforce",
    "reward_to_go",
    "rewards_to_go",
    "state_baseline",
    "streaming_mean",
    "MIN_EPISODES",
    "surrogate_estimate",
    "surrogate_gradient_estimate",
    "td_errors",
    "trajectory_fisher_estimate",
    "weighted_score",
    "hessian_loaded_dice",
    "hessian_shen",
    "hessian_aided_difference",
]
