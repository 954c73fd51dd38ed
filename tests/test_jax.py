"""JAX adapter: exact gradients of neural policies under jit and grad, Fisher products, NPG/TRPO.

References: central differences of exact J (``pgexact.evaluate``), the softmax closed forms
(``policy_gradient``, ``fisher_vector_product``, ``natural_gradient``, ``trpo_step``) for a
network that is a lookup table.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

import pgexact.jax as pj  # noqa: E402
from pgexact import (  # noqa: E402
    ExactSource,
    TabularSoftmax,
    evaluate,
    fisher_vector_product,
    natural_gradient,
    occupancy,
    policy_gradient,
)
from pgexact.exact import minimum_norm_solve  # noqa: E402
from pgexact.mdps import gridworld  # noqa: E402
from pgexact.updates import trpo_step  # noqa: E402


def _obs() -> jnp.ndarray:
    s = np.arange(9)
    return jnp.asarray(np.stack([s // 3, s % 3], axis=1) / 2.0)


def _init_mlp(seed: int, sizes=(2, 16, 4)):
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


@pytest.mark.parametrize("horizon", [None, 7])
def test_mlp_exact_gradient_under_jit_equals_central_differences(horizon) -> None:
    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, horizon=horizon, step_reward=-0.1)
    obs = _obs()
    params = _init_mlp(0)
    value_and_grad = jax.jit(jax.value_and_grad(lambda p: pj.expected_return(mdp, _policy(p, obs))))
    J, grad = value_and_grad(params)
    flat, unravel = ravel_pytree(params)
    g = np.asarray(ravel_pytree(grad)[0])
    assert grad[0][0].dtype == jnp.float64
    assert abs(float(J) - evaluate(mdp, np.asarray(_policy(params, obs))).J) < 1e-14

    pi_of = jax.jit(lambda x: _policy(unravel(x), obs))

    def J_np(x):
        return evaluate(mdp, np.asarray(pi_of(jnp.asarray(x)))).J

    rng = np.random.default_rng(1)
    h = 1e-5
    for _ in range(4):
        e = rng.normal(size=flat.size)
        fd = (J_np(flat + h * e) - J_np(flat - h * e)) / (2 * h)
        # truncation h^2 |J'''| / 6 ~ 1e-10, rounding eps |J| / h ~ 1e-11
        assert abs(g @ e - fd) < 1e-8 * (1 + abs(fd))


@pytest.mark.parametrize("sparse", [False, True])
def test_lookup_table_gradient_equals_tabular_softmax(sparse: bool) -> None:
    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, step_reward=-0.1, sparse=sparse)
    theta = np.random.default_rng(2).normal(size=36)
    eye = jnp.eye(9)
    g = jax.grad(lambda W: pj.expected_return(mdp, jax.nn.softmax(eye @ W, -1), tol=1e-13))(jnp.asarray(theta.reshape(9, 4)))
    ref = policy_gradient(mdp, TabularSoftmax(9, 4), theta, tol=1e-13)
    assert np.allclose(np.asarray(g).reshape(-1), ref, rtol=0, atol=(1e-10 if sparse else 1e-12) * np.abs(ref).max())


@pytest.mark.parametrize("horizon", [None, 5])
def test_values_advantages_occupancy_gradients_equal_central_differences(horizon) -> None:
    mdp = gridworld(3, 3, gamma=0.8, slip=0.3, step_reward=-0.05, horizon=horizon)
    rng = np.random.default_rng(3)
    W0 = rng.normal(size=(9, 4))
    ev0 = evaluate(mdp, np.full((9, 4), 0.25))
    cV, cQ, cA, cd = (rng.normal(size=s) for s in [ev0.V.shape, ev0.Q.shape, ev0.A.shape, (9,)])

    def f(W):
        pi = jax.nn.softmax(W, -1)
        return ((cV * pj.values(mdp, pi)).sum() + (cQ * pj.action_values(mdp, pi)).sum()
                + (cA * pj.advantages(mdp, pi)).sum() + (cd * pj.occupancy(mdp, pi)).sum())

    def f_np(W):
        pi = np.asarray(jax.nn.softmax(jnp.asarray(W), -1))
        ev = evaluate(mdp, pi)
        return float((cV * ev.V).sum() + (cQ * ev.Q).sum() + (cA * ev.A).sum() + (cd * occupancy(mdp, pi)).sum())

    g = np.asarray(jax.jit(jax.grad(f))(jnp.asarray(W0)))
    E = rng.normal(size=(9, 4))
    h = 1e-5
    fd = (f_np(W0 + h * E) - f_np(W0 - h * E)) / (2 * h)
    assert abs((g * E).sum() - fd) < 1e-8 * (1 + abs(fd))


def test_vmap_over_policies() -> None:
    mdp = gridworld(3, 3, gamma=0.9)
    W = jnp.asarray(np.random.default_rng(4).normal(size=(3, 9, 4)))
    Js = jax.vmap(lambda w: pj.expected_return(mdp, jax.nn.softmax(w, -1)))(W)
    ref = [evaluate(mdp, np.asarray(jax.nn.softmax(w, -1))).J for w in W]
    assert np.allclose(np.asarray(Js), ref, rtol=1e-14, atol=0)


def test_bad_input_is_refused_clearly() -> None:
    mdp = gridworld(3, 3, gamma=0.9)
    with pytest.raises(TypeError, match="pi has dtype float32; pgexact computes in float64"):
        pj.expected_return(mdp, jnp.full((9, 4), 0.25, dtype=jnp.float32))
    with pytest.raises(ValueError, match=r"pi must have shape \(S, A\)=\(9, 4\), got \(4, 9\)"):
        pj.values(mdp, jnp.full((4, 9), 0.25))
    with pytest.raises(Exception, match=r"pi\[0, :\] sums to 2"):  # raised inside the callback
        pj.expected_return(mdp, jnp.full((9, 4), 0.5))
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(RuntimeError, match="jax_enable_x64"):
            pj.expected_return(mdp, jnp.full((9, 4), 0.25))
    finally:
        jax.config.update("jax_enable_x64", True)


def test_fisher_vector_product_natural_gradient_and_trpo_on_a_lookup_table() -> None:
    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, step_reward=-0.1)
    theta = np.random.default_rng(5).normal(size=36)
    pol = TabularSoftmax(9, 4)
    eye = jnp.eye(9)

    def pi_fn(W):
        return jax.nn.softmax(eye @ W, -1)

    W0 = jnp.asarray(theta.reshape(9, 4))
    fvp_jit = jax.jit(lambda x: pj.fisher_vector_product(mdp, pi_fn, W0, x.reshape(9, 4)).reshape(-1))
    v = np.random.default_rng(6).normal(size=36)
    ref = fisher_vector_product(mdp, pol, theta, v)
    assert np.allclose(np.asarray(fvp_jit(jnp.asarray(v))), ref, rtol=0, atol=1e-13 * np.abs(ref).max())

    def fvp(x):
        return np.asarray(fvp_jit(jnp.asarray(x)))

    g = policy_gradient(mdp, pol, theta)
    w = minimum_norm_solve(fvp, g, rtol=1e-12)
    npg = natural_gradient(mdp, pol, theta)  # tabular closed form (A - mean A)/(1 - gamma)
    assert np.allclose(w, npg, rtol=0, atol=1e-8 * np.abs(npg).max())  # CG residual 1e-12, cond(F) ~ 1e3
    delta = 0.01
    beta0 = np.sqrt(2 * delta / (w @ fvp(w)))
    step = trpo_step(ExactSource(mdp, pol), theta, delta)
    assert np.allclose(beta0 * w, step.full_step_size * step.direction, rtol=0, atol=1e-7 * np.abs(beta0 * w).max())


def test_fisher_vector_product_of_an_mlp_matches_score_outer_products() -> None:
    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, horizon=6)
    obs = _obs()
    params = _init_mlp(7, sizes=(2, 6, 4))
    flat, unravel = ravel_pytree(params)
    n = flat.size
    fvp = jax.jit(lambda x: ravel_pytree(pj.fisher_vector_product(mdp, lambda p: _policy(p, obs), params, unravel(x)))[0])
    F = np.asarray(jax.vmap(fvp)(jnp.eye(n)))  # the callback runs once per basis vector
    # reference: dense Fisher from the score jax.jacrev(log pi) (no JVP/VJP of pi involved)
    score = np.asarray(jax.jit(jax.jacrev(lambda x: jnp.log(_policy(unravel(x), obs))))(flat))  # (S, A, n)
    pi = np.asarray(_policy(params, obs))
    ref = np.einsum("s,sa,sak,sal->kl", occupancy(mdp, pi), pi, score, score)
    assert np.allclose(F, ref, rtol=0, atol=1e-13 * np.abs(ref).max())


def test_trust_region_scaling_on_an_mlp_matches_the_exact_kl() -> None:
    """TRPO's step size sqrt(2 delta / x^T F x) with the exact FVP gives E_d KL(pi_old || pi_new) = delta + O(delta^1.5)."""
    from pgexact import kl_expected

    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, step_reward=-0.1)
    obs = _obs()
    params = _init_mlp(8, sizes=(2, 8, 4))
    flat, unravel = ravel_pytree(params)
    pi_of = jax.jit(lambda x: _policy(unravel(x), obs))
    g = np.asarray(jax.jit(jax.grad(lambda x: pj.expected_return(mdp, pi_of(x))))(flat))
    fvp = jax.jit(lambda x: ravel_pytree(pj.fisher_vector_product(mdp, lambda p: _policy(p, obs), params, unravel(x)))[0])
    gFg = float(g @ np.asarray(fvp(jnp.asarray(g))))
    pi_old = np.asarray(pi_of(flat))
    d = occupancy(mdp, pi_old)
    errs = []
    for delta in (1e-3, 1e-5):
        beta = np.sqrt(2 * delta / gFg)
        kl = kl_expected(pi_old, np.asarray(pi_of(flat + beta * g)), d)
        errs.append(abs(kl / delta - 1))
    # the quadratic model's relative error is O(beta) = O(sqrt(delta)): 10x smaller for 100x smaller delta
    assert errs[1] < 0.03 and errs[1] < errs[0] / 5, errs


def test_fisher_vector_product_refuses_malformed_callbacks_and_points() -> None:
    from pgexact.mdps import random_mdp

    mdp = random_mdp(3, 2, gamma=0.9, seed=0)

    def pi_fn(th):
        return jax.nn.softmax(th.reshape(3, 2), axis=1)

    theta = jnp.zeros(6)
    with pytest.raises(TypeError, match=r"^pi_fn must be a callable, got NoneType"):
        pj.fisher_vector_product(mdp, None, theta, theta)
    with pytest.raises(TypeError, match=r"^params must be a pytree of floating-point arrays"):
        pj.fisher_vector_product(mdp, pi_fn, None, theta)
    with pytest.raises(TypeError, match=r"^v must have the pytree structure of params"):
        pj.fisher_vector_product(mdp, pi_fn, theta, (theta, theta))
    with pytest.raises(ValueError, match=r"^v's leaf 0 must have the shape and dtype of params"):
        pj.fisher_vector_product(mdp, pi_fn, theta, jnp.zeros(7))
    with pytest.raises(ValueError, match=r"^pi_fn\(params\)\[0, :\] sums to 2"):
        pj.fisher_vector_product(mdp, lambda th: jnp.ones((3, 2)) + 0 * th[:1], theta, theta)


def test_concrete_pi_that_is_not_a_distribution_is_refused_on_entry() -> None:
    from pgexact.mdps import random_mdp

    mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    for fn in (pj.expected_return, pj.values, pj.action_values, pj.advantages, pj.occupancy):
        with pytest.raises(ValueError, match=r"^pi\[0, :\] sums to 0, expected 1"):
            fn(mdp, jnp.zeros((3, 2)))


@pytest.mark.parametrize("horizon", [None, 3])
def test_invalid_pi_under_eager_transforms_is_a_value_error_naming_pi(horizon) -> None:
    """grad, hessian, jacfwd, jvp and vmap (nested, and over any axis) carry the values of pi at trace
    time: the check runs there, a pgexact ValueError, never JAX's wrapping of a callback error."""
    from pgexact.mdps import random_mdp

    mdp = random_mdp(3, 2, gamma=0.9 if horizon is None else 1.0, horizon=horizon, seed=0)
    good = jnp.full((3, 2), 0.5)
    bad = good.at[1, 0].set(0.4)
    pair = jnp.stack([good, bad])
    for fn in (pj.expected_return, pj.values, pj.action_values, pj.advantages, pj.occupancy):
        f = lambda p, fn=fn: fn(mdp, p).sum()  # noqa: E731
        calls = {
            "grad": lambda: jax.grad(f)(bad),
            "hessian": lambda: jax.hessian(f)(bad),
            "jacfwd": lambda: jax.jacfwd(f)(bad),
            "jvp": lambda: jax.jvp(f, (bad,), (good,)),
            "vmap": lambda: jax.vmap(f)(pair),
            "vmap over axis 1": lambda: jax.vmap(f, in_axes=1)(jnp.moveaxis(pair, 0, 1)),
            "vmap of vmap": lambda: jax.vmap(jax.vmap(f))(jnp.stack([jnp.stack([good, good]), pair])),
            "vmap of grad": lambda: jax.vmap(jax.grad(f))(pair),
            "grad of vmap": lambda: jax.grad(lambda q: jax.vmap(f)(q).sum())(pair),
        }
        for how, call in calls.items():
            with pytest.raises(ValueError, match=r"^pi\[1, :\] sums to 0.9, expected 1") as info:
                call()
            assert type(info.value) is ValueError, (fn.__name__, how)
    with pytest.raises(ValueError, match=r"^pi\[1, :\] sums to 0.9, expected 1"):
        jax.grad(lambda p: pj.average_reward(mdp, p))(bad)


def test_valid_pi_under_nested_vmap_matches_the_plain_value() -> None:
    from pgexact.mdps import random_mdp

    mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    W = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 3, 2)))
    P = jax.nn.softmax(W, -1)
    got = jax.vmap(jax.vmap(lambda p: pj.expected_return(mdp, p)), in_axes=1)(P)
    ref = [[evaluate(mdp, np.asarray(P[i, j])).J for i in range(2)] for j in range(3)]
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-14, atol=0)


def test_invalid_pi_under_jit_is_what_the_module_docstring_says() -> None:
    """Under jax.jit the check runs in the solve's host callback and JAX wraps its ValueError: a
    JaxRuntimeError, or a ValueError in some call orders, with pgexact's message inside (pgexact.jax's
    docstring). Whatever JAX's wrapping text (it is not pinned, so a JAX release cannot break this
    test), the call raises and the message names pi's offending row: no value comes back."""
    from pgexact.mdps import random_mdp

    for horizon in (None, 3):
        mdp = random_mdp(3, 2, gamma=0.9 if horizon is None else 1.0, horizon=horizon, seed=0)
        good = jnp.full((3, 2), 0.5)
        bad = good.at[1, 0].set(0.4)
        for first in (bad, good):  # the type depends on the call order (jax-ml/jax#34083), not the message
            f = jax.jit(lambda p, mdp=mdp: pj.values(mdp, p))
            try:
                f(first)
            except (jax.errors.JaxRuntimeError, ValueError):
                pass
            with pytest.raises((jax.errors.JaxRuntimeError, ValueError),
                               match=r"(?s)pi\[1, :\] sums to 0.9, expected 1"):
                f(bad)


def test_tol_is_checked_before_the_callback() -> None:
    from pgexact.mdps import random_mdp

    mdp, pi = random_mdp(3, 2, gamma=0.9, seed=0), jnp.full((3, 2), 0.5)
    for fn in (pj.expected_return, pj.values, pj.action_values, pj.advantages, pj.occupancy):
        with pytest.raises(TypeError, match=r"^tol must be a real number in \(0, 1\)"):
            fn(mdp, pi, tol="x")
    with pytest.raises(ValueError, match=r"^tol is 2.0, expected a relative residual"):
        pj.fisher_vector_product(mdp, lambda th: jax.nn.softmax(th.reshape(3, 2)), jnp.zeros(6), jnp.zeros(6), tol=2.0)
