"""Loaded DiCE with a baseline, Shen et al.'s Hessian estimator and its gradient-difference estimator
(``pgexact.estimators.hessian_loaded_dice``, ``hessian_shen``, ``hessian_aided_difference``): the
closed forms against torch autodiff of the actual surrogates on sampled episodes, their exact means
by trajectory enumeration against the closed-form Hessian (and the exact bias where biased), and
mean tests on rollouts."""

from __future__ import annotations

import numpy as np
import pytest

from pgexact import LinearSoftmax, TabularSoftmax, evaluate, hessian, policy_gradient, rollout
from pgexact.estimators import (
    Estimate,
    enumerate_trajectories,
    exact_mean,
    hessian_aided_difference,
    hessian_loaded_dice,
    hessian_reward_to_go,
    hessian_shen,
    mean_test,
)
from pgexact.mdps import random_mdp


def _policies(S, A, rng):
    return [TabularSoftmax(S, A), LinearSoftmax(rng.normal(size=(S, A, 3)))]


def _close(x, ref, rel=1e-12):
    """Exact expectations over every trajectory: rounding only (sums of a few thousand terms)."""
    return np.abs(np.asarray(x) - ref).max() <= rel * max(1.0, np.abs(ref).max())


# ----------------------------------------------------------------------------- exact means
@pytest.mark.parametrize("gamma", [0.9, 1.0])
def test_loaded_dice_with_any_baseline_is_unbiased(gamma) -> None:
    mdp = random_mdp(3, 2, gamma=gamma, horizon=4, seed=5)
    rng = np.random.default_rng(6)
    for pol in _policies(3, 2, rng):
        theta = rng.normal(size=pol.n_params)
        tr, p = enumerate_trajectories(mdp, pol.probs(theta))
        ref = hessian(mdp, pol, theta)
        for b in (None, 5 * rng.normal(size=3), 5 * rng.normal(size=(4, 3))):
            H = exact_mean(hessian_loaded_dice(tr, pol, theta, b).samples, p)
            assert _close(H, ref)


def test_loaded_dice_without_baseline_is_the_reward_to_go_form_episode_by_episode() -> None:
    mdp = random_mdp(3, 2, gamma=0.8, horizon=4, seed=1)
    pol = TabularSoftmax(3, 2)
    theta = np.random.default_rng(2).normal(size=6)
    tr = rollout(mdp, pol.probs(theta), 50, seed=3)
    a = hessian_loaded_dice(tr, pol, theta).samples
    b = hessian_reward_to_go(tr, pol, theta).samples
    assert np.abs(a - b).max() <= 1e-12 * np.abs(b).max()


def _cumulative_baseline_mistake(tr, pol, theta, b):
    """The plausible mistake: the baseline subtracted from the reward inside DiCE's cumulative
    objective, sum_t box(a_{<=t}) d^t (r_t - b(s_t)), instead of Loaded DiCE's increments."""
    from pgexact.estimators._second_order import _padded_terms

    psi, w, F, states, mask = _padded_terms(tr, pol, theta)
    A = (w - tr.discounts()[None, :] * b[states]) * mask
    U = np.cumsum(psi, axis=1)
    out = np.einsum("nt,nti,ntj->nij", A, U, U)
    Fsum = np.cumsum(F[states], axis=1)
    return out - np.einsum("nt,ntij->nij", A, Fsum)


def test_loaded_dice_biases_exactly() -> None:
    mdp = random_mdp(3, 2, gamma=0.9, horizon=4, seed=5)
    pol = TabularSoftmax(3, 2)
    rng = np.random.default_rng(7)
    theta = rng.normal(size=6)
    tr, p = enumerate_trajectories(mdp, pol.probs(theta))
    ref = hessian(mdp, pol, theta)
    b = evaluate(mdp, pol.probs(theta)).V[0]
    # lambda < 1 shrinks the cross terms between distant actions: biased (Farquhar et al. 2019, sec. 4)
    for lam in (0.0, 0.5, 0.9):
        bias = exact_mean(hessian_loaded_dice(tr, pol, theta, b, lam=lam).samples, p) - ref
        assert np.linalg.norm(bias) > 1e-2 * np.linalg.norm(ref)
    # the cumulative-box mistake is biased by -sum_t E[d^t b(s_t) (U_t U_t^T - sum_{u<=t} F)] != 0
    bias = exact_mean(_cumulative_baseline_mistake(tr, pol, theta, b), p) - ref
    assert np.linalg.norm(bias) > 1e-2 * np.linalg.norm(ref)
    # with b = 0 it is DiCE's own (unbiased) objective: the bias is the baseline's alone
    assert _close(exact_mean(_cumulative_baseline_mistake(tr, pol, theta, 0 * b), p), ref)


@pytest.mark.parametrize("gamma", [0.9, 1.0])
def test_shen_hessian_is_unbiased(gamma) -> None:
    mdp = random_mdp(3, 2, gamma=gamma, horizon=4, seed=8)
    rng = np.random.default_rng(9)
    for pol in _policies(3, 2, rng):
        theta = rng.normal(size=pol.n_params)
        tr, p = enumerate_trajectories(mdp, pol.probs(theta))
        assert _close(exact_mean(hessian_shen(tr, pol, theta).samples, p), hessian(mdp, pol, theta))


def _gauss_legendre_mean(mdp, pol, t0, t1, nodes, horizon=None):
    x, wts = np.polynomial.legendre.leggauss(nodes)
    total = 0.0
    for a, wa in zip((x + 1) / 2, wts / 2):
        tr, p = enumerate_trajectories(mdp, pol.probs(a * t1 + (1 - a) * t0), horizon=horizon)
        total = total + wa * exact_mean(hessian_aided_difference(tr, pol, t0, t1, a).samples, p)
    return total


def test_hessian_aided_difference_mean_is_the_gradient_difference() -> None:
    mdp = random_mdp(3, 2, gamma=0.9, horizon=3, seed=10)
    rng = np.random.default_rng(11)
    for pol in _policies(3, 2, rng):
        t0 = rng.normal(size=pol.n_params)
        t1 = t0 + 0.7 * rng.normal(size=pol.n_params)
        diff = policy_gradient(mdp, pol, t1) - policy_gradient(mdp, pol, t0)
        m12 = _gauss_legendre_mean(mdp, pol, t0, t1, 12)
        m24 = _gauss_legendre_mean(mdp, pol, t0, t1, 24)
        # Gauss-Legendre on an analytic integrand: 12 and 24 nodes agree to rounding
        assert _close(m12, m24, 1e-12)
        assert _close(m12, diff, 1e-11)
        # the plausible mistake: the Hessian at the current theta (a = 1) instead of a ~ U[0, 1]
        tr, p = enumerate_trajectories(mdp, pol.probs(t1))
        at_end = exact_mean(hessian_aided_difference(tr, pol, t0, t1, 1.0).samples, p)
        assert np.linalg.norm(at_end - diff) > 1e-2 * np.linalg.norm(diff)


def test_truncated_episodes_estimate_the_truncated_objective() -> None:
    mdp = random_mdp(3, 2, gamma=0.8, seed=12)
    rng = np.random.default_rng(13)
    pol = TabularSoftmax(3, 2)
    t0 = rng.normal(size=6)
    t1 = t0 + 0.5 * rng.normal(size=6)
    trunc = mdp.with_horizon(4)
    m = _gauss_legendre_mean(mdp, pol, t0, t1, 12, horizon=4)
    diff_T = policy_gradient(trunc, pol, t1) - policy_gradient(trunc, pol, t0)
    diff = policy_gradient(mdp, pol, t1) - policy_gradient(mdp, pol, t0)
    assert _close(m, diff_T, 1e-11)
    assert np.linalg.norm(m - diff) > 1e-2 * np.linalg.norm(diff)  # biased for the discounted J
    tr, p = enumerate_trajectories(mdp, pol.probs(t0), horizon=4)
    b = evaluate(mdp, pol.probs(t0)).V
    H = exact_mean(hessian_loaded_dice(tr, pol, t0, b).samples, p)
    assert _close(H, hessian(trunc, pol, t0))
    assert np.linalg.norm(H - hessian(mdp, pol, t0)) > 1e-2 * np.linalg.norm(H)


# ----------------------------------------------------------------------------- torch autodiff
torch = pytest.importorskip("torch")


def _torch_setup(seed):
    rng = np.random.default_rng(seed)
    S, A, d, T = 3, 2, 3, 4
    mdp = random_mdp(S, A, gamma=0.9, horizon=T, seed=seed)
    phi = rng.normal(size=(S, A, d))
    pol = LinearSoftmax(phi)
    theta = rng.normal(size=d)
    tr = rollout(mdp, pol.probs(theta), 6, seed=seed + 1)
    b = rng.normal(size=(T, S))
    return mdp, pol, phi, theta, tr, b


def _logps(phi, theta_t, tr, n):
    logits = torch.einsum("sad,d->sa", torch.as_tensor(phi), theta_t)
    logpi = torch.log_softmax(logits, dim=1)
    L = int(tr.lengths[n])
    return [logpi[int(tr.states[n, t]), int(tr.actions[n, t])] for t in range(L)], L


def _magic_box(w):
    return torch.exp(w - w.detach())


@pytest.mark.parametrize("lam", [1.0, 0.6])
def test_loaded_dice_closed_form_is_autodiff_of_the_surrogate(lam) -> None:
    mdp, pol, phi, theta, tr, b = _torch_setup(20)
    ours = hessian_loaded_dice(tr, pol, theta, b, lam=lam).samples
    disc = tr.discounts()
    for n in range(tr.n_episodes):
        def surrogate(th, n=n):
            logp, L = _logps(phi, th, tr, n)
            r = [float(tr.rewards[n, t] * disc[t]) for t in range(L)]
            A = [sum(r[t:]) - disc[t] * b[t, int(tr.states[n, t])] for t in range(L)]
            total, w, prev = 0.0, 0.0, torch.tensor(1.0, dtype=torch.float64)
            for t in range(L):
                w = lam * w + logp[t]
                box = _magic_box(w)
                total = total + (box - prev) * A[t]
                prev = box
            return total

        H = torch.autograd.functional.hessian(surrogate, torch.tensor(theta)).numpy()
        # two float64 evaluations of the same sums in a different order: rounding only
        assert np.abs(H - ours[n]).max() <= 1e-12 * max(1.0, np.abs(H).max())


def test_plain_dice_objective_autodiff_is_the_reward_to_go_form() -> None:
    """DiCE's own objective sum_t d^t r_t box(a_{<=t}) (Foerster et al. 2018), twice differentiated by torch."""
    mdp, pol, phi, theta, tr, _ = _torch_setup(40)
    ours = hessian_reward_to_go(tr, pol, theta).samples
    same = hessian_loaded_dice(tr, pol, theta).samples
    disc = tr.discounts()
    for n in range(tr.n_episodes):
        def surrogate(th, n=n):
            logp, L = _logps(phi, th, tr, n)
            w, total = 0.0, 0.0
            for t in range(L):
                w = w + logp[t]
                total = total + float(tr.rewards[n, t] * disc[t]) * _magic_box(w)
            return total

        H = torch.autograd.functional.hessian(surrogate, torch.tensor(theta)).numpy()
        scale = max(1.0, np.abs(H).max())
        assert np.abs(H - ours[n]).max() <= 1e-12 * scale
        assert np.abs(H - same[n]).max() <= 1e-12 * scale


def test_shen_closed_form_is_autodiff_of_phi() -> None:
    mdp, pol, phi, theta, tr, _ = _torch_setup(30)
    t0 = theta - np.array([0.3, -0.2, 0.5])
    ours = hessian_shen(tr, pol, theta).samples
    ours_dir = hessian_aided_difference(tr, pol, t0, theta, 1.0).samples
    disc = tr.discounts()
    for n in range(tr.n_episodes):
        def parts(th, n=n):
            logp, L = _logps(phi, th, tr, n)
            r = [float(tr.rewards[n, t] * disc[t]) for t in range(L)]
            Phi = sum(sum(r[h:]) * logp[h] for h in range(L))
            return Phi, sum(logp)

        th = torch.tensor(theta, requires_grad=True)
        Phi, logp = parts(th)
        g_phi = torch.autograd.grad(Phi, th)[0].numpy()
        g_logp = torch.autograd.grad(parts(th)[1], th)[0].numpy()
        hess_phi = torch.autograd.functional.hessian(lambda x: parts(x)[0], torch.tensor(theta)).numpy()
        H = np.outer(g_phi, g_logp) + hess_phi
        assert np.abs(H - ours[n]).max() <= 1e-12 * max(1.0, np.abs(H).max())
        assert np.allclose(ours_dir[n], H @ (theta - t0), rtol=0, atol=1e-12 * max(1.0, np.abs(H).max()))


# ----------------------------------------------------------------------------- rollouts
def test_mean_test_loaded_dice_on_geometric_rollouts() -> None:
    # false alarm <= 1e-3 (Bonferroni over the n^2 entries, asymptotic in N)
    mdp = random_mdp(3, 2, gamma=0.7, seed=10)
    pol = TabularSoftmax(3, 2)
    theta = 0.5 * np.random.default_rng(11).normal(size=6)
    tr = rollout(mdp, pol.probs(theta), 20_000, geometric=True, seed=14)
    V = evaluate(mdp, pol.probs(theta)).V
    est = hessian_loaded_dice(tr, pol, theta, V)
    flat = Estimate(np.asarray(est.samples).reshape(est.n, -1))
    H = hessian(mdp, pol, theta)
    assert mean_test(flat, expected=H.reshape(-1), false_alarm=1e-3).passed
    # power: every |z| < c = 4.19 above, so a shift of 9 standard errors gives |z| > c: rejected
    k = int(np.argmax(np.abs(H)))
    shifted = H.reshape(-1).copy()
    shifted[k] += 9 * flat.std_error[k]
    assert not mean_test(flat, expected=shifted, false_alarm=1e-3).passed


def test_mean_test_hessian_aided_difference_with_random_a() -> None:
    # K groups: a_k ~ U[0, 1] (fixed seed), m episodes at theta_{a_k}; the group means are i.i.d.
    # with mean grad J(t1) - grad J(t0). False alarm <= 1e-3 (Bonferroni over n entries, asymptotic).
    mdp = random_mdp(3, 2, gamma=0.9, horizon=4, seed=15)
    pol = TabularSoftmax(3, 2)
    rng = np.random.default_rng(16)
    t0 = rng.normal(size=6)
    t1 = t0 + 0.8 * rng.normal(size=6)
    K, m = 800, 8
    groups = []
    for k, a in enumerate(rng.uniform(size=K)):
        tr = rollout(mdp, pol.probs(a * t1 + (1 - a) * t0), m, seed=1000 + k)
        groups.append(hessian_aided_difference(tr, pol, t0, t1, a).mean)
    est = Estimate(np.array(groups))
    diff = policy_gradient(mdp, pol, t1) - policy_gradient(mdp, pol, t0)
    assert mean_test(est, expected=diff, false_alarm=1e-3).passed
    k = int(np.argmax(np.abs(diff)))
    shifted = diff.copy()
    shifted[k] += 9 * est.std_error[k]
    assert not mean_test(est, expected=shifted, false_alarm=1e-3).passed


def test_bad_input() -> None:
    mdp = random_mdp(3, 2, gamma=0.9, horizon=3, seed=0)
    tr = rollout(mdp, np.full((3, 2), 0.5), 5, seed=0)
    pol = TabularSoftmax(3, 2)
    with pytest.raises(ValueError, match="lam"):
        hessian_loaded_dice(tr, pol, np.zeros(6), lam=1.5)
    with pytest.raises(ValueError, match="baseline"):
        hessian_loaded_dice(tr, pol, np.zeros(6), np.zeros(4))
    with pytest.raises(ValueError, match="baseline"):
        hessian_loaded_dice(tr, pol, np.zeros(6), np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="theta_prev"):
        hessian_aided_difference(tr, pol, np.zeros(5), np.zeros(6), 0.5)
    with pytest.raises(ValueError, match="a "):
        hessian_aided_difference(tr, pol, np.zeros(6), np.zeros(6), -0.1)
    with pytest.raises(TypeError):
        hessian_shen(tr, object(), np.zeros(6))


def test_bias_table_script() -> None:
    """The table of benchmarks/second_order_bias.py (shown in docs/second_order.md): unbiased rows are
    exact for the truncated J_T (enumeration: rounding only), and biased for the other objectives."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "second_order_bias.py"
    spec = importlib.util.spec_from_file_location("second_order_bias", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = {name: values for name, *values in module.bias_table()}
    assert len(rows) == 6
    for name, (a, b, c, var) in rows.items():
        assert a > 0.1 and c > 0.1 and var > 0
        assert (b > 0.1) if "lam=0.5" in name else (b < 1e-12)


@pytest.mark.parametrize("which", ["loaded_dice_lam_half", "shen"])
def test_mean_test_truncated_rollouts_agree_with_the_enumerated_mean(which) -> None:
    """Rollouts of T steps on a discounted chain agree with the exact (enumerated) mean, biased or not;
    false alarm <= 1e-3 per test (Bonferroni over the n^2 entries, asymptotic in N)."""
    from pgexact.mdps import chain

    mdp = chain(3, gamma=0.9, slip=0.2)
    pol = TabularSoftmax(3, 2)
    theta = 0.5 * np.random.default_rng(17).normal(size=6)
    T = 4
    V = evaluate(mdp.with_horizon(T), pol.probs(theta)).V

    def estimate(tr):
        if which == "shen":
            return hessian_shen(tr, pol, theta)
        return hessian_loaded_dice(tr, pol, theta, V, lam=0.5)

    tr_all, p = enumerate_trajectories(mdp, pol.probs(theta), horizon=T)
    exact = exact_mean(np.asarray(estimate(tr_all).samples), p).reshape(-1)
    est = estimate(rollout(mdp, pol.probs(theta), 20_000, horizon=T, seed=18))
    flat = Estimate(np.asarray(est.samples).reshape(est.n, -1))
    result = mean_test(flat, expected=exact, false_alarm=1e-3)
    assert result.passed
    truth = hessian(mdp.with_horizon(T), pol, theta).reshape(-1)
    if which == "shen":  # unbiased for the truncated J_T: the enumerated mean is its Hessian
        assert np.allclose(exact, truth, rtol=0, atol=1e-12 * np.abs(truth).max())
    else:
        # biased: some entry's bias exceeds 2 c standard errors, so with every |z| < c against the
        # exact mean (the pass above), |z| > c against the Hessian of J_T there: rejected, whatever the seed
        assert np.max(np.abs(exact - truth) / flat.std_error) > 2 * result.threshold + 1
        assert not mean_test(flat, expected=truth, false_alarm=1e-3).passed
