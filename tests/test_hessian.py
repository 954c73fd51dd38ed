"""Exact Hessians of J for the softmax parametrizations (``pgexact.hessian``, ``hessian_vector_product``).

References independent of the code under test: the exact gradient written here with plain
``numpy.linalg.solve`` on complex arrays and a complex softmax, differentiated by the complex
step; Richardson differences of the gradient that trajectory enumeration computes (finite
horizon: no V, Q or linear solve); dense against sparse storage.
"""

from __future__ import annotations

import numpy as np
import pytest

from pgexact import FiniteMDP, LinearSoftmax, TabularSoftmax, hessian, hessian_vector_product, policy_gradient
from pgexact.exact import reinforce_by_enumeration, value_gradient_hessian
from pgexact.mdps import gridworld, random_mdp

from test_second_order import H_CS, _reference_gradient


def _logit_jacobian(pol):
    S, A = pol.n_states, pol.n_actions
    return np.eye(S * A).reshape(S, A, S * A) if isinstance(pol, TabularSoftmax) else pol.features


def _reference_theta_gradient(mdp, pol, theta):
    """grad_theta J with a complex-safe softmax and the reference dJ/dpi (no pgexact code path)."""
    Phi = _logit_jacobian(pol)
    z = Phi @ theta
    e = np.exp(z - z.real.max(axis=1, keepdims=True))
    pi = e / e.sum(axis=1, keepdims=True)
    G = _reference_gradient(mdp, pi)
    c = pi * (G - np.sum(pi * G, axis=1, keepdims=True))
    return np.einsum("sa,sak->k", c, Phi)


def _reference_hvp(mdp, pol, theta, v):
    return np.imag(_reference_theta_gradient(mdp, pol, theta + 1j * H_CS * v)) / H_CS


def _cases():
    rng = np.random.default_rng(7)
    for mdp in (random_mdp(5, 3, gamma=0.9, seed=21), random_mdp(6, 2, gamma=0.98, seed=22),
                random_mdp(4, 3, gamma=0.8, horizon=6, seed=23), random_mdp(4, 2, gamma=1.0, horizon=5, seed=24)):
        S, A = mdp.n_states, mdp.n_actions
        yield mdp, TabularSoftmax(S, A)
        yield mdp, LinearSoftmax(rng.normal(size=(S, A, 5)))


CASES = list(_cases())


def _scale(mdp, H):
    return np.abs(H).max() / ((1 - mdp.gamma) if mdp.horizon is None else 1.0)


@pytest.mark.parametrize("k", range(len(CASES)))
def test_hessian_matches_complex_step_of_an_independent_gradient(k: int) -> None:
    mdp, pol = CASES[k]
    rng = np.random.default_rng(100 + k)
    theta = rng.normal(size=pol.n_params)
    H = hessian(mdp, pol, theta)
    ref = np.stack([_reference_hvp(mdp, pol, theta, e) for e in np.eye(pol.n_params)], axis=1)
    # both exact to rounding, amplified by the condition of I - gamma P_pi (<= 2/(1-gamma))
    assert np.abs(H - ref).max() <= 1e-12 * _scale(mdp, ref)
    v = rng.normal(size=pol.n_params)
    assert np.abs(hessian_vector_product(mdp, pol, theta, v) - ref @ v).max() <= 1e-12 * _scale(mdp, ref) * np.abs(v).sum()


@pytest.mark.parametrize("k", range(len(CASES)))
def test_hessian_vector_products_are_symmetric(k: int) -> None:
    # u^T (H v) = v^T (H u): the product is not symmetric by construction (its two terms are not)
    mdp, pol = CASES[k]
    rng = np.random.default_rng(200 + k)
    theta, u, v = (rng.normal(size=pol.n_params) for _ in range(3))
    Hu, Hv = hessian_vector_product(mdp, pol, theta, u), hessian_vector_product(mdp, pol, theta, v)
    assert abs(u @ Hv - v @ Hu) <= 1e-13 * _scale(mdp, Hv) * np.abs(u).sum() * np.abs(v).sum()
    H = hessian(mdp, pol, theta)
    assert np.abs(H - H.T).max() <= 1e-13 * _scale(mdp, H)


def test_value_gradient_hessian_is_one_evaluation_of_the_same_quantities() -> None:
    mdp, pol = CASES[1]
    theta = np.linspace(-1, 1, pol.n_params)
    J, g, H = value_gradient_hessian(mdp, pol, theta)
    assert np.allclose(g, policy_gradient(mdp, pol, theta), rtol=1e-13, atol=1e-14)
    assert np.array_equal(H, hessian(mdp, pol, theta))


@pytest.mark.parametrize("pol_kind", ["tabular", "linear"])
def test_finite_horizon_hessian_matches_differences_of_enumerated_gradients(pol_kind: str) -> None:
    mdp = random_mdp(3, 2, gamma=0.9, horizon=4, seed=31)
    pol = TabularSoftmax(3, 2) if pol_kind == "tabular" else LinearSoftmax(np.random.default_rng(1).normal(size=(3, 2, 3)))
    rng = np.random.default_rng(32)
    theta = rng.normal(size=pol.n_params)
    H = hessian(mdp, pol, theta)

    def grad(t):
        return reinforce_by_enumeration(mdp, pol, t).reinforce

    h = 1e-3
    for v in np.eye(pol.n_params):
        d1 = (grad(theta + h * v) - grad(theta - h * v)) / (2 * h)
        d2 = (grad(theta + 2 * h * v) - grad(theta - 2 * h * v)) / (4 * h)
        rich = (4 * d1 - d2) / 3  # error O(h^4 |J^(5)|) ~ 1e-12, rounding ~ eps |g| / h ~ 1e-13
        assert np.abs(H @ v - rich).max() <= 1e-9 * np.abs(H).max()


def test_sparse_equals_dense() -> None:
    dense, sparse = gridworld(4, 5, gamma=0.95), gridworld(4, 5, gamma=0.95, sparse=True)
    rng = np.random.default_rng(8)
    for pol in (TabularSoftmax(20, 4), LinearSoftmax(rng.normal(size=(20, 4, 6)))):
        theta, v = rng.normal(size=pol.n_params), rng.normal(size=pol.n_params)
        Hd = hessian(dense, pol, theta)
        # Krylov residual 1e-13: errors <= sqrt(S) tol ||b|| / (1 - gamma) per solve
        assert np.allclose(hessian(sparse, pol, theta, tol=1e-13), Hd, rtol=0, atol=1e-8 * np.abs(Hd).max())
        assert np.allclose(hessian_vector_product(sparse, pol, theta, v, tol=1e-13), Hd @ v,
                           rtol=0, atol=1e-8 * np.abs(Hd).max() * np.abs(v).sum())
        for H in (5, 1):
            fd, fs = dense.with_horizon(H), sparse.with_horizon(H)
            assert np.allclose(hessian(fs, pol, theta), hessian(fd, pol, theta), rtol=1e-12, atol=1e-13)


def test_tabular_hessian_is_flat_along_per_state_shifts_and_masked_actions() -> None:
    mask = np.ones((4, 3), dtype=bool)
    mask[1, 2] = mask[3, 0] = False
    mdp = random_mdp(4, 3, gamma=0.9, seed=9, action_mask=mask)
    pol = TabularSoftmax(4, 3, action_mask=mask)
    theta = np.random.default_rng(10).normal(size=12)
    H = hessian(mdp, pol, theta)
    shifts = np.kron(np.eye(4), np.ones(3))  # adding c to every logit of one state
    assert np.abs(H @ shifts.T).max() <= 1e-13 * np.abs(H).max()
    assert np.all(H[:, [5, 9]] == 0) and np.all(H[[5, 9], :] == 0)  # infeasible logits do nothing
    v = np.random.default_rng(11).normal(size=12)
    h = 1e-4
    fd = (policy_gradient(mdp, pol, theta + h * v) - policy_gradient(mdp, pol, theta - h * v)) / (2 * h)
    assert np.allclose(hessian_vector_product(mdp, pol, theta, v), fd, rtol=0, atol=1e-7 * np.abs(fd).max())


def test_bad_input_and_memory_refusal() -> None:
    mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    pol = TabularSoftmax(3, 2)
    with pytest.raises(ValueError, match="v"):
        hessian_vector_product(mdp, pol, np.zeros(6), np.zeros(5))
    with pytest.raises(ValueError, match=r"theta\[2\]"):
        hessian(mdp, pol, np.array([0, 0, np.inf, 0, 0, 0.0]))
    with pytest.raises(TypeError, match="policy"):
        hessian(mdp, object(), np.zeros(6))
    big = LinearSoftmax(np.zeros((3, 2, 40_000)))
    with pytest.raises(ValueError, match="would need .*hessian_vector_product"):
        hessian(mdp, big, np.zeros(40_000))


def test_sparse_hessian_without_a_dense_transition_tensor() -> None:
    # S*A*S > 1e7: Y is formed column by column from the sparse P, never as an (S, A, S) array
    grid = gridworld(40, 40, gamma=0.9, sparse=True)
    S, A = grid.n_states, grid.n_actions
    assert S * A * S > 10**7
    rng = np.random.default_rng(12)
    # random rewards everywhere and a uniform start: curvature of order 1, not of the far goal's reward
    sparse = FiniteMDP(grid.P, rng.normal(size=(S, A)), np.full(S, 1.0 / S), gamma=0.9)
    pol = LinearSoftmax(rng.normal(size=(S, A, 3)))
    theta = rng.normal(size=3)
    H = hessian(sparse, pol, theta, tol=1e-12)
    cols = np.stack([hessian_vector_product(sparse, pol, theta, e, tol=1e-12) for e in np.eye(3)], axis=1)
    # two routes (rank-2S form vs pi-level products), Krylov residual 1e-12 per solve
    assert np.allclose(H, cols, rtol=0, atol=1e-8 * np.abs(H).max())
