r"""Theorems on the LQR cost's second derivatives: Hessian-vector product, policy Hessian, Newton's direction.

References are Richardson central differences (steps h and h/2, :math:`[4D(h/2) - D(h)]/3`, fourth
order) of the *first*-order closed forms :func:`pgexact.lqr.cost_gradient` and
:func:`pgexact.lqr.policy_gradient`, which solve the evaluation's Lyapunov equations and nothing
else; the second-order code (:mod:`pgexact.lqr.hessian`) solves the derivative (Stein) equations
:math:`P'[X]`, :math:`\Sigma'[X]` and never enters the reference. The first-order closed forms are
themselves checked against differences of the primal-side cost (``lqr.gradient_formula``,
``lqr.cost_gradient``).

The controls are written out here (:func:`hvp_variant`): the same Stein-equation derivation with one
plausible slip — the symmetric half of a Stein source dropped, the state term :math:`2E_K\Sigma'_K[X]`
dropped (exact only at :math:`K^*`), :math:`\Sigma'` taken as its source without solving the Stein
equation.

Instances: n <= 3 states, m <= 2 inputs (at most 6 gain entries, 8 parameters with a log-std), infinite
horizon or H in {2, 3, 5}, the random problems of :mod:`pgexact.theorems.lqr` (gain K* + Δ with
stability margin 0.9, so the Hessian is not the one at K*).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ...lqr import exact
from ...lqr import hessian as lqr_hessian
from ...lqr.gradients import _gain_error
from ..registry import identity
from ._common import _HORIZONS, LQRProblem, random_problem

__all__: list[str] = []  # the theorems are registered, not exported

RICHARDSON_H = 1e-4


def _args(p: LQRProblem) -> tuple:
    return p.lqr, p.policy.gain(p.theta), p.policy.action_cov(p.theta)


def _instance(rng: np.random.Generator) -> LQRProblem:
    return random_problem(rng, n=int(rng.integers(1, 4)), m=int(rng.integers(1, 3)),
                          horizon=_HORIZONS[int(rng.integers(len(_HORIZONS)))])


@dataclass(frozen=True, eq=False)
class DirectionProblem:
    """A problem and a direction X (m, n) in gain space (hashable by identity, so references are cached)."""

    p: LQRProblem
    X: np.ndarray

    def __iter__(self):  # unpacks as (p, X)
        return iter((self.p, self.X))


def _instance_dir(rng: np.random.Generator) -> DirectionProblem:
    p = _instance(rng)
    return DirectionProblem(p, rng.standard_normal((p.policy.n_actions, p.policy.n_states)))


def _instance_logstd(rng: np.random.Generator) -> LQRProblem:
    return random_problem(rng, n=int(rng.integers(1, 4)), m=int(rng.integers(1, 3)), learn_log_std=True,
                          horizon=_HORIZONS[int(rng.integers(len(_HORIZONS)))])


def richardson(f, x: np.ndarray, v: np.ndarray, h: float = RICHARDSON_H) -> np.ndarray:
    """Derivative of ``f`` at ``x`` along ``v`` by Richardson-extrapolated central differences (4th order)."""
    def d(s: float) -> np.ndarray:
        return (np.asarray(f(x + s * v)) - np.asarray(f(x - s * v))) / (2 * s)
    return (4 * d(h / 2) - d(h)) / 3


@functools.lru_cache(maxsize=16)
def _cost_scale(p: LQRProblem) -> float:
    return abs(exact.evaluate(*_args(p)).cost)


# ----------------------------------------------------------------------------- mutants, written out
def hvp_variant(p: LQRProblem, X: np.ndarray, *, p_symmetric: bool = True, sigma_symmetric: bool = True,
                state_term: bool = True, sigma_stein: bool = True, p_term: bool = True) -> np.ndarray:
    r""":math:`\nabla^2C(K)[X]` by the Stein-equation derivation (module docstring of
    :mod:`pgexact.lqr.hessian`), with optional slips (the controls): ``p_symmetric=False`` keeps only
    :math:`X^\top E_K` of the source of :math:`P'`; ``sigma_symmetric=False`` keeps only
    :math:`BX\Sigma A_K^\top` of the source of :math:`\Sigma'`; ``state_term=False`` drops
    :math:`2E_K\Sigma'`; ``sigma_stein=False`` takes :math:`\Sigma'` as its source (no propagation);
    ``p_term=False`` drops :math:`\gamma B^\top P'A_K` (with ``state_term=False``: Gauss-Newton's
    :math:`2(R + \gamma B^\top P_KB)X\Sigma_K`)."""
    lqr, K, Su = _args(p)
    ev = exact.evaluate(lqr, K, Su)
    A, B, R, g = lqr.A, lqr.B, lqr.R, lqr.gamma
    AK = A - B @ K
    E = _gain_error(ev)
    ps = 1.0 if p_symmetric else 0.0
    ss = 1.0 if sigma_symmetric else 0.0
    st = 1.0 if state_term else 0.0
    pt = 1.0 if p_term else 0.0
    if lqr.horizon is None:
        Sig, P = ev.Sigma, ev.P
        qp = X.T @ E + ps * E.T @ X
        BXSA = B @ X @ Sig @ AK.T
        qs = -g * (BXSA + ss * BXSA.T)
        dP = scipy.linalg.solve_discrete_lyapunov(np.sqrt(g) * AK.T, qp)
        dS = scipy.linalg.solve_discrete_lyapunov(np.sqrt(g) * AK, qs) if sigma_stein else qs
        return 2.0 * (((R + g * B.T @ P @ B) @ X - pt * g * B.T @ dP @ AK) @ Sig + st * E @ dS)
    H, n = lqr.horizon, lqr.n_states
    dPs = [np.zeros((n, n))] * (H + 1)
    for t in range(H - 1, -1, -1):
        dPs[t] = g * AK.T @ dPs[t + 1] @ AK + X.T @ E[t] + ps * E[t].T @ X
    out, dS = np.zeros_like(X), np.zeros((n, n))
    for t in range(H):
        Pn = ev.P[t + 1] if t + 1 < H else np.zeros((n, n))
        dE = (R + g * B.T @ Pn @ B) @ X - pt * g * B.T @ dPs[t + 1] @ AK
        out += 2.0 * g**t * (dE @ ev.S[t] + st * E[t] @ dS)
        BXSA = B @ X @ ev.S[t] @ AK.T
        src = -(BXSA + ss * BXSA.T)
        dS = (AK @ dS @ AK.T if sigma_stein else 0.0) + src
    return out


# ----------------------------------------------------------------------------- Hessian-vector product
@functools.lru_cache(maxsize=16)
def _hvp_fd(inst: DirectionProblem) -> np.ndarray:
    p, X = inst
    lqr, K, Su = _args(p)
    return richardson(lambda k: exact.cost_gradient(lqr, k, Su), K, X)


def _hvp_scale(inst: DirectionProblem) -> float:
    """max(max|reference|, 1e-3 C |X|_max): residuals are relative to it."""
    p, X = inst
    return max(float(np.max(np.abs(_hvp_fd(inst)))), 1e-3 * _cost_scale(p) * float(np.max(np.abs(X))))


def _scaled(inst, H: np.ndarray) -> np.ndarray:
    return H / _hvp_scale(inst)


HESS_REASON = (
    "Richardson central differences of the exact gradient, h = 1e-4 and 5e-5: truncation O(h^4 C^(5)) and "
    "rounding O(eps |grad C| / h) ~ 1e-12 of the Hessian's scale at stability margin 0.9"
)

identity(
    id="lqr.hessian_vector_product",
    statement=r"\nabla^2 C(K)[X] = 2\big[(R+\gamma B^\top P_KB)X - \gamma B^\top P'_K[X]A_K\big]\Sigma_K + "
              r"2E_K\Sigma'_K[X],\ P' = \gamma A_K^\top P'A_K + X^\top E_K + E_K^\top X,\ "
              r"\Sigma' = \gamma A_K\Sigma'A_K^\top - \gamma(BX\Sigma_KA_K^\top + A_K\Sigma_KX^\top B^\top)",
    source="Bu, Mesbahi, Fazel & Mesbahi 2019, 'LQR through the lens of first order methods: discrete-time case', "
           "arXiv:1907.08921 (with discount, noise and cross cost; derivation in pgexact.lqr.hessian)",
    reference="Richardson central differences (h = 1e-4, 5e-5) along the random direction X of the exact gradient "
              "pgexact.lqr.cost_gradient (the evaluation's Lyapunov solves, not the Stein derivative equations)",
    instance=_instance_dir,
    computed=lambda inst: _scaled(inst, lqr_hessian.cost_hessian_vector_product(
        inst.p.lqr, inst.p.policy.gain(inst.p.theta), inst.X, noise_cov=inst.p.policy.action_cov(inst.p.theta))),
    expected=lambda inst: _scaled(inst, _hvp_fd(inst)),
    tolerance=5e-9,
    tolerance_reason=HESS_REASON + "; residuals relative to max(|reference|, 1e-3 C |X|); measured up to 4.5e-11 "
    "over 200 instances (seed 1), so 5e-9 leaves a margin of ~110",
    mutants={
        "symmetric half E_K^T X dropped from the source of P'": lambda inst: _scaled(
            inst, hvp_variant(*inst, p_symmetric=False)),
        "symmetric half A_K Sigma_K X^T B^T dropped from the source of Sigma'": lambda inst: _scaled(
            inst, hvp_variant(*inst, sigma_symmetric=False)),
        "state term 2 E_K Sigma'_K[X] dropped (exact only at K*)": lambda inst: _scaled(
            inst, hvp_variant(*inst, state_term=False)),
    },
    default_instances=3,
)


# ----------------------------------------------------------------------------- policy Hessian
@functools.lru_cache(maxsize=16)
def _ph_fd(p: LQRProblem) -> np.ndarray:
    """Columns: Richardson differences of pgexact.lqr.policy_gradient along each parameter."""
    eye = np.eye(p.policy.n_params)
    cols = [richardson(lambda th: exact.policy_gradient(p.lqr, p.policy, th), p.theta, e) for e in eye]
    return np.stack(cols, axis=1)


def _ph_blocks(p: LQRProblem, H: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gain, cross, log-std) blocks, each over its own reference scale (floored at 1e-3 of the largest)."""
    ref = _ph_fd(p)
    k = p.policy.n_gain
    blocks = lambda M: (M[:k, :k], M[:k, k:], M[k:, k:])  # noqa: E731
    top = max(float(np.max(np.abs(ref))), 1e-3 * _cost_scale(p))
    scales = [max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-3 * top) for b in blocks(ref)]
    return tuple(b / s for b, s in zip(blocks(H), scales))


def _ph_with(p: LQRProblem, *, sign: float = -1.0, cross: float = 1.0, diag: float = 1.0) -> np.ndarray:
    """-(cost Hessian) with one mistake in its assembly (controls)."""
    H = -lqr_hessian.policy_hessian(p.lqr, p.policy, p.theta)  # the cost's
    k = p.policy.n_gain
    H[:k, k:] *= cross
    H[k:, :k] *= cross
    H[k:, k:] *= diag
    return sign * H


identity(
    id="lqr.policy_hessian",
    statement=r"\nabla^2_\theta J = -\begin{pmatrix}\nabla^2_KC & \partial_\ell\nabla_KC\\ \cdot & "
              r"\mathrm{diag}(4e^{2\ell_i}G_{ii})\end{pmatrix},\ G = \partial C/\partial\Sigma_u,\ "
              r"\partial^2C/\partial\ell_i\partial K[X] = 2e^{2\ell_i}(\tfrac{\gamma}{1-\gamma}B^\top P'_K[X]B)_{ii}",
    source="pgexact.lqr.hessian (C is affine in Sigma_u = diag(e^{2 l}) with slope G; Bu et al. 2019 for the gain "
           "block)",
    reference="Richardson central differences (h = 1e-4, 5e-5) of the exact policy gradient pgexact.lqr.policy_gradient "
              "along every parameter (learned log-std policies)",
    instance=_instance_logstd,
    computed=lambda p: _ph_blocks(p, lqr_hessian.policy_hessian(p.lqr, p.policy, p.theta)),
    expected=lambda p: _ph_blocks(p, _ph_fd(p)),
    tolerance=1.5e-7,
    tolerance_reason=HESS_REASON + "; each block (gain, cross, log-std) relative to its own scale (floored at 1e-3 "
    "of the largest), which magnifies the small cross block's rounding: measured up to 1.4e-9 over 200 instances "
    "(seed 1), so 1.5e-7 leaves a margin of ~110",
    mutants={
        "the cost's Hessian (sign of J = -C dropped)": lambda p: _ph_blocks(p, _ph_with(p, sign=1.0)),
        "cross block d/dl grad_K C dropped": lambda p: _ph_blocks(p, _ph_with(p, cross=0.0)),
        "log-std diagonal 2 e^{2l} G instead of 4 e^{2l} G (d/dl of e^{2l} taken as e^{2l})": lambda p: _ph_blocks(
            p, _ph_with(p, diag=0.5)),
    },
    default_instances=2,
)


# ----------------------------------------------------------------------------- Newton direction
@functools.lru_cache(maxsize=16)
def _fd_hessian(p: LQRProblem) -> np.ndarray:
    lqr, K, Su = _args(p)
    m, n = K.shape
    cols = [richardson(lambda k: exact.cost_gradient(lqr, k, Su), K, E).reshape(-1)
            for E in np.eye(m * n).reshape(m * n, m, n)]
    return np.stack(cols, axis=1)


def _newton_residual(p: LQRProblem, D: np.ndarray) -> np.ndarray:
    """H_fd vec(D), over max|grad C|: equals -vec(grad C) / max|grad C| for Newton's direction."""
    lqr, K, Su = _args(p)
    g = exact.cost_gradient(lqr, K, Su)
    return _fd_hessian(p) @ D.reshape(-1) / float(np.max(np.abs(g)))


def _newton_expected(p: LQRProblem) -> np.ndarray:
    lqr, K, Su = _args(p)
    g = exact.cost_gradient(lqr, K, Su).reshape(-1)
    return -g / float(np.max(np.abs(g)))


def _newton(p: LQRProblem) -> np.ndarray:
    lqr, K, Su = _args(p)
    return lqr_hessian.newton_direction(lqr, K, noise_cov=Su)


def _newton_with(p: LQRProblem, **slips: bool) -> np.ndarray:
    """-H^{-1} grad C with the Hessian of :func:`hvp_variant` (one slip)."""
    lqr, K, Su = _args(p)
    m, n = K.shape
    H = np.stack([hvp_variant(p, E, **slips).reshape(-1) for E in np.eye(m * n).reshape(m * n, m, n)], axis=1)
    return -np.linalg.solve(0.5 * (H + H.T), exact.cost_gradient(lqr, K, Su).reshape(-1)).reshape(K.shape)


identity(
    id="lqr.newton_direction",
    statement=r"\nabla^2C(K)[D] = -\nabla_KC(K)\ \text{for } D = \text{newton\_direction}(K)",
    source="Nocedal & Wright 2006, sec. 3.3 (Newton's direction); Bu, Mesbahi, Fazel & Mesbahi 2019 (the LQR "
           "cost's Hessian)",
    reference="the Hessian by Richardson central differences (h = 1e-4, 5e-5) of pgexact.lqr.cost_gradient, column by "
              "column, applied to D, against -cost_gradient",
    instance=_instance,
    computed=lambda p: _newton_residual(p, _newton(p)),
    expected=_newton_expected,
    tolerance=5e-9,
    tolerance_reason=HESS_REASON + ", times |D| / |grad C| (at most cond(H)); residual relative to max|grad C|; "
    "measured up to 4.3e-11 over 200 instances (seed 1), so 5e-9 leaves a margin of ~115",
    mutants={
        "ascent direction (+H^{-1} grad C)": lambda p: _newton_residual(p, -_newton(p)),
        "Hessian without the state term 2 E_K Sigma'_K": lambda p: _newton_residual(
            p, _newton_with(p, state_term=False)),
        "Gauss-Newton step (the P' and Sigma' terms of the Hessian dropped)": lambda p: _newton_residual(
            p, _newton_with(p, state_term=False, p_term=False)),
    },
    default_instances=2,
)
