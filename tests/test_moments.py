"""Exact estimator moments by recursion: against enumeration, Monte Carlo, and on bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgexact import LinearSoftmax, TabularSoftmax, evaluate, policy_gradient, rollout
from pgexact.estimators import (
    ESTIMATORS,
    advantage,
    constant_baseline,
    enumerate_trajectories,
    estimator_moments,
    exact_covariance,
    exact_mean,
    gae_gradient,
    mean_test,
    reinforce,
    reward_to_go,
    state_baseline,
)
from pgexact.mdps import gridworld, random_mdp


def _cases(rng, mdp, pol, theta, trajs):
    """(name, sampled estimate on trajs, keyword arguments) for every estimator, with random extras."""
    H = trajs.n_steps
    S = mdp.n_states
    ev = evaluate(mdp.with_horizon(H) if mdp.horizon is None else mdp, pol.probs(theta))
    b_s, b_t = rng.standard_normal(S), rng.standard_normal((H, S))
    V_s, lam = rng.standard_normal(S), float(rng.uniform())
    return [
        ("reinforce", reinforce(trajs, pol, theta), {}),
        ("reward_to_go", reward_to_go(trajs, pol, theta), {}),
        ("constant_baseline", constant_baseline(trajs, pol, theta, 1.7), {"b": 1.7}),
        ("state_baseline", state_baseline(trajs, pol, theta, b_s), {"b": b_s}),
        ("state_baseline", state_baseline(trajs, pol, theta, b_t), {"b": b_t}),
        ("advantage", advantage(trajs, pol, theta, ev.A), {"A": ev.A}),
        ("gae", gae_gradient(trajs, pol, theta, V_s, lam), {"V": V_s, "lam": lam}),
        ("gae", gae_gradient(trajs, pol, theta, ev.V, lam), {"V": ev.V, "lam": lam}),
    ]


# Enumeration sums at most ~2e4 trajectories of O(10) terms; the recursion's rounding is
# ~1e-15 relative to E[g g^T] (observed worst 3e-14 on 40 random instances). 1e-12 relative to
# max(1, max|Cov|) is the required accuracy.
TOL = 1e-12


@pytest.mark.parametrize("seed", range(12))
def test_matches_enumeration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    S, A, H = int(rng.integers(2, 4)), int(rng.integers(2, 4)), int(rng.integers(1, 5))
    mdp = random_mdp(S, A, gamma=float(rng.choice([0.9, 1.0])), horizon=H, seed=rng, concentration=0.5)
    pol = LinearSoftmax(rng.standard_normal((S, A, 3))) if seed % 2 else TabularSoftmax(S, A)
    theta = rng.standard_normal(pol.n_params)
    trajs, prob = enumerate_trajectories(mdp, pol.probs(theta))
    for name, est, kw in _cases(rng, mdp, pol, theta, trajs):
        mom = estimator_moments(mdp, pol, theta, name, **kw)
        cov = exact_covariance(est.samples, prob)
        scale = max(1.0, float(np.abs(cov).max()))
        assert np.abs(mom.mean - exact_mean(est.samples, prob)).max() <= TOL * scale, name
        assert np.abs(mom.covariance - cov).max() <= TOL * scale, name
        D = rng.standard_normal((2, pol.n_params))
        along = estimator_moments(mdp, pol, theta, name, directions=D, **kw)
        assert np.abs(along.direction_covariance - D @ cov @ D.T).max() <= TOL * scale * 10, name
        assert np.abs(along.mean - mom.mean).max() <= TOL * scale, name
        assert along.covariance is None and np.allclose(along.variance, np.diag(D @ cov @ D.T), atol=1e-11 * scale)


def test_terminal_states_and_truncated_objective() -> None:
    # a gridworld has a terminal goal; a discounted mdp with horizon=T is the truncated objective
    # (GAE bootstraps V(s_T) there), as rollout(..., horizon=T) samples it
    mdp = gridworld(2, 2, gamma=0.9, slip=0.2)
    assert mdp.terminal.any()
    pol = TabularSoftmax(mdp.n_states, mdp.n_actions)
    rng = np.random.default_rng(1)
    theta = rng.standard_normal(pol.n_params)
    trajs, prob = enumerate_trajectories(mdp, pol.probs(theta), horizon=4, max_trajectories=1 << 22)
    assert 0 < trajs.absorbed.mean() < 1
    for name, est, kw in _cases(rng, mdp, pol, theta, trajs):
        mom = estimator_moments(mdp, pol, theta, name, horizon=4, **kw)
        assert np.allclose(mom.mean, exact_mean(est.samples, prob), rtol=0, atol=1e-13), name
        assert np.allclose(mom.covariance, exact_covariance(est.samples, prob), rtol=0, atol=1e-13), name


def test_unbiased_estimators_have_the_policy_gradient_as_mean() -> None:
    mdp = gridworld(4, 4, gamma=0.99, horizon=60, slip=0.2, step_reward=-0.05)
    pol = TabularSoftmax(mdp.n_states, mdp.n_actions)
    theta = 0.5 * np.random.default_rng(0).standard_normal(pol.n_params)
    ev = evaluate(mdp, pol.probs(theta))
    g = policy_gradient(mdp, pol, theta)
    for name, kw in [("reinforce", {}), ("reward_to_go", {}), ("constant_baseline", {"b": -3.0}),
                     ("state_baseline", {"b": ev.V}), ("advantage", {"A": ev.A}), ("gae", {"V": ev.V, "lam": 0.5})]:
        mom = estimator_moments(mdp, pol, theta, name, **kw)
        assert np.allclose(mom.mean, g, rtol=0, atol=1e-12), name
        assert np.all(np.linalg.eigvalsh(mom.covariance) >= -1e-9 * np.abs(mom.covariance).max()), name


def test_sparse_and_dense_agree() -> None:
    dense = gridworld(3, 3, gamma=0.95, horizon=30, slip=0.3, step_reward=-0.1)
    sparse = gridworld(3, 3, gamma=0.95, horizon=30, slip=0.3, step_reward=-0.1, sparse=True)
    pol = LinearSoftmax(np.random.default_rng(3).standard_normal((9, 4, 5)))
    theta = np.random.default_rng(4).standard_normal(5)
    for name in ("reinforce", "reward_to_go"):
        a = estimator_moments(dense, pol, theta, name)
        b = estimator_moments(sparse, pol, theta, name)
        assert np.allclose(a.covariance, b.covariance, rtol=1e-13, atol=1e-13)


def test_monte_carlo_at_scale() -> None:
    """Sampled second moments along fixed directions agree with the exact ones (H = 200).

    For each estimator and each of 3 directions v_i (and the 3 cross pairs), the per-episode
    values Y = (u·(g - Eg))(v·(g - Eg)) have exact mean u^T Cov v; Y is bounded (finite horizon,
    bounded rewards), so the z-statistic of its sample mean is asymptotically normal. One
    Bonferroni z-test over all 6 estimators x 6 pairs (k = 36) has false-alarm probability
    <= 1e-4 (mean_test), and so does the z-test of the sampled means against the exact ones.
    Fixed seed: the outcome is deterministic.
    """
    mdp = gridworld(5, 5, gamma=0.99, horizon=200, slip=0.2, step_reward=-0.02)
    rng = np.random.default_rng(5)
    pol = LinearSoftmax(rng.standard_normal((mdp.n_states, mdp.n_actions, 6)))
    theta = 0.3 * rng.standard_normal(6)
    pi = pol.probs(theta)
    ev = evaluate(mdp, pi)
    V_noisy = ev.V[0] + 0.3 * rng.standard_normal(mdp.n_states)
    trajs = rollout(mdp, pi, 20_000, seed=7)
    D = rng.standard_normal((3, 6))
    pairs = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]
    zs_var, zs_mean = [], []
    for name, est, kw in [
        ("reinforce", reinforce(trajs, pol, theta), {}),
        ("reward_to_go", reward_to_go(trajs, pol, theta), {}),
        ("constant_baseline", constant_baseline(trajs, pol, theta, -1.0), {"b": -1.0}),
        ("state_baseline", state_baseline(trajs, pol, theta, ev.V), {"b": ev.V}),
        ("advantage", advantage(trajs, pol, theta, ev.A), {"A": ev.A}),
        ("gae", gae_gradient(trajs, pol, theta, V_noisy, 0.8), {"V": V_noisy, "lam": 0.8}),
    ]:
        mom = estimator_moments(mdp, pol, theta, name, directions=D, **kw)
        proj = (est.samples - mom.mean) @ D.T  # (N, 3)
        for i, j in pairs:
            y = proj[:, i] * proj[:, j]
            zs_var.append((y.mean(), y.std(ddof=1) / np.sqrt(y.size), mom.direction_covariance[i, j]))
        zs_mean.append((est.mean, est.std_error, mom.mean))
    m, se, exp = (np.array(x) for x in zip(*zs_var))
    test = mean_test(m, se, exp, false_alarm=1e-4)
    assert test.passed, str(test)
    m, se, exp = (np.concatenate(x) for x in zip(*zs_mean))
    assert mean_test(m, se, exp, false_alarm=1e-4).passed


def test_monte_carlo_test_has_power() -> None:
    # negative control: the reward-to-go samples tested against REINFORCE's exact variance fail
    mdp = gridworld(3, 3, gamma=0.99, horizon=50, slip=0.2, step_reward=-0.05)
    pol = TabularSoftmax(9, 4)
    theta = 0.3 * np.random.default_rng(0).standard_normal(36)
    v = np.random.default_rng(1).standard_normal(36)
    trajs = rollout(mdp, pol.probs(theta), 20_000, seed=3)
    est = reward_to_go(trajs, pol, theta)
    wrong = estimator_moments(mdp, pol, theta, "reinforce", directions=v)
    right = estimator_moments(mdp, pol, theta, "reward_to_go", directions=v)
    assert wrong.variance[0] > 1.5 * right.variance[0]
    y = ((est.samples - right.mean) @ v) ** 2
    se = y.std(ddof=1) / np.sqrt(y.size)
    assert mean_test(y.mean(), se, right.variance[0], false_alarm=1e-4).passed
    assert not mean_test(y.mean(), se, wrong.variance[0], false_alarm=1e-4).passed


def test_trace_and_variance_properties() -> None:
    mdp = random_mdp(3, 2, gamma=0.9, horizon=5, seed=0)
    pol = TabularSoftmax(3, 2)
    theta = np.zeros(6)
    full = estimator_moments(mdp, pol, theta, "reward_to_go")
    basis = estimator_moments(mdp, pol, theta, "reward_to_go", directions=np.eye(6))
    assert np.isclose(full.trace, np.trace(full.covariance)) and np.isclose(basis.trace, full.trace, rtol=1e-12)
    with pytest.raises(ValueError):
        full.mean[0] = 1.0  # read-only


def test_bad_input() -> None:
    mdp = random_mdp(3, 2, gamma=0.9, horizon=4, seed=0)
    pol = TabularSoftmax(3, 2)
    theta = np.zeros(6)
    assert set(ESTIMATORS) >= {"reinforce", "gae"}
    with pytest.raises(ValueError, match="estimator is 'nope', expected one of 'reinforce'"):
        estimator_moments(mdp, pol, theta, "nope")
    with pytest.raises(ValueError, match="needs b, a finite real number"):
        estimator_moments(mdp, pol, theta, "constant_baseline")
    with pytest.raises(ValueError, match=r"b must have shape \(3,\) or"):
        estimator_moments(mdp, pol, theta, "state_baseline", b=np.zeros(4))
    with pytest.raises(ValueError, match="needs A"):
        estimator_moments(mdp, pol, theta, "advantage")
    with pytest.raises(ValueError, match="needs V"):
        estimator_moments(mdp, pol, theta, "gae", V=np.zeros(3))
    with pytest.raises(ValueError, match="lam is 1.5"):
        estimator_moments(mdp, pol, theta, "gae", V=np.zeros(3), lam=1.5)
    with pytest.raises(ValueError, match=r"V must have shape \(S,\)=\(3,\)"):
        estimator_moments(mdp, pol, theta, "gae", V=np.zeros(5), lam=0.5)
    with pytest.raises(ValueError, match="horizon is 7, but the mdp has horizon 4"):
        estimator_moments(mdp, pol, theta, "reinforce", horizon=7)
    assert estimator_moments(mdp.with_horizon(None), pol, theta, "reinforce").horizon is None  # geometric stopping
    with pytest.raises(ValueError, match="'normalized_advantage' has no per-episode moments: its advantages are centred"):
        estimator_moments(mdp, pol, theta, "normalized_advantage")
    with pytest.raises(TypeError, match="estimator must be one of"):
        estimator_moments(mdp, pol, theta, np.array([]))
    with pytest.raises(ValueError, match=r"directions must have shape \(k, n_params\) with n_params=6"):
        estimator_moments(mdp, pol, theta, "reinforce", directions=np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"b\[1\] is nan, expected a finite number"):
        estimator_moments(mdp, pol, theta, "state_baseline", b=np.array([0.0, np.nan, 1.0]))
    with pytest.raises(TypeError, match="policy must be"):
        estimator_moments(mdp, object(), theta, "reinforce")
    big = gridworld(60, 60, gamma=0.9, horizon=10, sparse=True)
    with pytest.raises(ValueError, match="would need about .* GiB .* pass directions"):
        estimator_moments(big, TabularSoftmax(3600, 4), np.zeros(14400), "reinforce")


def test_research_figures_are_registered() -> None:
    from pgexact.figures import FIGURES, REGISTRY

    for name in ("estimator_variance", "optimal_baselines", "convergence_bounds", "average_reward"):
        assert name in FIGURES and "Source" in REGISTRY[name].caption


@pytest.mark.slow
def test_research_figures_render(tmp_path) -> None:  # noqa: ANN001 - about 10 s
    from pgexact.figures import render

    names = ["estimator_variance", "optimal_baselines", "convergence_bounds", "average_reward"]
    paths = render(names, out_dir=tmp_path, progress=False)
    assert [p.name for p in paths] == [f"{n}.png" for n in names]


def test_overflow_is_a_numerical_error() -> None:
    from pgexact import FiniteMDP
    from pgexact.errors import NumericalError

    base = random_mdp(2, 2, gamma=1.0, horizon=3, seed=0)
    mdp = FiniteMDP(base.P, 1e200 * (base.r + 2.0), base.mu0, 1.0, 3)
    with pytest.raises(NumericalError, match="overflow float64 .* rescale the rewards"):
        estimator_moments(mdp, TabularSoftmax(2, 2), np.zeros(4), "reinforce")


def test_reinforce_variance_grows_like_h_cubed_unless_rewards_are_centred_by_the_gain() -> None:
    # The course notes ("Policy Gradient", § Understanding the Variance Problem in REINFORCE) argue
    # Var(g) = O(T^2). On a continuing gridworld (gain rho > 0) the exact trace grows like H^3
    # (|sum psi|^2 ~ H times R^2 ~ H^2); with rewards centred by the gain it grows like H^2, and
    # with the exact advantage like H.
    from pgexact import FiniteMDP, average
    from pgexact.figures._research import continuing_gridworld

    mdp = continuing_gridworld()
    pol = TabularSoftmax(25, 4)
    theta = 0.5 * np.random.default_rng(0).standard_normal(100)
    pi = pol.probs(theta)
    centred = FiniteMDP(mdp.P, mdp.r - average.evaluate(mdp, pi).rho, mdp.mu0, 1.0, 1)
    H = np.array([100, 200])

    def slope(m, name, **kw):  # noqa: ANN001, ANN202
        v = [estimator_moments(m.with_horizon(int(h)), pol, theta, name, **kw).trace for h in H]
        return float(np.log(v[1] / v[0]) / np.log(2.0))

    assert abs(slope(mdp, "reinforce") - 3.0) < 0.1
    assert abs(slope(centred, "reinforce") - 2.0) < 0.1
    ev = evaluate(mdp.with_horizon(200), pi)
    ev100 = evaluate(mdp.with_horizon(100), pi)
    a = [estimator_moments(mdp.with_horizon(100), pol, theta, "advantage", A=ev100.A).trace,
         estimator_moments(mdp.with_horizon(200), pol, theta, "advantage", A=ev.A).trace]
    assert abs(np.log(a[1] / a[0]) / np.log(2.0) - 1.0) < 0.2



@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), S=st.integers(1, 3), A=st.integers(1, 3), H=st.integers(1, 4),
       gamma=st.sampled_from([0.0, 0.5, 1.0]), name=st.sampled_from(["reinforce", "reward_to_go", "gae"]))
def test_property_recursion_equals_enumeration(seed: int, S: int, A: int, H: int, gamma: float, name: str) -> None:
    # any small MDP, including one state, one action and gamma = 0 (degenerate weights)
    rng = np.random.default_rng(seed)
    mdp = random_mdp(S, A, gamma=gamma, horizon=H, seed=rng, concentration=0.3)
    pol = TabularSoftmax(S, A)
    theta = 2.0 * rng.standard_normal(pol.n_params)
    trajs, prob = enumerate_trajectories(mdp, pol.probs(theta))
    V, lam = rng.standard_normal(S), float(rng.uniform())
    est = {"reinforce": lambda: reinforce(trajs, pol, theta), "reward_to_go": lambda: reward_to_go(trajs, pol, theta),
           "gae": lambda: gae_gradient(trajs, pol, theta, V, lam)}[name]()
    mom = estimator_moments(mdp, pol, theta, name, **({"V": V, "lam": lam} if name == "gae" else {}))
    cov = exact_covariance(est.samples, prob)
    scale = max(1.0, float(np.abs(cov).max()))
    assert np.abs(mom.covariance - cov).max() <= TOL * scale
    assert np.linalg.eigvalsh(mom.covariance).min() >= -TOL * scale


@pytest.mark.parametrize("call", ["enumerate_trajectories", "estimator_moments", "optimal_baselines"])
def test_a_malformed_horizon_is_named_before_it_is_compared(call):
    """A finite-horizon mdp with horizon=<an empty array>: a TypeError naming ``horizon``, not
    numpy's ambiguous-truth-value error from comparing the array with the mdp's horizon."""
    from pgexact import TabularSoftmax
    from pgexact import estimators as E
    from pgexact.mdps import random_mdp

    mdp = random_mdp(3, 2, gamma=1.0, horizon=3, seed=0)
    pol, theta = TabularSoftmax(3, 2), np.zeros(6)
    calls = {
        "enumerate_trajectories": lambda h: E.enumerate_trajectories(mdp, pol.probs(theta), horizon=h),
        "estimator_moments": lambda h: E.estimator_moments(mdp, pol, theta, "reinforce", horizon=h),
        "optimal_baselines": lambda h: E.optimal_baselines(mdp, pol, theta, horizon=h),
    }
    with pytest.raises(TypeError, match="horizon must be a positive integer"):
        calls[call](np.array([]))
