r"""Witnesses of the errata about finite MDPs and softmax policies.

Each witness evaluates the printed and the corrected statements with a few lines of numpy
(:mod:`._mini`) and takes the truth from pgexact's closed forms, confirmed by an independent
computation (trajectory or batch enumeration, central differences, a linear program, a
constrained optimizer).
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.optimize
import scipy.special

from .._validation import as_float_array, check_tolerance
from ..exact import evaluate, fisher, natural_gradient, policy_gradient, reinforce_by_enumeration, state_marginals
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import LinearSoftmax, TabularSoftmax
from . import _mini
from ._witness import Witness, bound_witness, identity_witness

__all__ = ["ppo_clipped_objective"]


def ppo_clipped_objective(ratio: np.ndarray | float, advantage: np.ndarray | float, eps: float) -> np.ndarray:
    r"""PPO's per-sample clipped objective :math:`\min(rA, \mathrm{clip}(r, 1-\epsilon, 1+\epsilon)A)`.

    Schulman et al. (2017), eq. 7. Vectorized over ``ratio``.

    Parameters
    ----------
    ratio : array_like
        Probability ratios :math:`r = \pi_{new}(a|s) / \pi_{old}(a|s)`, finite, >= 0.
    advantage : float or array_like
        Advantages, broadcastable with ``ratio``.
    eps : float
        Clip range, finite, >= 0.

    Examples
    --------
    >>> float(ppo_clipped_objective(1.5, 2.0, 0.2))  # clipped at 1.2 * 2
    2.4
    """
    r = as_float_array("ratio", ratio)
    if (r < 0).any():
        idx = tuple(int(i) for i in np.argwhere(r < 0)[0])
        raise ValueError(f"ratio{list(idx)} is {r[idx]}, expected a probability ratio >= 0")
    adv = as_float_array("advantage", advantage)
    eps = check_tolerance("eps", eps)
    try:
        np.broadcast_shapes(r.shape, adv.shape)
    except ValueError:
        raise ValueError(f"ratio (shape {r.shape}) and advantage (shape {adv.shape}) do not broadcast") from None
    with np.errstate(over="ignore"):
        out = np.minimum(r * adv, np.clip(r, 1.0 - eps, 1.0 + eps) * adv)
    if not np.isfinite(out).all():
        raise ValueError("ratio * advantage overflows float64: rescale the advantages")
    return out


def _kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return (p * np.log(p / q)).sum(axis=1)


# --------------------------------------------------------------------------- shared instances
def _switch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two states; action a moves to state a; start in state 0; zero reward."""
    P = np.zeros((2, 2, 2))
    P[:, 0, 0] = 1.0
    P[:, 1, 1] = 1.0
    return P, np.zeros((2, 2)), np.array([1.0, 0.0])


_SWITCH = "2-state MDP, action a moves to state a, s0 = 0; π = (0.5, 0.5), π' = (0.4, 0.6) in both states"
_PI = np.full((2, 2), 0.5)
_PI_NEW = np.tile([0.4, 0.6], (2, 1))


def _finite_instance(seed: int, gamma: float, H: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """3 states, 2 actions, arrays of ``_mini.random_arrays(3, 2, seed)``, tabular θ ~ N(0, 1) (seed + 1)."""
    P, r, mu0 = _mini.random_arrays(3, 2, seed)
    theta = np.random.default_rng(seed + 1).standard_normal(6)
    return P, r, mu0, theta


def _score_weighted(pi: np.ndarray, W: np.ndarray) -> np.ndarray:
    r"""Tabular softmax :math:`\sum_{s,a} W[s,a] \nabla_\theta \log\pi(a|s)` = :math:`W - \pi \sum_a W`, flat."""
    return (W - pi * W.sum(axis=1, keepdims=True)).reshape(-1)


def _pg_truth(P, r, mu0, gamma, H, theta) -> tuple[np.ndarray, np.ndarray]:
    mdp = FiniteMDP(P, r, mu0, gamma=gamma, horizon=H)
    pol = TabularSoftmax(*r.shape)
    return policy_gradient(mdp, pol, theta), reinforce_by_enumeration(mdp, pol, theta).reinforce


# --------------------------------------------------------------------------- witnesses
def w_drift_kl() -> Witness:
    P, r, mu0 = _switch()
    t = 1
    kl = _kl_rows(_PI_NEW, _PI).max()
    tv = 0.5 * np.abs(_PI_NEW - _PI).sum(axis=1).max()
    mdp = FiniteMDP(P, r, mu0, gamma=0.9)
    ref = np.abs(state_marginals(mdp, _PI_NEW, t + 1)[t] - state_marginals(mdp, _PI, t + 1)[t]).max()
    own = np.abs(_mini.marginals(P, mu0, _PI_NEW, t + 1)[t] - _mini.marginals(P, mu0, _PI, t + 1)[t]).max()
    return bound_witness(
        f"max_s |p_θ'(s_t) − p_θ(s_t)| at t = {t}", _SWITCH, 2 * t * kl, 2 * t * tv, ref, own,
        "pgexact.exact.state_marginals; forward recursion p_(t+1) = p_t P_π", "upper bound",
    )


def w_softmax_normalizer() -> Witness:
    S, A = 3, 2
    theta = np.random.default_rng(0).standard_normal(S * A)
    table = np.exp(theta.reshape(S, A))
    printed = (table[0] / table.sum()).sum()  # denominator summed over s and a'
    corrected = (table[0] / table[0].sum()).sum()
    ref = TabularSoftmax(S, A).probs(theta)[0].sum()
    check = scipy.special.softmax(theta.reshape(S, A), axis=1)[0].sum()
    return identity_witness(
        "Σ_a π_θ(a|s = 0) (a policy's probabilities sum to 1)",
        f"tabular softmax, S = {S}, A = {A}, θ ~ N(0, 1) from default_rng(0)",
        printed, corrected, ref, check, "pgexact TabularSoftmax.probs; scipy.special.softmax per state", 1e-14,
    )


def w_baseline_index() -> Witness:
    gamma, H = 1.0, 4
    P, r, mu0, theta = _finite_instance(5, gamma, H)
    pi = _mini.softmax_rows(theta.reshape(3, 2))
    p = _mini.marginals(P, mu0, pi, H)
    Q = _mini.finite_horizon_q(P, r, pi, gamma, H)
    # the baseline term has expectation zero; Σ_{h'=h}^{H-1} r_h = (H - h) r_h as printed
    printed = sum(_score_weighted(pi, (H - h) * p[h][:, None] * pi * r) for h in range(H))
    corrected = sum(_score_weighted(pi, p[h][:, None] * pi * Q[h]) for h in range(H))
    ref, check = _pg_truth(P, r, mu0, gamma, H, theta)
    k = int(np.argmax(np.abs(printed - ref)))
    return identity_witness(
        f"coordinate {k} of E[Σ_h ∇log π(a_h|s_h)((Σ_(h'≥h) r) − b_h(s_h))] = ∇J",
        f"S = 3, A = 2, arrays of default_rng(5) (P, μ0 ~ Dirichlet(1), r ~ N(0, 1)), γ = 1, H = {H}, "
        "tabular softmax θ ~ N(0, 1) from default_rng(6)",
        printed[k], corrected[k], ref[k], check[k],
        "pgexact.exact.policy_gradient; REINFORCE by enumeration of all trajectories", 1e-12,
    )


def w_reward_to_go_discount() -> Witness:
    gamma, H = 0.8, 4
    P, r, mu0, theta = _finite_instance(3, gamma, H)
    pi = _mini.softmax_rows(theta.reshape(3, 2))
    p = _mini.marginals(P, mu0, pi, H)
    Q = _mini.finite_horizon_q(P, r, pi, gamma, H)  # E[R̂_t | s_t, a_t] = Q_t
    terms = [_score_weighted(pi, p[t][:, None] * pi * Q[t]) for t in range(H)]
    printed = sum(terms)
    corrected = sum(gamma**t * x for t, x in enumerate(terms))
    ref, check = _pg_truth(P, r, mu0, gamma, H, theta)
    k = int(np.argmax(np.abs(printed - ref)))
    return identity_witness(
        f"coordinate {k} of E[Σ_t ∇log π(a_t|s_t) Ψ_t], Ψ_t = R̂_t = Σ_(t'≥t) γ^(t'−t) r_t' (the advantage "
        "form has the same expectation), against ∇J",
        f"S = 3, A = 2, arrays of default_rng(3), γ = {gamma}, H = {H}, tabular softmax θ ~ N(0, 1) "
        "from default_rng(4)",
        printed[k], corrected[k], ref[k], check[k],
        "pgexact.exact.policy_gradient; REINFORCE by enumeration of all trajectories", 1e-12,
    )


def _linear_instance() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, LinearSoftmax, np.ndarray]:
    P, r, mu0 = _mini.random_arrays(3, 3, 7)
    features = np.random.default_rng(8).standard_normal((3, 3, 2))
    return P, r, mu0, features, LinearSoftmax(features), np.array([0.3, -0.2])


_LINEAR = ("S = A = 3, arrays of default_rng(7), γ = 0.9, linear softmax with N(0, 1) features "
           "(default_rng(8), 2 parameters), θ = (0.3, −0.2)")


def _npg_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    P, r, mu0, _, pol, theta = _linear_instance()
    mdp = FiniteMDP(P, r, mu0, gamma=0.9)
    return policy_gradient(mdp, pol, theta), fisher(mdp, pol, theta), natural_gradient(mdp, pol, theta)


def trust_region_coefficients(g: np.ndarray, F: np.ndarray, w: np.ndarray, delta: float) -> tuple[float, float]:
    """Coefficient η of the maximizer of gᵀx s.t. ½xᵀFx ≤ δ along w = F⁻¹g, two ways (2 parameters).

    SLSQP on the constrained problem; and a bounded scalar search over the boundary ellipse
    x(φ) = √(2δ) L⁻ᵀ(cos φ, sin φ), F = LLᵀ (the linear objective is largest on the boundary).
    """
    cons = {"type": "ineq", "fun": lambda x: delta - 0.5 * x @ F @ x, "jac": lambda x: -(F @ x)}
    slsqp = scipy.optimize.minimize(lambda x: -(g @ x), np.zeros_like(g), jac=lambda x: -g, constraints=[cons],
                                    method="SLSQP", options={"ftol": 1e-15, "maxiter": 500}).x
    Lt_inv = np.linalg.inv(np.linalg.cholesky(F).T)

    def boundary(phi: float) -> np.ndarray:
        return np.sqrt(2 * delta) * Lt_inv @ np.array([np.cos(phi), np.sin(phi)])

    grid = np.linspace(0, 2 * np.pi, 721)
    phi0 = grid[np.argmax([g @ boundary(p) for p in grid])]
    res = scipy.optimize.minimize_scalar(lambda p: -(g @ boundary(p)), bounds=(phi0 - 0.01, phi0 + 0.01),
                                         method="bounded", options={"xatol": 1e-12})
    x = boundary(res.x)
    return float(slsqp @ w / (w @ w)), float(x @ w / (w @ w))


def _npg_step(delta: float, printed_numerator: float) -> Witness:
    g, F, w = _npg_inputs()
    printed = np.sqrt(printed_numerator * delta / (g @ F @ g))
    corrected = np.sqrt(2 * delta / (g @ w))
    ref, check = trust_region_coefficients(g, F, w, delta)
    return identity_witness(
        "step size η of θ' = θ + η F⁻¹∇J that solves max ∇Jᵀdθ s.t. ½ dθᵀF dθ ≤ δ",
        _LINEAR + f", δ = {delta}", printed, corrected, ref, check,
        "SLSQP on the constrained problem; scalar search over the boundary of the ellipsoid", 1e-8,
    )


def w_npg_step_chapter() -> Witness:
    return _npg_step(0.01, 1.0)


def w_npg_step_lecture() -> Witness:
    return _npg_step(0.01, 2.0)


def w_npg_lagrange() -> Witness:
    eps = 0.01
    g, F, w = _npg_inputs()
    gFg = g @ w
    lam = np.sqrt(gFg / (2 * eps))  # the notes' final multiplier
    step = w / lam
    # own Fisher: E_{s~d, a~π}[ψψᵀ] with ψ = φ(s, a) − Σ_a' π(a'|s) φ(s, a') and d = (1−γ)μ0ᵀ(I − γP_π)⁻¹
    P, r, mu0, phi, _, theta = _linear_instance()
    pi = _mini.softmax_rows(phi @ theta)
    P_pi = np.einsum("sa,sat->st", pi, P)
    d = 0.1 * np.linalg.solve((np.eye(3) - 0.9 * P_pi).T, mu0)
    psi = phi - np.einsum("sa,sak->sk", pi, phi)[:, None, :]
    F_own = np.einsum("s,sa,sak,sal->kl", d, pi, psi, psi)
    return identity_witness(
        "½ dθᵀF dθ at dθ = F⁻¹∇J / λ (the left side of the constraint after substitution)",
        _LINEAR + f", ε = {eps}, λ = √(∇JᵀF⁻¹∇J / 2ε)", 0.5 * gFg / lam, 0.5 * gFg / lam**2,
        0.5 * step @ F @ step, 0.5 * step @ F_own @ step,
        "pgexact.exact.fisher; Fisher rebuilt from the features and the discounted occupancy", 1e-12,
    )


def w_coupling() -> Witness:
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.3, 0.3, 0.4])
    eps = 0.5 * np.abs(p - q).sum()
    common = np.minimum(p, q)
    coupling = np.diag(common) + np.outer(p - common, q - common) / eps  # maximal coupling
    n = p.size
    A_eq = np.vstack([np.kron(np.eye(n), np.ones(n)), np.kron(np.ones(n), np.eye(n))])
    lp = scipy.optimize.linprog(-np.eye(n).reshape(-1), A_eq=A_eq, b_eq=np.concatenate([p, q]),
                                bounds=(0, None), method="highs")
    return identity_witness(
        "largest Pr(X = Y) over couplings of p_X and p_Y",
        "p_X = (0.5, 0.3, 0.2), p_Y = (0.3, 0.3, 0.4), D_TV = 0.2",
        eps, 1.0 - eps, np.trace(coupling), -lp.fun,
        "maximal coupling diag(min(p, q)) + residual product; linear program over all couplings (HiGHS)", 1e-12,
    )


def w_max_f() -> Witness:
    P, r, mu0 = _switch()
    t, f = 1, np.array([-1.0, -3.0])
    p = _mini.marginals(P, mu0, _PI, t + 1)[t]
    eps = 0.5 * np.abs(_PI_NEW - _PI).sum(axis=1).max()
    mdp = FiniteMDP(P, r, mu0, gamma=0.9)
    ref = state_marginals(mdp, _PI_NEW, t + 1)[t] @ f
    check = _mini.marginals(P, mu0, _PI_NEW, t + 1)[t] @ f
    return bound_witness(
        f"E_(p_θ'(s_t))[f(s_t)] at t = {t}, f = (−1, −3)", _SWITCH + ", ε = max_s D_TV = 0.1",
        p @ f - 2 * eps * t * f.max(), p @ f - 2 * eps * t * np.abs(f).max(), ref, check,
        "pgexact.exact.state_marginals; forward recursion", "lower bound",
    )


def w_batch_mean_baseline() -> Witness:
    means, N = np.array([1.0, 0.0]), 2
    logits = np.array([0.2, -0.3])
    pi = np.exp(logits) / np.exp(logits).sum()
    score = np.eye(2) - pi  # row a: ∇ log π(a)
    g = score.T @ (pi * means)  # own ∇J of the bandit
    k = int(np.argmax(np.abs(g)))
    expected = np.zeros(2)
    for actions in itertools.product(range(2), repeat=N):  # exact expectation over the batch
        a = np.array(actions)
        G = means[a]
        expected += np.prod(pi[a]) * (score[a] * (G - G.mean())[:, None]).mean(axis=0)
    # the same expectation from the joint law of the two draws as a (2, 2) table
    joint = np.outer(pi, pi)
    G0, G1 = np.meshgrid(means, means, indexing="ij")
    b = 0.5 * (G0 + G1)
    est = 0.5 * (score[:, None, :] * (G0 - b)[..., None] + score[None, :, :] * (G1 - b)[..., None])
    check = np.einsum("ij,ijk->k", joint, est)
    return identity_witness(
        f"coordinate {k} of E[(1/N) Σ_i ∇log π(a_i)(G_i − b)], b = (1/N) Σ_j G_j, against ∇J",
        "bandit with means (1, 0), softmax logits (0.2, −0.3), batch size N = 2",
        g[k], (1 - 1 / N) * g[k], expected[k], check[k],
        "enumeration of all batches; the joint law of the batch as a table", 1e-14,
    )


def w_hessian_log_pi() -> Witness:
    phi = np.random.default_rng(13).standard_normal((1, 3, 2))
    pol = LinearSoftmax(phi)
    theta0 = np.array([0.4, -0.7])
    pi0 = pol.probs(theta0)[0]
    psi = phi[0] - pi0 @ phi[0]
    F00 = pi0 @ psi[:, 0] ** 2  # own Fisher entry
    h = 1e-4
    e = np.array([h, 0.0])

    def avg_log(t: np.ndarray) -> float:
        return float(pi0 @ pol.log_probs(t)[0])

    def avg_score(t: np.ndarray) -> float:
        return float(pi0 @ pol.score(t)[0][:, 0])

    # second difference: truncation ~h²·f'''' ~ 1e-8, rounding ~1e-16/h² ~ 1e-8
    second = (avg_log(theta0 + e) - 2 * avg_log(theta0) + avg_log(theta0 - e)) / h**2
    first = (avg_score(theta0 + e) - avg_score(theta0 - e)) / (2 * h)
    return identity_witness(
        "[E_(a~π_θ)[∇²_θ log π_θ(a|s)]]_00",
        "one state, 3 actions, linear softmax with N(0, 1) features (default_rng(13)), θ = (0.4, −0.7)",
        0.0, -F00, first, second,
        "central difference of E_π0[score] (pgexact LinearSoftmax, error ~h² ~ 1e-8); second central "
        "difference of E_π0[log π_θ] (error ~1e-8 + rounding 1e-16/h² ~ 1e-8)",
        1e-6,
    )


def w_ppo_clip() -> Witness:
    A, eps, r, h = 1.0, 0.2, 0.5, 1e-6

    def piecewise(x: float) -> float:  # the equivalent form A·min(r, 1+ε) for A ≥ 0 (Achiam 2018)
        return A * min(x, 1 + eps) if A >= 0 else A * max(x, 1 - eps)

    fd = float((ppo_clipped_objective(r + h, A, eps) - ppo_clipped_objective(r - h, A, eps)) / (2 * h))
    check = (piecewise(r + h) - piecewise(r - h)) / (2 * h)
    return identity_witness(
        "∂/∂r of min(rA, clip(r, 1−ε, 1+ε)A) at r = 0.5, below 1 − ε",
        "A = 1, ε = 0.2, r = 0.5", 0.0, A, fd, check,
        "central differences of the clipped objective and of its piecewise form (linear here: exact)", 1e-9,
    )


def w_objective_stationary() -> Witness:
    gamma = 0.8
    P, r, mu0 = _mini.random_arrays(4, 2, 51)
    theta = np.random.default_rng(52).standard_normal(8)
    pi = _mini.softmax_rows(theta.reshape(4, 2))
    V, _ = _mini.values(P, r, pi, gamma)
    nu = _mini.stationary(P, pi)
    mdp = FiniteMDP(P, r, mu0, gamma=gamma)
    ref = evaluate(mdp, pi).J
    T = 400  # γ^400 · max|r| / (1 − γ) < 1e-17: truncation below rounding
    check = float((gamma ** np.arange(T)) @ (state_marginals(mdp, pi, T) @ (pi * r).sum(axis=1)))
    return identity_witness(
        "J(θ) = E[Σ_t γ^t r_t]",
        "S = 4, A = 2, arrays of default_rng(51), γ = 0.8, tabular softmax θ ~ N(0, 1) from default_rng(52)",
        nu @ V, mu0 @ V, ref, check,
        "pgexact.exact.evaluate; truncated sum Σ_t γ^t E[r_t] over the state marginals", 1e-12,
    )


def w_pg_stationary_weighting() -> Witness:
    gamma = 0.7
    P, r, mu0 = _mini.random_arrays(4, 2, 41)
    theta = np.random.default_rng(42).standard_normal(8)
    pi = _mini.softmax_rows(theta.reshape(4, 2))
    _, Q = _mini.values(P, r, pi, gamma)
    P_pi = np.einsum("sa,sat->st", pi, P)
    nu = _mini.stationary(P, pi)
    d = (1 - gamma) * np.linalg.solve((np.eye(4) - gamma * P_pi).T, mu0)
    printed = _score_weighted(pi, nu[:, None] * pi * Q)
    corrected = _score_weighted(pi, d[:, None] * pi * Q)
    mdp, pol = FiniteMDP(P, r, mu0, gamma=gamma), TabularSoftmax(4, 2)
    ref = policy_gradient(mdp, pol, theta)
    h = 1e-5  # central differences: truncation ~h²|J'''| ~ 1e-10, rounding ~1e-16|J|/h ~ 1e-10
    fd = np.array([(evaluate(mdp, pol.probs(theta + h * e)).J - evaluate(mdp, pol.probs(theta - h * e)).J) / (2 * h)
                   for e in np.eye(8)])

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.linalg.norm(v)

    k = int(np.argmax(np.abs(unit(printed) - unit(ref))))
    return identity_witness(
        f"component {k} of the direction ∇J / ‖∇J‖ (the theorem is stated up to a constant factor)",
        "S = 4, A = 2, arrays of default_rng(41), γ = 0.7, tabular softmax θ ~ N(0, 1) from default_rng(42)",
        unit(printed)[k], unit(corrected)[k], unit(ref)[k], unit(fd)[k],
        "pgexact.exact.policy_gradient; central differences of J (pgexact.exact.evaluate)", 1e-8,
    )
