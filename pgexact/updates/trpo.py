r"""Trust region policy optimization (TRPO): conjugate-gradient direction, backtracking line search.

Conventions: the KL of a step is :math:`E_{s\sim d_{old}} KL(\pi_{old}(\cdot|s) \| \pi_{new}(\cdot|s))`
(old first; Schulman et al. 2015, eq. 12); F is the state-averaged Fisher matrix, whose
quadratic form is the second-order Taylor expansion of that KL:
:math:`KL(\theta, \theta + h) = \tfrac12 h^\top F h + O(|h|^3)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .._validation import check_positive_int
from ._checks import check_delta, check_lr, check_nonnegative_finite, check_ratio, check_source
from ._common import _moved, _theta

__all__ = ["TRPOStep", "trpo_step"]  # conjugate_gradient: the solver inside trpo_step, internal


# ----------------------------------------------------------------------------- TRPO
@dataclass(frozen=True, eq=False)
class TRPOStep:
    r"""Result of :func:`trpo_step`.

    Attributes
    ----------
    theta : numpy.ndarray
        The accepted parameters, or ``theta_old`` when the line search found no acceptable step.
    theta_old : numpy.ndarray
    accepted : bool
        Whether a step was accepted. False means ``theta`` is ``theta_old``.
    message : str
        Why the step was accepted or rejected.
    direction : numpy.ndarray
        The conjugate-gradient solution x of :math:`F x = \nabla J`.
    cg_iterations : int
    cg_residual : float
        :math:`\|(F + \lambda I) x - g\| / \|g\|`, recomputed from x (always finite; 1.0 when CG
        broke down at its first step and no step was taken).
    full_step_size : float
        :math:`\beta_0 = \sqrt{2\delta / x^\top F x}`.
    step_size : float
        The accepted :math:`\beta_0 r^k` (0 when rejected).
    n_backtracks : int
        k, the number of halvings (ratio ``backtrack_ratio``) before acceptance (or tried).
    kl : float
        Oracle KL :math:`E_{d_{old}} KL(\pi_{old}\|\pi_{new})` of the accepted step (of the last
        candidate tried when rejected).
    surrogate_improvement : float
        Oracle surrogate :math:`\bar A(\pi_{new})` of the accepted step (of the last candidate
        when rejected).
    expected_improvement : float
        :math:`\nabla J^\top (\theta_{new} - \theta)` of the accepted step (linear model).
    delta : float
    J_old : float or None
    """

    theta: np.ndarray
    theta_old: np.ndarray
    accepted: bool
    message: str
    direction: np.ndarray
    cg_iterations: int
    cg_residual: float
    full_step_size: float
    step_size: float
    n_backtracks: int
    kl: float
    surrogate_improvement: float
    expected_improvement: float
    delta: float
    J_old: float | None

    def carry(self) -> dict[str, Any]:
        """Keyword arguments for the next call (none)."""
        return {}


def conjugate_gradient(
    oracle: Any, g: np.ndarray, *, maxiter: int, rtol: float, damping: float
) -> tuple[np.ndarray, int, bool]:
    r"""Solve :math:`(F + \lambda I) x = g` by conjugate gradient on Fisher-vector products.

    F is never formed (Hestenes & Stiefel 1952; Nocedal & Wright 2006, Algorithm 5.2). From
    :math:`x_0 = 0` the iterates stay in the Krylov space of g, which lies in the range of F when
    g does, so for singular F (softmax shift invariance) and λ = 0 the limit is the minimum-norm
    solution :math:`F^+ g`. The iteration stops when :math:`\|r_k\| \le` ``rtol`` :math:`\|g\|`,
    after ``maxiter`` steps, or at a breakdown: a search direction with
    :math:`p^\top (F + \lambda I) p \le 0` to rounding (F numerically singular along p), where
    the last iterate, which is finite, is kept.

    Returns
    -------
    x : numpy.ndarray, shape (n_params,)
    iterations : int
    breakdown : bool
    """
    # the oracle's own operator for this loop when it has one (p is a float64 vector of length
    # n_params, so no argument check is needed)
    operator = _fast_path(oracle, "fisher_vector_product", "_cg_operator")
    fvp = operator() if operator is not None else oracle.fisher_vector_product
    x = np.zeros_like(g)
    r = g.copy()
    p = r.copy()
    rr = float(r @ r)
    stop = (rtol * math.sqrt(rr)) ** 2
    eps = np.finfo(float).eps
    with np.errstate(all="ignore"):
        for k in range(maxiter):
            Fp = fvp(p)
            if damping > 0.0:
                Fp = Fp + damping * p
            pFp = float(p @ Fp)
            # F's scale along p against rounding: pFp below eps |p| |Fp| is noise
            if not (pFp > eps * math.sqrt(float(p @ p) * float(Fp @ Fp))):
                return x, k, True
            alpha = rr / pFp
            x += alpha * p
            r -= alpha * Fp
            rr_new = float(r @ r)
            if rr_new <= stop:
                return x, k + 1, False
            p *= rr_new / rr
            p += r
            rr = rr_new
    return x, maxiter, False


def _fast_path(oracle: Any, public: str, private: str) -> Any:
    """The bound method ``private`` of ``oracle``, or None: an oracle may offer a faster private
    equivalent of its method ``public``, used only when ``public`` is not replaced (on the
    instance, or by a subclass of the class that defines both)."""
    if public in getattr(oracle, "__dict__", {}):
        return None
    owner = {name: next((c for c in type(oracle).__mro__ if name in vars(c)), None) for name in (public, private)}
    if owner[private] is None or owner[private] is not owner[public]:
        return None
    return getattr(oracle, private)


def _kl_and_surrogate(oracle: Any, theta_new: np.ndarray) -> tuple[float, Callable[[], float]]:
    """The oracle's KL of ``theta_new`` and a callable returning its surrogate (evaluated only
    when the line search needs it); one policy evaluation for both when the oracle offers it."""
    both = None
    if _fast_path(oracle, "kl", "_kl_and_surrogate") and _fast_path(oracle, "surrogate", "_kl_and_surrogate"):
        both = oracle._kl_and_surrogate
    if both is not None:
        kl, surrogate = both(theta_new)
        return float(kl), lambda: float(surrogate())
    return float(oracle.kl(theta_new)), lambda: float(oracle.surrogate(theta_new))


def trpo_step(
    source: Any,
    theta: Any,
    delta: float,
    *,
    cg_iters: int | None = None,
    cg_rtol: float = 1e-10,
    cg_damping: float = 0.0,
    backtrack_ratio: float = 0.5,
    max_backtracks: int = 20,
    seed: Any = None,
) -> TRPOStep:
    r"""One TRPO step: conjugate-gradient direction, then a backtracking line search on the true KL.

    Solve :math:`F x = \nabla J` by conjugate gradient on Fisher-vector products
    (:func:`conjugate_gradient`; no matrix is formed or inverted),
    scale to the quadratic trust region :math:`\beta_0 = \sqrt{2\delta / x^\top F x}`, then try
    :math:`\theta + \beta_0 r^k x` for k = 0, 1, ..., ``max_backtracks`` and accept the first
    candidate with

    .. math::

        E_{s\sim d_{old}} KL(\pi_{old}(\cdot|s) \| \pi_{new}(\cdot|s)) \le \delta
        \quad\text{and}\quad \bar A(\pi_{new}) > 0

    (Schulman et al. 2015, sec. 6 and Appendix C). If none qualifies, the old parameters are
    returned with ``accepted=False`` and a message: a constraint violation is never accepted.
    With the exact source both tests are exact.

    Parameters
    ----------
    source : ExactSource or SampledSource
    theta : array_like, shape (n_params,)
    delta : float
        KL radius δ > 0.
    cg_iters : int, optional
        Maximum CG iterations; default ``n_params`` (exact-arithmetic convergence bound), at
        least 10.
    cg_rtol : float
        CG stops when :math:`\|F x - g\| \le` ``cg_rtol`` :math:`\|g\|`.
    cg_damping : float
        λ ≥ 0 added to F (0: the exact natural gradient).
    backtrack_ratio : float
        r in (0, 1).
    max_backtracks : int
    seed : optional
        Passed to the source.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import ExactSource, TabularSoftmax
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 3, gamma=0.9, seed=0)
    >>> src = ExactSource(mdp, TabularSoftmax(4, 3))
    >>> res = trpo_step(src, np.zeros(12), delta=0.01)
    >>> res.accepted, src.kl(res.theta_old, res.theta) <= 0.01
    (True, True)
    """
    source = check_source(source)
    theta = _theta(source, theta)
    delta = check_delta(delta)
    n = theta.shape[0]
    maxiter = max(n, 10) if cg_iters is None else check_positive_int("cg_iters", cg_iters)
    cg_rtol = check_lr(cg_rtol, name="cg_rtol")
    cg_damping = check_nonnegative_finite("cg_damping", cg_damping)
    ratio = check_ratio("backtrack_ratio", backtrack_ratio)
    if isinstance(max_backtracks, bool) or not isinstance(max_backtracks, (int, np.integer)) or max_backtracks < 0:
        raise ValueError(f"max_backtracks must be a non-negative integer, got {max_backtracks!r}")
    max_backtracks = int(max_backtracks)

    oracle = source.at(theta, seed=seed)
    g = oracle.gradient
    gnorm = float(np.linalg.norm(g))

    def reject(msg: str, x: np.ndarray, it: int, res: float, full: float, k: int, kl: float, imp: float) -> TRPOStep:
        return TRPOStep(theta, theta, False, msg, x, it, res, full, 0.0, k, kl, imp, 0.0, delta, oracle.J)

    if not (gnorm > 0.0):
        return reject("gradient is zero: stationary point, no step taken", np.zeros(n), 0, 0.0, 0.0, 0, 0.0, 0.0)
    x, iters, breakdown = conjugate_gradient(oracle, g, maxiter=maxiter, rtol=cg_rtol, damping=cg_damping)
    if breakdown and iters == 0:
        return reject(
            "conjugate gradient broke down at its first step (g^T F g = 0 to rounding: the "
            "Fisher matrix is numerically singular along the gradient, e.g. a near-deterministic "
            "policy); no step taken", np.zeros(n), 0, 1.0, 0.0, 0, 0.0, 0.0,
        )
    Fx = oracle.fisher_vector_product(x)
    residual = float(np.linalg.norm(Fx + cg_damping * x - g) / gnorm)
    xFx = float(x @ Fx)
    if not (np.isfinite(xFx) and xFx > 0.0):
        return reject(f"x^T F x = {xFx:.3g} is not positive: no trust-region step", x, iters, residual, 0.0, 0, 0.0, 0.0)
    full = math.sqrt(2.0 * delta / xFx)
    kl = imp = float("nan")
    for k in range(max_backtracks + 1):
        beta = full * ratio**k
        cand = _moved(theta, beta, x, name="delta")
        kl, surrogate = _kl_and_surrogate(oracle, cand)
        imp = surrogate() if kl <= delta or k == max_backtracks else float("nan")
        if kl <= delta and imp > 0.0:
            return TRPOStep(
                theta=cand,
                theta_old=theta,
                accepted=True,
                message=f"accepted after {k} backtrack(s): KL {kl:.6g} <= delta {delta:.6g}, surrogate {imp:.6g} > 0",
                direction=x,
                cg_iterations=iters,
                cg_residual=residual,
                full_step_size=full,
                step_size=beta,
                n_backtracks=k,
                kl=kl,
                surrogate_improvement=imp,
                expected_improvement=float(g @ (beta * x)),
                delta=delta,
                J_old=oracle.J,
            )
    return reject(
        f"line search failed after {max_backtracks} backtrack(s): last candidate had KL {kl:.6g} "
        f"(delta {delta:.6g}) and surrogate {imp:.6g}; returning the old parameters",
        x, iters, residual, full, max_backtracks, kl, imp,
    )
