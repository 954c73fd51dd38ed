"""Conformance extras: the figure's data, the surrogate for torch/JAX parametrizations, batch covariance."""

from __future__ import annotations

import numpy as np
import pytest

from pgexact import evaluate
from pgexact.conformance import PRESETS, Convention, expected_update
from pgexact.conformance.adapters import update_surrogate, update_weights
from pgexact.conformance.audit import default_logits, default_mdp
from pgexact.policies.softmax import LinearSoftmax, softmax_rows

CONVENTIONS = [
    Convention(gamma=0.8, time_limit=10, n_envs=16, n_steps=32, lam=0.95),
    Convention(gamma=0.8, time_limit=10, n_envs=16, n_steps=32, lam=0.7, ent_coef=0.2,
               truncation="terminate", autoreset="next_step"),
    Convention.exact(gamma=0.8, time_limit=10, n_envs=16, n_steps=32).replace(truncation="cross"),
]


def _tabular_update(mdp, pi, conv):
    """The tabular logits update from the weights: w[s] - pi[s] * sum_a w[s, a] (its closed form)."""
    W = expected_update(mdp, pi, conv).weights
    return W - pi * W.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- the figure's data
def test_figure_data_are_the_occupancy_the_gradient_and_each_preset() -> None:
    from pgexact.figures._conformance import PRESET_NAMES, preset_updates

    mdp = default_mdp()
    pi = softmax_rows(default_logits(9, 4))
    d, grad, rows = preset_updates()
    # d_pi by summing the discounted marginals mu0 P_pi^t (an independent route to the LU solve)
    P = np.einsum("sa,sat->st", pi, np.asarray(mdp.P.toarray() if hasattr(mdp.P, "toarray") else mdp.P))
    p, acc = np.asarray(mdp.mu0, dtype=float), np.zeros(9)
    for t in range(400):  # 0.8**400 < 1e-38
        acc += (1 - mdp.gamma) * mdp.gamma**t * p
        p = p @ P
    np.testing.assert_allclose(d, acc, rtol=0, atol=1e-14)
    # grad J in the logits: d(s) pi(a|s) A(s, a) / (1 - gamma)  (policy gradient theorem)
    A = evaluate(mdp, pi).A
    np.testing.assert_allclose(grad, d[:, None] * pi * A / (1 - mdp.gamma), rtol=0, atol=1e-14)
    assert [r[0] for r in rows] == ["exact", *PRESET_NAMES]
    for name, c, u, cos in rows[1:]:
        conv = PRESETS[name].replace(gamma=0.8, time_limit=10, n_envs=16, n_steps=32)
        assert conv.weighting == "uniform"
        assert abs(c.sum() - 1) < 1e-12  # uniform weighting: the state weights are a distribution
        np.testing.assert_allclose(u, _tabular_update(mdp, pi, conv), rtol=0, atol=1e-14)
        assert cos == pytest.approx(np.sum(u * grad) / np.linalg.norm(u) / np.linalg.norm(grad), abs=1e-14)
    assert rows[0][3] > max(r[3] for r in rows[1:])  # gamma^k weighting and bootstrapping is closest


# --------------------------------------------------------------------------- torch
torch = pytest.importorskip("torch")


@pytest.mark.parametrize("conv", CONVENTIONS, ids=lambda c: c.label())
def test_torch_logits_table_gives_the_tabular_update(conv) -> None:
    mdp = default_mdp()
    theta = torch.tensor(default_logits(9, 4), requires_grad=True)
    update_surrogate(mdp, torch.softmax(theta, dim=1), conv).backward()
    pi = softmax_rows(default_logits(9, 4))
    np.testing.assert_allclose(theta.grad.numpy(), _tabular_update(mdp, pi, conv), rtol=0, atol=1e-14)


def test_torch_network_gradient_is_jacobian_transpose_times_weights() -> None:
    """An MLP: the surrogate's gradient equals sum_{s,a} w/pi * dpi/dtheta from the Jacobian of pi."""
    mdp = default_mdp()
    conv = CONVENTIONS[1]
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(9, 8), torch.nn.Tanh(), torch.nn.Linear(8, 4)).double()
    obs = torch.eye(9, dtype=torch.float64)
    update_surrogate(mdp, torch.softmax(net(obs), dim=1), conv).backward()
    got = torch.cat([p.grad.reshape(-1) for p in net.parameters()]).numpy()
    params = tuple(p.detach().clone() for p in net.parameters())

    def pi_of(*ps):
        h = torch.tanh(obs @ ps[0].T + ps[1])
        return torch.softmax(h @ ps[2].T + ps[3], dim=1)

    pi = pi_of(*params).detach().numpy()
    jac = torch.autograd.functional.jacobian(pi_of, params)  # each (S, A, *param shape)
    J = np.concatenate([j.reshape(9 * 4, -1).numpy() for j in jac], axis=1)  # (S*A, n_params)
    W = update_weights(mdp, pi, conv)
    np.testing.assert_allclose(got, J.T @ (W / pi).ravel(), rtol=1e-12, atol=1e-15)


def test_torch_linear_network_matches_linear_softmax() -> None:
    """A bias-free linear layer on one-hot (s, a) features is LinearSoftmax: same update as score_contract."""
    mdp = default_mdp()
    conv = CONVENTIONS[0]
    rng = np.random.default_rng(3)
    phi = rng.standard_normal((9, 4, 5))
    w0 = 0.3 * rng.standard_normal(5)
    expected = expected_update(mdp, (LinearSoftmax(phi), w0), conv).update
    w = torch.tensor(w0, requires_grad=True)
    update_surrogate(mdp, torch.softmax(torch.as_tensor(phi) @ w, dim=1), conv).backward()
    np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-12, atol=1e-15)


def test_torch_zero_probabilities_give_finite_gradients() -> None:
    mdp = default_mdp()
    conv = CONVENTIONS[1]
    mask = torch.ones(9, 4, dtype=torch.float64)
    mask[0, 1] = mask[4, 3] = 0.0
    theta = torch.tensor(default_logits(9, 4), requires_grad=True)
    e = torch.exp(theta) * mask
    pi = e / e.sum(dim=1, keepdim=True)
    update_surrogate(mdp, pi, conv).backward()
    p = pi.detach().numpy()
    assert np.isfinite(theta.grad.numpy()).all()
    # masked softmax: d log pi(a|s) / d theta(s, b) = 1{a=b} - pi(b|s) on the support, same formula
    np.testing.assert_allclose(theta.grad.numpy(), _tabular_update(mdp, p, conv), rtol=0, atol=1e-14)


def test_surrogate_errors() -> None:
    mdp = default_mdp()
    conv = CONVENTIONS[0]
    with pytest.raises(TypeError, match="float64"):
        update_surrogate(mdp, torch.full((9, 4), 0.25, dtype=torch.float32), conv)
    with pytest.raises(TypeError, match="torch.Tensor or a JAX array.*got ndarray.*expected_update"):
        update_surrogate(mdp, np.full((9, 4), 0.25), conv)
    with pytest.raises(ValueError, match="pi"):
        update_surrogate(mdp, torch.full((9, 3), 1 / 3, dtype=torch.float64), conv)
    bad = torch.full((9, 4), 0.25, dtype=torch.float64)
    bad[2, 0] = 0.5
    with pytest.raises(ValueError, match=r"pi\[2"):
        update_surrogate(mdp, bad, conv)


# --------------------------------------------------------------------------- JAX
def test_jax_grad_and_jit_give_the_tabular_update() -> None:
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)  # pgexact computes in float64 (as tests/test_jax.py)
    mdp = default_mdp()
    pi = softmax_rows(default_logits(9, 4))
    for conv in CONVENTIONS[:2]:
        expected = _tabular_update(mdp, pi, conv)
        loss = lambda th: update_surrogate(mdp, jax.nn.softmax(th, axis=1), conv)  # noqa: E731
        theta = jnp.asarray(default_logits(9, 4))
        np.testing.assert_allclose(np.asarray(jax.grad(loss)(theta)), expected, rtol=0, atol=1e-14)
        np.testing.assert_allclose(np.asarray(jax.jit(jax.grad(loss))(theta)), expected, rtol=0, atol=1e-14)
