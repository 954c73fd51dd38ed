"""Plausible mistakes in :mod:`pgexact.lqr`, :mod:`pgexact.average` and :mod:`pgexact.mdps` (classic control)."""

from . import Mistake

_EV = "pgexact/lqr/evaluation.py"
_ST = "pgexact/lqr/_stein.py"
_RI = "pgexact/lqr/riccati.py"
_GR = "pgexact/lqr/gradients.py"
_HE = "pgexact/lqr/hessian.py"
_SO = "pgexact/lqr/soft.py"
_AV = "pgexact/average/evaluation.py"
_AS = "pgexact/average/_structured.py"
_AC = "pgexact/average/control.py"
_CC = "pgexact/mdps/classic_control.py"

_VALUES_TESTS = "tests/test_lqr_average_values.py"
_LQR_TESTS = ("tests/test_lqr_exact.py", "tests/test_lqr_api.py", _VALUES_TESTS)
_SOFT_TESTS = ("tests/test_lqr_soft.py", _VALUES_TESTS)
_HESS_TESTS = ("tests/test_lqr_hessian.py",)
_AVG_TESTS = ("tests/test_average.py", _VALUES_TESTS)
_CTRL_TESTS = ("tests/test_average_control.py", _VALUES_TESTS)
_CC_TESTS = ("tests/test_classic_control.py",)

MISTAKES = [
    # ------------------------------------------------------------------ LQR evaluation
    Mistake(
        "lqr-sigma-noise-drop-gamma", _EV,
        "q_sigma = np.array(Sigma0) if g == 1.0 else Sigma0 + (g / (1.0 - g)) * WK",
        "q_sigma = np.array(Sigma0) if g == 1.0 else Sigma0 + (1.0 / (1.0 - g)) * WK",
        "Sigma_K's noise term W_K/(1-gamma) instead of gamma W_K/(1-gamma) (noise counted at t = 0)",
        _LQR_TESTS,
    ),
    Mistake(
        "lqr-offset-drop-gamma", _EV,
        "c = 0.0 if g == 1.0 else (float(np.sum(R * Su)) + g * float(np.sum(P * WK))) / (1.0 - g)",
        "c = 0.0 if g == 1.0 else (float(np.sum(R * Su)) + float(np.sum(P * WK))) / (1.0 - g)",
        "the cost-to-go offset c_K without the gamma before tr(P_K W_K)",
        _LQR_TESTS,
    ),
    Mistake(
        "lqr-finite-offset-undiscounted-tail", _EV,
        "c[t] = trRS + g * (float(np.sum(P[t + 1] * WK)) + c[t + 1])",
        "c[t] = trRS + g * float(np.sum(P[t + 1] * WK)) + c[t + 1]",
        "finite-horizon offset recursion: c_{t+1} added without its discount",
        _LQR_TESTS,
    ),
    Mistake(
        "lqr-finite-sigma-time-shift", _EV,
        'Sigma = np.einsum("t,tij->ij", g ** np.arange(H), S)',
        'Sigma = np.einsum("t,tij->ij", g ** np.arange(1, H + 1), S)',
        "finite-horizon discounted state correlation weighted gamma^(t+1) instead of gamma^t",
        _LQR_TESTS,
    ),
    Mistake(
        "lqr-Q-drop-noise-term", _EV,
        '+ lqr.gamma * (np.einsum("...i,ij,...j->...", y, Pn, y) + np.sum(Pn * lqr.noise_cov) + cn))',
        '+ lqr.gamma * (np.einsum("...i,ij,...j->...", y, Pn, y) + cn))',
        "Q(x, u) without the expected next-state noise cost tr(P' W)",
        _LQR_TESTS,
    ),
    Mistake(
        "lqr-grad-u-Q-drop-gamma", _EV,
        "return -2.0 * (u @ lqr.R + x @ lqr.N + lqr.gamma * (y @ Pn @ lqr.B))",
        "return -2.0 * (u @ lqr.R + x @ lqr.N + (y @ Pn @ lqr.B))",
        "grad_u Q without the discount of the next state's cost",
        _LQR_TESTS,
    ),
    Mistake(
        "lqr-QK-cross-sign", _EV,
        "QK = lqr.Q + K.T @ lqr.R @ K - NK - NK.T",
        "QK = lqr.Q + K.T @ lqr.R @ K + NK + NK.T",
        "closed-loop state cost with the cross term 2 x'N u at u = +Kx instead of -Kx",
        _LQR_TESTS,
    ),
    # ------------------------------------------------------------------ Stein solver
    Mistake(
        "lqr-stein-direct-P-untransposed", _ST,
        "P = scipy.linalg.lu_solve(lu, q_p.reshape(-1), trans=1, check_finite=False).reshape(n, n)",
        "P = scipy.linalg.lu_solve(lu, q_p.reshape(-1), trans=0, check_finite=False).reshape(n, n)",
        "P_K from the Sigma equation's matrix (a A' instead of A' P A): the transpose forgotten",
        _LQR_TESTS,
    ),
    Mistake(
        "lqr-stein-cayley-drop-2", _ST,
        'YP, sP, infoP = trsyl(T, T, -2.0 * FP, trana="T")',
        'YP, sP, infoP = trsyl(T, T, -FP, trana="T")',
        "Cayley-transformed P equation without the factor 2 of c_P (n >= 10 only)",
        _LQR_TESTS,
    ),
    # ------------------------------------------------------------------ Riccati
    Mistake(
        "lqr-riccati-finite-offset-tail", _RI,
        "c[t] = g * (float(np.sum(Pn * W)) + c[t + 1])",
        "c[t] = g * float(np.sum(Pn * W)) + c[t + 1]",
        "finite-horizon optimal offset: c_{t+1} added without its discount",
        _LQR_TESTS,
    ),
    Mistake(
        "lqr-riccati-offset-drop-gamma", _RI,
        "d = g / (1.0 - g) * float(np.sum(P * W)) if g < 1.0 else 0.0",
        "d = 1.0 / (1.0 - g) * float(np.sum(P * W)) if g < 1.0 else 0.0",
        "optimal noise offset tr(P W)/(1-gamma) instead of gamma tr(P W)/(1-gamma)",
        _LQR_TESTS,
    ),
    Mistake(
        "lqr-riccati-finite-gain-drop-gamma", _RI,
        "Kt = np.linalg.solve(R + g * (B.T @ Pn @ B), g * (B.T @ Pn @ A) + N.T)",
        "Kt = np.linalg.solve(R + g * (B.T @ Pn @ B), B.T @ Pn @ A + N.T)",
        "finite-horizon optimal gain with gamma dropped from B' P A",
        _LQR_TESTS,
    ),
    # ------------------------------------------------------------------ gradients
    Mistake(
        "lqr-gain-error-finite-P-index", _GR,
        "Pn = np.concatenate([ev.P[1:], np.zeros((1, n, n))])  # P_{t+1}",
        "Pn = ev.P  # P_{t+1}",
        "finite-horizon E_{K,t} with P_t instead of P_{t+1} (off-by-one)",
        _LQR_TESTS,
    ),
    Mistake(
        "lqr-grad-finite-discount-shift", _GR,
        "G = 2.0 * (lqr.gamma ** np.arange(lqr.horizon))[:, None, None]",
        "G = 2.0 * (lqr.gamma ** np.arange(1, lqr.horizon + 1))[:, None, None]",
        "finite-horizon gradient weighted gamma^(t+1) instead of gamma^t",
        _LQR_TESTS,
    ),
    Mistake(
        "lqr-noise-grad-drop-horizon-factor", _GR,
        "G = (R + g * (B.T @ ev.P @ B)) / (1.0 - g)",
        "G = R + g * (B.T @ ev.P @ B)",
        "dC/dSigma_u without the 1/(1-gamma) of the discounted sum",
        _LQR_TESTS,
    ),
    Mistake(
        "lqr-noise-grad-finite-undiscounted-R", _GR,
        "G = w.sum() * R + g * np.einsum",
        "G = H * R + g * np.einsum",
        "finite-horizon dC/dSigma_u with H tr(R Sigma_u) instead of sum_t gamma^t",
        _LQR_TESTS,
    ),
    Mistake(
        "lqr-state-moment-finite-mass", _GR,
        "mass = float(np.sum(lqr.gamma ** np.arange(lqr.horizon)))",
        "mass = float(lqr.horizon)",
        "finite-horizon normalized state moment divided by H instead of sum_t gamma^t",
        _LQR_TESTS,
    ),
    Mistake(
        "lqr-fisher-kron-order", _GR,
        "FK = np.kron(Su_inv, _state_second_moment(ev))",
        "FK = np.kron(_state_second_moment(ev), Su_inv)",
        "Fisher's Kronecker factors in column-major order (vec K row-major)",
        _LQR_TESTS,
    ),
    Mistake(
        "lqr-gauss-newton-drop-gamma", _GR,
        "RB = lqr.R + g * (B.T @ ev.P @ B)",
        "RB = lqr.R + B.T @ ev.P @ B",
        "Gauss-Newton preconditioner R + B'PB without gamma",
        _LQR_TESTS,
    ),
    Mistake(
        "lqr-npg-direction-drop-2", _GR,
        "return 2.0 * _gain_error(_eval(lqr, K, noise_cov))",
        "return _gain_error(_eval(lqr, K, noise_cov))",
        "Fazel's natural gradient grad C Sigma_K^{-1} = 2 E_K with the 2 dropped",
        _LQR_TESTS,
    ),
    # ------------------------------------------------------------------ Hessian
    Mistake(
        "lqr-hessian-dG-drop-gamma", _HE,
        "dG = B.T @ dP @ B * (g / (1.0 - g)) if g < 1.0",
        "dG = B.T @ dP @ B * (1.0 / (1.0 - g)) if g < 1.0",
        "cross block d/dl grad_K C with 1/(1-gamma) instead of gamma/(1-gamma)",
        _HESS_TESTS,
    ),
    Mistake(
        "lqr-hessian-finite-dG-exponent", _HE,
        "dG += g ** (t + 1) * (B.T @ dPs[t + 1] @ B)",
        "dG += g ** t * (B.T @ dPs[t + 1] @ B)",
        "finite-horizon cross block weighted gamma^t instead of gamma^(t+1)",
        _HESS_TESTS,
    ),
    Mistake(
        "lqr-hessian-finite-dS-sign", _HE,
        "dS = AKs[t] @ dS @ AKs[t].T - (BXSA + BXSA.T)",
        "dS = AKs[t] @ dS @ AKs[t].T + (BXSA + BXSA.T)",
        "finite-horizon S'_{t+1} source with the sign of d(A - BK) = -B X lost",
        _HESS_TESTS,
    ),
    # ------------------------------------------------------------------ soft LQR
    Mistake(
        "lqr-soft-offset-sign", _SO,
        "d = (g * float(np.sum(P * lqr.noise_cov)) - alpha * log_partition) / (1.0 - g)",
        "d = (g * float(np.sum(P * lqr.noise_cov)) + alpha * log_partition) / (1.0 - g)",
        "soft optimal offset with the log-partition added to the cost instead of subtracted",
        _SOFT_TESTS,
    ),
    Mistake(
        "lqr-soft-Q-drop-gamma", _SO,
        "return self.base.Q(x, u) + g * self.alpha * self.entropy / (1.0 - g)",
        "return self.base.Q(x, u) + self.alpha * self.entropy / (1.0 - g)",
        "soft Q with the entropy bonus of the current step counted (gamma dropped)",
        _SOFT_TESTS,
    ),
    # ------------------------------------------------------------------ average reward
    Mistake(
        "avg-Q-drop-rho", _AV,
        "Q = mdp.r - rho + mdp._expected_next(h)",
        "Q = mdp.r + mdp._expected_next(h)",
        "differential Q without subtracting the gain",
        _AVG_TESTS,
    ),
    Mistake(
        "avg-multichain-bias-drop-gain", _AV,
        "h = scipy.linalg.solve(np.eye(S) - P_pi + limit, r_pi - gain)",
        "h = scipy.linalg.solve(np.eye(S) - P_pi + limit, r_pi)",
        "multichain bias without subtracting the gain",
        _AVG_TESTS,
    ),
    Mistake(
        "avg-multichain-class-dist-untransposed", _AV,
        "dC = scipy.linalg.solve((np.eye(n) - P_pi[np.ix_(C, C)] + 1.0).T, np.ones(n))",
        "dC = scipy.linalg.solve(np.eye(n) - P_pi[np.ix_(C, C)] + 1.0, np.ones(n))",
        "class stationary distribution from the right (not left) eigen-system",
        _AVG_TESTS,
    ),
    Mistake(
        "avg-gth-include-diagonal", _AS,
        "s = W[k, :k].sum()  # > 0",
        "s = W[k, :k + 1].sum()  # > 0",
        "GTH elimination: the exit mass of state k summed with its own self-loop",
        _AVG_TESTS,
    ),
    Mistake(
        "avg-grounded-pivot-sign", _AS,
        "pivots[k] = slack[k] - M[k, k + 1:].sum()",
        "pivots[k] = slack[k] + M[k, k + 1:].sum()",
        "grounded elimination pivot: slack minus the off-diagonal magnitudes (M holds -P)",
        _AVG_TESTS,
    ),
    Mistake(
        "avg-structured-bias-normalization", _AS,
        "h -= d @ h",
        "h -= h.mean()",
        "nearly multichain bias normalized by mean(h) = 0 instead of d'h = 0",
        _AVG_TESTS,
    ),
    Mistake(
        "avg-rvi-any-self-loop", _AC,
        "tau = 0.0 if np.all(loops[tab.mask] > 0) else 0.5",
        "tau = 0.0 if np.any(loops[tab.mask] > 0) else 0.5",
        "aperiodicity transform skipped as soon as one pair has a self-loop",
        _CTRL_TESTS,
    ),
    # ------------------------------------------------------------------ classic control
    Mistake(
        "cc-periodic-period-off-by-one", _CC,
        "u = np.mod(u, n)",
        "u = np.mod(u, n - 1)",
        "periodic axis wrapped with period (n - 1) h instead of n h",
        _CC_TESTS,
    ),
    Mistake(
        "cc-point-reset-weights-swapped", _CC,
        "out[i] += 1 - w\n        out[j] += w",
        "out[i] += w\n        out[j] += 1 - w",
        "a point-mass reset coordinate spread with the two end weights swapped",
        _CC_TESTS,
    ),
    Mistake(
        "cc-pendulum-explicit-euler", _CC,
        'newth = th + newthdot * c["dt"]',
        'newth = th + thdot * c["dt"]',
        "Pendulum angle advanced with the old speed (explicit Euler) instead of gymnasium's new speed",
        _CC_TESTS,
    ),
]
