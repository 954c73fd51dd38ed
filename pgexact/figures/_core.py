r"""Figures that need only the exact core (models, softmax policies, exact closed forms)."""

from __future__ import annotations

import numpy as np
import scipy.optimize
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ..errata import ppo_clipped_objective
from ..exact import (
    evaluate,
    fisher,
    kl_expected,
    kl_max,
    natural_gradient,
    occupancy,
    policy_gradient,
    state_marginals,
    surrogate,
    tv_max,
)
from ..mdps import bandit, chain, random_mdp, short_corridor
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import LinearSoftmax, TabularSoftmax

# Colours (colour-blind safe, Okabe-Ito) used consistently across figures.
C_PG, C_NPG, C_TRPO, C_PPO, C_OPT, C_BAD = "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#000000", "#E69F00"


def optimal_value(mdp: FiniteMDP, max_iter: int = 1000) -> tuple[float, np.ndarray]:
    """J* and an optimal deterministic policy by exact policy iteration (evaluate + greedy)."""
    S, A = mdp.n_states, mdp.n_actions
    pi = np.full((S, A), 1.0 / A)
    for _ in range(max_iter):
        Q = evaluate(mdp, pi).Q
        Q = Q if Q.ndim == 2 else Q[0]
        greedy = np.zeros((S, A))
        greedy[np.arange(S), np.argmax(Q, axis=1)] = 1.0
        # keep the current action on ties so that policy iteration terminates
        keep = np.isclose(np.sum(pi * Q, axis=1), Q.max(axis=1), rtol=0, atol=1e-13) & (pi.max(axis=1) == 1.0)
        greedy[keep] = pi[keep]
        if np.array_equal(greedy, pi):
            break
        pi = greedy
    return evaluate(mdp, pi).J, pi


# --------------------------------------------------------------------------- gradient fields
def _bandit3() -> tuple[FiniteMDP, LinearSoftmax]:
    phi = np.array([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]])  # logits (θ1, θ2, 0)
    return bandit([1.0, 0.6, 0.0]), LinearSoftmax(phi)


def make_gradient_fields(fig: Figure) -> None:
    mdp, pol = _bandit3()
    grid = np.linspace(-4, 4, 81)
    X, Y = np.meshgrid(grid, grid)
    J = np.array([[evaluate(mdp, pol.probs([x, y])).J for x in grid] for y in grid])
    q = np.linspace(-3.6, 3.6, 13)
    QX, QY = np.meshgrid(q, q)
    fields = {"vanilla": np.zeros(QX.shape + (2,)), "natural": np.zeros(QX.shape + (2,))}
    for i in range(q.size):
        for j in range(q.size):
            th = np.array([QX[i, j], QY[i, j]])
            fields["vanilla"][i, j] = policy_gradient(mdp, pol, th)
            fields["natural"][i, j] = natural_gradient(mdp, pol, th)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (key, title) in zip(axes, [("vanilla", r"vanilla gradient $\nabla J$"),
                                         ("natural", r"natural gradient $F^{+}\nabla J$")]):
        cs = ax.contour(X, Y, J, levels=np.linspace(0.1, 0.95, 10), colors="0.35", linewidths=0.9)
        ax.clabel(cs, fmt="%.2f", fontsize=9, inline_spacing=3)
        V = fields[key]
        norm = np.linalg.norm(V, axis=2)
        U = V / np.where(norm > 0, norm, 1)[..., None]
        qv = ax.quiver(QX, QY, U[..., 0], U[..., 1], norm, cmap="viridis", norm=LogNorm(1e-3, 10),
                       angles="xy", scale=16, width=0.006)
        ax.set_title(title)
        ax.set_xlabel(r"$\theta_1$ (logit of arm 1, mean 1.0)")
        ax.set_aspect("equal")
    axes[0].set_ylabel(r"$\theta_2$ (logit of arm 2, mean 0.6)")
    cb = fig.colorbar(qv, ax=list(axes), shrink=0.85, pad=0.02)
    cb.set_label("vector length (arrows drawn at unit length)")
    fig.suptitle("Vanilla vs natural policy gradient on a 2-parameter softmax policy (3-armed bandit; contours: J)")


# --------------------------------------------------------------------------- plateau
def _ascent_gaps(mdp: FiniteMDP, pol: TabularSoftmax, theta0: np.ndarray, lr: float, n: int, direction, j_star: float) -> np.ndarray:
    th = theta0.copy()
    gaps = np.empty(n)
    for k in range(n):
        gaps[k] = j_star - evaluate(mdp, pol.probs(th)).J
        th = th + lr * direction(mdp, pol, th)
    return gaps


def make_softmax_plateau(fig: Figure) -> None:
    axes = fig.subplots(1, 2)
    problems = [
        ("3-armed bandit, means (1, 0.9, 0), θ0 = (0, 5, 0)", bandit([1.0, 0.9, 0.0]), TabularSoftmax(1, 3),
         np.array([0.0, 5.0, 0.0]), 2.0, 2.0, 5000),
        ("5-state chain (γ = 0.9), θ0 favours 'left' (P ≈ 0.95)", chain(5, gamma=0.9, small_reward=0.2),
         TabularSoftmax(5, 2), np.tile([3.0, 0.0], 5), 2.0, 0.1, 3000),
    ]
    for ax, (title, mdp, pol, theta0, lr_pg, lr_npg, n) in zip(axes, problems):
        j_star, _ = optimal_value(mdp)
        k = np.arange(1, n + 1)
        pg = _ascent_gaps(mdp, pol, theta0, lr_pg, n, policy_gradient, j_star)
        npg = _ascent_gaps(mdp, pol, theta0, lr_npg, min(n, 400), natural_gradient, j_star)
        ax.loglog(k, np.maximum(pg, 1e-16), color=C_PG, lw=2, label=f"softmax PG, step {lr_pg:g}")
        ax.loglog(k[: npg.size], np.maximum(npg, 1e-16), color=C_NPG, lw=2, label=f"NPG, step {lr_npg:g}")
        ax.set_ylim(1e-9, 3 * pg[0])
        ax.set_xlabel("iteration k")
        ax.set_ylabel(r"sub-optimality $J^\star - J(\theta_k)$")
        ax.set_title(title, fontsize=9.5)
        ax.legend(fontsize=8, loc="lower left")
    fig.suptitle("Exact softmax PG plateaus near a bad deterministic policy; NPG does not")


# --------------------------------------------------------------------------- PPO clip
def make_ppo_clip(fig: Figure) -> None:
    eps = 0.2
    r = np.linspace(0.0, 2.0, 801)
    axes = fig.subplots(1, 2)
    for ax, A in zip(axes, (1.0, -1.0)):
        ax.axvspan(1 - eps, 1 + eps, color="0.92", label=r"$[1-\epsilon, 1+\epsilon]$")
        ax.plot(r, r * A, "--", color="0.5", label=r"unclipped $rA$")
        ax.plot(r, ppo_clipped_objective(r, A, eps), color=C_PPO, lw=2.2,
                label=r"$L^{CLIP} = \min(rA,\ \mathrm{clip}(r, 1\pm\epsilon)A)$")
        ax.axvline(1.0, color="k", lw=0.6)
        ax.set_xlabel(r"probability ratio $r = \pi_{\theta}(a|s) / \pi_{\theta_{old}}(a|s)$")
        ax.set_ylabel(r"objective per sample")
        flat = "r > 1 + ε" if A > 0 else "r < 1 − ε"
        ax.set_title(f"advantage A = {A:+.0f}: flat (zero gradient) only for {flat}")
        ax.legend(loc="upper left" if A > 0 else "upper right", fontsize=8)
    fig.suptitle("PPO clipped surrogate against the ratio (ε = 0.2)")


# --------------------------------------------------------------------------- drift
def tightrope() -> FiniteMDP:
    """Levine's tightrope walker: state 0 = on the rope; action 1 falls into the absorbing state 1."""
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = 1.0
    P[0, 1, 1] = 1.0
    P[1, :, 1] = 1.0
    return FiniteMDP(P, np.zeros((2, 2)), np.array([1.0, 0.0]), 0.9, None)


def _drift_panel(ax, mdp: FiniteMDP, pi: np.ndarray, pi_new: np.ndarray, T: int, title: str) -> None:
    # log scale from t = 1 (the drift is 0 at t = 0): the drift, the coupling bound and the
    # printed bound differ by orders of magnitude and all stay inside the axes
    t = np.arange(1, T)
    drift = np.abs(state_marginals(mdp, pi_new, T) - state_marginals(mdp, pi, T)).sum(axis=1)[1:]
    eps_tv = tv_max(pi_new, pi)
    eps_kl = max(kl_max(pi_new, pi), kl_max(pi, pi_new))
    ax.semilogy(t, drift, "o-", ms=3.5, color=C_PG, lw=2, label=r"exact $\sum_s |p'_t(s) - p_t(s)|$")
    ax.semilogy(t, np.minimum(2 * eps_tv * t, 2), color=C_TRPO, lw=1.8,
                label=rf"coupling bound $\min(2\epsilon t, 2)$, $\epsilon = \max_s TV$ = {eps_tv:.3f}")
    bad = np.flatnonzero(drift > 2 * eps_kl * t + 1e-12)
    verdict = f"violated at t = {t[bad[0]]}..{t[bad[-1]]}" if bad.size else "holds here"
    ax.semilogy(t, 2 * eps_kl * t, "--", color=C_BAD, lw=1.8,
                label=rf"printed $2t\,\max_s KL$ (KL = {eps_kl:.4f}): {verdict}")
    ax.set_xlabel("time step t")
    ax.set_ylabel("state-marginal drift (L1 distance, log scale)")
    ax.set_title(title, fontsize=9.5)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)


def make_marginal_drift(fig: Figure) -> None:
    ax1, ax2 = fig.subplots(1, 2)
    _drift_panel(ax1, tightrope(), np.tile([0.7, 0.3], (2, 1)), np.tile([0.6, 0.4], (2, 1)), 16,
                 "tightrope: P(fall) 0.3 → 0.4 (Levine, CS285 Lec. 9)")
    mdp = random_mdp(6, 3, gamma=0.9, seed=21, concentration=0.1)
    pol = TabularSoftmax(6, 3)
    rng = np.random.default_rng(22)
    theta = 0.5 * rng.standard_normal(18)
    _drift_panel(ax2, mdp, pol.probs(theta), pol.probs(theta + 0.1 * rng.standard_normal(18)), 16,
                 "random 6-state MDP, near-deterministic transitions")
    fig.suptitle("State-marginal drift against t: the 2εt bound holds with ε = max TV, not with ε = max KL")


# --------------------------------------------------------------------------- KL vs Fisher
def make_kl_quadratic(fig: Figure) -> None:
    mdp = random_mdp(4, 3, gamma=0.9, seed=31)
    pol = LinearSoftmax(np.random.default_rng(32).standard_normal((4, 3, 2)))
    theta = np.array([0.5, -0.3])
    F = fisher(mdp, pol, theta)
    v = natural_gradient(mdp, pol, theta)
    v = v / np.sqrt(v @ F @ v)  # unit Fisher norm: ½ s² vᵀFv = s²/2
    d = occupancy(mdp, pol.probs(theta))
    s = np.linspace(-1.5, 1.5, 241)
    pi = pol.probs(theta)
    kl_fwd = np.array([kl_expected(pi, pol.probs(theta + si * v), d) for si in s])
    kl_rev = np.array([kl_expected(pol.probs(theta + si * v), pi, d) for si in s])
    quad = 0.5 * s**2 * (v @ F @ v)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(s, kl_fwd, color=C_PG, lw=2, label=r"exact $E_{d}\,KL(\pi_\theta\,\|\,\pi_{\theta+sv})$")
    ax1.plot(s, kl_rev, color=C_TRPO, lw=2, label=r"exact $E_{d}\,KL(\pi_{\theta+sv}\,\|\,\pi_\theta)$")
    ax1.plot(s, quad, "--", color=C_NPG, label=r"quadratic $\frac{1}{2} s^2 v^\top F v$")
    ax1.set_xlabel(r"step $s$ along the natural gradient $v$ ($v^\top F v = 1$)")
    ax1.set_ylabel("KL divergence (nats)")
    ax1.set_title("Exact KL vs Fisher quadratic form")
    ax1.legend(fontsize=8)
    nz = np.abs(s) > 1e-9
    ax2.plot(s[nz], kl_fwd[nz] / quad[nz], color=C_PG, lw=2, label="forward KL / quadratic")
    ax2.plot(s[nz], kl_rev[nz] / quad[nz], color=C_TRPO, lw=2, label="reverse KL / quadratic")
    ax2.axhline(1.0, color="k", lw=0.6)
    ax2.set_xlabel(r"step $s$")
    ax2.set_ylabel("ratio exact / quadratic")
    ax2.set_title(r"ratio → 1 as $s \to 0$ (KL − quadratic = $O(s^3)$)")
    ax2.legend(fontsize=8)
    fig.suptitle(f"KL between softmax policies and its Fisher approximation (random 4-state MDP, d = occupancy, γ = {mdp.gamma})")


# --------------------------------------------------------------------------- Bernoulli
def make_bernoulli_npg(fig: Figure) -> None:
    mdp = bandit([0.0, 1.0])
    pol = LinearSoftmax(np.array([[[0.0], [1.0]]]))  # π_θ(1) = exp θ / (1 + exp θ)
    n, lr = 40, 1.0
    paths = {}
    for name, direction in [("vanilla", policy_gradient), ("natural", natural_gradient)]:
        th = np.zeros(1)
        thetas, J = np.empty(n + 1), np.empty(n + 1)
        for k in range(n + 1):
            # sub-optimality 1 − J = π_θ(0), read off the (logsumexp-stable) policy: no cancellation
            thetas[k], J[k] = th[0], pol.probs(th)[0, 0]
            assert abs(evaluate(mdp, pol.probs(th)).J - (1 - J[k])) < 1e-14  # a few ulps of J ≤ 1
            th = th + lr * direction(mdp, pol, th)
        paths[name] = (thetas, J)
    ax1, ax2 = fig.subplots(1, 2)
    k = np.arange(n + 1)
    ax1.plot(k, paths["vanilla"][0], "o-", ms=3, color=C_PG, label=r"vanilla: $\theta \leftarrow \theta + \sigma(\theta)(1-\sigma(\theta))$")
    ax1.plot(k, paths["natural"][0], "s-", ms=3, color=C_NPG, label=r"natural: $\theta \leftarrow \theta + 1$ ($F = \sigma(1-\sigma)$)")
    ax1.set_xlabel("iteration k (step size 1)")
    ax1.set_ylabel(r"parameter $\theta_k$")
    ax1.set_title("parameter")
    ax1.legend(fontsize=8)
    ax2.semilogy(k, paths["vanilla"][1], "o-", ms=3, color=C_PG, label="vanilla gradient")
    ax2.semilogy(k, paths["natural"][1], "s-", ms=3, color=C_NPG, label="natural gradient")
    ax2.set_xlabel("iteration k")
    ax2.set_ylabel(r"sub-optimality $1 - J(\theta_k) = \pi_{\theta_k}(0)$")
    ax2.set_title("objective")
    ax2.legend(fontsize=8)
    fig.suptitle(r"Bernoulli example: maximize $J(\theta) = \pi_\theta(1) = \sigma(\theta)$")


# --------------------------------------------------------------------------- short corridor
def short_corridor_closed_form(p: np.ndarray) -> np.ndarray:
    """J(p) = (2p − 4) / (p (1 − p)), from the three Bellman equations of Sutton & Barto's Example 13.1."""
    return (2 * p - 4) / (p * (1 - p))


def make_short_corridor(fig: Figure) -> None:
    sc = short_corridor()
    p_lib = np.linspace(0.05, 0.95, 13)
    J_lib = np.array([evaluate(sc.mdp, LinearSoftmax(sc.features).probs(sc.theta_for(p))).J for p in p_lib])
    p = np.linspace(0.05, 0.95, 500)
    res = scipy.optimize.minimize_scalar(lambda q: -evaluate(sc.mdp, LinearSoftmax(sc.features).probs(sc.theta_for(q))).J,
                                         bounds=(0.05, 0.95), method="bounded", options={"xatol": 1e-7})
    ax = fig.subplots()
    ax.plot(p, short_corridor_closed_form(p), color="0.4", lw=1.5, label=r"closed form $J(p) = (2p-4)/(p(1-p))$")
    ax.plot(p_lib, J_lib, "o", ms=4, color=C_PG, label=f"pgexact.evaluate (γ = 1, horizon {sc.mdp.horizon})")
    ax.plot([res.x], [-res.fun], "*", ms=16, color=C_NPG,
            label=rf"optimum $p^\star$ = {res.x:.4f} ($2-\sqrt{{2}}$), $J^\star$ = {-res.fun:.3f}")
    for p_det, lab in [(0.05, "≈ always left"), (0.95, "≈ always right")]:
        ax.annotate(lab, (p_det, evaluate(sc.mdp, LinearSoftmax(sc.features).probs(sc.theta_for(p_det))).J), textcoords="offset points",
                    xytext=(10 if p_det < 0.5 else -80, -4), fontsize=8)
    ax.set_ylim(-100, 0)
    ax.set_xlabel(r"probability of 'right' $p$ (same in every state)")
    ax.set_ylabel(r"$J(p)$ = expected return from the start")
    ax.set_title("Short corridor with switched actions (Sutton & Barto, Example 13.1)")
    ax.legend(loc="lower center", fontsize=8)


# --------------------------------------------------------------------------- TRPO bound
def make_trpo_bound(fig: Figure) -> None:
    gamma = 0.8
    mdp = random_mdp(5, 3, gamma=gamma, seed=41)
    pol = TabularSoftmax(5, 3)
    theta = np.random.default_rng(42).standard_normal(15)
    pi = pol.probs(theta)
    ev = evaluate(mdp, pi)
    w = natural_gradient(mdp, pol, theta)
    w = w / np.linalg.norm(w)
    eps_adv = np.abs(ev.A).max()
    C = 4 * eps_adv * gamma / (1 - gamma) ** 2
    steps = np.linspace(0, 2.0, 101)
    true, sur, b_tv, b_kl = (np.empty_like(steps) for _ in range(4))
    for i, s in enumerate(steps):
        pi_new = pol.probs(theta + s * w)
        true[i] = evaluate(mdp, pi_new).J - ev.J
        sur[i] = surrogate(mdp, pi, pi_new)
        b_tv[i] = sur[i] - C * tv_max(pi, pi_new) ** 2
        b_kl[i] = sur[i] - C * kl_max(pi, pi_new)
    ax = fig.subplots()
    ax.plot(steps, true, color="k", lw=2.2, label=r"true improvement $J(\pi') - J(\pi)$")
    ax.plot(steps, sur, color=C_PG, lw=1.6, label=r"surrogate $L_\pi(\pi') - J(\pi)$")
    ax.plot(steps, b_tv, color=C_TRPO, lw=1.6, label=r"lower bound $L - C\,\alpha^2$, α = max TV")
    ax.plot(steps, b_kl, "--", color=C_NPG, lw=1.6, label=r"lower bound $L - C\,\max_s KL(\pi\|\pi')$")
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_ylim(min(true.min(), -0.5 * true.max()) * 1.5 - 0.05, 1.3 * max(true.max(), sur.max()))
    ax.set_xlabel(r"step length $s$ along the natural gradient ($\theta' = \theta + s\,w$, $\|w\| = 1$)")
    ax.set_ylabel("change in expected discounted return")
    ax.set_title(f"TRPO's lower bound vs the true improvement (random 5-state MDP, γ = {gamma})\n"
                 rf"$C = 4\epsilon\gamma/(1-\gamma)^2$ = {C:.1f}, ε = max|A| = {eps_adv:.2f}")
    ax.legend(fontsize=8, loc="lower left")
