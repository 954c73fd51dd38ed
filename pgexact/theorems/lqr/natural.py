r"""Theorems on the LQR Fisher matrix and natural gradient (fixed or learned log-std).

Both are checked against the *definition*: the expected outer product of the Gaussian score
:math:`E_{x\sim d,\,u\sim\pi}[\nabla_\theta\log\pi\,\nabla_\theta\log\pi^\top]`, integrated exactly here
from the policy's own score (:meth:`pgexact.LinearGaussian.score`) at cubature points, with the
normalized discounted state distribution's second moment :math:`X` computed from the model's
matrices alone (Kronecker-vectorized Lyapunov solve, or the forward second-moment recursion for a
finite horizon). Nothing of :mod:`pgexact.lqr.gradients` (which forms :math:`\Sigma_u^{-1}\otimes X`
and the block :math:`2I` in closed form) is used on the reference side.

**Cubature.** The score is linear in x for the gain block and free of x for the log-std block, and
a polynomial of degree at most 2 in :math:`e = u - \mu(x)` per factor, so every entry of the outer
product has degree at most 2 in x and at most 4 in e. The points :math:`x = \pm\sqrt n L_{:,k}`
(weights :math:`1/(2n)`, :math:`LL^\top = X`) integrate degree <= 3 in x exactly (odd moments
vanish, second moment X), and the tensor Gauss-Hermite rule with 3 nodes per whitened action
coordinate integrates degree <= 5 in e exactly. The reference is therefore exact up to rounding.
"""

from __future__ import annotations

import functools

import numpy as np

from ...lqr import LinearGaussian, exact
from ..registry import identity
from ._common import _HORIZONS, FD_REASON, FD_TOL, LQRProblem, _fd, _scale, random_problem

__all__: list[str] = []  # the theorems are registered, not exported


def _instance(rng: np.random.Generator) -> LQRProblem:
    """A random problem (n <= 3, m <= 2) with a learned diagonal log-std (distinct sigmas) or a
    fixed, correlated action covariance, infinite or finite horizon."""
    n, m = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    p = random_problem(rng, n=n, m=m, learn_log_std=True, horizon=_HORIZONS[int(rng.integers(len(_HORIZONS)))])
    return p


def _fixed_noise_instance(rng: np.random.Generator) -> LQRProblem:
    """As :func:`_instance` but with a fixed correlated action covariance (no log-std block)."""
    p = _instance(rng)
    m, n = p.policy.n_actions, p.policy.n_states
    G = rng.standard_normal((m, m))
    Su = 0.2 * np.eye(m) + 0.3 * G @ G.T / m
    pol = LinearGaussian(n, m, noise_cov=Su)
    return LQRProblem(p.lqr, pol, pol.params(p.policy.gain(p.theta)))


def state_moment(p: LQRProblem, *, policy_noise: bool = True) -> np.ndarray:
    r""":math:`X = E_{x\sim d}[xx^\top]` of the normalized discounted state distribution, from the model's
    matrices: infinite horizon :math:`(1-\gamma)\Sigma_K` with :math:`\mathrm{vec}\,\Sigma_K` from one dense
    solve of :math:`I - \gamma A_K\otimes A_K`; finite horizon :math:`\sum_t\gamma^tS_t/\sum_t\gamma^t` with
    :math:`S_{t+1} = A_KS_tA_K^\top + W + B\Sigma_uB^\top`. ``policy_noise=False`` leaves
    :math:`B\Sigma_uB^\top` out (a control: Sigma_K of the wrong noise)."""
    lqr, pol, th = p.lqr, p.policy, p.theta
    K, Su = pol.gain(th), pol.action_cov(th)
    n = lqr.n_states
    AK = lqr.A - lqr.B @ K
    WK = lqr.noise_cov + (lqr.B @ Su @ lqr.B.T if policy_noise else 0.0)
    g = lqr.gamma
    if lqr.horizon is None:
        M = np.eye(n * n) - g * (AK[:, None, :, None] * AK[None, :, None, :]).reshape(n * n, n * n)
        Sig = np.linalg.solve(M, (lqr.Sigma0 + g / (1.0 - g) * WK).reshape(-1)).reshape(n, n)
        X = (1.0 - g) * Sig
    else:
        S, X, mass = np.array(lqr.Sigma0), np.zeros((n, n)), 0.0
        for t in range(lqr.horizon):
            X += g**t * S
            mass += g**t
            S = AK @ S @ AK.T + WK
        X = X / mass
    return 0.5 * (X + X.T)


def _factor(M: np.ndarray) -> np.ndarray:
    lam, V = np.linalg.eigh(M)
    return V * np.sqrt(np.clip(lam, 0.0, None))


@functools.lru_cache(maxsize=16)
def reference_fisher(p: LQRProblem) -> np.ndarray:
    """The score's expected outer product by exact cubature (module docstring)."""
    pol, th = p.policy, p.theta
    n, m = pol.n_states, pol.n_actions
    L = _factor(state_moment(p))
    Xs = np.sqrt(n) * np.concatenate([L.T, -L.T])  # 2n state points, weight 1/(2n) each
    nodes, weights = np.polynomial.hermite_e.hermegauss(3)  # probabilists': weight exp(-z^2/2)
    weights = weights / weights.sum()
    grids = np.meshgrid(*([nodes] * m), indexing="ij")
    Z = np.stack([g.reshape(-1) for g in grids], axis=1)  # (3^m, m)
    wz = np.prod(np.stack(np.meshgrid(*([weights] * m), indexing="ij")).reshape(m, -1), axis=0)
    E = Z @ _factor(pol.action_cov(th)).T  # action offsets e = M z, M M^T = Sigma_u
    X = np.repeat(Xs, E.shape[0], axis=0)
    U = np.repeat(pol.mean(th, Xs), E.shape[0], axis=0) + np.tile(E, (Xs.shape[0], 1))
    w = np.tile(wz, Xs.shape[0]) / Xs.shape[0]
    s = pol.score(th, X, U)
    F = np.einsum("k,ki,kj->ij", w, s, s)
    return 0.5 * (F + F.T)


def _blocks(p: LQRProblem, F: np.ndarray) -> tuple[np.ndarray, ...]:
    """(gain block, cross block, log-std block) of a Fisher matrix (the last two empty without a log-std)."""
    k = p.policy.n_gain
    return F[:k, :k], F[:k, k:], F[k:, k:]


def _fisher_scaled(p: LQRProblem, F: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each block over the reference's block scale (the gain block's entries scale with X, the log-std
    block is O(1)): a block-wise relative error, so a mistake in the small block is not hidden."""
    ref = _blocks(p, reference_fisher(p))
    kk = max(float(np.max(np.abs(ref[0]))), 1e-300)
    ll = max(float(np.max(np.abs(ref[2]))), 1.0) if ref[2].size else 1.0
    b = _blocks(p, F)
    return b[0] / kk, b[1] / np.sqrt(kk * ll), b[2] / ll


def _fisher_with(p: LQRProblem, *, log_std_block: float = 2.0, policy_noise: bool = True,
                 normalized: bool = True, order: str = "sigma-x") -> np.ndarray:
    """The closed form with one mistake (controls)."""
    Su = p.policy.action_cov(p.theta)
    X = state_moment(p, policy_noise=policy_noise)
    if not normalized:
        g = p.lqr.gamma
        X = X / (1.0 - g) if p.lqr.horizon is None else X * float(np.sum(g ** np.arange(p.lqr.horizon)))
    Si = np.linalg.inv(Su)
    FK = np.kron(Si, X) if order == "sigma-x" else np.kron(X, Si)
    if not p.policy.learn_log_std:
        return FK
    F = np.zeros((p.policy.n_params,) * 2)
    F[: p.policy.n_gain, : p.policy.n_gain] = FK
    F[p.policy.n_gain:, p.policy.n_gain:] = log_std_block * np.eye(p.policy.n_actions)
    return F


FISHER_TOL = 1e-12
FISHER_REASON = (
    "both sides are exact: a sum of at most 2n 3^m = 54 outer products of O(1)-scaled scores against one "
    "Kronecker product; rounding ~1e-15 relative per block (after the block scaling); the measured residuals "
    "are at most 2.7e-15 over 200 instances of each Fisher theorem (seed 1), so 1e-12 leaves a margin of ~370 "
    "and still rejects a relative mistake of 1e-10"
)

identity(
    id="lqr.fisher_score_outer",
    statement=r"F = E_{x\sim d,\,u\sim\pi}[\nabla_\theta\log\pi\,\nabla_\theta\log\pi^\top] = "
              r"\begin{pmatrix}\Sigma_u^{-1}\otimes X & 0\\ 0 & 2I_m\end{pmatrix},\ X = E_{x\sim d}[xx^\top] = "
              r"\Sigma_K/\textstyle\sum_t\gamma^t",
    source="Kakade 2002, 'A natural policy gradient', sec. 3 (the state-averaged Fisher); Gaussian moments "
           "E[e e^T] = Sigma_u, Var((e_i/sigma_i)^2) = 2; course notes 'Advanced Policy Gradients', section "
           "'Natural Policy Gradient'",
    reference="expected outer product of LinearGaussian.score, integrated exactly by symmetric state points "
              "(second moment from a Kronecker-vectorized Lyapunov solve or the forward recursion of the model's "
              "matrices) times a 3-node Gauss-Hermite rule per whitened action coordinate",
    instance=_instance,
    computed=lambda p: _fisher_scaled(p, exact.fisher(p.lqr, p.policy, p.theta)),
    expected=lambda p: _fisher_scaled(p, reference_fisher(p)),
    tolerance=FISHER_TOL,
    tolerance_reason=FISHER_REASON,
    mutants={
        "log-std block I instead of 2I (Var of (e/sigma)^2 taken as 1)":
            lambda p: _fisher_scaled(p, _fisher_with(p, log_std_block=1.0)),
        "log-std block missing (the Fisher of the gain only, padded with 0)":
            lambda p: _fisher_scaled(p, _fisher_with(p, log_std_block=0.0)),
        "Sigma_K without the policy noise B Sigma_u B^T": lambda p: _fisher_scaled(p, _fisher_with(p, policy_noise=False)),
        "unnormalized Sigma_K for the state second moment": lambda p: _fisher_scaled(p, _fisher_with(p, normalized=False)),
    },
    default_instances=4,
)


identity(
    id="lqr.fisher_fixed_noise",
    statement=r"F = \Sigma_u^{-1}\otimes X\ \text{for a fixed, correlated } \Sigma_u\ (\text{row-major vec } K)",
    source="Kakade 2002, sec. 3; the Gaussian score -Sigma_u^{-1}(u - mu) x^T: course notes 'Policy Gradient', section "
           "'Policy Gradient in Continuous Action Space'",
    reference="expected outer product of LinearGaussian.score by exact cubature (as lqr.fisher_score_outer)",
    instance=_fixed_noise_instance,
    computed=lambda p: _fisher_scaled(p, exact.fisher(p.lqr, p.policy, p.theta)),
    expected=lambda p: _fisher_scaled(p, reference_fisher(p)),
    tolerance=FISHER_TOL,
    tolerance_reason=FISHER_REASON,
    mutants={
        "Sigma_u instead of Sigma_u^{-1}": lambda p: _fisher_scaled(
            p, np.kron(p.policy.action_cov(p.theta), state_moment(p))),
        "Sigma_K without the policy noise B Sigma_u B^T": lambda p: _fisher_scaled(p, _fisher_with(p, policy_noise=False)),
    },
    default_instances=3,
)


# ----------------------------------------------------------------------------- natural gradient
def _ng_residual(p: LQRProblem, ng: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F_ref ng against the finite-difference gradient, gain and log-std blocks each over its own scale."""
    k = p.policy.n_gain
    Fng = reference_fisher(p) @ ng
    return Fng[:k] / _scale(p), Fng[k:] / _block_scale(p)


def _block_scale(p: LQRProblem) -> float:
    """The log-std block's scale: max(|d J/d log sigma|, 1e-3 of the gain block's scale)."""
    fd = _fd(p)[p.policy.n_gain:]
    return max(float(np.max(np.abs(fd))) if fd.size else 0.0, 1e-3 * _scale(p))


def _ng_expected(p: LQRProblem) -> tuple[np.ndarray, np.ndarray]:
    k = p.policy.n_gain
    fd = _fd(p)
    return fd[:k] / _scale(p), fd[k:] / _block_scale(p)


def _ng_with(p: LQRProblem, *, halve: float = 0.5, policy_noise: bool = True, log_std: bool = True) -> np.ndarray:
    """The block formula with one mistake (controls): ng_K = Sigma_u grad_K J X^{-1}, ng_l = grad_l J / 2."""
    pol, th = p.policy, p.theta
    g = exact.policy_gradient(p.lqr, pol, th)
    m, n = pol.n_actions, pol.n_states
    X = state_moment(p, policy_noise=policy_noise)
    gK = pol.action_cov(th) @ np.linalg.solve(X.T, g[: pol.n_gain].reshape(m, n).T).T
    gl = halve * g[pol.n_gain:] if log_std else np.zeros(m)
    return np.concatenate([gK.reshape(-1), gl])


identity(
    id="lqr.natural_gradient_solves",
    statement=r"F\,\tilde\nabla J = \nabla J,\quad \tilde\nabla_K J = \Sigma_u\nabla_KJ\,X^{-1},\ "
              r"\tilde\nabla_\ell J = \tfrac12\nabla_\ell J",
    source="Kakade 2002, sec. 3 (natural gradient F^{-1} grad J); Fazel et al. 2018, sec. 4 (the LQR natural "
           "gradient, here with a learned log-std)",
    reference="the cubature Fisher of lqr.fisher_score_outer applied to pgexact's natural gradient, against 4th-order "
              "central differences of the primal-side cost (Kronecker-vectorized Lyapunov solve or forward recursion)",
    instance=_instance,
    computed=lambda p: _ng_residual(p, exact.natural_gradient(p.lqr, p.policy, p.theta)),
    expected=_ng_expected,
    tolerance=FD_TOL,
    tolerance_reason=FD_REASON + "; the log-std block is relative to its own scale (>= 1e-3 of the gain block's)",
    mutants={
        "log-std block not halved (F_ll taken as I)": lambda p: _ng_residual(p, _ng_with(p, halve=1.0)),
        "log-std block missing (natural gradient of the gain only)": lambda p: _ng_residual(p, _ng_with(p, log_std=False)),
        "Sigma_K without the policy noise B Sigma_u B^T": lambda p: _ng_residual(p, _ng_with(p, policy_noise=False)),
    },
    default_instances=3,
)
