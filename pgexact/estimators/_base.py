"""Shared plumbing of the estimators: the Estimate result, argument checks, per-step gathers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse

from .._validation import as_float_array, check_theta
from ..policies.softmax import SoftmaxPolicy
from ..sampling.rollout import Trajectories

__all__ = ["Estimate", "weighted_score", "rewards_to_go", "value_array", "per_step"]


@dataclass(frozen=True, eq=False)
class Estimate:
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
        """Sample covariance of the per-episode terms (flattened), shape (d, d)."""
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


def sa_index(trajs: Trajectories) -> np.ndarray:
    """Flat index ``s_t * A + a_t``, shape (N, T), intp."""
    return trajs.states[:, :-1].astype(np.intp) * trajs.n_actions + trajs.actions


def _episode_matrix(trajs: Trajectories, weights: np.ndarray) -> scipy.sparse.csr_array:
    """``C[n, s*A + a] = sum_t weights[n, t] 1[s_t = s, a_t = a]``, shape (N, S*A)."""
    N, T = weights.shape
    rows = np.repeat(np.arange(N), T)
    return scipy.sparse.csr_array(
        (weights.reshape(-1), (rows, sa_index(trajs).reshape(-1))),
        shape=(N, trajs.n_states * trajs.n_actions),
    )


def weighted_score(trajs: Trajectories, policy: SoftmaxPolicy, theta: Any, weights: Any) -> Estimate:
    r"""The per-episode sums :math:`\sum_t w_{n,t} \nabla_\theta \log\pi_\theta(a_t|s_t)`, the primitive of every gradient estimator.

    Parameters
    ----------
    trajs : Trajectories
    policy : TabularSoftmax or LinearSoftmax
    theta : array_like, shape (n_params,)
    weights : array_like, shape (N, T)
        Per-step weights; they are used as given (mask padding yourself, e.g. with ``trajs.mask``).

    Returns
    -------
    Estimate
        ``samples`` of shape (N, n_params).
    """
    trajs = check_trajectories(trajs)
    theta = check_policy_for(trajs, policy, theta)
    w = as_float_array("weights", weights, shape=(trajs.n_episodes, trajs.n_steps))
    return Estimate(_score_sums(trajs, policy, theta, w))


def _score_sums(trajs: Trajectories, policy: SoftmaxPolicy, theta: np.ndarray, w: np.ndarray) -> np.ndarray:
    S, A = trajs.n_states, trajs.n_actions
    score = policy.score(theta).reshape(S * A, policy.n_params)
    return np.asarray(_episode_matrix(trajs, w) @ score)


def rewards_to_go(rewards: np.ndarray, discount: float) -> np.ndarray:
    r""":math:`G_t = \sum_{t' \ge t} \text{discount}^{t'-t} r_{t'}` (discounted from t), shape (N, T)."""
    G = np.empty_like(rewards)
    acc = np.zeros(rewards.shape[0])
    for t in range(rewards.shape[1] - 1, -1, -1):
        acc = rewards[:, t] + discount * acc
        G[:, t] = acc
    return G


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
