"""The average-reward objective: gain, bias, gradient; discounted limits with their rates; multichain errors."""

from __future__ import annotations

import numpy as np
import pytest

import pgexact
from pgexact import FiniteMDP, LinearSoftmax, TabularSoftmax, average, evaluate, policy_gradient
from pgexact.exact import stationary_distribution
from pgexact.errors import MultichainError, NotUniqueError
from pgexact.mdps import random_mdp
from pgexact.theorems.registry import CONTROL_FACTOR, get


def _problem(seed: int):
    rng = np.random.default_rng(seed)
    S, A = int(rng.integers(2, 6)), int(rng.integers(2, 4))
    mdp = random_mdp(S, A, gamma=0.9, seed=rng)
    pol = LinearSoftmax(rng.standard_normal((S, A, 3))) if seed % 2 else TabularSoftmax(S, A)
    return mdp, pol, rng.standard_normal(pol.n_params)


@pytest.mark.parametrize("seed", range(6))
def test_evaluation_solves_the_poisson_equation(seed: int) -> None:
    mdp, pol, theta = _problem(seed)
    pi = pol.probs(theta)
    ev = average.evaluate(mdp, pi)
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    r_pi = (pi * mdp.r).sum(axis=1)
    assert np.allclose(ev.d, stationary_distribution(mdp, pi), atol=1e-13)  # SVD null space route
    assert np.isclose(ev.rho, ev.d @ r_pi, atol=1e-14)
    assert np.allclose(ev.h + ev.rho, r_pi + P_pi @ ev.h, atol=1e-12) and abs(ev.d @ ev.h) < 1e-13
    assert np.allclose(ev.Q, mdp.r - ev.rho + np.einsum("sat,t->sa", mdp.P, ev.h), atol=1e-12)
    assert np.allclose((pi * ev.A).sum(axis=1), 0.0, atol=1e-12)
    with pytest.raises(ValueError):
        ev.h[0] = 1.0


def test_gamma_and_horizon_are_ignored() -> None:
    mdp, pol, theta = _problem(0)
    pi = pol.probs(theta)
    a = average.evaluate(mdp, pi)
    b = average.evaluate(mdp.with_horizon(7, gamma=1.0), pi)
    assert a.rho == b.rho and np.array_equal(a.h, b.h)


@pytest.mark.parametrize("seed", range(4))
def test_gradient_against_central_differences(seed: int) -> None:
    mdp, pol, theta = _problem(seed)
    g = average.policy_gradient(mdp, pol, theta)
    rho = lambda th: average.evaluate(mdp, pol.probs(th)).rho  # noqa: E731
    h = 1e-5
    fd = np.array([(rho(theta + h * e) - rho(theta - h * e)) / (2 * h) for e in np.eye(pol.n_params)])
    # central differences: truncation O(h^2) ~ 1e-10, rounding ~ 1e-16 / h ~ 1e-11
    assert np.allclose(g, fd, rtol=1e-7, atol=1e-8)


def test_discounted_limits_and_their_rates() -> None:
    # Laurent expansion: (1-gamma) J_gamma = rho + (1-gamma) mu0.h + O((1-gamma)^2), and
    # (1-gamma) grad J_gamma -> grad rho at rate O(1-gamma)
    mdp, pol, theta = _problem(2)
    pi = pol.probs(theta)
    ev = average.evaluate(mdp, pi)
    grad = average.policy_gradient(mdp, pol, theta)
    errs, gerrs = [], []
    eps = np.array([1e-2, 1e-3, 1e-4])
    for e in eps:
        m = mdp.with_horizon(None, gamma=1.0 - e)
        errs.append(abs(e * evaluate(m, pi).J - ev.rho - e * (mdp.mu0 @ ev.h)))
        gerrs.append(np.abs(e * policy_gradient(m, pol, theta) - grad).max())
    errs, gerrs = np.array(errs), np.array(gerrs)
    # second order: a factor 10 in 1-gamma is a factor ~100 in the error (rounding ~1e-12 at 1e-4)
    assert np.all(errs[1:] < errs[:-1] / 50) and errs[-1] < 1e-6
    # first order for the gradient
    ratios = gerrs[:-1] / gerrs[1:]
    assert np.all((ratios > 7) & (ratios < 13)), ratios


def test_unichain_with_transient_states_and_periodic_chain() -> None:
    # state 0 transient; states 1, 2 a deterministic 2-cycle (period 2): still unichain
    P = np.zeros((3, 1, 3))
    P[0, 0] = [0.0, 0.5, 0.5]
    P[1, 0, 2] = P[2, 0, 1] = 1.0
    mdp = FiniteMDP(P, [[5.0], [1.0], [3.0]], [1.0, 0.0, 0.0], gamma=0.5)
    ev = average.evaluate(mdp, np.ones((3, 1)))
    assert np.allclose(ev.d, [0.0, 0.5, 0.5]) and np.isclose(ev.rho, 2.0)
    # h1 + 2 = 1 + h2 and h1 + h2 = 0 (d.h = 0): h = (-1/2, 1/2) on the cycle; h0 = 5 - 2 + (h1 + h2)/2
    assert np.allclose(ev.h, [3.0, -0.5, 0.5], atol=1e-14)


def test_multichain_is_refused_with_the_classes() -> None:
    P = np.zeros((3, 2, 3))
    P[0, :, 0] = 1.0  # absorbing
    P[2, :, 2] = 1.0  # absorbing
    P[1, 0, 0] = P[1, 1, 2] = 1.0
    mdp = FiniteMDP(P, np.ones((3, 2)), [0.0, 1.0, 0.0], gamma=0.9)
    with pytest.raises(average.MultichainError, match=r"multichain: 2 closed classes of states \(\{0\}; \{2\}\)") as info:
        average.evaluate(mdp, np.full((3, 2), 0.5))
    assert [c.tolist() for c in info.value.classes] == [[0], [2]]
    assert isinstance(info.value, ValueError) and isinstance(info.value, NotUniqueError)
    assert average.MultichainError is MultichainError
    with pytest.raises(average.MultichainError):
        average.policy_gradient(mdp, TabularSoftmax(3, 2), np.zeros(6))
    # both absorbing states stay closed whatever the policy
    assert len(average.closed_classes(np.einsum("sa,sat->st", np.full((3, 2), 0.5), P))) == 2


def test_bad_input() -> None:
    mdp, pol, theta = _problem(0)
    with pytest.raises(ValueError, match="pi"):
        average.evaluate(mdp, np.ones((mdp.n_states, mdp.n_actions)))
    with pytest.raises(TypeError, match="mdp must be a pgexact.FiniteMDP"):
        average.evaluate("mdp", pol.probs(theta))
    with pytest.raises(ValueError, match="theta"):
        average.policy_gradient(mdp, pol, np.zeros(pol.n_params + 2))
    assert pgexact.average is average


@pytest.mark.parametrize("theorem_id", ["average.gain_is_discounted_limit", "average.bias_is_discounted_limit",
                                        "average.policy_gradient"])
def test_theorem_holds_and_controls_have_power(theorem_id: str) -> None:
    thm = get(theorem_id)
    rng = np.random.default_rng(5)
    insts = [thm.instance(rng) for _ in range(30)]
    assert max(thm.outcome(i).residual for i in insts) <= thm.tolerance
    for c in thm.controls:
        assert np.mean([c.residual(i) >= CONTROL_FACTOR * thm.tolerance for i in insts]) >= 0.9, c.name


def test_nearly_multichain_is_solved_from_the_off_diagonal_entries_or_refused() -> None:
    from pgexact.errors import SingularSystemError

    # two absorbing states joined by transitions of probability 1e-300: structurally one class,
    # numerically two for LU (the rows still sum to 1 in float64); the structured elimination
    # uses the off-diagonal entries only: d = (1/2, 1/2), rho = 1/2, h = +-1/(4e-300)
    P = np.zeros((2, 1, 2))
    P[0, 0] = [1.0, 1e-300]
    P[1, 0] = [1e-300, 1.0]
    mdp = FiniteMDP(P, [[1.0], [0.0]], [1.0, 0.0], gamma=0.9)
    assert len(average.closed_classes(P[:, 0, :])) == 1
    ev = average.evaluate(mdp, np.ones((2, 1)))
    assert ev.rho == 0.5 and ev.d.tolist() == [0.5, 0.5]
    assert np.allclose(ev.h, [0.25e300, -0.25e300], rtol=1e-15, atol=0)
    P[0, 0], P[1, 0] = [1.0, 1e-310], [1e-310, 1.0]  # h ~ 1e310: beyond float64
    with pytest.raises(SingularSystemError, match="nearly multichain"):
        average.evaluate(FiniteMDP(P, [[1.0], [0.0]], [1.0, 0.0], gamma=0.9), np.ones((2, 1)))


def test_evaluation_records_store_what_they_are_given() -> None:
    h = np.zeros(2)
    ev = average.AverageEvaluation(rho=None, h=h, Q="x", A=None, d=[0.5, 0.5])
    assert ev.Q == "x" and ev.d == [0.5, 0.5] and not h.flags.writeable
    ev = pgexact.exact.Evaluation(J=None, V=np.zeros(2), Q=None, A=None, d="x", p=None, residual=None)
    assert ev.d == "x" and not ev.V.flags.writeable


@pytest.mark.parametrize(
    ("P_pi", "error", "match"),
    [
        (None, TypeError, r"^P_pi must be an array of real numbers"),
        ("x", TypeError, r"^P_pi must be an array of real numbers"),
        ([[1, 2], [3]], TypeError, r"^P_pi must be an array of real numbers"),
        ([], ValueError, r"^P_pi must have 2 dimension"),
        ([[]], ValueError, r"^P_pi must be a non-empty square matrix"),
        (np.ones((2, 3)), ValueError, r"^P_pi must be a non-empty square matrix, got shape \(2, 3\)"),
        ([[1.0, np.nan], [0.0, 1.0]], ValueError, r"^P_pi\[0, 1\] is nan"),
        ([[1.0, -0.5], [0.0, 1.0]], ValueError, r"^P_pi\[0, 1\] is -0.5, expected >= 0"),
        (np.array(["a", "b"]), TypeError, r"^P_pi must be an array of real numbers"),
    ],
)
def test_closed_classes_refuses_malformed_matrices(P_pi, error, match) -> None:
    with pytest.raises(error, match=match):
        average.closed_classes(P_pi)


def test_closed_classes_checks_sparse_input_and_agrees_with_dense() -> None:
    import scipy.sparse

    P = np.array([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.0, 1.0]])
    got = average.closed_classes(scipy.sparse.csr_array(P))
    assert [c.tolist() for c in got] == [[0], [2]]
    with pytest.raises(ValueError, match=r"^P_pi\[1, 0\] is -0.5, expected a finite number >= 0"):
        average.closed_classes(scipy.sparse.csr_array(P * [[1], [-1], [1]]))
    with pytest.raises(ValueError, match=r"^P_pi must be a square real matrix"):
        average.closed_classes(scipy.sparse.csr_array(np.ones((2, 3))))


@pytest.mark.parametrize(
    ("classes", "error", "match"),
    [
        (None, TypeError, r"^classes must be a list of arrays of state indices, got NoneType"),
        ("x", TypeError, r"^classes must be a list"),
        (np.array([-1.0, -1.0]), TypeError, r"^classes must be a list"),
        ([np.array([0.5])], TypeError, r"^classes\[0\] must be a 1-D array of state indices"),
        ([[0], [-1]], ValueError, r"^classes\[1\] holds the negative state index -1"),
    ],
)
def test_multichain_error_checks_its_classes(classes, error, match) -> None:
    with pytest.raises(error, match=match):
        average.MultichainError(classes)
    err = average.MultichainError([np.array([0]), [1, 2]])
    assert "2 closed classes of states ({0}; {1, 2})" in str(err)


def test_too_many_states_is_refused_with_the_memory_it_would_need(monkeypatch) -> None:
    monkeypatch.setattr(average.evaluation, "MAX_DENSE_STATES", 2)  # the constant's home module
    with pytest.raises(ValueError, match=r"^mdp has S=3 states, more than MAX_DENSE_STATES=2: .* would need 72 bytes"):
        average.evaluate(random_mdp(3, 2, gamma=0.9, seed=0), np.full((3, 2), 0.5))
