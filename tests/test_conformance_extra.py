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


# --------------------------------------------------------------------------- exact batch covariance
from scipy.stats import norm  # noqa: E402

from pgexact.conformance.covariance import batch_covariance  # noqa: E402
from pgexact.conformance.reference import grouped_updates, simulate  # noqa: E402
from pgexact.mdps import gridworld  # noqa: E402

TINY = gridworld(2, 2, gamma=0.9, slip=0.2)
TINY_LOGITS = 0.7 * np.sin(1.7 * np.arange(16.0)).reshape(4, 4)
TINY_V = np.cos(np.arange(4.0))  # an inexact critic: every delta term matters
TINY_CONVENTIONS = [
    dict(),
    dict(truncation="terminate", autoreset="next_step", ent_coef=0.2),
    dict(truncation="cross", autoreset="next_step"),
    dict(weighting="discounted", truncation="reset_obs", bootstrap_end=False),
]


def _tiny(**kw):
    return Convention(gamma=0.9, lam=0.8, time_limit=3, n_envs=8, n_steps=4, **kw)


@pytest.mark.parametrize("kw", TINY_CONVENTIONS, ids=lambda kw: _tiny(**kw).label())
@pytest.mark.parametrize("batch", [0, 1])
def test_enumerated_mean_is_the_exact_expected_update(kw, batch) -> None:
    """The enumeration (reference buffer on every path) and the chain computation share only P, r, mu0, V, pi."""
    c = _tiny(**kw).replace(n_steps=3)
    bc = batch_covariance(TINY, TINY_LOGITS, c, values=TINY_V, batch=batch)
    e = expected_update(TINY, softmax_rows(TINY_LOGITS), c, values=TINY_V, batch=batch, method="chain")
    assert abs(bc.probabilities.sum() - 1) < 1e-12 and (bc.probabilities > 0).all()
    np.testing.assert_allclose(bc.mean, e.update, rtol=0, atol=1e-14)
    C = bc.covariance
    assert np.allclose(C, C.T, rtol=0, atol=1e-15) and np.linalg.eigvalsh(C).min() > -1e-14


def _cov_z(env_updates_sim, bc, n_envs=1):
    """Entrywise z of the simulated second moments around the exact mean, with the exact variance of each.

    Y = (u_p - m_p)(u_q - m_q) over R iid environments has E[Y] = C_pq and Var[Y] = E[(u_p - m_p)^2
    (u_q - m_q)^2] - C_pq^2, both exact from the enumeration; by the CLT z = (mean Y - C) / sqrt(Var/R)
    is N(0, 1) asymptotically. Returns the max |z| over the pairs with Var > 0 and their number.
    """
    p = bc.probabilities
    D = (bc.env_updates - bc.mean).reshape(p.size, -1)
    C1 = (D * p[:, None]).T @ D
    M4 = ((D**2) * p[:, None]).T @ D**2
    var = M4 - C1**2
    X = env_updates_sim.reshape(env_updates_sim.shape[0], -1) - bc.mean.reshape(-1)
    R = X.shape[0]
    Y = X.T @ X / R
    iu = np.triu_indices(C1.shape[0])
    live = var[iu] > 1e-14 * np.max(var)
    assert np.allclose(Y[iu][~live], C1[iu][~live], atol=1e-12)  # coordinates that never vary
    z = (Y[iu][live] - C1[iu][live]) / np.sqrt(var[iu][live] / R)
    return float(np.max(np.abs(z))), int(live.sum())


def _simulated_env_updates(c, batch, R, seed, values=TINY_V):
    stream = simulate(TINY, softmax_rows(TINY_LOGITS), time_limit=c.time_limit, n_envs=R, n_steps=c.n_steps,
                      n_batches=batch + 1, autoreset=c.autoreset, seed=seed)
    for b in range(batch + 1):
        tb = next(stream)
    return grouped_updates(tb, TINY_LOGITS, values, c, R)


FALSE_ALARM = 1e-3


@pytest.mark.parametrize("kw", TINY_CONVENTIONS[:2], ids=lambda kw: _tiny(**kw).label())
def test_exact_covariance_matches_the_simulated_environments(kw) -> None:
    """Entrywise z-test, Bonferroni over the pairs: false alarm <= 1e-3 (asymptotically; measured below).

    Measured calibration (40 seeds of 40,000 environments, batch 1, both conventions below): 2/40
    rejections at a nominal 0.05, 0/40 at 1e-3. The negative control, the covariance of the same data
    under another truncation convention, was rejected on 40/40 seeds at 1e-3.
    """
    c = _tiny(**kw)
    bc = batch_covariance(TINY, TINY_LOGITS, c, values=TINY_V, batch=1)
    U = _simulated_env_updates(c, 1, 40_000, seed=11)
    zmax, K = _cov_z(U, bc)
    crit = norm.isf(FALSE_ALARM / (2 * K))
    assert zmax < crit, f"max |z| = {zmax:.2f} over {K} pairs, threshold {crit:.2f}"
    other = batch_covariance(TINY, TINY_LOGITS, c.replace(truncation="bootstrap" if kw else "terminate"),
                             values=TINY_V, batch=1)
    zbad, K2 = _cov_z(U, other)
    assert zbad > norm.isf(FALSE_ALARM / (2 * K2)), "a wrong convention's covariance is not rejected"


def test_batch_covariance_scales_with_the_number_of_environments() -> None:
    """Batch-level variances (means of n_envs environments) against covariance's diagonal.

    For the mean of m iid coordinates with central moments mu2, mu4: E[(xbar - mu)^2] = mu2/m and
    E[(xbar - mu)^4] = (mu4 + 3(m - 1) mu2^2)/m^3, so the same z-test applies to batches.
    """
    c = _tiny()
    m = c.n_envs
    bc = batch_covariance(TINY, TINY_LOGITS, c, values=TINY_V, batch=0)
    p = bc.probabilities
    D = (bc.env_updates - bc.mean).reshape(p.size, -1)
    mu2, mu4 = p @ D**2, p @ D**4
    var_batch = np.diag(bc.covariance)
    np.testing.assert_allclose(var_batch, mu2 / m, rtol=1e-12, atol=1e-300)
    n_b = 6_000
    U = _simulated_env_updates(c, 0, n_b * m, seed=12).reshape(n_b, m, -1).mean(axis=1)  # batch updates
    X2 = (U - bc.mean.reshape(-1)) ** 2
    v4 = (mu4 + 3 * (m - 1) * mu2**2) / m**3 - (mu2 / m) ** 2
    live = v4 > 1e-14 * v4.max()
    z = (X2.mean(axis=0)[live] - var_batch[live]) / np.sqrt(v4[live] / n_b)
    crit = norm.isf(FALSE_ALARM / (2 * live.sum()))
    assert np.abs(z).max() < crit
    z_wrong = (X2.mean(axis=0)[live] - m * var_batch[live]) / np.sqrt(v4[live] / n_b)  # forgot the 1/n_envs
    assert np.abs(z_wrong).max() > crit


def test_batch_covariance_errors() -> None:
    c = _tiny()
    with pytest.raises(ValueError, match="normalize_advantages"):
        batch_covariance(TINY, TINY_LOGITS, c.replace(normalize_advantages="batch"))
    with pytest.raises(ValueError, match=r"logits must have shape \(S, A\) = \(4, 4\)"):
        batch_covariance(TINY, np.zeros((4, 3)), c)
    with pytest.raises(ValueError, match="max_paths=100.*lower n_steps"):
        batch_covariance(TINY, TINY_LOGITS, c, max_paths=100)
    with pytest.raises(ValueError, match="batch must be an int >= 0"):
        batch_covariance(TINY, TINY_LOGITS, c, batch=-1)
    with pytest.raises(TypeError, match="convention must be"):
        batch_covariance(TINY, TINY_LOGITS, "sb3")
    with pytest.raises(ValueError, match=r"values must have shape \(S,\) = \(4,\)"):
        batch_covariance(TINY, TINY_LOGITS, c, values=np.zeros(3))
