r"""Exact moments of the estimators — no sampling: enumeration of trajectories and recursions.

* :func:`enumerate_trajectories` lists every trajectory of a finite horizon with its
  probability, as a :class:`~pgexact.Trajectories` batch: apply any estimator of
  :mod:`pgexact.estimators` to it and take :func:`exact_mean` / :func:`exact_covariance` with
  the probabilities to get the estimator's exact mean and per-episode covariance (the variance
  of the mean of N episodes is that covariance over N). Cost grows as :math:`(S A)^H`.
* :func:`gae_expected_gradient` gives the exact expectation of the GAE policy-gradient
  estimator for an arbitrary (imperfect) value function, by a linear recursion.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.linalg

from .._validation import as_float_array, check_distribution, check_memory, check_positive_int, check_real, number_of_steps
from ..exact._checks import check_policy_theta
from ..models.finite_mdp import check_mdp, check_pi
from ..exact.evaluation import evaluate, state_marginals
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import SoftmaxPolicy
from ..sampling.rollout import Trajectories, _finish_full

__all__ = [
    "enumerate_trajectories",
    "exact_mean",
    "exact_covariance",
    "gae_expected_advantage",
    "gae_expected_gradient",
]


def enumerate_trajectories(
    mdp: FiniteMDP, pi: Any, *, horizon: int | None = None, max_trajectories: int = 1 << 18
) -> tuple[Trajectories, np.ndarray]:
    r"""Every trajectory of positive probability, with its probability.

    .. math:: p(\tau) = \mu_0(s_0) \prod_{t<T} \pi(a_t|s_t) P(s_{t+1}|s_t, a_t)

    Parameters
    ----------
    mdp : FiniteMDP
        Dense P. Finite horizon (T = ``mdp.horizon``) or discounted with ``horizon=T`` (the
        truncated objective, as :func:`pgexact.rollout` with ``horizon=T``).
    pi : array_like, shape (S, A)
    max_trajectories : int
        ``ValueError`` rather than enumerate more partial trajectories than this.

    Returns
    -------
    trajs : Trajectories
        M trajectories, flagged exactly as :func:`pgexact.rollout` would flag them.
    prob : numpy.ndarray, shape (M,)
        Their probabilities (summing to 1 up to rounding).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import evaluate
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pi = np.full((2, 2), 0.5)
    >>> tr, p = enumerate_trajectories(mdp, pi)
    >>> R = tr.rewards @ (0.9 ** np.arange(3))
    >>> bool(abs(p @ R - evaluate(mdp, pi).J) < 1e-12)
    True
    """
    mdp = check_mdp(mdp)
    pi = check_pi(mdp, pi)
    max_trajectories = check_positive_int("max_trajectories", max_trajectories)
    if getattr(mdp, "is_sparse", False):
        raise ValueError("enumerate_trajectories needs a dense P (mdp.P of shape (S, A, S))")
    T = number_of_steps(mdp.horizon, horizon, "enumeration needs a horizon T")
    objective = "finite" if mdp.horizon is not None else "truncated"
    S, A = mdp.n_states, mdp.n_actions
    state = np.flatnonzero(mdp.mu0 > 0)
    prob = mdp.mu0[state]
    path_s = state[:, None]
    path_a = np.zeros((len(state), 0), dtype=np.intp)
    # the paths hold (states + actions) x (T + 1) integers each, at least one path per start
    advice = "lower the horizon or max_trajectories"
    check_memory(f"enumerate_trajectories(..., horizon={T})", 16.0 * len(state) * (T + 1), advice)
    for t in range(T):
        m = len(prob)
        if m * A * S > max_trajectories:
            raise ValueError(
                f"enumeration needs more than max_trajectories={max_trajectories} branches; "
                "use a smaller problem or a larger limit"
            )
        check_memory(f"enumerate_trajectories(..., horizon={T}) at step {t}", 40.0 * m * A * S * (t + 2), advice)
        s = path_s[:, -1]
        # branch on (a, s') jointly
        idx = np.repeat(np.arange(m), A * S)
        a = np.tile(np.repeat(np.arange(A), S), m)
        s2 = np.tile(np.arange(S), m * A)
        p = prob[idx] * pi[s[idx], a] * mdp.P[s[idx], a, s2]
        keep = p > 0
        prob = p[keep]
        path_s = np.concatenate([path_s[idx[keep]], s2[keep, None]], axis=1)
        path_a = np.concatenate([path_a[idx[keep]], a[keep, None]], axis=1)
    rewards = mdp.r[path_s[:, :-1], path_a]
    M = len(prob)
    tables = SimpleNamespace(terminal=np.asarray(mdp.terminal), n_states=S, n_actions=A)
    trajs = _finish_full(
        tables,  # type: ignore[arg-type]
        np.ascontiguousarray(path_s.T.astype(np.int32)),
        np.ascontiguousarray(path_a.T.astype(np.int32)),
        np.ascontiguousarray(rewards.T),
        np.full(M, T),
        objective,
        mdp.gamma,
    )
    return trajs, prob


def _check_weighted(samples: Any, prob: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(samples (M, ...), prob (M,))``: finite samples, a probability vector."""
    p = as_float_array("prob", prob, ndim=1)
    x = as_float_array("samples", samples)
    if x.ndim == 0 or x.shape[0] != p.shape[0]:
        raise ValueError(
            f"samples must have one row per trajectory: shape ({p.shape[0]}, ...) to match prob, got {x.shape}"
        )
    check_distribution("prob", p, atol=1e-9)
    return x, p


def exact_mean(samples: Any, prob: Any) -> np.ndarray:
    r""":math:`\sum_\tau p(\tau) f(\tau)` for per-trajectory values ``samples`` (M, ...).

    Parameters
    ----------
    samples : array_like, shape (M, ...)
        Finite values, one row per trajectory.
    prob : array_like, shape (M,)
        Their probabilities: non-negative, summing to 1 (tolerance 1e-9).

    Returns
    -------
    numpy.ndarray, shape ``samples.shape[1:]``

    Examples
    --------
    >>> exact_mean([[1.0], [3.0]], [0.25, 0.75]).tolist()
    [2.5]
    """
    x, p = _check_weighted(samples, prob)
    return np.tensordot(p, x, axes=1)


def exact_covariance(samples: Any, prob: Any) -> np.ndarray:
    r""":math:`\sum_\tau p(\tau) (f - \bar f)(f - \bar f)^\top` of the flattened values, shape (d, d).

    The covariance of one episode's term; the mean of N i.i.d. episodes has covariance ``/ N``.

    Parameters
    ----------
    samples : array_like, shape (M, ...)
        Finite values, one row per trajectory.
    prob : array_like, shape (M,)
        Their probabilities: non-negative, summing to 1 (tolerance 1e-9).

    Returns
    -------
    numpy.ndarray, shape (d, d)
        d the number of entries of one row.

    Examples
    --------
    >>> exact_covariance([[1.0], [3.0]], [0.5, 0.5]).tolist()
    [[1.0]]
    """
    x, p = _check_weighted(samples, prob)
    x = x.reshape(len(p), -1)
    c = x - p @ x
    return (c * p[:, None]).T @ c


def gae_expected_advantage(mdp: FiniteMDP, pi: Any, V: Any, lam: float) -> np.ndarray:
    r"""Exact :math:`\bar A_\lambda(s, a) = E[\hat A^{GAE}_t \mid s_t = s, a_t = a]` for a given, possibly wrong, V.

    With :math:`\bar\delta(s, a) = r(s, a) + \gamma (P V)(s, a) - V(s)` and
    :math:`\hat A_t = \delta_t + \gamma\lambda \hat A_{t+1}`:

    .. math::
        \bar A_\lambda = \bar\delta + \gamma\lambda P U, \qquad
        U = (I - \gamma\lambda P_\pi)^{-1} \textstyle\sum_a \pi \bar\delta

    (discounted: the expectation under geometric stopping or an infinite horizon), or the
    backward recursion :math:`\bar A_t = \bar\delta_t + \gamma\lambda P (\sum_a \pi \bar A_{t+1})`,
    :math:`\bar A_H = 0`, with time-indexed V (H, S) and :math:`V_H = 0` (finite horizon).
    Terminal states follow the sampler's convention: nothing is bootstrapped from them
    (V there is taken as 0) and steps spent in them are padding (:math:`\bar A = 0`).
    For the exact V this is A for every λ; for λ = 1 it is :math:`Q - V` whatever V
    (Schulman et al. 2016, sec. 3).

    Returns
    -------
    numpy.ndarray, shape (S, A) or (H, S, A)

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import evaluate
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.8, seed=1)
    >>> pi = np.full((3, 2), 0.5)
    >>> ev = evaluate(mdp, pi)
    >>> bool(np.allclose(gae_expected_advantage(mdp, pi, ev.V, 0.3), ev.A))  # exact V: A, any lambda
    True
    """
    mdp = check_mdp(mdp)
    pi = check_pi(mdp, pi)
    lam = check_real("lam", lam)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam is {lam}, expected 0 <= lam <= 1")
    S, g = mdp.n_states, mdp.gamma
    live = ~np.asarray(mdp.terminal)
    if mdp.horizon is None:
        v = as_float_array("V", V, shape=(S,)) * live
        delta = (mdp.r + g * mdp._expected_next(v) - v[:, None]) * live[:, None]
        P_pi = mdp._policy_transition(pi)
        P_pi = P_pi.toarray() if hasattr(P_pi, "toarray") else P_pi
        M = np.eye(S) - g * lam * (P_pi * live[None, :])
        U = scipy.linalg.solve(M, np.sum(pi * delta, axis=1))
        return (delta + g * lam * mdp._expected_next(U * live)) * live[:, None]
    H = mdp.horizon
    v = as_float_array("V", V, shape=(H, S)) * live[None, :]
    out = np.empty((H, S, mdp.n_actions))
    U_next = np.zeros(S)
    for t in range(H - 1, -1, -1):
        v_next = v[t + 1] if t + 1 < H else np.zeros(S)
        delta = mdp.r + g * mdp._expected_next(v_next) - v[t][:, None]
        out[t] = (delta + g * lam * mdp._expected_next(U_next * live)) * live[:, None]
        U_next = np.sum(pi * out[t], axis=1)
    return out


def gae_expected_gradient(
    mdp: FiniteMDP, policy: SoftmaxPolicy, theta: Any, V: Any, lam: float
) -> np.ndarray:
    r"""Exact expectation of :func:`pgexact.estimators.gae_gradient`, shape (n_params,).

    .. math::
        E\hat g = \sum_{t} \gamma^t \sum_s p_t(s) \sum_a \pi(a|s) \nabla\log\pi(a|s) \bar A_{\lambda, t}(s, a)

    (discounted: :math:`\sum_s \rho(s) \ldots` with :math:`\rho = d_\pi / (1-\gamma)`), with
    :math:`\bar A_\lambda` from :func:`gae_expected_advantage`. Its difference from
    :func:`pgexact.policy_gradient` is the exact bias of GAE(λ) with this V. For discounted MDPs
    this is the expectation under geometric stopping (``rollout(..., geometric=True)``).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, policy_gradient
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    >>> pol, theta = TabularSoftmax(3, 2), np.zeros(6)
    >>> wrong_V = np.array([5.0, -1.0, 2.0])
    >>> g = policy_gradient(mdp, pol, theta)
    >>> bool(np.allclose(gae_expected_gradient(mdp, pol, theta, wrong_V, 1.0), g))  # lambda = 1: unbiased
    True
    >>> bool(np.allclose(gae_expected_gradient(mdp, pol, theta, wrong_V, 0.5), g))  # otherwise biased
    False
    """
    mdp, policy, theta = check_policy_theta(mdp, policy, theta)
    pi = policy.probs(theta)
    Abar = gae_expected_advantage(mdp, pi, V, lam)
    if mdp.horizon is None:
        rho = evaluate(mdp, pi).d / (1.0 - mdp.gamma)
        return policy.score_contract(theta, rho[:, None] * pi * Abar)
    p = state_marginals(mdp, pi, mdp.horizon)
    disc = mdp.gamma ** np.arange(mdp.horizon)
    return policy.score_contract(theta, pi * np.einsum("t,ts,tsa->sa", disc, p, Abar))
