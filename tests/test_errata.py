"""Errata of the course notes.

Every numerical witness separates the printed from the corrected statement by far more than
rounding, its two computations of the truth agree, and swapping printed and corrected breaks it;
every erratum has the required fields and cites the notes by title and section heading (never a
file); the corrected statements hold on random instances (independent references: trajectory or
batch enumeration, central differences, a constrained optimizer, closed forms of other modules).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

from pgexact import FiniteMDP, LinearSoftmax, TabularSoftmax
from pgexact.errata import ERRATA, NOTES, Erratum, Location, Witness, format_errata, get, ppo_clipped_objective
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
from pgexact.lqr import LQR, LinearGaussian, cost_gradient
from pgexact.mdps import bandit, random_mdp

SEEDS = st.integers(0, 2**31 - 1)
NUMERIC = [e for e in ERRATA if e.witnessable]
_WITNESSES: dict[str, Witness] = {}


def witness_of(erratum: Erratum) -> Witness:
    """Each witness computed once per test session (the slowest takes ~0.3 s)."""
    if erratum.id not in _WITNESSES:
        _WITNESSES[erratum.id] = erratum.witness()
    return _WITNESSES[erratum.id]


# ---------------------------------------------------------------- the catalogue
@pytest.mark.parametrize("erratum", NUMERIC, ids=[e.id for e in NUMERIC])
def test_witness_separates_printed_from_corrected(erratum: Erratum) -> None:
    w = witness_of(erratum)
    assert isinstance(w, Witness)
    assert np.all(np.isfinite([w.printed, w.corrected, w.reference, w.reference_check, w.tolerance]))
    assert 0 < w.tolerance < 1e-2, "a witness's tolerance must be far below its margin"
    scale = max(1.0, abs(w.reference))
    # the two computations of the truth agree
    assert abs(w.reference - w.reference_check) <= w.tolerance * scale, w
    if w.kind == "identity":
        assert abs(w.corrected - w.reference) <= w.tolerance * scale, w
        miss = abs(w.printed - w.reference)
    elif w.kind == "upper bound":
        assert w.reference <= w.corrected + w.tolerance * scale, w
        miss = w.reference - w.printed
    else:
        assert w.kind == "lower bound"
        assert w.reference >= w.corrected - w.tolerance * scale, w
        miss = w.printed - w.reference
    # the printed statement misses by far more than rounding and the error of the references
    assert miss >= max(1e-2, 100 * w.tolerance) * scale, w
    assert w.separates


@pytest.mark.parametrize("erratum", NUMERIC, ids=[e.id for e in NUMERIC])
def test_swapping_printed_and_corrected_breaks_the_witness(erratum: Erratum) -> None:
    """Break-check: the witness cannot pass with the roles exchanged (nor with the truth replaced)."""
    w = witness_of(erratum)
    swapped = dataclasses.replace(w, printed=w.corrected, corrected=w.printed)
    assert not swapped.separates
    # a truth confirmed by a second computation that disagrees fails too
    off = dataclasses.replace(w, reference_check=w.reference + 0.5 * abs(w.printed - w.reference) + 1e-3)
    assert not off.separates


def test_witnesses_are_deterministic() -> None:
    for e in NUMERIC:
        if e.id != "sgd-rate":  # the slowest; it has no randomness either
            assert e.witness() == witness_of(e)


_PATH = re.compile(r"[/\\]|\.(txt|md|py|ipynb|pdf|html?)\b|[0-9a-f]{10,}|seeds", re.IGNORECASE)


def test_no_location_contains_a_file_path() -> None:
    for e in ERRATA:
        assert not _PATH.search(e.location), (e.id, e.location)
        for loc in e.locations:
            assert not _PATH.search(loc.note) and not _PATH.search(loc.section), (e.id, loc)
    assert not _PATH.search("Advanced Policy Gradients, § \"Bounding the Error\"")
    assert _PATH.search("003_679b8cdb08266a71.txt (Policy Gradient)")  # the check can fail


def test_errata_sources_do_not_point_at_the_notes_files() -> None:
    src = Path(__file__).resolve().parents[1] / "pgexact" / "errata"
    for f in src.glob("*.py"):
        text = f.read_text(encoding="utf-8")
        assert "shared/seeds" not in text and ".txt" not in text, f.name


def test_references_list_every_note_and_every_cited_section() -> None:
    path = Path(__file__).resolve().parents[1] / "REFERENCES.md"
    text = " ".join(path.read_text(encoding="utf-8").split())  # lines are wrapped
    for note in NOTES:
        assert note in text, note
    for e in ERRATA:
        assert f"`{e.id}`" in text, e.id
        for loc in e.locations:
            assert loc.section in text, (e.id, loc.section)
    assert not re.search(r"seeds|[0-9a-f]{12,}|\.txt\b", text)


def test_every_erratum_has_the_required_fields() -> None:
    assert len(ERRATA) >= 20
    for e in ERRATA:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", e.id), e.id
        assert e.printed.strip() and e.corrected.strip() and e.why.strip(), e.id
        assert e.printed != e.corrected, e.id
        assert e.locations and all(isinstance(loc, Location) for loc in e.locations), e.id
        for loc in e.locations:
            assert loc.note in NOTES and loc.section.strip(), (e.id, loc)
        if e.witnessable:
            assert callable(e.witness) and not e.not_witnessable, e.id
        else:
            assert e.not_witnessable.strip(), e.id
    # every note is cited somewhere
    assert {loc.note for e in ERRATA for loc in e.locations} == set(NOTES)


def test_the_two_conventions_are_not_errata() -> None:
    """The average-value objective Σ_s d(s)V(s) of continuing tasks and the explicit proportionality
    constant of the policy gradient theorem are conventions, not errors."""
    ids = {e.id for e in ERRATA}
    assert "objective-stationary" not in ids and "pg-theorem-constant" not in ids
    for e in ERRATA:
        assert not e.printed.startswith("J(θ) = E_τ[R(τ)] = Σ_s d^π(s) V^π(s)")


def test_erratum_validation() -> None:
    loc = Location(NOTES[0], "Bounding the Error")
    with pytest.raises(ValueError, match="witness or say in not_witnessable why"):
        Erratum("x", (loc,), "a", "b", "c")
    with pytest.raises(ValueError, match="locations must hold at least one Location"):
        Erratum("x", (), "a", "b", "c", not_witnessable="a word")
    with pytest.raises(ValueError, match="note must be one of"):
        Location("some_file.txt", "Bounding the Error")
    assert str(Location(NOTES[0], "S", "proof")) == f'{NOTES[0]}, § "S" (proof)'


def test_ids_unique_and_get() -> None:
    assert len({e.id for e in ERRATA}) == len(ERRATA)
    assert get("softmax-normalizer").id == "softmax-normalizer"
    with pytest.raises(ValueError, match="valid ids: .*softmax-normalizer"):
        get("no-such-erratum")


def test_format_errata_lists_everything() -> None:
    text = format_errata()
    for e in ERRATA:
        assert e.id in text and e.printed in text and e.corrected in text and e.location in text
    assert text.count("-> separates") == len(NUMERIC)
    assert text.count("not numerically witnessable") == len(ERRATA) - len(NUMERIC)
    assert "DOES NOT SEPARATE" not in text


def test_erratum_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ERRATA[0].id = "x"  # type: ignore[misc]


# ---------------------------------------------------------------- corrected statements on random instances
def _random_policy(rng: np.random.Generator, S: int, A: int) -> np.ndarray:
    return rng.dirichlet(np.ones(A), size=S)


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS)
def test_drift_bound_with_tv_holds(seed: int) -> None:
    """Σ_s |p'_t − p_t| ≤ 2 t max_s TV(π', π) for all t (coupling; Schulman et al. 2015, Lemma 3)."""
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
def test_discounted_reward_to_go_and_advantage_are_unbiased(seed: int, gamma: float) -> None:
    """Σ_t γ^t E_{p_t}[∇log π Q_t] and Σ_t γ^t E_{p_t}[∇log π A_t] equal REINFORCE by trajectory enumeration."""
    rng = np.random.default_rng(seed)
    mdp = random_mdp(2, 2, gamma=gamma, horizon=3, seed=rng)
    pol, theta = TabularSoftmax(2, 2), rng.standard_normal(4)
    pi = pol.probs(theta)
    ev = evaluate(mdp, pi)
    ref = reinforce_by_enumeration(mdp, pol, theta).reinforce
    for W in (ev.Q, ev.A):
        terms = [pol.score_contract(theta, ev.p[t][:, None] * pi * W[t]) for t in range(3)]
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


@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, gamma=st.sampled_from([0.5, 0.9, 0.99]))
def test_dpg_theorem_weights_states_by_discounted_visitation(seed: int, gamma: float) -> None:
    """On random LQRs, −2E_K Σ_K (states weighted by the discounted visitation from D = N(0, Σ0)) is ∇J."""
    rng = np.random.default_rng(seed)
    n = 2
    A = rng.standard_normal((n, n)) * 0.5
    B = rng.standard_normal((n, 1))
    K = rng.standard_normal((1, n)) * 0.1
    if max(abs(np.linalg.eigvals(np.sqrt(gamma) * (A - B @ K)))) > 0.9:
        return  # keep the gain comfortably stabilizing
    Qc, R, S0 = np.eye(n), np.array([[1.0]]), np.eye(n)
    AK = A - B @ K
    P = scipy.linalg.solve_discrete_lyapunov(np.sqrt(gamma) * AK.T, Qc + K.T @ R @ K)
    Sig = scipy.linalg.solve_discrete_lyapunov(np.sqrt(gamma) * AK, S0)
    E = (R + gamma * B.T @ P @ B) @ K - gamma * B.T @ P @ A
    ref = -cost_gradient(LQR(A=A, B=B, Q=Qc, R=R, Sigma0=S0, gamma=gamma), K)
    np.testing.assert_allclose(-2 * E @ Sig, ref, rtol=1e-8, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(K=st.floats(-2, 2), ls=st.floats(-1.5, 1.0), x=st.floats(-2, 2), a=st.floats(-3, 3))
def test_gaussian_score_with_learned_std(K: float, ls: float, x: float, a: float) -> None:
    """∂ ln N(a; −Kx, e^(2ℓ))/∂ℓ = (a − μ)²/σ² − 1 against pgexact's score and a central difference."""
    pol = LinearGaussian(1, 1, learn_log_std=True)
    theta = pol.params([[K]], [ls])
    mu, sigma = -K * x, np.exp(ls)
    expected = (a - mu) ** 2 / sigma**2 - 1
    assert pol.score(theta, [x], [a])[-1] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    h = 1e-6
    lp = lambda l: -0.5 * ((a - mu) / np.exp(l)) ** 2 - l  # noqa: E731  (log-density up to a constant)
    # central difference: truncation ~h², rounding ~1e-16·|lp|/h
    assert (lp(ls + h) - lp(ls - h)) / (2 * h) == pytest.approx(expected, abs=1e-6 * max(1.0, abs(expected)))


@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, gamma=st.sampled_from([0.5, 0.9]))
def test_soft_backup_with_discount_converges_to_soft_q(seed: int, gamma: float) -> None:
    rng = np.random.default_rng(seed)
    mdp = random_mdp(3, 2, gamma=gamma, seed=rng)
    pi = _random_policy(rng, 3, 2)
    log_pi = np.log(pi)
    Q = np.zeros((3, 2))
    for _ in range(400):  # contraction: error ≤ γ^400 · scale
        Q = mdp.r + gamma * mdp.P @ (pi * (Q - log_pi)).sum(axis=1)
    soft_v = evaluate(FiniteMDP(mdp.P, mdp.r - log_pi, mdp.mu0, gamma=gamma), pi).V
    np.testing.assert_allclose(Q, mdp.r + gamma * mdp.P @ soft_v, rtol=1e-10, atol=1e-10)


def _enumerated_gradient(mdp: FiniteMDP, pi: np.ndarray, weight) -> np.ndarray:
    """E[Σ_t ∇_θ log π(a_t|s_t) weight(t, s_t, a_t, G_t)] for tabular logits, over every trajectory."""
    S, A = pi.shape
    H = mdp.horizon
    total = np.zeros((S, A))
    for states in itertools.product(range(S), repeat=H):
        for actions in itertools.product(range(A), repeat=H):
            prob = mdp.mu0[states[0]]
            for t in range(H):
                prob *= pi[states[t], actions[t]]
                if t + 1 < H:
                    prob *= mdp.P[states[t], actions[t], states[t + 1]]
            if prob == 0.0:
                continue
            rewards = [mdp.r[states[t], actions[t]] for t in range(H)]
            g = np.zeros((S, A))
            for t in range(H):
                G_t = sum(rewards[t:])
                score = -pi[states[t]].copy()
                score[actions[t]] += 1.0
                g[states[t]] += score * weight(t, states[t], actions[t], G_t)
            total += prob * g
    return total.reshape(-1)


def test_an_inaccurate_state_baseline_leaves_reinforce_unbiased() -> None:
    """The survey's 'an inaccurately estimated baseline introduces bias' is false: exact enumeration.

    A baseline off by 3 (and by a different amount in each state and step) gives E[ĝ] = ∇J to
    rounding; the same offset made to depend on the action (the control) is biased.
    """
    P = np.random.default_rng(3).dirichlet(np.ones(2), size=(2, 2))
    r = np.array([[1.0, -0.5], [0.3, 2.0]])
    mdp = FiniteMDP(P, r, np.array([0.6, 0.4]), gamma=1.0, horizon=3)
    policy = TabularSoftmax(2, 2)
    theta = np.array([0.3, -0.2, 0.5, 0.1])
    pi = policy.probs(theta)
    grad = policy_gradient(mdp, policy, theta)
    V = evaluate(mdp, pi).V  # (H, S)
    wrong = V + 3.0 + np.arange(6).reshape(3, 2)  # inaccurate: off by 3 to 8
    unbiased = _enumerated_gradient(mdp, pi, lambda t, s, a, G: G - wrong[t, s])
    np.testing.assert_allclose(unbiased, grad, rtol=0, atol=1e-13)  # 64 paths, terms O(10)
    action_dependent = _enumerated_gradient(mdp, pi, lambda t, s, a, G: G - wrong[t, s] - 2.0 * a)
    assert np.max(np.abs(action_dependent - grad)) > 0.1


def test_records_and_lookup_refuse_malformed_arguments() -> None:
    loc = Location(NOTES[0], "section")
    ok = {"id": "x", "locations": (loc,), "printed": "p", "corrected": "c", "why": "w", "not_witnessable": "a word"}
    assert Erratum(**ok).location == f'{NOTES[0]}, § "section"'
    for field, bad, error, match in [
        ("id", None, TypeError, r"^id must be a str, got NoneType"),
        ("locations", "x", TypeError, r"^locations must be a tuple of Location"),
        ("locations", np.array([]), TypeError, r"^locations must be a tuple of Location"),
        ("locations", (), ValueError, r"locations must hold at least one Location"),
        ("witness", 3, TypeError, r"^witness must be a callable returning a Witness, or None, got int"),
        ("not_witnessable", np.array([]), TypeError, r"^not_witnessable must be a str"),
        ("not_witnessable", "", ValueError, r"give a witness or say in not_witnessable why there is none"),
    ]:
        with pytest.raises(error, match=match):
            Erratum(**{**ok, field: bad})
    for field, bad in [("note", np.array([])), ("section", None), ("detail", 1)]:
        with pytest.raises(TypeError, match=rf"^{field} must be a str"):
            Location(**{"note": NOTES[0], "section": "s", field: bad})
    with pytest.raises(TypeError, match=r"^erratum_id must be a str .*got list"):
        get([])
    with pytest.raises(ValueError, match=r"^erratum_id 'nope' is not a known erratum; valid ids: "):
        get("nope")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"ratio": None}, TypeError, r"^ratio must be an array of real numbers"),
        ({"ratio": "x"}, TypeError, r"^ratio must be an array of real numbers"),
        ({"ratio": [np.nan]}, ValueError, r"^ratio\[0\] is nan"),
        ({"ratio": [-1.0]}, ValueError, r"^ratio\[0\] is -1.0, expected a probability ratio >= 0"),
        ({"advantage": None}, TypeError, r"^advantage must be an array of real numbers"),
        ({"advantage": np.ones(3)}, ValueError, r"^ratio \(shape \(2,\)\) and advantage \(shape \(3,\)\) do not broadcast"),
        ({"eps": None}, TypeError, r"^eps must be a finite number >= 0"),
        ({"eps": -0.1}, ValueError, r"^eps must be a finite number >= 0, got -0.1"),
        ({"ratio": [1e12, 1.0], "advantage": -1e300}, ValueError, r"^ratio \* advantage overflows float64"),
    ],
)
def test_ppo_clipped_objective_refuses_malformed_input(kwargs: dict, error: type, match: str) -> None:
    args = {"ratio": [0.5, 1.5], "advantage": 2.0, "eps": 0.2, **kwargs}
    with pytest.raises(error, match=match):
        ppo_clipped_objective(**args)
    np.testing.assert_array_equal(ppo_clipped_objective([0.5, 1.5], 2.0, 0.2), [1.0, 2.4])
    # the clip keeps the objective finite when the unclipped product overflows on the other side
    assert ppo_clipped_objective([1e12], 1e300, 0.2).tolist() == [1.2e300]
