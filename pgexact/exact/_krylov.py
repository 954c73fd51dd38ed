r"""Iterative solves of the discounted Bellman systems for sparse MDPs.

For a :class:`~pgexact.FiniteMDP` whose ``P`` is a ``scipy.sparse`` matrix of shape (S*A, S)
the two systems of discounted evaluation,

.. math::

    M V = r_\pi, \qquad M^\top \rho = \mu_0, \qquad M = I - \gamma P_\pi,

are solved to the caller's relative residual ``tol`` by a chain of methods, each stopped as soon
as it stops making progress, the next one starting from the best iterate so far:

1. BiCGSTAB (van der Vorst 1992, Algorithm 3.1) with a shadow residual that is *not* ``r0``:
   with the usual choice :math:`\hat r = r_0` the adjoint system with a uniform :math:`\mu_0`
   breaks down at once, because :math:`\mathbf 1` is a left eigenvector of :math:`M^\top`
   (:math:`\mathbf 1^\top M^\top = (1-\gamma)\mathbf 1^\top`) and the bi-orthogonal Lanczos
   process behind BiCGSTAB then ends after one step. The shadow residual is
   :math:`r_0/\|r_0\| + w/\|w\|` with ``w`` a fixed, deterministic Weyl sequence (no random
   number is drawn); a breakdown, or a recurrence residual that has drifted from the true one,
   restarts it from its iterate with another sequence (twice at most, and only after a run that
   reduced the residual tenfold).
2. LGMRES (Baker, Jessup & Manteuffel 2005; ``scipy.sparse.linalg.lgmres``), whose residual
   never increases, with an inner basis of up to 100 vectors (at most about 1 GB).
3. The Richardson (fixed-point) iteration :math:`x \leftarrow b + \gamma P_\pi x` (for ``V``) or
   :math:`x \leftarrow b + \gamma P_\pi^\top x` (for ``rho``), which cannot fail: its error
   contracts by :math:`\gamma` per step in the :math:`\infty`-norm (``V``) or the 1-norm
   (``rho``), because :math:`P_\pi` is stochastic. It reaches the relative 2-norm residual
   ``tol`` within :math:`\lceil \log(\mathrm{tol}/\sqrt S) / \log \gamma \rceil` steps (norm
   equivalence), a count known before it starts (refused when that count times nnz exceeds
   2e11, minutes of work: the error then says so).

Progress test: a Krylov method that does not halve its best residual within
:math:`\max(400, 2/(1-\gamma))` matrix-vector products (two discount horizons: information
travels one transition per product, so shorter plateaus are normal), or whose residual is
non-finite or exceeds :math:`10^{8}` times its best, is stopped and handed over to the next
method; a BiCGSTAB breakdown is detected at the step it happens. The *achieved* relative residual
:math:`\|b - M x\|_2 / \|b\|_2` is recomputed explicitly (not a recurrence estimate) and
reported; ``tol`` below what rounding allows raises :class:`~pgexact.errors.NumericalError`.
The solve runs with BLAS limited to one thread (``threadpoolctl``): its vector operations are
memory-bound, and threaded level-1 BLAS spins and collapses when the cores are shared.

Error bound: :math:`M^{-1} = \sum_t \gamma^t P_\pi^t` is nonnegative with row sums
:math:`1/(1-\gamma)`, so :math:`\|M^{-1}\|_\infty = \|M^{-\top}\|_1 = 1/(1-\gamma)` and
:math:`\|M^{-1}\|_2, \|M^{-\top}\|_2 \le \sqrt{S}/(1-\gamma)`; a relative residual ``tol``
therefore bounds the error by :math:`\|\delta x\|_2 \le \sqrt{S}\,\mathrm{tol}\,\|b\|_2/(1-\gamma)`.

Measured on a 1000 x 1000 slippery gridworld (gamma = 0.99, random rewards, uniform mu0,
random softmax policy, ``benchmarks/bench_sparse.py``): BiCGSTAB with this shadow residual
converges on both systems in about 200 iterations (two products each); LGMRES and GMRES need
about as many products but cost 2-4x more per product (orthogonalization). At 300 x 300 with
gamma = 0.999 BiCGSTAB breaks down after 250-450 iterations, and its restarts from the iterate
reached converge (1,400-1,800 products per system, against about 24,000 for the fixed-point
iteration). Jacobi and ILU preconditioning did not pay (the diagonal of :math:`M` is nearly constant; ILU at 300 x 300
saved 4 of 79 iterations at 10x the time), nor does Gauss-Seidel (one triangular solve costs
about 15 products at S = 1e6).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from scipy.linalg.blas import daxpy, ddot, dscal

try:  # scipy's CSR kernel y += A x, to multiply into a preallocated vector
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
except ImportError:  # pragma: no cover - private API moved: fall back to M @ x
    _csr_matvec = None

from .._validation import _is_real
from ..errors import NumericalError
from ..models.finite_mdp import FiniteMDP, _sparse_policy_transition

__all__ = ["DEFAULT_SPARSE_TOL", "check_tol", "sparse_discounted_solve", "krylov_solve"]

#: Default relative residual of the Krylov solves (sparse MDPs).
DEFAULT_SPARSE_TOL = 1e-10

#: Progress test: over a window of max(_WINDOW, 2 / (1 - gamma)) matrix-vector products a Krylov
#: method must at least halve its best residual.
_WINDOW = 400
#: A residual this many times the best one so far counts as divergence.
_DIVERGED = 1e8
#: BiCGSTAB runs (each with its own shadow residual) before LGMRES takes over.
_BICGSTAB_RUNS = 3
#: Weyl-sequence multipliers of the shadow residuals (fractional parts of irrationals).
_WEYL = (0.6180339887498949, 0.4142135623730951, 0.7320508075688772)
#: Memory for the LGMRES inner basis (bytes).
_LGMRES_BASIS_BYTES = 10**9
#: The Richardson fallback is refused above this many stored-entry updates (minutes).
_MAX_RICHARDSON_WORK = 2e11

_CONTROLLER: Any = None


def _one_blas_thread() -> Any:
    """Context manager limiting BLAS to one thread (a no-op without ``threadpoolctl``)."""
    global _CONTROLLER
    try:
        if _CONTROLLER is None:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        return _CONTROLLER.limit(limits=1, user_api="blas")
    except ImportError:  # pragma: no cover - threadpoolctl is a runtime dependency
        import contextlib

        return contextlib.nullcontext()


def check_tol(tol: Any) -> float:
    """``tol`` as a float in (0, 1); ``None`` gives :data:`DEFAULT_SPARSE_TOL`."""
    if tol is None:
        return DEFAULT_SPARSE_TOL
    if not _is_real(tol):
        raise TypeError(f"tol must be a real number in (0, 1) (a relative residual), got {tol!r}")
    t = float(tol)
    if not (0.0 < t < 1.0):
        raise ValueError(f"tol is {t}, expected a relative residual 0 < tol < 1")
    return t


class _Solve:
    """Bookkeeping of one solve: the best iterate, its true residual, products used."""

    def __init__(self, M: Any, b: np.ndarray, gamma: float) -> None:
        self.M, self.b, self.gamma = M, b, gamma
        self.bnorm = float(np.linalg.norm(b))
        self.best = np.zeros_like(b)
        self.best_res = 1.0
        self.products = 0
        self.log: list[str] = []

    def residual(self, x: np.ndarray) -> float:
        self.products += 1
        r = self.b - self.M @ x
        return float(np.linalg.norm(r)) / self.bnorm

    def offer(self, x: np.ndarray, res: float | None = None) -> float:
        """Record ``x`` if its recomputed residual beats the best; return that residual."""
        if not np.all(np.isfinite(x)):
            return math.inf
        res = self.residual(x) if res is None else res
        if res < self.best_res:
            self.best, self.best_res = x.copy(), res
        return res

    def window(self) -> int:
        """Products over which a Krylov method must halve its residual (see ``_WINDOW``)."""
        return int(max(_WINDOW, 2.0 / max(1.0 - self.gamma, 1e-12)))


def _weyl(n: int, alpha: float) -> np.ndarray:
    w = np.arange(1, n + 1, dtype=float) * alpha
    return w - np.floor(w) - 0.5


def _norm(x: np.ndarray) -> float:
    return math.sqrt(float(ddot(x, x)))


def _matvec_into(M: Any, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[:] = M @ x`` without allocating (CSR with sorted rows: scipy's kernel), else ``M @ x``."""
    if isinstance(M, (scipy.sparse.csr_array, scipy.sparse.csr_matrix)) and _csr_matvec is not None:
        out.fill(0.0)
        try:
            _csr_matvec(M.shape[0], M.shape[1], M.indptr, M.indices, M.data, x, out)
            return out
        except (TypeError, ValueError):  # index or value types the kernel does not take
            pass
    out[:] = M @ x
    return out


def _bicgstab(sv: _Solve, tol: float, alpha: float, max_iter: int) -> str:
    """One BiCGSTAB run from ``sv.best``; returns why it stopped.

    The vector updates are in-place BLAS calls (no temporaries): the loop is memory-bound.
    """
    M, b, bnorm = sv.M, sv.b, sv.bnorm
    x = sv.best.copy()
    r = b - M @ x
    sv.products += 1
    rnorm = _norm(r)
    if rnorm <= tol * bnorm:
        return "converged"
    w = _weyl(b.shape[0], alpha)
    shadow = r / rnorm
    daxpy(w, shadow, a=1.0 / _norm(w))
    del w
    snorm = _norm(shadow)
    p = np.zeros_like(b)
    v = np.zeros_like(b)
    t = np.empty_like(b)
    rho_old = alpha_k = omega = 1.0
    eps = np.finfo(float).eps
    window_best = best_rec = rnorm / bnorm
    window_products = sv.products
    for it in range(1, max_iter + 1):
        rho = float(ddot(shadow, r))
        if abs(rho) <= eps * snorm * rnorm:
            sv.offer(x)
            return f"breakdown (shadow residual orthogonal to the residual) at iteration {it}"
        beta = (rho / rho_old) * (alpha_k / omega)
        dscal(beta, p)  # p = r + beta (p - omega v)
        daxpy(v, p, a=-beta * omega)
        daxpy(r, p, a=1.0)
        _matvec_into(M, p, v)
        sv.products += 1
        sigma = float(ddot(shadow, v))
        if abs(sigma) <= eps * snorm * _norm(v):
            sv.offer(x)
            return f"breakdown (shadow residual orthogonal to A p) at iteration {it}"
        alpha_k = rho / sigma
        daxpy(v, r, a=-alpha_k)  # r is now s
        daxpy(p, x, a=alpha_k)
        snorm_s = _norm(r)
        if snorm_s <= tol * bnorm:
            rnorm = snorm_s
        else:
            _matvec_into(M, r, t)
            sv.products += 1
            tt = float(ddot(t, t))
            omega = float(ddot(t, r)) / tt if tt > 0.0 else 0.0
            if not (abs(omega) > 1e3 * eps):
                sv.offer(x)
                return f"stagnation (omega = {omega:.3g}) at iteration {it}"
            daxpy(r, x, a=omega)
            daxpy(t, r, a=-omega)
            rnorm = _norm(r)
        rho_old = rho
        rec = rnorm / bnorm
        if not math.isfinite(rec) or rec > _DIVERGED * best_rec:
            sv.offer(x)
            return f"divergence (residual {rec:.3g}) at iteration {it}"
        best_rec = min(best_rec, rec)
        if rec <= tol:
            res = sv.offer(x)  # recurrence residuals drift: check the true one
            return "converged" if res <= tol else f"drift (true residual {res:.3g})"
        if sv.products - window_products >= sv.window():
            sv.offer(x)
            if best_rec > 0.5 * window_best:
                return (f"no progress (residual {best_rec:.3g}, not halved in the last "
                        f"{sv.products - window_products} products)")
            window_best, window_products = best_rec, sv.products
    sv.offer(x)
    return f"iteration cap {max_iter} reached"


class _Stop(Exception):
    pass


def _lgmres(sv: _Solve, tol: float, max_products: int) -> str:
    """LGMRES from ``sv.best``, stopped by the progress test.

    Inner subspace: up to 100 vectors (slowly mixing chains at gamma = 0.999 needed about 1,100
    products with 100 and stagnated with 30), at most about 1 GB of them, at least 20.
    """
    inner = int(min(100, max(20, _LGMRES_BASIS_BYTES // (8 * sv.b.shape[0]))))
    state = {"outer": 0, "window_best": sv.best_res, "window_products": sv.products}

    def callback(xk: np.ndarray) -> None:
        state["outer"] += 1
        sv.products += inner + 1
        res = sv.offer(xk)
        if res <= tol:
            raise _Stop("converged")
        if sv.products - state["window_products"] >= sv.window():
            if sv.best_res > 0.5 * state["window_best"]:
                raise _Stop(f"no progress (residual {sv.best_res:.3g}, not halved in the last "
                            f"{sv.products - state['window_products']} products)")
            state["window_best"], state["window_products"] = sv.best_res, sv.products

    try:
        x, info = scipy.sparse.linalg.lgmres(
            sv.M, sv.b, x0=sv.best, rtol=tol, atol=0.0, inner_m=inner, outer_k=10,
            maxiter=max(1, max_products // (inner + 1)), callback=callback,
        )
        sv.offer(x)
        why = "converged" if sv.best_res <= tol else f"stopped (info={info})"
    except _Stop as stop:
        why = str(stop)
    return why


def _richardson(sv: _Solve, tol: float) -> str:
    """Fixed-point iteration x <- x + (b - M x) = b + gamma P x (a contraction, see above)."""
    n = sv.b.shape[0]
    steps = math.ceil(math.log(tol / math.sqrt(n)) / math.log(sv.gamma)) + 1
    x = sv.best.copy()
    check = max(1, steps // 20)
    for k in range(1, steps + 1):
        x += sv.b - sv.M @ x
        sv.products += 1
        if k % check == 0 or k == steps:
            if sv.offer(x) <= tol:
                return "converged"
    return f"reached residual {sv.best_res:.3g} after {steps} steps"


def krylov_solve(
    M: Any,
    b: np.ndarray,
    tol: float,
    what: str,
    *,
    gamma: float,
    fixed_point: bool = True,
) -> tuple[np.ndarray, float]:
    r"""Solve :math:`M x = b`, :math:`M = I - \gamma P` (or its transpose), to relative residual ``tol``.

    Parameters
    ----------
    M : sparse matrix or LinearOperator, shape (S, S)
        The system matrix.
    b : ndarray, shape (S,)
        Right-hand side.
    tol : float
        Relative residual :math:`\|b - M x\|_2 / \|b\|_2` to reach.
    what : str
        Name of the system, used in the error message.
    gamma : float
        The discount, setting the progress test (the Richardson rate).
    fixed_point : bool
        Whether :math:`I - M` is a contraction in some norm (true for :math:`\gamma P_\pi` in
        the :math:`\infty`-norm and its transpose in the 1-norm), enabling the fixed-point
        fallback (see the module docstring).

    Returns
    -------
    x : ndarray, shape (S,)
    residual : float
        The achieved relative residual, recomputed explicitly.

    Raises
    ------
    NumericalError
        If no method reaches ``tol`` (the message lists what each one reached).
    """
    bnorm = float(np.linalg.norm(b))
    if bnorm == 0.0:
        return np.zeros_like(b), 0.0
    if not math.isfinite(bnorm):
        raise NumericalError(f"the right-hand side of {what} is not finite (norm {bnorm})")
    x, res = _solve_unit(M, b / bnorm, tol, what, gamma, fixed_point)  # scale-free: ||b|| = 1
    x *= bnorm
    return x, res


def _solve_unit(
    M: Any, b: np.ndarray, tol: float, what: str, gamma: float, fixed_point: bool
) -> tuple[np.ndarray, float]:
    sv = _Solve(M, b, gamma)
    n = b.shape[0]
    eps = np.finfo(float).eps
    if tol < 4.0 * eps:
        raise NumericalError(
            f"iterative solve of {what}: tol={tol:g} is below the relative accuracy of float64 "
            f"({eps:.2g}), no iterate can reach it; loosen tol (1e-12 is reachable)"
        )
    rich = math.ceil(math.log(tol / math.sqrt(n)) / math.log(max(gamma, 1e-300)))
    with _one_blas_thread(), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # scipy's solvers warn on their own breakdowns
        for k in range(_BICGSTAB_RUNS):
            start = sv.best_res
            why = _bicgstab(sv, tol, _WEYL[k], max_iter=max(rich, _WINDOW))
            sv.log.append(f"BiCGSTAB: {why}, residual {sv.best_res:.3g}")
            if sv.best_res <= tol:
                return sv.best, sv.best_res
            # restart after a breakdown or a drift only if the run gained at least a factor 10
            if not why.startswith(("breakdown", "drift")) or sv.best_res > 0.1 * start:
                break
        why = _lgmres(sv, tol, max_products=2 * max(rich, _WINDOW))
        sv.log.append(f"LGMRES: {why}")
        if sv.best_res <= tol:
            return sv.best, sv.best_res
        # ||b|| = 1: the residual of the best iterate cannot be computed more accurately than
        # about eps ||M|| ||x|| <= eps (1 + gamma) ||x||; the fixed-point iteration cannot beat it
        floor = eps * (1.0 + gamma) * float(np.linalg.norm(sv.best))
        if tol < 100.0 * floor:
            sv.log.append(f"stopped: tol={tol:g} is below 100x the rounding level {floor:.2g}")
        elif fixed_point and gamma < 1.0 and rich * _nnz(M) <= _MAX_RICHARDSON_WORK:
            why = _richardson(sv, tol)
            sv.log.append(f"fixed-point iteration: {why}")
            if sv.best_res <= tol:
                return sv.best, sv.best_res
        elif fixed_point and gamma < 1.0:
            sv.log.append(f"fixed-point iteration not tried: it would need {rich} products")
    floor = eps * (1.0 + gamma) * float(np.linalg.norm(sv.best))
    advice = (
        f"rounding limits the relative residual to about {floor:.1g} here: loosen tol"
        if tol < 100.0 * floor else "loosen tol or lower gamma"
    )
    raise NumericalError(
        f"iterative solve of {what} did not reach the relative residual tol={tol:g} (best "
        f"{sv.best_res:.3g} after {sv.products} matrix-vector products; "
        + "; ".join(sv.log) + f"); {advice}"
    )


def _nnz(M: Any) -> int:
    return int(getattr(M, "nnz", M.shape[0] * 5))


def sparse_discounted_solve(
    mdp: FiniteMDP, pi: np.ndarray, tol: float
) -> tuple[np.ndarray, np.ndarray, float]:
    r"""``(V, rho, residual)`` for a sparse, discounted MDP (see the module docstring).

    ``V`` solves :math:`(I - \gamma P_\pi) V = r_\pi`, ``rho`` solves
    :math:`(I - \gamma P_\pi)^\top \rho = \mu_0`; ``residual`` is the larger of the two achieved
    relative residuals. Memory: :math:`P_\pi` with its duplicates summed (at most nnz(P) / A
    entries per row, often far fewer), :math:`M` and :math:`M^\top` as CSR, and O(S) work vectors.
    """
    S = mdp.n_states
    g = mdp.gamma
    P_pi = _sparse_policy_transition(mdp.P, pi, canonical=True)
    M = scipy.sparse.eye_array(S, format="csr") - g * P_pi
    del P_pi
    V, res_v = krylov_solve(
        M, mdp._policy_reward(pi), tol, "(I - gamma P_pi) V = r_pi", gamma=g)
    MT = M.T.tocsr()  # CSR matvec is faster than the CSC one of the plain transpose
    del M
    rho, res_rho = krylov_solve(
        MT, mdp.mu0, tol, "(I - gamma P_pi)^T rho = mu0", gamma=g)
    return V, rho, max(res_v, res_rho)
