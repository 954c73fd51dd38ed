r"""Exact moments of the policy-gradient estimators under geometric stopping, by linear solves.

``rollout(mdp, pi, N, geometric=True)`` stops each episode after a random number of steps
:math:`L` with :math:`\Pr(L > t) = \gamma^t`, independent of the trajectory, and the estimators
then apply no discount (``Trajectories.discount`` is 1: the stop *is* the discount). An episode
is a Markov chain on the pairs :math:`x = (s, a)` killed with probability :math:`1-\gamma` after
each step: its sub-stochastic kernel is :math:`\gamma P`. The finite-horizon recursions of
:mod:`pgexact.estimators.moments` (weights :math:`w_t = f(x_t) + \sum_{l \ge t}\beta^{l-t} y_l`,
:math:`y_l = a(x_l) + c(s_{l+1})`, or the total return) become time-invariant: every backward
quantity is the fixed point of an affine map, found by one linear solve with
:math:`I - \kappa\gamma P_\pi` (:math:`\kappa \in \{1, \beta, \beta^2\}`), and the sums over t of
the forward quantities are occupancy-weighted,
:math:`\sum_t \Pr(x_t = x, t < L) = \big(\mu_0^\top (I - \gamma P_\pi)^{-1}\big)(s)\,\pi(a|s)`.
For the causal family, with :math:`\bar X(s) = \sum_a \pi(a|s) X(s, a)` and
:math:`\mathcal P X = \gamma P X`:

.. math::
    \eta = a + \mathcal P(c + \beta\bar\eta), \qquad
    \eta_2 = a^2 + 2a\,\mathcal P(c + \beta\bar\eta) + \mathcal P(c^2 + 2\beta c\bar\eta + \beta^2\bar\eta_2),

    U = (f + \eta)\,C + \mathcal P\bar U, \qquad
    V = (f\eta + \eta_2)\,C + a\,\mathcal P\bar U + \mathcal P(c\bar U) + \beta\,\mathcal P\bar V,

    E[\hat g_e\hat g_e^\top]\,C = \mathrm{diag}\big(\nu (f^2 + 2f\eta + \eta_2)\big) C
    + \nu\,(f\,\mathcal P\bar U + V - (f\eta + \eta_2) C) + (\ldots)^\top

with :math:`\nu` the occupancy of the pairs and C the score matrix (rows
:math:`\nabla\log\pi(a|s)`). Cost: three LU factorizations of S x S matrices and solves with
k = n_params right-hand sides, :math:`O(S^3 + \mathrm{nnz}(P)\,k)`; memory :math:`O(S A k)`.

Sources: the moment equations of an additive functional of a killed Markov chain (Sobel 1982,
"The variance of discounted Markov decision processes", J. Appl. Prob. 19, Theorem 2, for the
return; its extension to the score-weighted sums as in :mod:`pgexact.estimators.moments`); the
sampling scheme: the course notes, "Policy gradient" notes, the remark that a geometric horizon
makes the undiscounted Monte Carlo sum unbiased for the discounted objective.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

from .._validation import as_float_array
from ..errors import NumericalError, SingularSystemError
from ..models.finite_mdp import FiniteMDP

__all__ = ["GEOMETRIC_ESTIMATORS", "MAX_DENSE_STATES"]

#: The estimators whose moments under geometric stopping are computed here.
GEOMETRIC_ESTIMATORS = ("reinforce", "reward_to_go", "constant_baseline", "state_baseline", "advantage", "gae")

#: Largest number of states whose S x S systems are solved densely (sparse LU above).
MAX_DENSE_STATES = 4000


class _Killed:
    r"""The killed chain: :math:`\mathcal P X = \gamma P X` on pairs, its π-averages, and solves with
    :math:`I - \kappa\gamma P_\pi` (and the transpose) for a few κ."""

    def __init__(self, mdp: FiniteMDP, pi: np.ndarray) -> None:
        S, A = mdp.n_states, mdp.n_actions
        self.S, self.A, self.gamma = S, A, mdp.gamma
        self.pi = pi
        self.pif = pi.reshape(-1)
        self.P2 = mdp.P if mdp.is_sparse else np.ascontiguousarray(mdp.P).reshape(S * A, S)
        P_pi = mdp._policy_transition(pi)
        self.sparse = S > MAX_DENSE_STATES
        if self.sparse:
            self.P_pi = scipy.sparse.csc_array(P_pi)
        else:
            self.P_pi = P_pi.toarray() if scipy.sparse.issparse(P_pi) else np.asarray(P_pi)
        self._lu: dict[float, Any] = {}

    def step(self, X: np.ndarray) -> np.ndarray:
        r""":math:`\gamma P X`, X of shape (S,) or (S, k); returns (S·A,) or (S·A, k)."""
        return self.gamma * np.asarray(self.P2 @ X)

    def back(self, y: np.ndarray) -> np.ndarray:
        r""":math:`\gamma \sum_x P(s'|x) y(x)`, y of shape (S·A,); returns (S,)."""
        return self.gamma * np.asarray(self.P2.T @ y)

    def avg(self, X: np.ndarray) -> np.ndarray:
        r""":math:`\bar X(s) = \sum_a \pi(a|s) X(s, a)`."""
        if X.ndim == 1:
            return (self.pif * X).reshape(self.S, self.A).sum(axis=1)
        return (self.pif[:, None] * X).reshape(self.S, self.A, X.shape[1]).sum(axis=1)

    def _factor(self, kappa: float) -> Any:
        if kappa not in self._lu:
            S, g = self.S, kappa * self.gamma
            with warnings.catch_warnings():
                warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
                warnings.simplefilter("error", scipy.sparse.linalg.MatrixRankWarning)
                try:
                    if self.sparse:
                        M = scipy.sparse.eye_array(S, format="csc") - g * self.P_pi
                        self._lu[kappa] = scipy.sparse.linalg.splu(M)
                    else:
                        self._lu[kappa] = scipy.linalg.lu_factor(np.eye(S) - g * self.P_pi, check_finite=False)
                except (scipy.linalg.LinAlgError, scipy.linalg.LinAlgWarning, RuntimeError,
                        scipy.sparse.linalg.MatrixRankWarning) as exc:
                    raise SingularSystemError(
                        f"I - {kappa:g} gamma P_pi is singular to working precision (gamma={self.gamma}); lower gamma"
                    ) from exc
        return self._lu[kappa]

    def solve(self, kappa: float, b: np.ndarray, trans: bool = False) -> np.ndarray:
        r""":math:`(I - \kappa\gamma P_\pi)^{-1} b` (or the transpose's)."""
        lu = self._factor(kappa)
        if self.sparse:
            return lu.solve(b, trans="T" if trans else "N")
        return scipy.linalg.lu_solve(lu, b, trans=1 if trans else 0, check_finite=False)

    def occupancy(self, mu0: np.ndarray) -> np.ndarray:
        r"""Pair occupancy :math:`\nu(s, a) = \sum_t \Pr(s_t = s, a_t = a, t < L)`, shape (S·A,)."""
        sigma = self.solve(1.0, mu0, trans=True)
        return (sigma[:, None] * self.pi).reshape(-1)

    def state_occupancy(self, mu0: np.ndarray) -> np.ndarray:
        """State occupancy :math:`\\sum_t \\Pr(s_t = s, t < L)`, shape (S,)."""
        return self.solve(1.0, mu0, trans=True)


def geometric_weights(
    mdp: FiniteMDP, estimator: str, *, b: Any, A: Any, V: Any, lam: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(f, a, c, beta)`` of the causal family under geometric stopping (stationary tables)."""
    S, nA = mdp.n_states, mdp.n_actions
    live = ~np.asarray(mdp.terminal)
    r = mdp.r.reshape(-1).astype(np.float64)
    zero_c, zero = np.zeros(S), np.zeros(S * nA)
    if estimator == "reward_to_go":
        return zero, r, zero_c, 1.0
    if estimator == "constant_baseline":
        if b is None or isinstance(b, bool) or not isinstance(b, (int, float, np.floating, np.integer)) or not np.isfinite(b):
            raise ValueError(f"estimator 'constant_baseline' needs b, a finite real number; got b={b!r}")
        return np.full(S * nA, -float(b)), r, zero_c, 1.0
    if estimator == "state_baseline":
        if b is None:
            raise ValueError("estimator 'state_baseline' needs b, an array of shape (S,)")
        bs = as_float_array("b", b)
        if bs.shape != (S,):
            raise ValueError(
                f"b must have shape (S,)=({S},) under geometric stopping (a baseline cannot depend on t: the "
                f"stopping time is memoryless), got {bs.shape}"
            )
        return -np.repeat(bs, nA), r, zero_c, 1.0
    if estimator == "advantage":
        if A is None:
            raise ValueError("estimator 'advantage' needs A, an array of shape (S, A)")
        At = as_float_array("A", A)
        if At.shape != (S, nA):
            raise ValueError(f"A must have shape (S, A)=({S}, {nA}) under geometric stopping, got {At.shape}")
        return At.reshape(-1), zero, zero_c, 0.0
    if estimator == "gae":
        if V is None or lam is None:
            raise ValueError("estimator 'gae' needs V (shape (S,)) and lam (0 <= lam <= 1)")
        if isinstance(lam, bool) or not isinstance(lam, (int, float, np.floating, np.integer)):
            raise TypeError(f"lam must be a real number, got {lam!r}")
        lam = float(lam)
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam is {lam}, expected 0 <= lam <= 1")
        v = as_float_array("V", V)
        if v.shape != (S,):
            raise ValueError(f"V must have shape (S,)=({S},) under geometric stopping, got {v.shape}")
        v = v * live  # nothing is bootstrapped from a terminal state
        return zero, r - np.repeat(v, nA), v, lam
    raise AssertionError(estimator)


def causal_kernel(
    K: _Killed, C: np.ndarray, nu: np.ndarray, f: np.ndarray, a: np.ndarray, c: np.ndarray, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    r"""``(C^T E[g_e g_e^T] C, C^T E[g_e])`` of the causal family under geometric stopping."""
    q1 = None
    eta_bar = K.solve(beta, K.avg(a) + K.avg(K.step(c))) if beta != 0.0 else K.avg(a + K.step(c))
    q1 = K.step(c + beta * eta_bar)
    eta = a + q1
    rhs2 = K.avg(a * a + 2.0 * a * q1) + K.avg(K.step(c * c + 2.0 * beta * c * eta_bar))
    eta2_bar = K.solve(beta * beta, rhs2) if beta != 0.0 else rhs2
    eta2 = a * a + 2.0 * a * q1 + K.step(c * c + 2.0 * beta * c * eta_bar + beta * beta * eta2_bar)
    Ubar = K.solve(1.0, K.avg((f + eta)[:, None] * C))
    PU = K.step(Ubar)
    PcU = K.step(c[:, None] * Ubar)
    base = (f * eta + eta2)[:, None] * C + a[:, None] * PU + PcU
    Vbar = K.solve(beta, K.avg(base)) if beta != 0.0 else K.avg(base)
    Z = a[:, None] * PU + PcU + beta * K.step(Vbar)
    Kup = nu[:, None] * (f[:, None] * PU + Z)
    Kd = nu * (f * f + 2.0 * f * eta + eta2)
    m = nu * (f + eta)
    cross = C.T @ Kup
    return C.T @ (Kd[:, None] * C) + cross + cross.T, C.T @ m


def causal_mean(K: _Killed, nu: np.ndarray, f: np.ndarray, a: np.ndarray, c: np.ndarray, beta: float) -> np.ndarray:
    r""":math:`E[\hat g_e]` of the causal family, shape (S·A,)."""
    eta_bar = K.solve(beta, K.avg(a) + K.avg(K.step(c))) if beta != 0.0 else K.avg(a + K.step(c))
    return nu * (f + a + K.step(c + beta * eta_bar))


def total_return_kernel(K: _Killed, C: np.ndarray, mu0: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``(C^T E[g_e g_e^T] C, C^T E[g_e])`` for REINFORCE, :math:`w_t = \sum_{l<L} r_l`.

    Forward (summed over t): :math:`\bar\alpha_k(x) = \sum_t E[(\sum_{l<t} r_l)^k 1\{x_t = x, t < L\}]`;
    backward (time-invariant): :math:`\omega_k(x) = E[D_t^k \mid x_t = x]` and
    :math:`Q_k = E[D_t^k \sum_{u\ge t} e_{x_u}^\top \mid s_t]C`, :math:`D_t = \sum_{t \le l < L} r_l`.
    """
    rf = r.reshape(-1).astype(np.float64)
    pi = K.pi
    a0 = K.occupancy(mu0)
    a1 = (K.solve(1.0, K.back(rf * a0), trans=True)[:, None] * pi).reshape(-1)
    a2 = (K.solve(1.0, K.back(2.0 * rf * a1 + rf * rf * a0), trans=True)[:, None] * pi).reshape(-1)
    w1_bar = K.solve(1.0, K.avg(rf))
    pw1 = K.step(w1_bar)
    w1 = rf + pw1
    w2_bar = K.solve(1.0, K.avg(rf * rf + 2.0 * rf * pw1))
    w2 = rf * rf + 2.0 * rf * pw1 + K.step(w2_bar)
    Q0 = K.solve(1.0, K.avg(C))
    N0 = K.step(Q0)
    Q1 = K.solve(1.0, K.avg(w1[:, None] * C + rf[:, None] * N0))
    PQ1 = K.step(Q1)
    N1 = rf[:, None] * N0 + PQ1
    Q2 = K.solve(1.0, K.avg(w2[:, None] * C + (rf * rf)[:, None] * N0 + 2.0 * rf[:, None] * PQ1))
    N2 = (rf * rf)[:, None] * N0 + 2.0 * rf[:, None] * PQ1 + K.step(Q2)
    Kup = a2[:, None] * N0 + 2.0 * a1[:, None] * N1 + a0[:, None] * N2
    Kd = a2 + 2.0 * a1 * w1 + a0 * w2
    m = a1 + a0 * w1
    cross = C.T @ Kup
    return C.T @ (Kd[:, None] * C) + cross + cross.T, C.T @ m


def total_return_mean(K: _Killed, mu0: np.ndarray, r: np.ndarray) -> np.ndarray:
    r""":math:`E[\hat g_e]` for REINFORCE under geometric stopping, shape (S·A,)."""
    rf = r.reshape(-1).astype(np.float64)
    a0 = K.occupancy(mu0)
    a1 = (K.solve(1.0, K.back(rf * a0), trans=True)[:, None] * K.pi).reshape(-1)
    w1 = rf + K.step(K.solve(1.0, K.avg(rf)))
    return a1 + a0 * w1


def state_cross_moments(mdp: FiniteMDP, policy: Any, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""``(c, M, Q)`` of the state-baseline quadratic under geometric stopping: shapes (n, S), (n, S), (S, A).

    :math:`c_{k,s} = E[\sum_{t<L} 1\{s_t = s\}\psi_{t,k}\,\hat g_k(0)]` and
    :math:`M_{k,s} = \nu(s) E_{a\sim\pi}[\psi_k(s, a)^2]` (ν the state occupancy) for the
    reward-to-go estimator with a stationary baseline :math:`b(s_t)` (the stationary analogue of
    :func:`pgexact.estimators.baselines` 's time-indexed moments: the steps before t by
    :math:`\bar F = (I - \gamma P_\pi^\top)^{-1}\gamma P^\top(\nu C)`, step t by
    :math:`E_a[\psi^2 Q]`, the steps after by :math:`\gamma P \bar U`).
    """
    S, A, n = mdp.n_states, mdp.n_actions, policy.n_params
    pi = policy.probs(theta)
    K = _Killed(mdp, pi)
    live = np.repeat(~np.asarray(mdp.terminal), A)
    C = policy.score(theta).reshape(S * A, n) * live[:, None]
    r = mdp.r.reshape(-1).astype(np.float64)
    Q = r + K.step(K.solve(1.0, K.avg(r)))
    PU = K.step(K.solve(1.0, K.avg(Q[:, None] * C)))
    sigma = K.state_occupancy(mdp.mu0)
    nu = (sigma[:, None] * pi).reshape(-1)
    F = K.solve(1.0, np.asarray(K.gamma * (K.P2.T @ (nu[:, None] * C))), trans=True)
    Cs, Qs, PUs = C.reshape(S, A, n), Q.reshape(S, A), PU.reshape(S, A, n)
    psi2 = np.einsum("sa,sak->sk", pi, Cs * Cs)
    psiQ = np.einsum("sa,sak->sk", pi, Cs * Qs[:, :, None])
    psi2Q = np.einsum("sa,sak->sk", pi, Cs * Cs * Qs[:, :, None])
    after = np.einsum("sa,sak->sk", pi, Cs * PUs)
    c = (sigma[:, None] * (psi2Q + after) + F * psiQ).T
    M = (sigma[:, None] * psi2).T
    return c, M, Qs


def geometric_moments(
    mdp: FiniteMDP, policy: Any, theta: np.ndarray, pi: np.ndarray, estimator: str,
    D: np.ndarray | None, *, b: Any, A: Any, V: Any, lam: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""``(mean, D Cov D^T, D E[g g^T] D^T)`` of one episode under geometric stopping (D = I if None).

    ``pi`` is ``policy.probs(theta)``; the arguments are validated by
    :func:`pgexact.estimators.estimator_moments`, which calls this.
    """
    S, nA, n = mdp.n_states, mdp.n_actions, policy.n_params
    live = np.repeat(~np.asarray(mdp.terminal), nA)
    if D is None:
        jac = policy._logit_jacobian()  # the score from pi, as SoftmaxPolicy.score computes it
        C = (jac - np.einsum("sb,sbk->sk", pi, jac)[:, None, :]).reshape(S * nA, n)
    else:
        C = np.stack([policy.score_dot(theta, v).reshape(-1) for v in D], axis=1)
    C = C * live[:, None]  # steps in terminal states are padding
    K = _Killed(mdp, pi)
    try:
        with np.errstate(over="raise", invalid="raise"):
            if estimator == "reinforce":
                second, mean_c = total_return_kernel(K, C, mdp.mu0, mdp.r)
                m = None if D is None else total_return_mean(K, mdp.mu0, mdp.r)
            else:
                f, a, c, beta = geometric_weights(mdp, estimator, b=b, A=A, V=V, lam=lam)
                nu = K.occupancy(mdp.mu0)
                second, mean_c = causal_kernel(K, C, nu, f, a, c, beta)
                m = None if D is None else causal_mean(K, nu, f, a, c, beta)
    except FloatingPointError as exc:
        raise NumericalError(
            f"the second moments of {estimator!r} under geometric stopping overflow float64 (gamma={mdp.gamma}, "
            f"max|r|={float(np.max(np.abs(mdp.r))):.3g}): rescale the rewards (and b, A, V) or lower gamma"
        ) from exc
    second = 0.5 * (second + second.T)
    cov = second - np.outer(mean_c, mean_c)
    if D is None:
        return mean_c, cov, second
    return policy.score_contract(theta, (m * live).reshape(S, nA)), cov, second
