r"""The surrogate objective and the performance difference lemma.

Performance difference lemma (Kakade & Langford 2002, Lemma 6.1):

.. math::

    J(\pi') - J(\pi) = \frac{1}{1-\gamma} E_{s \sim d_{\pi'}} E_{a \sim \pi'}[A^\pi(s, a)]
    \quad\text{(discounted)}, \qquad
    J(\pi') - J(\pi) = \sum_{t<H} \gamma^t E_{s \sim p'_t} E_{a \sim \pi'}[A^\pi_t(s, a)]
    \quad\text{(finite horizon)}.

The surrogate (Schulman et al. 2015, eq. 3 and 14; the lecture notes' :math:`\bar A(\theta')`)
keeps the *old* state distribution and importance-weights the *new* actions:

.. math::

    \bar A(\pi') = \frac{1}{1-\gamma} E_{s \sim d_\pi} E_{a \sim \pi}\left[\frac{\pi'(a|s)}{\pi(a|s)} A^\pi(s, a)\right]
    = \frac{1}{1-\gamma} \sum_s d_\pi(s) \sum_a \pi'(a|s) A^\pi(s, a)

(finite horizon: :math:`\sum_t \gamma^t` over :math:`p_t`). The right-hand form is used; it
equals the importance-weighted form whenever :math:`\pi(a|s) > 0` wherever :math:`\pi'(a|s) > 0`.
:math:`\bar A(\pi) = 0` and :math:`\nabla_{\theta'} \bar A = \nabla J` at :math:`\theta' = \theta`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import SoftmaxPolicy
from ._checks import check_mdp, check_pi, check_policy_theta
from .._validation import check_theta
from .evaluation import Evaluation, _evaluate

__all__ = ["surrogate", "surrogate_gradient", "PerformanceDifference", "performance_difference"]


def _advantage_weights(mdp: FiniteMDP, ev_old: Evaluation) -> np.ndarray:
    """Σ_t γ^t p_t(s) A_t(s, a) (finite) or ρ(s) A(s, a) (discounted): shape (S, A)."""
    if mdp.horizon is None:
        return (ev_old.d / (1.0 - mdp.gamma))[:, None] * ev_old.A  # type: ignore[operator]
    disc = mdp.gamma ** np.arange(mdp.horizon)
    return np.einsum("t,ts,tsa->sa", disc, ev_old.p, ev_old.A)


def surrogate(mdp: FiniteMDP, pi_old: Any, pi_new: Any) -> float:
    r"""Surrogate advantage :math:`\bar A(\pi_{new})` under the old state distribution (module docstring).

    Parameters
    ----------
    mdp : FiniteMDP
    pi_old, pi_new : array_like, shape (S, A), or tuple (policy, theta)
        Policy matrices or parametrized policies with their parameters
        (:func:`pgexact.policies.as_probabilities`).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 2, gamma=0.9, seed=0)
    >>> pi = np.full((4, 2), 0.5)
    >>> abs(surrogate(mdp, pi, pi)) < 1e-12  # no change, no surrogate improvement
    True
    """
    mdp = check_mdp(mdp)
    pi_old = check_pi(mdp, pi_old, name="pi_old")
    pi_new = check_pi(mdp, pi_new, name="pi_new")
    return float(np.sum(_advantage_weights(mdp, _evaluate(mdp, pi_old)) * pi_new))


def surrogate_gradient(mdp: FiniteMDP, policy: SoftmaxPolicy, theta_old: Any, theta_new: Any) -> np.ndarray:
    r"""Gradient in :math:`\theta_{new}` of the surrogate, shape (n_params,).

    .. math:: \nabla_{\theta'} \bar A = \sum_{s,a} \rho_{old}(s) A_{old}(s, a)\, \pi_{\theta'}(a|s) \nabla \log\pi_{\theta'}(a|s)

    At :math:`\theta' = \theta_{old}` this is the policy gradient (Schulman et al. 2015, eq. 14
    and the remark after it; Kakade & Langford 2002, sec. 4).
    """
    mdp, policy, theta_old = check_policy_theta(mdp, policy, theta_old, name="theta_old")
    theta_new = check_theta(theta_new, policy.n_params, name="theta_new")
    weights = _advantage_weights(mdp, _evaluate(mdp, policy._probs(theta_old)))
    pi_new = policy._probs(theta_new)
    return policy._score_contract(pi_new, weights * pi_new)


@dataclass(frozen=True, eq=False)
class PerformanceDifference:
    r"""Both sides of the performance difference lemma.

    Attributes
    ----------
    lhs : float
        :math:`J(\pi_{new}) - J(\pi_{old})`, from two exact evaluations.
    rhs : float
        :math:`\frac{1}{1-\gamma} E_{s\sim d_{new}, a\sim\pi_{new}}[A^{old}(s,a)]`
        (finite horizon: :math:`\sum_t \gamma^t E_{p^{new}_t}`).
    surrogate : float
        The same expectation under the *old* state distribution, :math:`\bar A(\pi_{new})`.
    """

    lhs: float
    rhs: float
    surrogate: float


def performance_difference(mdp: FiniteMDP, pi_old: Any, pi_new: Any) -> PerformanceDifference:
    r"""Both sides of the performance difference lemma (Kakade & Langford 2002, Lemma 6.1).

    See the module docstring for the formulas; the two sides agree to rounding error.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 2, gamma=0.9, seed=0)
    >>> pdl = performance_difference(mdp, np.full((4, 2), 0.5), np.tile([0.9, 0.1], (4, 1)))
    >>> bool(abs(pdl.lhs - pdl.rhs) < 1e-12)
    True
    """
    mdp = check_mdp(mdp)
    pi_old = check_pi(mdp, pi_old, name="pi_old")
    pi_new = check_pi(mdp, pi_new, name="pi_new")
    ev_old, ev_new = _evaluate(mdp, pi_old), _evaluate(mdp, pi_new)
    if mdp.horizon is None:
        rhs = float(ev_new.d @ np.sum(pi_new * ev_old.A, axis=1)) / (1.0 - mdp.gamma)
    else:
        disc = mdp.gamma ** np.arange(mdp.horizon)
        rhs = float(np.einsum("t,ts,sa,tsa->", disc, ev_new.p, pi_new, ev_old.A))
    sur = float(np.sum(_advantage_weights(mdp, ev_old) * pi_new))
    return PerformanceDifference(lhs=ev_new.J - ev_old.J, rhs=rhs, surrogate=sur)
