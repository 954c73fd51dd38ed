"""Exact second derivatives of J in the policy matrix (``pgexact.exact.second_order``).

The reference is independent of the code under test: the exact gradient
:math:`\\partial J/\\partial\\pi = \\rho(s) Q(s, a)` (finite horizon :math:`\\sum_t \\gamma^t p_t Q_t`)
written here with plain ``numpy.linalg.solve`` and loops on complex arrays, differentiated by the
complex step (exact to rounding: no subtractive cancellation), in directions off the simplex too.
"""

from __future__ import annotations

import numpy as np
import pytest

from pgexact.exact import pi_gradient
from pgexact.exact.second_order import pi_hessian, pi_hessian_vector_product
from pgexact.mdps import gridworld, random_mdp

H_CS = 1e-30  # complex-step size


def _reference_gradient(mdp, pi):
    """dJ/dpi by dense formulas valid for complex, off-simplex pi (no pgexact solver)."""
    P = mdp.P.toarray().reshape(mdp.n_states, mdp.n_actions, mdp.n_states) if mdp.is_sparse else mdp.P
    S, g = mdp.n_states, mdp.gamma
    P_pi = np.einsum("sa,sat->st", pi, P)
    r_pi = np.einsum("sa,sa->s", pi, mdp.r)
    if mdp.horizon is None:
        M = np.eye(S) - g * P_pi
        V = np.linalg.solve(M, r_pi)
        rho = np.linalg.solve(M.T, mdp.mu0.astype(pi.dtype))
        return rho[:, None] * (mdp.r + g * np.einsum("sat,t->sa", P, V))
    H = mdp.horizon
    Q = []
    nxt = np.zeros(S, dtype=pi.dtype)
    for t in range(H - 1, -1, -1):
        q = mdp.r + (g * np.einsum("sat,t->sa", P, nxt) if t < H - 1 else 0.0)
        Q.append(q)
        nxt = np.einsum("sa,sa->s", pi, q)
    Q = Q[::-1]
    p = mdp.mu0.astype(pi.dtype)
    G = np.zeros(pi.shape, dtype=pi.dtype)
    for t in range(H):
        G = G + g**t * p[:, None] * Q[t]
        p = p @ P_pi
    return G


def _reference_hvp(mdp, pi, u):
    return np.imag(_reference_gradient(mdp, pi + 1j * H_CS * u)) / H_CS


def _problems():
    yield random_mdp(5, 3, gamma=0.9, seed=11)
    yield random_mdp(6, 2, gamma=0.99, seed=14)
    yield random_mdp(4, 3, gamma=0.8, horizon=6, seed=12)
    yield random_mdp(4, 2, gamma=1.0, horizon=5, seed=13)


@pytest.mark.parametrize("k", range(4))
def test_pi_hvp_matches_complex_step_of_an_independent_gradient(k: int) -> None:
    mdp = list(_problems())[k]
    rng = np.random.default_rng(k)
    pi = rng.dirichlet(np.ones(mdp.n_actions), size=mdp.n_states)
    G = _reference_gradient(mdp, pi)
    assert np.allclose(pi_gradient(mdp, pi), G, rtol=1e-12, atol=1e-12 * np.abs(G).max())
    for _ in range(3):
        u = rng.normal(size=pi.shape)  # off the simplex: the entries are free variables
        ref = _reference_hvp(mdp, pi, u)
        got = pi_hessian_vector_product(mdp, pi, u)
        # both sides exact to rounding; the condition of M (<= 2/(1-gamma)) amplifies it
        scale = np.abs(ref).max() / (1 - mdp.gamma if mdp.horizon is None else 1.0)
        assert np.abs(got - ref).max() <= 1e-12 * scale


@pytest.mark.parametrize("k", range(4))
def test_pi_hessian_is_symmetric_and_matches_its_products(k: int) -> None:
    mdp = list(_problems())[k]
    rng = np.random.default_rng(40 + k)
    pi = rng.dirichlet(np.ones(mdp.n_actions), size=mdp.n_states)
    H = pi_hessian(mdp, pi)
    n = mdp.n_states * mdp.n_actions
    assert H.shape == (n, n)
    scale = np.abs(H).max()
    assert np.abs(H - H.T).max() <= 1e-13 * scale / (1 - mdp.gamma if mdp.horizon is None else 1.0)
    u = rng.normal(size=pi.shape)
    assert np.allclose(H @ u.reshape(-1), pi_hessian_vector_product(mdp, pi, u).reshape(-1),
                       rtol=0, atol=1e-13 * scale * np.abs(u).sum())


def test_pi_hvp_central_difference_of_the_library_gradient_along_tangents() -> None:
    mdp = random_mdp(6, 3, gamma=0.9, seed=2)
    rng = np.random.default_rng(3)
    pi = rng.dirichlet(np.ones(3) * 3, size=6)
    u = rng.normal(size=pi.shape)
    u -= u.mean(axis=1, keepdims=True)  # pi +- h u stays a policy for pi_gradient's check
    h = 1e-4
    d1 = (pi_gradient(mdp, pi + h * u) - pi_gradient(mdp, pi - h * u)) / (2 * h)
    d2 = (pi_gradient(mdp, pi + 2 * h * u) - pi_gradient(mdp, pi - 2 * h * u)) / (4 * h)
    rich = (4 * d1 - d2) / 3  # Richardson: error O(h^4) ~ 1e-16 * third derivatives, plus rounding eps/h
    got = pi_hessian_vector_product(mdp, pi, u)
    assert np.abs(got - rich).max() <= 1e-9 * np.abs(got).max()


def test_pi_hvp_sparse_equals_dense() -> None:
    dense, sparse = gridworld(5, 6, gamma=0.95), gridworld(5, 6, gamma=0.95, sparse=True)
    rng = np.random.default_rng(5)
    pi = rng.dirichlet(np.ones(4), size=dense.n_states)
    u = rng.normal(size=pi.shape)
    Hd = pi_hessian_vector_product(dense, pi, u)
    Hs = pi_hessian_vector_product(sparse, pi, u, tol=1e-13)
    # Krylov residual 1e-13 per solve: error <= sqrt(S) tol ||b|| / (1 - gamma) per solve, chained
    assert np.allclose(Hs, Hd, rtol=0, atol=1e-8 * np.abs(Hd).max())
    fh, fhs = dense.with_horizon(7), sparse.with_horizon(7)
    assert np.allclose(pi_hessian_vector_product(fhs, pi, u), pi_hessian_vector_product(fh, pi, u),
                       rtol=1e-12, atol=1e-12)


def test_pi_hvp_bad_input_names_the_argument() -> None:
    mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    pi = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match="u"):
        pi_hessian_vector_product(mdp, pi, np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"u\[1, 0\]"):
        u = np.zeros((3, 2))
        u[1, 0] = np.nan
        pi_hessian_vector_product(mdp, pi, u)
    with pytest.raises(ValueError, match="pi"):
        pi_hessian_vector_product(mdp, np.ones((3, 2)), np.zeros((3, 2)))
