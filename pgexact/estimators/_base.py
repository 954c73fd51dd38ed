"""Shared plumbing of the estimators: the Estimate result, argument checks, per-step gathers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import ReadOnlyOnCopy, as_float_array, check_theta
from ..policies.softmax import SoftmaxPolicy
from ..sampling.trajectories import Trajectories
from ..sampling._scan import reverse_scan
from . import _steps

__all__ = ["Estimate", "weighted_score", "rewards_to_go", "value_array", "per_step"]


@dataclass(frozen=True, eq=False)
class Estimate(ReadOnlyOnCopy):
    r"""A Monte Carlo estimate as the mean of per-episode terms.

    Attributes
    ----------
    samples : numpy.ndarray, shape (N, ...)
        One term per episode; the estimate is their mean. For the unbiased estimators the terms
        are i.i.d., so :attr:`std_error` is the standard error of the mean. For estimators that
        use batch statistics (normalized advantages, a baseline fitted on the same episodes)
        the terms are dependent and :attr:`std_error` is only indicative.
    """

    samples: np.ndarray

    def __post_init__(self) -> None:
        x = self.samples
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf":
            x = as_float_array("samples", x)
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"samples must have shape (N, ...) with N >= 1 episodes, got shape {x.shape}")
        bad = ~np.isfinite(x)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"samples{list(idx)} is {x[idx]}: estimates must be finite (an overflow in the "
                "estimator's weights, or a NaN in its inputs)"
            )
        if x is not self.samples:
            object.__setattr__(self, "samples", x)
        x.flags.writeable = False

    @property
    def n(self) -> int:
        """Number of episodes N."""
        return int(self.samples.shape[0])

    @property
    def n_episodes(self) -> int:
        """Number of episodes N (same as :attr:`n`)."""
        return int(self.samples.shape[0])

    @property
    def mean(self) -> np.ndarray:
        """The estimate, shape ``samples.shape[1:]``."""
        return self.samples.mean(axis=0)

    @property
    def std_error(self) -> np.ndarray:
        r"""Elementwise :math:`\hat\sigma / \sqrt N` with the unbiased sample standard deviation."""
        if self.n < 2:
            return np.full(self.samples.shape[1:], np.inf)
        return self.samples.std(axis=0, ddof=1) / np.sqrt(self.n)

    @property
    def covariance(self) -> np.ndarray:
        """Sample covariance of the per-episode terms (flattened), shape (d, d); needs N >= 2."""
        if self.n < 2:
            raise ValueError(
                f"Estimate.covariance needs at least 2 episodes, this estimate has {self.n}: a sample "
                "covariance is undefined from one"
            )
        flat = self.samples.reshape(self.n, -1)
        return np.atleast_2d(np.cov(flat, rowvar=False, ddof=1))


def check_trajectories(trajs: Any, name: str = "trajs") -> Trajectories:
    if not isinstance(trajs, Trajectories):
        raise TypeError(f"{name} must be pgexact.Trajectories (from pgexact.rollout), got {type(trajs).__name__}")
    return trajs


def check_policy_for(trajs: Trajectories, policy: Any, theta: Any, name: str = "theta") -> np.ndarray:
    """Validate (policy, theta) against the sampled problem; return theta as float64."""
    if not isinstance(policy, SoftmaxPolicy):
        raise TypeError(
            f"policy must be a pgexact.TabularSoftmax or pgexact.LinearSoftmax, got {type(policy).__name__}"
        )
    if (policy.n_states, policy.n_actions) != (trajs.n_states, trajs.n_actions):
        raise ValueError(
            f"policy is for (n_states, n_actions)=({policy.n_states}, {policy.n_actions}), but the "
            f"trajectories are of an MDP with ({trajs.n_states}, {trajs.n_actions})"
        )
    return check_theta(theta, policy.n_params, name=name)



def check_samples_policy(trajs: Any, policy: Any, theta: Any, name: str = "theta") -> tuple[Trajectories, np.ndarray]:
    """The checked ``(trajs, theta)`` of an estimator call ``estimator(trajs, policy, theta, ...)``."""
    trajs = check_trajectories(trajs)
    return trajs, check_policy_for(trajs, policy, theta, name=name)


def check_unit_interval(name: str, value: Any) -> float:
    """A real number in [0, 1] (λ of GAE and the like)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number in [0, 1], got {value!r}")
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} is {v}, expected 0 <= {name} <= 1")
    return v


def weighted_score(trajs: Trajectories, policy: SoftmaxPolicy, theta: Any, weights: Any) -> Estimate:
    r"""The per-episode sums :math:`\sum_t w_{n,t} \nabla_\theta \log\pi_\theta(a_t|s_t)`, the primitive of every gradient estimator.

    Parameters
    ----------
    trajs : Trajectories
    policy : TabularSoftmax or LinearSoftmax
    theta : array_like, shape (n_params,)
    weights : array_like, shape (N, T) or (M,)
        Per-step weights, padded batch-first (``trajs.mask`` marks real steps) or one per
        simulated step in the order of ``trajs.steps``; used as given (mask padding yourself).

    Returns
    -------
    Estimate
        ``samples`` of shape (N, n_params).
    """
    trajs = check_trajectories(trajs)
    theta = check_policy_for(trajs, policy, theta)
    w = _steps.as_step_weights(trajs, weights, "weights")
    return Estimate(_steps.score_sums(trajs, policy, theta, w))


def rewards_to_go(rewards: Any, discount: Any) -> np.ndarray:
    r""":math:`G_t = \sum_{t' \ge t} \text{discount}^{t'-t} r_{t'}` (discounted from t), shape (N, T).

    Parameters
    ----------
    rewards : array_like, shape (N, T)
        Finite rewards, batch-first (mask padding yourself).
    discount : float
        In [0, 1].

    Examples
    --------
    >>> rewards_to_go([[1.0, 2.0, 4.0]], 0.5).tolist()
    [[3.0, 4.0, 4.0]]
    """
    r = as_float_array("rewards", rewards, ndim=2)
    d = check_unit_interval("discount", discount)
    if r.shape[1] == 0:
        return r
    with np.errstate(over="ignore", invalid="ignore"):
        G = reverse_scan(r.T, d).T
    if not np.all(np.isfinite(G)):
        raise ValueError("rewards-to-go overflow float64: rescale the rewards")
    return np.ascontiguousarray(G)


def value_array(trajs: Trajectories, V: Any, name: str = "V") -> np.ndarray:
    r"""Values along the episodes, shape (N, T+1): ``V[s_t]``, or ``V[t, s_t]`` for a time-indexed V.

    Parameters
    ----------
    V : array_like, shape (S,) or (T, S)
        Stationary values, or time-indexed ones (finite horizon, t = 0..T-1); for the latter
        the value after the last step is 0 (nothing is left of a finite-horizon episode).
    """
    S, T = trajs.n_states, trajs.n_steps
    v = as_float_array(name, V)
    if v.shape == (S,):
        return v[trajs.states]
    if v.shape == (T, S):
        out = np.zeros((trajs.n_episodes, T + 1))
        out[:, :T] = v[np.arange(T)[None, :], trajs.states[:, :T]]
        return out
    raise ValueError(f"{name} must have shape (S,)=({S},) or (T, S)=({T}, {S}), got {v.shape}")


def per_step(trajs: Trajectories, table: Any, name: str) -> np.ndarray:
    """``table[s_t, a_t]`` or ``table[t, s_t, a_t]`` along the episodes, shape (N, T)."""
    S, A, T = trajs.n_states, trajs.n_actions, trajs.n_steps
    x = as_float_array(name, table)
    s, a = trajs.states[:, :T], trajs.actions
    if x.shape == (S, A):
        return x[s, a]
    if x.shape == (T, S, A):
        return x[np.arange(T)[None, :], s, a]
    raise ValueError(f"{name} must have shape (S, A)=({S}, {A}) or (T, S, A)=({T}, {S}, {A}), got {x.shape}")
