"""Average-reward control: optimal gain against brute force over every deterministic policy
(gains by the discounted limit, an independent route), unichain / periodic / multichain models,
the optimality equations, pymdptoolbox, derivatives of the gain and the average gradient source."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pgexact import FiniteMDP, LinearSoftmax, TabularSoftmax, average
from pgexact.errors import MultichainError, NumericalError
from pgexact.mdps import random_mdp
from pgexact.updates import AverageSource, npg_step, pg_step, trpo_step

EPS = 1e-4


def _cesaro_gain(P_pi: np.ndarray, r_pi: np.ndarray) -> np.ndarray:
    """Per-state gain as lim (1 - gamma) V_gamma, Richardson-extrapolated from gamma = 1 - 1e-4 and
    1 - 5e-5 (error O(eps^2) times the second Laurent coefficient); direct dense solves only."""
    S = len(r_pi)

    def f(e: float) -> np.ndarray:
        return e * np.linalg.solve(np.eye(S) - (1 - e) * P_pi, r_pi)

    return 2 * f(EPS / 2) - f(EPS)


def _brute_force(P: np.ndarray, r: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Elementwise maximum of the per-state gains of every deterministic policy (Puterman 1994,
    Theorem 9.1.8: one deterministic policy attains it in every state at once)."""
    S, A = r.shape
    choices = [[a for a in range(A) if mask is None or mask[s, a]] for s in range(S)]
    best = np.full(S, -np.inf)
    for acts in itertools.product(*choices):
        acts = np.array(acts)
        best = np.maximum(best, _cesaro_gain(P[np.arange(S), acts], r[np.arange(S), acts]))
    return best


def _model(kind: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    S, A = int(rng.integers(2, 6)), int(rng.integers(2, 4))
    r = rng.standard_normal((S, A))
    mask = None
    if kind == "unichain":  # full-support rows: every policy irreducible and aperiodic
        P = rng.dirichlet(np.ones(S), size=(S, A))
    elif kind == "deterministic":  # each (s, a) moves to one state: periodic cycles, several classes
        P = np.eye(S)[rng.integers(S, size=(S, A))]
    else:  # sparse random rows: transient states, several closed classes, periodicity
        P = np.zeros((S, A, S))
        for s, a in itertools.product(range(S), range(A)):
            support = rng.choice(S, size=int(rng.integers(1, 3)), replace=False)
            P[s, a, support] = rng.dirichlet(np.ones(len(support)))
        mask = rng.random((S, A)) < 0.8
        mask[np.arange(S), rng.integers(A, size=S)] = True
    return P, r, mask


def _check_optimality_equations(P, r, mask, opt) -> None:
    S = r.shape[0]
    g, h = opt.gain, opt.h
    G = np.where(mask if mask is not None else True, P @ g, -np.inf)
    assert np.allclose(G.max(axis=1), g, atol=1e-10)
    tight = G >= G.max(axis=1, keepdims=True) - 1e-9
    W = np.where(tight, r - g[:, None] + P @ h, -np.inf)
    assert np.allclose(W.max(axis=1), h, atol=1e-9)
    # the returned actions attain both maxima
    a = opt.actions
    assert np.allclose(P[np.arange(S), a] @ g, g, atol=1e-10)
    assert np.allclose(r[np.arange(S), a] - g + P[np.arange(S), a] @ h, h, atol=1e-9)


@pytest.mark.parametrize("kind", ["unichain", "deterministic", "sparse"])
@pytest.mark.parametrize("seed", range(8))
def test_optimal_gain_is_the_brute_force_maximum(kind: str, seed: int) -> None:
    P, r, mask = _model(kind, seed)
    best = _brute_force(P, r, mask)
    for method in ("policy_iteration", "lp", "rvi"):
        try:
            opt = average.optimal((P, r, mask), method)
        except ValueError as exc:  # rvi on a model that is not weakly communicating
            assert method == "rvi" and "weakly communicating" in str(exc)
            continue
        if method == "rvi":  # weakly communicating: a constant optimal gain (Puterman 1994, Theorem 8.3.2)
            assert np.ptp(best) < 1e-6
        # Richardson leaves O(eps^2) = 1e-8 times the second Laurent coefficient (<= ~1e2 here)
        assert np.allclose(opt.gain, best, atol=1e-6), method
        assert opt.rho == pytest.approx(np.mean(opt.gain), abs=1e-14)
        if mask is not None:
            assert mask[np.arange(len(opt.actions)), opt.actions].all()
        _check_optimality_equations(P, r, mask, opt)
        # the gain and bias reported are those of the returned policy, by an independent route
        S = r.shape[0]
        P_pi, r_pi = P[np.arange(S), opt.actions], r[np.arange(S), opt.actions]
        assert np.allclose(_cesaro_gain(P_pi, r_pi), opt.gain, atol=1e-6)
        limit = np.linalg.matrix_power(0.5 * (np.eye(S) + P_pi), 4000)  # aperiodic lazy chain: P* to rounding
        assert np.allclose(limit @ opt.h, 0.0, atol=1e-9)
        assert np.allclose(opt.class_gains, [opt.gain[c[0]] for c in opt.classes], atol=1e-12)


def test_rvi_needs_the_aperiodicity_transform_on_a_periodic_chain() -> None:
    # a 3-cycle with rewards (3, 0, 0) under the only action: plain value iteration's increments
    # cycle through (3, 0, 0) permutations forever; the transform makes them converge to rho = 1
    P = np.zeros((3, 1, 3))
    P[0, 0, 1] = P[1, 0, 2] = P[2, 0, 0] = 1.0
    r = np.array([[3.0], [0.0], [0.0]])
    opt = average.optimal((P, r), "rvi")
    assert opt.rho == pytest.approx(1.0, abs=1e-14) and opt.iterations > 1
    assert np.allclose(opt.h + opt.rho, r[:, 0] + P[:, 0] @ opt.h, atol=1e-12)
    v = np.zeros(3)
    increments = []
    for _ in range(60):
        Tv = r[:, 0] + P[:, 0] @ v
        increments.append(np.ptp(Tv - v))
        v = Tv - Tv[0]
    assert min(increments[-10:]) >= 3.0 - 1e-12  # untransformed: the span never shrinks


def test_multichain_gains_of_every_class() -> None:
    # states 0, 1 absorbing with rewards 1 and 3; from 2 the choice of class: the optimal gain is
    # 3 in states 1 and 2, 1 in state 0
    P = np.zeros((3, 2, 3))
    P[0, :, 0] = 1.0
    P[1, :, 1] = 1.0
    P[2, 0, 0] = 1.0
    P[2, 1, 1] = 1.0
    r = np.array([[1.0, 1.0], [3.0, 3.0], [10.0, 0.0]])
    for method in ("policy_iteration", "lp"):
        opt = average.optimal((P, r), method)
        assert opt.gain.tolist() == [1.0, 3.0, 3.0] and opt.actions[2] == 1
        assert sorted(opt.class_gains.tolist()) == [1.0, 3.0]
        # second equation in state 2: r - g + P h = 0 - 3 + h(1) with h(1) = 0
        assert opt.h[2] == pytest.approx(-3.0, abs=1e-12)
    with pytest.raises(ValueError, match="weakly communicating"):
        average.optimal((P, r), "rvi")


def test_transient_bias_is_optimized_not_only_the_gain() -> None:
    # state 0 transient: both actions lead to the absorbing state 1 (gain 0); action 1 earns more
    # on the way. Gain-optimal either way; the second optimality equation picks action 1
    P = np.zeros((2, 2, 2))
    P[:, :, 1] = 1.0
    r = np.array([[0.0, 2.0], [0.0, 0.0]])
    for method in ("policy_iteration", "rvi", "lp"):
        opt = average.optimal((P, r), method)
        assert opt.actions[0] == 1 and opt.h.tolist() == [2.0, 0.0]


def test_model_forms_and_errors() -> None:
    mdp = random_mdp(4, 2, gamma=0.9, seed=3)
    a = average.optimal(mdp)
    b = average.optimal((mdp.P, mdp.r))
    assert np.array_equal(a.actions, b.actions) and a.rho == pytest.approx(b.rho, abs=1e-14)
    assert np.array_equal(a.pi, np.eye(2)[a.actions])
    with pytest.raises(ValueError, match="method is 'vi', expected one of 'policy_iteration', 'rvi', 'lp'"):
        average.optimal(mdp, "vi")
    with pytest.raises(TypeError, match="mdp must be a pgexact.FiniteMDP or a pair"):
        average.optimal([mdp.P, mdp.r])
    with pytest.raises(ValueError, match=r"P\[0, 0, :\] sums to"):
        average.evaluate((mdp.P * 0.5, mdp.r), np.full((4, 2), 0.5))
    with pytest.raises(ValueError, match="tol"):
        average.optimal(mdp, tol=-1.0)
    with pytest.raises(NumericalError, match="max_iter=1"):
        average.optimal(random_mdp(6, 3, gamma=0.9, seed=1), "rvi", max_iter=1)
    with pytest.raises(ValueError):
        a.gain[0] = 0.0


def test_sparse_model_and_start_distribution() -> None:
    import scipy.sparse

    mdp = random_mdp(5, 3, gamma=0.5, seed=2)
    sp = FiniteMDP(scipy.sparse.csr_array(mdp.P.reshape(15, 5)), mdp.r, [1.0, 0, 0, 0, 0], 0.5)
    opt = average.optimal(sp, "lp")
    assert opt.rho == pytest.approx(average.optimal(mdp).gain[0], abs=1e-12)


def test_against_pymdptoolbox() -> None:
    mdptoolbox = pytest.importorskip("mdptoolbox.mdp")
    for seed in range(5):
        mdp = random_mdp(6, 3, gamma=0.9, seed=seed)
        rvi = mdptoolbox.RelativeValueIteration(np.transpose(mdp.P, (1, 0, 2)), mdp.r, epsilon=1e-12,
                                               max_iter=100_000)
        rvi.run()
        opt = average.optimal(mdp)
        assert opt.rho == pytest.approx(rvi.average_reward, abs=1e-9)
        assert tuple(opt.actions) == tuple(rvi.policy)


# ----------------------------------------------------------------------------- derivatives
def _unichain(seed: int):
    rng = np.random.default_rng(seed)
    S, A = int(rng.integers(2, 6)), int(rng.integers(2, 4))
    return random_mdp(S, A, gamma=0.9, seed=rng), rng


@pytest.mark.parametrize("seed", range(4))
def test_pi_gradient_through_any_parametrization(seed: int) -> None:
    mdp, rng = _unichain(seed)
    S, A = mdp.n_states, mdp.n_actions
    W = rng.standard_normal((S * A, 3))

    def probs(theta):  # a nonlinear parametrization, complex-step safe
        z = np.tanh(W @ theta).reshape(S, A)
        e = np.exp(z - z.real.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    theta = rng.standard_normal(3)
    G = average.pi_gradient(mdp, probs(theta))
    jac = np.stack([np.imag(probs(theta + 1e-30j * e)) / 1e-30 for e in np.eye(3)])  # complex step
    grad = jac.reshape(3, -1) @ G.reshape(-1)
    rho = lambda t: average.evaluate(mdp, probs(t)).rho  # noqa: E731
    h = 1e-4
    fd = []
    for e in np.eye(3):  # Richardson-extrapolated central differences: O(h^4) ~ 1e-16, rounding ~ 1e-12
        d1 = (rho(theta + h * e) - rho(theta - h * e)) / (2 * h)
        d2 = (rho(theta + 2 * h * e) - rho(theta - 2 * h * e)) / (4 * h)
        fd.append((4 * d1 - d2) / 3)
    assert np.allclose(grad, fd, rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_natural_gradient(seed: int) -> None:
    mdp, rng = _unichain(seed)
    S, A = mdp.n_states, mdp.n_actions
    for pol in (TabularSoftmax(S, A), LinearSoftmax(rng.standard_normal((S, A, 3)))):
        theta = rng.standard_normal(pol.n_params)
        w = average.natural_gradient(mdp, pol, theta)
        pi, psi = pol.probs(theta), pol.score(theta)
        ev = average.evaluate(mdp, pi)
        F = np.einsum("s,sa,sak,sal->kl", ev.d, pi, psi, psi)
        g = average.policy_gradient(mdp, pol, theta)
        assert np.allclose(F @ w, g, atol=1e-12)
        assert np.allclose(w, np.linalg.pinv(F, rcond=1e-10) @ g, atol=1e-9)  # minimum norm
        if isinstance(pol, TabularSoftmax):  # Kakade 2002, Theorem 1: the (centred) advantage
            assert np.allclose(w.reshape(S, A), ev.A - ev.A.mean(axis=1, keepdims=True), atol=1e-12)


def test_average_source_runs_the_updates_on_rho() -> None:
    mdp, rng = _unichain(5)
    S, A = mdp.n_states, mdp.n_actions
    pol = TabularSoftmax(S, A)
    src = AverageSource(mdp, pol)
    theta = rng.standard_normal(pol.n_params)
    oracle = src.at(theta)
    assert np.allclose(oracle.gradient, average.policy_gradient(mdp, pol, theta), atol=1e-14)
    assert oracle.J == average.evaluate(mdp, pol.probs(theta)).rho
    # the surrogate's first-order term: d/dt surrogate(theta + t v) at 0 is v . grad rho
    v = rng.standard_normal(pol.n_params)
    t = 1e-6
    slope = (oracle.surrogate(theta + t * v) - oracle.surrogate(theta - t * v)) / (2 * t)
    assert slope == pytest.approx(v @ oracle.gradient, abs=1e-8)
    # KL's Hessian at theta is the Fisher with the stationary d
    kl2 = 2 * oracle.kl(theta + 1e-4 * v) / 1e-8
    assert kl2 == pytest.approx(v @ oracle.fisher_vector_product(v), rel=1e-3)
    rho_star = average.optimal(mdp).rho
    th_pg, th_npg, th_trpo = theta.copy(), theta.copy(), theta.copy()
    for _ in range(200):
        th_pg = pg_step(src, th_pg, lr=5.0).theta
    for _ in range(30):
        th_npg = npg_step(src, th_npg, lr=5.0).theta
        th_trpo = trpo_step(src, th_trpo, 0.05).theta
    for th in (th_pg, th_npg, th_trpo):
        assert src.exact_J(th) <= rho_star + 1e-12
    assert rho_star - src.exact_J(th_npg) < 1e-9
    assert rho_star - src.exact_J(th_trpo) < 1e-3
    assert rho_star - src.exact_J(th_pg) < 1e-2
    res = trpo_step(src, theta, 0.01)
    assert res.kl <= 0.01 * (1 + 1e-9) and res.J_old == oracle.J


def test_multichain_policy_refused_by_the_source() -> None:
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[1, 0, 1] = 1.0
    P[0, 1, 1] = P[1, 1, 0] = 1.0
    mask = np.array([[True, False], [True, False]])  # only "stay": every policy has two classes
    src = AverageSource((P, np.eye(2), mask), TabularSoftmax(2, 2, action_mask=mask))
    with pytest.raises(MultichainError, match="2 closed classes"):
        src.at(np.zeros(4))


def test_optimal_refuses_too_many_states(monkeypatch) -> None:
    monkeypatch.setattr(average.evaluation, "MAX_DENSE_STATES", 2)
    with pytest.raises(ValueError, match=r"^mdp has S=3 states, more than MAX_DENSE_STATES=2: .* \(144 bytes\)"):
        average.optimal(random_mdp(3, 2, gamma=0.9, seed=0))


@pytest.mark.parametrize("kind", ["unichain", "deterministic", "sparse"])
def test_solvers_own_policies_are_gain_optimal(kind: str) -> None:
    # before the certifying policy-iteration pass: the LP's dual policy (Puterman 1994, Theorem
    # 9.3.8) and RVI's greedy policy already attain the brute-force gain in every state
    from pgexact.average.control import _lp, _rvi, _Tables

    for seed in range(8):
        P, r, mask = _model(kind, seed)
        tab = _Tables(average.as_average_model((P, r, mask)))
        best = _brute_force(P, r, mask)
        raw = [_lp(tab)[0]]
        try:
            raw.append(_rvi(tab, 1e-10, 100_000)[0])
        except ValueError:
            pass
        for actions in raw:
            gain = average.multichain_evaluate((P, r, mask), np.eye(r.shape[1])[actions]).gain
            assert np.allclose(gain, best, atol=1e-6)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_adapters_give_the_gradient_of_the_gain_through_a_network(backend: str) -> None:
    mdp, rng = _unichain(7)
    S, A = mdp.n_states, mdp.n_actions
    feats = rng.standard_normal((S * A, 4))
    theta = rng.standard_normal(4)
    rho_np = lambda t: average.evaluate(mdp, _softmax_tanh(feats, t, S, A)).rho  # noqa: E731
    if backend == "torch":
        torch = pytest.importorskip("torch")
        from pgexact.torch import average_reward

        th = torch.tensor(theta, requires_grad=True)
        pi = torch.softmax(torch.tanh(torch.tensor(feats) @ th).reshape(S, A), dim=1)
        rho = average_reward(mdp, pi)
        rho.backward()
        grad, value = th.grad.numpy(), float(rho.detach())
    else:
        jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        from pgexact.jax import average_reward

        def f(t):
            return average_reward(mdp, jax.nn.softmax(jnp.tanh(jnp.asarray(feats) @ t).reshape(S, A), axis=1))

        value, grad = float(f(jnp.asarray(theta))), np.asarray(jax.grad(f)(jnp.asarray(theta)))
    assert value == pytest.approx(rho_np(theta), abs=1e-14)
    h = 1e-4
    fd = []
    for e in np.eye(4):  # Richardson-extrapolated central differences (error ~1e-12)
        d1 = (rho_np(theta + h * e) - rho_np(theta - h * e)) / (2 * h)
        d2 = (rho_np(theta + 2 * h * e) - rho_np(theta - 2 * h * e)) / (4 * h)
        fd.append((4 * d1 - d2) / 3)
    assert np.allclose(grad, fd, atol=1e-9)


def _softmax_tanh(feats, theta, S, A):
    z = np.tanh(feats @ theta).reshape(S, A)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("slip", [0.0, 0.1])
def test_gridworld_with_a_terminal_state(slip: float) -> None:
    # an absorbing zero-reward goal: gain 0 everywhere, the bias is the total reward on the way. A
    # poor start (action 0 everywhere pushes away from the goal: hitting times ~1e16 with slip 0.1)
    # would make the bias unrepresentable; policy iteration starts from a 20-step lookahead policy
    from pgexact.mdps import gridworld

    g = gridworld(6, 6, gamma=0.9, slip=slip)
    pi_opt = average.optimal(g, "policy_iteration")
    lp = average.optimal(g, "lp")
    assert np.allclose(pi_opt.gain, 0.0, atol=1e-12) and np.allclose(lp.gain, 0.0, atol=1e-12)
    assert np.allclose(pi_opt.h, lp.h, atol=1e-9)  # the bias-optimal values agree
    # the bias is the expected total reward before absorption: brute force by the discounted limit
    S = g.n_states
    s = np.arange(S)
    P_pi, r_pi = np.asarray(g.P)[s, pi_opt.actions], np.asarray(g.r)[s, pi_opt.actions]
    total = np.linalg.solve(np.eye(S) - (1 - 1e-9) * P_pi, r_pi)
    assert np.allclose(pi_opt.h, total, atol=1e-6)
