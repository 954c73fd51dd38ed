r"""Errata of the course notes (``shared/seeds``): formulas that are wrong as printed.

Each :class:`Erratum` quotes the claim as printed, gives the corrected statement and its
location, and carries a numerical witness: a concrete instance on which the library computes
the printed value, the corrected value and an independent reference, and shows that the
corrected statement holds there while the printed one does not. Only mathematical errors with a
witness are listed; notation and style are not.

``pgexact errata`` prints :func:`format_errata`.

Examples
--------
>>> from pgexact.errata import ERRATA
>>> all(e.witness().separates for e in ERRATA)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import _catalogue as _c
from ._catalogue import ppo_clipped_objective
from ._witness import Witness

__all__ = ["Erratum", "Witness", "ERRATA", "get", "format_errata", "ppo_clipped_objective"]


@dataclass(frozen=True)
class Erratum:
    """One formula of the notes that is wrong as printed.

    Attributes
    ----------
    id : str
        Short unique name.
    location : str
        File of ``shared/seeds`` and section heading (several when the error is repeated).
    printed : str
        The claim as printed (abridged).
    corrected : str
        The corrected statement.
    why : str
        One line on where the printed formula goes wrong.
    witness : callable
        ``witness() -> Witness``; deterministic, a few milliseconds.
    """

    id: str
    location: str
    printed: str
    corrected: str
    why: str
    witness: Callable[[], Witness]


ERRATA: tuple[Erratum, ...] = (
    Erratum(
        "drift-bound-kl",
        f'{_c.F000}, § "Bounding the Error"',
        "|p_θ'(s) − p_θ(s)| ≤ 2εt with ε ≈ max_s D_KL(π_θ'(·|s) ‖ π_θ(·|s))",
        "Σ_s |p_θ'(s_t) − p_θ(s_t)| ≤ 2εt with ε = max_s D_TV(π_θ'(·|s), π_θ(·|s)) (coupling argument); "
        "a KL bound follows only through Pinsker, ε ≤ √(½ max_s D_KL)",
        "KL ≈ 2 TV² for close policies, so 2t·KL is far below the drift",
        _c._w_drift_kl_vs_tv,
    ),
    Erratum(
        "softmax-normalizer",
        f'{_c.F001}, § "Example policy parameterizations"',
        "π_θ(a|s) = exp(θ_{s,a}) / Σ_{s,a'} exp(θ_{s,a'})",
        "π_θ(a|s) = exp(θ_{s,a}) / Σ_{a'} exp(θ_{s,a'}) (normalize over the actions of state s only)",
        "summing over states too makes every row sum to less than 1",
        _c._w_softmax_normalizer,
    ),
    Erratum(
        "pg-baseline-index",
        f'{_c.F001}, § "Baselines and advantages" (definition "PG with baseline")',
        "∇J = E[Σ_h ∇log π(a_h|s_h) ((Σ_{h'=h}^{H-1} r_h) − b_h(s_h))]",
        "∇J = E[Σ_h ∇log π(a_h|s_h) ((Σ_{h'=h}^{H-1} r_{h'}) − b_h(s_h))]",
        "the printed inner sum is (H − h)·r_h, not the reward-to-go",
        _c._w_baseline_index,
    ),
    Erratum(
        "npg-step-size-001",
        f'{_c.F001}, § "Natural policy gradient" (Lagrangian derivation)',
        "θ^{k+1} = θ^k + η F⁻¹∇J with η = √(δ / (∇Jᵀ F ∇J))",
        "η = √(2δ / (∇Jᵀ F⁻¹ ∇J)) for the constraint ½ dθᵀ F dθ ≤ δ",
        "½ η² (F⁻¹∇J)ᵀ F (F⁻¹∇J) = ½ η² ∇JᵀF⁻¹∇J must equal δ",
        _c._w_npg_step_001,
    ),
    Erratum(
        "coupling-probability",
        f'{_c.F002}, § "General case"; {_c.F003}, § "Policy Improvement" (proof)',
        "if |p_X(x) − p_Y(x)| = ε, a coupling with p(x = y) = 1 − ε exists ⇒ p_X 'agrees' with p_Y with probability ε",
        "if D_TV(p_X, p_Y) = ½ Σ_x |p_X(x) − p_Y(x)| = ε, the maximal coupling has Pr(X = Y) = 1 − ε: "
        "X and Y agree with probability 1 − ε (disagree with probability ε)",
        "the maximal coupling puts min(p_X, p_Y) on the diagonal, total mass 1 − D_TV",
        _c._w_coupling,
    ),
    Erratum(
        "expectation-bound-max-f",
        f'{_c.F002}, § "General case"; {_c.F003}, § "Policy Improvement" (proof)',
        "E_{p_θ'}[f(s_t)] ≥ E_{p_θ}[f(s_t)] − 2εt max_s f(s)",
        "E_{p_θ'}[f(s_t)] ≥ E_{p_θ}[f(s_t)] − 2εt max_s |f(s)|",
        "Σ_s (p' − p) f ≥ −Σ_s |p' − p| |f| needs |f|; with f < 0 the printed bound fails",
        _c._w_max_f,
    ),
    Erratum(
        "npg-step-size-002",
        f'{_c.F002}, § "Natural Gradient"',
        "α = √(2ε / (∇Jᵀ F ∇J))",
        "α = √(2ε / (∇Jᵀ F⁻¹ ∇J))",
        "the step is α F⁻¹∇J, whose quadratic KL model is ½ α² ∇JᵀF⁻¹∇J",
        _c._w_npg_step_002,
    ),
    Erratum(
        "objective-stationary",
        f'{_c.F003}, § "Policy Gradient Theorem"',
        "J(θ) = E_τ[R(τ)] = Σ_s d^π(s) V^π(s), d^π the stationary distribution of the chain",
        "J(θ) = E_τ[R(τ)] = Σ_s μ0(s) V^π(s) (start distribution); Σ_s d^π(s) V^π(s) is a different objective",
        "V^π(s) is a return from s; averaging it over the stationary distribution forgets s0 ~ μ0",
        _c._w_objective_stationary,
    ),
    Erratum(
        "pg-theorem-constant",
        f'{_c.F003}, § "Policy Gradient Theorem" (end of proof)',
        "∇J(θ) = E_{s~d^π, a~π}[Q^π(s,a) ∇ln π(a|s)], d^π the stationary distribution (∝ replaced by =)",
        "∇J(θ) = 1/(1−γ) · E_{s~d_π, a~π}[Q^π(s,a) ∇ln π(a|s)], d_π = (1−γ) μ0ᵀ(I − γP_π)⁻¹ the "
        "normalized discounted occupancy (Sutton et al. 2000, Thm 1; Kakade 2002)",
        "the proof sums discounted visits from s0 (not the stationary law) and the sum has mass 1/(1−γ)",
        _c._w_pg_theorem_constant,
    ),
    Erratum(
        "batch-mean-baseline",
        f'{_c.F003}, § "Variance Reduction: Baseline Subtraction"',
        "b = (1/N) Σ_i G_i ... since b is independent of actions, it does not introduce bias",
        "with b the mean of the same batch, E[ĝ] = (1 − 1/N) ∇J; use a leave-one-out mean "
        "b_i = (1/(N−1)) Σ_{j≠i} G_j (or a baseline independent of the batch) for an unbiased estimator",
        "b contains G_i, which depends on a_i, so E[∇log π(a_i) b] = ∇J/N ≠ 0",
        _c._w_batch_mean_baseline,
    ),
    Erratum(
        "npg-lagrange-substitution",
        f'{_c.F003}, § "Natural Policy Gradient" (Lagrange multipliers)',
        "½ ((1/λ) ∇JᵀF⁻¹∇J) ≤ ε",
        "½ (1/λ²) ∇JᵀF⁻¹∇J ≤ ε (which gives the printed λ = √(∇JᵀF⁻¹∇J / 2ε))",
        "dθ = F⁻¹∇J/λ enters the quadratic form twice",
        _c._w_npg_lagrange_003,
    ),
    Erratum(
        "expected-hessian-log-pi",
        f'{_c.F003}, § "Natural Policy Gradient" (proof that the KL Hessian is F)',
        "E_{a~π}[∇²_θ log π_θ(a|s)] = ∫ π ∇² log π da = ∫ ∇² π da = 0",
        "E_{a~π}[∇²_θ log π_θ(a|s)] = −F(s) (information identity); ∫ π ∇² log π ≠ ∫ ∇² π because "
        "∇²π = π(∇² log π + ∇log π ∇log πᵀ). The Hessian of KL(π_θ ‖ π_θ') in θ' at θ is −E[∇² log π] = F",
        "the printed step drops the outer product of the scores",
        _c._w_hessian_log_pi,
    ),
    Erratum(
        "ppo-clip-outside",
        f'{_c.F003}, § "Proximal Policy Optimization (PPO)" ("Why Does This Work?")',
        "if r_t(θ) moves outside 1 ± ε, the clipped term stops further updates",
        "the objective is flat only for A > 0, r > 1 + ε and for A < 0, r < 1 − ε; for A > 0, r < 1 − ε "
        "(and A < 0, r > 1 + ε) the unclipped term rA is the minimum and its gradient A is kept",
        "min(rA, clip(r)A) selects the unclipped branch on the side that worsens the objective",
        _c._w_ppo_clip,
    ),
    Erratum(
        "reward-to-go-discount",
        f'{_c.F004}, § "2. The Policy Gradient Theorem" (table of Ψ_t)',
        "∇J = E[Σ_t ∇log π(a_t|s_t) Ψ_t] with Ψ_t = R̂_t = Σ_{t'≥t} γ^{t'−t} r_{t'} (reward-to-go)",
        "Ψ_t = γ^t R̂_t = Σ_{t'≥t} γ^{t'} r_{t'} (and γ^t A_t for the advantage); without γ^t the "
        "estimator is biased for γ < 1 (Thomas 2014)",
        "dropping past rewards is unbiased, but the discount from time 0 must stay",
        _c._w_reward_to_go_discount,
    ),
)

_BY_ID = {e.id: e for e in ERRATA}
assert len(_BY_ID) == len(ERRATA), "erratum ids must be unique"


def get(erratum_id: str) -> Erratum:
    """The erratum named ``erratum_id``; ``ValueError`` listing the valid ids otherwise."""
    try:
        return _BY_ID[erratum_id]
    except (KeyError, TypeError):
        raise ValueError(f"unknown erratum {erratum_id!r}; valid ids: {', '.join(_BY_ID)}") from None


def _fmt(x: float) -> str:
    return f"{x:.10g}"


def format_errata() -> str:
    """The text ``pgexact errata`` prints: every erratum with its witness, computed now."""
    lines = [
        f"Errata in the course notes (shared/seeds): {len(ERRATA)} formulas wrong as printed.",
        "Each witness computes, on the instance shown, the value per the printed statement, per the",
        "corrected statement, and an independent reference; 'separates' means the corrected one",
        "matches the reference (or its bound holds) and the printed one does not.",
        "",
    ]
    for i, e in enumerate(ERRATA, 1):
        w = e.witness()
        lines += [
            f"[E{i:02d}] {e.id}",
            f"  where:     {e.location}",
            f"  printed:   {e.printed}",
            f"  corrected: {e.corrected}",
            f"  why:       {e.why}",
            f"  witness:   {w.quantity}",
            f"             on {w.instance}",
            f"             printed {_fmt(w.printed)} | corrected {_fmt(w.corrected)} | "
            f"reference {_fmt(w.reference)} ({w.kind}) -> {'separates' if w.separates else 'DOES NOT SEPARATE'}",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"
