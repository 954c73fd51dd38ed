r"""Figures of the exact second moments, optimal baselines, convergence bounds and the average reward."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .. import average
from ..estimators import estimator_moments, optimal_baselines
from ..exact import evaluate, occupancy, policy_gradient
from ..mdps import gridworld, random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import LinearSoftmax, TabularSoftmax
from ..theorems import convergence as conv
from ..theorems import convergence_entropy as conv_ent
from ._core import C_BAD, C_NPG, C_OPT, C_PG, C_PPO, C_TRPO

__all__ = ["continuing_gridworld", "variance_against_horizon", "specs"]

HORIZONS = (1, 2, 5, 10, 20, 50, 100, 200)
ESTIMATOR_LINES = (
    ("reinforce", "REINFORCE (total return)", C_PG, "o-"),
    ("reward_to_go", "reward-to-go", C_TRPO, "s-"),
    ("state_baseline", r"reward-to-go $-\ V_t(s_t)$", C_NPG, "^-"),
    ("gae", r"GAE(λ = 0.9) with exact $V_t$", C_BAD, "v-"),
    ("advantage", r"exact advantage $A_t(s_t, a_t)$", C_PPO, "d-"),
)


def continuing_gridworld(n: int = 5, *, seed: int = 1) -> FiniteMDP:
    r"""An n×n gridworld (slip 0.2) whose goal sends the agent back to the start, rewards U[0, 1] + goal bonus.

    A continuing task (no terminal state), so that variance keeps growing with the horizon
    instead of saturating at absorption; γ = 1 and horizon 1 (use ``with_horizon``).
    """
    g = gridworld(n, n, gamma=0.99, slip=0.2)
    P = np.array(g.P)
    goal = int(np.flatnonzero(g.terminal)[0])
    P[goal] = 0.0
    P[goal, :, 0] = 1.0
    r = np.array(g.r) + np.random.default_rng(seed).uniform(0.0, 1.0, g.r.shape)
    return FiniteMDP(P, r, g.mu0, 1.0, 1)


def variance_against_horizon(mdp: FiniteMDP, policy, theta: np.ndarray, gamma: float,  # noqa: ANN001
                             horizons=HORIZONS) -> dict[str, np.ndarray]:  # noqa: ANN001
    """``tr Cov`` of one episode's estimate for each estimator of :data:`ESTIMATOR_LINES` and horizon."""
    pi = policy.probs(theta)
    out = {name: np.empty(len(horizons)) for name, *_ in ESTIMATOR_LINES}
    for j, H in enumerate(horizons):
        m = mdp.with_horizon(int(H), gamma=gamma)
        ev = evaluate(m, pi)
        kws = {"reinforce": {}, "reward_to_go": {}, "state_baseline": {"b": ev.V},
               "gae": {"V": ev.V, "lam": 0.9}, "advantage": {"A": ev.A}}
        for name, *_ in ESTIMATOR_LINES:
            out[name][j] = estimator_moments(m, policy, theta, name, **kws[name]).trace
    return out


def _slope(h: np.ndarray, v: np.ndarray) -> float:
    return float(np.polyfit(np.log(h[-3:]), np.log(v[-3:]), 1)[0])


# --------------------------------------------------------------------------- variance against horizon
def make_estimator_variance(fig: Figure) -> None:
    mdp = continuing_gridworld()
    pol = TabularSoftmax(mdp.n_states, mdp.n_actions)
    theta = 0.5 * np.random.default_rng(0).standard_normal(pol.n_params)
    h = np.array(HORIZONS, dtype=float)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, gamma in zip(axes, (1.0, 0.95)):
        var = variance_against_horizon(mdp, pol, theta, gamma)
        for name, label, color, style in ESTIMATOR_LINES:
            ax.loglog(h, var[name], style, color=color, lw=2, ms=4,
                      label=f"{label}: slope {_slope(h, var[name]):.2f}")
        ref = var["reinforce"][-1]
        ax.loglog(h, ref * (h / h[-1]) ** 2, ":", color="0.5", lw=1, label=r"$H^2$ (the notes' claim for REINFORCE)")
        ax.loglog(h, ref * (h / h[-1]) ** 3, "--", color="0.5", lw=1, label=r"$H^3$")
        ax.set_xlabel("horizon H")
        ax.set_title(f"γ = {gamma:g}" + (" (undiscounted)" if gamma == 1 else " (discounted estimators)"))
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel(r"exact $\mathrm{tr\,Cov}(\hat g)$ of one episode's estimate")
    axes[0].set_ylim(1e-2, 1e7)
    fig.suptitle("Variance of policy-gradient estimators against the horizon, exactly, by recursion "
                 "(continuing 5×5 gridworld, 100 tabular parameters; slopes fitted on H = 50..200)")


# --------------------------------------------------------------------------- optimal baselines
def make_optimal_baselines(fig: Figure) -> None:
    mdp0 = continuing_gridworld(4)
    pol = TabularSoftmax(mdp0.n_states, mdp0.n_actions)
    theta = 0.5 * np.random.default_rng(3).standard_normal(pol.n_params)
    horizons = np.array([2, 5, 10, 20, 50, 100])
    rows = []
    for H in horizons:
        opt = optimal_baselines(mdp0.with_horizon(int(H), gamma=1.0), pol, theta)
        rows.append([opt.variance_none.sum(), opt.variance_constant.sum(), opt.variance_value.sum(),
                     opt.variance_state.sum()])
    rows = np.array(rows)
    ax1, ax2 = fig.subplots(1, 2)
    for i, (label, color, style) in enumerate([("no baseline (reward-to-go)", C_PG, "o-"),
                                               ("best constant, per coordinate", C_TRPO, "s-"),
                                               (r"$V_t(s)$", C_NPG, "^-"),
                                               (r"best $b_t(s)$, per coordinate", C_OPT, "d-")]):
        ax1.loglog(horizons, rows[:, i], style, color=color, lw=2, ms=4, label=label)
    ax1.set_xlabel("horizon H")
    ax1.set_ylabel(r"$\sum_k \mathrm{Var}\,\hat g_k$ (one episode)")
    ax1.set_title("total variance against the horizon")
    ax1.legend(fontsize=8)
    opt = optimal_baselines(mdp0.with_horizon(50, gamma=1.0), pol, theta)
    order = np.argsort(opt.variance_value / opt.variance_none)
    k = np.arange(pol.n_params)
    ax2.semilogy(k, (opt.variance_constant / opt.variance_none)[order], ".", color=C_TRPO, label="best constant")
    ax2.semilogy(k, (opt.variance_value / opt.variance_none)[order], "-", color=C_NPG, lw=2, label=r"$V_t(s)$")
    ax2.semilogy(k, (opt.variance_state / opt.variance_none)[order], ".", color=C_OPT, label=r"best $b_t(s)$")
    ax2.set_xlabel(r"parameter coordinate k (sorted by the $V_t(s)$ ratio)")
    ax2.set_ylabel(r"$\mathrm{Var}\,\hat g_k(b) / \mathrm{Var}\,\hat g_k(0)$")
    ax2.set_title(f"per coordinate, H = 50: best b_t(s) removes {1 - opt.variance_state.sum() / opt.variance_value.sum():.0%} "
                  "of V's variance")
    ax2.legend(fontsize=8)
    fig.suptitle("Variance-minimizing baselines, exactly (continuing 4×4 gridworld, γ = 1, tabular softmax)")


# --------------------------------------------------------------------------- convergence bounds
def make_convergence_bounds(fig: Figure) -> None:
    axes = fig.subplots(2, 4).ravel()
    rng = np.random.default_rng(7)
    m = conv.random_tabular(rng, (0.9, 0.9), mu_concentration=5.0)
    run = conv.softmax_pg_run(m, np.zeros(m.r.shape), 400)
    ax = axes[0]
    ax.loglog(run.t, run.gaps, color=C_PG, lw=2, label="exact gap")
    ax.loglog(run.t, conv.mei_pg_bound(run), "--", color=C_OPT, label="Mei et al. Thm 4")
    ax.set_title("softmax PG, η = (1−γ)³/8")
    m = conv.random_tabular(np.random.default_rng(8), (0.5, 0.5))
    for eta, color in ((0.02, C_NPG), (0.2, C_TRPO)):
        run = conv.npg_run(m, eta, 60)
        axes[1].loglog(run.t, run.gaps, color=color, lw=2, label=f"exact gap, η = {eta}")
        axes[1].loglog(run.t, conv.npg_bound(run), "--", color=color, lw=1, label="Agarwal et al. Thm 16")
    axes[1].set_title("NPG from θ = 0")
    rng = np.random.default_rng(9)
    doms = [conv._domination_instance(rng) for _ in range(300)]
    axes[2].loglog([p.mismatch * p.best_ascent for p in doms], [p.gap for p in doms], ".", color=C_PPO, ms=3)
    lim = [1e-4, 1e2]
    axes[2].loglog(lim, lim, "-", color=C_OPT, lw=1, label="gap = bound")
    axes[2].set_xlabel(r"$\|d^{\pi^*}_\rho/d^\pi_\mu\|_\infty \max_{\bar\pi}(\bar\pi-\pi)^\top\nabla V$")
    axes[2].set_title("gradient domination (300 policies)")
    m = conv.random_tabular(np.random.default_rng(10), (0.8, 0.8))
    tau = 0.1
    run = conv.soft_npg_run(m, tau, 0.5 * (1 - m.gamma) / tau, np.zeros(m.r.shape), 30)
    t = np.arange(run.errors.size)
    axes[3].semilogy(t, run.errors, color=C_NPG, lw=2, label=r"$\|Q^*_\tau - Q^{(t+1)}_\tau\|_\infty$")
    axes[3].semilogy(t, run.C1 * run.gamma * (1 - run.eta * run.tau) ** t, "--", color=C_OPT, label="Cen et al. Thm 1")
    axes[3].set_title("entropy-regularized NPG, τ = 0.1")
    m = conv.random_tabular(np.random.default_rng(11), (0.8, 0.8))
    run = conv.pmd_run(m, 0.01, conv.softmax(np.zeros(m.r.shape)), 12)
    k = np.arange(run.gaps.size)
    axes[4].semilogy(k, np.maximum(run.gaps, 1e-16), color=C_TRPO, lw=2, label="exact gap")
    axes[4].semilogy(k, conv.xiao_bound(run), "--", color=C_OPT, label="Xiao Thm 10")
    axes[4].set_title(r"PMD, $\eta_k = 0.01/\gamma^k$")
    rng = np.random.default_rng(12)
    m = conv.random_tabular(rng, (0.8, 0.8))
    pi = conv.softmax(rng.standard_normal(m.r.shape))
    V, Q = conv.values(m, pi)
    A = Q - V[:, None]
    greedy = np.eye(m.r.shape[1])[A.argmax(axis=1)]
    adv_s = np.sum(greedy * A, axis=1)
    adv, eps = float(conv.occupancy(m, pi, m.mu) @ adv_s), float(np.max(np.abs(adv_s)))
    alphas = np.linspace(0.0, 1.0, 101)
    imp = [float(m.mu @ (conv.values(m, (1 - a) * pi + a * greedy)[0] - V)) for a in alphas]
    lb = [conv.cpi_lower_bound(conv.CPIProblem(0.0, a, adv, eps, m.gamma)) for a in alphas]
    axes[5].plot(alphas, imp, color=C_PG, lw=2, label="exact improvement")
    axes[5].plot(alphas, lb, "--", color=C_OPT, label="Kakade & Langford Thm 4.1")
    axes[5].set_ylim(min(0.0, min(imp)) - 0.1, 1.2 * max(imp) + 0.1)
    axes[5].set_xlabel("mixing weight α")
    axes[5].set_title("conservative policy iteration step")
    for ax in axes[:6]:
        ax.legend(fontsize=7)
    _entropy_pg_panels(axes[6], axes[7])
    for ax in axes[[0, 1, 3, 4, 6]]:
        ax.set_xlabel("iteration")
    fig.suptitle("Convergence bounds with their constants computed on the instance, against the exact curves "
                 "(random MDPs, rewards in [0, 1])")


def _entropy_pg_panels(ax_rate, ax_loj) -> None:  # noqa: ANN001
    r"""Entropy-regularized softmax PG (Mei et al. 2020): Theorem 6 on one run, Lemma 15 over random parameters.

    Parameters
    ----------
    ax_rate : matplotlib.axes.Axes
        Receives the exact soft gap :math:`\tilde V^*(\rho) - \tilde V^{\pi_{\theta_t}}(\rho)` of
        :func:`~pgexact.theorems.convergence_entropy.soft_pg_run` (step 1/β) and the Theorem 6 bound
        :math:`\|1/\mu\|_\infty e^{-C(t-1)}\delta_1`, C the minimum of :math:`C_k` over k < t, as
        ``convergence.entropy_pg_linear_rate`` checks it.
    ax_loj : matplotlib.axes.Axes
        Receives the gradient norm against :math:`C(\theta)\,\mathrm{gap}^{1/2}` (Lemma 15) with Mei et al.'s
        constant and with the sharper one, over the parameters of
        :func:`~pgexact.theorems.convergence_entropy.lojasiewicz_problem`.
    """
    rng = np.random.default_rng(34)
    m = conv.random_tabular(rng, (0.8, 0.8), mu_concentration=5.0)
    tau, T = 5.0, 4000
    run = conv_ent.soft_pg_run(m, tau, 0.5 * rng.standard_normal(m.r.shape), T)
    t = np.arange(1, T + 2)
    C = np.minimum.accumulate(conv_ent.mei_rate(run))
    bound = run.inv_mu * run.gaps_mu[0] * np.exp(-np.concatenate([[0.0], C]) * (t - 1))
    observed = np.log(run.gaps_mu[0] / run.gaps_mu[-1]) / T  # mean log-decrease per step of delta_t
    decades = np.log10(run.gaps_rho[0] / run.gaps_rho[-1])
    ax_rate.semilogy(t, run.gaps_rho, color=C_PG, lw=2, label=f"exact soft gap (falls {decades:.1f} decades)")
    ax_rate.semilogy(t, bound, "--", color=C_OPT,
                     label=f"Mei et al. Thm 6, rate C = {C[-1]:.1e}; observed rate {observed:.1e},\n"
                     f"guaranteed / observed = {C[-1] / observed:.1e}")
    ax_rate.set_ylim(bottom=run.gaps_rho[-1] / 30)  # room for the legend under the curve
    ax_rate.legend(fontsize=7, loc="lower left")
    ax_rate.set_title(f"entropy-reg. softmax PG, τ = {tau:g}, γ = {m.gamma:g}, η = 1/β\n(the bound is almost flat)",
                      fontsize=10)
    rng = np.random.default_rng(13)
    probs = [conv_ent.lojasiewicz_problem(rng, (2, 3), (0.8, 0.95)) for _ in range(67)]
    norms = np.concatenate([p.grad_norms for p in probs])
    plotted = [norms]
    for lhs, label, color, marker in ((conv_ent.mei_lojasiewicz_lhs, "Mei et al. C(θ)", C_TRPO, "."),
                                      (conv_ent.lojasiewicz_lhs, "sharper C(θ)", C_NPG, "x")):
        x = np.concatenate([lhs(p) for p in probs])
        plotted.append(x)
        ax_loj.loglog(x, norms, marker, color=color, ms=3,
                      label=f"{label}: max C(θ) gap$^{{1/2}}$ / ‖∇‖ = {np.max(x / norms):.2f}")
    # the diagonal spans the data (a factor 2 beyond it), not matplotlib's autoscaled limits,
    # which differ between matplotlib versions
    values = np.concatenate(plotted)
    lim = [values.min() / 2, values.max() * 2]
    ax_loj.loglog(lim, lim, "-", color=C_OPT, lw=1, label="‖∇‖ = C(θ) gap$^{1/2}$")
    ax_loj.legend(fontsize=7, loc="lower right")
    ax_loj.set_xlabel(r"$C(\theta)\,[\tilde V^*(\rho) - \tilde V^{\pi_\theta}(\rho)]^{1/2}$")
    ax_loj.set_ylabel(r"$\|\nabla_\theta\tilde V^{\pi_\theta}(\mu)\|_2$")
    ax_loj.set_title(f"Łojasiewicz, Mei et al. Lemma 15 ({norms.size} parameters)", fontsize=10)


# --------------------------------------------------------------------------- average reward
def make_average_reward(fig: Figure) -> None:
    mdp = random_mdp(6, 2, gamma=0.9, seed=21)
    pol = LinearSoftmax(np.random.default_rng(22).standard_normal((6, 2, 1)))
    s = np.linspace(-4.0, 4.0, 81)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    rho = np.array([average.evaluate(mdp, pol.probs(np.array([x]))).rho for x in s])
    ax1.plot(s, rho, color=C_OPT, lw=2.5, label=r"average reward $\rho(\theta) = d_\pi^\top r_\pi$")
    for gamma, color in ((0.5, C_PG), (0.9, C_TRPO), (0.99, C_NPG)):
        m = mdp.with_horizon(None, gamma=gamma)
        J = np.array([evaluate(m, pol.probs(np.array([x]))).J for x in s])
        ax1.plot(s, (1 - gamma) * J, "--", color=color, lw=1.5, label=rf"$(1-\gamma)J_\gamma$, γ = {gamma}")
    ax1.set_xlabel("θ (one linear-softmax parameter)")
    ax1.set_ylabel("objective per step")
    ax1.set_title("objectives")
    ax1.legend(fontsize=7)
    g_avg = np.array([average.policy_gradient(mdp, pol, np.array([x]))[0] for x in s])
    ax2.plot(s, g_avg, color=C_OPT, lw=2.5, label=r"$\nabla\rho$ (Sutton et al. 2000)")
    for gamma, color in ((0.5, C_PG), (0.9, C_TRPO), (0.99, C_NPG)):
        m = mdp.with_horizon(None, gamma=gamma)
        g = np.array([policy_gradient(m, pol, np.array([x]))[0] for x in s])
        ax2.plot(s, (1 - gamma) * g, "--", color=color, lw=1.5, label=rf"$(1-\gamma)\nabla J_\gamma$, γ = {gamma}")
    ax2.axhline(0, color="0.6", lw=0.8)
    ax2.set_xlabel("θ")
    ax2.set_title("gradients")
    ax2.legend(fontsize=7)
    theta = np.array([1.0])
    pi = pol.probs(theta)
    states = np.arange(6)
    ax3.bar(states - 0.3, average.evaluate(mdp, pi).d, 0.2, color=C_OPT, label="stationary d (average reward)")
    for i, (gamma, color) in enumerate(((0.5, C_PG), (0.9, C_TRPO), (0.99, C_NPG))):
        ax3.bar(states - 0.1 + 0.2 * i, occupancy(mdp.with_horizon(None, gamma=gamma), pi), 0.2, color=color,
                label=rf"$d_\gamma$, γ = {gamma}")
    ax3.set_xlabel("state")
    ax3.set_title("the state distributions of the two objectives (θ = 1)")
    ax3.legend(fontsize=7)
    fig.suptitle("Average reward and discounted return side by side (random 6-state MDP, 2 actions); "
                 r"$(1-\gamma)J_\gamma \to \rho$ and $d_\gamma \to d$ as γ → 1")


def specs(FigureSpec):  # noqa: N803 - the class is passed in to avoid a circular import
    """The figure specs of this module (called by ``pgexact.figures``)."""
    return [
        FigureSpec(
            "estimator_variance", "Estimator variance against the horizon (exact, H up to 200)",
            "Exact per-episode variance tr Cov(ĝ) of REINFORCE, reward-to-go, reward-to-go with the baseline "
            "V_t(s_t), GAE(λ = 0.9) with the exact V_t and the exact-advantage estimator on a continuing 5×5 "
            "gridworld (100 tabular parameters), H = 1..200, undiscounted and with γ = 0.95, from the second-moment "
            "recursions of pgexact.estimators.estimator_moments (no trajectory listed); slopes fitted on H = 50..200. "
            "Undiscounted REINFORCE grows like H³, not the H² of the notes' argument. Sources: Williams (1992); "
            "Greensmith, Bartlett & Baxter (2004); Schulman et al. (2016); course notes 'Policy Gradient', "
            "§ Understanding the Variance Problem in REINFORCE.",
            make_estimator_variance, (12.0, 5.0),
        ),
        FigureSpec(
            "optimal_baselines", "Variance-minimizing baselines",
            "Exact per-episode variance of the reward-to-go estimator with no baseline, the best constant baseline "
            "per coordinate, V_t(s), and the best time- and state-dependent baseline per coordinate "
            "(pgexact.estimators.optimal_baselines), against the horizon and per coordinate at H = 50, on a "
            "continuing 4×4 gridworld. Sources: Greensmith, Bartlett & Baxter (2004), JMLR 5; Peters & Schaal "
            "(2008), Neural Networks 21.",
            make_optimal_baselines, (12.0, 4.8),
        ),
        FigureSpec(
            "convergence_bounds", "Convergence bounds against the exact curves",
            "Exact sub-optimality of softmax PG, NPG, entropy-regularized NPG and policy mirror descent with "
            "increasing steps, the gradient-domination inequality over random policies and the CPI improvement "
            "against the mixing weight, each with its published bound and the constants (mismatch coefficients, "
            "minimum optimal-action probability along the path, initial divergences) computed on the instance; "
            "then entropy-regularized softmax PG with step 1/β: the exact soft gap of one run (γ = 0.8, τ = 5, "
            "4000 steps) against the linear-rate bound ‖1/μ‖_∞ e^{−C(t−1)} δ_1 of Mei et al.'s Theorem 6, C the "
            "running minimum of C_k (pgexact.theorems.convergence_entropy.mei_linear_rate_sides; valid but almost "
            "flat, its rate about 2e-3 of the observed one), and the non-uniform Łojasiewicz inequality of their "
            "Lemma 15, gradient norm against C(θ) gap^{1/2} at 201 random parameters, with their constant and with "
            "the sharper one of convergence_entropy.lojasiewicz_lhs. "
            "Sources: Mei et al. (2020), Thm 4, Thm 6 and Lemma 15; Agarwal et al. (2021), Thm 16 and Lemma 4; "
            "Cen et al. (2021), Thm 1; Xiao (2022), Thm 10 (its divergence term with the 1/(1−γ) of unnormalized Q, "
            "see pgexact.theorems.convergence.pmd_potential_ratios); Kakade & Langford (2002), Thm 4.1.",
            make_convergence_bounds, (17.0, 7.5),
        ),
        FigureSpec(
            "average_reward", "Average reward and discounted return side by side",
            "The gain ρ(θ) = d_π·r_π (pgexact.average) and the normalized discounted returns (1−γ)J_γ(θ) for "
            "γ = 0.5, 0.9, 0.99 along one parameter of a linear-softmax policy; the gradients ∇ρ (Sutton et al. 2000, "
            "Theorem 1) and (1−γ)∇J_γ; and the stationary distribution against the discounted occupancies. "
            "Sources: Sutton, McAllester, Singh & Mansour (2000); Puterman (1994), sec. 8.2.",
            make_average_reward, (14.0, 4.6),
        ),
    ]
