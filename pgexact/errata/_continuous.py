r"""Witnesses of the errata about Gaussian and deterministic policies, noise processes and rates.

The printed and the corrected statements are evaluated by a few lines of numpy; the truth comes
from pgexact's closed forms (LQR, Gaussian policy) or an exact recursion, confirmed by an
independent computation (central differences, an ODE solver, binomial enumeration, asymptotics).
"""

from __future__ import annotations

import numpy as np
import scipy.integrate
import scipy.linalg
import scipy.stats

from ..lqr import LQR, cost_gradient, evaluate
from ._witness import Witness, identity_witness

__all__: list[str] = []


_DDPG = ("LQR x' = Ax + Bu, A = [[1, 0.2], [0, 0.9]], B = [[0], [1]], Q = I, R = 0.5, γ = 0.9, "
         "D = N(0, Σ0) with Σ0 = I; deterministic policy μ_θ(x) = −Kx, K = [[0.3, 0.4]]")


def w_ddpg_gradient() -> Witness:
    A = np.array([[1.0, 0.2], [0.0, 0.9]])
    B = np.array([[0.0], [1.0]])
    Qc, R, S0, g = np.eye(2), np.array([[0.5]]), np.eye(2), 0.9
    K = np.array([[0.3, 0.4]])
    AK = A - B @ K
    P = scipy.linalg.solve_discrete_lyapunov(np.sqrt(g) * AK.T, Qc + K.T @ R @ K)  # cost-to-go xᵀPx
    Sig = scipy.linalg.solve_discrete_lyapunov(np.sqrt(g) * AK, S0)  # Σ_t γ^t E[x_t x_tᵀ]
    # ∇_a Q(x, a) at a = −Kx is 2 E_K x (reward = −cost); ∂μ/∂K_ij = −e_i x_j
    E_K = (R + g * B.T @ P @ B) @ K - g * B.T @ P @ A
    printed = (-2 * E_K @ S0).ravel()  # E_{x~D}[∇_θ μ ∇_a Q]: D fixed, Q^μ held fixed in θ
    corrected = (-2 * E_K @ Sig).ravel()  # states weighted by the discounted visitation from D
    lqr = LQR(A=A, B=B, Q=Qc, R=R, Sigma0=S0, gamma=g)
    ref = -cost_gradient(lqr, K).ravel()
    h = 1e-6  # central differences of J: truncation ~h²|J'''| ~ 1e-11, rounding ~1e-16|J|/h ~ 1e-9
    fd = np.array([(evaluate(lqr, K + h * E).J - evaluate(lqr, K - h * E).J) / (2 * h)
                   for E in np.eye(2).reshape(2, 1, 2)])
    k = int(np.argmax(np.abs(printed - ref)))
    return identity_witness(
        f"∂J/∂K_0{k}, J(θ) = E_(s~D)[Q^(μ_θ)(s, μ_θ(s))]", _DDPG,
        printed[k], corrected[k], ref[k], fd[k],
        "pgexact.lqr.cost_gradient (Fazel et al. 2018, Lemma 1); central differences of J (pgexact.lqr.evaluate)",
        1e-8,
    )


def w_ou_process() -> Witness:
    theta, sigma, dt = 0.15, 0.2, 1.0
    # printed N_(t+1) = θ(μ − N_t) + σ ξ_t: a stationary AR(1) with coefficient −θ
    printed = -theta
    # exact discretization N_(t+1) = μ + e^(−θΔt)(N_t − μ) + σ √((1 − e^(−2θΔt)) / 2θ) ξ_t
    corrected = np.exp(-theta * dt)
    # stationary Gaussian Markov process: Corr(N_(t+1), N_t) = E[N_(t+1) − μ | N_t − μ = 1]
    sol = scipy.integrate.solve_ivp(lambda t, m: -theta * m, (0.0, dt), [1.0], method="DOP853",
                                    rtol=1e-13, atol=1e-15)
    n = 10**6  # Euler steps of the mean: error ≈ θ²Δt²/(2n) ~ 1e-8
    check = (1.0 - theta * dt / n) ** n
    return identity_witness(
        "lag-1 autocorrelation Corr(N_(t+1), N_t) of the stationary exploration noise",
        f"OU noise dN = θ(μ − N)dt + σ dW with θ = {theta}, σ = {sigma}, μ = 0, time step Δt = {dt} "
        "(the DDPG values of Lillicrap et al. 2016)",
        printed, corrected, sol.y[0, -1], check,
        "ODE dm/dt = −θm of the conditional mean (DOP853, rtol 1e-13); Euler product (1 − θΔt/n)^n, n = 10⁶",
        1e-7,
    )


def _sgd_second_moments(H_list: list[int], beta: float, sigma: float, c: float, theta0: float,
                        block: int = 100_000) -> dict[int, float]:
    r"""Exact :math:`E[\theta_H^2]` of :math:`\theta_{k+1} = \theta_k + \eta_k(-\beta\theta_k + \xi_k)`, :math:`\eta_k = c/\sqrt{k+1}`.

    :math:`v_{k+1} = (1 - \eta_k\beta)^2 v_k + \eta_k^2\sigma^2`, evaluated block by block with
    suffix products (all factors lie in (0, 1]).
    """
    out, v, k0 = {}, theta0**2, 0
    for H in sorted(H_list):
        while k0 < H:
            k1 = min(H, k0 + block)
            eta = c / np.sqrt(np.arange(k0, k1) + 1.0)
            a = (1.0 - eta * beta) ** 2
            b = eta**2 * sigma**2
            suffix = np.append(np.cumprod(a[::-1])[::-1][1:], 1.0)  # Π_{i>j} a_i within the block
            v = np.prod(a) * v + b @ suffix
            k0 = k1
        out[H] = v
    return out


def w_sgd_rate() -> Witness:
    beta, sigma, c, H1, H2 = 1.0, 1.0, 0.5, 10**4, 10**6
    v = _sgd_second_moments([H1, H2], beta, sigma, c, 1.0)
    ref = np.log(v[H1] / v[H2]) / np.log(H2 / H1)

    def quasi_stationary(k: int) -> float:  # v_k ≈ η_k σ² / (β(2 − η_k β)) for slowly varying η_k
        eta = c / np.sqrt(k)
        return eta * sigma**2 / (beta * (2 - eta * beta))

    check = np.log(quasi_stationary(H1) / quasi_stationary(H2)) / np.log(H2 / H1)
    return identity_witness(
        "exponent p in E‖∇J(θ_H)‖² ∝ H^(−p) of SGD with step η_h = c/√h, between H = 10⁴ and 10⁶ "
        "(E‖∇J(θ_h)‖² decreases in h here, so it is also the minimum over h ≤ H)",
        "J(θ) = −βθ²/2 (bounded above, β-smooth), gradient estimate ∇J + ξ, ξ ~ N(0, σ²), β = σ = 1, "
        "c = 0.5, θ_0 = 1",
        1.0, 0.5, ref, check,
        "exact second-moment recursion of the iterates; its quasi-stationary solution η_h σ²/(β(2 − η_h β))",
        # finite-H corrections to v_h ∝ h^(-1/2) are relative O(1/(c β √h)) ≈ 0.02 at h = 1e4; over
        # two decades they move the slope by about 0.02 / ln(100) ≈ 4e-3 at most (1.5e-3 observed)
        4e-3,
    )


def _reinforce_variance(T: int, p: float, c: float) -> tuple[float, float]:
    """Var of g = (Σ_t ∇log π(a_t)) (Σ_t r_t): by binomial enumeration and by closed-form moments."""
    q = 1 - p
    k = np.arange(T + 1)
    pmf = scipy.stats.binom.pmf(k, T, p)
    X = k - T * p  # Σ_t (a_t − p): the score of the logit, summed
    second = 0.0
    for s in (0.0, 1.0):  # the hidden state, 0 or 1 with probability 1/2, fixed for the episode
        g = X * (c * s * T + k)  # R = Σ_t (c s + a_t)
        second += 0.5 * pmf @ g**2
    mean = T * p * q  # E[g] = ∇J = T p q
    enum = second - mean**2
    m2, m3, m4 = T * p * q, T * p * q * (q - p), T * p * q * (1 - 6 * p * q) + 3 * (T * p * q) ** 2
    closed = sum(0.5 * (m**2 * m2 + 2 * m * m3 + m4) for m in (T * p, T * (c + p))) - mean**2
    return enum, closed


def w_reinforce_variance_order() -> Witness:
    p, c, T1, T2 = 0.3, 1.0, 10_000, 20_000
    e1, c1 = _reinforce_variance(T1, p, c)
    e2, c2 = _reinforce_variance(T2, p, c)
    return identity_witness(
        "exponent k in Var(g) ∝ T^k of g = (Σ_t ∇log π(a_t|s_t)) Σ_t r_t, between T = 10⁴ and 2·10⁴",
        "hidden state s ∈ {0, 1} (probability 1/2, fixed for the episode), a_t ~ Bernoulli(0.3) "
        "(logit-parametrized, independent of s), r_t = s + a_t: Var(r_t) = σ², Cov(r_t, r_t') = ρσ² "
        "with ρ = 0.54, as the note assumes",
        2.0, 3.0, np.log2(e2 / e1), np.log2(c2 / c1),
        "binomial enumeration of Σ_t a_t; closed-form central moments of the binomial",
        # Var(g) = αT³ + βT² + O(T): the slope over a doubling is 3 − O(β/(αT)) ≈ 3 − 1e-4 here
        1e-3,
    )
