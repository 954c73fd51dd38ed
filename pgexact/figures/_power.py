r"""Figure of the unbiasedness test's power: predicted from the exact covariance, observed over seeds."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..estimators import episodes_needed, estimator_moments, mean_test, mean_test_power, reward_to_go
from ..exact import policy_gradient
from ..mdps import random_mdp
from ..policies.softmax import TabularSoftmax
from ..sampling import rollout
from ._core import C_BAD, C_NPG, C_PG, C_TRPO

__all__ = ["specs"]

FALSE_ALARM = 1e-3
SEEDS = 100  # rejection rates over 100 seeds: binomial standard error at most 0.05


def _problem():
    mdp = random_mdp(4, 2, gamma=0.9, horizon=5, seed=61)
    policy = TabularSoftmax(4, 2)
    theta = 0.5 * np.random.default_rng(62).standard_normal(policy.n_params)
    moments = estimator_moments(mdp, policy, theta, "reward_to_go")
    sd = np.sqrt(np.diag(moments.covariance))
    return mdp, policy, theta, moments, sd


def make_test_power(fig: Figure) -> None:
    mdp, policy, theta, moments, sd = _problem()
    ax1, ax2 = fig.subplots(1, 2)
    n = np.unique(np.geomspace(10, 1e5, 14).astype(int))
    shift = np.zeros(policy.n_params)
    shift[int(np.argmax(sd))] = 1.0  # a bias in the noisiest coordinate
    for scale, color in [(0.02, C_PG), (0.05, C_NPG), (0.1, C_TRPO)]:
        bias = scale * float(sd.max()) * shift
        power = [mean_test_power(moments.covariance, bias, int(k), false_alarm=FALSE_ALARM) for k in n]
        need = episodes_needed(moments.covariance, bias, power=0.9, false_alarm=FALSE_ALARM)
        ax1.semilogx(n, power, color=color, lw=2, label=f"bias {scale:g} σ_max: 90% power at N = {need}")
        ax1.axvline(need, color=color, lw=0.8, ls=":")
    ax1.axhline(0.9, color="0.5", lw=0.8)
    ax1.set_xlabel("episodes N")
    ax1.set_ylabel("power of the mean test")
    ax1.set_title(f"predicted from the exact covariance (false alarm {FALSE_ALARM:g})")
    ax1.legend(fontsize=8, loc="upper left")

    g = policy_gradient(mdp, policy, theta)
    pi = policy.probs(theta)
    bias = 0.05 * float(sd.max()) * shift
    grid = np.array([200, 400, 1600])  # mean_test needs MIN_EPISODES = 160 episodes
    predicted = [mean_test_power(moments.covariance, bias, int(k), false_alarm=FALSE_ALARM) for k in grid]
    observed = []
    for k, N in enumerate(grid):
        seeds = np.random.SeedSequence(63 + k).spawn(SEEDS)
        rejected = [not mean_test(reward_to_go(rollout(mdp, pi, int(N), seed=s), policy, theta),
                                  expected=g - bias, false_alarm=FALSE_ALARM).passed for s in seeds]
        observed.append(np.mean(rejected))
    observed = np.asarray(observed)
    err = 2 * np.sqrt(np.maximum(observed * (1 - observed), 1.0 / SEEDS) / SEEDS)
    fine = np.unique(np.geomspace(grid[0], grid[-1], 8).astype(int))
    ax2.semilogx(fine, [mean_test_power(moments.covariance, bias, int(k), false_alarm=FALSE_ALARM) for k in fine],
                 color=C_NPG, lw=2, label="predicted (exact covariance)")
    ax2.errorbar(grid, observed, yerr=err, fmt="o", color=C_BAD, ms=5, capsize=3,
                 label=f"rejection rate over {SEEDS} seeds (±2 s.e.)")
    ax2.plot(grid, predicted, "x", color=C_NPG, ms=6)
    ax2.set_xlabel("episodes N")
    ax2.set_ylabel("rejection rate")
    ax2.set_title("calibration: the test rejects a bias of 0.05 σ_max as often as predicted")
    ax2.legend(fontsize=8, loc="upper left")
    fig.suptitle("Power of the unbiasedness test for the reward-to-go estimator "
                 "(random 4-state MDP, 2 actions, horizon 5, γ = 0.9)")


def specs(FigureSpec):  # noqa: N803 - the class is passed in to avoid a circular import
    """The figure specs of this module (called by ``pgexact.figures``)."""
    return [
        FigureSpec(
            "test_power", "Power of the unbiasedness test",
            "Power of pgexact.estimators.mean_test (Bonferroni over coordinates, false alarm 1e-3) against a "
            "bias in the noisiest coordinate of the reward-to-go estimator, predicted from the exact per-episode "
            "covariance (estimator_moments) by mean_test_power, with the episodes needed for 90% power "
            "(episodes_needed); right, the predicted power against the rejection rate observed over 100 seeds of "
            "pgexact.rollout. Sources: Hall (1992), the skewness-corrected Studentized mean, against Student's t "
            "quantile; the normal approximation for the power; Bonferroni's inequality; Genz (1992) for the "
            "rectangle probabilities.",
            make_test_power, (12.0, 4.8),
        ),
    ]
