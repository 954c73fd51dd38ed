r"""Second-order ascent steps on the exact Hessian: damped and cubic-regularized Newton.

Both maximize a model of :math:`J(\theta + h)` built from the oracle's gradient g and Hessian
H (``oracle.hessian()``: the exact :func:`pgexact.hessian` for :class:`~pgexact.ExactSource`; for
:class:`~pgexact.updates.SampledSource` the estimate
:func:`pgexact.estimators.hessian_reward_to_go` from the same episodes as the gradient).
With the eigendecomposition :math:`\tfrac12(H + H^\top) = \sum_i \mu_i u_i u_i^\top` and
:math:`g_i = u_i^\top g`, every step has the form

.. math::

    h(\lambda) = (\lambda I - H)^{+} g = \sum_{i:\ \lambda - \mu_i \ne 0} \frac{g_i}{\lambda - \mu_i}\, u_i ,

which maximizes :math:`g^\top h + \tfrac12 h^\top H h - \tfrac\lambda2 \|h\|^2` when
:math:`\lambda I - H \succeq 0`. Directions with :math:`|\lambda - \mu_i|` below
``rcond * max_i |mu_i|`` are left out (the pseudo-inverse): the softmax parametrizations are
flat along per-state logit shifts, where :math:`H u = 0` and :math:`g^\top u = 0`.

* **Damped Newton** (Levenberg 1944; Marquardt 1963, for maximization): λ is the given
  ``damping`` ≥ 0; λ = 0 and ``lr = 1`` is Newton's method, which converges quadratically to a
  nondegenerate stationary point (Nocedal & Wright 2006, Theorem 3.5), whatever its kind. When
  :math:`\lambda < \mu_{\max}` the model is not concave and h is its stationary point, not a
  maximizer (reported by ``concave_model``).
* **Cubic-regularized Newton** (Nesterov & Polyak 2006, "Cubic regularization of Newton method
  and its global performance", Math. Program. 108, 177-205; for maximization): h maximizes
  :math:`g^\top h + \tfrac12 h^\top H h - \tfrac{M}{6}\|h\|^3`; the global maximizer is
  :math:`h(\lambda)` with :math:`\lambda = \tfrac M2\|h\|` and :math:`\lambda \ge \max(0, \mu_{\max})`
  (the characterization of the model's global optimum, ibid.), found by bisection on the monotone function
  :math:`\|h(\lambda)\| - 2\lambda/M`. In the "hard case" (g orthogonal to the top eigenspace and
  :math:`\|h(\mu_{\max})\| < 2\mu_{\max}/M`) the step adds :math:`\tau u_{\max}` with
  :math:`\|h\| = 2\mu_{\max}/M`: it leaves a saddle along its direction of positive curvature.
  If M bounds the Lipschitz constant of H, each step increases J by at least the model's
  increase (the cubic model is then a lower bound of J, ibid.).

Dense eigendecomposition: for up to a few thousand parameters, like :func:`pgexact.hessian`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import check_positive_finite
from ._checks import check_lr, check_nonnegative_finite, check_source
from ._common import _moved, _theta

__all__ = ["NewtonStep", "newton_step", "cubic_newton_step"]

#: Relative size below which a curvature lambda - mu_i counts as zero (pseudo-inverse).
_RCOND = 1e-10


@dataclass(frozen=True, eq=False)
class NewtonStep:
    r"""Result of :func:`newton_step` and :func:`cubic_newton_step`.

    Attributes
    ----------
    theta : numpy.ndarray, shape (n_params,)
        :math:`\theta + \eta h`.
    theta_old : numpy.ndarray
    direction : numpy.ndarray
        h, the model's stationary point (see the module docstring).
    gradient : numpy.ndarray
    step_size : float
        η (1 for the cubic step).
    damping : float
        λ of :math:`h = (\lambda I - H)^+ g` (the given damping, or the cubic step's multiplier).
    model_increase : float
        The model's increase at h: :math:`g^\top h + \tfrac12 h^\top H h - \tfrac\lambda2\|h\|^2`
        (damped) or :math:`g^\top h + \tfrac12 h^\top H h - \tfrac M6\|h\|^3` (cubic).
    min_eigenvalue, max_eigenvalue : float
        Extreme eigenvalues of the (symmetrized) Hessian at θ.
    concave_model : bool
        Whether :math:`\lambda I - H \succeq 0`, so that h maximizes the model.
    J_old : float or None
    """

    theta: np.ndarray
    theta_old: np.ndarray
    direction: np.ndarray
    gradient: np.ndarray
    step_size: float
    damping: float
    model_increase: float
    min_eigenvalue: float
    max_eigenvalue: float
    concave_model: bool
    J_old: float | None

    def carry(self) -> dict[str, Any]:
        """Keyword arguments for the next call (none)."""
        return {}


def _oracle_and_spectrum(source: Any, theta: Any, seed: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    source = check_source(source)
    theta = _theta(source, theta)
    oracle = source.at(theta, seed=seed)
    if not callable(getattr(oracle, "hessian", None)):
        raise TypeError(
            f"source ({type(source).__name__}) gives oracles without hessian(): Newton steps need a "
            "Hessian (pgexact.ExactSource, or pgexact.updates.SampledSource for an estimate)"
        )
    H = np.asarray(oracle.hessian(), dtype=np.float64)
    mu, U = np.linalg.eigh(0.5 * (H + H.T))
    g = np.asarray(oracle.gradient, dtype=np.float64)
    return oracle, theta, mu, U, g


def _solve(mu: np.ndarray, gi: np.ndarray, lam: float) -> np.ndarray:
    """Coefficients of h(lambda) in the eigenbasis (pseudo-inverse, see ``_RCOND``)."""
    denom = lam - mu
    scale = max(float(np.max(np.abs(mu))), abs(lam), np.finfo(float).tiny)
    keep = np.abs(denom) > _RCOND * scale
    return np.where(keep, gi / np.where(keep, denom, 1.0), 0.0)


def newton_step(source: Any, theta: Any, *, damping: float = 0.0, lr: float = 1.0, seed: Any = None) -> NewtonStep:
    r"""Damped Newton ascent: :math:`\theta' = \theta + \eta\, (\lambda I - \nabla^2 J)^{+} \nabla J`.

    (Levenberg 1944; Marquardt 1963; module docstring.) ``damping`` λ = 0 and ``lr`` η = 1 give
    Newton's method, quadratically convergent near a nondegenerate stationary point; λ above the
    largest eigenvalue of the Hessian makes h an ascent direction (a maximizer of the damped
    quadratic model), and λ → ∞ approaches the gradient step :math:`(\eta/\lambda)\nabla J`.

    Parameters
    ----------
    source : ExactSource or SampledSource
        A gradient source whose oracle has ``hessian()``.
    theta : array_like, shape (n_params,)
    damping : float
        λ ≥ 0.
    lr : float
        η > 0.
    seed : optional
        Passed to the source.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import ExactSource, TabularSoftmax, hessian, policy_gradient
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    >>> src, theta = ExactSource(mdp, TabularSoftmax(3, 2)), np.zeros(6)
    >>> step = newton_step(src, theta, damping=2.0)
    >>> H, g = hessian(mdp, src.policy, theta), policy_gradient(mdp, src.policy, theta)
    >>> bool(np.allclose(2.0 * step.direction - H @ step.direction, g, atol=1e-12))
    True
    """
    lam = check_nonnegative_finite("damping", damping)
    lr = check_lr(lr)
    oracle, theta, mu, U, g = _oracle_and_spectrum(source, theta, seed)
    gi = U.T @ g
    c = _solve(mu, gi, lam)
    h = U @ c
    increase = float(gi @ c + 0.5 * np.sum(mu * c * c) - 0.5 * lam * (c @ c))
    scale = max(float(np.max(np.abs(mu))), np.finfo(float).tiny)
    return NewtonStep(
        theta=_moved(theta, lr, h, advice=" or a larger damping"), theta_old=theta, direction=h, gradient=g, step_size=lr, damping=lam,
        model_increase=increase, min_eigenvalue=float(mu[0]), max_eigenvalue=float(mu[-1]),
        concave_model=bool(lam - mu[-1] >= -_RCOND * scale), J_old=oracle.J,
    )


def cubic_newton_step(source: Any, theta: Any, regularization: float, *, seed: Any = None) -> NewtonStep:
    r"""Cubic-regularized Newton ascent (Nesterov & Polyak 2006, for maximization).

    .. math::

        h = \arg\max_h\; g^\top h + \tfrac12 h^\top H h - \tfrac M6 \|h\|^3
          = (\lambda I - H)^{+} g, \qquad \lambda = \tfrac M2 \|h\| \ge \max(0, \mu_{\max}),

    (plus a multiple of the top eigenvector in the hard case; module docstring). With M at least
    the Lipschitz constant of the Hessian, :math:`J(\theta + h) \ge J(\theta) +` the model's
    increase, and the iteration escapes strict saddles.

    Parameters
    ----------
    source : ExactSource or SampledSource
        A gradient source whose oracle has ``hessian()``.
    theta : array_like, shape (n_params,)
    regularization : float
        M > 0.
    seed : optional

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import ExactSource, TabularSoftmax
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    >>> src = ExactSource(mdp, TabularSoftmax(3, 2))
    >>> step = cubic_newton_step(src, np.zeros(6), regularization=50.0)
    >>> bool(np.isclose(step.damping, 25.0 * np.linalg.norm(step.direction), rtol=1e-10))
    True
    >>> bool(src.exact_J(step.theta) > src.exact_J(np.zeros(6)))
    True
    """
    M = check_positive_finite("regularization", regularization)
    oracle, theta, mu, U, g = _oracle_and_spectrum(source, theta, seed)
    gi = U.T @ g
    scale = max(float(np.max(np.abs(mu))), np.finfo(float).tiny)
    top = max(0.0, float(mu[-1]))

    def coefficients(lam: float) -> np.ndarray:  # h(lam) in the eigenbasis, for lam >= top
        d = lam - mu
        return np.divide(gi, d, out=np.zeros_like(gi), where=(gi != 0.0) & (d > 0.0))

    def excess(lam: float) -> float:  # decreasing in lam > top
        return float(np.linalg.norm(coefficients(lam))) - 2.0 * lam / M

    # the curvature of the top eigenspace; g's component there decides the easy or hard case
    top_space = mu >= mu[-1] - _RCOND * scale
    g_model = gi
    hard = top > 0 and bool(np.all(
        np.abs(gi[top_space]) <= _RCOND * max(float(np.linalg.norm(gi)), np.finfo(float).tiny)))
    if hard:
        gi = np.where(top_space, 0.0, gi)
    if hard and excess(top) <= 0.0:
        c = coefficients(top)
        tau2 = (2.0 * top / M) ** 2 - float(c @ c)
        c[int(np.argmax(mu))] = math.sqrt(max(tau2, 0.0))
        lam = top
    elif not np.any(gi):
        c, lam = np.zeros_like(gi), top
    else:
        lo, width = top, max(top, 1.0)
        while excess(lo + width) > 0.0:
            width *= 2.0
        hi = lo + width
        for _ in range(200):  # bisection: 200 halvings reach the float64 resolution of [lo, hi]
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break
            if excess(mid) > 0.0:
                lo = mid
            else:
                hi = mid
        lam = hi
        c = coefficients(lam)
    h = U @ c
    norm = float(np.linalg.norm(c))
    increase = float(g_model @ c + 0.5 * np.sum(mu * c * c) - M * norm**3 / 6.0)
    return NewtonStep(
        theta=_moved(theta, 1.0, h, name="regularization", advice=" (a larger one)"), theta_old=theta, direction=h, gradient=g, step_size=1.0, damping=float(lam),
        model_increase=increase, min_eigenvalue=float(mu[0]), max_eigenvalue=float(mu[-1]),
        concave_model=bool(lam - mu[-1] >= -_RCOND * scale), J_old=oracle.J,
    )
