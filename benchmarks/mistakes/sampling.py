"""Plausible mistakes in sampling and the adapters: the rollout kernel (numpy and compiled), alias tables,
the reverse scan, the ragged trajectories, chunk seeding, the torch and JAX adapters' derivative rules, and
the conformance expected update and reference buffer."""

from . import Mistake

_KERNEL_TESTS = ("tests/test_rollout.py", "tests/test_compiled_kernel.py")
_TRAJ_TESTS = ("tests/test_rollout.py", "tests/test_sampling_paths.py", "tests/test_estimators.py",
               "tests/test_reliability_round3.py")
_TORCH_TESTS = ("tests/test_torch.py", "tests/test_torch_derivatives.py", "tests/test_sampling_paths.py")
_JAX_TESTS = ("tests/test_jax.py", "tests/test_jax_derivatives.py", "tests/test_sampling_paths.py")
_CONFORMANCE_TESTS = ("tests/test_conformance.py",)

MISTAKES = [
    # ------------------------------------------------------------------ numpy kernel
    Mistake(
        "sampling-kernel-decode-action-by-A", "pgexact/sampling/kernel.py",
        "np.floor_divide(code_, S, out=a_)",
        "np.floor_divide(code_, A, out=a_)",
        "code = a*S + s' decoded by dividing by the number of actions (non-power-of-two S)",
        _KERNEL_TESTS,
    ),
    Mistake(
        "sampling-kernel-shift-off-by-one", "pgexact/sampling/kernel.py",
        "shift = S.bit_length() - 1",
        "shift = S.bit_length()",
        "power-of-two S: the action decoded by a shift one bit too far",
        _KERNEL_TESTS,
    ),
    Mistake(
        "sampling-kernel-reward-index-S", "pgexact/sampling/kernel.py",
        "np.multiply(s_, A, out=sa_, dtype=np.intp)",
        "np.multiply(s_, S, out=sa_, dtype=np.intp)",
        "reward read at r.flat[s*S + a] instead of r.flat[s*A + a]",
        _KERNEL_TESTS,
    ),
    Mistake(
        "sampling-kernel-flat-states-offset", "pgexact/sampling/kernel.py",
        "states[n + o : n + o + m] = s_",
        "states[o : o + m] = s_",
        "ragged output: next states written without the shift by the n initial states",
        _KERNEL_TESTS,
    ),
    Mistake(
        "sampling-kernel-time-major-next-state-row", "pgexact/sampling/kernel.py",
        "st2[t + 1, :m] = s_",
        "st2[t, :m] = s_",
        "time-major output: s_{t+1} written in row t (overwrites s_t)",
        _KERNEL_TESTS,
    ),
    Mistake(
        "sampling-kernel-tail-column-length", "pgexact/sampling/kernel.py",
        'col_len = np.searchsorted(-counts[t0:], -np.arange(m0), side="left")',
        'col_len = np.searchsorted(-counts[t0:], -np.arange(m0), side="right")',
        "scan tail: rows left per column counted with counts >= k instead of > k (one row too many)",
        _KERNEL_TESTS,
    ),
    Mistake(
        "sampling-kernel-tail-composition-order", "pgexact/sampling/kernel.py",
        "levels.append(c[1::2].reshape(-1).take(c[0::2] + (np.arange(h, dtype=np.intp) * S)[:, None]))",
        "levels.append(c[0::2].reshape(-1).take(c[1::2] + (np.arange(h, dtype=np.intp) * S)[:, None]))",
        "scan tail: maps composed in the wrong order (f_{2i} o f_{2i+1} instead of f_{2i+1} o f_{2i})",
        _KERNEL_TESTS,
    ),
    Mistake(
        "sampling-sparse-codes-state-for-action", "pgexact/sampling/kernel.py",
        "codes[rows, pos] = (k % A) * S + indices[e0:e1]",
        "codes[rows, pos] = (k // A) * S + indices[e0:e1]",
        "sparse joint table: the code's action taken from the row's state (k // A) instead of k % A",
        _KERNEL_TESTS,
    ),
    # ------------------------------------------------------------------ alias tables
    Mistake(
        "sampling-alias-converted-threshold-sign", "pgexact/sampling/alias.py",
        "threshold_s = np.where(small_pos, qs, np.where(conv, 1.0 - (D_a - E), 1.0))",
        "threshold_s = np.where(small_pos, qs, np.where(conv, 1.0 - (E - D_a), 1.0))",
        "a converted large column's threshold 1 - (E - D) instead of 1 - (D - E)",
        _KERNEL_TESTS,
    ),
    Mistake(
        "sampling-alias-sample-coin-reversed", "pgexact/sampling/alias.py",
        "return np.where(x < self.threshold[flat], prim, self.alias[flat])",
        "return np.where(x > self.threshold[flat], prim, self.alias[flat])",
        "AliasTable draws (initial states): coin test reversed, the column's own outcome kept when f > q",
        _KERNEL_TESTS,
    ),
    # ------------------------------------------------------------------ compiled kernel
    Mistake(
        "sampling-compiled-entry-index-S", "pgexact/sampling/_compiled.py",
        "f = s[k] * K + j",
        "f = s[k] * S + j",
        "compiled dense kernel: table entry s*S + j instead of s*K + j",
        _KERNEL_TESTS,
    ),
    Mistake(
        "sampling-compiled-reward-index-S", "pgexact/sampling/_compiled.py",
        "rw[k] = reward[s[k] * A + a]",
        "rw[k] = reward[s[k] * S + a]",
        "compiled time-major kernel: reward read at r.flat[s*S + a]",
        _KERNEL_TESTS,
    ),
    Mistake(
        "sampling-compiled-sparse-decode-by-A", "pgexact/sampling/_compiled.py",
        "return a, c - a * S",
        "return a, c - a * A",
        "compiled sparse decoding: next state c - a*A instead of c - a*S",
        _KERNEL_TESTS,
    ),
    # ------------------------------------------------------------------ reverse scan
    Mistake(
        "sampling-scan-forward-instead-of-reverse", "pgexact/sampling/_scan.py",
        "expo = i[None, :] - i[:, None]",
        "expo = i[:, None] - i[None, :]",
        "block matrix transposed: y_t = x_t + c y_{t-1} (a forward scan) instead of c y_{t+1}",
        _TRAJ_TESTS,
    ),
    Mistake(
        "sampling-scan-block-factor-off-by-one", "pgexact/sampling/_scan.py",
        "first = reverse_scan(local[:, 0, :], c**B)",
        "first = reverse_scan(local[:, 0, :], c**(B - 1))",
        "blocks joined with c^(B-1) instead of c^B (episodes longer than 64 steps)",
        _TRAJ_TESTS,
    ),
    # ------------------------------------------------------------------ trajectories
    Mistake(
        "sampling-steps-state-row-size", "pgexact/sampling/trajectories.py",
        "state_index = np.arange(M, dtype=np.intp) + N - np.repeat(prev, self.counts)",
        "state_index = np.arange(M, dtype=np.intp) + N - np.repeat(self.counts, self.counts)",
        "ragged per-step states: state row t sized counts[t] instead of counts[t-1] (N for t = 0)",
        _TRAJ_TESTS,
    ),
    Mistake(
        "sampling-steps-last-off-by-one", "pgexact/sampling/trajectories.py",
        "last=time == self.stops[episode] - 1,",
        "last=time == self.stops[episode],",
        "the episode's last simulated step at t = stops instead of stops - 1",
        _TRAJ_TESTS,
    ),
    Mistake(
        "sampling-steps-real-inclusive", "pgexact/sampling/trajectories.py",
        "real=time < self.lengths[episode],",
        "real=time <= self.lengths[episode],",
        "real steps t <= length: the step spent in the terminal state counted",
        _TRAJ_TESTS,
    ),
    # ------------------------------------------------------------------ rollout
    Mistake(
        "sampling-rollout-finite-flagged-truncated", "pgexact/sampling/rollout.py",
        'truncated = ~absorbed if objective == "truncated" else np.zeros(n, dtype=bool)',
        'truncated = ~absorbed if objective != "geometric" else np.zeros(n, dtype=bool)',
        "finite-horizon episodes flagged truncated (a bootstrap after the horizon would be allowed)",
        ("tests/test_rollout.py", "tests/test_estimators.py"),
    ),
    Mistake(
        "sampling-rollout-geometric-counts-inclusive", "pgexact/sampling/rollout.py",
        'counts = np.searchsorted(-L_sorted, -np.arange(int(L_sorted[0])), side="left").astype(np.int64)',
        'counts = np.searchsorted(-L_sorted, -np.arange(int(L_sorted[0])), side="right").astype(np.int64)',
        "geometric chunk: row t simulates #{L >= t} episodes instead of #{L > t}",
        ("tests/test_rollout.py", "tests/test_estimators.py"),
    ),
    Mistake(
        "sampling-rollout-every-chunk-seed-0", "pgexact/sampling/rollout.py",
        "_run_chunk(sampler, chunk_seed(ss, i), size, T, objective, mdp.gamma, out=view)",
        "_run_chunk(sampler, chunk_seed(ss, 0), size, T, objective, mdp.gamma, out=view)",
        "one-shot rollout: every chunk drawn from child seed 0 (repeated episodes, differs from rollout_chunks)",
        ("tests/test_rollout.py",),
    ),
    Mistake(
        "sampling-distributed-seed-off-by-one", "pgexact/distributed.py",
        "seeds = [chunk_seed(ss, i) for i in range(len(sizes))]",
        "seeds = [chunk_seed(ss, i + 1) for i in range(len(sizes))]",
        "distributed chunks drawn from child i+1 (not the chunks of rollout_chunks)",
        ("tests/test_distributed.py",),
    ),
    # ------------------------------------------------------------------ torch adapter
    Mistake(
        "adapters-torch-adjoint-solve-not-transposed", "pgexact/torch.py",
        "gb = _Solve.apply(pi, g, mdp, ctx.tol, not ctx.transpose)",
        "gb = _Solve.apply(pi, g, mdp, ctx.tol, ctx.transpose)",
        "reverse rule of the solve with M^-1 instead of M^-T",
        _TORCH_TESTS,
    ),
    Mistake(
        "adapters-torch-jvp-drop-gamma", "pgexact/torch.py",
        "rhs = rhs + gamma * (dpi * _Next.apply(x, mdp)).sum(dim=1)",
        "rhs = rhs + (dpi * _Next.apply(x, mdp)).sum(dim=1)",
        "forward (jvp) rule of the solve without gamma: dx = M^-1 (db + P_dpi x)",
        _TORCH_TESTS,
    ),
    Mistake(
        "adapters-torch-finite-horizon-one-step-short", "pgexact/torch.py",
        "for t in range(mdp.horizon - 1, -1, -1):",
        "for t in range(mdp.horizon - 1, 0, -1):",
        "finite-horizon backward recursion stops one step early (H - 1 value tables)",
        _TORCH_TESTS,
    ),
    Mistake(
        "adapters-torch-average-reward-cotangent-ignored", "pgexact/torch.py",
        "out = g * G",
        "out = G",
        "average reward's backward ignores its cotangent g",
        _TORCH_TESTS,
    ),
    # ------------------------------------------------------------------ jax adapter
    Mistake(
        "adapters-jax-transpose-matvec-drop-gamma", "pgexact/jax.py",
        "return y - gamma * ops.back(y[:, None] * pi)",
        "return y - ops.back(y[:, None] * pi)",
        "M^T y written without gamma (what custom_linear_solve differentiates the transposed solve through)",
        _JAX_TESTS,
    ),
    Mistake(
        "adapters-jax-finite-scan-forward", "pgexact/jax.py",
        "jax.lax.scan(step, jnp.zeros(mdp.n_states), length=mdp.horizon, reverse=True)",
        "jax.lax.scan(step, jnp.zeros(mdp.n_states), length=mdp.horizon, reverse=False)",
        "finite-horizon value tables stacked in the wrong time order (V[0] is the one-step value)",
        _JAX_TESTS,
    ),
    Mistake(
        "adapters-jax-average-reward-cotangent-ignored", "pgexact/jax.py",
        "return (g * G,)",
        "return (G,)",
        "average reward's custom VJP ignores its cotangent g",
        _JAX_TESTS,
    ),
    # ------------------------------------------------------------------ conformance: expected update
    Mistake(
        "conformance-renewal-length-law-sign", "pgexact/conformance/expected.py",
        "f[1:T] = alive[:-1] - alive[1:]",
        "f[1:T] = alive[1:] - alive[:-1]",
        "episode-length law f_k = |q_k| - |q_{k-1}| (sign): the renewal sequence with terminal states",
        _CONFORMANCE_TESTS,
    ),
    Mistake(
        "conformance-renewal-reset-obs-drop-gamma", "pgexact/conformance/expected.py",
        '"reset_obs": g * Pnt * float(mdp.mu0 @ V)}',
        '"reset_obs": Pnt * float(mdp.mu0 @ V)}',
        "reset_obs truncation's bootstrap V(s_0) without gamma",
        _CONFORMANCE_TESTS,
    ),
    Mistake(
        "conformance-renewal-gae-drop-lambda", "pgexact/conformance/expected.py",
        "fams[key] = delta_mid + (g * lam) * mdp._expected_next((pi * h).sum(axis=1) * nonterm)",
        "fams[key] = delta_mid + g * mdp._expected_next((pi * h).sum(axis=1) * nonterm)",
        "expected GAE recursion with gamma instead of gamma * lambda",
        _CONFORMANCE_TESTS,
    ),
    Mistake(
        "conformance-expected-update-wrong-axis", "pgexact/conformance/expected.py",
        "update = W - pi * W.sum(axis=1, keepdims=True)",
        "update = W - pi * W.sum(axis=0, keepdims=True)",
        "softmax logits' update w - pi sum_a w summed over states instead of actions",
        _CONFORMANCE_TESTS,
    ),
    # ------------------------------------------------------------------ conformance: reference buffer
    Mistake(
        "conformance-reference-bootstrap-reset-obs", "pgexact/conformance/reference.py",
        "delta = np.where(trunc, rew + g * V[fobs] - V[o], delta)",
        "delta = np.where(trunc, rew + g * V[nobs] - V[o], delta)",
        "bootstrap truncation from the returned (reset) observation instead of the final one",
        _CONFORMANCE_TESTS,
    ),
    Mistake(
        "conformance-reference-time-limit-off-by-one", "pgexact/conformance/reference.py",
        "trunc = ~term & (kk >= T)",
        "trunc = ~term & (kk > T)",
        "reference environment truncates one step after the time limit",
        _CONFORMANCE_TESTS,
    ),
]
