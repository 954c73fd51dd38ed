"""Plausible mistakes in :mod:`pgexact.estimators`: policy-gradient estimators, advantage targets, moments, statistics."""

from . import Mistake

PG = "pgexact/estimators/_policy_gradients.py"
STEPS = "pgexact/estimators/_steps.py"
ADV = "pgexact/estimators/_advantage.py"
T_EST = ("tests/test_estimators.py", "tests/test_estimators_pathwise.py")
T_MOM = ("tests/test_moments.py", "tests/test_estimators_pathwise.py")
T_GEO = ("tests/test_geometric_moments.py",)
T_NSTEP = ("tests/test_nstep_moments.py",)
T_BASE = ("tests/test_baselines.py", "tests/test_estimators_pathwise.py")
T_STATS = ("tests/test_stats.py",)
T_HESS = ("tests/test_hessian_estimators.py", "tests/test_dice_estimators.py")

MISTAKES = [
    # ---------------------------------------------------------------- sampled policy gradients
    Mistake(
        "est-rtg-missing-gamma-t", PG,
        "w = st.real(trajs) * st.discounts(trajs) * st.rewards_to_go(trajs)\n",
        "w = st.real(trajs) * st.rewards_to_go(trajs)\n",
        "reward-to-go without the gamma^t in front of G_t (the common 'missing gamma^t' bias)",
        T_EST,
    ),
    Mistake(
        "est-constant-baseline-undiscounted", PG,
        "w = st.real(trajs) * st.discounts(trajs) * (st.rewards_to_go(trajs) - float(b))",
        "w = st.real(trajs) * (st.discounts(trajs) * st.rewards_to_go(trajs) - float(b))",
        "constant baseline subtracted without its gamma^t (unbiased, a different estimator)",
        T_EST,
    ),
    Mistake(
        "est-state-baseline-next-state", PG,
        "base, _ = st.values(trajs, b, name=\"b\")",
        "_, base = st.values(trajs, b, name=\"b\")",
        "state baseline evaluated at s_{t+1} instead of s_t (biased)",
        T_EST,
    ),
    Mistake(
        "est-advantage-no-mask", PG,
        "w = st.real(trajs) * st.discounts(trajs) * st.table(trajs, A, \"A\")",
        "w = st.discounts(trajs) * st.table(trajs, A, \"A\")",
        "advantage estimator summing the padding steps after absorption (forgotten mask)",
        T_EST,
    ),
    Mistake(
        "est-nstep-baseline-next-value", PG,
        "w = st.real(trajs) * st.discounts(trajs) * (G - v)",
        "w = st.real(trajs) * st.discounts(trajs) * (G - v_next)",
        "n-step advantage minus V(s_{t+1}) instead of V(s_t)",
        T_EST,
    ),
    Mistake(
        "est-gae-gradient-missing-gamma-t", PG,
        "w = st.discounts(trajs) * st.gae(trajs, v, v_next, lam)",
        "w = st.gae(trajs, v, v_next, lam)",
        "GAE policy gradient without gamma^t",
        T_EST,
    ),
    Mistake(
        "est-normalized-mean-over-padding", PG,
        "centred = adv - vals.mean()",
        "centred = adv - adv.mean()",
        "advantage mean taken over every step, padding after absorption included",
        T_EST,
    ),
    # ---------------------------------------------------------------- per-step helpers
    Mistake(
        "est-values-next-time-index", STEPS,
        "nxt[ok] = v[sv.time[ok] + 1, sv.next_state[ok]]",
        "nxt[ok] = v[sv.time[ok], sv.next_state[ok]]",
        "time-indexed V: the next state's value read at V_t instead of V_{t+1}",
        T_EST,
    ),
    Mistake(
        "est-done-ignores-truncation", STEPS,
        "return (sv.time == trajs.lengths[sv.episode] - 1) & ~trajs.truncated[sv.episode]",
        "return sv.time == trajs.lengths[sv.episode] - 1",
        "a time limit treated as termination: no bootstrap V(s_T) on truncated episodes",
        T_EST,
    ),
    Mistake(
        "est-td-bootstrap-after-termination", STEPS,
        "delta = trajs.flat_rewards + d * np.where(done(trajs), 0.0, v_next) - v",
        "delta = trajs.flat_rewards + d * v_next - v",
        "TD error bootstrapping after the episode ended",
        T_EST,
    ),
    Mistake(
        "est-gae-trace-lambda", STEPS,
        "return trajs._reverse_scan(td_errors(trajs, v, v_next), trajs.discount * lam)",
        "return trajs._reverse_scan(td_errors(trajs, v, v_next), lam)",
        "GAE trace lambda instead of gamma lambda (still unbiased with the exact V)",
        T_EST,
    ),
    Mistake(
        "est-nstep-no-truncation-bootstrap", STEPS,
        "boot = np.where(inside | trajs.truncated[sv.episode], v_next[idx_prev], 0.0)",
        "boot = np.where(inside, v_next[idx_prev], 0.0)",
        "n-step return not bootstrapped at a truncated episode's end",
        T_EST,
    ),
    Mistake(
        "est-nstep-discount-n-not-steps", STEPS,
        "dk = np.power(d, k.astype(np.float64))",
        "dk = np.power(d, float(n))",
        "n-step bootstrap discounted by gamma^n, not by the steps actually taken",
        T_EST,
    ),
    # ---------------------------------------------------------------- advantage targets on arrays
    Mistake(
        "est-array-td-no-mask", ADV,
        "out = r + g * np.where(done, 0.0, v[:, 1:]) - v[:, :-1]",
        "out = r + g * v[:, 1:] - v[:, :-1]",
        "array TD errors bootstrapping after a terminated step",
        T_EST,
    ),
    Mistake(
        "est-array-gae-truncation-next-episode-value", ADV,
        "+ np.where(cut, boot, 0.0)) - v[:, :-1]",
        "+ np.where(cut, v[:, 1:], 0.0)) - v[:, :-1]",
        "truncated step bootstrapped from values[:, t+1], the next episode's first state",
        T_EST,
    ),
    Mistake(
        "est-array-nstep-one-short", ADV,
        "for _ in range(min(n, r.shape[1])):",
        "for _ in range(min(n, r.shape[1] - 1)):",
        "n-step recursion one iteration short when n >= T",
        T_EST,
    ),
    Mistake(
        "est-fit-baseline-stride", "pgexact/estimators/_baselines.py",
        "idx = sv.time[m] * S + s",
        "idx = sv.time[m] * T + s",
        "learned baseline's (t, s) cell index with the wrong stride",
        T_EST,
    ),
    # ---------------------------------------------------------------- optimal baselines
    Mistake(
        "est-optimal-constant-half", "pgexact/estimators/baselines.py",
        "cxy = 0.25 * (mm.second_moment - mp.second_moment)",
        "cxy = 0.5 * (mm.second_moment - mp.second_moment)",
        "polarization with 1/2 instead of 1/4: optimal constant baseline doubled",
        T_BASE,
    ),
    Mistake(
        "est-optimal-state-one-discount", "pgexact/estimators/baselines.py",
        "M[:, t, :] = (dt * dt * p[t][:, None] * psi2).T",
        "M[:, t, :] = (dt * p[t][:, None] * psi2).T",
        "optimal state baseline's denominator with d^t instead of d^{2t}",
        T_BASE,
    ),
    Mistake(
        "est-optimal-geometric-no-past-score", "pgexact/estimators/geometric_moments.py",
        "c = (sigma[:, None] * (psi2Q + after) + F * psiQ).T",
        "c = (sigma[:, None] * (psi2Q + after)).T",
        "geometric optimal state baseline without the past scores' cross term",
        T_BASE,
    ),
    # ---------------------------------------------------------------- exact moments
    Mistake(
        "est-moments-discount-off-by-one", "pgexact/estimators/moments.py",
        "at, ft, dt = a[t], f[t], disc**t",
        "at, ft, dt = a[t], f[t], disc**(t + 1)",
        "finite-horizon moments weighted by gamma^{t+1} instead of gamma^t",
        T_MOM,
    ),
    Mistake(
        "est-moments-gae-trace-lambda", "pgexact/estimators/moments.py",
        "return zero, a, g * vt, g * lam",
        "return zero, a, g * vt, lam",
        "finite-horizon GAE moments with trace lambda instead of gamma lambda",
        T_MOM,
    ),
    Mistake(
        "est-moments-gae-no-truncation-bootstrap", "pgexact/estimators/moments.py",
        "if mdp.horizon is None:  # truncated objective: the return goes on, V(s_T) is bootstrapped",
        "if mdp.horizon is not None:  # truncated objective: the return goes on, V(s_T) is bootstrapped",
        "GAE moments on the truncated objective without the bootstrap V(s_T)",
        T_MOM,
    ),
    Mistake(
        "est-moments-reinforce-cross-factor", "pgexact/estimators/moments.py",
        "a2 + 2.0 * rho * a1 + rho * rho * a0], axis=1)",
        "a2 + rho * a1 + rho * rho * a0], axis=1)",
        "second moment of the return without the factor 2 of the cross term",
        T_MOM,
    ),
    Mistake(
        "est-moments-mean-directions-undiscounted", "pgexact/estimators/moments.py",
        "m += disc**t * p[t] * (f[t] + eta)",
        "m += p[t] * (f[t] + eta)",
        "mean along directions without gamma^t",
        T_MOM,
    ),
    Mistake(
        "est-geometric-occupancy-transposed", "pgexact/estimators/geometric_moments.py",
        "sigma = self.solve(1.0, mu0, trans=True)",
        "sigma = self.solve(1.0, mu0, trans=False)",
        "occupancy from (I - gamma P_pi)^{-1} mu0 instead of its transpose",
        T_GEO,
    ),
    Mistake(
        "est-geometric-gae-second-trace", "pgexact/estimators/geometric_moments.py",
        "eta2_bar = K.solve(beta * beta, rhs2) if beta != 0.0 else rhs2",
        "eta2_bar = K.solve(beta, rhs2) if beta != 0.0 else rhs2",
        "second moment of the GAE trace solved with lambda instead of lambda^2",
        T_GEO,
    ),
    Mistake(
        "est-nstep-moments-undiscounted-step", "pgexact/estimators/nstep_moments.py",
        "h[:, 1:] = r[:, None] + disc * Ph",
        "h[:, 1:] = r[:, None] + Ph",
        "n-step return moments without the per-step discount",
        T_NSTEP,
    ),
    Mistake(
        "est-nstep-moments-truncation-bootstrap", "pgexact/estimators/nstep_moments.py",
        "        if bootstrap_last:\n            c[H] = v",
        "        if not bootstrap_last:\n            c[H] = v",
        "n-step moments: bootstrap V(s_T) on the finite objective, none on the truncated one",
        T_NSTEP,
    ),
    Mistake(
        "est-gae-expected-infinite-trace", "pgexact/estimators/exact_moments.py",
        "M = np.eye(S) - g * lam * (P_pi * live[None, :])",
        "M = np.eye(S) - lam * (P_pi * live[None, :])",
        "expected GAE advantage (discounted) with trace lambda instead of gamma lambda",
        T_EST,
    ),
    Mistake(
        "est-gae-expected-gradient-occupancy", "pgexact/estimators/exact_moments.py",
        "rho = evaluate(mdp, pi).d / (1.0 - mdp.gamma)",
        "rho = evaluate(mdp, pi).d",
        "expected GAE gradient with the normalized occupancy (no 1/(1-gamma))",
        T_EST,
    ),
    # ---------------------------------------------------------------- statistics
    Mistake(
        "est-threshold-one-sided", "pgexact/estimators/stats.py",
        "tail = false_alarm / (2 * k)",
        "tail = false_alarm / k",
        "Bonferroni threshold of a one-sided test for a two-sided statistic",
        T_STATS,
    ),
    Mistake(
        "est-power-shift-n", "pgexact/estimators/stats.py",
        "shift = d[live] * math.sqrt(n) / sd",
        "shift = d[live] * n / sd",
        "power with the bias scaled by n instead of sqrt(n)",
        T_STATS,
    ),
    # ---------------------------------------------------------------- Fisher, surrogate, second order
    Mistake(
        "est-hessian-rtg-cumsum-axis", "pgexact/estimators/_second_order.py",
        "U = np.cumsum(psi, axis=1)",
        "U = np.cumsum(psi, axis=0)",
        "reward-to-go Hessian: cumulative score summed over episodes instead of time",
        T_HESS,
    ),
    Mistake(
        "est-aided-difference-wrong-point", "pgexact/estimators/_dice.py",
        "g_phi, g_logp, curv = _shen_parts(trajs, policy, theta_prev + a * delta)",
        "g_phi, g_logp, curv = _shen_parts(trajs, policy, theta + a * delta)",
        "Hessian-aided difference evaluated past theta (theta + a delta)",
        T_HESS,
    ),
]
