r"""The exact gradient source of the average-reward objective: PG, NPG and TRPO on the gain ρ.

The oracle answers the questions of :mod:`pgexact.updates.sources` for

.. math::
    \rho(\theta) = d_\theta^\top r_{\pi_\theta}, \qquad
    \nabla\rho = \sum_s d(s) \sum_a \pi(a|s)\nabla\log\pi(a|s)\, A(s, a),

with :math:`d` the stationary distribution and :math:`A` the differential advantage
(:mod:`pgexact.average`). The state distribution of the Fisher matrix, of the KL constraint and
of the surrogate is :math:`d`, and the surrogate is
:math:`\bar A(\pi') = \sum_s d(s) \sum_a \pi'(a|s) A(s, a)`, the first-order term of the
average-reward performance difference
:math:`\rho(\pi') - \rho(\pi) = \sum_s d_{\pi'}(s) \sum_a \pi'(a|s) A_\pi(s, a)` (Kakade &
Langford 2002, Lemma 6.1, in its average-reward form; Zhang & Ross 2021, "On-policy deep
reinforcement learning for the average-reward criterion", Lemma 1). For a tabular softmax the
natural gradient is the centred differential advantage (Kakade 2002, Theorem 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import average
from ..average.evaluation import _evaluate
from .._validation import check_theta
from ..exact._checks import check_policy, check_policy_theta
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import SoftmaxPolicy, _shifted
from .sources import ExactOracle, SurrogateBatch

__all__ = ["AverageOracle", "AverageSource"]


class AverageOracle(ExactOracle):
    r"""Closed-form answers about the gain at one parameter vector (built by :meth:`AverageSource.at`).

    Attributes
    ----------
    theta : numpy.ndarray, shape (n_params,)
    pi : numpy.ndarray, shape (S, A)
    evaluation : pgexact.average.AverageEvaluation
    gradient : numpy.ndarray, shape (n_params,)
        :math:`\nabla\rho` (:func:`pgexact.average.policy_gradient`).
    d : numpy.ndarray, shape (S,)
        The stationary distribution (Fisher matrix, KL constraint, surrogate).
    batch : SurrogateBatch
        Every (s, a) with weight :math:`d(s)\pi(a|s)` and the differential advantage.
    J : float
        The gain ρ(θ).
    """

    def __init__(self, mdp: FiniteMDP, policy: SoftmaxPolicy, theta: np.ndarray) -> None:
        mdp, policy, theta = check_policy_theta(mdp, policy, theta)
        self.mdp, self.policy, self.theta = mdp, policy, theta
        y = _shifted(policy._masked_logits(theta))
        e = np.exp(y)
        total = e.sum(axis=1, keepdims=True)
        self.pi = e / total
        self._logp = y - np.log(total)
        self.evaluation = _evaluate(mdp, self.pi)
        ev = self.evaluation
        self.J: float | None = ev.rho
        self.gradient = policy._score_contract(self.pi, ev.d[:, None] * self.pi * ev.Q)
        S, A = mdp.n_states, mdp.n_actions
        w = np.repeat(ev.d, A)
        keep = w > 0
        states, actions = np.divmod(np.arange(S * A), A)
        lp = self._logp.reshape(-1)
        self.batch = SurrogateBatch(
            states=states[keep], actions=actions[keep], advantages=np.asarray(ev.A).reshape(-1)[keep].copy(),
            log_weights=np.log(w[keep]) + lp[keep], logp_old=lp[keep].copy(), state_weights=np.array(ev.d),
        )
        self.d = self.batch.state_weights
        self._d_pi = self.d[:, None] * self.pi
        self._pos = self.d > 0
        self._nu_pos = self.d[self._pos]
        self._linear_logits = hasattr(policy, "_logit_jvp") and hasattr(policy, "_logit_jacobian_t")

    def natural_gradient(self) -> np.ndarray:
        r"""Minimum-norm :math:`F^+\nabla\rho` (:func:`pgexact.average.natural_gradient`)."""
        return average.natural_gradient(self.mdp, self.policy, self.theta)


class AverageSource:
    r"""Closed-form gradient source of the average reward ρ on a finite MDP (γ is not used).

    ``pg_step``, ``npg_step``, ``trpo_step`` (and the PPO updates, on the exact batch) run on ρ
    with this source exactly as on J with :class:`~pgexact.ExactSource`; ``J_old`` of their
    results is the gain. Every policy met must be unichain
    (:class:`~pgexact.errors.MultichainError` otherwise).

    Parameters
    ----------
    mdp : FiniteMDP or (P, r)
    policy : TabularSoftmax or LinearSoftmax

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, average
    >>> from pgexact.mdps import random_mdp
    >>> from pgexact.updates import npg_step
    >>> mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    >>> src = AverageSource(mdp, TabularSoftmax(3, 2))
    >>> theta = np.zeros(6)
    >>> for _ in range(30):
    ...     theta = npg_step(src, theta, lr=5.0).theta
    >>> bool(abs(src.exact_J(theta) - average.optimal(mdp).rho) < 1e-9)
    True
    """

    def __init__(self, mdp: Any, policy: SoftmaxPolicy) -> None:
        self.mdp = average.as_average_model(mdp)
        self.policy = check_policy(self.mdp, policy)

    def __repr__(self) -> str:
        return f"AverageSource(mdp=<{self.mdp.n_states} states, {self.mdp.n_actions} actions>, policy={self.policy!r})"

    @property
    def n_params(self) -> int:
        """Length of θ."""
        return self.policy.n_params

    def at(self, theta: Any, seed: Any = None) -> AverageOracle:
        """The exact oracle at ``theta``; ``seed`` is ignored."""
        return AverageOracle(self.mdp, self.policy, theta)

    def gradient(self, theta: Any) -> np.ndarray:
        r""":math:`\nabla\rho(\theta)`, shape (n_params,)."""
        return self.at(theta).gradient

    def exact_J(self, theta: Any) -> float:
        """The gain ρ(θ)."""
        return average.evaluate(self.mdp, self.policy.probs(theta)).rho

    def exact_kl(self, theta_old: Any, theta_new: Any) -> float:
        r""":math:`E_{s\sim d_{old}} KL(\pi_{old} \| \pi_{new})` with the stationary :math:`d_{old}`."""
        theta_old = check_theta(theta_old, self.n_params, name="theta_old")
        return self.at(theta_old).kl(theta_new)
