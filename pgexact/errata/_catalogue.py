r"""The errata of the course notes in ``shared/seeds`` and their numerical witnesses.

Each witness builds a small, fully specified instance, computes the quantity the printed
formula is about with the library (and, as the reference, an independent computation:
trajectory enumeration, a truncated sum, central differences, a numerical optimizer), and
reports the printed value, the corrected value and the reference.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.optimize

from .._random import as_generator
from ..exact import (
    evaluate,
    fisher,
    kl_max,
    natural_gradient,
    policy_gradient,
    reinforce_by_enumeration,
    state_marginals,
    stationary_distribution,
    tv_max,
    tv_per_state,
)
from ..mdps import bandit, random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import LinearSoftmax, TabularSoftmax
from ._witness import Witness, bound_witness, identity_witness

# Files of the notes (shared/seeds) and their titles, for locations.
F000 = "000_4227fda1d476c2b0.txt (Advanced Policy Gradients)"
F001 = "001_a969d6b160a1eec2.txt (Policy Gradients, jupytext chapter)"
F002 = "002_27adc39ebcbc6d83.txt (CS285 Lecture 9: Advanced Policy Gradient)"
F003 = "003_679b8cdb08266a71.txt (Policy Gradient course notes: PG, NPG, TRPO, PPO, DDPG, SAC)"
F004 = "004_15b7a49fdeb3a5a7.txt (Policy Gradient Fundamentals)"


def ppo_clipped_objective(ratio: np.ndarray | float, advantage: float, eps: float) -> np.ndarray:
    r"""PPO's per-sample clipped objective :math:`\min(rA, \mathrm{clip}(r, 1-\epsilon, 1+\epsilon)A)`.

    Schulman et al. (2017), eq. 7. Vectorized over ``ratio``.
    """
    r = np.asarray(ratio, dtype=np.float64)
    return np.minimum(r * advantage, np.clip(r, 1.0 - eps, 1.0 + eps) * advantage)


# --------------------------------------------------------------------------- instances
def _linear_instance() -> tuple[FiniteMDP, LinearSoftmax, np.ndarray]:
    """random_mdp(3, 3, γ=0.9, seed=7), LinearSoftmax with N(0,1) features (seed 8), θ=(0.3, -0.2)."""
    mdp = random_mdp(3, 3, gamma=0.9, seed=7)
    pol = LinearSoftmax(as_generator(8).standard_normal((3, 3, 2)))
    return mdp, pol, np.array([0.3, -0.2])


_LINEAR = "random_mdp(3, 3, gamma=0.9, seed=7), LinearSoftmax(N(0,1) features, seed 8), θ = (0.3, -0.2)"


def _two_state_switch() -> FiniteMDP:
    """Two states; action a moves to state a deterministically; start in state 0; zero reward."""
    P = np.zeros((2, 2, 2))
    P[:, 0, 0] = 1.0
    P[:, 1, 1] = 1.0
    return FiniteMDP(P, np.zeros((2, 2)), np.array([1.0, 0.0]), 0.9, None)


_SWITCH = "2-state MDP, action a moves to state a, s0 = 0; π = (0.5, 0.5), π' = (0.4, 0.6) in both states"
_PI = np.full((2, 2), 0.5)
_PI_NEW = np.tile([0.4, 0.6], (2, 1))


def _trust_region_step(g: np.ndarray, F: np.ndarray, w: np.ndarray, delta: float) -> float:
    """Coefficient η of the maximizer of gᵀx s.t. ½xᵀFx <= δ along w, by SLSQP (independent of the closed form)."""
    cons = {"type": "ineq", "fun": lambda x: delta - 0.5 * x @ F @ x, "jac": lambda x: -(F @ x)}
    res = scipy.optimize.minimize(
        lambda x: -(g @ x), np.zeros_like(g), jac=lambda x: -g, constraints=[cons],
        method="SLSQP", options={"ftol": 1e-15, "maxiter": 500},
    )
    return float(res.x @ w / (w @ w))


# --------------------------------------------------------------------------- witnesses
def _w_softmax_normalizer() -> Witness:
    S, A = 3, 2
    theta = as_generator(0).standard_normal(S * A)
    table = np.exp(theta.reshape(S, A))
    printed = table[0] / table.sum()  # sum over s and a' as printed
    corrected = TabularSoftmax(S, A).probs(theta)[0]
    return identity_witness(
        "Σ_a π(a|s=0) (must be 1)", f"TabularSoftmax({S}, {A}), θ ~ N(0, 1) with seed 0",
        printed.sum(), corrected.sum(), 1.0, 1e-12,
    )


def _npg_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mdp, pol, theta = _linear_instance()
    return policy_gradient(mdp, pol, theta), fisher(mdp, pol, theta), natural_gradient(mdp, pol, theta)


def _w_npg_step_001() -> Witness:
    delta = 0.01
    g, F, w = _npg_inputs()
    printed = np.sqrt(delta / (g @ F @ g))
    corrected = np.sqrt(2 * delta / (g @ w))
    return identity_witness(
        "step η of θ' = θ + η F⁻¹∇J solving max ∇Jᵀdθ s.t. ½dθᵀF dθ ≤ δ (reference: SLSQP)",
        _LINEAR + f", δ = {delta}", printed, corrected, _trust_region_step(g, F, w, delta), 1e-6,
    )


def _w_npg_step_002() -> Witness:
    eps = 0.01
    g, F, w = _npg_inputs()
    printed = np.sqrt(2 * eps / (g @ F @ g))
    corrected = np.sqrt(2 * eps / (g @ w))
    return identity_witness(
        "step α of θ' = θ + α F⁻¹∇J solving max ∇Jᵀdθ s.t. ½dθᵀF dθ ≤ ε (reference: SLSQP)",
        _LINEAR + f", ε = {eps}", printed, corrected, _trust_region_step(g, F, w, eps), 1e-6,
    )


def _w_npg_lagrange_003() -> Witness:
    eps = 0.01
    g, F, w = _npg_inputs()
    gFg = g @ w  # ∇Jᵀ F⁻¹ ∇J
    lam = np.sqrt(gFg / (2 * eps))  # the notes' (correct) final multiplier
    step = w / lam
    return identity_witness(
        "½ dθᵀ F dθ at dθ = F⁻¹∇J/λ, λ = √(∇JᵀF⁻¹∇J / 2ε) (must equal ε)",
        _LINEAR + f", ε = {eps}", 0.5 * gFg / lam, 0.5 * gFg / lam**2, 0.5 * step @ F @ step, 1e-10,
    )


def _w_drift_kl_vs_tv() -> Witness:
    mdp, t = _two_state_switch(), 1
    # the printed claim is pointwise in s; the corrected one bounds the L1 norm, hence also max_s
    drift = np.abs(state_marginals(mdp, _PI_NEW, t + 1)[t] - state_marginals(mdp, _PI, t + 1)[t]).max()
    kl = max(kl_max(_PI_NEW, _PI), kl_max(_PI, _PI_NEW))  # either direction
    return bound_witness(
        f"max_s |p'_t(s) − p_t(s)| at t = {t}", _SWITCH,
        2 * kl * t, 2 * tv_max(_PI_NEW, _PI) * t, drift, "upper bound",
    )


def _w_coupling() -> Witness:
    p = np.array([[0.5, 0.3, 0.2]])
    q = np.array([[0.3, 0.3, 0.4]])
    eps = float(tv_per_state(p, q)[0])
    common = np.minimum(p[0], q[0])
    coupling = np.diag(common) + np.outer(p[0] - common, q[0] - common) / eps
    if not (np.allclose(coupling.sum(axis=1), p[0], atol=1e-15) and np.allclose(coupling.sum(axis=0), q[0], atol=1e-15)):
        raise AssertionError("maximal coupling has wrong marginals")  # pragma: no cover
    return identity_witness(
        "Pr(X = Y) under the maximal coupling of p_X, p_Y (no coupling does better)",
        "p_X = (0.5, 0.3, 0.2), p_Y = (0.3, 0.3, 0.4), D_TV = 0.2",
        eps, 1.0 - eps, np.trace(coupling), 1e-12,
    )


def _w_max_f() -> Witness:
    mdp, t = _two_state_switch(), 1
    f = np.array([-1.0, -3.0])
    p = state_marginals(mdp, _PI, t + 1)[t]
    p_new = state_marginals(mdp, _PI_NEW, t + 1)[t]
    eps = tv_max(_PI_NEW, _PI)
    return bound_witness(
        f"E_{{p'_t}}[f] at t = {t}, f = (-1, -3)", _SWITCH,
        p @ f - 2 * eps * t * f.max(), p @ f - 2 * eps * t * np.abs(f).max(), p_new @ f, "lower bound",
    )


def _rtg_instance() -> tuple[FiniteMDP, TabularSoftmax, np.ndarray]:
    mdp = random_mdp(3, 2, gamma=0.8, horizon=4, seed=3)
    return mdp, TabularSoftmax(3, 2), as_generator(4).standard_normal(6)


def _w_reward_to_go_discount() -> Witness:
    mdp, pol, theta = _rtg_instance()
    pi, ev = pol.probs(theta), evaluate(mdp, pol.probs(theta))
    ref = reinforce_by_enumeration(mdp, pol, theta).reinforce
    k = int(np.argmax(np.abs(ref)))
    terms = [pol.score_contract(theta, ev.p[t][:, None] * pi * ev.Q[t]) for t in range(mdp.horizon)]
    printed = sum(terms)  # E[Σ_t ∇log π(a_t|s_t) Σ_{t'≥t} γ^{t'-t} r_t']
    corrected = sum(mdp.gamma**t * term for t, term in enumerate(terms))
    return identity_witness(
        f"coordinate {k} of E[Σ_t ∇log π(a_t|s_t) Ψ_t] (reference: ∇J by trajectory enumeration)",
        "random_mdp(3, 2, gamma=0.8, horizon=4, seed=3), TabularSoftmax, θ ~ N(0,1) seed 4",
        printed[k], corrected[k], ref[k], 1e-10,
    )


def _w_baseline_index() -> Witness:
    mdp = random_mdp(3, 2, gamma=1.0, horizon=4, seed=5)
    pol, theta = TabularSoftmax(3, 2), as_generator(6).standard_normal(6)
    pi, ev, H = pol.probs(theta), evaluate(mdp, pol.probs(theta)), mdp.horizon
    ref = reinforce_by_enumeration(mdp, pol, theta).reinforce
    k = int(np.argmax(np.abs(ref)))
    # the baseline term has mean zero; Σ_{h'=h}^{H-1} r_h = (H - h) r_h as printed
    printed = sum(pol.score_contract(theta, (H - h) * ev.p[h][:, None] * pi * mdp.r) for h in range(H))
    corrected = sum(pol.score_contract(theta, ev.p[h][:, None] * pi * ev.Q[h]) for h in range(H))
    return identity_witness(
        f"coordinate {k} of the expected PG-with-baseline estimator (reference: ∇J by enumeration)",
        "random_mdp(3, 2, gamma=1, horizon=4, seed=5), TabularSoftmax, θ ~ N(0,1) seed 6",
        printed[k], corrected[k], ref[k], 1e-10,
    )


def _stationary_instance() -> tuple[FiniteMDP, TabularSoftmax, np.ndarray]:
    mdp = random_mdp(4, 2, gamma=0.9, seed=11)
    return mdp, TabularSoftmax(4, 2), as_generator(12).standard_normal(8)


_STAT = "random_mdp(4, 2, gamma=0.9, seed=11), TabularSoftmax, θ ~ N(0,1) seed 12"


def _w_objective_stationary() -> Witness:
    mdp, pol, theta = _stationary_instance()
    pi = pol.probs(theta)
    ev = evaluate(mdp, pi)
    T = 600  # 0.9**600 * max|r| / (1 - 0.9) < 1e-26: truncation below rounding
    p = state_marginals(mdp, pi, T)
    reference = float((mdp.gamma ** np.arange(T)) @ (p @ mdp.policy_reward(pi)))
    return identity_witness(
        "J(θ) = E[Σ_t γ^t r_t] (reference: truncated sum over state marginals)", _STAT,
        stationary_distribution(mdp, pi) @ ev.V, mdp.mu0 @ ev.V, reference, 1e-12,
    )


def _w_pg_theorem_constant() -> Witness:
    mdp, pol, theta = _stationary_instance()
    pi = pol.probs(theta)
    ev = evaluate(mdp, pi)
    nu = stationary_distribution(mdp, pi)
    g = policy_gradient(mdp, pol, theta)
    k = int(np.argmax(np.abs(g)))
    h = 1e-5
    e = np.zeros_like(theta)
    e[k] = h
    fd = (evaluate(mdp, pol.probs(theta + e)).J - evaluate(mdp, pol.probs(theta - e)).J) / (2 * h)
    printed = pol.score_contract(theta, nu[:, None] * pi * ev.Q)[k]
    corrected = pol.score_contract(theta, ev.d[:, None] * pi * ev.Q)[k] / (1 - mdp.gamma)
    # central difference, h = 1e-5: truncation ~h² J''' and rounding ~eps |J| / h, both < 1e-8
    return identity_witness(
        f"∂J/∂θ_{k} (reference: central difference of exact J, h = 1e-5)", _STAT,
        printed, corrected, fd, 1e-7,
    )


def _w_batch_mean_baseline() -> Witness:
    means, N = np.array([1.0, 0.0]), 2
    mdp, pol, theta = bandit(means), TabularSoftmax(1, 2), np.array([0.2, -0.3])
    pi, score = pol.probs(theta)[0], pol.score(theta)[0]
    g = policy_gradient(mdp, pol, theta)
    k = int(np.argmax(np.abs(g)))
    expected = np.zeros(2)
    for actions in itertools.product(range(2), repeat=N):  # exact expectation over the batch
        a = np.array(actions)
        G = means[a]
        est = (score[a] * (G - G.mean())[:, None]).mean(axis=0)
        expected += np.prod(pi[a]) * est
    return identity_witness(
        f"coordinate {k} of E[(1/N) Σ_i ∇log π(a_i)(G_i − b)], b = (1/N) Σ_j G_j (reference: enumeration of the batch)",
        f"bandit(means=(1, 0)), TabularSoftmax(1, 2), θ = (0.2, -0.3), batch size N = {N}",
        g[k], (1 - 1 / N) * g[k], expected[k], 1e-12,
    )


def _w_hessian_log_pi() -> Witness:
    pol = LinearSoftmax(as_generator(13).standard_normal((1, 3, 2)))
    theta0 = np.array([0.4, -0.7])
    pi0 = pol.probs(theta0)[0]

    def h(t: np.ndarray) -> float:
        return float(pi0 @ pol.log_probs(t)[0])

    eps = 1e-4
    e = np.array([eps, 0.0])
    # second central difference: truncation ~eps² h'''' ~ 1e-8, rounding ~1e-16 |h| / eps² ~ 1e-8
    fd = (h(theta0 + e) - 2 * h(theta0) + h(theta0 - e)) / eps**2
    F = fisher(bandit(np.zeros(3)), pol, theta0)
    return identity_witness(
        "[E_{a~π}[∇²_θ log π_θ(a|s)]]_{00} (reference: second central difference, h = 1e-4)",
        "one state, 3 actions, LinearSoftmax(N(0,1) features, seed 13), θ = (0.4, -0.7)",
        0.0, -F[0, 0], fd, 1e-5,
    )


def _w_ppo_clip() -> Witness:
    A, eps, r, h = 1.0, 0.2, 0.5, 1e-6
    fd = float((ppo_clipped_objective(r + h, A, eps) - ppo_clipped_objective(r - h, A, eps)) / (2 * h))
    return identity_witness(
        "∂/∂r min(rA, clip(r, 1−ε, 1+ε)A) at r = 0.5 (outside 1 ± ε), A = +1 (reference: central difference)",
        "A = 1, ε = 0.2, r = 0.5", 0.0, A, fd, 1e-8,
    )
