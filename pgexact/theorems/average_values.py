r"""Theorems on the average-reward values beyond the gain: differential Q and advantages, the multichain
gain and bias, the accurate solution of nearly multichain chains, and relative value iteration.

* ``average.differential_q_is_discounted_limit``: :math:`Q = \lim_{\gamma\to1}(Q_\gamma - \rho/(1-\gamma))`
  and :math:`A = \lim A_\gamma` (Puterman 1994, Corollary 8.2.5 applied to :math:`Q_\gamma = r + \gamma PV_\gamma`),
  the references Richardson-extrapolated direct solves as in :mod:`pgexact.theorems.average`.
* ``average.multichain_gain_and_bias``: :math:`g = \lim(1-\gamma)V_\gamma`,
  :math:`h = \lim(V_\gamma - g/(1-\gamma))` for chains with several closed classes and transient states,
  with g from the Cesàro limit computed by repeated squaring of the lazy chain :math:`(I + P_\pi)/2` (same
  Cesàro limit, aperiodic), so that the bias's reference does not amplify an extrapolation error.
* ``average.nearly_multichain_exact``: chains whose classes are joined by probabilities
  :math:`\epsilon \in [10^{-13}, 10^{-9}]` (condition ~1/ε, solved by :mod:`pgexact.average`'s structured
  elimination), against the exact rational solution (:class:`fractions.Fraction`) of the same chain with its
  diagonal taken as one minus the off-diagonal mass.
* ``average.rvi_optimal_gain``: relative value iteration (with the aperiodicity transform) on weakly
  communicating models, half of them with a periodic optimal chain, against brute force over deterministic
  policies.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .. import average
from .average import (
    AverageProblem,
    ControlProblem,
    _brute_force_gain,
    _chain,
    _normalized_discounted_optimum,
    _problem,
    _richardson,
)
from . import _reference as ref
from .registry import identity

__all__: list[str] = []


# ----------------------------------------------------------------------------- differential Q
def _q_limit(pr: AverageProblem) -> tuple[np.ndarray, np.ndarray]:
    pi, P_pi, r_pi = _chain(pr)
    P, r = pr.mdp.P, pr.mdp.r
    w, vl = np.linalg.eig(P_pi.T)
    d = np.real(vl[:, np.argmin(np.abs(w - 1.0))])
    rho = float(d @ r_pi / d.sum())  # exact to rounding: an extrapolated gain's error is amplified by 1/eps

    def q(e: float) -> np.ndarray:
        V = np.linalg.solve(np.eye(len(r_pi)) - (1.0 - e) * P_pi, r_pi)
        return r + (1.0 - e) * P @ V - rho / e

    def adv(e: float) -> np.ndarray:
        V = np.linalg.solve(np.eye(len(r_pi)) - (1.0 - e) * P_pi, r_pi)
        return r + (1.0 - e) * P @ V - V[:, None]

    return _richardson(q), _richardson(adv)


def _q_computed(pr: AverageProblem, *, subtract_gain: bool = True, advantage_from_q: bool = False) -> tuple:
    ev = average.evaluate(pr.mdp, pr.policy.probs(pr.theta))
    Q = np.array(ev.Q) + (0.0 if subtract_gain else ev.rho)
    A = np.array(ev.A)
    if advantage_from_q:  # control: the advantage taken as Q - rho
        A = Q - ev.rho
    return Q, A


identity(
    id="average.differential_q_is_discounted_limit",
    statement=r"Q(s,a) = r(s,a) - \rho + \textstyle\sum_{s'}P(s'|s,a)h(s') = \lim_{\gamma\to1}\Big(Q_\gamma(s,a) - "
              r"\frac{\rho}{1-\gamma}\Big),\ A = Q - h = \lim_{\gamma\to1}A_\gamma",
    source="Puterman 1994, Corollary 8.2.5 (Laurent expansion V_gamma = rho/(1-gamma) + h + O(1-gamma)), applied to "
           "Q_gamma = r + gamma P V_gamma",
    reference="Q_gamma - rho/(1-gamma) and A_gamma by direct solves at gamma = 1-1e-4 and 1-5e-5, Richardson-extrapolated "
              "(rho from the eigenvector of P_pi^T)",
    instance=_problem,
    computed=_q_computed,
    expected=_q_limit,
    tolerance=1e-6,
    tolerance_reason="Richardson remainder O(eps^2) = 1e-8 times the next Laurent coefficient (at most ~10 here); "
                     "rounding of the eigenvector gain (~1e-15) amplified by 1/eps = 1e4 and solves of condition 1e4; "
                     "measured residuals up to 9.5e-8 over 200 instances (seed 1)",
    mutants={
        "differential Q without subtracting the gain": lambda pr: _q_computed(pr, subtract_gain=False),
        "advantage taken as Q - rho instead of Q - h": lambda pr: _q_computed(pr, advantage_from_q=True),
    },
)


# ----------------------------------------------------------------------------- multichain gain and bias
def _multichain_instance(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(P_pi, r_pi) with 4..6 states: two or three closed classes (rows 0.7 Dirichlet(1) + 0.3 uniform on each
    class, or a deterministic cycle: periodic) and one or two transient states spreading over all states."""
    S = int(rng.integers(4, 7))
    n_transient = int(rng.integers(1, 3))
    rec = S - n_transient
    cuts = np.sort(rng.choice(np.arange(1, rec), size=min(int(rng.integers(1, 3)), rec - 1), replace=False))
    P = np.zeros((S, S))
    for block in np.split(np.arange(rec), cuts):
        if rng.random() < 0.4 and len(block) > 1:  # a deterministic cycle: periodic class
            P[block, np.roll(block, 1)] = 1.0
        else:
            # mixed with the uniform row: second eigenvalue <= 0.7 in modulus, so the Laurent coefficients of
            # the reference stay below ~(1/0.3)^k
            P[np.ix_(block, block)] = 0.7 * rng.dirichlet(np.ones(len(block)), size=len(block)) + 0.3 / len(block)
    P[rec:] = rng.dirichlet(np.ones(S), size=n_transient)
    return P, rng.standard_normal(S)


def _cesaro_gain(P: np.ndarray, r: np.ndarray) -> np.ndarray:
    """P* r with P* = lim ((I + P)/2)^(2^k) by 60 squarings (the lazy chain is aperiodic, same Cesaro limit),
    each row renormalized to sum 1 (otherwise the rounding of the row sums grows like (1 + eps)^(2^k))."""
    return ref.stochastic_power(0.5 * (np.eye(len(r)) + P)) @ r


#: 1 - gamma of the coarsest of the three discounted solves of the multichain bias's reference.
MULTICHAIN_EPS = 1e-3


def _richardson3(f):  # noqa: ANN001, ANN202 - f(eps) = a + b eps + c eps^2 + O(eps^3)
    """Second-order Richardson extrapolation from e, e/2, e/4 (e = MULTICHAIN_EPS): error O(e^3)."""
    e = MULTICHAIN_EPS
    return (8.0 * f(e / 4) - 6.0 * f(e / 2) + f(e)) / 3.0


def _multichain_reference(inst: tuple) -> tuple[np.ndarray, np.ndarray]:
    P, r = inst
    g = _cesaro_gain(P, r)
    S = len(r)
    return g, _richardson3(lambda e: np.linalg.solve(np.eye(S) - (1.0 - e) * P, r) - g / e)


def _multichain_model(inst: tuple) -> tuple:
    P, r = inst
    return P[:, None, :], r[:, None]


def _multichain_computed(inst: tuple, *, subtract_gain: bool = True) -> tuple[np.ndarray, np.ndarray]:
    ev = average.multichain_evaluate(_multichain_model(inst), np.ones((len(inst[1]), 1)))
    if subtract_gain:
        return np.array(ev.gain), np.array(ev.h)
    P, r = inst
    S = len(r)
    return np.array(ev.gain), np.linalg.solve(np.eye(S) - P + ev.limit, r)


def _one_step_absorption(inst: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Control: the transient rows of P* from the one-step entrance probabilities P_TC 1 (no absorption solve)."""
    P, r = inst
    ev = average.multichain_evaluate(_multichain_model(inst), np.ones((len(r), 1)))
    limit = np.array(ev.limit)
    recurrent = np.concatenate(ev.classes)
    T = np.setdiff1d(np.arange(len(r)), recurrent)
    for C in ev.classes:
        dC = limit[C[0], C]
        limit[np.ix_(T, C)] = np.outer(P[np.ix_(T, C)].sum(axis=1), dC)
    return limit @ r, np.array(ev.h)


identity(
    id="average.multichain_gain_and_bias",
    statement=r"g = P^*r_\pi = \lim_{\gamma\to1}(1-\gamma)V_\gamma,\ h = (I - P_\pi + P^*)^{-1}(I - P^*)r_\pi = "
              r"\lim_{\gamma\to1}\Big(V_\gamma - \frac{g}{1-\gamma}\Big)",
    source="Puterman 1994, Theorem 8.2.3 and Corollary 8.2.5 (Laurent expansion, any stationary policy), Theorem A.7 "
           "(Cesaro limit of a multichain chain)",
    reference="g from the Cesaro limit of the lazy chain (I + P_pi)/2 by repeated squaring; h as V_gamma - g/(1-gamma) "
              "by direct solves at gamma = 1-1e-3, 1-5e-4 and 1-2.5e-4, extrapolated to second order (Richardson)",
    instance=_multichain_instance,
    computed=_multichain_computed,
    expected=_multichain_reference,
    tolerance=1e-6,
    tolerance_reason="second-order Richardson remainder O(eps^3) = 1e-9 times the Laurent coefficients; the solves "
                     "near the multiple eigenvalue 1 have condition 1/eps, so V_gamma ~ g/eps carries an absolute "
                     "rounding error ~ eps_machine/eps^2 <= 2e-9 at eps = 2.5e-4 (why eps is not smaller); the "
                     "squaring converges to rounding; measured residuals up to 1.5e-8 over 200 instances (seed 1), a margin of ~70",
    mutants={
        "bias without subtracting the gain ((I - P + P*) h = r_pi)":
            lambda inst: _multichain_computed(inst, subtract_gain=False),
        "absorption probabilities of the transient states taken as their one-step entrance probabilities":
            _one_step_absorption,
    },
)


# ----------------------------------------------------------------------------- nearly multichain chains
@dataclass(frozen=True, eq=False)
class NearlyMultichain:
    """A 2-action model whose action-0 chain has two classes joined by probabilities of order eps (and
    possibly a transient state); the policy takes action 0 everywhere (P_pi = P[:, 0] exactly)."""

    P: np.ndarray
    r: np.ndarray


def _nearly_multichain_instance(rng: np.random.Generator) -> NearlyMultichain:
    S = int(rng.integers(3, 6))
    transient = S >= 4 and rng.random() < 0.5
    rec = S - 1 if transient else S
    k = int(rng.integers(1, rec))
    eps = 10.0 ** rng.uniform(-13, -9)
    P = np.zeros((S, 2, S))
    for a in range(2):
        for block, other in ((np.arange(k), np.arange(k, rec)), (np.arange(k, rec), np.arange(k))):
            for s in block:
                P[s, a, other] = eps * rng.dirichlet(np.ones(len(other)))
                P[s, a, block] = (1.0 - P[s, a, other].sum()) * rng.dirichlet(np.ones(len(block)))
    if transient:
        P[rec:] = rng.dirichlet(np.ones(S), size=(1, 2))
    return NearlyMultichain(P, rng.standard_normal((S, 2)))


@functools.lru_cache(maxsize=16)
def _exact_solution(nm: NearlyMultichain) -> tuple[np.ndarray, ...]:
    """(d, rho, h, Q, A) in exact rational arithmetic, each row's diagonal taken as 1 - its off-diagonal mass."""
    S = nm.r.shape[0]
    F = [[Fraction(float(x)) for x in row] for row in nm.P[:, 0]]
    for s in range(S):
        F[s][s] = 1 - sum(F[s][j] for j in range(S) if j != s)
    r = [Fraction(float(x)) for x in nm.r[:, 0]]
    # d (I - P) = 0 with sum(d) = 1: replace the last equation by the normalization
    M = [[(1 if i == j else 0) - F[j][i] for j in range(S)] for i in range(S)]
    M[-1] = [Fraction(1)] * S
    d = _solve_exact(M, [Fraction(0)] * (S - 1) + [Fraction(1)])
    rho = sum(di * ri for di, ri in zip(d, r))
    # (I - P) h = r - rho with d h = 0: the singular system completed by d^T h = 0 (rank S - 1 + 1)
    M = [[(1 if i == j else 0) - F[i][j] + d[j] for j in range(S)] for i in range(S)]
    h = _solve_exact(M, [ri - rho for ri in r])
    Q = np.empty((S, 2))
    A = np.empty((S, 2))
    for s in range(S):
        for a in range(2):
            drift = sum(Fraction(float(nm.P[s, a, j])) * (h[j] - h[s]) for j in range(S) if j != s)
            Q[s, a] = float(Fraction(float(nm.r[s, a])) - rho + h[s] + drift)
            A[s, a] = float(Fraction(float(nm.r[s, a])) - rho + drift)
    return np.array([float(x) for x in d]), float(rho), np.array([float(x) for x in h]), Q, A


def _solve_exact(M: list, b: list) -> list:
    """Gauss-Jordan elimination in Fractions (exact)."""
    n = len(b)
    M = [row[:] + [bi] for row, bi in zip(M, b)]
    for c in range(n):
        p = next(i for i in range(c, n) if M[i][c] != 0)
        M[c], M[p] = M[p], M[c]
        for i in range(n):
            if i != c and M[i][c] != 0:
                f = M[i][c] / M[c][c]
                M[i] = [x - f * y for x, y in zip(M[i], M[c])]
    return [M[i][n] / M[i][i] for i in range(n)]


@functools.lru_cache(maxsize=16)
def _exact_scaled(nm: NearlyMultichain) -> tuple[np.ndarray, ...]:
    d, rho, h, Q, A = _exact_solution(nm)
    return _scale(nm, d, rho, h, Q, A)


def _scale(nm: NearlyMultichain, d: np.ndarray, rho: float, h: np.ndarray, Q: np.ndarray, A: np.ndarray) -> tuple:
    """d entrywise relative (GTH is accurate to a few ulps per entry), rho relative to max|r|, h, Q and A
    relative to the exact max|h| (the bias is of order 1/eps; Q and A are accurate to ~1e-16 max|h| absolute)."""
    d_ex, _, h_ex, _, _ = _exact_solution(nm)
    hs = float(np.max(np.abs(h_ex)))
    pos = d_ex > 0
    return (np.where(pos, d / np.where(pos, d_ex, 1.0), d), np.array([rho / float(np.max(np.abs(nm.r)))]),
            h / hs, Q / hs, A / hs)


def _nearly_computed(nm: NearlyMultichain, *, mean_normalized: bool = False) -> tuple:
    S = nm.r.shape[0]
    pi = np.zeros((S, 2))
    pi[:, 0] = 1.0
    ev = average.evaluate((nm.P, nm.r), pi)
    h = np.array(ev.h)
    shift = float(np.mean(h)) if mean_normalized else 0.0  # control: normalized by mean(h) = 0
    return _scale(nm, np.array(ev.d), ev.rho, h - shift, np.array(ev.Q) - shift, np.array(ev.A))


def _uniform_gain(nm: NearlyMultichain) -> tuple:
    """Control: rho as the uniform average of r_pi (the stationary weights of the two classes ignored)."""
    d, rho, h, Q, A = _nearly_computed(nm)
    return d, np.array([float(np.mean(nm.r[:, 0])) / float(np.max(np.abs(nm.r)))]), h, Q, A


identity(
    id="average.nearly_multichain_exact",
    statement=r"d^\top(I - P_\pi) = 0,\ \rho = d^\top r_\pi,\ (I - P_\pi)h = r_\pi - \rho 1,\ d^\top h = 0,\ "
              r"A(s,a) = r - \rho + \textstyle\sum_{s'\ne s}P(s'|s,a)(h(s') - h(s)) \text{ for classes joined by } "
              r"\epsilon \in [10^{-13}, 10^{-9}]",
    source="Grassmann, Taksar & Heyman 1985 (GTH elimination), O'Cinneide 1993 (its entrywise accuracy); Puterman "
           "1994, sec. 8.2 (gain and bias of a unichain chain)",
    reference="the same chain (each row's diagonal one minus its off-diagonal mass) solved in exact rational "
              "arithmetic (fractions.Fraction, Gauss-Jordan), rounded once at the end",
    instance=_nearly_multichain_instance,
    computed=_nearly_computed,
    expected=_exact_scaled,
    tolerance=1e-12,
    tolerance_reason="the structured elimination never subtracts (entries of d to a few ulps each, h to a few ulps "
                     "of max|h|), and Q, A are accurate to ~1e-16 max|h| absolute; relative to d entrywise and to "
                     "max|h|: measured residuals up to 1.1e-14 over 200 instances (seed 1), a margin of ~90",
    mutants={
        "bias normalized by mean(h) = 0 instead of d^T h = 0":
            lambda nm: _nearly_computed(nm, mean_normalized=True),
        "gain as the uniform average of r_pi": _uniform_gain,
    },
)


# ----------------------------------------------------------------------------- relative value iteration
def _rvi_instance(rng: np.random.Generator) -> ControlProblem:
    """2..5 states, 2..3 actions, deterministic transitions: action 0 a cycle through every state (so the model
    is communicating), action 1 a self-loop at state 0 and random moves elsewhere, others random moves. On
    half of the instances the cycle earns more (a periodic optimal chain with self-loops elsewhere: the
    aperiodicity transform is needed although some pair has a self-loop)."""
    S, A = int(rng.integers(2, 6)), int(rng.integers(2, 4))
    nxt = rng.integers(S, size=(S, A))
    nxt[:, 0] = np.roll(np.arange(S), -1)
    nxt[0, 1] = 0
    P = np.eye(S)[nxt]
    r = rng.standard_normal((S, A))
    if rng.random() < 0.5:
        r[:, 0] = 2.0 + np.abs(r[:, 0])
    return ControlProblem(P, r, np.ones((S, A), dtype=bool))


identity(
    id="average.rvi_optimal_gain",
    statement=r"\text{relative value iteration on } \tilde P = \tau I + (1-\tau)P,\ \tilde r = (1-\tau)r "
              r"\text{ finds a gain-optimal policy: } g^* = \max_{d\in D^{MD}} g^d",
    source="Puterman 1994, sec. 8.5.4 (aperiodicity transformation) and Theorem 8.5.5 (relative value iteration), "
           "Theorem 9.1.8 (a deterministic optimal policy exists)",
    reference="brute force over every deterministic policy, each gain as lim (1-gamma) V_gamma by direct solves "
              "at gamma = 1-1e-4 and 1-5e-5, Richardson-extrapolated",
    instance=_rvi_instance,
    computed=lambda cp: average.optimal((cp.P, cp.r, cp.mask), "rvi").gain,
    expected=_brute_force_gain,
    tolerance=1e-6,
    tolerance_reason="Richardson extrapolation leaves O(eps^2) = 1e-8 times the second Laurent coefficient (at "
                     "most ~10 on these 2..5-state models); the returned gain is exact to rounding; measured residuals up to "
                     "2.9e-8 over 200 instances (seed 1)",
    mutants={
        "the gain of the transformed rewards (1 - tau) r, not rescaled": lambda cp: 0.5 * average.optimal(
            (cp.P, cp.r, cp.mask), "rvi").gain,
        "the normalized discounted optimum (1-gamma) V*_gamma at gamma = 0.9 instead of the limit": lambda cp: (
            _normalized_discounted_optimum(cp, 0.9)),
    },
)

