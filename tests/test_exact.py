"""The exact core against independent computations, published values and random instances."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

import pgexact as pg
from pgexact import exact
from pgexact.errors import NotUniqueError
from pgexact.mdps import bandit, random_mdp, short_corridor
from pgexact.testing import finite_mdps, linear_problems, policy_problems, tabular_problems

RTOL = 1e-9  # identities hold to <= 1e-9 relative (observed ~1e-14)


def rel(a, b):
    """Relative error with an absolute floor of 1 (all quantities here are O(1)-O(1/(1-gamma)^2))."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


# ----------------------------------------------------------------------------- gradient forms
@settings(max_examples=80, deadline=None)
@given(policy_problems())
def test_gradient_forms_agree(problem):
    mdp, policy, theta = problem
    g = pg.policy_gradient(mdp, policy, theta)
    f = exact.policy_gradient_forms(mdp, policy, theta)
    for name in ("bellman_derivative", "q_form", "advantage_form", "occupancy_form", "reward_to_go_form"):
        assert rel(getattr(f, name), g) < RTOL, name
    J, g2 = exact.value_and_gradient(mdp, policy, theta)
    assert J == pg.evaluate(mdp, policy.probs(theta)).J and np.array_equal(g, g2)


def complex_step_J(mdp, policy, theta):
    """J(theta) with complex arithmetic, written independently of pgexact.exact (for the complex step)."""
    z = policy._logits(theta)
    pi = np.exp(z - logsumexp(z, axis=1, keepdims=True))
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    r_pi = np.einsum("sa,sa->s", pi, mdp.r)
    if mdp.horizon is None:
        return mdp.mu0 @ np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * P_pi, r_pi)
    V = np.zeros(mdp.n_states, dtype=complex)
    for _ in range(mdp.horizon):
        V = r_pi + mdp.gamma * P_pi @ V
    return mdp.mu0 @ V


@settings(max_examples=60, deadline=None)
@given(policy_problems())
def test_gradient_matches_complex_step(problem):
    """Complex step: dJ/dtheta_k = Im J(theta + i h e_k) / h with no cancellation error."""
    mdp, policy, theta = problem
    h = 1e-30
    cs = np.array(
        [complex_step_J(mdp, policy, theta + 1j * h * np.eye(policy.n_params)[k]).imag / h for k in range(policy.n_params)]
    )
    assert rel(pg.policy_gradient(mdp, policy, theta), cs) < RTOL
    assert abs(complex_step_J(mdp, policy, theta).real - pg.evaluate(mdp, policy.probs(theta)).J) < 1e-12 * max(
        1, abs(pg.evaluate(mdp, policy.probs(theta)).J)
    )


@settings(max_examples=40, deadline=None)
@given(policy_problems(discounted=False, max_states=3, max_actions=3, max_horizon=4))
def test_enumeration_of_trajectories(problem):
    """J, REINFORCE and reward-to-go as sums over every trajectory (no V, Q, or linear solve)."""
    mdp, policy, theta = problem
    enum = exact.reinforce_by_enumeration(mdp, policy, theta)
    g = pg.policy_gradient(mdp, policy, theta)
    assert rel(enum.J, pg.evaluate(mdp, policy.probs(theta)).J) < RTOL
    assert rel(enum.reinforce, g) < RTOL
    assert rel(enum.reward_to_go, g) < RTOL


def test_enumeration_limits():
    mdp = random_mdp(4, 3, gamma=1.0, horizon=12, seed=0)
    pol = pg.TabularSoftmax(4, 3)
    with pytest.raises(ValueError, match="max_trajectories"):
        exact.reinforce_by_enumeration(mdp, pol, np.zeros(12), max_trajectories=1000)
    with pytest.raises(ValueError, match="needs a finite horizon"):
        exact.reinforce_by_enumeration(mdp.with_horizon(None, gamma=0.9), pol, np.zeros(12))


# ----------------------------------------------------------------------------- published values
def test_sutton_barto_example_4_1_gridworld():
    """Sutton & Barto (2018), Figure 4.1: 4x4 gridworld, equiprobable random policy, gamma = 1.

    Published v_pi (rounded to integers in the figure). The episodic task is represented with
    gamma = 1 and horizon 3000: the non-terminal chain is substochastic with spectral radius
    < 0.97, so the truncation error is below 1e-30.
    """
    S, A = 16, 4
    moves = [(-1, 0), (0, 1), (1, 0), (0, -1)]
    P = np.zeros((S, A, S))
    for s in range(S):
        row, col = divmod(s, 4)
        for a, (dr, dc) in enumerate(moves):
            nr, nc = row + dr, col + dc
            P[s, a, nr * 4 + nc if (0 <= nr < 4 and 0 <= nc < 4) else s] = 1.0
    r = -np.ones((S, A))
    for term in (0, 15):
        P[term] = 0.0
        P[term, :, term] = 1.0
        r[term] = 0.0
    mdp = pg.FiniteMDP(P, r, np.full(S, 1 / S), 1.0, horizon=3000)
    V = pg.evaluate(mdp, np.full((S, A), 0.25)).V[0]
    published = np.array([0, -14, -20, -22, -14, -18, -20, -20, -20, -20, -18, -14, -22, -20, -14, 0])
    np.testing.assert_allclose(V, published, atol=0.5)  # the figure rounds to integers
    # the exact values are integers here (a known property of this example)
    np.testing.assert_allclose(V, np.round(V), atol=1e-9)


def test_short_corridor_optimum():
    """Sutton & Barto (2018), Example 13.1: optimum p ≈ 0.59 with J ≈ -11.6."""
    from scipy.optimize import minimize_scalar

    sc = short_corridor()

    def J(p):
        return pg.evaluate(sc.mdp, pg.LinearSoftmax(sc.features).probs(sc.theta_for(p))).J

    opt = minimize_scalar(lambda p: -J(p), bounds=(0.05, 0.95), method="bounded", options={"xatol": 1e-6})
    assert abs(opt.x - 0.59) <= 0.005
    assert -11.7 < -opt.fun < -11.6  # published "about -11.6" (the exact optimum is -11.657)
    # closed form derived by hand from the three Bellman equations: J(p) = (2p - 4) / (p (1 - p)),
    # maximized at p* = 2 - sqrt(2); the policy gradient vanishes there.
    ps = np.array([0.05, 0.3, 0.5, 0.7, 0.95])
    np.testing.assert_allclose([J(p) for p in ps], (2 * ps - 4) / (ps * (1 - ps)), rtol=1e-12)
    p_star = 2 - np.sqrt(2)
    g = pg.policy_gradient(sc.mdp, pg.LinearSoftmax(sc.features), sc.theta_for(p_star))
    assert np.max(np.abs(g)) < 1e-11


def test_bandit_gradient_closed_form():
    """Bandit: grad J = pi * (means - pi . means) for tabular softmax (Sutton & Barto 2018, sec. 2.8)."""
    means = np.array([1.0, 0.2, -0.5])
    mdp, pol, theta = bandit(means), pg.TabularSoftmax(1, 3), np.array([0.3, -0.1, 0.8])
    pi = pol.probs(theta)[0]
    np.testing.assert_allclose(pg.policy_gradient(mdp, pol, theta), pi * (means - pi @ means), rtol=1e-14)


# ----------------------------------------------------------------------------- Fisher & NPG
@settings(max_examples=60, deadline=None)
@given(tabular_problems())
def test_tabular_natural_gradient_is_min_norm_solution(problem):
    mdp, policy, theta = problem
    w = pg.natural_gradient(mdp, policy, theta)
    F = pg.fisher(mdp, policy, theta)
    g = pg.policy_gradient(mdp, policy, theta)
    scale = max(1.0, float(np.max(np.abs(w))))
    assert np.max(np.abs(F @ w - g)) <= 1e-9 * scale
    # minimum norm: w lies in the range of F. Block s of F is d(s) (diag pi_s - pi_s pi_s^T), whose
    # range is {v supported on supp(pi_s) with sum(v) = 0} when d(s) > 0, and {0} when d(s) = 0.
    d = pg.occupancy(mdp, policy.probs(theta))
    W = w.reshape(mdp.n_states, mdp.n_actions)
    pi = policy.probs(theta)
    for s_ in range(mdp.n_states):
        if d[s_] == 0:
            assert np.all(W[s_] == 0)
        else:
            assert np.all(W[s_][pi[s_] == 0] == 0)
            assert abs(W[s_].sum()) <= 1e-12 * scale * mdp.n_actions


@settings(max_examples=40, deadline=None)
@given(linear_problems(discounted=True))
def test_linear_natural_gradient_solves_fisher_system(problem):
    mdp, policy, theta = problem
    w = pg.natural_gradient(mdp, policy, theta)
    F = pg.fisher(mdp, policy, theta)
    np.testing.assert_allclose(F @ w, pg.policy_gradient(mdp, policy, theta), atol=1e-9 * max(1, np.abs(w).max()))
    np.testing.assert_allclose(pg.fisher_vector_product(mdp, policy, theta, w), F @ w, atol=1e-12 * max(1, np.abs(w).max()))


def test_tabular_natural_gradient_never_builds_the_dense_score(monkeypatch):
    mdp = random_mdp(300, 5, gamma=0.95, seed=1)
    pol = pg.TabularSoftmax(300, 5)

    def forbidden(*args, **kwargs):
        raise AssertionError("dense score built")

    monkeypatch.setattr(pg.TabularSoftmax, "score", forbidden)
    w = pg.natural_gradient(mdp, pol, np.zeros(1500))
    assert w.shape == (1500,)


@settings(max_examples=30, deadline=None)
@given(tabular_problems(discounted=False))
def test_trajectory_fisher_is_horizon_times_fisher_when_undiscounted(problem):
    mdp, policy, theta = problem
    mdp = mdp.with_horizon(mdp.horizon, gamma=1.0)
    np.testing.assert_allclose(
        exact.trajectory_fisher(mdp, policy, theta),
        mdp.horizon * pg.fisher(mdp, policy, theta),
        rtol=1e-12, atol=1e-14,
    )


# ----------------------------------------------------------------------------- KL, surrogate, PDL
def test_kl_direction_and_infinities():
    p, q = np.array([[0.5, 0.5]]), np.array([[0.9, 0.1]])
    assert pg.kl_per_state(p, q)[0] == pytest.approx(0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1), rel=1e-15)
    assert pg.kl_per_state(q, p)[0] == pytest.approx(0.9 * np.log(0.9 / 0.5) + 0.1 * np.log(0.1 / 0.5), rel=1e-15)
    assert pg.kl_per_state([[1.0, 0.0]], [[0.5, 0.5]])[0] == pytest.approx(np.log(2))  # 0 log 0 = 0
    assert pg.kl_per_state([[0.5, 0.5]], [[1.0, 0.0]])[0] == np.inf  # never NaN
    # zero-weight states do not contribute even when their KL is infinite
    P, Q = np.array([[0.5, 0.5], [0.5, 0.5]]), np.array([[1.0, 0.0], [0.5, 0.5]])
    assert pg.kl_expected(P, Q, [0.0, 1.0]) == 0.0
    assert pg.kl_max(P, Q) == np.inf


@settings(max_examples=60, deadline=None)
@given(finite_mdps(max_states=4, max_actions=3))
def test_pinsker_and_surrogate_properties(mdp):
    rng = np.random.default_rng(mdp.n_states * 31 + mdp.n_actions)
    pi = rng.dirichlet(np.ones(mdp.n_actions), size=mdp.n_states)
    pi2 = rng.dirichlet(np.ones(mdp.n_actions), size=mdp.n_states)
    assert np.all(pg.exact.tv_per_state(pi, pi2) ** 2 <= 0.5 * pg.kl_per_state(pi, pi2) + 1e-15)  # Pinsker
    assert abs(pg.surrogate(mdp, pi, pi)) < 1e-12
    pdl = pg.performance_difference(mdp, pi, pi2)
    assert rel(pdl.lhs, pdl.rhs) < RTOL
    assert pdl.surrogate == pytest.approx(pg.surrogate(mdp, pi, pi2), rel=1e-12, abs=1e-14)


def test_stationary_distribution_not_unique():
    P = np.zeros((2, 1, 2))
    P[0, 0, 0] = P[1, 0, 1] = 1.0
    mdp = pg.FiniteMDP(P, np.zeros((2, 1)), [0.5, 0.5], 0.9)
    with pytest.raises(NotUniqueError, match="not unique"):
        pg.stationary_distribution(mdp, np.ones((2, 1)))


@settings(max_examples=30, deadline=None)
@given(tabular_problems())
def test_huge_parameters_give_finite_results(problem):
    mdp, policy, theta = problem
    theta = 1e3 * np.sign(theta + 0.5) * (1 + np.abs(theta))
    J, g = exact.value_and_gradient(mdp, policy, theta)
    w = pg.natural_gradient(mdp, policy, theta)
    assert np.isfinite(J) and np.all(np.isfinite(g)) and np.all(np.isfinite(w))


# ----------------------------------------------------------------------------- extreme theta
def test_tied_huge_logits_give_the_exact_gradient():
    """One state, three self-loop actions, theta = [1e8, 1e8, 0]: pi = (1/2, 1/2, 0) exactly.

    J = r_pi / (1 - gamma) = 5 and dJ/dtheta_a = pi_a (r_a - r_pi) / (1 - gamma) (tabular softmax
    on a bandit with a self-loop), i.e. (2.5, -2.5, 0): computed by hand.
    """
    mdp = pg.FiniteMDP([[[1.0], [1.0], [1.0]]], [[1.0, 0.0, 0.0]], [1.0], 0.9)
    pol = pg.TabularSoftmax(1, 3)
    for scale in (1e8, 1e16, 1e300):
        J, g = exact.value_and_gradient(mdp, pol, [scale, scale, 0.0])
        assert abs(J - 5.0) <= 4e-15 * 5
        np.testing.assert_allclose(g, [2.5, -2.5, 0.0], rtol=4e-15, atol=0)
        np.testing.assert_array_equal(pg.policy_gradient(mdp, pol, [scale, scale, 0.0]), g)


def mp_J(mdp, theta, dps=50):
    """J of a tabular softmax policy in 50-digit arithmetic (mpmath), independent of pgexact."""
    import mpmath

    S, A = mdp.n_states, mdp.n_actions
    with mpmath.workdps(dps):
        z = [[mpmath.mpf(float(theta[s * A + a])) for a in range(A)] for s in range(S)]
        pi = []
        for row in z:
            m = max(row)
            e = [mpmath.exp(v - m) for v in row]
            tot = mpmath.fsum(e)
            pi.append([x / tot for x in e])
        M = mpmath.matrix(S, S)
        r_pi = mpmath.matrix(S, 1)
        for s in range(S):
            r_pi[s] = mpmath.fsum(pi[s][a] * float(mdp.r[s, a]) for a in range(A))
            for t in range(S):
                M[s, t] = (1 if s == t else 0) - float(mdp.gamma) * mpmath.fsum(
                    pi[s][a] * float(mdp.P[s, a, t]) for a in range(A))
        V = mpmath.lu_solve(M, r_pi)
        return float(mpmath.fsum(float(mdp.mu0[s]) * V[s] for s in range(S)))


@pytest.mark.parametrize("scale", [1e6, 1e12])
def test_J_at_huge_tied_theta_against_mpmath(scale):
    """|theta| = 1e6 and beyond with ties in every state: J correct to rounding (vs 50 digits)."""
    mdp = random_mdp(4, 3, gamma=0.9, seed=11)
    theta = scale * np.array([1, 1, 0, -1, 0.5, 0.5, 1, -1, 1, 0.3, 0.3, 0.3])
    J = exact.value_and_gradient(mdp, pg.TabularSoftmax(4, 3), theta)[0]
    ref = mp_J(mdp, theta)
    assert abs(J - ref) <= 1e-13 * max(1.0, abs(ref)), (J, ref)  # cond(I - 0.9 P) <= 19


# ----------------------------------------------------------------------------- divergences
def test_kl_infinite_where_q_vanishes_and_empty_input():
    p = np.array([[0.5, 0.5], [1.0, 0.0]])
    q = np.array([[1.0, 0.0], [1.0, 0.0]])
    kl = pg.kl_per_state(p, q)
    assert kl[0] == np.inf and kl[1] == 0.0
    assert pg.kl_max(p, q) == np.inf
    assert pg.kl_expected(p, q, [0.0, 1.0]) == 0.0  # a state of weight 0 contributes nothing
    for fn in (pg.kl_max, exact.tv_max):
        with pytest.raises(ValueError, match="p and q have no state"):
            fn(np.zeros((0, 2)), np.zeros((0, 2)))
    # (policy, theta) pairs are accepted for p and q
    pol = pg.TabularSoftmax(2, 2)
    t = np.array([0.0, 1.0, -1.0, 2.0])
    np.testing.assert_array_equal(pg.kl_per_state((pol, t), p), pg.kl_per_state(pol.probs(t), p))


# ----------------------------------------------------------------------------- one API
def test_pi_accepts_policy_theta_pairs_everywhere():
    mdp = random_mdp(4, 3, gamma=0.9, seed=2)
    pol = pg.TabularSoftmax(4, 3)
    t = np.linspace(-1, 1, 12)
    pi = pol.probs(t)
    assert pg.evaluate(mdp, (pol, t)).J == pg.evaluate(mdp, pi).J
    np.testing.assert_array_equal(pg.occupancy(mdp, (pol, t)), pg.occupancy(mdp, pi))
    np.testing.assert_array_equal(pg.state_marginals(mdp, (pol, t), 3), pg.state_marginals(mdp, pi, 3))
    assert pg.surrogate(mdp, (pol, t), (pol, 2 * t)) == pg.surrogate(mdp, pi, pol.probs(2 * t))
    with pytest.raises(TypeError, match=r"pi is a TabularSoftmax without parameters: pass pi=\(policy, theta\)"):
        pg.evaluate(mdp, pol)
    with pytest.raises(TypeError, match=r"pi_new must be a probability matrix .* or a pair \(policy, theta\)"):
        pg.surrogate(mdp, pi, [pol, t])
    with pytest.raises(TypeError, match=r"pi must be a probability matrix .*got ndarray of dtype object"):
        pg.evaluate(mdp, np.array([pol, t], dtype=object))


def test_deterministic_policy_evaluation():
    """evaluate(mdp, deterministic(actions)) vs V solved by hand from the chosen rows of P and r."""
    mdp = random_mdp(5, 3, gamma=0.8, seed=3)
    actions = np.array([2, 0, 1, 1, 0])
    idx = np.arange(5)
    V = np.linalg.solve(np.eye(5) - 0.8 * mdp.P[idx, actions], mdp.r[idx, actions])
    np.testing.assert_allclose(pg.evaluate(mdp, pg.policies.deterministic(actions, 3)).V, V, rtol=1e-13)


def test_model_is_not_revalidated_inside_calls(monkeypatch):
    """A frozen FiniteMDP is validated once: the exact core never re-runs the array checks."""
    import pgexact._validation as v
    import pgexact.models.finite_mdp as fm

    mdp = random_mdp(4, 3, gamma=0.9, seed=2)
    pol = pg.TabularSoftmax(4, 3)

    def forbidden(*args, **kwargs):
        raise AssertionError("re-validation inside a call")

    for mod in (v, fm):
        monkeypatch.setattr(mod, "check_distribution", forbidden)
    exact.value_and_gradient(mdp, pol, np.zeros(12))
    pg.natural_gradient(mdp, pol, np.zeros(12))
    pg.policy_gradient(mdp, pol, np.zeros(12))


# ----------------------------------------------------------------------------- infeasible actions
def masked_problem():
    mask = np.array([[True, True, False], [False, True, True], [True, False, False], [True, True, True]])
    base = random_mdp(4, 3, gamma=0.9, seed=7)
    r = np.where(mask, base.r, -np.inf)  # QuantEcon's convention for infeasible actions
    return pg.FiniteMDP(base.P, r, base.mu0, 0.9, action_mask=mask), base, mask


def test_masked_mdp_evaluation_and_errors():
    mdp, base, mask = masked_problem()
    assert np.all(mdp.r[~mask] == 0.0) and np.array_equal(mdp.action_mask, mask)
    pol = pg.TabularSoftmax(4, 3, action_mask=mask)
    t = np.linspace(-1, 1, 12)
    pi = pol.probs(t)
    # on the feasible actions the masked MDP is the base MDP: same J for a feasible policy
    assert abs(pg.evaluate(mdp, pi).J - pg.evaluate(base, pi).J) <= 1e-14 * abs(pg.evaluate(base, pi).J)
    bad = np.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"pi\[0, 2\] is 0.333333, but action 2 is infeasible in state 0"):
        pg.evaluate(mdp, bad)
    with pytest.raises(ValueError, match=r"policy gives probability to actions .* action_mask=mdp.action_mask"):
        pg.policy_gradient(mdp, pg.TabularSoftmax(4, 3), t)
    with pytest.raises(ValueError, match=r"r\[0, 2\] is -inf, expected a finite number \(-inf marks an infeasible"):
        pg.FiniteMDP(base.P, np.where(mask, base.r, -np.inf), base.mu0, 0.9)
    with pytest.raises(ValueError, match=r"r\[0, 0\] is -inf"):
        pg.FiniteMDP(base.P, np.where(mask, -np.inf, 0.0), base.mu0, 0.9, action_mask=mask)
    # all-zero rows of P for infeasible actions are accepted (stored as self-loops)
    P = base.P.copy()
    P[~mask] = 0.0
    m2 = pg.FiniteMDP(P, np.where(mask, base.r, -np.inf), base.mu0, 0.9, action_mask=mask)
    assert abs(pg.evaluate(m2, pi).J - pg.evaluate(mdp, pi).J) <= 1e-14 * abs(pg.evaluate(mdp, pi).J)
    with pytest.raises(ValueError, match=r"P\[0, 2, :\] sums to 0"):
        pg.FiniteMDP(P, base.r, base.mu0, 0.9)
    assert m2.with_horizon(5).action_mask is m2.action_mask or np.array_equal(m2.with_horizon(5).action_mask, mask)


@pytest.mark.parametrize("make", [lambda m: pg.TabularSoftmax(4, 3, action_mask=m),
                                  lambda m: pg.LinearSoftmax(np.random.default_rng(1).standard_normal((4, 3, 3)), action_mask=m)])
def test_masked_gradient_matches_complex_step(make):
    """Masked policy gradient vs the complex step of J computed with the feasible softmax."""
    mdp, base, mask = masked_problem()
    pol = make(mask)
    theta = np.random.default_rng(2).standard_normal(pol.n_params)

    def J(th):
        z = pol._logits(th)
        e = np.where(mask, np.exp(z - z.real.max(axis=1, keepdims=True)), 0.0)
        p = e / e.sum(axis=1, keepdims=True)
        P_pi = np.einsum("sa,sat->st", p, base.P)
        return base.mu0 @ np.linalg.solve(np.eye(4) - 0.9 * P_pi, np.einsum("sa,sa->s", p, base.r))

    cs = np.array([J(theta + 1e-30j * np.eye(pol.n_params)[k]).imag / 1e-30 for k in range(pol.n_params)])
    J0, g = exact.value_and_gradient(mdp, pol, theta)
    assert rel(g, cs) < RTOL and abs(J0 - J(theta).real) < 1e-12
    f = exact.policy_gradient_forms(mdp, pol, theta)
    assert rel(f.bellman_derivative, cs) < RTOL and rel(f.occupancy_form, cs) < RTOL
    # natural gradient: F w = grad J with F the masked Fisher
    w = pg.natural_gradient(mdp, pol, theta)
    np.testing.assert_allclose(pg.fisher(mdp, pol, theta) @ w, g, rtol=1e-8, atol=1e-10)


def test_calls_that_would_exhaust_memory_are_refused_with_the_amount():
    mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    pi = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match=r"state_marginals with T=1000000000000 and S=3 would need 21.8 TB"):
        pg.state_marginals(mdp, pi, 10**12)
    with pytest.raises(ValueError, match=r"horizon-1000000000 MDP with S=3, A=2 would need 134 GB"):
        pg.evaluate(mdp.with_horizon(10**9, 1.0), pi)
    with pytest.raises(ValueError, match=r"trajectory_fisher with horizon=1000000000000 and S=3 would need"):
        pg.trajectory_fisher(mdp, pg.TabularSoftmax(3, 2), np.zeros(6), 10**12)
    with pytest.raises(ValueError, match=r"policy_gradient_forms at gamma=0.9999999 would propagate"):
        exact.policy_gradient_forms(random_mdp(3, 2, gamma=0.9999999, seed=0), pg.TabularSoftmax(3, 2), np.zeros(6))
    assert pg.state_marginals(mdp, pi, 10**5).shape == (10**5, 3)  # 2.4 MB: fine


@settings(max_examples=40, deadline=None)
@given(finite_mdps(), st.integers(0, 2**31), st.booleans())
def test_masked_gradient_forms_agree(mdp, seed, linear):
    """Random masks: the Bellman derivative (no PG theorem) equals the masked policy gradient,
    and the natural gradient solves F w = grad J with the masked Fisher."""
    rng = np.random.default_rng(seed)
    S, A = mdp.n_states, mdp.n_actions
    mask = rng.random((S, A)) < 0.6
    mask[np.arange(S), rng.integers(0, A, S)] = True
    masked = pg.FiniteMDP(mdp.P, mdp.r, mdp.mu0, mdp.gamma, mdp.horizon, action_mask=mask)
    pol = (pg.LinearSoftmax(rng.standard_normal((S, A, 3)), action_mask=mask) if linear
           else pg.TabularSoftmax(S, A, action_mask=mask))
    theta = rng.standard_normal(pol.n_params)
    pi = pol.probs(theta)
    assert np.all(pi[~mask] == 0.0)
    g = pg.policy_gradient(masked, pol, theta)
    f = exact.policy_gradient_forms(masked, pol, theta)
    for name in ("bellman_derivative", "q_form", "occupancy_form", "reward_to_go_form"):
        assert rel(getattr(f, name), g) < RTOL, name
    if masked.horizon is None:
        w = pg.natural_gradient(masked, pol, theta)
        F = pg.fisher(masked, pol, theta)
        # g lies in the range of F, so F w = g holds to rounding amplified by the conditioning
        # of F on its range (minimum-norm solve): observed <= 7.3e-14 relative on 600 random
        # masked instances; 1e-8 leaves room for an ill-conditioned F
        assert np.max(np.abs(F @ w - g)) <= 1e-8 * max(1.0, np.max(np.abs(g)))


def test_dense_fisher_beyond_the_memory_limit_is_refused():
    from pgexact.mdps import gridworld

    mdp = gridworld(400, 400, gamma=0.9, sparse=True)
    pol = pg.TabularSoftmax(mdp.n_states, 4)
    theta = np.zeros(pol.n_params)
    with pytest.raises(ValueError, match=r"^fisher with n_params=640000 and S\*A=640000 would need 8.94 TB .*fisher_vector_product"):
        pg.fisher(mdp, pol, theta)
    with pytest.raises(ValueError, match=r"^trajectory_fisher with n_params=640000"):
        pg.trajectory_fisher(mdp, pol, theta, horizon=2)
    with pytest.raises(ValueError, match=r"^score with n_params=640000 and S\*A=640000 would need"):
        pol.score(theta)


def test_weights_far_above_one_are_refused_before_they_are_summed():
    pi = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match=r"^weights\[0\] is 1e\+308, expected a probability <= 1"):
        pg.kl_expected(pi, pi, [1e308, 1e308, 1e308])


def test_time_recursions_beyond_the_step_limit_are_refused_with_their_time():
    """A finite-horizon recursion is a Python loop over t: a horizon past MAX_TIME_STEPS would run
    for seconds to hours, so it is refused, naming the horizon and the time it would take."""
    from pgexact._validation import MAX_TIME_STEPS
    from pgexact.mdps import random_mdp

    H = 10 * MAX_TIME_STEPS
    mdp = random_mdp(3, 2, gamma=1.0, horizon=H, seed=0)
    pi = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match=rf"horizon-{H} MDP would loop over {H} time steps \(about"):
        pg.evaluate(mdp, pi)
    with pytest.raises(ValueError, match=rf"state_marginals with T={H} would loop over"):
        pg.state_marginals(mdp, pi, H)
    assert pg.state_marginals(mdp, pi, MAX_TIME_STEPS // 100).shape == (MAX_TIME_STEPS // 100, 3)
