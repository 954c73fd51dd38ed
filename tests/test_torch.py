"""PyTorch adapter: exact gradients of neural policies, PPO's loss against the exact gradient, NPG/TRPO.

References: central differences of exact J (``pgexact.evaluate`` on the perturbed network's
probabilities), the softmax closed forms (``policy_gradient``, ``fisher_vector_product``,
``natural_gradient``, ``trpo_step``) for a network that is a lookup table, and a mean test of
PPO's loss gradient on pgexact rollouts.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
# tiny tensors: intra-op threads only contend with each other (measured ~100x slower with 2
# threads on a loaded 2-core machine)
torch.set_num_threads(1)

import pgexact.torch as pt  # noqa: E402
from pgexact import (  # noqa: E402
    ExactSource,
    TabularSoftmax,
    evaluate,
    fisher_vector_product,
    natural_gradient,
    occupancy,
    policy_gradient,
    rollout,
)
from pgexact.estimators import mean_test  # noqa: E402
from pgexact.exact import minimum_norm_solve  # noqa: E402
from pgexact.mdps import gridworld  # noqa: E402
from pgexact.updates import trpo_step  # noqa: E402


def _mlp(n_in: int, n_out: int, seed: int, hidden: int = 16) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(n_in, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, n_out)
    ).double()


def _obs(mdp) -> torch.Tensor:
    """Continuous observations of a gridworld's cells: (row, col) scaled to [0, 1]."""
    W = 3
    s = np.arange(mdp.n_states)
    return torch.tensor(np.stack([s // W, s % W], axis=1) / 2.0, dtype=torch.float64)


def _flat(net) -> torch.Tensor:
    return torch.nn.utils.parameters_to_vector(net.parameters()).detach().clone()


def _J_at(mdp, net, obs, vec) -> float:
    torch.nn.utils.vector_to_parameters(vec, net.parameters())
    with torch.no_grad():
        return evaluate(mdp, torch.softmax(net(obs), -1).numpy()).J


@pytest.mark.parametrize("horizon", [None, 7])
def test_mlp_exact_gradient_equals_central_differences(horizon) -> None:
    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, horizon=horizon, step_reward=-0.1)
    obs = _obs(mdp)
    net = _mlp(2, 4, seed=0)
    J = pt.expected_return(mdp, torch.softmax(net(obs), -1))
    J.backward()
    grad = torch.cat([p.grad.reshape(-1) for p in net.parameters()]).numpy()
    assert abs(J.item() - _J_at(mdp, net, obs, _flat(net))) < 1e-14
    theta = _flat(net)
    rng = np.random.default_rng(0)
    h = 1e-5
    for _ in range(4):
        e = torch.tensor(rng.normal(size=theta.numel()))
        fd = (_J_at(mdp, net, obs, theta + h * e) - _J_at(mdp, net, obs, theta - h * e)) / (2 * h)
        # central difference: truncation h^2 |J'''| / 6 ~ 1e-10, rounding eps |J| / h ~ 1e-11
        assert abs(grad @ e.numpy() - fd) < 1e-8 * (1 + abs(fd))


def _lookup_table(mdp, seed: int):
    """A linear layer on one-hot states without bias: logits z[s, a] = W[a, s] (a lookup table)."""
    S, A = mdp.n_states, mdp.n_actions
    net = torch.nn.Linear(S, A, bias=False).double()
    theta = np.random.default_rng(seed).normal(size=S * A)
    with torch.no_grad():
        net.weight.copy_(torch.tensor(theta.reshape(S, A).T))
    return net, torch.eye(S, dtype=torch.float64), theta


@pytest.mark.parametrize("sparse", [False, True])
def test_lookup_table_gradient_equals_tabular_softmax(sparse: bool) -> None:
    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, step_reward=-0.1, sparse=sparse)
    net, obs, theta = _lookup_table(mdp, seed=1)
    pt.expected_return(mdp, torch.softmax(net(obs), -1), tol=1e-13).backward()
    ref = policy_gradient(mdp, TabularSoftmax(9, 4), theta, tol=1e-13)
    got = net.weight.grad.numpy().T.reshape(-1)
    # dense: both sides from one LU solve, 1e-12; sparse: Krylov solves at tol=1e-13
    assert np.allclose(got, ref, rtol=0, atol=(1e-10 if sparse else 1e-12) * np.abs(ref).max())


def test_values_advantages_occupancy_gradients_equal_central_differences() -> None:
    mdp = gridworld(3, 3, gamma=0.8, slip=0.3, step_reward=-0.05)
    rng = np.random.default_rng(2)
    W0 = torch.tensor(rng.normal(size=(9, 4)))
    cV, cQ, cA, cd = (torch.tensor(rng.normal(size=s)) for s in [(9,), (9, 4), (9, 4), (9,)])

    def f(W, numpy: bool = False):
        pi = torch.softmax(W, -1)
        if numpy:
            ev = evaluate(mdp, pi.numpy())
            d = occupancy(mdp, pi.numpy())
            return float((cV.numpy() * ev.V).sum() + (cQ.numpy() * ev.Q).sum() + (cA.numpy() * ev.A).sum() + (cd.numpy() * d).sum())
        return (cV * pt.values(mdp, pi)).sum() + (cQ * pt.action_values(mdp, pi)).sum() + (
            cA * pt.advantages(mdp, pi)).sum() + (cd * pt.occupancy(mdp, pi)).sum()

    W = W0.clone().requires_grad_(True)
    f(W).backward()
    E = torch.tensor(rng.normal(size=(9, 4)))
    h = 1e-5
    fd = (f(W0 + h * E, True) - f(W0 - h * E, True)) / (2 * h)
    assert abs((W.grad * E).sum().item() - fd) < 1e-8 * (1 + abs(fd))


def test_works_under_torch_func_grad() -> None:
    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, step_reward=-0.1)
    theta = np.random.default_rng(9).normal(size=36)
    g = torch.func.grad(lambda W: pt.expected_return(mdp, torch.softmax(W, -1)))(torch.tensor(theta.reshape(9, 4)))
    ref = policy_gradient(mdp, TabularSoftmax(9, 4), theta)
    assert np.allclose(g.numpy().reshape(-1), ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_bad_input_is_refused_clearly() -> None:
    mdp = gridworld(3, 3, gamma=0.9)
    with pytest.raises(TypeError, match="pi has dtype torch.float32; pgexact computes in float64"):
        pt.expected_return(mdp, torch.full((9, 4), 0.25, dtype=torch.float32))
    with pytest.raises(ValueError, match=r"pi must have shape \(S, A\)=\(9, 4\), got \(4, 9\)"):
        pt.expected_return(mdp, torch.full((4, 9), 0.25, dtype=torch.float64))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        pt.values(mdp, np.full((9, 4), 0.25))
    with pytest.raises(ValueError, match=r"pi\[0, :\] sums to 2"):
        pt.expected_return(mdp, torch.full((9, 4), 0.5, dtype=torch.float64))


# ----------------------------------------------------------------- Fisher, NPG, TRPO
def test_fisher_vector_product_natural_gradient_and_trpo_on_a_lookup_table() -> None:
    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, step_reward=-0.1)
    net, obs, theta = _lookup_table(mdp, seed=3)
    pol = TabularSoftmax(9, 4)

    def pi_fn(W):  # W: the layer's weight (A, S)
        return torch.softmax(obs @ W.T, -1)

    W0 = net.weight.detach().clone()
    v = np.random.default_rng(4).normal(size=36)
    Fv = pt.fisher_vector_product(mdp, pi_fn, W0, torch.tensor(v.reshape(9, 4).T))
    ref = fisher_vector_product(mdp, pol, theta, v)
    assert np.allclose(Fv.numpy().T.reshape(-1), ref, rtol=0, atol=1e-13 * np.abs(ref).max())

    def fvp(x: np.ndarray) -> np.ndarray:
        out = pt.fisher_vector_product(mdp, pi_fn, W0, torch.tensor(x.reshape(9, 4).T))
        return out.numpy().T.reshape(-1)

    g = policy_gradient(mdp, pol, theta)
    w = minimum_norm_solve(fvp, g, rtol=1e-12)
    # tabular closed form (A - mean A)/(1 - gamma) (Kakade 2002; Agarwal et al. 2021, Lemma 5.1)
    npg = natural_gradient(mdp, pol, theta)
    assert np.allclose(w, npg, rtol=0, atol=1e-8 * np.abs(npg).max())  # CG residual 1e-12, cond(F) ~ 1e3
    delta = 0.01
    beta0 = np.sqrt(2 * delta / (w @ fvp(w)))
    step = trpo_step(ExactSource(mdp, pol), theta, delta)
    assert np.allclose(beta0 * w, step.full_step_size * step.direction, rtol=0, atol=1e-7 * np.abs(beta0 * w).max())


def test_fisher_vector_product_of_an_mlp_is_symmetric_psd_and_matches_score_outer_products() -> None:
    mdp = gridworld(3, 3, gamma=0.9, slip=0.2, horizon=6)
    obs = _obs(mdp)
    net = _mlp(2, 4, seed=5, hidden=6)
    params = {k: p.detach() for k, p in net.named_parameters()}
    names = list(params)

    def pi_fn(p):
        return torch.softmax(torch.func.functional_call(net, p, (obs,)), -1)

    def flat(p):
        return torch.cat([p[k].reshape(-1) for k in names])

    n = sum(p.numel() for p in params.values())
    basis = torch.eye(n, dtype=torch.float64)

    def unflat(x):
        out, i = {}, 0
        for k in names:
            m = params[k].numel()
            out[k] = x[i:i + m].reshape(params[k].shape)
            i += m
        return out

    F = torch.stack([flat(pt.fisher_vector_product(mdp, pi_fn, params, unflat(basis[i]))) for i in range(n)]).numpy()
    # reference: the dense Fisher sum_s d(s) sum_a pi grad log pi grad log pi^T with the score
    # from torch.func.jacrev of log pi (no JVP/VJP of pi involved)
    logpi_jac = torch.func.jacrev(lambda x: torch.log(pi_fn(unflat(x))))(flat(params)).numpy()  # (S, A, n)
    pi = pi_fn(params).detach().numpy()
    d = occupancy(mdp, pi)
    ref = np.einsum("s,sa,sak,sal->kl", d, pi, logpi_jac, logpi_jac)
    assert np.allclose(F, ref, rtol=0, atol=1e-13 * np.abs(ref).max())
    assert np.allclose(F, F.T, atol=1e-14 * np.abs(F).max())


# ----------------------------------------------------------------- PPO
def _ppo_clipped_loss(logits_new, logprob_old, actions, advantages, clip_coef=0.2):
    """CleanRL's ppo.py policy loss, per sample (``.mean()`` removed), plain PyTorch."""
    newlogprob = torch.distributions.Categorical(logits=logits_new).log_prob(actions)
    logratio = newlogprob - logprob_old
    ratio = logratio.exp()
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
    return torch.max(pg_loss1, pg_loss2)


def _ppo_table_gradients(mdp, net, obs, A_table):
    """Gradient of minus the PPO per-sample loss at theta_old for every (s, a): shape (S*A, n)."""
    S, nA = mdp.n_states, mdp.n_actions
    states = torch.arange(S).repeat_interleave(nA)
    actions = torch.arange(nA).repeat(S)
    params = {k: p.detach() for k, p in net.named_parameters()}
    with torch.no_grad():
        logprob_old = torch.distributions.Categorical(logits=net(obs)).log_prob(actions.reshape(S, nA).T).T.reshape(-1)
    adv = torch.tensor(A_table.reshape(-1))

    def neg_loss(p):
        logits = torch.func.functional_call(net, p, (obs,))[states]
        return -_ppo_clipped_loss(logits, logprob_old, actions, adv)

    jac = torch.func.jacrev(neg_loss)(params)
    return torch.cat([jac[k].reshape(S * nA, -1) for k in params], dim=1).numpy()


def test_ppo_clipped_loss_gradient_at_theta_old_is_the_exact_gradient() -> None:
    mdp = gridworld(3, 3, gamma=0.8, slip=0.2, step_reward=-0.1)
    obs = _obs(mdp)
    net = _mlp(2, 4, seed=6, hidden=8)
    pi_t = torch.softmax(net(obs), -1)
    pt.expected_return(mdp, pi_t).backward()
    exact = torch.cat([p.grad.reshape(-1) for p in net.parameters()]).numpy()
    pi = pi_t.detach().numpy()
    ev = evaluate(mdp, pi)
    g_sa = _ppo_table_gradients(mdp, net, obs, ev.A)  # (S*A, n)
    # (1) full state-action table weighted by d_pi(s) pi(a|s) / (1 - gamma): exactly grad J
    w = (ev.d[:, None] * pi).reshape(-1) / (1 - mdp.gamma)
    assert np.allclose(w @ g_sa, exact, rtol=0, atol=1e-12 * np.abs(exact).max())
    # (2) pgexact rollouts with geometric stopping (Pr(L > t) = gamma^t), one sample per episode:
    # the per-episode sum of the loss gradients, i.e. CleanRL's loss summed over the batch / N.
    N = 20_000
    tr = rollout(mdp, pi, N, geometric=True, seed=7)
    sa = tr.states[:, :-1].astype(np.int64) * 4 + tr.actions
    counts = np.zeros((N, 36))
    np.add.at(counts, (np.repeat(np.arange(N), tr.n_steps), sa.reshape(-1)), tr.mask.reshape(-1))
    samples = counts @ g_sa
    # Bonferroni z-test over the n coordinates: false-alarm probability <= 1e-4 (CLT, N = 2e4)
    res = mean_test(samples.mean(0), samples.std(0, ddof=1) / np.sqrt(N), exact, false_alarm=1e-4)
    assert res.passed, str(res)
    # negative control: what CleanRL estimates. Fixed-length rollouts (T = 30, episodes end at
    # the goal), the loss averaged over steps with no gamma^t state weighting, rescaled by the
    # occupancy mass 1/(1-gamma): the undiscounted state distribution (Nota & Thomas 2020, "Is
    # the policy gradient a gradient?"). Same test, same false-alarm level: it is rejected.
    T = 30
    tr2 = rollout(mdp, pi, N, horizon=T, seed=8)
    sa2 = tr2.states[:, :-1].astype(np.int64) * 4 + tr2.actions
    counts2 = np.zeros((N, 36))
    np.add.at(counts2, (np.repeat(np.arange(N), tr2.n_steps), sa2.reshape(-1)), tr2.mask.reshape(-1))
    samples2 = counts2 @ g_sa / T / (1 - mdp.gamma)
    bad = mean_test(samples2.mean(0), samples2.std(0, ddof=1) / np.sqrt(N), exact, false_alarm=1e-4)
    assert not bad.passed, str(bad)


def test_fisher_vector_product_refuses_malformed_callbacks_and_points() -> None:
    from pgexact.mdps import random_mdp

    mdp = random_mdp(3, 2, gamma=0.9, seed=0)

    def pi_fn(th):
        return torch.softmax(th.reshape(3, 2), dim=1)

    theta = torch.zeros(6, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"^pi_fn must be a callable, got NoneType"):
        pt.fisher_vector_product(mdp, None, theta, theta)
    with pytest.raises(TypeError, match=r"^params must be a floating-point torch.Tensor"):
        pt.fisher_vector_product(mdp, pi_fn, None, theta)
    with pytest.raises(TypeError, match=r"^v must have the structure of params"):
        pt.fisher_vector_product(mdp, pi_fn, theta, (theta, theta))
    with pytest.raises(ValueError, match=r"^v's leaf 0 has shape \(7,\)"):
        pt.fisher_vector_product(mdp, pi_fn, theta, torch.zeros(7, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"^pi_fn\(params\)\[0, :\] sums to 2"):
        pt.fisher_vector_product(mdp, lambda th: torch.ones(3, 2, dtype=torch.float64) + 0 * th[:1], theta, theta)
