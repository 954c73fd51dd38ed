r"""Theorems about the conformance core: the exact expected update of a library's batch.

:func:`pgexact.conformance.expected_update` computes :math:`\mathbb{E}[\text{update}]` of one batch under a
:class:`~pgexact.conformance.Convention` by a renewal recursion or by the augmented chain over (time in
episode, state). The reference enumerates every path of one environment through the batch's rows with its
exact probability, forms each path's update with the reference buffer
(:func:`pgexact.conformance.reference.grouped_updates`: δ per row from the flags, GAE backwards over the
rows) and averages (:func:`pgexact.conformance.batch_covariance`'s mean): the two share only the model's
data, the policy and the critic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..conformance import Convention, batch_covariance, expected_update
from ..models.finite_mdp import FiniteMDP
from .registry import identity

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []


@dataclass(frozen=True)
class ConformanceProblem:
    mdp: FiniteMDP
    logits: np.ndarray
    values: np.ndarray
    renewal: Convention  # same-step autoreset, truncation bootstrap / terminate / reset_obs
    chain: Convention  # next-step autoreset or cross-episode GAE
    batch: int


def _instance(rng: np.random.Generator) -> ConformanceProblem:
    """3 states (the last terminal, reached from the others with probability about 0.2), 2 actions, sparse
    transition rows; a random critic (so that every bootstrap shows); time limit 2..3, 3 rows per batch,
    batch 0 or 1; two random conventions, one of the renewal computation and one of the chain only."""
    S, A = 3, 2
    P = np.zeros((S, A, S))
    for s in range(S - 1):
        for a in range(A):
            nxt = rng.choice(S - 1, size=2, replace=False)
            w = rng.dirichlet(np.ones(2)) * 0.8
            P[s, a, nxt] = w
            P[s, a, S - 1] = 0.2
    P[S - 1, :, S - 1] = 1.0
    r = rng.standard_normal((S, A))
    r[S - 1] = 0.0
    mu0 = np.array([0.6, 0.4, 0.0])
    mdp = FiniteMDP(P, r, mu0, gamma=0.9)
    common = dict(n_envs=1, n_steps=3, time_limit=int(rng.integers(2, 4)))

    def fields() -> dict:
        return dict(weighting=str(rng.choice(["uniform", "discounted"])), lam=float(rng.uniform(0.3, 0.95)),
                    gamma=float(rng.uniform(0.5, 0.95)), ent_coef=float(rng.choice([0.0, 0.1])),
                    bootstrap_end=bool(rng.integers(2)), **common)

    renewal = Convention(truncation=str(rng.choice(["bootstrap", "terminate", "reset_obs"])), autoreset="same_step",
                         **fields())
    if rng.integers(2):
        chain = Convention(truncation=str(rng.choice(["bootstrap", "terminate", "reset_obs", "cross"])),
                           autoreset="next_step", **fields())
    else:
        chain = Convention(truncation="cross", autoreset="same_step", **fields())
    return ConformanceProblem(mdp, rng.standard_normal((S, A)), rng.standard_normal(S), renewal, chain,
                              int(rng.integers(2)))


def _pi(pr: ConformanceProblem) -> np.ndarray:
    z = np.exp(pr.logits - pr.logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _computed(pr: ConformanceProblem) -> tuple[np.ndarray, ...]:
    pi = _pi(pr)
    kw = dict(values=pr.values, batch=pr.batch)
    return (expected_update(pr.mdp, pi, pr.renewal, method="renewal", **kw).update,
            expected_update(pr.mdp, pi, pr.renewal, method="chain", **kw).update,
            expected_update(pr.mdp, pi, pr.chain, **kw).update)


def _enumerated(pr: ConformanceProblem, renewal: Convention | None = None, chain: Convention | None = None):
    renewal, chain = renewal or pr.renewal, chain or pr.chain
    a = batch_covariance(pr.mdp, pr.logits, renewal, values=pr.values, batch=pr.batch).mean
    b = batch_covariance(pr.mdp, pr.logits, chain, values=pr.values, batch=pr.batch).mean
    return a, a, b


def _expected(pr: ConformanceProblem) -> tuple[np.ndarray, ...]:
    return _enumerated(pr)


def _dropped_lambda(pr: ConformanceProblem) -> tuple[np.ndarray, ...]:
    """The mistake of GAE with gamma in place of gamma * lambda (lambda = 1), in both conventions."""
    return _enumerated(pr, pr.renewal.replace(lam=1.0), pr.chain.replace(lam=1.0))


def _uniform_instead_of_discounted(pr: ConformanceProblem) -> tuple[np.ndarray, ...]:
    """The mistake of weighting rows uniformly whatever the convention says (and discounted where it says
    uniform)."""
    flip = {"uniform": "discounted", "discounted": "uniform"}
    return _enumerated(pr, pr.renewal.replace(weighting=flip[pr.renewal.weighting]),
                       pr.chain.replace(weighting=flip[pr.chain.weighting]))


identity(
    id="conformance.expected_update",
    statement=r"\mathbb{E}[\text{update}] = \sum_{\text{paths } x} p(x)\,u(x),\quad "
    r"u(x) = \frac1n\sum_{j<n}\omega_j\big(\hat A_j (e_{a_j} - \pi_{s_j}) + c_{\text{ent}}\nabla H(\pi_{s_j})\big)",
    source="GAE, Schulman et al. 2016, 'High-dimensional continuous control using generalized advantage "
    "estimation', eq. 16; the renewal equation, Feller 1968, vol. 1, ch. XIII; course notes 'Policy gradient "
    "methods', section 'Advantage estimation'",
    reference="enumeration of every path of one environment through the batch's rows with its exact "
    "probability (pgexact.conformance.batch_covariance's mean), each path's update formed row by row by the "
    "reference buffer (pgexact.conformance.reference.grouped_updates); computed: expected_update by the "
    "renewal recursion and by the chain for a same-step convention, and by the chain for a next-step or "
    "cross-episode one",
    instance=_instance,
    computed=_computed,
    expected=_expected,
    tolerance=1e-12,
    tolerance_reason="sums of at most a few thousand path terms and recursions of <= 6 steps on values of "
    "order 1: |error| <= 1e3 eps ~ 2e-13 absolute (floor 1); measured below 1e-15",
    mutants={
        "GAE with gamma instead of gamma * lambda": _dropped_lambda,
        "rows weighted uniformly where the convention says discounted (and the reverse)":
            _uniform_instead_of_discounted,
    },
    default_instances=5,
)
