"""Errata of the course notes: every witness separates the printed from the corrected statement,
and the corrected statements hold on random instances (independent references: trajectory
enumeration, batch enumeration, central differences, a numerical optimizer)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

from pgexact import TabularSoftmax, LinearSoftmax
from pgexact.errata import ERRATA, Erratum, Witness, format_errata, get, ppo_clipped_objective
from pgexact.exact import (
    evaluate,
    fisher,
    natural_gradient,
    policy_gradient,
    reinforce_by_enumeration,
    state_marginals,
    tv_max,
    tv_per_state,
)
from pgexact.mdps import bandit, random_mdp

SEEDS = st.integers(0, 2**31 - 1)


@pytest.mark.parametrize("erratum", ERRATA, ids=[e.id for e in ERRATA])
def test_every_witness_separates(erratum: Erratum) -> None:
    w = erratum.witness()
    assert isinstance(w, Witness)
    assert w.separates, w
    assert all(np.isfinite([w.printed, w.corrected, w.reference]))
    # deterministic: the same numbers every time
    assert erratum.witness() == w


@pytest.mark.parametrize("erratum", ERRATA, ids=[e.id for e in ERRATA])
def test_witness_margins_are_not_rounding(erratum: Erratum) -> None:
    """The printed statement misses by far more than rounding error; the corrected one is on the reference."""
    w = erratum.witness()
    scale = max(1.0, abs(w.reference))
    if w.kind == "identity":
        assert abs(w.printed - w.reference) > 1e-2 * scale
        assert abs(w.corrected - w.reference) <= w.tolerance * scale
    elif w.kind == "upper bound":
        assert w.reference - w.printed > 1e-2 * scale
    else:
        assert w.printed - w.reference > 1e-2 * scale


def test_ids_unique_and_get() -> None:
    assert len({e.id for e in ERRATA}) == len(ERRATA)
    assert get("softmax-normalizer").id == "softmax-normalizer"
    with pytest.raises(ValueError, match="valid ids: .*softmax-normalizer"):
        get("no-such-erratum")


def test_format_errata_lists_everything() -> None:
    text = format_errata()
    for e in ERRATA:
        assert e.id in text and e.printed in text and e.corrected in text
    assert text.count("-> separates") == len(ERRATA)
    assert "DOES NOT SEPARATE" not in text


def test_erratum_is_frozen() -> None:
    with pytest.raises(AttributeError):
        ERRATA[0].id = "x"  # type: ignore[misc]


# ---------------------------------------------------------------- corrected statements on random instances
def _random_policy(rng: np.random.Generator, S: int, A: int) -> np.ndarray:
    return rng.dirichlet(np.ones(A), size=S)


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS)
def test_drift_bound_with_tv_holds(seed: int) -> None:
    """Σ_s |p'_t − p_t| ≤ 2 t max_s TV(π', π) for all t (Kakade & Langford 2002 / Schulman et al. 2015 coupling)."""
    rng = np.random.default_rng(seed)
    mdp = random_mdp(4, 3, gamma=0.9, seed=rng)
    pi, pi_new = _random_policy(rng, 4, 3), _random_policy(rng, 4, 3)
    T = 8
    drift = np.abs(state_marginals(mdp, pi_new, T) - state_marginals(mdp, pi, T)).sum(axis=1)
    assert np.all(drift <= 2 * tv_max(pi_new, pi) * np.arange(T) + 1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS)
def test_expectation_bound_with_abs_f_holds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mdp = random_mdp(4, 3, gamma=0.9, seed=rng)
    pi, pi_new = _random_policy(rng, 4, 3), _random_policy(rng, 4, 3)
    f = rng.standard_normal(4) - 1.0
    T = 6
    p, p_new = state_marginals(mdp, pi, T), state_marginals(mdp, pi_new, T)
    eps = tv_max(pi_new, pi)
    for t in range(T):
        assert p_new[t] @ f >= p[t] @ f - 2 * eps * t * np.abs(f).max() - 1e-12


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS)
def test_maximal_coupling_agrees_with_probability_one_minus_tv(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p, q = rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(5))
    eps = float(tv_per_state(p[None], q[None])[0])
    common = np.minimum(p, q)
    coupling = np.diag(common) + np.outer(p - common, q - common) / eps
    np.testing.assert_allclose(coupling.sum(axis=1), p, atol=1e-14)
    np.testing.assert_allclose(coupling.sum(axis=0), q, atol=1e-14)
    assert np.all(coupling >= 0)
    assert np.trace(coupling) == pytest.approx(1 - eps, abs=1e-14)


@settings(max_examples=10, deadline=None)
@given(seed=SEEDS, delta=st.sampled_from([1e-3, 1e-2, 1e-1]))
def test_corrected_npg_step_solves_the_trust_region_problem(seed: int, delta: float) -> None:
    """η = √(2δ/∇JᵀF⁻¹∇J) matches a numerical solution of max ∇Jᵀx s.t. ½xᵀFx ≤ δ (SLSQP, ftol 1e-15)."""
    rng = np.random.default_rng(seed)
    mdp = random_mdp(3, 3, gamma=0.9, seed=rng)
    pol = LinearSoftmax(rng.standard_normal((3, 3, 2)))
    theta = rng.standard_normal(2)
    g, F, w = policy_gradient(mdp, pol, theta), fisher(mdp, pol, theta), natural_gradient(mdp, pol, theta)
    if np.linalg.cond(F) > 1e8:  # the comparison needs an invertible F
        return
    eta = np.sqrt(2 * delta / (g @ w))
    assert 0.5 * (eta * w) @ F @ (eta * w) == pytest.approx(delta, rel=1e-10)
    cons = {"type": "ineq", "fun": lambda x: delta - 0.5 * x @ F @ x, "jac": lambda x: -(F @ x)}
    res = scipy.optimize.minimize(lambda x: -(g @ x), np.zeros(2), jac=lambda x: -g, constraints=[cons],
                                  method="SLSQP", options={"ftol": 1e-15, "maxiter": 500})
    # SLSQP stops at ~1e-8 relative accuracy of the maximizer on these well-conditioned 2-D problems
    np.testing.assert_allclose(res.x, eta * w, rtol=1e-5, atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, gamma=st.sampled_from([0.5, 0.8, 1.0]))
def test_discounted_reward_to_go_is_unbiased(seed: int, gamma: float) -> None:
    """Σ_t γ^t E_{p_t}[∇log π Q_t] equals REINFORCE by trajectory enumeration; without γ^t it does not (γ < 1)."""
    rng = np.random.default_rng(seed)
    mdp = random_mdp(2, 2, gamma=gamma, horizon=3, seed=rng)
    pol, theta = TabularSoftmax(2, 2), rng.standard_normal(4)
    pi = pol.probs(theta)
    ev = evaluate(mdp, pi)
    terms = [pol.score_contract(theta, ev.p[t][:, None] * pi * ev.Q[t]) for t in range(3)]
    ref = reinforce_by_enumeration(mdp, pol, theta).reinforce
    np.testing.assert_allclose(sum(gamma**t * x for t, x in enumerate(terms)), ref, rtol=1e-10, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, N=st.integers(2, 4))
def test_batch_mean_baseline_bias_factor_and_leave_one_out(seed: int, N: int) -> None:
    """Batch-mean baseline: E[ĝ] = (1 − 1/N)∇J; leave-one-out baseline: E[ĝ] = ∇J (exact batch enumeration)."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal(3)
    pol, theta = TabularSoftmax(1, 3), rng.standard_normal(3)
    pi, score = pol.probs(theta)[0], pol.score(theta)[0]
    g = policy_gradient(bandit(means), pol, theta)
    mean_b, loo_b = np.zeros(3), np.zeros(3)
    for actions in itertools.product(range(3), repeat=N):
        a = np.array(actions)
        G, prob = means[a], np.prod(pi[a])
        mean_b += prob * (score[a] * (G - G.mean())[:, None]).mean(axis=0)
        loo = (G.sum() - G) / (N - 1)
        loo_b += prob * (score[a] * (G - loo)[:, None]).mean(axis=0)
    np.testing.assert_allclose(mean_b, (1 - 1 / N) * g, atol=1e-13)
    np.testing.assert_allclose(loo_b, g, atol=1e-13)


@settings(max_examples=15, deadline=None)
@given(seed=SEEDS)
def test_expected_hessian_of_log_pi_is_minus_fisher(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pol = LinearSoftmax(rng.standard_normal((1, 4, 2)))
    theta0 = rng.standard_normal(2)
    pi0 = pol.probs(theta0)[0]
    F = fisher(bandit(np.zeros(4)), pol, theta0)
    h = 1e-4
    H = np.empty((2, 2))
    for i, j in itertools.product(range(2), repeat=2):
        ei, ej = np.eye(2)[i] * h, np.eye(2)[j] * h
        f = lambda t: pi0 @ pol.log_probs(t)[0]  # noqa: E731
        H[i, j] = (f(theta0 + ei + ej) - f(theta0 + ei - ej) - f(theta0 - ei + ej) + f(theta0 - ei - ej)) / (4 * h * h)
    # second differences at h = 1e-4: truncation ~h², rounding ~1e-16/h² ≈ 1e-8 each
    np.testing.assert_allclose(H, -F, atol=1e-6 * max(1.0, np.abs(F).max()))


@settings(max_examples=50, deadline=None)
@given(r=st.floats(0.01, 3.0), A=st.floats(-2.0, 2.0).filter(lambda a: abs(a) > 1e-3), eps=st.floats(0.05, 0.5))
def test_ppo_clipped_objective_is_flat_only_on_the_improving_side(r: float, A: float, eps: float) -> None:
    h = 1e-7
    if min(abs(r - (1 - eps)), abs(r - (1 + eps))) < 10 * h:
        return  # kink
    slope = (ppo_clipped_objective(r + h, A, eps) - ppo_clipped_objective(r - h, A, eps)) / (2 * h)
    flat = (A > 0 and r > 1 + eps) or (A < 0 and r < 1 - eps)
    assert slope == pytest.approx(0.0 if flat else A, abs=1e-6)
