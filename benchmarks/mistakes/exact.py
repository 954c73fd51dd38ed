"""Plausible mistakes in :mod:`pgexact.exact`, :mod:`pgexact.policies` and :mod:`pgexact.models.finite_mdp`:
evaluation, visitation, gradients, Fisher, divergences, surrogate, Hessians, derivatives in pi, the sparse
solvers, the softmax parametrizations and the model's operators."""

from . import Mistake

_EXACT = ("tests/test_exact.py", "tests/test_exact_closed_forms.py")
_HESSIAN = ("tests/test_hessian.py", "tests/test_second_order.py")
_POLICY_FREE = ("tests/test_policy_free.py",)
_SPARSE = ("tests/test_sparse.py",)

MISTAKES = [
    # ------------------------------------------------------------------ evaluation
    Mistake(
        "exact-visitation-finite-drop-gamma", "pgexact/exact/evaluation.py",
        "return (mdp.gamma ** np.arange(mdp.horizon)) @ p",
        "return np.ones(mdp.horizon) @ p",
        "finite-horizon discounted visitation without the gamma^t weights",
        _EXACT,
    ),
    Mistake(
        "exact-Q-drop-gamma", "pgexact/exact/evaluation.py",
        "Q = mdp.r + mdp.gamma * mdp._expected_next(V)",
        "Q = mdp.r + mdp._expected_next(V)",
        "discounted Q = r + P V, the gamma dropped",
        _EXACT,
    ),
    Mistake(
        "exact-evaluate-occupancy-unnormalized", "pgexact/exact/evaluation.py",
        "d=(1.0 - mdp.gamma) * rho,",
        "d=rho,",
        "Evaluation.d is the unnormalized visitation rho instead of (1 - gamma) rho",
        _EXACT,
    ),
    Mistake(
        "exact-finite-Q-bootstrap-same-step", "pgexact/exact/evaluation.py",
        "mdp._expected_next(np.ascontiguousarray(V[1:].T))",
        "mdp._expected_next(np.ascontiguousarray(V[:-1].T))",
        "finite-horizon Q_t = r + gamma P V_t: bootstrapped from the same step instead of t+1",
        _EXACT,
    ),
    Mistake(
        "exact-marginals-transposed", "pgexact/exact/evaluation.py",
        "p[t] = p[t - 1] @ P_pi",
        "p[t] = P_pi @ p[t - 1]",
        "dense state marginals propagated with P_pi instead of P_pi^T",
        _EXACT,
    ),
    Mistake(
        "exact-marginals-sparse-untransposed", "pgexact/exact/evaluation.py",
        "step = _sparse_policy_transition(mdp.P, pi).T.tocsr()",
        "step = _sparse_policy_transition(mdp.P, pi).tocsr()",
        "sparse state marginals p_{t+1} = P_pi p_t (the transpose forgotten)",
        _SPARSE,
    ),
    Mistake(
        "exact-occupancy-finite-mass-H", "pgexact/exact/evaluation.py",
        "return float(np.sum(mdp.gamma ** np.arange(mdp.horizon)))",
        "return float(mdp.horizon)",
        "finite-horizon occupancy normalized by H instead of sum_t gamma^t",
        _EXACT,
    ),
    Mistake(
        "exact-stationary-right-eigenvector", "pgexact/exact/evaluation.py",
        "scipy.linalg.svd(P_pi.T - np.eye(S))",
        "scipy.linalg.svd(P_pi - np.eye(S))",
        "stationary distribution from the null space of P_pi - I (right eigenvector) instead of P_pi^T - I",
        _EXACT,
    ),
    # ------------------------------------------------------------------ gradients
    Mistake(
        "exact-pg-weights-drop-horizon", "pgexact/exact/gradients.py",
        "rho = ev.d / (1.0 - mdp.gamma)  # type: ignore[operator]",
        "rho = ev.d  # type: ignore[operator]",
        "policy gradient weighted by d instead of d / (1 - gamma)",
        _EXACT,
    ),
    Mistake(
        "exact-pg-finite-drop-discount", "pgexact/exact/gradients.py",
        'return pi * np.einsum("t,ts,tsa->sa", disc, ev.p, X)',
        'return pi * np.einsum("ts,tsa->sa", ev.p, X)',
        "finite-horizon policy gradient without gamma^t on the marginals",
        _EXACT,
    ),
    Mistake(
        "exact-enumeration-rtg-current-score", "pgexact/exact/gradients.py",
        "rtg = rtg[idx] + reward[:, None] * score_sum",
        "rtg = rtg[idx] + reward[:, None] * score[st, at]",
        "reward-to-go enumeration pairs r_t' with the score at t' only, not with the scores of every t <= t'",
        _EXACT,
    ),
    # ------------------------------------------------------------------ Fisher, natural gradient
    Mistake(
        "exact-fisher-unnormalized", "pgexact/exact/fisher.py",
        "d = _visitation(mdp, pi) / _visitation_mass(mdp)\n    score = policy.score(theta)\n    return",
        "d = _visitation(mdp, pi)\n    score = policy.score(theta)\n    return",
        "state-averaged Fisher weighted by the unnormalized visitation",
        _EXACT,
    ),
    Mistake(
        "exact-trajectory-fisher-mean", "pgexact/exact/fisher.py",
        "p = _marginals(mdp, pi, T).sum(axis=0)",
        "p = _marginals(mdp, pi, T).mean(axis=0)",
        "trajectory Fisher averaged over t instead of summed",
        _EXACT,
    ),
    Mistake(
        "exact-fvp-missing-pi", "pgexact/exact/fisher.py",
        "d[:, None] * pi * policy._score_dot(pi, v)",
        "d[:, None] * policy._score_dot(pi, v)",
        "Fisher-vector product without the action probabilities (E_a dropped)",
        _EXACT,
    ),
    Mistake(
        "exact-npg-finite-tabular-unnormalized", "pgexact/exact/fisher.py",
        'u = np.einsum("ts,tsa->sa", rho_t, ev.A) / rho[:, None] * rho.sum()',
        'u = np.einsum("ts,tsa->sa", rho_t, ev.A) / rho[:, None]',
        "finite-horizon tabular NPG: the normalization sum_t gamma^t of d forgotten",
        _EXACT,
    ),
    Mistake(
        "exact-npg-linear-finite-unnormalized", "pgexact/exact/fisher.py",
        "d = ev.d if mdp.horizon is None else _visitation(mdp, pi) / _visitation_mass(mdp)",
        "d = ev.d if mdp.horizon is None else _visitation(mdp, pi)",
        "finite-horizon linear-softmax NPG solves with the Fisher of the unnormalized visitation",
        _EXACT,
    ),
    # ------------------------------------------------------------------ divergences
    Mistake(
        "exact-kl-swapped", "pgexact/exact/divergences.py",
        "return rel_entr(p, q).sum(axis=1)",
        "return rel_entr(q, p).sum(axis=1)",
        "KL(q || p) instead of KL(p || q)",
        _EXACT,
    ),
    Mistake(
        "exact-kl-gradient-sign", "pgexact/exact/divergences.py",
        "diff = policy.probs(tq) - policy.probs(tp)",
        "diff = policy.probs(tp) - policy.probs(tq)",
        "gradient of the expected KL with the wrong sign",
        _EXACT,
    ),
    # ------------------------------------------------------------------ surrogate, performance difference
    Mistake(
        "exact-surrogate-weights-drop-horizon", "pgexact/exact/surrogate.py",
        "return (ev_old.d / (1.0 - mdp.gamma))[:, None] * ev_old.A",
        "return ev_old.d[:, None] * ev_old.A",
        "surrogate weighted by d instead of d / (1 - gamma)",
        _EXACT,
    ),
    Mistake(
        "exact-surrogate-finite-drop-discount", "pgexact/exact/surrogate.py",
        'return np.einsum("t,ts,tsa->sa", disc, ev_old.p, ev_old.A)',
        'return np.einsum("ts,tsa->sa", ev_old.p, ev_old.A)',
        "finite-horizon surrogate without gamma^t",
        _EXACT,
    ),
    Mistake(
        "exact-surrogate-gradient-missing-pi", "pgexact/exact/surrogate.py",
        "return policy._score_contract(pi_new, weights * pi_new)",
        "return policy._score_contract(pi_new, weights)",
        "surrogate gradient without the new policy's probabilities in its weights",
        _EXACT,
    ),
    # ------------------------------------------------------------------ Hessians
    Mistake(
        "exact-hessian-curvature-wrong-axis", "pgexact/exact/hessian.py",
        "w = pi * (G - np.sum(pi * G, axis=1, keepdims=True))",
        "w = pi * (G - np.sum(pi * G, axis=0, keepdims=True))",
        "G-bar averaged over states instead of actions in the softmax curvature term",
        _HESSIAN,
    ),
    Mistake(
        "exact-hvp-bracket-missing-term", "pgexact/exact/hessian.py",
        "bracket = u * (G - Gbar) - pi * np.sum(u * G, axis=1, keepdims=True)",
        "bracket = u * (G - Gbar)",
        "Hessian-vector product: the -pi sum_b u G term of the softmax curvature dropped",
        _HESSIAN,
    ),
    Mistake(
        "exact-hessian-uncentred-transitions", "pgexact/exact/hessian.py",
        "* (P - P_pi[:, None, :])  # centred",
        "* P  # centred",
        "dense Hessian: Y built from P instead of the centred P - P_pi (logits, not scores)",
        _HESSIAN,
    ),
    Mistake(
        "exact-pi-hvp-finite-visitation-off-by-one", "pgexact/exact/second_order.py",
        "out += disc[t] * dp[:, None, :] * Q[t][:, :, None]",
        "out += disc[t - 1] * dp[:, None, :] * Q[t][:, :, None]",
        "finite-horizon pi-Hessian: delta p_t weighted by gamma^(t-1)",
        _HESSIAN,
    ),
    Mistake(
        "exact-pi-hvp-finite-value-drop-gamma", "pgexact/exact/second_order.py",
        "out += (disc[t] * g) * p[t][:, None, None] * mdp._expected_next(dV)",
        "out += disc[t] * p[t][:, None, None] * mdp._expected_next(dV)",
        "finite-horizon pi-Hessian: delta Q_t = P delta V_{t+1} without its gamma",
        _HESSIAN,
    ),
    # ------------------------------------------------------------------ derivatives in pi
    Mistake(
        "exact-pi-gradient-drop-horizon", "pgexact/exact/policy_free.py",
        "return (ev.d / (1.0 - mdp.gamma))[:, None] * ev.Q",
        "return ev.d[:, None] * ev.Q",
        "dJ/dpi = d Q instead of d Q / (1 - gamma)",
        _POLICY_FREE,
    ),
    Mistake(
        "exact-value-vjp-finite-cotangent-off-by-one", "pgexact/exact/policy_free.py",
        "lam += Vb[t + 1]",
        "lam += Vb[t]",
        "finite-horizon value VJP: the cotangent of V_{t+1} added at the wrong step",
        _POLICY_FREE,
    ),
    Mistake(
        "exact-occupancy-vjp-finite-off-by-one", "pgexact/exact/policy_free.py",
        "x = (mdp.gamma**t) * db / Z",
        "x = (mdp.gamma ** (t + 1)) * db / Z",
        "finite-horizon occupancy VJP: the adjoint source gamma^t d_bar off by one step",
        _POLICY_FREE,
    ),
    # ------------------------------------------------------------------ softmax parametrizations
    Mistake(
        "exact-score-dot-uniform-mean", "pgexact/policies/softmax.py",
        "return zv - (pi * zv).sum(axis=1, keepdims=True)",
        "return zv - zv.mean(axis=1, keepdims=True)",
        "score . v centred by the uniform mean of the logits instead of the pi-weighted one",
        ("tests/test_policies.py", "tests/test_exact.py"),
    ),
    # ------------------------------------------------------------------ model
    Mistake(
        "exact-model-sas-reward-unweighted", "pgexact/models/finite_mdp.py",
        'r = np.einsum("sat,sat->sa", P, r)',
        "r = r.mean(axis=2)",
        "reward r(s, a, s') reduced by a plain mean over s' instead of the expectation under P",
        ("tests/test_models.py", "tests/test_exact_closed_forms.py"),
    ),
    Mistake(
        "exact-sparse-policy-transition-transposed-pi", "pgexact/models/finite_mdp.py",
        "data = P.data * np.repeat(pi.reshape(-1), np.diff(P.indptr))",
        "data = P.data * np.repeat(pi.T.reshape(-1), np.diff(P.indptr))",
        "sparse P_pi with pi flattened action-major: row s*A + a scaled by the wrong probability",
        ("tests/test_models.py",) + _SPARSE,
    ),
    # ------------------------------------------------------------------ sparse solvers
    Mistake(
        "exact-krylov-occupancy-untransposed", "pgexact/exact/_krylov.py",
        "MT = M.T.tocsr()",
        "MT = M.tocsr()",
        "sparse occupancy solves (I - gamma P_pi) rho = mu0 instead of the transposed system",
        _SPARSE,
    ),
    Mistake(
        "exact-sparse-stationary-column", "pgexact/exact/_sparse_stationary.py",
        "rhs = Q[[0], 1:].toarray().ravel()",
        "rhs = Q[1:, [0]].toarray().ravel()",
        "sparse stationary distribution: balance right side from the column of state k instead of its row",
        _SPARSE,
    ),
    # ------------------------------------------------------------------ discretization
    Mistake(
        "exact-discretization-error-sign", "pgexact/exact/discretization.py",
        "error=J0 - values[0]",
        "error=values[0] - J0",
        "discretization error reported as J - J_extrapolated (the correction with the wrong sign)",
        ("tests/test_classic_control.py",),
    ),
]
