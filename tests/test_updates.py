"""Tests of pgexact.updates with the exact source: every update against independent closed forms.

Independent references: the exact core (pgexact.policy_gradient, fisher, surrogate, kl_expected,
occupancy, evaluate), dense pseudo-inverses (numpy.linalg.pinv), central differences,
scipy.optimize (SLSQP) for the constrained optimum, and published theorems (Schulman et al. 2015,
Theorem 1; Mei et al. 2020, Theorem 4; Agarwal et al. 2021, Lemma 5.1).
"""

from __future__ import annotations

import warnings
import numpy as np
import pytest
import scipy.optimize
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import pgexact as pe
from pgexact.exact import tv_max
from pgexact.mdps import bandit, random_mdp
from pgexact.testing import policy_problems, tabular_problems
from pgexact.updates import (
    ExactSource,
    clipped_objective,
    npg_step,
    pg_step,
    ppo_dual_update,
    ppo_kl_update,
    ppo_update,
    train,
    trpo_step,
    value_iteration,
)

# Identities computed by two routes of O(S^3) linear algebra on systems of condition number
# <= (1 + gamma)/(1 - gamma) <= 39 (gamma <= 0.95): observed ~1e-14; 1e-9 leaves ample margin.
REL = 1e-9


def rel(a, b, floor=1.0):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))) if b.size else 0.0, floor))


def moderate_problem(seed, S=4, A=3, gamma=0.9, scale=1.0, linear=False):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(S, A, gamma=gamma, seed=rng)
    pol = pe.LinearSoftmax(rng.standard_normal((S, A, 3))) if linear else pe.TabularSoftmax(S, A)
    return mdp, pol, scale * rng.standard_normal(pol.n_params)


# ----------------------------------------------------------------------------- the exact source
@settings(max_examples=40, deadline=None)
@given(policy_problems(), st.integers(0, 2**31 - 1))
def test_exact_oracle_matches_exact_core(problem, seed):
    mdp, pol, theta = problem
    rng = np.random.default_rng(seed)
    theta_new = theta + rng.standard_normal(pol.n_params)
    v = rng.standard_normal(pol.n_params)
    oracle = ExactSource(mdp, pol).at(theta)
    pi_old, pi_new = pol.probs(theta), pol.probs(theta_new)
    assert rel(oracle.gradient, pe.policy_gradient(mdp, pol, theta)) <= REL
    assert rel(oracle.fisher_vector_product(v), pe.fisher(mdp, pol, theta) @ v) <= REL
    assert rel(oracle.surrogate(theta_new), pe.surrogate(mdp, pi_old, pi_new)) <= REL
    kl_ref = pe.kl_expected(pi_old, pi_new, pe.occupancy(mdp, pi_old))
    assert rel(oracle.kl(theta_new), kl_ref) <= REL
    assert oracle.J == pytest.approx(pe.evaluate(mdp, pi_old).J, rel=1e-12, abs=1e-12)


def test_exact_source_convenience_methods_and_validation():
    mdp, pol, theta = moderate_problem(0)
    src = ExactSource(mdp, pol)
    v = np.arange(pol.n_params, dtype=float)
    assert rel(src.fisher_vector_product(theta, v), pe.fisher(mdp, pol, theta) @ v) <= REL
    assert src.kl(theta, theta) == pytest.approx(0.0, abs=1e-15)
    assert src.surrogate(theta, theta) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="theta must have length"):
        src.gradient(np.zeros(3))
    with pytest.raises(TypeError, match="FiniteMDP"):
        ExactSource("not an mdp", pol)
    with pytest.raises(ValueError, match="n_states"):
        ExactSource(mdp, pe.TabularSoftmax(5, 3))


# ----------------------------------------------------------------------------- PG
def test_pg_step_is_gradient_ascent():
    mdp, pol, theta = moderate_problem(1)
    res = pg_step(ExactSource(mdp, pol), theta, lr=0.3)
    assert rel(res.theta, theta + 0.3 * pe.policy_gradient(mdp, pol, theta)) <= REL
    assert res.step_size == 0.3 and np.array_equal(res.theta_old, theta)


def test_softmax_pg_converges_at_rate_one_over_t():
    """Mei et al. 2020, Theorem 4: exact softmax PG with eta = (1-gamma)^3/8 and rewards in [0, 1]
    satisfies J* - J(theta_t) <= 16 S ||d*/mu||^2 ||1/mu|| / (c^2 (1-gamma)^6 t), with
    c = inf_t min_s pi_t(a*(s)|s). We check that bound on every iterate and that the gap decays
    like 1/t: the log-log slope over t in [T/10, T] is -1 within 0.1 (Mei et al. also prove an
    Omega(1/t) lower bound, so the slope cannot be steeper)."""
    rng = np.random.default_rng(3)
    S, A, gamma = 3, 2, 0.5
    mdp = pe.FiniteMDP(rng.dirichlet(np.ones(S), size=(S, A)), rng.uniform(0, 1, (S, A)), np.full(S, 1 / S), gamma)
    pol = pe.TabularSoftmax(S, A)
    src = ExactSource(mdp, pol)
    vi = value_iteration(mdp)
    a_star = np.argmax(vi.Q, axis=1)
    d_star = pe.occupancy(mdp, vi.policy)
    lr = (1 - gamma) ** 3 / 8
    T = 8000
    theta = np.zeros(S * A)
    gaps, c = np.empty(T), 1.0
    for t in range(T):
        theta = pg_step(src, theta, lr).theta
        pi = pol.probs(theta)
        c = min(c, float(np.min(pi[np.arange(S), a_star])))
        gaps[t] = vi.J - pe.evaluate(mdp, pi).J
    ts = np.arange(1, T + 1)
    bound = 16 * S * np.max(d_star / mdp.mu0) ** 2 * np.max(1 / mdp.mu0) / (c**2 * (1 - gamma) ** 6)
    assert np.all(gaps >= -1e-12)
    assert np.all(ts * gaps <= bound)
    sel = ts >= T // 10
    slope = np.polyfit(np.log(ts[sel]), np.log(gaps[sel]), 1)[0]
    assert -1.1 <= slope <= -0.9, slope


# ----------------------------------------------------------------------------- NPG
@settings(max_examples=40, deadline=None)
@given(tabular_problems(discounted=True), st.floats(0.01, 3.0))
def test_tabular_npg_is_exponentiated_advantage(problem, eta):
    """Agarwal et al. 2021, Lemma 5.1: theta' = theta + eta A/(1-gamma) up to per-state constants,
    i.e. pi_new ∝ pi_old exp(eta A/(1-gamma)) on states with d(s) > 0."""
    mdp, pol, theta = problem
    theta = np.clip(theta, -5, 5)  # pi bounded away from 0: every action in the support
    res = npg_step(ExactSource(mdp, pol), theta, lr=eta)
    pi_old = pol.probs(theta)
    ev = pe.evaluate(mdp, pi_old)
    visited = ev.d > 0
    diff = (res.theta - theta).reshape(mdp.n_states, mdp.n_actions) - eta * ev.A / (1 - mdp.gamma)
    spread = diff.max(axis=1) - diff.min(axis=1)
    scale = max(1.0, eta * float(np.max(np.abs(ev.A))) / (1 - mdp.gamma))
    assert np.all(spread[visited] <= 1e-9 * scale)
    expo = pi_old * np.exp(eta * (ev.A - ev.A.max(axis=1, keepdims=True)) / (1 - mdp.gamma))
    expo /= expo.sum(axis=1, keepdims=True)
    assert np.max(np.abs(pol.probs(res.theta) - expo)[visited]) <= 1e-9


@settings(max_examples=30, deadline=None)
@given(policy_problems(max_gamma=0.9), st.floats(1e-4, 1.0))
def test_npg_step_meets_quadratic_kl_with_equality(problem, delta):
    """alpha = sqrt(2 delta / g^T F^+ g) with F^+ from a dense pseudo-inverse; then
    (1/2) h^T F h = delta for h = alpha F^+ g."""
    mdp, pol, theta = problem
    theta = np.clip(theta, -3, 3)
    F = pe.fisher(mdp, pol, theta)
    g = pe.policy_gradient(mdp, pol, theta)
    gFg = float(g @ np.linalg.pinv(F, rcond=1e-10, hermitian=True) @ g)
    assume(gFg > 1e-8)
    res = npg_step(ExactSource(mdp, pol), theta, delta)
    h = res.theta - theta
    assert abs(0.5 * h @ F @ h - delta) <= 1e-7 * delta
    assert res.quadratic_kl == pytest.approx(delta, rel=1e-9)
    assert res.step_size == pytest.approx(np.sqrt(2 * delta / gFg), rel=1e-6)


def test_npg_true_kl_approaches_radius_at_second_order():
    """KL(theta, theta + h) = (1/2) h^T F h + O(|h|^3), |h| ~ sqrt(delta): |KL/delta - 1| = O(sqrt(delta)),
    so shrinking delta 100-fold shrinks it about 10-fold (we allow 6-fold)."""
    for seed in range(3):
        mdp, pol, theta = moderate_problem(seed)
        src = ExactSource(mdp, pol)
        errs = []
        for delta in (1e-3, 1e-5):
            res = npg_step(src, theta, delta)
            errs.append(abs(src.kl(theta, res.theta) / delta - 1))
        assert errs[1] <= errs[0] / 6 + 1e-7, errs


def test_npg_at_stationary_point_takes_no_step():
    mdp = bandit([1.0, 1.0, 1.0])
    src = ExactSource(mdp, pe.TabularSoftmax(1, 3))
    res = npg_step(src, np.zeros(3), 0.1)
    assert res.stationary and np.array_equal(res.theta, np.zeros(3)) and res.step_size == 0.0



@pytest.mark.parametrize("step,kwargs,name", [
    (pg_step, {"lr": 1e308}, "lr"), (npg_step, {"lr": 1e308}, "lr"), (npg_step, {"delta": 1e308}, "delta"),
    (trpo_step, {"delta": 1e308}, "delta")])
def test_a_step_that_leaves_float64_names_its_step_size(step, kwargs, name):
    """theta + step * direction overflowing is a NumericalError naming the argument, with no numpy warning."""
    mdp, pol, _ = moderate_problem(0)
    src = ExactSource(mdp, pol)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(pe.errors.NumericalError, match=rf"overflows float64 \({name} gives a step"):
            step(src, np.full(pol.n_params, 1.79e308), **kwargs)


# ----------------------------------------------------------------------------- TRPO
@pytest.mark.parametrize("seed,linear", [(0, False), (1, False), (2, True), (3, True)])
def test_trpo_direction_is_the_min_norm_natural_gradient(seed, linear):
    mdp, pol, theta = moderate_problem(seed, linear=linear)
    res = trpo_step(ExactSource(mdp, pol), theta, 0.01)
    F = pe.fisher(mdp, pol, theta)
    ref = np.linalg.pinv(F, rcond=1e-12, hermitian=True) @ pe.policy_gradient(mdp, pol, theta)
    # CG stops at ||Fx - g|| <= 1e-10 ||g||; the error in x is at most that times ||F^+||
    # (condition number of F on its range, here < 1e4): 1e-6 relative.
    assert rel(res.direction, ref, floor=1e-300) <= 1e-6
    assert rel(res.direction, pe.natural_gradient(mdp, pol, theta), floor=1e-300) <= 1e-6
    assert res.cg_residual <= 1e-10


@settings(max_examples=40, deadline=None)
@given(policy_problems(), st.sampled_from([1e-4, 1e-2, 0.1, 1.0, 5.0]))
def test_every_accepted_trpo_step_satisfies_the_exact_kl_constraint(problem, delta):
    mdp, pol, theta = problem
    res = trpo_step(ExactSource(mdp, pol), theta, delta)
    pi_old = pol.probs(theta)
    kl = pe.kl_expected(pi_old, pol.probs(res.theta), pe.occupancy(mdp, pi_old))
    if res.accepted:
        assert kl <= delta
        assert pe.surrogate(mdp, pi_old, pol.probs(res.theta)) > 0
        assert res.kl == pytest.approx(kl, rel=1e-9, abs=1e-15)
    else:
        assert np.array_equal(res.theta, theta) and res.step_size == 0.0 and res.message


def test_trpo_line_search_failure_returns_old_parameters():
    """A source whose KL is never small enough: no step may be accepted."""

    class Strict:
        def __init__(self, inner):
            self.inner, self.policy = inner, inner.policy

        def at(self, theta, seed=None):
            oracle = self.inner.at(theta)
            oracle.kl = lambda theta_new: np.inf
            return oracle

    mdp, pol, theta = moderate_problem(4)
    res = trpo_step(Strict(ExactSource(mdp, pol)), theta, 0.01, max_backtracks=5)
    assert not res.accepted and np.array_equal(res.theta, theta)
    assert "line search failed" in res.message and res.n_backtracks == 5


def test_trpo_rejects_a_violating_full_step_when_no_backtracking_is_allowed():
    # on this instance the quadratic model underestimates the KL of the full step by ~20%
    mdp, pol, theta = moderate_problem(12, scale=1.0)
    src = ExactSource(mdp, pol)
    delta = 0.1
    full = trpo_step(src, theta, delta, max_backtracks=0)
    direction = pe.natural_gradient(mdp, pol, theta)
    F = pe.fisher(mdp, pol, theta)
    beta0 = np.sqrt(2 * delta / (direction @ F @ direction))
    kl_full = src.kl(theta, theta + beta0 * direction)
    assert kl_full > delta  # precondition of this test, checked independently
    assert not full.accepted and np.array_equal(full.theta, theta)
    later = trpo_step(src, theta, delta)
    assert later.accepted and later.n_backtracks >= 1 and src.kl(theta, later.theta) <= delta


def test_trpo_at_stationary_point_is_rejected_with_a_message():
    src = ExactSource(bandit([0.5, 0.5]), pe.TabularSoftmax(1, 2))
    res = trpo_step(src, np.zeros(2), 0.1)
    assert not res.accepted and "stationary" in res.message


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trpo_is_close_to_the_exact_constrained_optimum(seed):
    """max surrogate s.t. E_d KL(old||new) <= delta, solved by SLSQP with the exact KL.
    TRPO is feasible, so it cannot beat the optimum (up to SLSQP's tolerance); with a fine
    backtracking ratio r = 0.999 its relative gap is (1 - r) + O(sqrt(delta)) (the quadratic KL
    model and the linear surrogate model both err at relative order sqrt(delta))."""
    mdp, pol, theta = moderate_problem(seed, S=3, A=2, gamma=0.8)
    src = ExactSource(mdp, pol)
    pi0 = pol.probs(theta)
    d0 = pe.occupancy(mdp, pi0)
    gaps = []
    for delta in (1e-3, 1e-5):
        res = trpo_step(src, theta, delta, backtrack_ratio=0.999, max_backtracks=2000)
        assert res.accepted
        con = {"type": "ineq", "fun": lambda t: delta - pe.kl_expected(pi0, pol.probs(t), d0)}
        opt = scipy.optimize.minimize(
            lambda t: -pe.surrogate(mdp, pi0, pol.probs(t)),
            res.theta,
            constraints=[con],
            method="SLSQP",
            options={"ftol": 1e-15, "maxiter": 1000},
        )
        assert con["fun"](opt.x) >= -1e-12
        best = -opt.fun
        assert res.surrogate_improvement <= best * (1 + 1e-9)
        gaps.append(1 - res.surrogate_improvement / best)
    assert gaps[0] <= 0.05 and gaps[1] <= 0.01, gaps


# ----------------------------------------------------------------------------- TRPO lower bound
def _trpo_bound_terms(mdp, pi_old, pi_new):
    ev_old, ev_new = pe.evaluate(mdp, pi_old), pe.evaluate(mdp, pi_new)
    L = ev_old.J + pe.surrogate(mdp, pi_old, pi_new)  # L_pi(pi~) = eta(pi) + sum_s rho sum_a pi~ A
    C = 4 * np.max(np.abs(ev_old.A)) * mdp.gamma / (1 - mdp.gamma) ** 2
    return ev_old.J, ev_new.J, L, C


@settings(max_examples=60, deadline=None)
@given(tabular_problems(discounted=True), st.integers(0, 2**31 - 1), st.sampled_from([0.01, 0.1, 1.0, 5.0]))
def test_trpo_lower_bound_holds(problem, seed, scale):
    """Schulman et al. 2015, Theorem 1: J(new) >= L(new) - 4 eps gamma/(1-gamma)^2 alpha^2 with
    alpha = max_s TV, eps = max |A|; and, since alpha^2 <= D_KL^max (Pinsker), with alpha^2 -> D_KL^max.
    Residual allowance: rounding of J, L (1e-9 relative to the scale of V)."""
    mdp, pol, theta = problem
    theta = np.clip(theta, -5, 5)
    theta_new = theta + scale * np.random.default_rng(seed).standard_normal(pol.n_params)
    pi_old, pi_new = pol.probs(theta), pol.probs(theta_new)
    J_old, J_new, L, C = _trpo_bound_terms(mdp, pi_old, pi_new)
    tol = 1e-9 * max(1.0, np.max(np.abs(mdp.r)) / (1 - mdp.gamma))
    assert J_new >= L - C * tv_max(pi_old, pi_new) ** 2 - tol
    assert J_new >= L - C * pe.kl_max(pi_old, pi_new) - tol


def test_trpo_bound_certified_improvement_is_real_along_a_run():
    """Along TRPO iterates: whenever the bound M = L - C KLmax certifies improvement (M > J_old),
    exact J improves; and the bound holds at every step."""
    certified = 0
    for seed in range(3):
        mdp, pol, theta = moderate_problem(seed, gamma=0.5)
        src = ExactSource(mdp, pol)
        hist = train(trpo_step, src, theta, 15, delta=1e-3)
        for k in range(hist.n_iterations):
            pi_old, pi_new = pol.probs(hist.thetas[k]), pol.probs(hist.thetas[k + 1])
            J_old, J_new, L, C = _trpo_bound_terms(mdp, pi_old, pi_new)
            M = L - C * pe.kl_max(pi_old, pi_new)
            assert J_new >= M - 1e-10
            if M > J_old:
                certified += 1
                assert J_new > J_old
    assert certified > 0  # the implication was exercised


# ----------------------------------------------------------------------------- PPO
@settings(max_examples=40, deadline=None)
@given(policy_problems(), st.integers(0, 2**31 - 1), st.sampled_from([0.05, 0.2, 0.5, 0.9]))
def test_ppo_clipped_objective_never_exceeds_the_surrogate(problem, seed, clip):
    mdp, pol, theta = problem
    theta = np.clip(theta, -5, 5)
    theta_new = theta + np.random.default_rng(seed).standard_normal(pol.n_params)
    oracle = ExactSource(mdp, pol).at(theta)
    value, _, frac = clipped_objective(pol, oracle.batch, theta_new, clip)
    unclipped = pe.surrogate(mdp, pol.probs(theta), pol.probs(theta_new))
    assert value <= unclipped + 1e-10 * max(1.0, abs(unclipped))
    assert 0.0 <= frac <= 1.0


@settings(max_examples=40, deadline=None)
@given(policy_problems(), st.sampled_from([0.05, 0.2, 0.9]))
def test_ppo_clipped_gradient_at_theta_old_is_the_policy_gradient(problem, clip):
    mdp, pol, theta = problem
    oracle = ExactSource(mdp, pol).at(theta)
    value, grad, frac = clipped_objective(pol, oracle.batch, theta, clip)
    assert rel(grad, pe.policy_gradient(mdp, pol, theta)) <= REL
    assert abs(value) <= 1e-9 * max(1.0, float(np.max(np.abs(mdp.r))) * 20) and frac == 0.0


@settings(max_examples=30, deadline=None)
@given(policy_problems(discounted=True, max_gamma=0.9), st.integers(0, 2**31 - 1))
def test_ppo_clipped_gradient_matches_central_differences(problem, seed):
    """Away from the kinks r = 1 ± eps the clipped objective is smooth: central differences with
    h = 1e-6 have truncation error O(h^2 |f'''|) and rounding error O(eps_mach |f| / h) ~ 1e-9."""
    mdp, pol, theta = problem
    theta = np.clip(theta, -3, 3)
    clip = 0.2
    rng = np.random.default_rng(seed)
    theta_new = theta + 0.5 * rng.standard_normal(pol.n_params)
    batch = ExactSource(mdp, pol).at(theta).batch
    ratio = np.exp(pol.log_probs(theta_new)[batch.states, batch.actions] - batch.logp_old)
    # h * max|d log r| <= 1e-6 * (2 max|grad z|): keep instances with every ratio 1e-4 away from a kink
    assume(np.min(np.abs(np.abs(ratio - 1) - clip)) > 1e-4)
    _, grad, _ = clipped_objective(pol, batch, theta_new, clip)
    h = 1e-6
    fd = np.array(
        [
            (clipped_objective(pol, batch, theta_new + h * e, clip)[0] - clipped_objective(pol, batch, theta_new - h * e, clip)[0]) / (2 * h)
            for e in np.eye(pol.n_params)
        ]
    )
    scale = max(1.0, float(np.max(np.abs(mdp.r))) / (1 - mdp.gamma))
    assert np.max(np.abs(grad - fd)) <= 1e-6 * scale


def test_ppo_update_ascends_and_is_reproducible():
    mdp, pol, theta = moderate_problem(6)
    src = ExactSource(mdp, pol)
    res = ppo_update(src, theta, 0.2, lr=0.2, epochs=10)
    assert res.objective[-1] > res.objective[0]
    assert res.objective[-1] <= res.surrogate_improvement + 1e-12
    assert res.kl == pytest.approx(src.kl(theta, res.theta), rel=1e-12)
    a = ppo_update(src, theta, 0.2, lr=0.2, epochs=3, n_minibatches=4, seed=7)
    b = ppo_update(src, theta, 0.2, lr=0.2, epochs=3, n_minibatches=4, seed=7)
    c = ppo_update(src, theta, 0.2, lr=0.2, epochs=3, n_minibatches=4, seed=8)
    assert np.array_equal(a.theta, b.theta) and not np.array_equal(a.theta, c.theta)
    with pytest.raises(ValueError, match="give a seed"):
        ppo_update(src, theta, 0.2, lr=0.2, n_minibatches=4)


def test_ppo_minibatch_gradients_are_unbiased():
    """Averaged over all minibatches of one split, the scaled minibatch gradients are the full gradient."""
    mdp, pol, theta = moderate_problem(7)
    batch = ExactSource(mdp, pol).at(theta).batch
    theta_new = theta + 0.3
    full = clipped_objective(pol, batch, theta_new, 0.2)[1]
    parts = np.array_split(np.random.default_rng(0).permutation(batch.n_rows), 3)
    mean = sum(clipped_objective(pol, batch.subset(p, batch.n_rows / len(p)), theta_new, 0.2)[1] * len(p) for p in parts) / batch.n_rows
    assert rel(mean, full) <= 1e-12


def test_ppo_kl_penalty_adapts_its_coefficient():
    mdp, pol, theta = moderate_problem(8)
    src = ExactSource(mdp, pol)
    big_target = ppo_kl_update(src, theta, 1.0, 1e3, lr=0.1, epochs=2)
    assert big_target.next_coefficient == 0.5 and big_target.carry() == {"beta": 0.5}
    tiny_target = ppo_kl_update(src, theta, 1.0, 1e-12, lr=0.1, epochs=2)
    assert tiny_target.next_coefficient == 2.0
    # the penalized objective has gradient grad J at theta_old (the KL gradient vanishes there):
    one = ppo_kl_update(src, theta, 3.0, 0.01, lr=1e-3, epochs=1)
    assert rel((one.theta - theta) / 1e-3, pe.policy_gradient(mdp, pol, theta)) <= REL
    assert one.kl == pytest.approx(src.kl(theta, one.theta), rel=1e-12)


def test_ppo_dual_step_on_the_multiplier():
    mdp, pol, theta = moderate_problem(9)
    src = ExactSource(mdp, pol)
    res = ppo_dual_update(src, theta, 0.01, 2.0, lr=0.5, dual_lr=3.0, epochs=5)
    kl = pe.kl_expected(pol.probs(theta), pol.probs(res.theta), pe.occupancy(mdp, pol.probs(theta)))
    assert res.next_coefficient == pytest.approx(max(0.0, 2.0 + 3.0 * (kl - 0.01)), rel=1e-12)
    assert res.carry() == {"lam": res.next_coefficient}
    # lambda is projected on [0, inf): a tiny step far inside the constraint drives it to 0
    small = ppo_dual_update(src, theta, 10.0, 0.1, lr=1e-3, dual_lr=1.0, epochs=1)
    assert small.next_coefficient == 0.0


def test_dual_descent_drives_kl_towards_the_radius():
    """Dual gradient descent: over iterations lambda grows while the KL exceeds delta."""
    mdp, pol, theta = moderate_problem(10)
    src = ExactSource(mdp, pol)
    hist = train(ppo_dual_update, src, theta, 30, delta=0.01, lam=0.0, lr=0.5, dual_lr=20.0, epochs=5)
    lams = [r.coefficient for r in hist.results]
    assert lams[0] == 0.0 and max(lams) > 0
    assert np.median(hist.kl[10:]) < np.median(hist.kl[:3])


# ----------------------------------------------------------------------------- train
def test_train_records_exact_quantities():
    mdp, pol, theta = moderate_problem(11)
    src = ExactSource(mdp, pol)
    hist = train(npg_step, src, theta, 5, delta=0.02, progress=False)
    assert hist.thetas.shape == (6, pol.n_params) and hist.J.shape == (6,) and hist.kl.shape == (5,)
    for k in range(5):
        pi_k = pol.probs(hist.thetas[k])
        assert hist.J[k] == pytest.approx(pe.evaluate(mdp, pi_k).J, rel=1e-12)
        kl = pe.kl_expected(pi_k, pol.probs(hist.thetas[k + 1]), pe.occupancy(mdp, pi_k))
        assert hist.kl[k] == pytest.approx(kl, rel=1e-12)
        assert hist.step_norm[k] == pytest.approx(np.linalg.norm(hist.thetas[k + 1] - hist.thetas[k]))
    assert np.all(hist.wall_time >= 0) and np.all(hist.step_size > 0)
    assert np.array_equal(hist.theta, hist.thetas[-1])
    carried = train(ppo_kl_update, src, theta, 3, beta=1.0, kl_target=1e3, lr=0.1, epochs=1)
    assert [r.coefficient for r in carried.results] == [1.0, 0.5, 0.25]


def test_train_progress_bar(capsys):
    mdp, pol, theta = moderate_problem(12, S=2, A=2)
    hist = train(pg_step, ExactSource(mdp, pol), theta, 3, lr=0.1, progress=True)
    assert "pg_step" in capsys.readouterr().err and hist.n_iterations == 3


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_radius_learning_rate(bad):
    mdp, pol, theta = moderate_problem(13, S=2, A=2)
    src = ExactSource(mdp, pol)
    for call in (
        lambda: npg_step(src, theta, bad),
        lambda: trpo_step(src, theta, bad),
        lambda: pg_step(src, theta, bad),
        lambda: npg_step(src, theta, lr=bad),
        lambda: ppo_update(src, theta, 0.2, lr=bad),
        lambda: ppo_dual_update(src, theta, bad, 1.0, lr=0.1, dual_lr=1.0),
        lambda: ppo_kl_update(src, theta, 1.0, bad, lr=0.1),
    ):
        with pytest.raises(ValueError, match="positive finite"):
            call()


@pytest.mark.parametrize("clip", [0.0, 1.0, 1.5, -0.2, float("nan")])
def test_bad_clip(clip):
    mdp, pol, theta = moderate_problem(14, S=2, A=2)
    with pytest.raises(ValueError, match=r"open interval \(0, 1\)"):
        ppo_update(ExactSource(mdp, pol), theta, clip, lr=0.1)


def test_bad_misc_arguments():
    mdp, pol, theta = moderate_problem(15, S=2, A=2)
    src = ExactSource(mdp, pol)
    with pytest.raises(TypeError):
        pg_step(src, theta, "0.1")
    with pytest.raises(ValueError, match="exactly one"):
        npg_step(src, theta, 0.1, lr=0.1)
    with pytest.raises(ValueError, match="exactly one"):
        npg_step(src, theta)
    with pytest.raises(ValueError, match="epochs"):
        ppo_update(src, theta, 0.2, lr=0.1, epochs=0)
    with pytest.raises(ValueError, match="lam"):
        ppo_dual_update(src, theta, 0.1, -1.0, lr=0.1, dual_lr=1.0)
    with pytest.raises(ValueError, match="backtrack_ratio"):
        trpo_step(src, theta, 0.1, backtrack_ratio=1.0)
    with pytest.raises(TypeError, match="gradient source"):
        pg_step(mdp, theta, 0.1)
    with pytest.raises(ValueError, match="n_iterations"):
        train(pg_step, src, theta, 0, lr=0.1)


def test_surrogate_is_exact_where_old_probabilities_underflow():
    """pi_old(a|s) = exp(-1000) underflows to 0, yet the row's contribution rho(s) pi_new(a|s) A(s, a)
    to the surrogate is kept (weights are stored in log space)."""
    mdp = random_mdp(3, 2, gamma=0.9, seed=3)
    pol = pe.TabularSoftmax(3, 2)
    theta_old = np.array([1000.0, 0.0, 0.0, 1000.0, 0.5, -0.5])
    theta_new = np.zeros(6)
    pi_old, pi_new = pol.probs(theta_old), pol.probs(theta_new)
    assert pi_old[0, 1] == 0.0  # the precondition: underflow
    oracle = ExactSource(mdp, pol).at(theta_old)
    ref = pe.surrogate(mdp, pi_old, pi_new)
    assert abs(ref) > 0.1
    assert oracle.surrogate(theta_new) == pytest.approx(ref, rel=1e-12)
    kl = pe.kl_expected(pi_old, pi_new, pe.occupancy(mdp, pi_old))
    assert oracle.kl(theta_new) == pytest.approx(kl, rel=1e-12)


def test_bad_trpo_search_arguments():
    mdp, pol, theta = moderate_problem(16, S=2, A=2)
    src = ExactSource(mdp, pol)
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="max_backtracks"):
            trpo_step(src, theta, 0.1, max_backtracks=bad)
    with pytest.raises(ValueError, match="cg_damping"):
        trpo_step(src, theta, 0.1, cg_damping=-1.0)
    with pytest.raises(ValueError, match="cg_iters"):
        trpo_step(src, theta, 0.1, cg_iters=0)


# ----------------------------------------------------------------------------- TRPO scaling, CG
@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("delta", [1e-4, 1e-2])
def test_trpo_full_step_fills_the_quadratic_trust_region(linear, delta):
    """beta_0 = sqrt(2 delta / x^T F x): the full step's quadratic KL model 1/2 beta_0^2 x^T F x
    is delta, with F the dense Fisher of the exact core (not the oracle's products)."""
    mdp, pol, theta = moderate_problem(3, linear=linear)
    res = trpo_step(ExactSource(mdp, pol), theta, delta)
    F = pe.fisher(mdp, pol, theta)
    x = res.direction
    quad = 0.5 * res.full_step_size**2 * float(x @ F @ x)
    assert abs(quad - delta) <= 1e-10 * delta
    # the direction solves F x = g to the reported residual, which is finite and small
    g = pe.policy_gradient(mdp, pol, theta)
    assert np.isfinite(res.cg_residual) and res.cg_residual <= 1e-9
    assert np.linalg.norm(F @ x - g) <= 1e-8 * np.linalg.norm(g)


class _ZeroFisherOracle:
    """An oracle whose Fisher has the gradient in its null space (CG breaks down at once)."""

    def __init__(self, policy, theta):
        self.policy, self.theta, self.J = policy, theta, 0.0
        self.gradient = np.ones(policy.n_params)

    def fisher_vector_product(self, v):
        v = np.asarray(v)
        return v - v.mean()  # projector onto the complement of the constant vector

    def kl(self, t):
        return 0.0

    def surrogate(self, t):
        return 1.0


class _ZeroFisherSource:
    def __init__(self, policy):
        self.policy = policy

    def at(self, theta, seed=None):
        return _ZeroFisherOracle(self.policy, theta)


def test_trpo_cg_breakdown_gives_finite_residual_and_message():
    pol = pe.TabularSoftmax(2, 2)
    res = trpo_step(_ZeroFisherSource(pol), np.zeros(4), 0.01)
    assert not res.accepted and res.cg_residual == 1.0 and "broke down" in res.message
    assert np.array_equal(res.theta, np.zeros(4)) and np.all(np.isfinite(res.direction))


def test_conjugate_gradient_matches_a_direct_solve_and_flags_breakdown():
    from pgexact.updates.trpo import conjugate_gradient

    rng = np.random.default_rng(0)
    B = rng.standard_normal((6, 6))
    F = B @ B.T + 0.1 * np.eye(6)

    class Op:
        def fisher_vector_product(self, v):
            return F @ v

    g = rng.standard_normal(6)
    x, it, broke = conjugate_gradient(Op(), g, maxiter=60, rtol=1e-13, damping=0.5)
    assert not broke and it <= 60
    assert np.allclose(x, np.linalg.solve(F + 0.5 * np.eye(6), g), rtol=0, atol=1e-10)
    x, it, broke = conjugate_gradient(_ZeroFisherOracle(pe.TabularSoftmax(2, 3), None), np.ones(6),
                                      maxiter=10, rtol=1e-10, damping=0.0)
    assert broke and it == 0 and np.array_equal(x, np.zeros(6))


# ----------------------------------------------------------------------------- PPO clip, row by row
def _clip_scalar(r, lo, hi):
    return lo if r < lo else (hi if r > hi else r)


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_clipped_objective_row_values_match_the_scalar_definition(eps):
    """Each row's value is w (min(r A, clip(r, 1 - eps, 1 + eps) A) - A), evaluated with Python
    scalars; the rows cover r below, inside and above [1 - eps, 1 + eps] for A of both signs,
    where swapped clip bounds (np.clip(r, 1 + eps, 1 - eps) = 1 - eps) change the value."""
    mdp, pol, theta = moderate_problem(5, S=5, A=4)
    oracle = ExactSource(mdp, pol).at(theta)
    batch = oracle.batch
    seen = set()
    for scale in (0.3, 1.0, 2.0):
        theta_new = theta + scale * np.random.default_rng(1).standard_normal(pol.n_params)
        logp_new = pol.log_probs(theta_new)
        for i in range(batch.n_rows):
            row = batch.subset(np.array([i]))
            s, a = int(row.states[0]), int(row.actions[0])
            r = float(np.exp(logp_new[s, a] - row.logp_old[0]))
            w, adv = float(np.exp(row.log_weights[0])), float(row.advantages[0])
            expected = w * (min(r * adv, _clip_scalar(r, 1 - eps, 1 + eps) * adv) - adv)
            value = clipped_objective(pol, row, theta_new, eps)[0]
            assert abs(value - expected) <= 1e-12 * max(abs(w * r * adv), abs(w * adv), 1e-300), (i, r)
            seen.add((np.sign(adv), -1 if r < 1 - eps else (1 if r > 1 + eps else 0)))
    # every (sign of A, side of the clip range) combination was exercised
    assert seen >= {(1.0, -1), (1.0, 0), (1.0, 1), (-1.0, -1), (-1.0, 0), (-1.0, 1)}


# ----------------------------------------------------------------------------- train: bad updates
def test_train_names_an_update_that_returns_something_else():
    src = ExactSource(*moderate_problem(0)[:2])

    def my_update(source, theta, seed=None):
        return theta  # a bare array, not a result

    with pytest.raises(TypeError, match=r"update my_update returned ndarray.*\.theta"):
        train(my_update, src, np.zeros(src.n_params), 2)

    class Bad:
        theta = np.zeros(3)

    with pytest.raises(ValueError, match=r"update <lambda> returned \.theta of shape \(3,\)"):
        train(lambda source, theta, seed=None: Bad(), src, np.zeros(src.n_params), 2)

    class NaN:
        theta = np.full(12, np.nan)

    with pytest.raises(ValueError, match=r"non-finite \.theta.*index 0"):
        train(lambda source, theta, seed=None: NaN(), src, np.zeros(src.n_params), 2)
