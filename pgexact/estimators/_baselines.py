r"""Value baselines fitted to sampled rewards-to-go, and the learned-baseline gradient estimator."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_float_array
from ..policies.softmax import SoftmaxPolicy
from ..sampling.trajectories import Trajectories
from . import _steps as st
from ._base import Estimate, check_trajectories
from ._policy_gradients import state_baseline

__all__ = ["fit_value_baseline", "learned_baseline"]


def fit_value_baseline(trajs: Trajectories, *, features: Any = None) -> np.ndarray:
    r"""A value baseline fitted by least squares to the rewards-to-go of ``trajs``.

    .. math:: \tilde b = \arg\min_b \sum_n \sum_{t<L} (G_{n,t} - b(s_{n,t}))^2

    Tabular (``features=None``): :math:`b_t(s)` is the mean of :math:`G_t` over visits of s at
    time t (finite or truncated horizon; shape (T, S)), or :math:`b(s)` over all visits of s
    under geometric stopping (memoryless, shape (S,)); unvisited entries are 0. With
    ``features`` (S, k): :math:`b(s) = \phi(s)^\top w`, minimum-norm least squares (shape (S,)).
    This is the "baseline estimation" step of the lecture notes' algorithm "Policy gradient
    with a learned baseline".

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> b = fit_value_baseline(tr)  # per-(t, s) means of the rewards-to-go, shape (3, 2)
    >>> b.shape
    (3, 2)
    """
    trajs = check_trajectories(trajs)
    S, T = trajs.n_states, trajs.n_steps
    sv = trajs.steps
    m = sv.real
    G = st.rewards_to_go(trajs)[m]
    s = sv.state[m].astype(np.intp)
    if features is not None:
        phi = as_float_array("features", features, ndim=2)
        if phi.shape[0] != S:
            raise ValueError(f"features must have shape (S, k) with S={S}, got {phi.shape}")
        w = np.linalg.lstsq(phi[s], G, rcond=None)[0]
        return phi @ w
    if trajs.objective == "geometric":
        tot = np.bincount(s, weights=G, minlength=S)
        cnt = np.bincount(s, minlength=S)
        return np.divide(tot, cnt, out=np.zeros(S), where=cnt > 0)
    idx = sv.time[m] * S + s
    tot = np.bincount(idx, weights=G, minlength=T * S).reshape(T, S)
    cnt = np.bincount(idx, minlength=T * S).reshape(T, S)
    return np.divide(tot, cnt, out=np.zeros((T, S)), where=cnt > 0)


def learned_baseline(
    trajs_baseline: Trajectories,
    trajs_gradient: Trajectories,
    policy: SoftmaxPolicy,
    theta: Any,
    *,
    features: Any = None,
) -> Estimate:
    r"""The lecture notes' "policy gradient with a learned baseline" estimate.

    A critic :math:`\tilde b \approx V` is fitted by regression (:func:`fit_value_baseline`) on
    ``trajs_baseline``; the gradient is then estimated on *independent* episodes
    ``trajs_gradient``:

    .. math:: \tilde\nabla J = \frac1M \sum_{m} \sum_{t<L} \psi_t \, d^t (G_t - \tilde b(s_t))

    (lecture notes, algorithm "Policy gradient with a learned baseline"). Unbiased whatever the
    fit, given the independence. Passing the same episodes twice gives the biased "reused
    samples" estimator (the baseline is correlated with the scores it multiplies).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> from pgexact import rollout
    >>> critic = rollout(mdp, pol.probs(theta), 500, seed=1)
    >>> g = exact_mean(learned_baseline(critic, tr, pol, theta).samples, p)  # unbiased, any fit
    >>> bool(np.allclose(g, policy_gradient(mdp, pol, theta), atol=1e-12))
    True
    """
    trajs_baseline = check_trajectories(trajs_baseline, "trajs_baseline")
    trajs_gradient = check_trajectories(trajs_gradient, "trajs_gradient")
    for attr in ("objective", "n_states", "n_actions", "gamma"):
        a, b = getattr(trajs_baseline, attr), getattr(trajs_gradient, attr)
        if a != b:
            raise ValueError(
                f"trajs_baseline.{attr} is {a!r} but trajs_gradient.{attr} is {b!r}: both batches "
                "must come from the same sampling setup"
            )
    if trajs_baseline.objective != "geometric" and trajs_baseline.n_steps != trajs_gradient.n_steps:
        raise ValueError(
            f"trajs_baseline has {trajs_baseline.n_steps} steps but trajs_gradient has "
            f"{trajs_gradient.n_steps}: both batches must come from the same sampling setup"
        )
    fitted = fit_value_baseline(trajs_baseline, features=features)
    return state_baseline(trajs_gradient, policy, theta, fitted)
