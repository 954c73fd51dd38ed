"""PyTorch adapter: first derivatives with arbitrary cotangents, and exact second derivatives.

References, all independent of the adapter's code path:

- first order: the numpy closed forms of :mod:`pgexact.exact.policy_free` (``pi_gradient``,
  ``value_vjp``, ``advantage_vjp``, ``occupancy_vjp``) and torch's ``gradcheck`` (finite
  differences of the adapter's forward values);
- second order: Richardson-extrapolated central differences of an exact gradient computed
  without the adapter — ``policy_gradient`` (the softmax closed forms) for tabular and
  linear-in-features softmax policies, and for an MLP the network's own first-order autograd
  applied to ``pi_gradient`` (numpy); plus ``gradgradcheck`` (finite differences of the
  adapter's own first derivatives).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

import pgexact.torch as pt  # noqa: E402
from pgexact import FiniteMDP, LinearSoftmax, TabularSoftmax, policy_gradient  # noqa: E402
from pgexact.exact import advantage_vjp, occupancy_vjp, pi_gradient, value_vjp  # noqa: E402
from pgexact.mdps import gridworld, random_mdp  # noqa: E402

FUNCTIONS = {
    "expected_return": pt.expected_return,
    "values": pt.values,
    "action_values": pt.action_values,
    "advantages": pt.advantages,
    "occupancy": pt.occupancy,
}
CASES = [(None, False), (None, True), (4, False), (4, True)]  # (horizon, sparse P)


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
@pytest.mark.parametrize("horizon,sparse", CASES)
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_gradcheck_and_gradgradcheck(name, horizon, sparse) -> None:
    """torch's finite-difference checks of the full Jacobian (every cotangent) and of the second derivatives."""
    mdp = _mdp(horizon, sparse)
    fn = FUNCTIONS[name]
    W = torch.tensor(np.random.default_rng(1).normal(size=(4, 3)), requires_grad=True)

    def f(W):
        return fn(mdp, torch.softmax(W, -1), tol=1e-13)

    # gradcheck's default eps 1e-6 and atol 1e-5, rtol 1e-3: central differences of smooth
    # O(1) functions are accurate to ~1e-10, so a wrong rule (a dropped term) is far outside
    assert torch.autograd.gradcheck(f, (W,))
    assert torch.autograd.gradgradcheck(f, (W,))


@pytest.mark.parametrize("horizon,sparse", CASES)
def test_random_cotangents_equal_the_numpy_closed_forms(horizon, sparse) -> None:
    """Backward with cotangents other than 1: 3 J, -J, and a weighted sum of V, Q, A, d and J."""
    mdp = _mdp(horizon, sparse, seed=2)
    rng = np.random.default_rng(3)
    pi_np = rng.dirichlet(np.ones(3), size=4)
    tol = 1e-13
    atol = 1e-12 if not sparse else 1e-10  # sparse: Krylov solves at tol=1e-13 on both sides
    G = pi_gradient(mdp, pi_np, tol=tol)
    for c in (3.0, -1.0, 0.37):
        pi = torch.tensor(pi_np, requires_grad=True)
        (c * pt.expected_return(mdp, pi, tol=tol)).backward()
        assert np.allclose(pi.grad.numpy(), c * G, rtol=0, atol=atol * np.abs(G).max())
    pi = torch.tensor(pi_np, requires_grad=True)
    V, Q = pt.values(mdp, pi, tol=tol), pt.action_values(mdp, pi, tol=tol)
    cV, cQ, cA = rng.normal(size=V.shape), rng.normal(size=Q.shape), rng.normal(size=Q.shape)
    cd, cJ = rng.normal(size=4), rng.normal()
    total = ((torch.tensor(cV) * V).sum() + (torch.tensor(cQ) * Q).sum()
             + (torch.tensor(cA) * pt.advantages(mdp, pi, tol=tol)).sum()
             + (torch.tensor(cd) * pt.occupancy(mdp, pi, tol=tol)).sum() + cJ * pt.expected_return(mdp, pi, tol=tol))
    total.backward()
    ref = (value_vjp(mdp, pi_np, V_bar=cV, Q_bar=cQ, tol=tol) + advantage_vjp(mdp, pi_np, cA, tol=tol)
           + occupancy_vjp(mdp, pi_np, cd, tol=tol) + cJ * G)
    assert np.allclose(pi.grad.numpy(), ref, rtol=0, atol=atol * np.abs(ref).max())


# ----------------------------------------------------------------- second order
def _softmax_np(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("horizon,sparse", CASES)
@pytest.mark.parametrize("parametrization", ["tabular", "linear"])
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
    phi_t = torch.tensor(phi)

    def J_of(th):
        return pt.expected_return(mdp, torch.softmax(phi_t @ th, -1), tol=1e-14)

    H = torch.autograd.functional.hessian(J_of, torch.tensor(theta)).numpy()
    Hf = torch.func.hessian(J_of)(torch.tensor(theta)).numpy()
    assert np.array_equal(pol.probs(theta).shape, (9, 4))

    def grad(th):
        return policy_gradient(mdp, pol, th, tol=1e-14)

    for _ in range(3):
        v = rng.normal(size=pol.n_params)
        ref = _richardson(grad, theta, v, h=1e-3)
        # Richardson truncation ~h^4 |D^5 J| / 480 ~ 1e-10 (J and its derivatives O(1)),
        # rounding ~eps |grad J| / h ~ 1e-13; sparse: Krylov residual 1e-14 / h
        scale = np.abs(ref).max()
        assert np.allclose(H @ v, ref, rtol=0, atol=1e-8 * scale), np.abs(H @ v - ref).max() / scale
        assert np.allclose(Hf @ v, ref, rtol=0, atol=1e-8 * scale)
    assert np.allclose(H, H.T, rtol=0, atol=1e-13 * np.abs(H).max())


def _mlp(seed: int, hidden: int = 6):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(2, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 4)).double()


def _obs() -> torch.Tensor:
    s = np.arange(9)
    return torch.tensor(np.stack([s // 3, s % 3], axis=1) / 2.0)


@pytest.mark.parametrize("horizon", [None, 6])
def test_mlp_hessian_vector_products_equal_differences_of_the_exact_gradient(horizon) -> None:
    """create_graph double backward, functional.hvp and torch.func.hessian of an MLP against differences."""
    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, step_reward=-0.1, horizon=horizon)
    net, obs = _mlp(5), _obs()
    names = [k for k, _ in net.named_parameters()]
    shapes = [p.shape for p in net.parameters()]
    theta = torch.nn.utils.parameters_to_vector(net.parameters()).detach().clone()

    def unflat(x):
        out, i = {}, 0
        for k, s in zip(names, shapes):
            n = int(np.prod(s))
            out[k] = x[i:i + n].reshape(s)
            i += n
        return out

    def pi_of(x):
        return torch.softmax(torch.func.functional_call(net, unflat(x), (obs,)), -1)

    def J_of(x):
        return pt.expected_return(mdp, pi_of(x))

    def exact_grad(x: np.ndarray) -> np.ndarray:
        """grad J by the network's first-order autograd applied to the numpy closed form dJ/dpi."""
        xt = torch.tensor(x, requires_grad=True)
        pi = pi_of(xt)
        G = pi_gradient(mdp, pi.detach().numpy())
        (g,) = torch.autograd.grad(pi, xt, grad_outputs=torch.tensor(G))
        return g.numpy()

    rng = np.random.default_rng(6)
    Hf = torch.func.hessian(J_of)(theta).numpy()
    for _ in range(3):
        v = rng.normal(size=theta.numel())
        ref = _richardson(exact_grad, theta.numpy(), v, h=1e-3)
        x = theta.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(J_of(x), x, create_graph=True)
        (hv_double,) = torch.autograd.grad(g @ torch.tensor(v), x)
        _, hv_functional = torch.autograd.functional.hvp(J_of, theta, torch.tensor(v))
        scale = np.abs(ref).max()
        # Richardson error O(h^4) ~1e-10 relative for this smooth O(1) network (tanh, softmax)
        for hv in (hv_double.numpy(), hv_functional.numpy(), Hf @ v):
            assert np.allclose(hv, ref, rtol=0, atol=1e-8 * scale), np.abs(hv - ref).max() / scale


def test_a_first_order_exact_backward_is_not_enough() -> None:
    """Negative control: the Hessian of a backward that keeps dJ/dpi constant (the chain through the
    network only) is rejected by the same comparison as the tests above."""
    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, step_reward=-0.1)
    pol = TabularSoftmax(9, 4)
    theta = np.random.default_rng(7).normal(size=36)
    pi = torch.softmax(torch.tensor(theta.reshape(9, 4)), -1)
    G = torch.tensor(pi_gradient(mdp, pi.numpy()))

    def J_constant_G(th):
        return (torch.softmax(th.reshape(9, 4), -1) * G).sum()  # same gradient at theta, G held fixed

    H_wrong = torch.autograd.functional.hessian(J_constant_G, torch.tensor(theta)).numpy()
    v = np.random.default_rng(8).normal(size=36)
    ref = _richardson(lambda th: policy_gradient(mdp, pol, th), theta, v, h=1e-2)
    assert np.abs(H_wrong @ v - ref).max() > 0.05 * np.abs(ref).max()


# ----------------------------------------------------------------- transforms and bad input
def test_torch_func_transforms_agree_with_plain_autograd() -> None:
    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, step_reward=-0.1)
    Ws = torch.tensor(np.random.default_rng(9).normal(size=(3, 9, 4)))

    def J_of(W):
        return pt.expected_return(mdp, torch.softmax(W, -1))

    Js = torch.func.vmap(J_of)(Ws)
    grads = torch.func.vmap(torch.func.grad(J_of))(Ws)
    for W, J, g in zip(Ws, Js, grads):
        x = W.clone().requires_grad_(True)
        ref = J_of(x)
        ref.backward()
        assert torch.equal(J, ref.detach())
        assert torch.allclose(g, x.grad, rtol=0, atol=1e-15)
    H_rev = torch.func.jacrev(torch.func.jacrev(J_of))(Ws[0])
    H_fwd = torch.func.jacfwd(torch.func.jacrev(J_of))(Ws[0])
    H_rf = torch.func.jacrev(torch.func.jacfwd(J_of))(Ws[0])
    H = torch.autograd.functional.hessian(J_of, Ws[0])
    for other in (H_rev, H_fwd, H_rf, torch.func.hessian(J_of)(Ws[0])):
        assert torch.allclose(other, H, rtol=0, atol=1e-14)
    # forward over forward would lose the outer tangent inside torch.func: refused, naming the alternatives
    with pytest.raises(NotImplementedError, match=r"jacfwd of jacfwd.*use torch.func.hessian"):
        torch.func.jacfwd(torch.func.jacfwd(J_of))(Ws[0])
    # forward mode of the vector-valued functions against reverse mode
    u = torch.tensor(np.random.default_rng(10).normal(size=(9, 4)))
    for fn in (pt.values, pt.action_values, pt.advantages, pt.occupancy):
        def f(W, fn=fn):
            return fn(mdp, torch.softmax(W, -1))
        _, tangent = torch.func.jvp(f, (Ws[0],), (u,))
        jac = torch.autograd.functional.jacobian(f, Ws[0])
        assert torch.allclose(tangent, (jac * u).sum(dim=(-2, -1)), rtol=0, atol=1e-14)


def test_bad_input_names_pi_also_under_transforms() -> None:
    mdp = gridworld(3, 3, gamma=0.9)
    bad = torch.full((2, 9, 4), 0.25, dtype=torch.float64)
    bad[1, 3, 0] = 0.5
    with pytest.raises(ValueError, match=r"^pi\[3, :\] sums to 1.25"):
        torch.func.vmap(lambda p: pt.expected_return(mdp, p))(bad)
    with pytest.raises(ValueError, match=r"^pi\[3, :\] sums to 1.25"):
        torch.func.grad(lambda p: pt.expected_return(mdp, p))(bad[1])
    with pytest.raises(ValueError, match=r"^pi is on the meta device"):
        pt.expected_return(mdp, torch.full((9, 4), 0.25, dtype=torch.float64, device="meta"))
    for fn in FUNCTIONS.values():
        with pytest.raises(ValueError, match=r"^pi is on the meta device"):
            fn(mdp, torch.empty((9, 4), dtype=torch.float64, device="meta"))


def test_torch_compile_gives_the_same_value_and_gradient() -> None:
    """torch.compile runs the adapter (the numpy solves break the graph, which dynamo handles)."""
    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, step_reward=-0.1)
    W0 = torch.tensor(np.random.default_rng(12).normal(size=(9, 4)))
    compiled = torch.compile(lambda W: pt.expected_return(mdp, torch.softmax(W, -1)))
    W, ref = W0.clone().requires_grad_(True), W0.clone().requires_grad_(True)
    J = compiled(W)
    J.backward()
    J_ref = pt.expected_return(mdp, torch.softmax(ref, -1))
    J_ref.backward()
    # the compiled softmax may round differently (fused kernels): a few ulps
    assert torch.allclose(J.detach(), J_ref.detach(), rtol=1e-14, atol=0)
    assert torch.allclose(W.grad, ref.grad, rtol=0, atol=1e-14 * ref.grad.abs().max().item())


def test_average_reward_second_derivatives_are_refused_not_wrong() -> None:
    """The gain's backward is exact to first order only: differentiating it raises, never returns a number."""
    mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    W = torch.tensor(np.random.default_rng(13).normal(size=(3, 2)))

    def rho(W):
        return pt.average_reward(mdp, torch.softmax(W, 1))

    x = W.clone().requires_grad_(True)
    rho(x).backward()  # first order still works, also with create_graph off
    assert torch.allclose(torch.func.grad(rho)(W), x.grad, rtol=0, atol=1e-15)
    for second in (lambda: torch.autograd.functional.hessian(rho, W),
                   lambda: torch.func.jacrev(torch.func.jacrev(rho))(W),
                   lambda: torch.func.grad(lambda w: torch.func.grad(rho)(w).sum())(W)):
        with pytest.raises(NotImplementedError, match=r"average_reward: second derivatives .* are not supported"):
            second()
