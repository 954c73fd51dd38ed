"""Plausible mistakes in :mod:`pgexact.updates`: PG / NPG / TRPO / PPO steps, sources, planning, soft control,
Newton steps, the training loop, and the convergence-rate bounds of :mod:`pgexact.theorems.convergence`."""

from . import Mistake

T_UPD = "tests/test_updates.py"
T_FAST = "tests/test_updates_fast_paths.py"
T_PLAN = "tests/test_updates_planning.py"
T_SAMP = "tests/test_updates_sampled.py"
T_NEWTON = "tests/test_updates_newton.py"
T_THM = "tests/test_updates_theorems.py"
T_CONV = "tests/test_convergence.py"
T_PATHS = "tests/test_updates_paths.py"

TRPO = "pgexact/updates/trpo.py"
PG = "pgexact/updates/pg.py"
PPO = "pgexact/updates/ppo.py"
SRC = "pgexact/updates/sources.py"
PLAN = "pgexact/updates/planning.py"
SOFT = "pgexact/updates/soft.py"
NEWTON = "pgexact/updates/newton.py"
SAMPLED = "pgexact/updates/sampled.py"

MISTAKES = [
    # ---------------------------------------------------------------- TRPO: conjugate gradient and line search
    Mistake(
        "updates-cg-stop-unsquared", TRPO,
        "stop = (rtol * math.sqrt(rr)) ** 2",
        "stop = rtol * rr",
        "CG stopping rule on the squared residual with rtol unsquared: stops at ||r|| <= sqrt(rtol) ||g||",
        (T_UPD, T_FAST, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-cg-stop-one-early", TRPO,
        "if rr_new <= stop:",
        "if rr_new <= stop or k + 2 >= maxiter:",
        "CG stops one iteration before maxiter (off-by-one in the iteration budget)",
        (T_UPD, T_FAST, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-cg-beta-inverted", TRPO,
        "p *= rr_new / rr",
        "p *= rr / rr_new",
        "Fletcher-Reeves beta inverted: ||r_k||^2 / ||r_{k+1}||^2",
        (T_UPD, T_FAST, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-cg-damping-sign", TRPO,
        "Fp = Fp + damping * p",
        "Fp = Fp - damping * p",
        "CG solves (F - lambda I) x = g: damping with the wrong sign",
        (T_UPD, T_FAST, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-trpo-full-step-no-2", TRPO,
        "full = math.sqrt(2.0 * delta / xFx)",
        "full = math.sqrt(delta / xFx)",
        "TRPO full step sqrt(delta / x^T F x): the 2 of the quadratic KL model dropped",
        (T_UPD, T_FAST, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-trpo-backtrack-off-by-one", TRPO,
        "beta = full * ratio**k",
        "beta = full * ratio**(k + 1)",
        "line search never tries the full step (first candidate already halved)",
        (T_UPD, T_FAST, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-trpo-fast-kl-swapped", SRC,
        "kl_s = np.add.reduce(rel_entr(self.pi, np.exp(logp)), axis=1)",
        "kl_s = np.add.reduce(rel_entr(np.exp(logp), self.pi), axis=1)",
        "the line search's KL is KL(new || old) instead of TRPO's KL(old || new)",
        (T_UPD, T_FAST, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-dense-fisher-no-state-weight", SRC,
        "W *= self._d_pi[:, :, None]",
        "W *= self.pi[:, :, None]",
        "the dense Fisher of the CG operator forgets the state distribution d",
        (T_UPD, T_FAST, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-fvp-wrong-axis", SRC,
        "W -= pi * np.add.reduce(W, axis=1, keepdims=True)\n        return pol._logit_jacobian_t(W)",
        "W -= pi * np.add.reduce(W, axis=0, keepdims=True)\n        return pol._logit_jacobian_t(W)",
        "structured Fisher-vector product centres over states (axis 0) instead of actions",
        (T_UPD, T_FAST, T_THM, T_PATHS),
    ),
    # ---------------------------------------------------------------- PG, NPG
    Mistake(
        "updates-npg-radius-no-2", PG,
        "alpha = math.sqrt(2.0 * delta / gw)",
        "alpha = math.sqrt(delta / gw)",
        "NPG step size sqrt(delta / g^T F^+ g): the 2 of the quadratic KL model dropped",
        (T_UPD, T_THM, T_PATHS),
    ),
    # ---------------------------------------------------------------- exact batch and surrogate
    Mistake(
        "updates-batch-drop-1-over-1-gamma", SRC,
        "rho = np.repeat(ev.d / (1.0 - mdp.gamma), A)",
        "rho = np.repeat(ev.d, A)",
        "exact surrogate batch weighted by d instead of d/(1-gamma)",
        (T_UPD, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-batch-finite-drop-gamma-t", SRC,
        "rho = np.repeat((disc[:, None] * ev.p).reshape(-1), A)",
        "rho = np.repeat(ev.p.reshape(-1), A)",
        "finite-horizon exact batch without the gamma^t weights",
        (T_UPD, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-old-state-dist-unnormalized", SRC,
        "return rho / disc.sum()",
        "return rho / mdp.horizon",
        "finite-horizon d_old normalized by H instead of sum_t gamma^t",
        (T_UPD, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-kl-swapped", SRC,
        "kl_s = np.sum(rel_entr(pi_old, np.exp(logp)), axis=1)",
        "kl_s = np.sum(rel_entr(np.exp(logp), pi_old), axis=1)",
        "batch KL(new || old) instead of KL(old || new)",
        (T_UPD, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-kl-gradient-sign", SRC,
        "grad = _score_contract(policy, theta, -batch.state_weights[:, None] * pi_old, logp)",
        "grad = _score_contract(policy, theta, batch.state_weights[:, None] * pi_old, logp)",
        "gradient of the KL with the wrong sign",
        (T_UPD, T_THM, T_PATHS),
    ),
    # ---------------------------------------------------------------- PPO
    Mistake(
        "updates-ppo-clip-wrong-side-negative", SRC,
        "((adv < 0) & (ratio < 1.0 - clip))",
        "((adv < 0) & (ratio > 1.0 + clip))",
        "negative advantages clipped above 1+eps instead of below 1-eps",
        (T_UPD, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-ppo-clip-gradient-through-clipped", SRC,
        "c = np.where(clipped_branch, 0.0, unclipped_term)",
        "c = np.where(clipped_branch, clipped_term, unclipped_term)",
        "clipped rows still contribute a gradient",
        (T_UPD, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-ppo-minibatch-unscaled", PPO,
        "mb = batch._subset(idx, n / idx.shape[0])",
        "mb = batch._subset(idx, 1.0)",
        "minibatch weights not scaled by n/|mb|: each minibatch step is 1/n_minibatches too small",
        (T_UPD, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-ppo-kl-adapt-inverted", PPO,
        "nxt = beta / 2.0 if d < kl_target / 1.5 else (beta * 2.0 if d > 1.5 * kl_target else beta)",
        "nxt = beta * 2.0 if d < kl_target / 1.5 else (beta / 2.0 if d > 1.5 * kl_target else beta)",
        "adaptive KL rule inverted (beta doubled when the KL is small)",
        (T_UPD, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-ppo-penalty-gradient-sign", PPO,
        "return sv - coef * (kv - delta), sg - coef * kg",
        "return sv - coef * (kv - delta), sg + coef * kg",
        "penalized objective's gradient adds the KL gradient",
        (T_UPD, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-ppo-dual-sign", PPO,
        "next_coefficient=max(0.0, lam + dual_lr * (d - delta)),",
        "next_coefficient=max(0.0, lam - dual_lr * (d - delta)),",
        "dual ascent on lambda in the wrong direction",
        (T_UPD, T_THM, T_PATHS),
    ),
    # ---------------------------------------------------------------- sampled source
    Mistake(
        "updates-sampled-gradient-sum", SAMPLED,
        "self.gradient = steps.score_sums(trajs, policy, theta, mask * disc * adv).mean(axis=0)",
        "self.gradient = steps.score_sums(trajs, policy, theta, mask * disc * adv).sum(axis=0)",
        "sampled gradient summed over episodes instead of averaged",
        (T_SAMP, T_UPD, T_PATHS),
    ),
    Mistake(
        "updates-sampled-fisher-no-1-gamma", SAMPLED,
        "fw = disc * (1.0 - trajs.gamma) if trajs.objective",
        "fw = disc if trajs.objective",
        "sampled Fisher / KL state weights without the (1-gamma) of the normalized occupancy",
        (T_SAMP, T_UPD, T_PATHS),
    ),
    # ---------------------------------------------------------------- planning
    Mistake(
        "updates-vi-bound-no-contraction", PLAN,
        "bound = safety * (g_hat * diff + eta) / (1.0 - g_hat) if g_hat < 1.0 else math.inf",
        "bound = safety * (g_hat * diff + eta) if g_hat < 1.0 else math.inf",
        "value iteration error bound without 1/(1-gamma)",
        (T_PLAN, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-vi-backward-off-by-one", PLAN,
        "for t in range(H - 1, -1, -1):",
        "for t in range(H - 1, 0, -1):",
        "backward induction skips t = 0",
        (T_PLAN, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-mask-zero-not-minus-inf", PLAN,
        "return Q if mask is None else np.where(mask, Q, -np.inf)",
        "return Q if mask is None else np.where(mask, Q, 0.0)",
        "infeasible actions get Q = 0 instead of -inf in the max",
        (T_PLAN, T_THM, T_PATHS),
    ),
    # ---------------------------------------------------------------- soft control
    Mistake(
        "updates-soft-value-no-alpha", SOFT,
        "return top + alpha * np.log(np.exp(z).sum(axis=1))",
        "return top + np.log(np.exp(z).sum(axis=1))",
        "soft value log-sum-exp without the temperature factor alpha",
        (T_PLAN, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-soft-shift-no-alpha", SOFT,
        "return (z - top[:, None]) / alpha, top",
        "return z - top[:, None], top",
        "soft policy and soft value's shifted log-sum-exp forget the temperature",
        (T_PLAN, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-soft-evaluate-Q-drop-gamma", SOFT,
        "Q = mdp.r + mdp.gamma * mdp._expected_next(V)\n    return SoftEvaluation",
        "Q = mdp.r + mdp._expected_next(V)\n    return SoftEvaluation",
        "soft Q = r + P V without gamma",
        (T_PLAN, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-soft-pi-forgets-mask", SOFT,
        "new = _soft_policy(ev.Q, alpha, mask)",
        "new = _soft_policy(ev.Q, alpha, None)",
        "soft policy iteration's improvement ignores the action mask",
        (T_PLAN, T_THM, T_PATHS),
    ),
    # ---------------------------------------------------------------- Newton
    Mistake(
        "updates-newton-increase-no-half", NEWTON,
        "increase = float(gi @ c + 0.5 * np.sum(mu * c * c) - 0.5 * lam * (c @ c))",
        "increase = float(gi @ c + np.sum(mu * c * c) - 0.5 * lam * (c @ c))",
        "damped Newton model increase without the 1/2 of the quadratic term",
        (T_NEWTON, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-cubic-no-factor-2", NEWTON,
        "return float(np.linalg.norm(coefficients(lam))) - 2.0 * lam / M",
        "return float(np.linalg.norm(coefficients(lam))) - lam / M",
        "cubic Newton secular equation ||h|| = lambda/M instead of 2 lambda/M",
        (T_NEWTON, T_THM, T_PATHS),
    ),
    Mistake(
        "updates-cubic-hard-case-radius", NEWTON,
        "tau2 = (2.0 * top / M) ** 2 - float(c @ c)",
        "tau2 = (top / M) ** 2 - float(c @ c)",
        "cubic Newton hard case with the radius mu_max/M instead of 2 mu_max/M",
        (T_NEWTON, T_THM, T_PATHS),
    ),
    # ---------------------------------------------------------------- training
    Mistake(
        "updates-train-kl-swapped", "pgexact/updates/training.py",
        "kl.append(_maybe(exact_kl(theta, new)) if exact_kl else float(\"nan\"))",
        "kl.append(_maybe(exact_kl(new, theta)) if exact_kl else float(\"nan\"))",
        "training record of the KL moved with old and new swapped",
        (T_UPD, T_THM, T_PATHS),
    ),
    # ---------------------------------------------------------------- convergence-rate bounds
    Mistake(
        "updates-npg-bound-gamma-power", "pgexact/theorems/convergence.py",
        "return (np.log(run.n_actions) / run.eta + 1.0 / (1.0 - run.gamma) ** 2) / run.t**power",
        "return (np.log(run.n_actions) / run.eta + 1.0 / (1.0 - run.gamma)) / run.t**power",
        "Agarwal et al.'s NPG bound with 1/(1-gamma) instead of 1/(1-gamma)^2",
        (T_CONV, T_PATHS),
    ),
]
