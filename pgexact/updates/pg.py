r"""Vanilla and natural policy gradient steps.

Every update is a pure function ``(source, theta, ...) -> result``: the result is a frozen
dataclass whose ``.theta`` holds the new parameters and whose other fields are diagnostics.
The source (:class:`~pgexact.ExactSource` or :class:`~pgexact.updates.SampledSource`) is asked
once per update for an oracle at θ.

Conventions: the KL of a step is :math:`E_{s\sim d_{old}} KL(\pi_{old}(\cdot|s) \| \pi_{new}(\cdot|s))`
(old first; Schulman et al. 2015, eq. 12); F is the state-averaged Fisher matrix, whose
quadratic form is the second-order Taylor expansion of that KL:
:math:`KL(\theta, \theta + h) = \tfrac12 h^\top F h + O(|h|^3)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import check_delta, check_lr, check_source
from ._common import _moved, _theta

__all__ = ["PGStep", "NPGStep", "pg_step", "npg_step"]


# ----------------------------------------------------------------------------- PG
@dataclass(frozen=True, eq=False)
class PGStep:
    r"""Result of :func:`pg_step`.

    Attributes
    ----------
    theta : numpy.ndarray, shape (n_params,)
        :math:`\theta + \eta \nabla J`.
    theta_old : numpy.ndarray
    gradient : numpy.ndarray
        The gradient used (exact or estimated).
    step_size : float
        η.
    J_old : float or None
        Exact J(θ_old) when the source knows it.
    """

    theta: np.ndarray
    theta_old: np.ndarray
    gradient: np.ndarray
    step_size: float
    J_old: float | None

    def carry(self) -> dict[str, Any]:
        """Keyword arguments for the next call (none)."""
        return {}


def pg_step(source: Any, theta: Any, lr: float, *, seed: Any = None) -> PGStep:
    r"""Vanilla policy gradient ascent: :math:`\theta' = \theta + \eta \nabla J(\theta)`.

    (Williams 1992; Sutton et al. 2000.) With the exact source and ``lr = (1-γ)^3/8`` on a
    tabular softmax policy with rewards in [0, 1], :math:`J^* - J(\theta_t) = O(1/t)`
    (Mei et al. 2020, Theorem 4).

    Parameters
    ----------
    source : ExactSource or SampledSource
    theta : array_like, shape (n_params,)
    lr : float
        Learning rate η, a finite number > 0.
    seed : int, SeedSequence or Generator, optional
        Passed to the source (ignored by the exact source).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import ExactSource, TabularSoftmax, policy_gradient
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    >>> src = ExactSource(mdp, TabularSoftmax(3, 2))
    >>> res = pg_step(src, np.zeros(6), lr=0.1)
    >>> bool(np.allclose(res.theta, 0.1 * policy_gradient(mdp, src.policy, np.zeros(6))))
    True
    """
    source = check_source(source)
    theta = _theta(source, theta)
    lr = check_lr(lr)
    oracle = source.at(theta, seed=seed)
    g = oracle.gradient
    return PGStep(theta=_moved(theta, lr, g), theta_old=theta, gradient=g, step_size=lr, J_old=oracle.J)


# ----------------------------------------------------------------------------- NPG
@dataclass(frozen=True, eq=False)
class NPGStep:
    r"""Result of :func:`npg_step`.

    Attributes
    ----------
    theta : numpy.ndarray
        :math:`\theta + \alpha F^+ \nabla J`.
    theta_old : numpy.ndarray
    direction : numpy.ndarray
        The natural gradient :math:`w = F^+ \nabla J` (minimum norm).
    step_size : float
        α: :math:`\sqrt{2\delta / g^\top F^+ g}` for a KL radius, or the given learning rate η.
    g_natural_g : float
        :math:`g^\top F^+ g = g^\top w`.
    quadratic_kl : float
        :math:`\tfrac12 \alpha^2 w^\top F w`, the quadratic model of the KL moved (= δ when a
        radius is given and ``g_natural_g > 0``).
    J_old : float or None
    stationary : bool
        True when :math:`g^\top F^+ g = 0` (a stationary point: no step is taken).
    """

    theta: np.ndarray
    theta_old: np.ndarray
    direction: np.ndarray
    step_size: float
    g_natural_g: float
    quadratic_kl: float
    J_old: float | None
    stationary: bool

    def carry(self) -> dict[str, Any]:
        """Keyword arguments for the next call (none)."""
        return {}


def npg_step(
    source: Any, theta: Any, delta: float | None = None, *, lr: float | None = None, seed: Any = None
) -> NPGStep:
    r"""Natural policy gradient step with a KL radius δ (or a fixed learning rate η).

    .. math::

        \theta' = \theta + \alpha\, F^+ \nabla J, \qquad
        \alpha = \sqrt{\frac{2\delta}{\nabla J^\top F^+ \nabla J}}

    the maximizer of the linear model :math:`\nabla J^\top h` subject to the quadratic KL model
    :math:`\tfrac12 h^\top F h \le \delta` (Kakade 2002; Schulman et al. 2015, Appendix C;
    Achiam's lecture notes). For a tabular softmax policy
    :math:`F^+\nabla J = A/(1-\gamma)` up to per-state constants, so
    :math:`\pi_{new} \propto \pi_{old} \exp(\alpha A/(1-\gamma))` (Agarwal et al. 2021, Lemma 5.1).

    Parameters
    ----------
    source : ExactSource or SampledSource
    theta : array_like, shape (n_params,)
    delta : float, optional
        KL radius δ > 0. Exactly one of ``delta`` and ``lr`` must be given.
    lr : float, optional
        A fixed step η along :math:`F^+\nabla J` instead of the radius rule.
    seed : optional
        Passed to the source.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import ExactSource, TabularSoftmax, evaluate
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    >>> src = ExactSource(mdp, TabularSoftmax(3, 2))
    >>> res = npg_step(src, np.zeros(6), lr=0.5)
    >>> A = evaluate(mdp, np.full((3, 2), 0.5)).A
    >>> pi_new = np.exp(0.5 * A / 0.1); pi_new /= pi_new.sum(axis=1, keepdims=True)
    >>> bool(np.allclose(src.policy.probs(res.theta), pi_new, rtol=0, atol=1e-12))
    True
    """
    source = check_source(source)
    theta = _theta(source, theta)
    if (delta is None) == (lr is None):
        raise ValueError("give exactly one of delta (a KL radius) and lr (a fixed step size)")
    if delta is not None:
        delta = check_delta(delta)
    else:
        lr = check_lr(lr)
    oracle = source.at(theta, seed=seed)
    w = oracle.natural_gradient()
    gw = float(oracle.gradient @ w)
    wFw = float(w @ oracle.fisher_vector_product(w))
    if not (gw > 0.0) or not (wFw > 0.0):
        return NPGStep(theta, theta, w, 0.0, max(gw, 0.0), 0.0, oracle.J, True)
    alpha = math.sqrt(2.0 * delta / gw) if delta is not None else float(lr)  # type: ignore[operator]
    return NPGStep(
        theta=_moved(theta, alpha, w, name="delta" if delta is not None else "lr"),
        theta_old=theta,
        direction=w,
        step_size=alpha,
        g_natural_g=gw,
        quadratic_kl=0.5 * alpha**2 * wFw,
        J_old=oracle.J,
        stationary=False,
    )
