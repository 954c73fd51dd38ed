r"""Second-order score-function estimators with baselines: Loaded DiCE and the Hessian-aided estimator.

**Loaded DiCE** (Farquhar, Whiteson & Foerster 2019, "Loaded DiCE: trading off bias and variance
in any-order score function estimators for reinforcement learning", NeurIPS: the objective with
advantages, and the discounting of distant causal dependencies). With the MagicBox
:math:`\boxdot(w) = \exp(w - \bot w)` of DiCE (Foerster et al. 2018, "DiCE: the infinitely
differentiable Monte Carlo estimator", ICML) and the λ-discounted dependencies
:math:`w_t = \sum_{u\le t}\lambda^{t-u}\log\pi(a_u|s_u)`, the objective is

.. math::

    \mathcal L = \sum_{t<L}\big(\boxdot(w_t) - \boxdot(w_{t-1})\big)\,A_t,\qquad
    A_t = \sum_{t\le t'<L} d^{t'} r_{t'} - d^t\, b(s_t),\qquad \boxdot(w_{-1}) = 1 .

Its second derivative, evaluated (:math:`\boxdot = 1`), is written in closed form here (no
autodiff): with :math:`U^\lambda_t = \sum_{u\le t}\lambda^{t-u}\psi_u` and, for a softmax with
logits linear in θ, :math:`\nabla^2\log\pi(a|s) = -F_s`,
:math:`\nabla^2\boxdot(w_t) = M_t = U^\lambda_t U^{\lambda\top}_t - \sum_{u\le t}\lambda^{t-u}F_{s_u}`, so

.. math::

    \hat H_{\rm LD} = \sum_{t<L} A_t\,(M_t - M_{t-1}) = \sum_{t<L}(A_t - A_{t+1})\,M_t,
    \qquad M_{-1} = 0,\ A_L = 0 .

For λ = 1 it is unbiased for :math:`\nabla^2 J` of the objective the episodes sample (finite
horizon, or the truncated :math:`J_T`, or the discounted J under geometric stopping) for every
fixed baseline b: the baseline's part :math:`-d^t b(s_t)(\psi_t\psi_t^\top + U_{t-1}\psi_t^\top +
\psi_t U_{t-1}^\top - F_{s_t})` has conditional mean 0 given the history up to :math:`s_t`. With
b = 0 and λ = 1 it equals :func:`hessian_reward_to_go` episode by episode (the sum telescopes).
For λ < 1 it is biased (the cross terms between actions far apart are shrunk by
:math:`\lambda^{t-u}`).

**Hessian-aided estimator** (Shen, Ribeiro, Hassani, Qian & Mi 2019, "Hessian aided policy
gradient", ICML: the Hessian estimator and the Hessian-aided gradient difference). With
:math:`\Phi(\theta;\tau) = \sum_{h<L} G_h \log\pi_\theta(a_h|s_h)`,
:math:`G_h = \sum_{h\le i<L} d^i r_i`, the one-trajectory Hessian estimate is

.. math::

    \tilde H(\theta;\tau) = \nabla\Phi\,\nabla\log p(\tau)^\top + \nabla^2\Phi
    = \Big(\sum_h G_h\psi_h\Big)\Big(\sum_t\psi_t\Big)^\top - \sum_h G_h F_{s_h},

unbiased for :math:`\nabla^2 J` since :math:`\nabla J(\theta) = E_{\tau\sim\theta}[\nabla\Phi(\theta;\tau)]`
(it is not symmetric per episode). The gradient difference
:math:`\nabla J(\theta_t) - \nabla J(\theta_{t-1})` is estimated by
:math:`\tilde H(\theta_a;\tau)(\theta_t-\theta_{t-1})` with :math:`a\sim U[0,1]`,
:math:`\theta_a = a\theta_t + (1-a)\theta_{t-1}` and τ drawn at :math:`\theta_a`; its mean is
:math:`\int_0^1\nabla^2 J(\theta_a)(\theta_t-\theta_{t-1})\,da`, the difference exactly (the
fundamental theorem of calculus along the segment). With episodes truncated at T the J in all
of these is the truncated :math:`J_T`, not the discounted J.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_theta
from ..policies.softmax import SoftmaxPolicy
from ..sampling.trajectories import Trajectories
from ._base import Estimate, check_samples_policy, check_unit_interval, value_array
from ._second_order import _padded_terms, _scatter_F, _to_go

__all__ = ["hessian_loaded_dice", "hessian_shen", "hessian_aided_difference"]


def hessian_loaded_dice(
    trajs: Trajectories, policy: SoftmaxPolicy, theta: Any, baseline: Any = None, *, lam: float = 1.0
) -> Estimate:
    r"""Second derivative of the Loaded DiCE objective with a state-dependent baseline (module docstring).

    .. math:: \hat H = \frac1N\sum_n\sum_{t<L}(A_t - A_{t+1})\Big[U^\lambda_t U^{\lambda\top}_t
        - \sum_{u\le t}\lambda^{t-u}F_{s_u}\Big],\qquad A_t = \sum_{t'\ge t} d^{t'}r_{t'} - d^t b(s_t)

    (Farquhar et al. 2019, with the DiCE MagicBox of Foerster et al. 2018). Unbiased for
    :math:`\nabla^2 J` of the sampled objective when ``lam = 1``, for every fixed baseline.

    Parameters
    ----------
    trajs : Trajectories
    policy : TabularSoftmax or LinearSoftmax
    theta : array_like, shape (n_params,)
    baseline : array_like, shape (S,) or (T, S), optional
        b(s) or the time-indexed :math:`b_t(s)` (default 0: the DiCE Hessian without baseline,
        equal to :func:`hessian_reward_to_go`).
    lam : float in [0, 1]
        λ of the discounted dependencies :math:`w_t` (1: no discounting, unbiased).

    Returns
    -------
    Estimate
        ``samples`` shape (N, n_params, n_params).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate, hessian
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> V = evaluate(mdp, pol.probs(theta)).V  # a baseline, shape (3, 2)
    >>> H = exact_mean(hessian_loaded_dice(tr, pol, theta, V).samples, p)
    >>> bool(np.allclose(H, hessian(mdp, pol, theta), atol=1e-12))
    True
    """
    trajs, theta = check_samples_policy(trajs, policy, theta)
    lam = check_unit_interval("lam", lam)
    psi, w, F, states, mask = _padded_terms(trajs, policy, theta)
    N, T = w.shape
    to_go = _to_go(w)
    A = to_go
    if baseline is not None:
        b = value_array(trajs, baseline, name="baseline")[:, :T]
        A = (to_go - trajs.discounts()[None, :] * b) * mask
    c = A.copy()
    c[:, :-1] -= A[:, 1:]  # A_t - A_{t+1}, with A = 0 after the episode's last step
    U = np.empty_like(psi)
    e = np.empty_like(c)  # e_u = sum_{t >= u} c_t lam^(t-u): the weight of F_{s_u}
    U[:, 0] = psi[:, 0]
    for t in range(1, T):
        U[:, t] = lam * U[:, t - 1] + psi[:, t]
    e[:, T - 1] = c[:, T - 1]
    for t in range(T - 2, -1, -1):
        e[:, t] = c[:, t] + lam * e[:, t + 1]
    out = np.einsum("nt,nti,ntj->nij", c, U, U)
    out -= _scatter_F(e * mask, states, F)
    return Estimate(out)


def _shen_parts(trajs: Trajectories, policy: SoftmaxPolicy, theta: np.ndarray):
    r"""``(grad Phi (N, n), grad log p (N, n), sum_h G_h F_{s_h} (N, n, n))``."""
    psi, w, F, states, mask = _padded_terms(trajs, policy, theta)
    to_go = _to_go(w)
    g_phi = np.einsum("nt,nti->ni", to_go, psi)
    return g_phi, psi.sum(axis=1), _scatter_F(to_go * mask, states, F)


def hessian_shen(trajs: Trajectories, policy: SoftmaxPolicy, theta: Any) -> Estimate:
    r"""The Hessian estimator of Shen et al. 2019 (module docstring), one (non-symmetric) matrix per episode.

    .. math:: \tilde H = \nabla\Phi\,\nabla\log p(\tau)^\top + \nabla^2\Phi
        = \Big(\sum_h G_h\psi_h\Big)\Big(\sum_t\psi_t\Big)^\top - \sum_h G_h F_{s_h}

    (Shen et al. 2019, "Hessian aided policy gradient", ICML). Unbiased for
    :math:`\nabla^2 J` of the sampled objective.

    Returns
    -------
    Estimate
        ``samples`` shape (N, n_params, n_params).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, hessian
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))
    >>> H = exact_mean(hessian_shen(tr, pol, theta).samples, p)
    >>> bool(np.allclose(H, hessian(mdp, pol, theta), atol=1e-12))
    True
    """
    trajs, theta = check_samples_policy(trajs, policy, theta)
    g_phi, g_logp, curv = _shen_parts(trajs, policy, theta)
    return Estimate(np.einsum("ni,nj->nij", g_phi, g_logp) - curv)


def hessian_aided_difference(
    trajs: Trajectories, policy: SoftmaxPolicy, theta_prev: Any, theta: Any, a: float
) -> Estimate:
    r"""Shen et al.'s estimate of :math:`\nabla J(\theta) - \nabla J(\theta_{\rm prev})` from episodes drawn at :math:`\theta_a`.

    .. math:: \hat\Delta = \tilde H(\theta_a;\tau)\,(\theta - \theta_{\rm prev}),\qquad
        \theta_a = a\,\theta + (1-a)\,\theta_{\rm prev}

    with :math:`\tilde H` of :func:`hessian_shen` (Shen et al. 2019), computed as the
    product :math:`\nabla\Phi\,(\nabla\log p\cdot\Delta\theta) - \sum_h G_h F_{s_h}\Delta\theta`.
    For a fixed a its mean is :math:`\nabla^2 J(\theta_a)\,\Delta\theta`; with
    :math:`a\sim U[0,1]` drawn by the caller (and ``trajs`` sampled at :math:`\theta_a`) the mean
    over a and τ is :math:`\nabla J(\theta) - \nabla J(\theta_{\rm prev})` exactly.

    Parameters
    ----------
    trajs : Trajectories
        Episodes sampled with the policy at :math:`\theta_a`.
    policy : TabularSoftmax or LinearSoftmax
    theta_prev, theta : array_like, shape (n_params,)
        The previous and current parameters.
    a : float in [0, 1]
        The point of the segment at which ``trajs`` were sampled.

    Returns
    -------
    Estimate
        ``samples`` shape (N, n_params).

    Examples
    --------
    The mean over a is the integral of the exact one over [0, 1] (Gauss–Legendre nodes; the
    integrand is analytic in a):

    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol = TabularSoftmax(2, 2)
    >>> t0, t1 = np.array([0.5, -0.5, 0.2, 0.1]), np.array([0.1, 0.3, -0.4, 0.6])
    >>> x, wts = np.polynomial.legendre.leggauss(12)
    >>> mean = 0.0
    >>> for a, wa in zip((x + 1) / 2, wts / 2):
    ...     tr, p = enumerate_trajectories(mdp, pol.probs(a * t1 + (1 - a) * t0))
    ...     mean = mean + wa * exact_mean(hessian_aided_difference(tr, pol, t0, t1, a).samples, p)
    >>> diff = policy_gradient(mdp, pol, t1) - policy_gradient(mdp, pol, t0)
    >>> bool(np.allclose(mean, diff, atol=1e-12))
    True
    """
    trajs, theta = check_samples_policy(trajs, policy, theta)
    theta_prev = check_theta(theta_prev, policy.n_params, name="theta_prev")
    a = check_unit_interval("a", a)
    delta = theta - theta_prev
    g_phi, g_logp, curv = _shen_parts(trajs, policy, theta_prev + a * delta)
    return Estimate(g_phi * (g_logp @ delta)[:, None] - curv @ delta)
