r"""Theorems of the exact core on finite MDPs with softmax policies.

Instances: random dense MDPs with 2..6 states and 2..4 actions, rewards N(0, 1), discount in
[0, 0.95] or a horizon 1..5, and parameters N(0, σ²) with σ in {0.5, 1, 3}. Identity residuals
are relative errors with an absolute floor of 1 (:func:`relative_error`); the quantities compared
are O(1) to O(1/(1-γ)^2) ≈ 400 here, so a residual of 1e-9 allows roughly
:math:`10^6` ulps of accumulated rounding in linear solves of condition number at most
:math:`(1+\gamma)/(1-\gamma) \le 39`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import exact
from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import LinearSoftmax, SoftmaxPolicy, TabularSoftmax
from .registry import Theorem, register, relative_error

IDENTITY_TOL = 1e-9
IDENTITY_REASON = (
    "floating-point rounding in O(S^3) linear algebra on systems of condition number "
    "<= (1+gamma)/(1-gamma) <= 39: observed residuals are ~1e-14; 1e-9 is the issue's bound"
)


@dataclass(frozen=True)
class Problem:
    mdp: FiniteMDP
    policy: SoftmaxPolicy
    theta: np.ndarray


def random_problem(
    rng: np.random.Generator,
    *,
    discounted: bool | None = None,
    linear: bool | None = None,
    max_states: int = 6,
    max_horizon: int = 5,
) -> Problem:
    """A random (mdp, policy, theta) instance; tabular or linear softmax."""
    S = int(rng.integers(2, max_states + 1))
    A = int(rng.integers(2, 5))
    is_discounted = bool(rng.integers(2)) if discounted is None else discounted
    if is_discounted:
        mdp = random_mdp(S, A, gamma=float(rng.uniform(0.0, 0.95)), seed=rng)
    else:
        mdp = random_mdp(
            S, A, gamma=float(rng.choice([1.0, 0.9])), horizon=int(rng.integers(1, max_horizon + 1)), seed=rng
        )
    is_linear = bool(rng.integers(2)) if linear is None else linear
    if is_linear:
        policy: SoftmaxPolicy = LinearSoftmax(rng.standard_normal((S, A, int(rng.integers(1, 5)))))
    else:
        policy = TabularSoftmax(S, A)
    theta = float(rng.choice([0.5, 1.0, 3.0])) * rng.standard_normal(policy.n_params)
    return Problem(mdp, policy, theta)


def _forms_residual(field: str):
    def residual(pr: Problem) -> float:
        forms = exact.policy_gradient_forms(pr.mdp, pr.policy, pr.theta)
        return relative_error(getattr(forms, field), exact.policy_gradient(pr.mdp, pr.policy, pr.theta))

    return residual


PG_STATEMENT = r"\nabla J(\theta) = \sum_s \rho_\pi(s) \sum_a \pi_\theta(a|s) \nabla\log\pi_\theta(a|s) A^\pi(s,a)"

register(
    Theorem(
        id="pg.bellman_derivative",
        statement=PG_STATEMENT + r" \;=\; \mu_0^\top (I-\gamma P_\pi)^{-1}(\partial r_\pi + \gamma\, \partial P_\pi V)",
        source="Sutton et al. 2000, Theorem 1 (policy gradient theorem), vs. differentiating V = r_pi + gamma P_pi V",
        instance=random_problem,
        residual=_forms_residual("bellman_derivative"),
        tolerance=IDENTITY_TOL,
        tolerance_reason=IDENTITY_REASON,
    )
)
register(
    Theorem(
        id="pg.q_form",
        statement=r"\sum_s \rho(s)\sum_a \pi \nabla\log\pi\, Q = \sum_s \rho(s)\sum_a \pi \nabla\log\pi\, A",
        source="Sutton et al. 2000, Theorem 1; baseline V(s) (Williams 1992, sec. 4)",
        instance=random_problem,
        residual=_forms_residual("q_form"),
        tolerance=IDENTITY_TOL,
        tolerance_reason=IDENTITY_REASON,
    )
)
register(
    Theorem(
        id="pg.occupancy_form",
        statement=r"\nabla J = \frac{1}{1-\gamma} E_{s\sim d_\pi, a\sim\pi}[\nabla\log\pi(a|s) Q(s,a)]",
        source="Kakade 2002, sec. 2; DESIGN.md conventions; course notes (advanced PG)",
        instance=random_problem,
        residual=_forms_residual("occupancy_form"),
        tolerance=IDENTITY_TOL,
        tolerance_reason=IDENTITY_REASON,
    )
)
register(
    Theorem(
        id="pg.reward_to_go_form",
        statement=r"\nabla J = E\left[\sum_t \gamma^t \nabla\log\pi(a_t|s_t) Q(s_t,a_t)\right]",
        source="Sutton & Barto 2018, sec. 13.3 (time-indexed form, marginals propagated forward)",
        instance=random_problem,
        residual=_forms_residual("reward_to_go_form"),
        tolerance=IDENTITY_TOL,
        tolerance_reason=IDENTITY_REASON + "; discounted tail truncated below 1e-16 relative",
    )
)


def _small_finite(rng: np.random.Generator) -> Problem:
    return random_problem(rng, discounted=False, max_states=3, max_horizon=4)


def _enumeration_residual(pr: Problem) -> float:
    enum = exact.reinforce_by_enumeration(pr.mdp, pr.policy, pr.theta)
    g = exact.policy_gradient(pr.mdp, pr.policy, pr.theta)
    J = exact.evaluate(pr.mdp, pr.policy.probs(pr.theta)).J
    return max(
        relative_error(enum.reinforce, g),
        relative_error(enum.reward_to_go, g),
        relative_error(enum.J, J),
    )


register(
    Theorem(
        id="pg.reinforce_enumeration",
        statement=r"E_\tau\Big[R(\tau)\sum_t\nabla\log\pi(a_t|s_t)\Big] = E_\tau\Big[\sum_t \nabla\log\pi(a_t|s_t)\sum_{t'\ge t}\gamma^{t'} r_{t'}\Big] = \nabla J",
        source="Williams 1992 (REINFORCE); causality: course notes (policy gradients, reward-to-go)",
        instance=_small_finite,
        residual=_enumeration_residual,
        tolerance=IDENTITY_TOL,
        tolerance_reason="sums over at most (S A)^H <= 20736 trajectories: rounding only",
    )
)


def _central_difference_residual(pr: Problem) -> float:
    """Richardson-extrapolated central difference of J along a random unit direction.

    With h = 1e-3 the extrapolated error is O(h^4) J^(5) ≈ 1e-12 and rounding is
    O(eps |J| / h) ≈ 1e-13 (J = O(1)-O(20)): well below the tolerance.
    """
    rng = np.random.default_rng(0)
    v = rng.standard_normal(pr.policy.n_params)
    v /= np.linalg.norm(v)

    def J(t: float) -> float:
        return exact.evaluate(pr.mdp, pr.policy.probs(pr.theta + t * v)).J

    h = 1e-3
    d1 = (J(h) - J(-h)) / (2 * h)
    d2 = (J(h / 2) - J(-h / 2)) / h
    fd = (4 * d2 - d1) / 3
    return relative_error(exact.policy_gradient(pr.mdp, pr.policy, pr.theta) @ v, fd)


register(
    Theorem(
        id="pg.central_difference",
        statement=r"v^\top\nabla J(\theta) = \lim_{h\to 0} \frac{J(\theta+hv)-J(\theta-hv)}{2h}",
        source="definition of the derivative; Richardson extrapolation of central differences",
        instance=random_problem,
        residual=_central_difference_residual,
        tolerance=1e-8,
        tolerance_reason="O(h^4) truncation (~1e-12) plus O(eps/h) rounding (~1e-13) with h = 1e-3",
    )
)


def _expected_score_residual(pr: Problem) -> float:
    pi = pr.policy.probs(pr.theta)
    score = pr.policy.score(pr.theta)
    expected = np.einsum("sa,sak->sk", pi, score)
    return float(np.max(np.abs(expected)) / max(1.0, float(np.max(np.abs(score)))))


register(
    Theorem(
        id="score.expected_zero",
        statement=r"E_{a\sim\pi_\theta(\cdot|s)}[\nabla_\theta\log\pi_\theta(a|s)] = 0 \quad \forall s",
        source="course notes (policy gradients, baselines); Williams 1992",
        instance=random_problem,
        residual=_expected_score_residual,
        tolerance=1e-12,
        tolerance_reason="a sum of A <= 4 products of O(1) numbers: a few ulps",
    )
)


def _pdl_instance(discounted: bool):
    def instance(rng: np.random.Generator) -> tuple[Problem, np.ndarray]:
        pr = random_problem(rng, discounted=discounted)
        return pr, pr.theta + rng.standard_normal(pr.policy.n_params)

    return instance


def _pdl_residual(inst: tuple[Problem, np.ndarray]) -> float:
    pr, theta_new = inst
    pdl = exact.performance_difference(pr.mdp, pr.policy.probs(pr.theta), pr.policy.probs(theta_new))
    return relative_error(pdl.lhs, pdl.rhs)


PDL_STATEMENT = r"J(\pi') - J(\pi) = \frac{1}{1-\gamma}E_{s\sim d_{\pi'}, a\sim\pi'}[A^\pi(s,a)]"
for disc, name, stmt in (
    (True, "pdl.discounted", PDL_STATEMENT),
    (False, "pdl.finite_horizon", r"J(\pi') - J(\pi) = \sum_{t<H}\gamma^t E_{s\sim p'_t, a\sim\pi'}[A^\pi_t(s,a)]"),
):
    register(
        Theorem(
            id=name,
            statement=stmt,
            source="Kakade & Langford 2002, Lemma 6.1; course notes (advanced PG, 'Policy Gradient is Just Policy Iteration')",
            instance=_pdl_instance(disc),
            residual=_pdl_residual,
            tolerance=IDENTITY_TOL,
            tolerance_reason=IDENTITY_REASON,
        )
    )


def _surrogate_gradient_residual(pr: Problem) -> float:
    g_sur = exact.surrogate_gradient(pr.mdp, pr.policy, pr.theta, pr.theta)
    return relative_error(g_sur, exact.policy_gradient(pr.mdp, pr.policy, pr.theta))


register(
    Theorem(
        id="surrogate.gradient_at_old",
        statement=r"\nabla_{\theta'}\bar A(\theta')\big|_{\theta'=\theta} = \nabla J(\theta), \quad \bar A(\theta') = \sum_t E_{s_t\sim p_\theta}E_{a_t\sim\pi_\theta}\Big[\frac{\pi_{\theta'}}{\pi_\theta}\gamma^t A^{\pi_\theta}\Big]",
        source="Schulman et al. 2015, eq. 14 and sec. 3; Kakade & Langford 2002, sec. 4",
        instance=random_problem,
        residual=_surrogate_gradient_residual,
        tolerance=IDENTITY_TOL,
        tolerance_reason=IDENTITY_REASON,
    )
)


def _kl_hessian_residual(pr: Problem) -> float:
    """Jacobian of the analytic KL gradient at θ' = θ by Richardson central differences.

    h = 1e-3: truncation O(h^4) ≈ 1e-12, rounding O(eps/h) ≈ 2e-13.
    """
    mdp, pol, th = pr.mdp, pr.policy, pr.theta
    d = exact.occupancy(mdp, pol.probs(th))
    n = pol.n_params
    H = np.empty((n, n))
    h = 1e-3
    for k in range(n):
        e = np.zeros(n)
        e[k] = 1.0

        def grad(t: float) -> np.ndarray:
            return exact.kl_expected_gradient(pol, th, th + t * e, d)

        c1 = (grad(h) - grad(-h)) / (2 * h)
        c2 = (grad(h / 2) - grad(-h / 2)) / h
        H[:, k] = (4 * c2 - c1) / 3
    return relative_error(H, exact.fisher(mdp, pol, th))


register(
    Theorem(
        id="kl.hessian_is_fisher",
        statement=r"\nabla^2_{\theta'} E_{s\sim d_\pi} KL(\pi_\theta(\cdot|s)\,\|\,\pi_{\theta'}(\cdot|s))\big|_{\theta'=\theta} = F(\theta)",
        source="Kakade 2002, sec. 3; Schulman et al. 2015, Appendix C; course notes (natural gradient)",
        instance=lambda rng: random_problem(rng, max_states=4),
        residual=_kl_hessian_residual,
        tolerance=1e-8,
        tolerance_reason="Richardson central differences: O(h^4) truncation + O(eps/h) rounding with h = 1e-3",
    )
)


def _kl_cubic_residual(inst: tuple[Problem, np.ndarray]) -> float:
    """Positive part of |KL - quadratic model| - Lagrange bound, relative to the bound.

    f(t) = E_d KL(pi_theta || pi_{theta + t Delta}) has f(0) = f'(0) = 0, f''(0) = Delta^T F Delta,
    and the third derivative at any xi is E_d[kappa_3 of X = Delta^T grad z(s, .) under
    pi_{theta + xi Delta}(.|s)] (derivatives of the log-partition function are cumulants).
    |kappa_3| <= range_s(X)^3 / 4, so |f(t) - t^2/2 Delta^T F Delta| <= t^3/24 E_d[range_s(X)^3]
    for every t: an explicit O(t^3).
    """
    pr, delta = inst
    pol, th = pr.policy, pr.theta
    d = exact.occupancy(pr.mdp, pol.probs(th))
    quad = float(delta @ exact.fisher(pr.mdp, pol, th) @ delta)
    X = pol._logit_jvp(delta)  # (S, A): Delta^T grad z(s, a), independent of theta (linear logits)
    constant = float(d @ (X.max(axis=1) - X.min(axis=1)) ** 3) / 24
    worst = 0.0
    for t in (0.3, 0.1, 0.03, 0.01):
        kl = exact.kl_expected(pol.probs(th), pol.probs(th + t * delta), d)
        excess = abs(kl - 0.5 * t * t * quad) - constant * t**3
        if excess > 1e-13 * t * t * abs(quad):  # rounding of kl and of the quadratic form
            worst = max(worst, excess / max(constant * t**3, 1e-300))
    return worst


register(
    Theorem(
        id="kl.quadratic_error_cubic",
        statement=r"\Big|E_{d}KL(\pi_\theta\|\pi_{\theta+t\Delta}) - \tfrac{t^2}{2}\Delta^\top F\Delta\Big| \le \frac{t^3}{24} E_{s\sim d}\big[(\max_a X_{sa} - \min_a X_{sa})^3\big],\ X_{sa} = \Delta^\top\nabla_\theta z(s,a)",
        source="Taylor's theorem with Lagrange remainder (log-partition cumulants); Schulman et al. 2015, sec. 6 (quadratic approximation of the KL constraint)",
        instance=lambda rng: (
            (pr := random_problem(rng, discounted=True)),
            rng.standard_normal(pr.policy.n_params),
        ),
        residual=_kl_cubic_residual,
        tolerance=1e-9,
        tolerance_reason="inequality with an explicit constant: only rounding (1e-13 of the quadratic term) may exceed it",
    )
)


def _tabular_npg_residual(pr: Problem) -> float:
    """w = natural_gradient solves F w = ∇J and is orthogonal to F's null space (min-norm)."""
    mdp, pol, th = pr.mdp, pr.policy, pr.theta
    w = exact.natural_gradient(mdp, pol, th)
    g = exact.policy_gradient(mdp, pol, th)
    Fw = exact.fisher_vector_product(mdp, pol, th, w)
    pi = pol.probs(th)
    ev = exact.evaluate(mdp, pi)
    A_closed = ev.A / (1 - mdp.gamma)
    closed = (A_closed - A_closed.mean(axis=1, keepdims=True)).reshape(-1)
    return max(relative_error(Fw, g), relative_error(w, closed))


register(
    Theorem(
        id="npg.tabular_closed_form",
        statement=r"F^+\nabla J = \frac{A^\pi(s,a) - \overline{A^\pi(s,\cdot)}}{1-\gamma} \text{ (tabular softmax)}",
        source="Kakade 2002, Theorem 1; Agarwal et al. 2021, Lemma 5.1",
        instance=lambda rng: random_problem(rng, discounted=True, linear=False),
        residual=_tabular_npg_residual,
        tolerance=IDENTITY_TOL,
        tolerance_reason=IDENTITY_REASON,
    )
)


def _compatible_residual(pr: Problem) -> float:
    """Weighted least squares of A/(1-γ) on the score, solved on the (S·A, n) design matrix."""
    mdp, pol, th = pr.mdp, pr.policy, pr.theta
    pi = pol.probs(th)
    ev = exact.evaluate(mdp, pi)
    sw = np.sqrt(ev.d[:, None] * pi).reshape(-1)  # type: ignore[index]
    X = pol.score(th).reshape(-1, pol.n_params) * sw[:, None]
    y = (ev.A / (1 - mdp.gamma)).reshape(-1) * sw
    w_ls = np.linalg.lstsq(X, y, rcond=None)[0]
    w_npg = exact.natural_gradient(mdp, pol, th)
    # compare the fitted values psi^T w, unique even where w is not
    return relative_error(X @ w_npg, X @ w_ls)


register(
    Theorem(
        id="npg.compatible_function_approximation",
        statement=r"F^+\nabla J = \arg\min_w E_{s\sim d_\pi,a\sim\pi}\Big[\big(\nabla\log\pi(a|s)^\top w - \tfrac{A^\pi(s,a)}{1-\gamma}\big)^2\Big]",
        source="Sutton et al. 2000, Theorem 2; Kakade 2002, Theorem 1",
        instance=lambda rng: random_problem(rng, discounted=True, linear=True),
        residual=_compatible_residual,
        tolerance=1e-8,
        tolerance_reason="two SVD least-squares solves of condition number up to ~1e3 on these instances",
    )
)


def _occupancy_residual(pr: Problem) -> float:
    mdp, pi = pr.mdp, pr.policy.probs(pr.theta)
    d = exact.evaluate(mdp, pi).d
    T = int(np.ceil(np.log(1e-16 * (1 - mdp.gamma)) / np.log(mdp.gamma))) if mdp.gamma > 0 else 1
    p = exact.state_marginals(mdp, pi, T)
    unrolled = (1 - mdp.gamma) * (mdp.gamma ** np.arange(T)) @ p
    return max(relative_error(d, unrolled), abs(float(d.sum()) - 1.0))  # type: ignore[union-attr]


register(
    Theorem(
        id="occupancy.unrolled",
        statement=r"(1-\gamma)\mu_0^\top(I-\gamma P_\pi)^{-1} = (1-\gamma)\sum_{t\ge 0}\gamma^t p_t, \quad \sum_s d_\pi(s) = 1",
        source="Neumann series; Kakade & Langford 2002, sec. 2",
        instance=lambda rng: random_problem(rng, discounted=True),
        residual=_occupancy_residual,
        tolerance=IDENTITY_TOL,
        tolerance_reason=IDENTITY_REASON + "; series truncated where the tail is below 1e-16",
    )
)


def _drift_instance(rng: np.random.Generator) -> tuple[Problem, np.ndarray]:
    pr = random_problem(rng, discounted=False, max_horizon=5)
    return pr, pr.theta + float(rng.choice([0.05, 0.3, 1.0])) * rng.standard_normal(pr.policy.n_params)


def _drift_residual(inst: tuple[Problem, np.ndarray]) -> float:
    """Positive part of  sum_s |p'_t(s) - p_t(s)| - 2 eps t  over t, eps = max_s TV."""
    pr, theta_new = inst
    pi, pi_new = pr.policy.probs(pr.theta), pr.policy.probs(theta_new)
    T = 10
    p, p_new = exact.state_marginals(pr.mdp, pi, T), exact.state_marginals(pr.mdp, pi_new, T)
    eps = exact.tv_max(pi_new, pi)
    gap = np.abs(p_new - p).sum(axis=1) - 2 * eps * np.arange(T)
    return max(0.0, float(np.max(gap)))


register(
    Theorem(
        id="marginals.drift_bound",
        statement=r"\sum_s|p_{\theta'}(s_t=s)-p_\theta(s_t=s)| \le 2\epsilon t,\quad \epsilon=\max_s D_{TV}(\pi_{\theta'}(\cdot|s),\pi_\theta(\cdot|s))",
        source="course notes (advanced PG, 'Bounding the Error'; coupling argument, with TV not KL); Schulman et al. 2015, Lemma 3",
        instance=_drift_instance,
        residual=_drift_residual,
        tolerance=1e-12,
        tolerance_reason="inequality: only rounding of sums of S <= 6 probabilities may exceed the bound",
    )
)


def _stationary_residual(pr: Problem) -> float:
    pi = pr.policy.probs(pr.theta)
    nu = exact.stationary_distribution(pr.mdp, pi)
    return max(float(np.max(np.abs(nu @ pr.mdp.policy_transition(pi) - nu))), abs(float(nu.sum()) - 1))


register(
    Theorem(
        id="markov.stationary",
        statement=r"\nu P_\pi = \nu,\quad \textstyle\sum_s \nu(s) = 1",
        source="Levin, Peres & Wilmer, Markov Chains and Mixing Times, sec. 1.5",
        instance=lambda rng: random_problem(rng, discounted=True),
        residual=_stationary_residual,
        tolerance=1e-12,
        tolerance_reason="SVD null vector of a dense random (irreducible) chain: rounding only",
    )
)


def _value_residual(pr: Problem) -> float:
    """Bellman equations: V = r_pi + gamma P_pi V (or the backward recursion), A = Q - V, J = mu0 V."""
    mdp, pi = pr.mdp, pr.policy.probs(pr.theta)
    ev = exact.evaluate(mdp, pi)
    if mdp.horizon is None:
        res = ev.V - mdp.policy_reward(pi) - mdp.gamma * mdp.policy_transition(pi) @ ev.V
        return relative_error(res, np.zeros_like(res)) + abs(float(np.einsum("sa,sa->s", pi, ev.A).max(initial=0)))
    V_next = np.vstack([ev.V[1:], np.zeros((1, mdp.n_states))])
    res = ev.V - mdp.policy_reward(pi) - mdp.gamma * V_next @ mdp.policy_transition(pi).T
    return relative_error(res, np.zeros_like(res))


register(
    Theorem(
        id="bellman.evaluation",
        statement=r"V^\pi = r_\pi + \gamma P_\pi V^\pi,\quad V_t = r_\pi + \gamma P_\pi V_{t+1}",
        source="Sutton & Barto 2018, eq. 3.14; DESIGN.md conventions",
        instance=random_problem,
        residual=_value_residual,
        tolerance=IDENTITY_TOL,
        tolerance_reason=IDENTITY_REASON,
    )
)
