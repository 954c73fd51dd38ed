r"""Errata of the course notes: formulas and statements that are wrong as printed.

Each :class:`Erratum` quotes the claim as printed, cites where it is printed (the note's title
and section heading; see REFERENCES.md), gives the corrected statement and, where a number can
show it, a :class:`Witness`: a concrete instance on which the printed and the corrected
statements give different values, with the truth computed independently of both (pgexact's
closed forms or a generic solver, confirmed by central differences, enumeration, an ODE solver
or a linear program). Errors that no number can show (a wrong word) are listed too, marked as
not numerically witnessable. Conventions are not errata: only statements that are false.

``pgexact errata`` prints :func:`format_errata`.

Examples
--------
>>> from pgexact.errata import ERRATA, get
>>> all(e.witness().separates for e in ERRATA if e.witnessable)
True
>>> w = get("ddpg-gradient").witness()
>>> round(w.printed, 3), round(w.corrected, 3), round(w.reference, 3)
(1.784, 2.689, 2.689)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import _algorithms as _a
from . import _continuous as _c
from . import _finite as _f
from ._finite import ppo_clipped_objective
from ._notes import ADVANCED_PG, CS285_LEC9, NOTES, PG_CHAPTER, PG_FUNDAMENTALS, PG_SURVEY, Location
from ._witness import Witness

__all__ = ["Erratum", "Witness", "Location", "NOTES", "ERRATA", "get", "format_errata", "ppo_clipped_objective"]


@dataclass(frozen=True)
class Erratum:
    """One statement of the course notes that is wrong as printed.

    Attributes
    ----------
    id : str
        Short unique name.
    locations : tuple of Location
        Where the claim is printed (note title and section heading; several when repeated).
    printed : str
        The claim as printed (abridged, formulas in plain text).
    corrected : str
        The corrected statement.
    why : str
        Where the printed statement goes wrong.
    witness : callable or None
        ``witness() -> Witness``, deterministic; ``None`` when no number can show the error.
    not_witnessable : str
        Why there is no numerical witness (empty when there is one).
    """

    id: str
    locations: tuple[Location, ...]
    printed: str
    corrected: str
    why: str
    witness: Callable[[], Witness] | None = None
    not_witnessable: str = ""

    def __post_init__(self) -> None:
        for name in ("id", "printed", "corrected", "why", "not_witnessable"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        if not isinstance(self.locations, tuple) or not all(isinstance(loc, Location) for loc in self.locations):
            raise TypeError(f"locations must be a tuple of Location, got {self.locations!r}")
        if not self.locations:
            raise ValueError(f"erratum {self.id!r}: locations must hold at least one Location")
        if self.witness is not None and not callable(self.witness):
            raise TypeError(f"witness must be a callable returning a Witness, or None, got {type(self.witness).__name__}")
        if (self.witness is None) == (not self.not_witnessable):
            raise ValueError(
                f"erratum {self.id!r}: give a witness or say in not_witnessable why there is none, not both"
            )

    @property
    def witnessable(self) -> bool:
        """True when a numerical witness shows the error."""
        return self.witness is not None

    @property
    def location(self) -> str:
        """All locations as one line."""
        return "; ".join(str(loc) for loc in self.locations)


def _L(note: str, section: str, detail: str = "") -> Location:
    return Location(note, section, detail)


ERRATA: tuple[Erratum, ...] = (
    # ------------------------------------------------------------------ Advanced Policy Gradients
    Erratum(
        "drift-bound-kl",
        (_L(ADVANCED_PG, "Bounding the Error"),),
        "|p_θ'(s) − p_θ(s)| ≤ 2εt, where ε ≈ max_s D_KL(π_θ'(·|s) ‖ π_θ(·|s))",
        "Σ_s |p_θ'(s_t) − p_θ(s_t)| ≤ 2εt with ε = max_s D_TV(π_θ'(·|s), π_θ(·|s)) (coupling argument); "
        "in terms of the KL only through Pinsker's inequality, ε ≤ √(½ max_s D_KL)",
        "for close policies D_KL ≈ 2 D_TV², so 2t·max_s D_KL falls far below the actual drift",
        _f.w_drift_kl,
    ),
    # ------------------------------------------------------------------ Policy Gradients (chapter)
    Erratum(
        "sgd-rate",
        (_L(PG_CHAPTER, "(Stochastic) Policy Gradient Ascent"),),
        "with step size η_h = O(1/√h), J bounded and β-smooth and a gradient estimator of finite "
        "variance σ²: after H steps ‖∇_θ J(θ)‖² ≤ O(Mβσ²/H)",
        "min_(h<H) E‖∇J(θ_h)‖² ≤ O(Mβ/H + σ√(Mβ/H)) = O(√(Mβσ²/H)) (Ghadimi & Lan 2013, Corollary 2.2, "
        "step ∝ 1/√H; a log H factor more with η_h ∝ 1/√h); O(Mβ/H) is the rate of exact gradients",
        "with σ² > 0 the iterates keep a variance of order η_h σ², so E‖∇J(θ_h)‖² decays only like η_h ∝ h^(−1/2)",
        _c.w_sgd_rate,
    ),
    Erratum(
        "convex-for-concave",
        (_L(PG_CHAPTER, "(Stochastic) Policy Gradient Ascent"),),
        "Notice that our parameters will stop changing once ∇J(θ) = 0 ... If J is convex, then the only "
        "point where this happens is the global optimum",
        "if J is concave (J is maximized), every point with ∇J(θ) = 0 is a global maximum; a stationary "
        "point of a convex J is a global minimum (J(θ) = θ²: ∇J(0) = 0 at the minimum, and gradient "
        "ascent moves away from it)",
        "maximization needs concavity; convexity is the condition for minimization",
        not_witnessable="a wrong word (convex for concave): the claim is about a class of functions",
    ),
    Erratum(
        "pg-baseline-index",
        (_L(PG_CHAPTER, "Baselines and advantages", "definition 'PG with baseline'"),),
        "∇J(θ) = E_(τ~ρ_θ)[Σ_h ∇log π_θ(a_h|s_h)((Σ_(h'=h)^(H−1) r_h) − b_h(s_h))]",
        "∇J(θ) = E_(τ~ρ_θ)[Σ_h ∇log π_θ(a_h|s_h)((Σ_(h'=h)^(H−1) r_h') − b_h(s_h))]",
        "the printed inner sum is (H − h)·r_h, not the reward-to-go",
        _f.w_baseline_index,
    ),
    Erratum(
        "softmax-normalizer",
        (_L(PG_CHAPTER, "Example policy parameterizations"),),
        "π^softmax_θ(a|s) = exp(θ_(s,a)) / Σ_(s,a') exp(θ_(s,a'))",
        "π^softmax_θ(a|s) = exp(θ_(s,a)) / Σ_(a') exp(θ_(s,a')) (normalize over the actions of state s only)",
        "summing over states too makes every row sum to less than 1",
        _f.w_softmax_normalizer,
    ),
    Erratum(
        "npg-step-size-chapter",
        (_L(PG_CHAPTER, "Natural policy gradient", "Lagrangian derivation"),),
        "L(θ, η) = ∇Jᵀ(θ − θ^k) − η[½(θ − θ^k)ᵀF(θ − θ^k) − δ]; ∇J = ηF(θ^(k+1) − θ^k); θ^(k+1) = θ^k + "
        "η F⁻¹∇J, where η = √(δ / (∇JᵀF∇J))",
        "θ^(k+1) = θ^k + (1/η) F⁻¹∇J with multiplier η = √(∇JᵀF⁻¹∇J / (2δ)): the step size is "
        "1/η = √(2δ / (∇JᵀF⁻¹∇J))",
        "solving ∇J = ηFΔ gives Δ = F⁻¹∇J/η, not ηF⁻¹∇J; and the step's quadratic KL model "
        "½ ∇JᵀF⁻¹∇J/η² must equal δ (F⁻¹, and the factor 2)",
        _f.w_npg_step_chapter,
    ),
    Erratum(
        "reinforce-called-importance-sampling",
        (_L(PG_CHAPTER, "REINFORCE and Importance Sampling"),),
        "θ ← θ + E_(τ~ρ_θ)[∇log ρ_θ(τ) R(τ)] makes good trajectories more likely: 'This is an example of "
        "importance sampling: updating a distribution to put more density on more important samples'",
        "the update is a likelihood-ratio (score-function) gradient step; importance sampling estimates "
        "E_(x~p̃)[f(x)] from samples of another distribution p by reweighting them with p̃(x)/p(x), and "
        "changes no distribution (the chapter defines it so itself under 'Trust region policy optimization')",
        "the ratio ρ/ρ in the derivation above it evaluates to 1 at ρ = ρ_θ: nothing is reweighted",
        not_witnessable="a wrong description of what the update is; no formula is involved",
    ),
    Erratum(
        "pi-degradation-inequality",
        (_L(PG_CHAPTER, "Motivation for policy gradient"),),
        "with Δ∞ = min_s A^π_h(s, π̃(s)) < 0, 'the PDL shows that there may exist some state s and time h such "
        "that V^π̃_h(s) ≥ V^π_h(s) − H·|Δ∞|', so PI can degrade",
        "the PDL gives V^π̃_h(s) ≥ V^π_h(s) − H·|Δ∞| at every state and time (each of the H advantages is at "
        "least Δ∞): a guarantee, not a degradation; the degradation is the other direction, V^π̃_h(s) < "
        "V^π_h(s) for some s, by as much as H·|Δ∞| when π̃ keeps visiting the state where A^π(s, π̃(s)) = Δ∞",
        "the inequality is stated in the direction that bounds the loss from below, then read as a loss",
        not_witnessable="an inequality read in the wrong direction: the printed inequality is true",
    ),
    # ------------------------------------------------------------------ CS285 lecture 9
    Erratum(
        "coupling-probability",
        (_L(CS285_LEC9, "General case"), _L(PG_SURVEY, "Policy Improvement", "proof")),
        "if |p_X(x) − p_Y(x)| = ε, there is a coupling with p(x = y) = 1 − ε ⇒ p_X(x) 'agrees' with "
        "p_Y(y) with probability ε",
        "if D_TV(p_X, p_Y) = ½ Σ_x |p_X(x) − p_Y(x)| = ε, the maximal coupling has Pr(X = Y) = 1 − ε: X and "
        "Y agree with probability 1 − ε and disagree with probability ε",
        "the maximal coupling puts min(p_X, p_Y) on the diagonal, total mass 1 − D_TV",
        _f.w_coupling,
    ),
    Erratum(
        "expectation-bound-max-f",
        (_L(CS285_LEC9, "General case"), _L(PG_SURVEY, "Policy Improvement", "proof")),
        "E_(p_θ'(s_t))[f(s_t)] ≥ E_(p_θ(s_t))[f(s_t)] − 2εt max_(s_t) f(s_t)",
        "E_(p_θ'(s_t))[f(s_t)] ≥ E_(p_θ(s_t))[f(s_t)] − 2εt max_(s_t) |f(s_t)|",
        "Σ_s (p' − p) f ≥ −Σ_s |p' − p| |f| needs |f|; for f < 0 the printed bound fails",
        _f.w_max_f,
    ),
    Erratum(
        "npg-step-size-lecture",
        (_L(CS285_LEC9, "Natural Gradient"),),
        "α = √(2ε / (∇_θJ(θ)ᵀ F ∇_θJ(θ)))",
        "α = √(2ε / (∇_θJ(θ)ᵀ F⁻¹ ∇_θJ(θ)))",
        "the step is α F⁻¹∇J, whose quadratic KL model is ½ α² ∇JᵀF⁻¹∇J",
        _f.w_npg_step_lecture,
    ),
    Erratum(
        "small-epsilon-guarantee",
        (_L(CS285_LEC9, "General case"), _L(PG_SURVEY, "Constrained Policy Optimization")),
        "J(θ') − J(θ) ≥ Ā(θ') − Σ_t 2εtC, so maximizing Ā(θ') over |π_θ' − π_θ| ≤ ε (or over "
        "D_KL(π_θ' ‖ π_θ) ≤ ε) 'for small enough ε ... is guaranteed to improve J(θ') − J(θ)'",
        "the bound does not give it: within |π_θ' − π_θ| ≤ ε the surrogate gain Ā(θ') − Ā(θ) is at most "
        "linear in ε, and so is the penalty Σ_t 2εtC = εC·T(T − 1); shrinking ε changes neither's ratio. "
        "Improvement for small steps follows from a penalty of second order in the step, as in Kakade & "
        "Langford (2002) and Schulman et al. (2015, Theorem 1: C·max_s D_KL, with D_KL ≈ 2 D_TV²)",
        "a first-order penalty cannot be beaten by a first-order gain by making the step small",
        not_witnessable="a step of reasoning that does not follow; the bound itself holds",
    ),
    # ------------------------------------------------------------------ Policy Gradient (survey)
    Erratum(
        "pg-stationary-weighting",
        (_L(PG_SURVEY, "Policy Gradient Theorem", "proof, last step"),
         _L(PG_SURVEY, "Policy Gradient in Continuous Action Space")),
        "∇J(θ) ∝ Σ_s d^π(s) Σ_a Q^π(s,a) ∇π_θ(a|s), where d^π(s) = η(s)/Σ_s η(s) 'is stationary "
        "distribution' (of the Markov chain under π_θ)",
        "with discounted Q^π (0 < γ < 1) the weights are the discounted visitation η(s) = Σ_k γ^k "
        "Pr(s_k = s), normalized d_π = (1 − γ) μ0ᵀ(I − γP_π)⁻¹ (Sutton et al. 2000, Theorem 1); with γ = 1 "
        "in an episodic task, η/Ση is the on-policy distribution (Sutton & Barto 2018, sec. 13.2)",
        "the stationary distribution ν = νP_π forgets s_0 and the discount: weighted by it, the vector is not "
        "even parallel to ∇J",
        _f.w_pg_stationary_weighting,
    ),
    Erratum(
        "reinforce-variance-order",
        (_L(PG_SURVEY, "Understanding the Variance Problem in REINFORCE"),),
        "'Small differences in individual rewards compound exponentially over a trajectory's length'; "
        "Var(R(τ)) ≈ ρσ²T²; 'if we approximate Var(g) ∝ Var(R(τ)) (since the score function terms are "
        "multipliers)': Var(g) = O(T²)",
        "Var(g) = Θ(T³) in general: the summed score Σ_t ∇log π(a_t|s_t) has variance Θ(T) and multiplies "
        "a return of size Θ(T); O(T³) is also the general bound for bounded rewards. Nothing compounds "
        "exponentially: the return is a sum, Var(R(τ)) ≤ T² r_max²",
        "the score sum is not a constant multiplier: its variance grows linearly in T",
        _c.w_reinforce_variance_order,
    ),
    Erratum(
        "discount-bias-direction",
        (_L(PG_SURVEY, "Bias in Policy Gradient Methods", "'Sources of Bias', reward clipping or discounting"),),
        "Algorithms using reward clipping or high discount factors (γ) can distort return estimates, causing "
        "the learned policy to be biased toward short-term rewards",
        "a low discount factor (γ well below 1) biases the policy toward short-term rewards: a reward k steps "
        "ahead is weighted by γ^k (at k = 50: 0.005 for γ = 0.9, 0.61 for γ = 0.99); as the note says itself "
        "under 'Variance Reduction: Discount Factor Adjustment', a lower γ increases the bias",
        "a high γ keeps far rewards; short-termism comes from a low γ",
        not_witnessable="a wrong word (high for low) in a qualitative statement about γ",
    ),
    Erratum(
        "batch-mean-baseline",
        (_L(PG_SURVEY, "Variance Reduction: Baseline Subtraction"),),
        "b = (1/N) Σ_i G_i ... Since b is independent of actions, it does not introduce bias",
        "with b the mean of the same batch, E[ĝ] = (1 − 1/N)∇J; a leave-one-out mean b_i = (1/(N−1)) "
        "Σ_(j≠i) G_j (or a baseline independent of the batch) keeps the estimator unbiased",
        "b contains G_i, which depends on a_i, so E[∇log π(a_i) b] = ∇J/N ≠ 0",
        _f.w_batch_mean_baseline,
    ),
    Erratum(
        "pg-missing-discount",
        (_L(PG_FUNDAMENTALS, "2. The Policy Gradient Theorem", "table of Ψ_t, rows 'Reward-to-go' and 'Advantage'"),
         _L(PG_FUNDAMENTALS, "3. The REINFORCE Algorithm"),
         _L(PG_FUNDAMENTALS, "3.1 Variance reduction via baselines"),
         _L(PG_FUNDAMENTALS, "4. The Vanilla Policy Gradient Algorithm"),
         _L(PG_SURVEY, "REINFORCE"),
         _L(PG_SURVEY, "Recap: The Policy Gradient Update Using the Advantage Function")),
        "for J = E[Σ_t γ^t r_t]: ∇J(θ) = E[Σ_t ∇log π_θ(a_t|s_t) Ψ_t] with Ψ_t = R̂_t = Σ_(t'≥t) γ^(t'−t) r_t' "
        "or Ψ_t = Â_t = Q(s_t, a_t) − V(s_t); ∇J = E_π[G_t ∇ln π_θ(A_t|S_t)]",
        "∇J(θ) = E[Σ_t γ^t ∇log π_θ(a_t|s_t) Ψ_t] (REINFORCE with the γ^t of Sutton & Barto 2018, sec. 13.3; "
        "the reward-to-go and the advantage forms have the same expectation)",
        "dropping the rewards before t is unbiased (causality), but the discount from time 0 to t must stay; "
        "without γ^t the estimator is biased for γ < 1 (Thomas 2014)",
        _f.w_reward_to_go_discount,
    ),
    Erratum(
        "npg-lagrange-substitution",
        (_L(PG_SURVEY, "Natural Policy Gradient", "method of Lagrange multipliers"),),
        "substituting θ' − θ = (1/λ)F⁻¹∇J into the constraint: ½((1/λ) ∇JᵀF⁻¹∇J) ≤ ε",
        "½ (1/λ²) ∇JᵀF⁻¹∇J ≤ ε (which is what gives the printed λ = √(∇JᵀF⁻¹∇J / 2ε))",
        "the step enters the quadratic form twice",
        _f.w_npg_lagrange,
    ),
    Erratum(
        "expected-hessian-log-pi",
        (_L(PG_SURVEY, "Natural Policy Gradient", "proof that the Hessian of the KL is F"),),
        "E[∇²_θ log π_θ] = ∫ π_θ ∇²_θ log π_θ da = ∫ ∇²_θ π_θ da = ∇²_θ 1 = 0",
        "E_(a~π_θ)[∇²_θ log π_θ(a|s)] = −F(s) (information identity): ∇²π = π(∇² log π + ∇log π ∇log πᵀ), so "
        "∫ π ∇² log π ≠ ∫ ∇² π; the Hessian of the KL at θ' = θ is −E[∇² log π] = F",
        "the printed step drops the outer product of the scores",
        _f.w_hessian_log_pi,
    ),
    Erratum(
        "ppo-clip-outside",
        (_L(PG_SURVEY, "Proximal Policy Optimization (PPO)", "'Why Does This Work?'"),),
        "if r_t(θ) moves outside 1 ± ε, the clipped term stops further updates",
        "the objective is flat only for A > 0, r > 1 + ε and for A < 0, r < 1 − ε; for A > 0, r < 1 − ε "
        "(and A < 0, r > 1 + ε) the unclipped term rA is the minimum and its gradient A is kept",
        "min(rA, clip(r)A) selects the unclipped branch on the side where the objective got worse",
        _f.w_ppo_clip,
    ),
    Erratum(
        "ddpg-gradient",
        (_L(PG_SURVEY, "Deep Deterministic Policy Gradient (DDPG): Off-Policy Actor-Critic", "proof"),),
        "J(θ) = E_(s~D)[Q^(μ_θ)(s, μ_θ(s))]; with D fixed, ∇_θ Q^(μ_θ)(s, μ_θ(s)) = ∇_a Q^μ(s,a)|_(a=μ_θ(s)) "
        "∇_θ μ_θ(s), so ∇J(θ) = E_(s~D)[∇_a Q^μ(s,a)|_(a=μ_θ(s)) ∇_θ μ_θ(s)]",
        "Q^(μ_θ) depends on θ through the policy followed after the first action; the deterministic policy "
        "gradient theorem (Silver et al. 2014, Theorem 1) weights the states by the discounted visitation "
        "from D: ∇J = Σ_t γ^t E_(s_t)[∇_θ μ_θ(s_t) ∇_a Q^μ(s_t, a)|_(a=μ_θ(s_t))], s_0 ~ D. The printed "
        "expression is the off-policy approximation (Degris et al. 2012; Silver et al. 2014, sec. 4.2), not ∇J",
        "the chain rule through the action alone drops ∂Q^(μ_θ)/∂θ",
        _c.w_ddpg_gradient,
    ),
    Erratum(
        "ou-process",
        (_L(PG_SURVEY, "Why Does Deterministic Policy Affect Exploration?", "Ornstein-Uhlenbeck (OU) noise"),),
        "N_(t+1) = θ(μ − N_t) + σW_t, where W_t is a Wiener process",
        "N_(t+1) = N_t + θ(μ − N_t)Δt + σ(W_(t+Δt) − W_t) (Euler–Maruyama for dN = θ(μ − N)dt + σ dW); "
        "exactly, N_(t+1) = μ + e^(−θΔt)(N_t − μ) + σ√((1 − e^(−2θΔt))/(2θ)) ξ_t, ξ_t ~ N(0, 1)",
        "the printed update drops N_t itself (and uses the Wiener process instead of its increment): with "
        "white noise it is anti-correlated (coefficient −θ), not time-correlated; with W_t itself its "
        "variance grows without bound",
        _c.w_ou_process,
    ),
    Erratum(
        "sac-optimal-policy",
        (_L(PG_SURVEY, "Soft Policy Improvement (Actor Update)"),),
        "π*(a|s) ∝ exp(Q^π(s,a)), which means the optimal policy is obtained by normalizing exp(Q^π(s,a)) "
        "over all actions: π*(a|s) = exp(Q^π(s,a))/Z^π(s)",
        "exp(Q^π(s,·))/Z^π(s) is the soft policy improvement of π (Haarnoja et al. 2018, eq. 4 and Lemma 2: "
        "it is at least as good as π); the optimal policy solves π* ∝ exp(Q^(π*)), the fixed point reached "
        "by soft policy iteration (Haarnoja et al. 2017)",
        "one improvement step is optimal only if π is already optimal",
        _a.w_sac_optimal_policy,
    ),
    Erratum(
        "sac-backup-gamma",
        (_L(PG_SURVEY, "Soft Actor-Critic (SAC)", "box 'SAC main steps', Q-function update"),),
        "Q(s,a) ← r(s,a) + E_(s'~p, a'~π)[Q(s',a') − log π(a'|s')]. This update converges to Q^π",
        "Q(s,a) ← r(s,a) + γ E_(s'~p, a'~π)[Q(s',a') − log π(a'|s')] (the note's own operator T^π in "
        "'Soft Policy Evaluation (Critic Update)')",
        "without γ the backup is not a contraction: on a continuing task its iterates grow without bound",
        _a.w_sac_backup_gamma,
    ),
    Erratum(
        "objective-stationary-rewrite",
        (_L(PG_SURVEY, "Policy Gradient Theorem", "rewriting J over 'the stationary distribution of states'"),),
        "J(θ) = E_τ[R(τ)] rewritten 'using the stationary distribution of states': J(θ) = Σ_s d^π(s) V^π(s) "
        "= Σ_s d^π(s) Σ_a π_θ(a|s) Q^π(s,a), d^π the stationary distribution of the chain under π_θ",
        "J(θ) = Σ_s μ0(s) V^π(s): the start distribution weights V; the stationary distribution does not "
        "enter J (Σ_s d^π(s) V^π(s) = ρ/(1 − γ), with ρ the average reward, in a unichain discounted model)",
        "V^π(s) already sums the whole future from s; averaging it again over where the chain settles "
        "replaces the start state by the long-run state",
        _f.w_objective_stationary,
    ),
    Erratum(
        "inaccurate-baseline-bias",
        (_L(PG_SURVEY, "Bias in Policy Gradient Methods", "'Sources of Bias', baseline approximation"),),
        "'Baseline Approximation: ... If the baseline is inaccurately estimated, it introduces bias in the "
        "policy gradient computation'",
        "a baseline that does not depend on the action taken (nor on the episodes it multiplies), however "
        "inaccurate, leaves the estimator unbiased: E[∇log π(a|s) b(s)] = b(s) Σ_a ∇π(a|s) = 0. An inaccurate "
        "baseline only forgoes variance reduction; bias comes from a baseline fitted on the same episodes "
        "(see batch-mean-baseline) or one that depends on the action",
        "unbiasedness needs E[score | s] = 0, not an accurate b",
        not_witnessable=("the note gives no value for the bias it asserts; tests/test_errata.py shows the "
                         "bias is 0 by exact enumeration with a baseline off by 3"),
    ),
    Erratum(
        "reward-to-go-causality-direction",
        (_L(PG_SURVEY, "Variance Reduction: Causality Trick and Reward-to-Go Estimation"),),
        "the reward-to-go estimator Σ_t ∇log π(a_t|s_t) Σ_(t'≥t) r_t' 'prevents rewards from future time "
        "steps from affecting past actions'",
        "it drops the rewards from past time steps t' < t from the weight of the action at t (an action "
        "cannot affect rewards already received); the rewards from future time steps are exactly what it keeps",
        "the causality runs from actions to later rewards; the note reverses it",
        not_witnessable="a reversed direction in a sentence; the formula next to it is right",
    ),
    Erratum(
        "trpo-second-order-description",
        (_L(PG_SURVEY, "Trust Region Policy Optimization (TRPO)", "'Why Does This Improve Over NPG?'"),
         _L(PG_SURVEY, "Proximal Policy Optimization (PPO)", "'Why PPO is Preferred Over TRPO?'")),
        "'TRPO directly enforces the KL constraint without relying on second-order approximations'; "
        "'TRPO requires computing and inverting the Fisher Information Matrix'",
        "TRPO's step is the natural-gradient step of the quadratic KL model ½ΔθᵀFΔθ (Schulman et al. 2015, "
        "Appendix C), computed by conjugate gradient from Fisher-vector products without forming or "
        "inverting F; only its backtracking line search checks the exact KL (and the surrogate)",
        "the direction and the initial step length both come from the second-order model",
        not_witnessable="a wrong description of what the algorithm computes",
    ),
    Erratum(
        "soft-value-temperature",
        (_L(PG_SURVEY, "Soft Policy"), _L(PG_SURVEY, "Soft Policy Evaluation (Critic Update)")),
        "for J(π) = Σ_t E[r(s_t, a_t) + αH(π(·|s_t))]: Q(s_t, a_t) = r + γE[V(s_(t+1))], V(s_t) = "
        "E_(a~π)[Q(s_t, a_t) − log π(a_t|s_t)]",
        "V(s_t) = E_(a~π)[Q(s_t, a_t) − α log π(a_t|s_t)] (Haarnoja et al. 2018, eq. 3); without α the "
        "recursion evaluates the objective with temperature 1, whatever α the objective has",
        "the entropy bonus of the objective is αH, so its Bellman recursion subtracts α log π",
        _a.w_soft_value_temperature,
    ),
)

_BY_ID = {e.id: e for e in ERRATA}
if len(_BY_ID) != len(ERRATA):  # pragma: no cover
    raise RuntimeError("erratum ids must be unique")


def get(erratum_id: str) -> Erratum:
    """The erratum named ``erratum_id``; ``ValueError`` listing the valid ids otherwise."""
    if not isinstance(erratum_id, str):
        raise TypeError(f"erratum_id must be a str (one of: {', '.join(_BY_ID)}), got {type(erratum_id).__name__}")
    try:
        return _BY_ID[erratum_id]
    except KeyError:
        raise ValueError(f"erratum_id {erratum_id!r} is not a known erratum; valid ids: {', '.join(_BY_ID)}") from None


def _fmt(x: float) -> str:
    return f"{x:.10g}"


def format_errata() -> str:
    """The text ``pgexact errata`` prints: every erratum, with its witness computed now."""
    n_num = sum(e.witnessable for e in ERRATA)
    lines = [
        f"Errata in the course notes: {len(ERRATA)} statements wrong as printed "
        f"({n_num} with a numerical witness).",
        "The notes are cited by title and section heading (see REFERENCES.md). Each witness evaluates, on",
        "the instance shown, the printed and the corrected statements, and the truth twice, independently",
        "of both; 'separates' means the two computations of the truth agree, the corrected statement",
        "holds and the printed one misses by far more than their error.",
        "",
    ]
    for i, e in enumerate(ERRATA, 1):
        lines += [
            f"[E{i:02d}] {e.id}",
            f"  where:     {e.location}",
            f"  printed:   {e.printed}",
            f"  corrected: {e.corrected}",
            f"  why:       {e.why}",
        ]
        if e.witness is None:
            lines += [f"  witness:   not numerically witnessable ({e.not_witnessable})", ""]
            continue
        w = e.witness()
        lines += [
            f"  witness:   {w.quantity}",
            f"             on {w.instance}",
            f"             printed {_fmt(w.printed)} | corrected {_fmt(w.corrected)} | "
            f"truth {_fmt(w.reference)} and {_fmt(w.reference_check)} ({w.kind}) -> "
            f"{'separates' if w.separates else 'DOES NOT SEPARATE'}",
            f"             truth by {w.reference_method}",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"
