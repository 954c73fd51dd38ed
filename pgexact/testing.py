r"""Hypothesis strategies for property-testing code against pgexact.

Import these in your own test suite::

    from hypothesis import given
    from pgexact.testing import finite_mdps, tabular_problems

    @given(tabular_problems())
    def test_my_estimator(problem):
        mdp, policy, theta = problem
        ...

Random MDPs have Dirichlet transition rows (some rows sparse, with exact zeros), rewards in
[-1, 1], and either a discount in [0, 0.95] (infinite horizon) or a horizon 1..6 with a discount
in [0, 1]. Parameters include large magnitudes (up to ``max_magnitude``) so that near-deterministic
policies are exercised.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from .models.finite_mdp import FiniteMDP
from .sampling.rollout import rollout
from .sampling.trajectories import Trajectories
from .policies.softmax import LinearSoftmax, SoftmaxPolicy, TabularSoftmax

__all__ = [
    "enumerated_problems",
    "finite_mdps",
    "sampled_problems",
    "thetas",
    "tabular_problems",
    "linear_problems",
    "policy_problems",
    "policy_matrices",
    "assert_update_consistent",
]


def _rng(draw: Any) -> np.random.Generator:
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


@st.composite
def finite_mdps(
    draw: Any,
    *,
    min_states: int = 1,
    max_states: int = 6,
    min_actions: int = 1,
    max_actions: int = 4,
    discounted: bool | None = None,
    max_gamma: float = 0.95,
    max_horizon: int = 6,
) -> FiniteMDP:
    """A random finite MDP.

    Parameters
    ----------
    discounted : bool or None
        True: ``horizon=None`` with ``0 <= gamma <= max_gamma``; False: a horizon in
        ``1..max_horizon`` with ``0 <= gamma <= 1``; None: either.
    """
    S = draw(st.integers(min_states, max_states))
    A = draw(st.integers(min_actions, max_actions))
    rng = _rng(draw)
    sparse = draw(st.booleans())
    P = rng.dirichlet(np.ones(S), size=(S, A))
    if sparse and S > 1:
        # exact zeros in the transition rows (deterministic-ish dynamics)
        mask = rng.random((S, A, S)) < 0.5
        mask[np.arange(S), :, rng.integers(0, S, size=S)] = False
        P = np.where(mask, 0.0, P)
        P /= P.sum(axis=2, keepdims=True)
    r = rng.uniform(-1.0, 1.0, size=(S, A))
    mu0 = rng.dirichlet(np.ones(S))
    is_discounted = draw(st.booleans()) if discounted is None else discounted
    if is_discounted:
        gamma = draw(st.floats(0.0, max_gamma))
        return FiniteMDP(P, r, mu0, gamma, None)
    H = draw(st.integers(1, max_horizon))
    gamma = draw(st.sampled_from([1.0, 0.9, 0.5, 0.0]))
    return FiniteMDP(P, r, mu0, gamma, H)


@st.composite
def thetas(draw: Any, n_params: int, *, max_magnitude: float = 5.0, allow_large: bool = True) -> np.ndarray:
    """A parameter vector of length ``n_params``: normal entries scaled up to ``max_magnitude``,
    or (with ``allow_large``) occasionally entries as large as 1e3."""
    rng = _rng(draw)
    scale = draw(st.sampled_from([0.0, 0.1, 1.0, max_magnitude] + ([1e3] if allow_large else [])))
    return scale * rng.standard_normal(n_params)


@st.composite
def policy_matrices(draw: Any, n_states: int, n_actions: int) -> np.ndarray:
    """An (S, A) matrix of probability rows, sometimes with exact zeros."""
    rng = _rng(draw)
    pi = rng.dirichlet(np.full(n_actions, draw(st.sampled_from([0.2, 1.0, 5.0]))), size=n_states)
    return pi / pi.sum(axis=1, keepdims=True)


@st.composite
def tabular_problems(draw: Any, **mdp_kwargs: Any) -> tuple[FiniteMDP, TabularSoftmax, np.ndarray]:
    """``(mdp, TabularSoftmax, theta)``; keyword arguments go to :func:`finite_mdps`."""
    mdp = draw(finite_mdps(**mdp_kwargs))
    policy = TabularSoftmax(mdp.n_states, mdp.n_actions)
    return mdp, policy, draw(thetas(policy.n_params))


@st.composite
def linear_problems(
    draw: Any, *, max_features: int = 4, **mdp_kwargs: Any
) -> tuple[FiniteMDP, LinearSoftmax, np.ndarray]:
    """``(mdp, LinearSoftmax, theta)`` with standard normal features of dimension 1..max_features."""
    mdp = draw(finite_mdps(**mdp_kwargs))
    d = draw(st.integers(1, max_features))
    phi = _rng(draw).standard_normal((mdp.n_states, mdp.n_actions, d))
    policy = LinearSoftmax(phi)
    return mdp, policy, draw(thetas(d))


def policy_problems(**mdp_kwargs: Any) -> st.SearchStrategy[tuple[FiniteMDP, SoftmaxPolicy, np.ndarray]]:
    """Either a tabular or a linear-softmax problem."""
    return st.one_of(tabular_problems(**mdp_kwargs), linear_problems(**mdp_kwargs))


@st.composite
def sampled_problems(
    draw: Any, *, max_episodes: int = 64, **mdp_kwargs: Any
) -> tuple[FiniteMDP, SoftmaxPolicy, np.ndarray, Trajectories]:
    """``(mdp, policy, theta, trajectories)``: a policy problem and episodes sampled from it.

    Finite-horizon MDPs are sampled to their horizon, discounted ones with geometric stopping
    (the unbiased mode), with a seed drawn by hypothesis (so failures replay). Keyword
    arguments go to :func:`finite_mdps`; discounts are capped at 0.9 to keep episodes short.
    """
    mdp_kwargs.setdefault("max_gamma", 0.9)
    mdp, policy, theta = draw(policy_problems(**mdp_kwargs))
    n = draw(st.integers(2, max_episodes))
    seed = draw(st.integers(0, 2**32 - 1))
    geometric = mdp.horizon is None
    return mdp, policy, theta, rollout(mdp, policy.probs(theta), n, geometric=geometric, seed=seed)


@st.composite
def enumerated_problems(
    draw: Any, **mdp_kwargs: Any
) -> tuple[FiniteMDP, SoftmaxPolicy, np.ndarray, Trajectories, np.ndarray]:
    """``(mdp, policy, theta, trajectories, prob)``: every trajectory of a small finite-horizon
    problem with its probability (:func:`pgexact.estimators.enumerate_trajectories`), for exact
    expectations ``exact_mean(estimator(trajectories, policy, theta).samples, prob)``.

    At most 3 states, 2 actions and horizon 3 by default (at most 6^3 trajectories).
    """
    from .estimators.exact_moments import enumerate_trajectories

    kw = dict(max_states=3, max_actions=2, max_horizon=3, discounted=False)
    kw.update(mdp_kwargs)
    mdp, policy, theta = draw(policy_problems(**kw))
    trajs, prob = enumerate_trajectories(mdp, policy.probs(theta))
    return mdp, policy, theta, trajs, prob


def assert_update_consistent(
    update_fn: Any,
    convention: Any,
    *,
    mdp: FiniteMDP | None = None,
    logits: Any = None,
    values: Any = None,
    n_batches: int = 200,
    n_blocks: int = 20,
    seed: Any = 0,
    false_alarm: float = 1e-3,
) -> Any:
    r"""Fail when an update function no longer matches its documented convention.

    Runs :func:`pgexact.conformance.audit` on ``update_fn`` (a callable from a
    :class:`~pgexact.conformance.TransitionBatch` to the (S, A) update in the logits of a
    tabular softmax actor) with the single candidate ``convention`` and the simulator's
    autoreset set to ``convention.autoreset``: the exact test
    :math:`\mathbb{E}[\text{update}] = \text{expected\_update}` (the scale-free test
    "update ∥ expected update" when ``convention.normalize_advantages`` is set). Batch means
    over ``n_blocks`` blocks; false-alarm probability ≤ ``false_alarm`` (calibrated by
    simulation in pgexact's own suite).

    Parameters
    ----------
    update_fn : callable
    convention : pgexact.conformance.Convention
        Its ``n_envs``, ``n_steps`` and ``time_limit`` set the run's sizes.
    mdp, logits, values
        Default: the 3×3 slippery gridworld (γ = 0.8), a fixed logits table, the exact V.
    n_batches, n_blocks, seed, false_alarm

    Returns
    -------
    pgexact.conformance.AuditReport

    Raises
    ------
    AssertionError
        With the measured z, the threshold and the worst coordinate.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import evaluate
    >>> from pgexact.conformance import Convention
    >>> from pgexact.conformance.audit import default_mdp, default_logits
    >>> from pgexact.conformance.reference import reference_update
    >>> from pgexact.policies import softmax_rows
    >>> lg = default_logits(9, 4); V = evaluate(default_mdp(), softmax_rows(lg)).V
    >>> c = Convention(gamma=0.8, lam=0.95, time_limit=10, n_envs=16, n_steps=32)
    >>> _ = assert_update_consistent(lambda b: reference_update(b, lg, V, c), c, n_batches=40, n_blocks=10)
    """
    from .conformance import Convention, audit

    if not isinstance(convention, Convention):
        raise TypeError(f"convention must be a pgexact.conformance.Convention, got {type(convention).__name__}")
    report = audit(update_fn, mdp, logits=logits, values=values, time_limit=convention.time_limit,
                   n_envs=convention.n_envs, n_steps=convention.n_steps, n_batches=n_batches, seed=seed,
                   conventions=[convention], autoreset=convention.autoreset, n_blocks=n_blocks,
                   false_alarm=false_alarm)
    v = report.verdicts[0]
    t = v.parallel if convention.normalize_advantages else v.mean
    if t.reject:
        raise AssertionError(
            f"the update is not consistent with {convention.label()} ({t.test} test): z = {t.z:.2f} > "
            f"threshold {t.threshold:.2f} (false alarm {t.false_alarm:g}, {t.n_blocks} blocks of "
            f"{n_batches // n_blocks} batches), worst at {t.worst}")
    return report
