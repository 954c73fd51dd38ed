"""The parametrization-free exact core: derivatives in the policy matrix, Fisher products from JVP/VJP.

References independent of :mod:`pgexact.exact.policy_free`: the softmax paths
(``policy_gradient``, ``fisher_vector_product``, ``natural_gradient``), and complex-step
derivatives of J, V, Q, A and d written here with plain ``numpy.linalg.solve`` on the model's
arrays (the complex step is exact to rounding, so the tolerances are near machine precision).
"""

from __future__ import annotations

import numpy as np
import pytest

from pgexact import (
    LinearSoftmax,
    TabularSoftmax,
    evaluate,
    fisher_vector_product,
    natural_gradient,
    occupancy,
    policy_gradient,
)
from pgexact.errors import NumericalError
from pgexact.exact import (
    advantage_vjp,
    fisher_pi_metric,
    fisher_vector_product_jvp,
    minimum_norm_solve,
    occupancy_vjp,
    pi_gradient,
    value_and_pi_gradient,
    value_vjp,
)
from pgexact.mdps import gridworld, random_mdp

H_CS = 1e-30  # complex-step size: derivative exact to rounding, no subtractive cancellation


# ----------------------------------------------------------------- independent references
def _reference_values(mdp, pi):
    """(V, Q, d) by plain dense formulas, valid for complex and off-simplex pi."""
    P = mdp.P.toarray().reshape(mdp.n_states, mdp.n_actions, mdp.n_states) if mdp.is_sparse else mdp.P
    S = mdp.n_states
    g = mdp.gamma
    P_pi = np.einsum("sa,sat->st", pi, P)
    r_pi = np.einsum("sa,sa->s", pi, mdp.r)
    if mdp.horizon is None:
        M = np.eye(S) - g * P_pi
        V = np.linalg.solve(M, r_pi)
        Q = mdp.r + g * np.einsum("sat,t->sa", P, V)
        d = (1 - g) * np.linalg.solve(M.T, mdp.mu0)
        return V, Q, d
    H = mdp.horizon
    V = np.zeros((H, S), dtype=pi.dtype)
    Q = np.zeros((H, S, mdp.n_actions), dtype=pi.dtype)
    nxt = np.zeros(S)
    for t in range(H - 1, -1, -1):
        Q[t] = mdp.r + (g * np.einsum("sat,t->sa", P, nxt) if t < H - 1 else 0.0)
        V[t] = np.einsum("sa,sa->s", pi, Q[t])
        nxt = V[t]
    p = mdp.mu0.astype(pi.dtype)
    acc = np.zeros(S, dtype=pi.dtype)
    for t in range(H):
        acc = acc + g**t * p
        p = p @ P_pi
    return V, Q, acc / np.sum(g ** np.arange(H))


def _complex_step(f, pi, E):
    """Directional derivative of the real function f at pi along E (complex step)."""
    return float(np.imag(f(pi + 1j * H_CS * E)) / H_CS)


def _problems():
    yield random_mdp(5, 3, gamma=0.9, seed=11)
    yield random_mdp(4, 3, gamma=0.8, horizon=6, seed=12)
    yield random_mdp(4, 2, gamma=1.0, horizon=5, seed=13)


def _random_pi(rng, S, A):
    pi = rng.dirichlet(np.ones(A), size=S)
    return pi


# ----------------------------------------------------------------- dJ/dpi
@pytest.mark.parametrize("k", range(3))
def test_pi_gradient_matches_complex_step_off_the_simplex(k: int) -> None:
    mdp = list(_problems())[k]
    rng = np.random.default_rng(k)
    pi = _random_pi(rng, mdp.n_states, mdp.n_actions)
    J, G, ev = value_and_pi_gradient(mdp, pi)
    assert J == ev.J
    for _ in range(3):
        E = rng.normal(size=pi.shape)  # any direction, not only tangent to the simplex
        ref = _complex_step(lambda p: mdp.mu0 @ (_reference_values(mdp, p)[0][0] if mdp.horizon else _reference_values(mdp, p)[0]), pi, E)
        assert abs(np.sum(G * E) - ref) <= 1e-12 * (1 + abs(ref))


@pytest.mark.parametrize("k", range(3))
def test_pi_gradient_chain_rule_equals_softmax_policy_gradient(k: int) -> None:
    mdp = list(_problems())[k]
    rng = np.random.default_rng(20 + k)
    S, A = mdp.n_states, mdp.n_actions
    for pol in (TabularSoftmax(S, A), LinearSoftmax(rng.normal(size=(S, A, 4)))):
        theta = rng.normal(size=pol.n_params)
        pi = pol.probs(theta)
        G = pi_gradient(mdp, pi)
        # grad_theta J = sum_{s,a} G(s,a) d pi(a|s)/d theta = score_contract(pi * G)
        g = np.einsum("sa,sa,sak->k", pi, G, pol.score(theta))
        ref = policy_gradient(mdp, pol, theta)
        assert np.allclose(g, ref, rtol=1e-12, atol=1e-13 * np.abs(ref).max())


def test_pi_gradient_sparse_equals_dense() -> None:
    dense, sparse = gridworld(6, 7, gamma=0.95), gridworld(6, 7, gamma=0.95, sparse=True)
    pi = _random_pi(np.random.default_rng(3), dense.n_states, 4)
    Gd, Gs = pi_gradient(dense, pi), pi_gradient(sparse, pi, tol=1e-13)
    # Krylov solves to relative residual 1e-13: error <= sqrt(S) tol ||b|| / (1 - gamma) (evaluate)
    assert np.allclose(Gs, Gd, rtol=0, atol=1e-9 * np.abs(Gd).max())


# ----------------------------------------------------------------- VJPs of V, Q, A, d
def _pair(mdp, rng):
    pi = _random_pi(rng, mdp.n_states, mdp.n_actions)
    return pi, rng.normal(size=pi.shape)


@pytest.mark.parametrize("k", range(3))
def test_value_vjp_matches_complex_step(k: int) -> None:
    mdp = list(_problems())[k]
    rng = np.random.default_rng(30 + k)
    pi, E = _pair(mdp, rng)
    ev = evaluate(mdp, pi)
    Vb, Qb = rng.normal(size=ev.V.shape), rng.normal(size=ev.Q.shape)

    def f(p):
        V, Q, _ = _reference_values(mdp, p)
        return np.sum(Vb * V) + np.sum(Qb * Q)

    got = value_vjp(mdp, pi, V_bar=Vb, Q_bar=Qb)
    ref = _complex_step(f, pi, E)
    assert abs(np.sum(got * E) - ref) <= 1e-12 * (1 + abs(ref))
    # V alone with V_bar = mu0 (at t = 0) is dJ/dpi
    Vb0 = np.zeros(ev.V.shape)
    if mdp.horizon is None:
        Vb0[:] = mdp.mu0
    else:
        Vb0[0] = mdp.mu0
    assert np.allclose(value_vjp(mdp, pi, V_bar=Vb0), pi_gradient(mdp, pi), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("k", range(3))
def test_advantage_and_occupancy_vjp_match_complex_step(k: int) -> None:
    mdp = list(_problems())[k]
    rng = np.random.default_rng(40 + k)
    pi, E = _pair(mdp, rng)
    ev = evaluate(mdp, pi)
    Ab, db = rng.normal(size=ev.A.shape), rng.normal(size=mdp.n_states)

    def fA(p):
        V, Q, _ = _reference_values(mdp, p)
        return np.sum(Ab * (Q - V[..., None]))

    def fd(p):
        return np.sum(db * _reference_values(mdp, p)[2])

    assert abs(np.sum(advantage_vjp(mdp, pi, Ab) * E) - _complex_step(fA, pi, E)) <= 1e-12 * (1 + np.abs(Ab).sum())
    ref = _complex_step(fd, pi, E)
    assert abs(np.sum(occupancy_vjp(mdp, pi, db) * E) - ref) <= 1e-12 * (1 + abs(ref))
    # the reference d is pgexact.occupancy (same definition for both objectives)
    assert np.allclose(_reference_values(mdp, pi)[2], occupancy(mdp, pi), atol=1e-13)


def test_vjps_sparse_equal_dense() -> None:
    dense, sparse = gridworld(5, 5, gamma=0.9), gridworld(5, 5, gamma=0.9, sparse=True)
    rng = np.random.default_rng(5)
    pi = _random_pi(rng, 25, 4)
    Vb, Qb, db = rng.normal(size=25), rng.normal(size=(25, 4)), rng.normal(size=25)
    tol = 1e-13  # Krylov residual; the bound of evaluate's docstring gives ~1e-10 here
    assert np.allclose(value_vjp(sparse, pi, Vb, Qb, tol=tol), value_vjp(dense, pi, Vb, Qb), atol=1e-9)
    assert np.allclose(occupancy_vjp(sparse, pi, db, tol=tol), occupancy_vjp(dense, pi, db), atol=1e-9)


def test_vjp_bad_cotangent_shape_is_named() -> None:
    mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    pi = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match=r"Q_bar must have shape \(3, 2\)"):
        value_vjp(mdp, pi, Q_bar=np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"d_bar must have shape \(3\)"):
        occupancy_vjp(mdp, pi, np.zeros(4))
    with pytest.raises(ValueError, match=r"pi\[1, :\] sums to 1.1"):
        pi_gradient(mdp, [[0.5, 0.5], [0.5, 0.6], [1, 0]])


# ----------------------------------------------------------------- Fisher
def _softmax_jvp_vjp(pol, theta):
    """JVP/VJP of theta -> pi_theta for a softmax policy, from its score (independent of F)."""
    pi = pol.probs(theta)
    dpi = pi[:, :, None] * pol.score(theta)  # (S, A, n)
    return pi, (lambda v: dpi @ v), (lambda w: np.einsum("sa,sak->k", w, dpi))


@pytest.mark.parametrize("k", range(3))
def test_fisher_vector_product_jvp_equals_softmax_fvp(k: int) -> None:
    mdp = list(_problems())[k]
    rng = np.random.default_rng(50 + k)
    S, A = mdp.n_states, mdp.n_actions
    for pol in (TabularSoftmax(S, A), LinearSoftmax(rng.normal(size=(S, A, 5)))):
        theta = rng.normal(size=pol.n_params)
        v = rng.normal(size=pol.n_params)
        pi, jvp, vjp = _softmax_jvp_vjp(pol, theta)
        got = fisher_vector_product_jvp(mdp, pi, jvp, vjp, v)
        ref = fisher_vector_product(mdp, pol, theta, v)
        assert np.allclose(got, ref, rtol=1e-12, atol=1e-14 * np.abs(ref).max())


def test_fisher_metric_at_zero_probability() -> None:
    pi = np.array([[1.0, 0.0], [0.5, 0.5]])
    d = np.array([0.5, 0.5])
    out = fisher_pi_metric(pi, d, np.array([[0.0, 0.0], [0.1, -0.1]]))
    assert np.array_equal(out, [[0.0, 0.0], [0.1, -0.1]])
    with pytest.raises(NumericalError, match=r"u\[0, 1\] = 0.2 while pi\[0, 1\] = 0"):
        fisher_pi_metric(pi, d, np.array([[-0.2, 0.2], [0.0, 0.0]]))
    with pytest.raises(NumericalError, match=r"jvp\(v\)\[0, 1\] = 0.2 while pi\[0, 1\] = 0"):
        fisher_pi_metric(pi, d, np.array([[-0.2, 0.2], [0.0, 0.0]]), name="jvp(v)")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"d": None}, TypeError, r"^d must be an array"),
        ({"d": [0.5, np.nan]}, ValueError, r"^d\[1\] is nan"),
        ({"d": [0.5, -0.5]}, ValueError, r"^d\[1\] is -0.5, expected a state weight >= 0"),
        ({"d": np.ones(3)}, ValueError, r"^d must have shape \(2,\)"),
        ({"u": np.full((2, 2), np.nan)}, ValueError, r"^u\[0, 0\] is nan"),
        ({"u": np.ones(4)}, ValueError, r"^u has shape \(4,\)"),
        ({"u": np.full((2, 2), 1e300), "d": [1e300, 1e300]}, ValueError, r"^d\[0\] \* u\[0, 0\] / pi\[0, 0\] is beyond the float64 range"),
        ({"pi": [[0.5, 0.6], [0.5, 0.5]]}, ValueError, r"^pi\[0, :\] sums to 1.1"),
        ({"name": None}, TypeError, r"^name must be a str"),
    ],
)
def test_fisher_metric_rejects_malformed_input(kwargs: dict, error: type, match: str) -> None:
    args = {"pi": [[0.5, 0.5], [0.5, 0.5]], "d": [0.5, 0.5], "u": np.zeros((2, 2)), **kwargs}
    with pytest.raises(error, match=match):
        fisher_pi_metric(**args)


def test_callbacks_and_options_are_checked() -> None:
    mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    pi = np.full((3, 2), 0.5)
    with pytest.raises(TypeError, match=r"^jvp must be a callable, got NoneType"):
        fisher_vector_product_jvp(mdp, pi, None, lambda w: w, np.ones(6))
    with pytest.raises(TypeError, match=r"^vjp must be a callable"):
        fisher_vector_product_jvp(mdp, pi, lambda v: v, "x", np.ones(6))
    with pytest.raises(ValueError, match=r"^state_weights\[0\] is -1"):
        fisher_vector_product_jvp(mdp, pi, lambda v: v, lambda w: w, np.ones(6), state_weights=-np.ones(3))
    with pytest.raises(TypeError, match=r"^matvec must be a callable"):
        minimum_norm_solve(None, np.ones(3))
    with pytest.raises(ValueError, match=r"^rtol must be a finite number >= 0, got -1"):
        minimum_norm_solve(lambda x: x, np.ones(3), rtol=-1)
    with pytest.raises(TypeError, match=r"^maxiter must be a positive integer"):
        minimum_norm_solve(lambda x: x, np.ones(3), maxiter=1.5)


def test_minimum_norm_solve_is_the_natural_gradient() -> None:
    rng = np.random.default_rng(7)
    mdp = random_mdp(5, 3, gamma=0.9, seed=70)
    for pol in (TabularSoftmax(5, 3), LinearSoftmax(rng.normal(size=(5, 3, 4)))):
        theta = rng.normal(size=pol.n_params)
        pi, jvp, vjp = _softmax_jvp_vjp(pol, theta)
        g = policy_gradient(mdp, pol, theta)
        w = minimum_norm_solve(lambda x: fisher_vector_product_jvp(mdp, pi, jvp, vjp, x), g, rtol=1e-13)
        ref = natural_gradient(mdp, pol, theta)
        # CG to residual 1e-13 on F (condition number ~1e3 on its range): 1e-9 relative
        assert np.allclose(w, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    with pytest.raises(NumericalError, match="not in the range"):
        minimum_norm_solve(lambda x: np.array([x[0], 0.0]), np.array([1.0, 1.0]))
