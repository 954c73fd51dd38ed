"""Sparse MDPs: the exact core on a scipy.sparse P of shape (S*A, S) agrees with dense.

Independent reference: the dense path (LAPACK LU for the discounted systems, dense recursions for
finite horizons) on the *same* MDP. The discounted sparse path is a Krylov solve to a relative
residual ``tol``; the agreement tolerances are derived from that ``tol``:

* ``M = I - gamma P_pi`` has ``M^{-1} = sum_t gamma^t P_pi^t`` (nonnegative, row sums
  1/(1-gamma)), so ``||M^{-1}||_2, ||M^{-T}||_2 <= sqrt(S)/(1-gamma)`` and a relative residual
  ``tol`` gives ``||dV||_2 <= sqrt(S) tol ||r_pi||_2 / (1-gamma)`` (same for rho with mu0);
* the dense LU reference itself is accurate to ``~ S eps kappa`` with ``kappa <= (1+gamma)/(1-gamma)``
  (we allow 1e3 S eps kappa, a generous rounding term that is still 1e-10 at most here);
* errors then propagate linearly: ``dQ = gamma P dV``, ``dA = dQ - dV``, tabular gradient
  weights ``w = rho pi A`` and the centring of the tabular score (factor 1 + A).

Finite horizons involve no solve: sparse and dense agree to rounding.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import pgexact
from pgexact import (
    FiniteMDP,
    LinearSoftmax,
    TabularSoftmax,
    evaluate,
    natural_gradient,
    occupancy,
    policy_gradient,
    state_marginals,
    stationary_distribution,
)
from pgexact.errors import NumericalError
from pgexact.exact import discounted_visitation, fisher, fisher_vector_product
from pgexact.mdps import gridworld, random_mdp
from pgexact.testing import finite_mdps, thetas

EPS = np.finfo(float).eps
TOL = 1e-10  # Krylov relative residual used throughout


def to_sparse(mdp: FiniteMDP, fmt: str = "csr") -> FiniteMDP:
    S, A = mdp.n_states, mdp.n_actions
    P = scipy.sparse.csr_array(mdp.P.reshape(S * A, S)).asformat(fmt)
    return FiniteMDP(P, mdp.r, mdp.mu0, mdp.gamma, mdp.horizon)


def solve_error_bounds(mdp: FiniteMDP, pi: np.ndarray, tol: float) -> tuple[float, float]:
    """(bound on ||dV||_inf, bound on ||d rho||_inf) from the residual tol (see module docstring)."""
    S, g = mdp.n_states, mdp.gamma
    kappa = (1 + g) / (1 - g)
    r_pi = np.einsum("sa,sa->s", pi, mdp.r)
    V_scale = np.max(np.abs(r_pi)) / (1 - g)
    rounding = 1e3 * S * EPS * kappa
    eV = np.sqrt(S) * tol * np.linalg.norm(r_pi) / (1 - g) + rounding * max(V_scale, 1.0)
    erho = np.sqrt(S) * tol * np.linalg.norm(mdp.mu0) / (1 - g) + rounding / (1 - g)
    return eV, erho


def assert_close(x, y, atol, what):
    err = np.max(np.abs(np.asarray(x) - np.asarray(y)))
    assert err <= atol, f"{what}: sparse vs dense differ by {err:.3g} > bound {atol:.3g}"


# ---------------------------------------------------------------- discounted: Krylov vs LU
@settings(max_examples=40, deadline=None)
@given(finite_mdps(discounted=True, max_states=7), st.data())
def test_discounted_sparse_matches_dense(mdp, data):
    S, A, g = mdp.n_states, mdp.n_actions, mdp.gamma
    sp_mdp = to_sparse(mdp, data.draw(st.sampled_from(["csr", "csc", "coo"])))
    policy = TabularSoftmax(S, A)
    theta = data.draw(thetas(policy.n_params, allow_large=False))
    pi = policy.probs(theta)
    dense, sparse = evaluate(mdp, pi), evaluate(sp_mdp, pi, tol=TOL)
    # the residual reported is the one achieved, recomputed here with dense algebra
    M = np.eye(S) - g * mdp.policy_transition(pi)
    r_pi = np.einsum("sa,sa->s", pi, mdp.r)
    rho = sparse.d / (1 - g)
    own = max(
        np.linalg.norm(r_pi - M @ sparse.V) / max(np.linalg.norm(r_pi), 1e-300),
        np.linalg.norm(mdp.mu0 - M.T @ rho) / np.linalg.norm(mdp.mu0),
    )
    assert dense.residual is None
    assert sparse.residual is not None and sparse.residual <= TOL
    # own recomputation agrees with the reported one up to rounding of the residual itself
    assert own <= TOL + 1e3 * S * EPS * (1 + g) / (1 - g)
    eV, erho = solve_error_bounds(mdp, pi, TOL)
    assert_close(sparse.V, dense.V, eV, "V")
    assert_close(sparse.Q, dense.Q, g * eV + 1e-13, "Q")
    assert_close(sparse.A, dense.A, (1 + g) * eV + 1e-13, "A")
    assert abs(sparse.J - dense.J) <= eV + 1e-13
    assert_close(sparse.d, dense.d, (1 - g) * erho, "d")
    assert_close(occupancy(sp_mdp, pi, tol=TOL), dense.d, (1 - g) * erho, "occupancy")
    assert_close(discounted_visitation(sp_mdp, pi, tol=TOL), dense.d / (1 - g), erho, "visitation")
    # tabular gradient weights w = rho pi A, then the centring of the score (factor 1 + A)
    rho_max, A_max = np.max(dense.d) / (1 - g), np.max(np.abs(dense.A))
    e_w = erho * A_max + rho_max * (1 + g) * eV
    assert_close(
        policy_gradient(sp_mdp, policy, theta, tol=TOL),
        policy_gradient(mdp, policy, theta),
        (1 + A) * e_w + 1e-12,
        "policy_gradient",
    )
    # tabular NPG = (A - support mean of A) / (1 - gamma): error <= 2 dA / (1 - gamma)
    assert_close(
        natural_gradient(sp_mdp, policy, theta, tol=TOL),
        natural_gradient(mdp, policy, theta),
        2 * (1 + g) * eV / (1 - g) + 1e-12,
        "natural_gradient",
    )
    # Fisher and its vector product use the default tol (1e-10 as well): F is linear in d
    e_F = erho * (1 - g) * 2.0  # |score| <= 1 per entry for tabular, so |F_kl| <= sum_s d(s) ...
    assert_close(fisher(sp_mdp, policy, theta), fisher(mdp, policy, theta), e_F * S + 1e-13, "fisher")
    v = np.linspace(-1, 1, policy.n_params)
    assert_close(
        fisher_vector_product(sp_mdp, policy, theta, v),
        fisher_vector_product(mdp, policy, theta, v),
        e_F * S * A + 1e-13,
        "fisher_vector_product",
    )


@settings(max_examples=15, deadline=None)
@given(finite_mdps(discounted=True, max_states=6), st.data())
def test_linear_softmax_gradient_sparse_matches_dense(mdp, data):
    S, A, g = mdp.n_states, mdp.n_actions, mdp.gamma
    phi = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).uniform(-1, 1, (S, A, 3))
    policy = LinearSoftmax(phi)
    theta = data.draw(thetas(3, allow_large=False))
    pi = policy.probs(theta)
    dense = evaluate(mdp, pi)
    eV, erho = solve_error_bounds(mdp, pi, TOL)
    e_w = erho * np.max(np.abs(dense.A)) + np.max(dense.d) / (1 - g) * (1 + g) * eV
    # |score entries| <= 2 max|phi| <= 2; sum over S*A weights
    assert_close(
        policy_gradient(to_sparse(mdp), policy, theta, tol=TOL),
        policy_gradient(mdp, policy, theta),
        2 * S * A * e_w + 1e-12,
        "linear policy_gradient",
    )


# ---------------------------------------------------------------- finite horizon: recursions
@settings(max_examples=30, deadline=None)
@given(finite_mdps(discounted=False, max_states=7), st.data())
def test_finite_horizon_sparse_matches_dense(mdp, data):
    S, A, H = mdp.n_states, mdp.n_actions, mdp.horizon
    sp_mdp = to_sparse(mdp)
    policy = TabularSoftmax(S, A)
    theta = data.draw(thetas(policy.n_params))
    pi = policy.probs(theta)
    dense, sparse = evaluate(mdp, pi), evaluate(sp_mdp, pi)
    assert sparse.residual is None and sparse.d is None
    # same sums in another order: rounding only, |V_t| <= H max|r| <= H
    rnd = 64 * H * max(S, A) * EPS * H
    for name in ("V", "Q", "A", "p"):
        assert_close(getattr(sparse, name), getattr(dense, name), rnd, name)
    assert abs(sparse.J - dense.J) <= rnd
    T = data.draw(st.integers(1, 8))
    assert_close(state_marginals(sp_mdp, pi, T), state_marginals(mdp, pi, T), 64 * T * S * EPS, "p_t")
    assert_close(occupancy(sp_mdp, pi), occupancy(mdp, pi), 64 * H * S * EPS, "occupancy")
    assert_close(
        policy_gradient(sp_mdp, policy, theta), policy_gradient(mdp, policy, theta), rnd * S * A, "grad"
    )
    assert_close(
        natural_gradient(sp_mdp, policy, theta), natural_gradient(mdp, policy, theta), 1e-9, "npg"
    )  # divides by d(s) > 0: rounding relative to H / min d, kept loose but far below O(1) errors


@settings(max_examples=20, deadline=None)
@given(finite_mdps(max_states=6))
def test_model_operators_sparse_match_dense(mdp):
    S, A = mdp.n_states, mdp.n_actions
    sp_mdp = to_sparse(mdp)
    assert sp_mdp.is_sparse and not mdp.is_sparse
    assert (sp_mdp.n_states, sp_mdp.n_actions) == (S, A)
    assert np.array_equal(sp_mdp.terminal, mdp.terminal)
    pi = np.random.default_rng(S * 10 + A).dirichlet(np.ones(A), size=S)
    P_pi = sp_mdp.policy_transition(pi)
    assert scipy.sparse.issparse(P_pi) and P_pi.has_canonical_format
    assert_close(P_pi.toarray(), mdp.policy_transition(pi), 4 * A * EPS, "P_pi")
    v = np.linspace(-2, 3, S)
    assert_close(sp_mdp.expected_next(v), mdp.expected_next(v), 8 * S * EPS * 3, "P v")
    vk = np.outer(v, [1.0, -2.0])
    assert sp_mdp.expected_next(vk).shape == (S, A, 2)
    # read-only like the dense arrays
    with pytest.raises(ValueError):
        sp_mdp.P.data[0] = 0.5
    # with_horizon keeps the sparse representation
    assert sp_mdp.with_horizon(3, gamma=1.0).is_sparse


# ---------------------------------------------------------------- a larger, slowly mixing case
def test_sparse_gridworld_high_discount_matches_dense():
    """30 x 30 slippery gridworld, gamma = 0.99 (the benchmark's regime at 1/1000 the size)."""
    kw = dict(gamma=0.99, slip=0.2, start=(10, 12), step_reward=-0.01)
    dense, sparse = gridworld(30, 30, **kw), gridworld(30, 30, sparse=True, **kw)
    S = dense.n_states
    policy = TabularSoftmax(S, 4)
    theta = np.random.default_rng(7).standard_normal(policy.n_params)
    pi = policy.probs(theta)
    ev_d, ev_s = evaluate(dense, pi), evaluate(sparse, pi, tol=1e-10)
    assert ev_s.residual <= 1e-10
    eV, erho = solve_error_bounds(dense, pi, 1e-10)
    assert_close(ev_s.V, ev_d.V, eV, "V")
    assert_close(ev_s.d, ev_d.d, (1 - 0.99) * erho, "d")
    g_d = policy_gradient(dense, policy, theta)
    e_w = erho * np.max(np.abs(ev_d.A)) + np.max(ev_d.d) / 0.01 * 2 * eV
    assert_close(policy_gradient(sparse, policy, theta, tol=1e-10), g_d, 5 * e_w, "grad")
    # a looser tol gives a proportionally looser (still bounded) answer, and reports it
    ev_l = evaluate(sparse, pi, tol=1e-6)
    assert ev_l.residual <= 1e-6
    eV6, _ = solve_error_bounds(dense, pi, 1e-6)
    assert_close(ev_l.V, ev_d.V, eV6, "V at tol=1e-6")


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"slip": 0.0},
        {"slip": 1.0},
        {"goal": (1, 2), "start": (2, 0), "step_reward": -0.1, "slip": 0.3},
        {"horizon": 5, "gamma": 1.0},
    ],
)
@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (3, 4), (6, 6)])
def test_sparse_gridworld_builder_is_the_dense_one(kw, shape):
    args = {"gamma": 0.9, **kw}
    if "goal" in args and not (args["goal"][0] < shape[0] and args["goal"][1] < shape[1]):
        pytest.skip("goal outside this grid")
    if "start" in args and not (args["start"][0] < shape[0] and args["start"][1] < shape[1]):
        pytest.skip("start outside this grid")
    d, s = gridworld(*shape, **args), gridworld(*shape, sparse=True, **args)
    S = d.n_states
    assert s.is_sparse and s.P.shape == (S * 4, S)
    assert np.array_equal(s.P.toarray().reshape(S, 4, S), d.P)
    assert np.array_equal(s.r, d.r) and np.array_equal(s.mu0, d.mu0)
    assert np.array_equal(s.terminal, d.terminal)
    assert (s.gamma, s.horizon) == (d.gamma, d.horizon)


# ---------------------------------------------------------------- bad input
def _sparse_P(S=4, A=2, seed=0):
    return scipy.sparse.csr_array(random_mdp(S, A, gamma=0.5, seed=seed).P.reshape(S * A, S))


def test_row_not_a_distribution_is_named():
    P = _sparse_P().toarray()
    P[5, 1] += 0.03  # row 5 = (s=2, a=1)
    with pytest.raises(ValueError, match=r"P\[row 5 = \(s=2, a=1\), :\] sums to 1\.03.*expected 1"):
        FiniteMDP(scipy.sparse.csr_array(P), np.zeros((4, 2)), np.full(4, 0.25), 0.9)


def test_empty_row_is_named():
    P = _sparse_P().toarray()
    P[6] = 0.0  # row 6 = (s=3, a=0) stores nothing
    with pytest.raises(ValueError, match=r"P\[row 6 = \(s=3, a=0\), :\] sums to 0,"):
        FiniteMDP(scipy.sparse.csr_array(P), np.zeros((4, 2)), np.full(4, 0.25), 0.9)


def test_first_offending_row_among_many_is_named():
    """Vectorized validation on 160 000 rows names the first bad row, not a later one."""
    g = gridworld(200, 200, gamma=0.9, sparse=True)
    P = g.P.copy()
    P.data[P.indptr[123_457]] += 0.5  # row 123457 = (s=30864, a=1)
    P.data[P.indptr[150_000]] += 0.5
    with pytest.raises(ValueError, match=r"P\[row 123457 = \(s=30864, a=1\), :\] sums to 1\.5"):
        FiniteMDP(P, g.r, g.mu0, 0.9)


@pytest.mark.parametrize(
    "value, pattern",
    [
        (-0.25, r"P\[row 3 = \(s=1, a=1\), 2\] is -0\.25, expected >= 0"),
        (np.nan, r"P\[row 3 = \(s=1, a=1\), 2\] is nan, expected a finite number"),
        (np.inf, r"P\[row 3 = \(s=1, a=1\), 2\] is inf, expected a finite number"),
    ],
)
def test_bad_entry_is_named_with_row_and_column(value, pattern):
    P = _sparse_P().toarray()
    P[3, 2] = value
    with pytest.raises(ValueError, match=pattern):
        FiniteMDP(scipy.sparse.csr_array(P), np.zeros((4, 2)), np.full(4, 0.25), 0.9)


def test_bad_shapes_and_types():
    P = _sparse_P()
    with pytest.raises(ValueError, match=r"not a multiple of S=4"):
        FiniteMDP(P[:7], np.zeros((4, 2)), np.full(4, 0.25), 0.9)
    with pytest.raises(ValueError, match=r"r must have shape \(S, A\)=\(4, 2\) when P is sparse"):
        FiniteMDP(P, np.zeros((4, 2, 4)), np.full(4, 0.25), 0.9)
    with pytest.raises(ValueError, match=r"mu0 must have shape"):
        FiniteMDP(P, np.zeros((4, 2)), np.full(3, 1 / 3), 0.9)
    with pytest.raises(TypeError, match=r"P must be a sparse matrix of real numbers, got booleans"):
        FiniteMDP(scipy.sparse.csr_array(np.eye(4, dtype=bool)), np.zeros((4, 1)), np.full(4, 0.25), 0.9)
    with pytest.raises(TypeError, match=r"complex"):
        FiniteMDP(P.astype(complex), np.zeros((4, 2)), np.full(4, 0.25), 0.9)


@pytest.mark.parametrize("tol, exc", [(0.0, ValueError), (1.0, ValueError), (-1e-3, ValueError),
                                      (np.nan, ValueError), ("1e-8", TypeError), (True, TypeError)])
def test_bad_tol(tol, exc):
    mdp = to_sparse(random_mdp(3, 2, gamma=0.9, seed=1))
    with pytest.raises(exc, match="tol"):
        evaluate(mdp, np.full((3, 2), 0.5), tol=tol)


def test_unreachable_tol_raises_numerical_error():
    """A relative residual of 1e-30 is below rounding (~1e-16): the solve must say it failed."""
    mdp = gridworld(8, 8, gamma=0.99, slip=0.2, sparse=True, step_reward=-1.0)
    with pytest.raises(NumericalError, match=r"tol=1e-30 is below the relative accuracy.*loosen tol"):
        evaluate(mdp, np.full((64, 4), 0.25), tol=1e-30)


def test_dense_path_unchanged_and_reports_no_residual():
    mdp = random_mdp(5, 3, gamma=0.9, seed=4)
    pi = np.full((5, 3), 1 / 3)
    ev = evaluate(mdp, pi, tol=1e-6)  # validated, unused: the dense solve is direct
    assert ev.residual is None
    assert np.array_equal(ev.V, evaluate(mdp, pi).V)


def test_top_level_api_unchanged_by_sparse_support():
    assert pgexact.FiniteMDP is FiniteMDP and hasattr(FiniteMDP, "is_sparse")


@settings(max_examples=15, deadline=None)
@given(finite_mdps(discounted=False, max_states=4, max_actions=3, max_horizon=3), st.data())
def test_verification_tools_accept_sparse(mdp, data):
    """Trajectory enumeration and the five gradient forms run on sparse P (no Krylov: the
    enumeration is exact sums of products; the forms use the finite-horizon recursions)."""
    sp_mdp = to_sparse(mdp)
    policy = TabularSoftmax(mdp.n_states, mdp.n_actions)
    theta = data.draw(thetas(policy.n_params, allow_large=False))
    a, b = pgexact.exact.reinforce_by_enumeration(sp_mdp, policy, theta), pgexact.exact.reinforce_by_enumeration(
        mdp, policy, theta
    )
    assert a.n_trajectories == b.n_trajectories
    H = mdp.horizon
    assert abs(a.J - b.J) <= 64 * H * EPS * max(1, a.n_trajectories) ** 0.5
    assert_close(a.reinforce, b.reinforce, 1e-12 * max(1, a.n_trajectories), "enumerated REINFORCE")
    fa, fb = pgexact.exact.policy_gradient_forms(sp_mdp, policy, theta), pgexact.exact.policy_gradient_forms(
        mdp, policy, theta
    )
    assert_close(fa.bellman_derivative, fb.bellman_derivative, 1e-12, "bellman derivative")


# ---------------------------------------------------------------- convergence on hard instances
def independent_residuals(mdp: FiniteMDP, pi: np.ndarray, V: np.ndarray, rho: np.ndarray):
    """Relative residuals of both systems with I - gamma P_pi assembled by a sparse product
    (not the row-regrouping the solver uses)."""
    S, A = mdp.n_states, mdp.n_actions
    avg = scipy.sparse.csr_array(
        (pi.reshape(-1), (np.repeat(np.arange(S), A), np.arange(S * A))), shape=(S, S * A)
    )
    M = scipy.sparse.eye_array(S, format="csr") - mdp.gamma * (avg @ scipy.sparse.csr_array(mdp.P))
    r_pi = np.einsum("sa,sa->s", pi, mdp.r)
    return (np.linalg.norm(r_pi - M @ V) / np.linalg.norm(r_pi),
            np.linalg.norm(mdp.mu0 - M.T @ rho) / np.linalg.norm(mdp.mu0))


def sparse_random_mdp(S: int, A: int, k: int, gamma: float, seed: int) -> FiniteMDP:
    """Random MDP with k next states per (s, a): P (S*A, S) CSR, Dirichlet(1) probabilities."""
    rng = np.random.default_rng(seed)
    cols = np.stack([rng.choice(S, size=k, replace=False) for _ in range(S * A)])
    P = scipy.sparse.csr_array(
        (rng.dirichlet(np.ones(k), size=S * A).ravel(), cols.ravel(), np.arange(0, S * A * k + 1, k)),
        shape=(S * A, S),
    )
    return FiniteMDP(P, rng.standard_normal((S, A)), rng.dirichlet(np.ones(S)), gamma)


def grid_instance(side, gamma, seed, *, slip=0.1, mu0="uniform", theta_scale=2.0, r_scale=1.0):
    rng = np.random.default_rng(seed)
    S = side * side
    g = gridworld(side, side, gamma=gamma, slip=slip, sparse=True,
                  goal=tuple(int(c) for c in rng.integers(0, side, 2)))
    if mu0 == "uniform":
        m = np.full(S, 1.0 / S)
    elif mu0 == "corner":
        m = np.zeros(S)
        m[0] = 1.0
    else:
        m = rng.dirichlet(np.full(S, 0.1))
    mdp = FiniteMDP(g.P, r_scale * rng.standard_normal((S, 4)), m, gamma)
    pol = TabularSoftmax(S, 4)
    return mdp, pol.probs(theta_scale * rng.standard_normal(pol.n_params))


def check_converged(mdp, pi, tol):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no scipy or numpy warning may leak
        ev = evaluate(mdp, pi, tol=tol)
    res_V, res_rho = independent_residuals(mdp, pi, ev.V, ev.d / (1 - mdp.gamma))
    # the recomputed residuals differ from the reported ones by rounding only
    assert res_V <= tol * (1 + 1e-6) + 1e-14 and res_rho <= tol * (1 + 1e-6) + 1e-14, (res_V, res_rho)
    assert ev.residual <= tol
    return ev


def test_adjoint_with_uniform_mu0_breaks_scipy_bicgstab_and_converges_here():
    """300 x 300 slippery gridworld, gamma = 0.99, random rewards, uniform mu0: the adjoint system
    makes BiCGSTAB with the default shadow residual r0 break down (1 is a left eigenvector of
    (I - gamma P_pi)^T); the solver converges on both systems."""
    mdp, pi = grid_instance(300, 0.99, seed=0, theta_scale=1.0)
    P_pi = mdp.policy_transition(pi)
    MT = (scipy.sparse.eye_array(mdp.n_states, format="csr") - 0.99 * P_pi).T.tocsr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x, info = scipy.sparse.linalg.bicgstab(MT, mdp.mu0, rtol=1e-8, atol=0.0, maxiter=2000)
    assert info != 0 or np.linalg.norm(mdp.mu0 - MT @ x) > 1e-8 * np.linalg.norm(mdp.mu0)
    check_converged(mdp, pi, 1e-8)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_slowly_mixing_300x300_at_gamma_0999_converges(seed):
    """BiCGSTAB breaks down here (after 250-450 iterations); the restarts from the iterate reached
    converge. Covered fast by the 40 x 40 cases of test_gridworlds_converge."""
    mdp, pi = grid_instance(300, 0.999, seed=seed)
    check_converged(mdp, pi, 1e-8)


@pytest.mark.parametrize("gamma", [0.9, 0.99, 0.999])
@pytest.mark.parametrize("seed, case", enumerate([
    dict(side=40),                                          # uniform mu0
    dict(side=40, mu0="corner", theta_scale=6.0),           # point mass, near-deterministic policy
    dict(side=30, slip=0.0, theta_scale=20.0),              # deterministic: cycles of P_pi
    dict(side=25, mu0="dirichlet", r_scale=1e150),          # huge rewards
    dict(side=25, mu0="dirichlet", r_scale=1e-150),         # tiny rewards
]))
def test_gridworlds_converge(seed, case, gamma):
    mdp, pi = grid_instance(gamma=gamma, seed=seed + int(1000 * gamma), **case)
    check_converged(mdp, pi, 1e-10)


@pytest.mark.parametrize("gamma", [0.5, 0.99, 0.999])
@pytest.mark.parametrize("k", [1, 2, 5])
def test_random_sparse_mdps_converge_and_match_dense(k, gamma):
    mdp = sparse_random_mdp(400, 3, k, gamma, seed=10 * k + int(1000 * gamma))
    rng = np.random.default_rng(k)
    pi = rng.dirichlet(np.full(3, 0.3), size=400)
    ev = check_converged(mdp, pi, 1e-10)
    dense = FiniteMDP(mdp.P.toarray().reshape(400, 3, 400), mdp.r, mdp.mu0, gamma)
    ev_d = evaluate(dense, pi)
    eV, erho = solve_error_bounds(dense, pi, 1e-10)
    assert_close(ev.V, ev_d.V, eV, "V")
    assert_close(ev.d, ev_d.d, (1 - gamma) * erho, "d")


def test_constant_rewards_and_mu0_on_an_absorbing_state():
    """r_pi proportional to 1 (an eigenvector of I - gamma P_pi: the exact answer after one step)
    and mu0 a point mass on the absorbing goal (rho = e_goal / (1 - gamma))."""
    g = gridworld(20, 20, gamma=0.99, sparse=True)
    mu0 = np.zeros(400)
    mu0[-1] = 1.0
    mdp = FiniteMDP(g.P, np.full((400, 4), -1.0), mu0, 0.99)
    ev = check_converged(mdp, np.full((400, 4), 0.25), 1e-12)
    assert np.allclose(ev.V, -100.0, rtol=1e-10)
    assert np.allclose(ev.d, mu0, atol=1e-12)


@pytest.mark.parametrize("skip", [("bicgstab",), ("bicgstab", "lgmres")])
def test_fallbacks_converge_on_their_own(monkeypatch, skip):
    """Each later method of the chain reaches tol by itself from where the earlier one stopped."""
    from pgexact.exact import _krylov

    if "bicgstab" in skip:
        monkeypatch.setattr(_krylov, "_bicgstab", lambda sv, tol, alpha, max_iter: "no progress (test)")
    if "lgmres" in skip:
        monkeypatch.setattr(_krylov, "_lgmres", lambda sv, tol, max_products: "no progress (test)")
    mdp, pi = grid_instance(15, 0.99, seed=3)
    check_converged(mdp, pi, 1e-9)


def test_failure_names_the_system_and_gives_advice(monkeypatch):
    from pgexact.exact import _krylov

    monkeypatch.setattr(_krylov, "_bicgstab", lambda sv, tol, alpha, max_iter: "breakdown (test)")
    monkeypatch.setattr(_krylov, "_lgmres", lambda sv, tol, max_products: "no progress (test)")
    monkeypatch.setattr(_krylov, "_MAX_RICHARDSON_WORK", 0.0)
    mdp, pi = grid_instance(10, 0.99, seed=4)
    with pytest.raises(NumericalError, match=r"\(I - gamma P_pi\) V = r_pi.*BiCGSTAB: breakdown"
                                             r".*fixed-point iteration not tried.*loosen tol"):
        evaluate(mdp, pi, tol=1e-8)


def test_blas_limited_to_one_thread_inside_the_solve():
    from threadpoolctl import threadpool_info

    from pgexact.exact._krylov import krylov_solve

    mdp, pi = grid_instance(10, 0.9, seed=5)
    M = scipy.sparse.eye_array(100, format="csr") - 0.9 * mdp.policy_transition(pi)
    seen = []

    def matvec(x):
        seen.append(max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"),
                        default=1))
        return M @ x

    op = scipy.sparse.linalg.LinearOperator(M.shape, matvec=matvec, dtype=float)
    x, res = krylov_solve(op, np.ones(100) + np.arange(100), 1e-10, "test", gamma=0.9)
    assert res <= 1e-10 and seen and set(seen) == {1}


# ---------------------------------------------------------------- stationary distribution
def _dense_twin(mdp: FiniteMDP) -> FiniteMDP:
    S, A = mdp.n_states, mdp.n_actions
    return FiniteMDP(mdp.P.toarray().reshape(S, A, S), mdp.r, mdp.mu0, mdp.gamma)


@pytest.mark.parametrize("k, seed", [(1, 0), (2, 1), (3, 2), (6, 3)])
def test_sparse_stationary_distribution_matches_dense(k, seed):
    mdp = sparse_random_mdp(60, 3, k, 0.9, seed=seed)
    pi = np.random.default_rng(seed).dirichlet(np.ones(3), size=60)
    dense = _dense_twin(mdp)
    try:
        nu_d = stationary_distribution(dense, pi)
    except pgexact.errors.NotUniqueError:
        with pytest.raises(pgexact.errors.NotUniqueError):
            stationary_distribution(mdp, pi)
        return
    nu = stationary_distribution(mdp, pi)
    # both sides solve a well-conditioned system of size <= 60 (rounding ~ 1e3 S eps)
    assert np.max(np.abs(nu - nu_d)) <= 1e-10
    assert np.max(np.abs(nu @ mdp.policy_transition(pi) - nu)) <= 1e-13


def test_sparse_stationary_distribution_with_transient_states_and_gridworld():
    # a slippery gridworld with its absorbing goal: all mass ends on the goal
    g = gridworld(6, 7, gamma=0.9, sparse=True, goal=(2, 3))
    pi = np.random.default_rng(0).dirichlet(np.ones(4), size=42)
    nu = stationary_distribution(g, pi)
    assert nu[2 * 7 + 3] == 1.0 and np.count_nonzero(nu) == 1
    # a chain with transient states 0, 1 feeding a closed 3-cycle-with-slack {2, 3, 4}
    P = np.zeros((5, 1, 5))
    P[0, 0, [0, 1]] = 0.5
    P[1, 0, [2, 0]] = [0.7, 0.3]
    P[2, 0, [3, 2]] = [0.9, 0.1]
    P[3, 0, 4] = 1.0
    P[4, 0, [2, 3]] = [0.6, 0.4]
    dense = FiniteMDP(P, np.zeros((5, 1)), np.full(5, 0.2), 0.9)
    sp = to_sparse(dense)
    nu_d, nu_s = stationary_distribution(dense, np.ones((5, 1))), stationary_distribution(sp, np.ones((5, 1)))
    assert np.max(np.abs(nu_s - nu_d)) <= 1e-13 and nu_s[0] == nu_s[1] == 0.0
    # by hand: nu3 = 0.9 nu2 + 0.4 nu4, nu4 = nu3, nu2 = 0.1 nu2 + 0.6 nu4 -> nu2 = 2/3 nu4
    assert np.allclose(nu_s[2:], np.array([2 / 3, 1, 1]) / (8 / 3), atol=1e-15, rtol=0)


def test_sparse_stationary_distribution_not_unique_and_never_dense(monkeypatch):
    P = np.zeros((4, 1, 4))
    P[0, 0, 1] = P[1, 0, 0] = 1.0  # closed class {0, 1}
    P[2, 0, 2] = 1.0  # closed class {2}
    P[3, 0, [0, 2]] = 0.5  # transient
    sp = to_sparse(FiniteMDP(P, np.zeros((4, 1)), np.full(4, 0.25), 0.9))
    with pytest.raises(pgexact.errors.NotUniqueError, match="2 closed classes"):
        stationary_distribution(sp, np.ones((4, 1)))
    # no dense (S, S) array is formed on the sparse path
    monkeypatch.setattr(scipy.linalg, "svd", lambda *a, **k: pytest.fail("dense SVD used"))
    # a 200 x 200 gridworld whose goal sends the agent back to the start: irreducible, S = 40000
    g = gridworld(200, 200, gamma=0.9, sparse=True, slip=0.5)
    P = g.P.tocoo()
    goal_rows = np.arange(4 * 39999, 4 * 40000)
    keep = ~np.isin(P.row, goal_rows)
    P = scipy.sparse.csr_array(
        (np.concatenate((P.data[keep], np.ones(4))),
         (np.concatenate((P.row[keep], goal_rows)), np.concatenate((P.col[keep], np.zeros(4, int))))),
        shape=P.shape,
    )
    loop = FiniteMDP(P, g.r, g.mu0, 0.9)
    W = np.random.default_rng(1).dirichlet(np.ones(4), size=40000)
    nu = stationary_distribution(loop, W)
    P_pi = loop.policy_transition(W)
    assert np.all(nu > 0) and abs(nu.sum() - 1) <= 1e-12
    # balance to rounding: ||nu P - nu||_1 ~ S eps max(nu) (LU backward error)
    assert np.abs(nu @ P_pi - nu).sum() <= 1e3 * 40000 * EPS * nu.max()


def test_matvec_into_a_buffer_equals_the_sparse_product():
    from pgexact.exact._krylov import _matvec_into

    rng = np.random.default_rng(0)
    M = scipy.sparse.random_array((50, 50), density=0.1, format="csr", rng=rng)
    x = rng.standard_normal(50)
    M64 = scipy.sparse.csr_array((M.data, M.indices.astype(np.int64), M.indptr.astype(np.int64)),
                                 shape=M.shape)
    op = scipy.sparse.linalg.aslinearoperator(M)
    for A in (M, M64, op):
        out = np.full(50, np.nan)
        assert np.allclose(_matvec_into(A, x, out), M @ x, rtol=1e-15, atol=1e-15)
