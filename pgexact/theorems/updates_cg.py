r"""TRPO's conjugate-gradient direction and its stopping rule, against Krylov-subspace projections.

:func:`pgexact.updates.trpo_step` solves :math:`(F + \lambda I)x = \nabla J` by conjugate gradient from
:math:`x_0 = 0` and stops at the first iteration k with :math:`\|(F + \lambda I)x_k - \nabla J\|_2 \le
\texttt{cg\_rtol}\,\|\nabla J\|_2`, or at ``cg_iters``. The CG iterate :math:`x_k` is characterized without
reference to the recurrence: it is the Galerkin solution on the Krylov space
:math:`\mathcal K_k = \mathrm{span}\{g, Mg, \dots, M^{k-1}g\}` of :math:`M = F + \lambda I`,

.. math:: x_k = V_k (V_k^\top M V_k)^{-1} V_k^\top g,

for any orthonormal basis :math:`V_k` of :math:`\mathcal K_k` (Saad 2003, 'Iterative Methods for Sparse Linear
Systems', 2nd ed., sec. 6.7.1, Proposition 6.8 and the derivation of Algorithm 6.18; Nocedal & Wright 2006,
Theorem 5.2). The reference builds :math:`V_k` by Arnoldi with repeated Gram-Schmidt on the dense Fisher matrix
(explicit score, LU occupancy) and g by complex steps, solves the small projected system, and applies the stated
stopping rule to the true residuals of those iterates: the number of iterations and the direction are both
fixed by it, so stopping one iteration early or late, testing the wrong norm, or a wrong recurrence coefficient
each move the direction.

Instances: random dense discounted MDPs with 2..6 states, 2..4 actions, γ in [0.5, 0.95], tabular softmax
parameters N(0, σ²) with σ in {0.5, 1}, damping λ in {0, 1e-3, 1e-2}; each instance runs ``trpo_step`` four
times: ``cg_rtol`` 1e-1, 1e-2 and 1e-3 with the default budget (large enough that CG stops on the rule, not on
rounding), and a budget ``cg_iters`` of 1..3 that binds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import TabularSoftmax
from ..updates import ExactSource, trpo_step
from . import _reference as ref
from .registry import identity

#: Nothing here is API: the theorem is reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []

#: A reference residual within this relative distance of ``rtol`` is a tie that rounding decides; the
#: library's iteration count is used there (the two iterates then differ by one CG step).
TIE = 1e-6


#: The relative tolerances each instance runs with (``cg_iters`` None): three, so that a mistaken stopping test
#: that happens to stop at the same iteration for one of them (one CG step can divide the residual by more
#: than 1/sqrt(rtol)) is seen on the other.
RTOLS = (1e-1, 1e-2, 1e-3)


@dataclass(frozen=True)
class CGProblem:
    """A discounted MDP, a tabular softmax policy, parameters, the damping and the binding CG budget."""

    mdp: FiniteMDP
    policy: TabularSoftmax
    theta: np.ndarray
    budget: int
    damping: float
    cache: dict = field(default_factory=dict, compare=False, repr=False)


def _cg_instance(rng: np.random.Generator) -> CGProblem:
    S, A = int(rng.integers(2, 7)), int(rng.integers(2, 5))
    mdp = random_mdp(S, A, gamma=float(rng.uniform(0.5, 0.95)), seed=rng)
    pol = TabularSoftmax(S, A)
    theta = float(rng.choice([0.5, 1.0])) * rng.standard_normal(pol.n_params)
    return CGProblem(mdp, pol, theta, int(rng.integers(1, 4)), float(rng.choice([0.0, 1e-3, 1e-2])))


#: The settings (cg_rtol, cg_iters) of the runs of one instance: the stopping rule alone, then a budget
#: that binds (rtol 1e-6: CG runs to the budget unless its residual falls below that first).
def _settings(pr: CGProblem) -> list[tuple[float, int | None]]:
    return [(rtol, None) for rtol in RTOLS] + [(1e-6, pr.budget)]


def _library(pr: CGProblem, rtol: float, cg_iters: int | None) -> tuple[np.ndarray, int]:
    res = trpo_step(ExactSource(pr.mdp, pr.policy), pr.theta, 1e-3, cg_rtol=rtol, cg_iters=cg_iters,
                    cg_damping=pr.damping)
    return np.asarray(res.direction), int(res.cg_iterations)


def _operator_and_gradient(pr: CGProblem) -> tuple[np.ndarray, np.ndarray]:
    """M = F + lambda I with the dense Fisher of the explicit score and the LU occupancy; g by complex steps."""
    pi = ref.probs(pr.policy, pr.theta)
    F = ref.fisher(pr.policy, pr.theta, ref.occupancy(pr.mdp, pi))
    g = ref.complex_step_gradient(lambda X: ref.values(pr.mdp, ref.probs(pr.policy, X)).J, pr.theta)
    return F + pr.damping * np.eye(F.shape[0]), g


def galerkin_iterates(M: np.ndarray, g: np.ndarray, k_max: int) -> list[np.ndarray]:
    r"""The Galerkin solutions :math:`x_0 = 0, x_1, \dots` of :math:`Mx = g` on the Krylov spaces :math:`\mathcal K_k`.

    Arnoldi with Gram-Schmidt applied twice (orthogonal to rounding); the list ends early when
    :math:`\mathcal K_k` is invariant (then :math:`x_k` solves the system on it exactly)."""
    n = g.shape[0]
    basis = np.zeros((n, 0))
    v = g / np.linalg.norm(g)
    out = [np.zeros(n)]
    scale = float(np.linalg.norm(M, 2))
    for _ in range(k_max):
        basis = np.column_stack([basis, v])
        projected = basis.T @ M @ basis
        out.append(basis @ np.linalg.solve(projected, basis.T @ g))
        w = M @ v
        for _ in range(2):
            w = w - basis @ (basis.T @ w)
        norm = float(np.linalg.norm(w))
        if norm <= 1e-12 * scale:
            break
        v = w / norm
    return out


def _stopping_index(residuals: list[float], rtol: float, budget: int, *, squared_test: bool = False) -> int:
    """First k >= 1 whose relative residual meets the rule (``squared_test``: ||r||^2 <= rtol ||g||^2, the
    wrong-norm mistake), or the budget (or the last iterate when the Krylov space became invariant)."""
    threshold = np.sqrt(rtol) if squared_test else rtol
    for k in range(1, len(residuals)):
        if residuals[k] <= threshold or k >= budget:
            return k
    return len(residuals) - 1


@dataclass(frozen=True)
class _Run:
    """One library run and the reference's iterates, residuals and stopping index for its settings."""

    direction: np.ndarray
    iterates: list
    residuals: list
    rtol: float
    budget: int
    k: int


def _runs(pr: CGProblem) -> list[_Run]:
    """Every run of the instance, computed once (the reference's Krylov iterates shared by the runs)."""
    if "runs" in pr.cache:
        return pr.cache["runs"]
    n = pr.policy.n_params
    M, g = _operator_and_gradient(pr)
    gnorm = float(np.linalg.norm(g))
    xs = galerkin_iterates(M, g, max(n, 10))
    res = [float(np.linalg.norm(M @ x - g)) / gnorm for x in xs]
    runs = []
    for rtol, cg_iters in _settings(pr):
        direction, library_k = _library(pr, rtol, cg_iters)
        budget = max(n, 10) if cg_iters is None else cg_iters
        k = _stopping_index(res, rtol, budget)
        lo = min(k, library_k)
        if k != library_k and 1 <= lo < len(res) and abs(res[lo] - rtol) <= TIE * rtol:
            k = min(library_k, len(xs) - 1)
        runs.append(_Run(direction, xs, res, rtol, budget, k))
    pr.cache["runs"] = runs
    return runs


def _computed(pr: CGProblem) -> tuple[np.ndarray, ...]:
    return tuple(run.direction for run in _runs(pr))


def _expected(pr: CGProblem) -> tuple[np.ndarray, ...]:
    return tuple(run.iterates[run.k] for run in _runs(pr))


def _one_early(pr: CGProblem) -> tuple[np.ndarray, ...]:
    return tuple(run.iterates[run.k - 1] for run in _runs(pr))


def _squared_test(pr: CGProblem) -> tuple[np.ndarray, ...]:
    return tuple(run.iterates[_stopping_index(run.residuals, run.rtol, run.budget, squared_test=True)]
                 for run in _runs(pr))


identity(
    id="updates.trpo_cg_stopping_rule",
    statement=r"x = x_k,\ x_j = \arg\min_{x\in\mathcal K_j(M, g)}\|x - M^{-1}g\|_M,\ M = F + \lambda I,\ "
    r"k = \min\{j \ge 1 : \|Mx_j - g\|_2 \le \texttt{cg\_rtol}\,\|g\|_2 \text{ or } j = \texttt{cg\_iters}\}",
    source="Hestenes & Stiefel 1952; Saad 2003, 'Iterative Methods for Sparse Linear Systems', 2nd ed., sec. 6.7.1 "
    "(CG as the Galerkin projection on Krylov spaces); Schulman et al. 2015, Appendix C (the CG direction of TRPO)",
    reference="Galerkin solutions on orthonormal Krylov bases (Arnoldi, Gram-Schmidt twice) of the dense Fisher built "
    "from the explicit score and the LU occupancy, g by complex steps; the stopping rule applied to their true "
    "residuals (no CG recurrence)",
    instance=_cg_instance,
    computed=_computed,
    expected=_expected,
    tolerance=2e-9,
    tolerance_reason="relative error of two computations of the same Krylov iterate: rounding amplified by the "
    "condition of the projected system and, over many steps, by CG's loss of orthogonality (rtol >= 1e-3 keeps "
    "k small: at rtol 1e-4 a 14-step run differed by 4e-9); measured residuals <= 2.1e-11 over 600 instances "
    "(seeds 0, 1, 2), a margin of ~100",
    mutants={
        "CG stops one iteration early": _one_early,
        "stop test ||r||^2 <= rtol ||g||^2 (rtol applied to the squared norm)": _squared_test,
    },
    floor=1e-300,
)
