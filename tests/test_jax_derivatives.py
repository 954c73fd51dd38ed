"""JAX adapter: first derivatives with arbitrary cotangents, and exact second derivatives.

References, all independent of the adapter's code path:

- first order: the numpy closed forms of :mod:`pgexact.exact.policy_free` (``pi_gradient``,
  ``value_vjp``, ``advantage_vjp``, ``occupancy_vjp``) with random cotangents, and
  ``jax.test_util.check_grads`` (finite differences of the adapter's forward values, both modes,
  to second order);
- second order: Richardson-extrapolated central differences of an exact gradient computed
  without the adapter — ``policy_gradient`` (the softmax closed forms) for tabular and
  linear-in-features softmax policies, and for an MLP ``jax.vjp`` of the network applied to
  ``pi_gradient`` (numpy).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import pgexact.jax as pj  # noqa: E402
from pgexact import FiniteMDP, LinearSoftmax, TabularSoftmax, policy_gradient  # noqa: E402
from pgexact.exact import advantage_vjp, occupancy_vjp, pi_gradient, value_vjp  # noqa: E402
from pgexact.mdps import gridworld, random_mdp  # noqa: E402

FUNCTIONS = {
    "expected_return": pj.expected_return,
    "values": pj.values,
    "action_values": pj.action_values,
    "advantages": pj.advantages,
    "occupancy": pj.occupancy,
}
CASES = [(None, False), (None, True), (4, False), (4, True)]  # (horizon, sparse P)


def _some_fast(combinations, fast):
    """Every combination; those not in ``fast`` marked slow (JAX compiles every transformed function)."""
    return [c if c in fast else pytest.param(*c, marks=pytest.mark.slow) for c in combinations]


#: one (horizon, sparse) case per function in the fast run, every case in the slow one
CHECK_GRADS = _some_fast(
    [(name, *case) for name in FUNCTIONS for case in CASES],
    {(name, *CASES[i % 4]) for i, name in enumerate(FUNCTIONS)},
)


def _mdp(horizon=None, sparse=False, seed=0):
    m = random_mdp(4, 3, gamma=0.8, horizon=horizon, seed=seed)
    if not sparse:
        return m
    return FiniteMDP(scipy.sparse.csr_array(m.P.reshape(12, 4)), m.r, m.mu0, gamma=m.gamma, horizon=horizon)


def _richardson(g, x: np.ndarray, v: np.ndarray, h: float) -> np.ndarray:
    """Directional derivative of g at x along v: central differences at h and h/2, extrapolated (error O(h^4))."""
    def central(k):
        return (g(x + k * v) - g(x - k * v)) / (2 * k)

    return (4 * central(h / 2) - central(h)) / 3


# ----------------------------------------------------------------- first order, any cotangent
@pytest.mark.parametrize("name,horizon,sparse", CHECK_GRADS)
def test_check_grads_to_second_order(name, horizon, sparse) -> None:
    """jax.test_util.check_grads: JVPs and VJPs with random tangents / cotangents against finite
    differences, and the same for their derivatives (order 2)."""
    mdp = _mdp(horizon, sparse)
    fn = jax.jit(lambda W: FUNCTIONS[name](mdp, jax.nn.softmax(W, -1), tol=1e-13))
    W = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3)))
    # check_grads' float64 defaults: eps 1e-4 (order-2 central differences, error ~1e-8) and
    # tolerance 1e-5 (relative): a dropped or mis-signed term is O(1) off
    check_grads(fn, (W,), order=2, modes=["fwd", "rev"] if name == "expected_return" else ["rev"])


@pytest.mark.parametrize("horizon,sparse", _some_fast(CASES, {(None, False), (4, True)}))
def test_random_cotangents_equal_the_numpy_closed_forms(horizon, sparse) -> None:
    """VJPs with cotangents other than 1: 3 J, -J, and a weighted sum of V, Q, A, d and J."""
    mdp = _mdp(horizon, sparse, seed=2)
    rng = np.random.default_rng(3)
    pi_np = rng.dirichlet(np.ones(3), size=4)
    tol = 1e-13
    atol = 1e-12 if not sparse else 1e-10  # sparse: Krylov solves at tol=1e-13 on both sides
    G = pi_gradient(mdp, pi_np, tol=tol)
    _, vjp_J = jax.vjp(lambda p: pj.expected_return(mdp, p, tol=tol), jnp.asarray(pi_np))
    for c in (3.0, -1.0, 0.37):
        (g,) = vjp_J(jnp.asarray(c))
        assert np.allclose(np.asarray(g), c * G, rtol=0, atol=atol * np.abs(G).max())
    ev_shapes = pj.values(mdp, jnp.asarray(pi_np)).shape, pj.action_values(mdp, jnp.asarray(pi_np)).shape
    cV, cQ, cA = rng.normal(size=ev_shapes[0]), rng.normal(size=ev_shapes[1]), rng.normal(size=ev_shapes[1])
    cd, cJ = rng.normal(size=4), rng.normal()

    def everything(p):
        return (pj.values(mdp, p, tol=tol), pj.action_values(mdp, p, tol=tol), pj.advantages(mdp, p, tol=tol),
                pj.occupancy(mdp, p, tol=tol), pj.expected_return(mdp, p, tol=tol))

    _, vjp_all = jax.vjp(everything, jnp.asarray(pi_np))
    (g,) = vjp_all(tuple(jnp.asarray(c) for c in (cV, cQ, cA, cd, cJ)))
    ref = (value_vjp(mdp, pi_np, V_bar=cV, Q_bar=cQ, tol=tol) + advantage_vjp(mdp, pi_np, cA, tol=tol)
           + occupancy_vjp(mdp, pi_np, cd, tol=tol) + cJ * G)
    assert np.allclose(np.asarray(g), ref, rtol=0, atol=atol * np.abs(ref).max())


# ----------------------------------------------------------------- second order
@pytest.mark.parametrize(
    "parametrization,horizon,sparse",
    _some_fast([(p, *c) for p in ("tabular", "linear") for c in CASES],
               {("tabular", None, True), ("tabular", 4, False), ("linear", None, False)}),
)
def test_hessian_of_softmax_policies_equals_differences_of_the_exact_gradient(parametrization, horizon, sparse) -> None:
    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, step_reward=-0.1, horizon=horizon, sparse=sparse)
    rng = np.random.default_rng(4)
    if parametrization == "tabular":
        pol = TabularSoftmax(9, 4)
        phi = np.eye(36).reshape(9, 4, 36)
    else:
        phi = rng.normal(size=(9, 4, 5))
        pol = LinearSoftmax(phi)
    theta = rng.normal(size=pol.n_params)
    phi_j = jnp.asarray(phi)

    def J_of(th):
        return pj.expected_return(mdp, jax.nn.softmax(phi_j @ th, -1), tol=1e-14)

    x = jnp.asarray(theta)
    hessians = {"hessian": jax.jit(jax.hessian(J_of))(x)}
    if parametrization == "linear":  # every composition once (each one compiles)
        hessians["jacfwd(jacfwd)"] = jax.jit(jax.jacfwd(jax.jacfwd(J_of)))(x)
        hessians["jacrev(grad)"] = jax.jit(jax.jacrev(jax.grad(J_of)))(x)
    hvp_jvp = jax.jit(lambda v: jax.jvp(jax.grad(J_of), (x,), (v,))[1])
    hvp_grad_of_grad = jax.jit(lambda v: jax.grad(lambda y: jax.grad(J_of)(y) @ v)(x))

    def grad(th):
        return policy_gradient(mdp, pol, th, tol=1e-14)

    for _ in range(3):
        v = rng.normal(size=pol.n_params)
        ref = _richardson(grad, theta, v, h=1e-3)
        # Richardson truncation ~h^4 |D^5 J| ~ 1e-12 relative, rounding ~eps |grad J| / h ~ 1e-13;
        # sparse: Krylov residual 1e-14 / h
        scale = np.abs(ref).max()
        got = {k: np.asarray(H) @ v for k, H in hessians.items()}
        got["jvp of grad"] = np.asarray(hvp_jvp(jnp.asarray(v)))
        got["grad of grad"] = np.asarray(hvp_grad_of_grad(jnp.asarray(v)))
        for k, hv in got.items():
            assert np.allclose(hv, ref, rtol=0, atol=1e-8 * scale), (k, np.abs(hv - ref).max() / scale)
    H = np.asarray(hessians["hessian"])
    assert np.allclose(H, H.T, rtol=0, atol=1e-13 * np.abs(H).max())


def _init_mlp(seed: int, sizes=(2, 6, 4)):
    rng = np.random.default_rng(seed)
    return [
        (jnp.asarray(rng.normal(size=(m, n)) / np.sqrt(m)), jnp.asarray(rng.normal(size=n) * 0.1))
        for m, n in zip(sizes[:-1], sizes[1:])
    ]


def _policy(params, obs):
    h = obs
    for W, b in params[:-1]:
        h = jnp.tanh(h @ W + b)
    W, b = params[-1]
    return jax.nn.softmax(h @ W + b, axis=-1)


@pytest.mark.parametrize("horizon", [None, pytest.param(6, marks=pytest.mark.slow)])
def test_mlp_hessian_vector_products_equal_differences_of_the_exact_gradient(horizon) -> None:
    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, step_reward=-0.1, horizon=horizon)
    s = np.arange(9)
    obs = jnp.asarray(np.stack([s // 3, s % 3], axis=1) / 2.0)
    flat, unravel = ravel_pytree(_init_mlp(5))

    def pi_of(x):
        return _policy(unravel(x), obs)

    def J_of(x):
        return pj.expected_return(mdp, pi_of(x))

    def exact_grad(x: np.ndarray) -> np.ndarray:
        """grad J by the network's own jax.vjp applied to the numpy closed form dJ/dpi."""
        pi, vjp = jax.vjp(pi_of, jnp.asarray(x))
        return np.asarray(vjp(jnp.asarray(pi_gradient(mdp, np.asarray(pi))))[0])

    H = np.asarray(jax.jit(jax.hessian(J_of))(flat))
    hvp = jax.jit(lambda v: jax.jvp(jax.grad(J_of), (flat,), (v,))[1])
    rng = np.random.default_rng(6)
    for _ in range(3):
        v = rng.normal(size=flat.size)
        ref = _richardson(exact_grad, np.asarray(flat), v, h=1e-3)
        scale = np.abs(ref).max()
        # Richardson error O(h^4) ~1e-12 relative for this smooth O(1) network (tanh, softmax)
        for hv in (H @ v, np.asarray(hvp(jnp.asarray(v)))):
            assert np.allclose(hv, ref, rtol=0, atol=1e-8 * scale), np.abs(hv - ref).max() / scale


def test_a_first_order_exact_rule_is_not_enough() -> None:
    """Negative control: the Hessian of a rule that keeps dJ/dpi constant (the chain through the
    softmax only, as a custom_vjp with a saved gradient gives) is rejected by the same comparison."""
    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, step_reward=-0.1)
    pol = TabularSoftmax(9, 4)
    theta = np.random.default_rng(7).normal(size=36)
    G = jnp.asarray(pi_gradient(mdp, pol.probs(theta)))
    H_wrong = np.asarray(jax.hessian(lambda th: (jax.nn.softmax(th.reshape(9, 4), -1) * G).sum())(jnp.asarray(theta)))
    v = np.random.default_rng(8).normal(size=36)
    ref = _richardson(lambda th: policy_gradient(mdp, pol, th), theta, v, h=1e-3)
    assert np.abs(H_wrong @ v - ref).max() > 0.05 * np.abs(ref).max()


# ----------------------------------------------------------------- transforms and bad input
def test_vmap_of_hessians_and_jit_agree_with_single_calls() -> None:
    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, step_reward=-0.1)
    Ws = jnp.asarray(np.random.default_rng(9).normal(size=(2, 9, 4)))

    def J_of(W):
        return pj.expected_return(mdp, jax.nn.softmax(W, -1))

    batched = jax.jit(jax.vmap(jax.hessian(J_of)))(Ws)
    for W, H in zip(Ws, batched):
        assert np.allclose(np.asarray(H), np.asarray(jax.jit(jax.hessian(J_of))(W)), rtol=0, atol=1e-15)


def test_invalid_pi_is_named_under_vmap_and_jit() -> None:
    mdp = gridworld(3, 3, gamma=0.9)
    bad = jnp.full((2, 9, 4), 0.25).at[1, 3, 0].set(0.5)
    for fn in FUNCTIONS.values():
        with pytest.raises(ValueError, match=r"^pi\[3, :\] sums to 1.25"):
            jax.vmap(lambda p, fn=fn: fn(mdp, p))(bad)
    with pytest.raises(ValueError, match=r"^pi\[3, :\] sums to 1.25"):  # batch on another axis
        jax.vmap(lambda p: pj.expected_return(mdp, p), in_axes=1)(jnp.moveaxis(bad, 0, 1))
    # under jit the values exist only at run time: JAX wraps the callback's ValueError
    with pytest.raises(Exception, match=r"ValueError: pi\[3, :\] sums to 1.25"):
        jax.block_until_ready(jax.jit(lambda p: pj.expected_return(mdp, p))(bad[1]))
    finite = gridworld(3, 3, gamma=0.9, horizon=4)
    with pytest.raises(Exception, match=r"ValueError: pi\[3, :\] sums to 1.25"):
        jax.block_until_ready(jax.jit(lambda p: pj.values(finite, p))(bad[1]))
