r"""The sampled gradient source: the oracle interface answered from Monte Carlo episodes.

:class:`SampledSource` draws ``n_episodes`` episodes of the current policy with
:func:`pgexact.rollout` and answers every question of one update from that one batch:

* advantages :math:`\hat A_t` by :func:`pgexact.estimators.gae` with a critic
  (``"exact"`` :math:`V^{\pi_{old}}`, ``"fitted"`` by :func:`pgexact.estimators.fit_value_baseline`
  on the same episodes, or ``"none"``: :math:`\hat A_t = G_t`, the reward-to-go);
* gradient :math:`\hat g = \frac1N\sum_n\sum_{t<L} d^t \psi_t \hat A_t`
  (:func:`pgexact.estimators.weighted_score`);
* surrogate :math:`\hat{\bar A}(\theta') = \frac1N\sum_n\sum_{t<L} d^t (r_t(\theta') - 1)\hat A_t`,
  importance-weighted (Schulman et al. 2015, eq. 14); subtracting the ratio-free term keeps it
  unbiased for the surrogate even when :math:`\hat A` estimates Q rather than A, since
  :math:`E_{a\sim\pi_{old}}[(r - 1) V(s)] = 0`;
* Fisher-vector products with the sampled state-action weights of
  :func:`pgexact.estimators.fisher_estimate` (never forming the matrix);
* KL :math:`\sum_s \hat\nu(s) KL(\pi_{old}(\cdot|s)\|\pi_{\theta'}(\cdot|s))` with :math:`\hat\nu` the
  same sampled state weights (the per-state KL of two finite distributions is computed exactly).

Discounted MDPs are sampled with geometric stopping by default (unbiased for the
infinite-horizon quantities; see :mod:`pgexact.sampling.rollout`); ``horizon=T`` samples the
truncated objective, whose exact twin is ``ExactSource(mdp.with_horizon(T), policy)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._random import Seed, as_seed_sequence
from .._validation import check_positive_int, check_real, check_theta
from ..estimators import _steps as steps
from ..estimators import fit_value_baseline
from ..exact._checks import check_mdp, check_policy, check_policy_theta
from ..exact.evaluation import evaluate
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import SoftmaxPolicy
from ..sampling import Trajectories, rollout
from .sources import SurrogateBatch, _kl_and_gradient, _surrogate_value
from .trpo import conjugate_gradient

__all__ = ["SampledSource", "SampledOracle", "CRITICS"]

#: Critics of the advantage estimates.
CRITICS = ("exact", "fitted", "none")


class SampledOracle:
    r"""Monte Carlo answers at one parameter vector, all from one batch of episodes.

    Attributes
    ----------
    theta : numpy.ndarray, shape (n_params,)
    pi : numpy.ndarray, shape (S, A)
    trajectories : Trajectories
        The episodes drawn.
    advantages : numpy.ndarray, shape (M,)
        :math:`\hat A_t` per simulated step in the order of ``trajectories.steps`` (0 after absorption).
    gradient : numpy.ndarray, shape (n_params,)
    batch : SurrogateBatch
        One row per real step, weight :math:`d^t/N` (aggregated per (t, s, a) or (s, a) when the
        source has ``aggregate=True``).
    sa_weights : numpy.ndarray, shape (S, A)
        Sampled Fisher weights :math:`\hat c(s, a)`: :math:`\hat F = \sum_{s,a} \hat c(s,a) \psi\psi^\top`.
    J : None
        A sampled oracle does not know J (``source.exact_J`` does).
    """

    J: float | None = None

    def __init__(
        self,
        mdp: FiniteMDP,
        policy: SoftmaxPolicy,
        theta: np.ndarray,
        trajs: Trajectories,
        critic: str,
        lam: float,
        exact_mdp: FiniteMDP,
        aggregate: bool = True,
    ) -> None:
        mdp, policy, theta = check_policy_theta(mdp, policy, theta)
        if not isinstance(trajs, Trajectories) or (trajs.n_states, trajs.n_actions) != (mdp.n_states, mdp.n_actions):
            raise TypeError(f"trajs must be Trajectories sampled on mdp, got {trajs!r:.80}")
        if not isinstance(critic, str) or critic not in CRITICS:
            raise ValueError(f"critic must be one of {CRITICS}, got {critic!r:.60}")
        lam = check_real("lam", lam)
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam is {lam}, expected 0 <= lam <= 1")
        exact_mdp = check_mdp(exact_mdp, "exact_mdp")
        if not isinstance(aggregate, bool):
            raise TypeError(f"aggregate must be a bool, got {aggregate!r:.60}")
        self.policy = policy
        self.theta = theta
        logp = policy.log_probs(theta)
        self.pi = np.exp(logp)
        self.trajectories = trajs
        N = trajs.n_episodes
        sv = trajs.steps  # one entry per simulated step (memory proportional to the transitions)
        mask = sv.real
        disc = steps.discounts(trajs)
        if critic == "none":
            adv = steps.rewards_to_go(trajs)
        else:
            if critic == "exact":
                V = evaluate(exact_mdp, self.pi).V
            else:
                V = fit_value_baseline(trajs)
            adv = steps.gae(trajs, *steps.values(trajs, V), lam)
        adv = np.where(mask, adv, 0.0)
        self.advantages = adv
        w_steps = mask * disc / N
        self.gradient = steps.score_sums(trajs, policy, theta, mask * disc * adv).mean(axis=0)
        s, a = sv.state.astype(np.intp), sv.action.astype(np.intp)
        keep = mask & (w_steps > 0)
        # Fisher / KL state-action weights: those of pgexact.estimators.fisher_estimate, averaged
        fw = disc * (1.0 - trajs.gamma) if trajs.objective == "geometric" else disc / trajs.discounts().sum()
        S, A = policy.n_states, policy.n_actions
        c = np.bincount(s * A + a, weights=fw / N, minlength=S * A).reshape(S, A)
        self.sa_weights = c
        states, actions, advs, weights = s[keep], a[keep], adv[keep], w_steps[keep]
        if aggregate:
            # one row per (t, s, a) (fixed horizon: advantages are time-indexed) or per (s, a)
            # (geometric stopping: stationary), with the summed weight and the weighted mean
            # advantage. Linear functionals of the rows (surrogate, gradients) are unchanged.
            tt = sv.time[keep] if trajs.objective != "geometric" else 0
            key = (tt * S + states) * A + actions
            uniq, inv = np.unique(key, return_inverse=True)
            W = np.bincount(inv, weights=weights)
            WA = np.bincount(inv, weights=weights * advs)
            states, actions = (uniq // A) % S, uniq % A
            advs, weights = WA / W, W
        self.batch = SurrogateBatch(
            states=states,
            actions=actions,
            advantages=advs,
            log_weights=np.log(weights),
            logp_old=logp[states, actions],
            state_weights=c.sum(axis=1),
        )

    def fisher_vector_product(self, v: Any) -> np.ndarray:
        r""":math:`\hat F v = \sum_{s,a} \hat c(s,a)\, \psi(s,a)(\psi(s,a)^\top v)`, shape (n_params,)."""
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        sd = self.policy.score_dot(self.theta, v)
        return self.policy.score_contract(self.theta, self.sa_weights * sd)

    def natural_gradient(self) -> np.ndarray:
        r"""Minimum-norm solution of :math:`\hat F x = \hat g` by conjugate gradient (``rtol=1e-10``)."""
        n = self.policy.n_params
        if not np.any(self.gradient):
            return np.zeros(n)
        x = conjugate_gradient(self, self.gradient, maxiter=max(10 * n, 100), rtol=1e-10, damping=0.0)[0]
        return x

    def surrogate(self, theta_new: Any) -> float:
        r"""Importance-sampled surrogate :math:`\frac1N\sum d^t (r_t - 1)\hat A_t`."""
        t = check_theta(theta_new, self.policy.n_params, name="theta_new")
        return _surrogate_value(self.policy, self.batch, t)

    def kl(self, theta_new: Any) -> float:
        r""":math:`\sum_s \hat\nu(s) KL(\pi_{old}(\cdot|s)\|\pi_{\theta'}(\cdot|s))` at the sampled states."""
        t = check_theta(theta_new, self.policy.n_params, name="theta_new")
        return _kl_and_gradient(self.policy, self.batch, t, self.pi)[0]

    def hessian(self) -> np.ndarray:
        r"""Estimated Hessian of the sampled objective, shape (n_params, n_params), from these episodes.

        The mean of :func:`pgexact.estimators.hessian_reward_to_go` (the causal likelihood-ratio
        estimator, DiCE's Hessian without baseline): unbiased for :math:`\nabla^2 J` under
        geometric stopping or a finite horizon, and for :math:`\nabla^2 J_T` with ``horizon=T``.
        """
        from ..estimators._second_order import hessian_reward_to_go

        return np.asarray(hessian_reward_to_go(self.trajectories, self.policy, self.theta).mean)


class SampledSource:
    r"""Monte Carlo gradient source: the same interface as :class:`~pgexact.ExactSource`, from samples.

    Parameters
    ----------
    mdp : FiniteMDP
    policy : TabularSoftmax or LinearSoftmax
    n_episodes : int
        Sample budget N >= 1 per oracle (0 raises ``ValueError``).
    seed : int, SeedSequence or Generator
        Base seed. ``at(theta)`` without a seed draws from the next child of this seed (so
        successive calls see fresh, reproducible samples); ``at(theta, seed=s)`` uses ``s``.
    horizon : int, optional
        Discounted mdp: sample the truncated objective :math:`J_T` with T = ``horizon`` instead of
        geometric stopping. Finite-horizon mdp: must be ``None`` or ``mdp.horizon``.
    critic : {"none", "exact", "fitted"}
        Value function of the advantage estimates (module docstring). The default ``"none"``
        (reward-to-go) is pure Monte Carlo and unbiased. ``"exact"`` uses the closed-form
        :math:`V^{\pi_{old}}` — a closed form inside the sampled path, offered to isolate the
        policy-gradient noise from the critic's error in experiments. ``"fitted"`` regresses V on
        the same episodes, which biases the gradient by O(1/N) (see
        :func:`pgexact.estimators.learned_baseline` for the unbiased, independent-batch version).
    lam : float
        GAE λ in [0, 1] (with a critic). With the exact critic every λ gives unbiased advantages.
    aggregate : bool
        True (default): the surrogate batch has one row per distinct (t, s, a) (fixed horizon) or
        (s, a) (geometric stopping), with summed weights and weighted-mean advantages. Linear
        quantities (surrogate, gradients) are the same either way; PPO's clipped objective is
        not linear in the advantages, and only the aggregated batch makes it converge to the
        exact clipped objective as N grows (per-step rows converge to
        :math:`E[\min(r\hat A, \mathrm{clip}(r)\hat A)]`, which differs when :math:`\hat A` is noisy).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import ExactSource, TabularSoftmax
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.8, seed=0)
    >>> pol = TabularSoftmax(3, 2)
    >>> src = SampledSource(mdp, pol, 20000, seed=1)
    >>> g_hat, g = src.gradient(np.zeros(6)), ExactSource(mdp, pol).gradient(np.zeros(6))
    >>> bool(np.linalg.norm(g_hat - g) < 0.1 * np.linalg.norm(g) + 0.05)
    True
    """

    def __init__(
        self,
        mdp: FiniteMDP,
        policy: SoftmaxPolicy,
        n_episodes: int,
        *,
        seed: Seed,
        horizon: int | None = None,
        critic: str = "none",
        lam: float = 1.0,
        aggregate: bool = True,
    ) -> None:
        self.mdp = check_mdp(mdp)
        if not isinstance(aggregate, bool):
            raise TypeError(f"aggregate must be a bool, got {aggregate!r}")
        self.aggregate = aggregate
        self.policy = check_policy(self.mdp, policy)
        self.n_episodes = check_positive_int("n_episodes", n_episodes)
        self._seed = as_seed_sequence(seed)
        if not isinstance(critic, str) or critic not in CRITICS:
            raise ValueError(f"critic must be one of {CRITICS}, got {critic!r}")
        self.critic = critic
        if isinstance(lam, bool) or not isinstance(lam, (int, float, np.integer, np.floating)):
            raise TypeError(f"lam must be a real number in [0, 1], got {lam!r}")
        if not (0.0 <= float(lam) <= 1.0):
            raise ValueError(f"lam is {lam}, expected 0 <= lam <= 1")
        self.lam = float(lam)
        if horizon is not None:
            horizon = check_positive_int("horizon", horizon)
        if self.mdp.horizon is None:
            self.horizon = horizon
            self.geometric = horizon is None
            self._exact_mdp = self.mdp if self.geometric else self.mdp.with_horizon(self.horizon)
        else:
            if horizon is not None and horizon != self.mdp.horizon:
                raise ValueError(f"horizon must be None or mdp.horizon={self.mdp.horizon} for a finite-horizon mdp, got {horizon}")
            self.horizon = None
            self.geometric = False
            self._exact_mdp = self.mdp

    def __repr__(self) -> str:
        return (
            f"SampledSource(n_episodes={self.n_episodes}, critic={self.critic!r}, lam={self.lam}, "
            f"{'geometric' if self.geometric else 'horizon=' + str(self.horizon or self.mdp.horizon)})"
        )

    @property
    def n_params(self) -> int:
        """Length of θ."""
        return self.policy.n_params

    @property
    def exact_twin(self) -> Any:
        """The :class:`~pgexact.ExactSource` whose quantities this source estimates."""
        from .sources import ExactSource

        return ExactSource(self._exact_mdp, self.policy)

    def sample(self, theta: Any, seed: Seed | None = None) -> Trajectories:
        """Episodes of the policy at ``theta`` (the ones :meth:`at` uses for the same seed)."""
        _, _, t = check_policy_theta(self.mdp, self.policy, theta)
        ss = self._seed.spawn(1)[0] if seed is None else as_seed_sequence(seed)
        return rollout(
            self.mdp, self.policy.probs(t), self.n_episodes, horizon=self.horizon, geometric=self.geometric, seed=ss
        )

    def at(self, theta: Any, seed: Seed | None = None) -> SampledOracle:
        """The sampled oracle at ``theta``, from :meth:`sample` ``(theta, seed)``."""
        _, _, t = check_policy_theta(self.mdp, self.policy, theta)
        trajs = self.sample(t, seed)
        return SampledOracle(self.mdp, self.policy, t, trajs, self.critic, self.lam, self._exact_mdp, self.aggregate)

    # ---- convenience (each call draws fresh samples unless a seed is given)
    def gradient(self, theta: Any, seed: Seed | None = None) -> np.ndarray:
        r"""Estimated :math:`\nabla J(\theta)`, shape (n_params,)."""
        return self.at(theta, seed).gradient

    def fisher_vector_product(self, theta: Any, v: Any, seed: Seed | None = None) -> np.ndarray:
        r"""Estimated :math:`F(\theta) v`, shape (n_params,)."""
        v = check_theta(v, self.n_params, name="v")
        return self.at(theta, seed).fisher_vector_product(v)

    def surrogate(self, theta_old: Any, theta_new: Any, seed: Seed | None = None) -> float:
        """Estimated surrogate of ``theta_new`` from episodes of ``theta_old``."""
        return self.at(theta_old, seed).surrogate(theta_new)

    def kl(self, theta_old: Any, theta_new: Any, seed: Seed | None = None) -> float:
        """Estimated :math:`E_{d_{old}} KL(\\pi_{old}\\|\\pi_{new})` at sampled states of ``theta_old``."""
        return self.at(theta_old, seed).kl(theta_new)

    # ---- exact references for train() (the problem is a finite MDP)
    def exact_J(self, theta: Any) -> float:
        """Exact J(θ) of the objective being sampled (``exact_twin``)."""
        return evaluate(self._exact_mdp, self.policy.probs(theta)).J

    def exact_kl(self, theta_old: Any, theta_new: Any) -> float:
        """Exact KL moved under the exact old state distribution."""
        return self.exact_twin.kl(theta_old, theta_new)
