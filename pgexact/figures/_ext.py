r"""Figures that need the update rules, the estimators and the LQR module (issues 3-5)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .. import lqr as L
from ..estimators import estimator_moments
from ..exact import evaluate, policy_gradient
from ..mdps import gridworld, random_mdp
from ..policies.softmax import TabularSoftmax
from ..updates import ExactSource, npg_step, pg_step, ppo_update, train, trpo_step
from ._core import C_NPG, C_OPT, C_PG, C_PPO, C_TRPO, optimal_value


# --------------------------------------------------------------------------- learning curves
def make_learning_curves(fig: Figure) -> None:
    mdp = gridworld(4, 4, gamma=0.95, slip=0.1)
    pol = TabularSoftmax(mdp.n_states, mdp.n_actions)
    src = ExactSource(mdp, pol)
    j_star, _ = optimal_value(mdp)  # exact policy iteration: J* to rounding error
    n = 80
    theta0 = np.zeros(pol.n_params)
    runs = [
        ("PG (lr 5)", C_PG, "-", train(pg_step, src, theta0, n, progress=False, lr=5.0)),
        ("NPG (KL radius δ = 0.01)", C_NPG, "-", train(npg_step, src, theta0, n, progress=False, delta=0.01)),
        ("TRPO (δ = 0.01, CG + line search)", C_TRPO, "--", train(trpo_step, src, theta0, n, progress=False, delta=0.01)),
        ("PPO-clip (ε = 0.2, lr 5, 10 epochs)", C_PPO, "-", train(ppo_update, src, theta0, n, progress=False, clip=0.2, lr=5.0, epochs=10)),
    ]
    ax1, ax2 = fig.subplots(1, 2)
    k = np.arange(n + 1)
    for label, color, style, hist in runs:
        ax1.plot(k, hist.J, style, color=color, lw=2, label=label)
        ax2.semilogy(k, np.maximum(j_star - hist.J, 1e-16), style, color=color, lw=2, label=label)
    ax1.axhline(j_star, color=C_OPT, lw=1.2, ls=":", label=f"optimum J* = {j_star:.4f} (policy iteration)")
    ax1.set_xlabel("iteration")
    ax1.set_ylabel(r"exact $J(\theta_k)$")
    ax1.set_title("expected discounted return")
    ax1.legend(fontsize=8, loc="lower right")
    ax2.set_xlabel("iteration")
    ax2.set_ylabel(r"$J^\star - J(\theta_k)$")
    ax2.set_title("sub-optimality (log scale)")
    ax2.set_ylim(1e-12, 1)
    fig.suptitle("Exact learning curves on a 4×4 gridworld (slip 0.1, γ = 0.95, tabular softmax, θ0 = 0)")


# --------------------------------------------------------------------------- GAE
def make_gae_bias_variance(fig: Figure) -> None:
    mdp = random_mdp(3, 2, gamma=0.9, horizon=6, seed=51)
    pol = TabularSoftmax(3, 2)
    theta = np.random.default_rng(52).standard_normal(6)
    pi = pol.probs(theta)
    ev = evaluate(mdp, pi)
    g = policy_gradient(mdp, pol, theta)
    V_wrong = ev.V + 0.5 * np.random.default_rng(53).standard_normal(ev.V.shape)
    lams = np.linspace(0.0, 1.0, 21)
    ax1, ax2 = fig.subplots(1, 2)
    for V, label, style in [(V_wrong, r"critic $\hat V = V + $ noise (sd 0.5)", "-"), (ev.V, r"exact critic $\hat V = V$", "--")]:
        bias, var = np.empty(lams.size), np.empty(lams.size)
        for i, lam in enumerate(lams):
            moments = estimator_moments(mdp, pol, theta, "gae", V=V, lam=lam)
            bias[i] = np.linalg.norm(moments.mean - g)
            var[i] = np.trace(moments.covariance)
        ax1.plot(lams, bias, style, marker="o", ms=3, color=C_PG, label=label)
        ax2.plot(lams, var, style, marker="o", ms=3, color=C_NPG, label=label)
    ax1.set_xlabel(r"$\lambda$")
    ax1.set_ylabel(r"bias $\|E[\hat g_\lambda] - \nabla J\|$")
    ax1.set_title("bias (zero at λ = 1, or with the exact critic)")
    ax1.legend(fontsize=8)
    ax2.set_xlabel(r"$\lambda$")
    ax2.set_ylabel(r"variance $\mathrm{tr\,Cov}(\hat g_\lambda)$ per episode")
    ax2.set_title("variance (grows with λ)")
    ax2.legend(fontsize=8)
    fig.suptitle("GAE(γ, λ) policy-gradient estimator: exact bias and variance (moment recursions)\n"
                 "(random 3-state MDP, 2 actions, horizon 6, γ = 0.9)")


# --------------------------------------------------------------------------- LQR
def make_lqr_convergence(fig: Figure) -> None:
    lqr = L.LQR(A=[[1.0, 1.0], [0.0, 1.0]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]], gamma=0.9, Sigma0=np.eye(2))
    c_star = L.riccati(lqr).cost
    K0 = np.array([[0.2, 0.5]])
    c0 = L.evaluate(lqr, K0).cost
    mu = float(np.linalg.eigvalsh(lqr.Sigma0).min())
    eta_npg = 1.0 / (float(np.linalg.norm(lqr.R, 2)) + lqr.gamma * float(np.linalg.norm(lqr.B, 2)) ** 2 * c0 / mu)
    methods = [
        ("gradient descent, η = 2e-3", C_PG, L.cost_gradient, 2e-3),
        (rf"natural gradient $\nabla C\,\Sigma_K^{{-1}}$, η = {eta_npg:.3f} (Fazel et al. Thm 7)", C_NPG, L.npg_direction, eta_npg),
        ("Gauss-Newton, η = 1/2 (policy iteration)", C_TRPO, L.gauss_newton_direction, 0.5),
    ]
    n = 200
    ax = fig.subplots()
    for label, color, direction, eta in methods:
        K = K0.copy()
        gaps = np.empty(n + 1)
        for k in range(n + 1):
            gaps[k] = L.evaluate(lqr, K).cost - c_star
            K = K - eta * direction(lqr, K)
        # stop each curve where the gap reaches rounding (1e-13 C*): below that it is noise, not data
        floor = 1e-13 * c_star
        k_end = int(np.argmax(gaps <= floor)) if np.any(gaps <= floor) else n + 1
        ks = np.arange(k_end)
        ax.semilogy(ks, gaps[:k_end], color=color, lw=2, label=label)
        if k_end <= n:
            ax.semilogy([k_end - 1], [gaps[k_end - 1]], "o", color=color, ms=5)
    ax.plot([], [], "o", color="0.3", ms=5, label="last iterate above the rounding level of C")
    ax.axhline(1e-13 * c_star, color="0.6", lw=0.8, ls=":")
    ax.text(n, 1.5e-13 * c_star, "rounding level of C", ha="right", va="bottom", fontsize=7, color="0.4")
    ax.set_ylim(1e-14 * c_star, 2 * (c0 - c_star))
    ax.set_xlabel("iteration k")
    ax.set_ylabel(r"$C(K_k) - C(K^\star)$")
    ax.set_title("LQR policy optimization: gradient descent, natural gradient and Gauss-Newton\n"
                 r"(double integrator, Q = I, R = 1, γ = 0.9, $K_0$ = [0.2, 0.5]; $C^\star$ from the Riccati equation)")
    ax.legend(fontsize=8)


def specs(FigureSpec):  # noqa: N803 - the class is passed in to avoid a circular import
    """The figure specs of this module (called by ``pgexact.figures``)."""
    return [
        FigureSpec(
            "learning_curves", "Exact learning curves of PG, NPG, TRPO and PPO",
            "Exact J(θ_k) of PG, NPG, TRPO and PPO-clip (pgexact.updates with the exact gradient source) on a 4×4 "
            "gridworld with slip 0.1 and γ = 0.95, against the optimum J* from exact policy iteration. Sources: Sutton et "
            "al. (2000) (PG); Kakade (2002) (NPG); Schulman et al. (2015), Algorithm 1 and Appendix C (TRPO); "
            "Schulman et al. (2017), eq. 7 (PPO).",
            make_learning_curves, (11.0, 4.5),
        ),
        FigureSpec(
            "gae_bias_variance", "GAE bias and variance against λ",
            "Exact bias ‖E[ĝ_λ] − ∇J‖ and per-episode variance tr Cov(ĝ_λ) of the GAE(γ, λ) policy-gradient "
            "estimator, from the exact moment recursions (no sampling, no enumeration) on a random 3-state MDP "
            "(horizon 6), with a noisy critic "
            "and with the exact critic. Source: Schulman et al. (2016), 'High-Dimensional Continuous Control Using "
            "Generalized Advantage Estimation', eq. 16 and sec. 3.",
            make_gae_bias_variance, (11.0, 4.5),
        ),
        FigureSpec(
            "lqr_convergence", "LQR: gradient descent, natural gradient, Gauss-Newton",
            "C(K_k) − C* for exact policy gradient descent K ← K − η∇C(K), the natural gradient K ← K − η∇C(K)Σ_K⁻¹ "
            "and Gauss-Newton K ← K − ½(R + γBᵀP_K B)⁻¹∇C(K)Σ_K⁻¹ on a discounted double integrator; C* from the "
            "Riccati equation. Source: Fazel, Ge, Kakade & Mesbahi (2018), 'Global Convergence of Policy Gradient "
            "Methods for the Linear Quadratic Regulator', sec. 4 and Theorems 7-8; Hewer (1971).",
            make_lqr_convergence, (7.5, 4.8),
        ),
    ]
