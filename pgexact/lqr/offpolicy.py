r"""The off-policy deterministic policy gradient with a fixed behaviour state distribution (DDPG's
approximation) on LQR, and its bias against the true gradient, in closed form.

DDPG (Lillicrap et al. 2016; Silver et al. 2014, sec. 4.2, "off-policy deterministic policy
gradient") differentiates :math:`J_D(\theta) = E_{x\sim D}[Q^{\mu_\theta}(x, \mu_\theta(x))]` only
through the action, with the state distribution D held fixed:

.. math::

    g_D = E_{x\sim D}\big[\nabla_\theta\mu_\theta(x)^\top\nabla_u Q^{\mu_\theta}(x, u)|_{u = \mu_\theta(x)}\big].

For :math:`\mu(x) = -Kx` on LQR, :math:`\nabla_u Q(x, -Kx) = 2E_Kx` (reward convention, with
:math:`E_K = (R + \gamma B^\top P_KB)K - \gamma B^\top P_KA - N^\top`), so with
:math:`\Sigma_D = E_D[xx^\top]`

.. math::

    g_D = -2E_K\Sigma_D, \qquad \nabla_K J = -2E_K\Sigma_K, \qquad
    \nabla_K J - g_D = -2E_K(\Sigma_K - \Sigma_D),

where :math:`\Sigma_K` is the discounted state correlation of the model (Fazel et al. 2018,
Lemma 1). The bias vanishes only when :math:`\Sigma_D = \Sigma_K` (D the unnormalized discounted
visitation: the on-policy DPG theorem) or at a stationary point (:math:`E_K = 0`); with the
*normalized* visitation :math:`\Sigma_D = (1-\gamma)\Sigma_K` it is the factor :math:`1-\gamma`.
With :math:`D = N(0, \Sigma_0)` — the start distribution, so that :math:`J_D = J` — DDPG's
"gradient" ignores how the gain moves the states after the first step:
:math:`\Sigma_K - \Sigma_0 = \sum_{t\ge1}\gamma^tE[x_tx_t^\top]`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_covariance
from ._args import check_infinite, check_lqr, check_policy
from .evaluation import LQREvaluation, _evaluate
from .gradients import _gain_error
from .model import LQR
from .policy import LinearGaussian

__all__ = ["ddpg_gradient", "ddpg_bias"]


def _setup(lqr: Any, policy: Any, theta: Any, state_cov: Any) -> tuple[LinearGaussian, LQREvaluation, np.ndarray]:
    lqr = check_lqr(lqr)
    check_infinite(lqr, "the off-policy deterministic policy gradient")
    policy, theta = check_policy(lqr, policy, theta)
    if not policy.is_deterministic:
        raise ValueError("the off-policy deterministic policy gradient needs a deterministic policy "
                         "(LinearGaussian(n_states, n_actions) without noise_cov)")
    SD = check_covariance("state_cov", state_cov, lqr.n_states, " (n_states, n_states)")
    ev = _evaluate(lqr, policy.gain(theta), np.zeros((lqr.n_actions, lqr.n_actions)), gain="the gain K of theta")
    return policy, ev, SD


@np.errstate(under="ignore")
def ddpg_gradient(lqr: LQR, policy: LinearGaussian, theta: Any, *, state_cov: Any) -> np.ndarray:
    r"""DDPG's off-policy gradient :math:`g_D = E_{x\sim D}[\nabla_\theta\mu^\top\nabla_uQ^{\mu}(x, \mu(x))] = -\mathrm{vec}(2E_K\Sigma_D)`.

    Parameters
    ----------
    lqr : LQR
        Infinite horizon.
    policy : LinearGaussian
        Deterministic (:math:`\mu(x) = -Kx`).
    theta : array_like, shape (m n,)
    state_cov : array_like, shape (n, n)
        Second moment :math:`\Sigma_D = E_D[xx^\top]` of the fixed behaviour state distribution D
        (only the second moment matters: the integrand is quadratic in x).

    Returns
    -------
    numpy.ndarray, shape (m n,)
        Reward convention (an ascent direction of J = -C when it is one at all).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR, LinearGaussian
    >>> from pgexact.lqr import evaluate, policy_gradient
    >>> lqr = LQR([[0.9]], [[1.0]], [[1.0]], [[1.0]], gamma=0.9, Sigma0=[[1.0]])
    >>> pol = LinearGaussian(1, 1)
    >>> g = ddpg_gradient(lqr, pol, [0.1], state_cov=lqr.Sigma0)  # D = start distribution
    >>> true = policy_gradient(lqr, pol, [0.1])
    >>> bool(np.allclose(g + ddpg_bias(lqr, pol, [0.1], state_cov=lqr.Sigma0), true, rtol=1e-12))
    True
    >>> bool(abs(g[0] - true[0]) > 0.5 * abs(true[0]))  # DDPG misses most of the gradient here
    True
    """
    policy, ev, SD = _setup(lqr, policy, theta, state_cov)
    return -(2.0 * _gain_error(ev) @ SD).reshape(-1)


@np.errstate(under="ignore")
def ddpg_bias(lqr: LQR, policy: LinearGaussian, theta: Any, *, state_cov: Any) -> np.ndarray:
    r"""The bias :math:`\nabla_\theta J - g_D = -\mathrm{vec}\big(2E_K(\Sigma_K - \Sigma_D)\big)` of :func:`ddpg_gradient`, shape (m n,).

    Arguments as :func:`ddpg_gradient`; :math:`\Sigma_K` is the model's discounted state
    correlation (start distribution :math:`N(0, \Sigma_0)`, process noise included).
    """
    policy, ev, SD = _setup(lqr, policy, theta, state_cov)
    return -(2.0 * _gain_error(ev) @ (ev.Sigma - SD)).reshape(-1)
