r"""Theorems of the exact core on finite MDPs about a change of policy: performance difference,
the surrogate, the expected KL and its Hessian (the Fisher matrix), and the natural gradient.

The instances, references and tolerances are those of :mod:`pgexact.theorems.finite` (random
dense MDPs with softmax policies; references from :mod:`pgexact.theorems._reference` written from
the model's data alone: complex-step derivatives of J, dense LU solves, Richardson differences,
least squares on the dense Fisher matrix built from the explicit score).
"""

from __future__ import annotations

import numpy as np

from .. import exact
from . import _reference as ref
from .finite import (
    _J,
    COMPLEX_REASON,
    CS_REFERENCE,
    IDENTITY_REASON,
    Problem,
    _direction,
    _discounted,
    _ref_values,
    cs_gradient,
    random_problem,
)
from .registry import identity, inequality

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get` and
#: :func:`pgexact.theorems.all_theorems`.
__all__: list[str] = []


# ----------------------------------------------------------------------------- performance difference
def _pdl_instance(discounted: bool):
    def instance(rng: np.random.Generator) -> tuple[Problem, np.ndarray]:
        pr = random_problem(rng, discounted=discounted, gamma_range=(0.2, 0.95), min_horizon=2)
        return pr, pr.theta + rng.standard_normal(pr.policy.n_params)

    return instance


def _pdl_computed(inst: tuple[Problem, np.ndarray]) -> float:
    pr, theta_new = inst
    return exact.performance_difference(pr.mdp, pr.policy.probs(pr.theta), pr.policy.probs(theta_new)).rhs


def _pdl_expected(inst: tuple[Problem, np.ndarray]) -> float:
    pr, theta_new = inst
    return float(_J(pr, ref.probs(pr.policy, theta_new)) - _J(pr, ref.probs(pr.policy, pr.theta)))


def _pdl_old_weights(inst: tuple[Problem, np.ndarray]) -> float:
    """The mistake: advantages averaged under the old policy's state distribution."""
    pr, theta_new = inst
    pi = ref.probs(pr.policy, pr.theta)
    w = ref.state_weights(pr.mdp, pi)
    A = ref.values(pr.mdp, pi).A
    pi_new = ref.probs(pr.policy, theta_new)
    if pr.mdp.horizon is None:
        return float(np.einsum("s,sa,sa->", w, pi_new, A))
    return float(np.einsum("ts,sa,tsa->", w, pi_new, A))


PDL_STATEMENT = r"J(\pi') - J(\pi) = \frac{1}{1-\gamma}E_{s\sim d_{\pi'}, a\sim\pi'}[A^\pi(s,a)]"
for disc, name, stmt in (
    (True, "pdl.discounted", PDL_STATEMENT),
    (False, "pdl.finite_horizon", r"J(\pi') - J(\pi) = \sum_{t<H}\gamma^t E_{s\sim p'_t, a\sim\pi'}[A^\pi_t(s,a)]"),
):
    identity(
        id=name,
        statement=stmt,
        source="Kakade & Langford 2002, Lemma 6.1; course notes 'Advanced Policy Gradients', section 'Policy Gradient is Just Policy Iteration'",
        reference="difference of the two values J(pi') - J(pi), each by a dense LU solve (finite horizon: backward recursion)",
        instance=_pdl_instance(disc),
        computed=_pdl_computed,
        expected=_pdl_expected,
        tolerance=1e-11,
        tolerance_reason=IDENTITY_REASON + "; measured residuals <= 1.3e-14 (discounted) and 1.1e-15 (finite horizon) "
        "over 200 instances (seed 1), a margin of ~800",
        mutants={"state distribution of the old policy (the surrogate) instead of the new": _pdl_old_weights},
    )


# ----------------------------------------------------------------------------- surrogate
def _surrogate_instance(rng: np.random.Generator) -> tuple[Problem, np.ndarray]:
    pr = _discounted(rng)
    return pr, pr.theta + 0.5 * rng.standard_normal(pr.policy.n_params)


def _surrogate_computed(inst: tuple[Problem, np.ndarray]) -> tuple[np.ndarray, float]:
    pr, theta_new = inst
    at_old = exact.surrogate_gradient(pr.mdp, pr.policy, pr.theta, pr.theta)
    at_new = exact.surrogate_gradient(pr.mdp, pr.policy, pr.theta, theta_new) @ _direction(pr)
    return at_old, float(at_new)


def _ref_surrogate(pr: Problem, pi_new: np.ndarray) -> np.ndarray:
    r""":math:`\sum_s\rho_{old}(s)\sum_a\pi_{new}(a|s)A^{old}(s,a)` from a dense LU solve; ``pi_new`` real or a
    complex stack (k, S, A)."""
    pi_old = ref.probs(pr.policy, pr.theta)
    rho = ref.occupancy(pr.mdp, pi_old) / (1.0 - pr.mdp.gamma)
    return np.einsum("s,...sa,sa->...", rho, pi_new, ref.values(pr.mdp, pi_old).A)


def _surrogate_expected(inst: tuple[Problem, np.ndarray]) -> tuple[np.ndarray, float]:
    """Complex-step gradients in θ' of the surrogate written out from a dense LU solve, at θ' = θ and at θ' ≠ θ."""
    pr, theta_new = inst
    v = _direction(pr)
    grad_new = ref.complex_step_gradient(lambda X: _ref_surrogate(pr, ref.probs(pr.policy, X)), theta_new)
    return cs_gradient(pr), float(grad_new @ v)


identity(
    id="surrogate.gradient_at_old",
    statement=r"\nabla_{\theta'}\bar A(\theta')\big|_{\theta'=\theta} = \nabla J(\theta), \quad \bar A(\theta') = \frac{1}{1-\gamma}E_{s\sim d_\theta}E_{a\sim\pi_\theta}\Big[\frac{\pi_{\theta'}}{\pi_\theta} A^{\pi_\theta}\Big]",
    source="Schulman et al. 2015, eq. 14 and sec. 3; Kakade & Langford 2002, sec. 4; course notes 'Advanced Policy Gradients', section 'The Distribution Mismatch Problem'",
    reference=CS_REFERENCE + " (at theta' = theta); complex-step gradient in theta' of the surrogate written out as "
    "sum_s rho_old(s) sum_a pi_theta'(a|s) A_old(s, a) with rho_old and A_old by a dense LU solve (at theta' != theta)",
    instance=_surrogate_instance,
    computed=_surrogate_computed,
    expected=_surrogate_expected,
    tolerance=1e-11,
    tolerance_reason="complex steps (h = 1e-30) on both halves: rounding only, in solves of condition <= 39 on values "
    "<= 60 (measured residuals <= 2e-14 over 200 instances, a margin of ~500)",
    mutants={
        "weights d instead of d/(1-gamma)": lambda inst: tuple(
            np.asarray(x) * (1.0 - inst[0].mdp.gamma) for x in _surrogate_computed(inst)
        )
    },
)


# ----------------------------------------------------------------------------- KL and Fisher
def _cs_kl_hessian(pr: Problem) -> np.ndarray:
    r"""Complex-step Jacobian at θ' = θ of :math:`\sum_s d(s)\sum_a (\pi_{\theta'} - \pi_\theta)\nabla z`.

    That is the gradient in θ' of :math:`E_d KL(\pi_\theta\|\pi_{\theta'})` written out for logits
    linear in θ; d is the reference occupancy.
    """
    pi = ref.probs(pr.policy, pr.theta)
    d = ref.occupancy(pr.mdp, pi)
    phi = ref.logit_features(pr.policy)

    def grad(X: np.ndarray) -> np.ndarray:
        return np.einsum("s,ksa,san->kn", d, ref.probs(pr.policy, X) - pi, phi)

    return ref.complex_step_gradient(grad, pr.theta)


def _uncentred_fisher(pr: Problem) -> np.ndarray:
    pi = ref.probs(pr.policy, pr.theta)
    d = ref.occupancy(pr.mdp, pi)
    phi = ref.logit_features(pr.policy)
    return np.einsum("s,sa,san,sam->nm", d, pi, phi, phi)


identity(
    id="kl.hessian_is_fisher",
    statement=r"\nabla^2_{\theta'} E_{s\sim d_\pi} KL(\pi_\theta(\cdot|s)\,\|\,\pi_{\theta'}(\cdot|s))\big|_{\theta'=\theta} = F(\theta)",
    source="Kakade 2002, sec. 3; Schulman et al. 2015, Appendix C; course notes 'Advanced Policy Gradients', section 'Natural Policy Gradient'",
    reference="complex-step Jacobian of the KL's gradient in theta' written out from the logits, with the occupancy by a dense LU solve",
    instance=lambda rng: _discounted(rng, max_states=4),
    computed=lambda pr: exact.fisher(pr.mdp, pr.policy, pr.theta),
    expected=_cs_kl_hessian,
    tolerance=1e-13,
    tolerance_reason=COMPLEX_REASON
    + '; measured residuals <= 6.7e-16 over 200 instances (seed 1), so 1e-13 leaves a margin of ~150 and rejects a relative mistake of 1e-11',
    mutants={
        "second moment of grad z (score not centred)": _uncentred_fisher,
        "weights d/(1-gamma) instead of d": lambda pr: exact.fisher(pr.mdp, pr.policy, pr.theta) / (1.0 - pr.mdp.gamma),
    },
)


def _kl_instance(rng: np.random.Generator) -> tuple[Problem, np.ndarray]:
    pr = _discounted(rng, max_states=4)
    return pr, pr.theta + float(rng.choice([0.3, 1.0])) * rng.standard_normal(pr.policy.n_params)


def _kl_gradient_computed(inst: tuple[Problem, np.ndarray]) -> tuple[np.ndarray, float]:
    pr, theta_new = inst
    pi = pr.policy.probs(pr.theta)
    d = ref.occupancy(pr.mdp, ref.probs(pr.policy, pr.theta))
    return exact.kl_expected_gradient(pr.policy, pr.theta, theta_new, d), exact.kl_expected(
        pi, pr.policy.probs(theta_new), d
    )


def _kl_gradient_expected(inst: tuple[Problem, np.ndarray]) -> tuple[np.ndarray, float]:
    """Complex-step gradient in θ' of the KL written out from log-probabilities (never pgexact.kl_expected), and
    its value."""
    pr, theta_new = inst
    d = ref.occupancy(pr.mdp, ref.probs(pr.policy, pr.theta))
    logp = ref.log_probs(pr.policy, pr.theta)
    grad = ref.complex_step_gradient(lambda X: ref.kl_per_state(logp, ref.log_probs(pr.policy, X)) @ d, theta_new)
    return grad, float(d @ ref.kl_per_state(logp, ref.log_probs(pr.policy, theta_new)))


def _kl_reversed(inst: tuple[Problem, np.ndarray]) -> tuple[np.ndarray, float]:
    """The mistake: KL(pi_theta' || pi_theta), value and complex-step gradient in θ'."""
    pr, theta_new = inst
    d = ref.occupancy(pr.mdp, ref.probs(pr.policy, pr.theta))
    logp = ref.log_probs(pr.policy, pr.theta)
    grad = ref.complex_step_gradient(lambda X: ref.kl_per_state(ref.log_probs(pr.policy, X), logp) @ d, theta_new)
    return grad, float(d @ ref.kl_per_state(ref.log_probs(pr.policy, theta_new), logp))


identity(
    id="kl.direction",
    statement=r"\nabla_{\theta'} E_{s\sim d}\,KL(\pi_\theta(\cdot|s)\,\|\,\pi_{\theta'}(\cdot|s)) = \sum_s d(s)\sum_a(\pi_{\theta'}-\pi_\theta)(a|s)\nabla z(s,a),\ \ KL(p\|q) = E_p[\log p - \log q]",
    source="Schulman et al. 2015, eq. 12 (KL(pi_old || pi_new)) and Appendix C",
    reference="complex-step gradient in theta' != theta of the KL written out as sum_s d(s) sum_a p (log p - log q) "
    "from the logits, d by a dense LU solve (never pgexact.kl_expected); the value likewise",
    instance=_kl_instance,
    computed=_kl_gradient_computed,
    expected=_kl_gradient_expected,
    tolerance=1e-12,
    tolerance_reason="complex step (h = 1e-30): no truncation, no cancellation; sums of S A <= 16 terms of size <= ~10 "
    "(measured residuals <= 2e-15 over 200 instances, a margin of ~500)",
    mutants={"KL(pi_theta' || pi_theta): direction swapped": _kl_reversed},
)


def _kl_cubic_instance(rng: np.random.Generator) -> tuple[Problem, np.ndarray, float]:
    """γ in [0.5, 0.95]; parameters N(0, σ²) with σ in {0.5, 1} (policies far from deterministic, where
    the quadratic term dominates the cubic one at t <= 0.03)."""
    pr = random_problem(rng, discounted=True, gamma_range=(0.5, 0.95))
    theta = float(rng.choice([0.5, 1.0])) * rng.standard_normal(pr.policy.n_params)
    pr = Problem(pr.mdp, pr.policy, theta)
    return pr, rng.standard_normal(pr.policy.n_params), float(rng.choice([0.03, 0.01]))


def _kl_cubic_lhs(inst: tuple[Problem, np.ndarray, float], fisher_scale: float = 1.0) -> float:
    pr, delta, t = inst
    pol, th = pr.policy, pr.theta
    d = exact.occupancy(pr.mdp, pol.probs(th))
    quad = float(delta @ exact.fisher(pr.mdp, pol, th) @ delta) * fisher_scale
    kl = exact.kl_expected(pol.probs(th), pol.probs(th + t * delta), d)
    return abs(kl - 0.5 * t * t * quad)


def _kl_cubic_rhs(inst: tuple[Problem, np.ndarray, float]) -> float:
    r"""Lagrange bound :math:`\frac{t^3}{36\sqrt3} E_d[\mathrm{range}_s(X)^3]` plus rounding of the quadratic term.

    f(t) = E_d KL(π_θ ‖ π_{θ+tΔ}) has f(0) = f'(0) = 0, f''(0) = ΔᵀFΔ, and its third derivative is
    E_d[κ₃ of X = Δᵀ∇z(s, ·) under π_{θ+ξΔ}(·|s)] (derivatives of the log-partition function are
    cumulants). κ₃ is the third central moment, and for any distribution on an interval of length
    R, :math:`|E(X-\mu)^3| \le R^3/(6\sqrt3)` (attained by two points at the ends with weights
    :math:`\tfrac12 \pm \tfrac1{2\sqrt3}`), so :math:`|f(t) - \tfrac{t^2}{2}f''(0)| \le \frac{t^3}{6}\cdot\frac{E_d R_s^3}{6\sqrt3}`.
    """
    pr, delta, t = inst
    pi = ref.probs(pr.policy, pr.theta)
    d = ref.occupancy(pr.mdp, pi)
    X = np.einsum("san,n->sa", ref.logit_features(pr.policy), delta)
    quad = float(np.einsum("s,sa,sa->", d, pi, (X - np.sum(pi * X, axis=1, keepdims=True)) ** 2))
    return float(d @ (X.max(axis=1) - X.min(axis=1)) ** 3) / (36 * np.sqrt(3)) * t**3 + 1e-13 * t * t * quad


inequality(
    id="kl.quadratic_error_cubic",
    statement=r"\Big|E_{d}KL(\pi_\theta\|\pi_{\theta+t\Delta}) - \tfrac{t^2}{2}\Delta^\top F\Delta\Big| \le \frac{t^3}{36\sqrt3} E_{s\sim d}\big[(\max_a X_{sa} - \min_a X_{sa})^3\big],\ X_{sa} = \Delta^\top\nabla_\theta z(s,a)",
    source="Taylor's theorem with Lagrange remainder (log-partition cumulants; third central moment of a bounded "
    "variable at most R^3/(6 sqrt 3)); Schulman et al. 2015, sec. 6 (quadratic approximation of the KL constraint)",
    reference="the bound's constant from the logits' features and the occupancy by a dense LU solve; "
    "the left side from pgexact.kl_expected and pgexact.fisher",
    instance=_kl_cubic_instance,
    lhs=_kl_cubic_lhs,
    rhs=_kl_cubic_rhs,
    tolerance=1e-9,
    tolerance_reason="inequality with an explicit constant: the right side includes 1e-13 of the quadratic term for rounding",
    mutants={"quadratic model with F/(1-gamma)": (lambda inst: _kl_cubic_lhs(inst, 1.0 / (1.0 - inst[0].mdp.gamma)), None)},
    floor=1e-300,
)


# ----------------------------------------------------------------------------- natural gradient
def _lstsq_npg(pr: Problem) -> np.ndarray:
    """Minimum-norm solution of F w = ∇J by a generic SVD least-squares solve on the dense reference Fisher."""
    pi = ref.probs(pr.policy, pr.theta)
    F = ref.fisher(pr.policy, pr.theta, ref.occupancy(pr.mdp, pi))
    return np.linalg.lstsq(F, cs_gradient(pr), rcond=1e-12)[0]


def _uncentred_closed_form(pr: Problem) -> np.ndarray:
    return (_ref_values(pr).A / (1.0 - pr.mdp.gamma)).reshape(-1)


identity(
    id="npg.tabular_closed_form",
    statement=r"F^+\nabla J = \frac{A^\pi(s,a) - \overline{A^\pi(s,\cdot)}}{1-\gamma} \text{ (tabular softmax)}",
    source="Kakade 2002, Theorem 1; Agarwal et al. 2021, Lemma 5.1",
    reference="numpy.linalg.lstsq (SVD, minimum norm) on the dense Fisher matrix built from the explicit score "
    "and the LU occupancy, right side the complex-step gradient of J",
    instance=lambda rng: _discounted(rng, linear=False),
    computed=lambda pr: exact.natural_gradient(pr.mdp, pr.policy, pr.theta),
    expected=_lstsq_npg,
    tolerance=1e-8,
    tolerance_reason="SVD least squares on a Fisher matrix whose nonzero eigenvalues d(s) pi(a|s) go down to ~1e-6 "
    "on these instances: error ~ cond * eps ~ 1e-10",
    mutants={
        "A instead of A/(1-gamma)": lambda pr: exact.natural_gradient(pr.mdp, pr.policy, pr.theta) * (1.0 - pr.mdp.gamma),
        "A/(1-gamma) not centred per state (not the minimum-norm solution)": _uncentred_closed_form,
    },
)


def _fitted(pr: Problem, w: np.ndarray) -> np.ndarray:
    return np.einsum("san,n->sa", ref.score(pr.policy, pr.theta), w)


def _compatible_ls(pr: Problem, *, normalize: bool = True) -> np.ndarray:
    """Fitted values of the weighted least-squares fit of A/(1-γ) on the explicit score (reference data)."""
    pi = ref.probs(pr.policy, pr.theta)
    d = ref.occupancy(pr.mdp, pi)
    w = d[:, None] * pi
    sw = np.sqrt(w).reshape(-1)
    psi = ref.score(pr.policy, pr.theta).reshape(-1, pr.policy.n_params)
    target = _ref_values(pr).A / ((1.0 - pr.mdp.gamma) if normalize else 1.0)
    coef = np.linalg.lstsq(psi * sw[:, None], target.reshape(-1) * sw, rcond=None)[0]
    return _fitted(pr, coef)


identity(
    id="npg.compatible_function_approximation",
    statement=r"\psi^\top F^+\nabla J = \psi^\top \arg\min_w E_{s\sim d_\pi,a\sim\pi}\Big[\big(\nabla\log\pi(a|s)^\top w - \tfrac{A^\pi(s,a)}{1-\gamma}\big)^2\Big]",
    source="Sutton et al. 2000, Theorem 2; Kakade 2002, Theorem 1",
    reference="weighted least squares (numpy.linalg.lstsq) of the LU advantages on the explicit score, "
    "compared through the fitted values psi^T w (unique even where w is not)",
    instance=lambda rng: _discounted(rng, linear=True),
    computed=lambda pr: _fitted(pr, exact.natural_gradient(pr.mdp, pr.policy, pr.theta)),
    expected=_compatible_ls,
    tolerance=1e-09,
    tolerance_reason="two SVD least-squares solves of condition number up to ~1e3 on these instances"
    + '; measured residuals <= 3.6e-12 over 200 instances (seed 1), so 1e-09 leaves a margin of ~278 and rejects a relative mistake of 1e-07',
    mutants={
        "target A instead of A/(1-gamma)": lambda pr: _compatible_ls(pr, normalize=False),
    },
)


# ----------------------------------------------------------------------------- divergences and trajectory Fisher
def _divergence_instance(rng: np.random.Generator) -> tuple[Problem, np.ndarray, int]:
    pr = random_problem(rng, discounted=True)
    return pr, pr.theta + float(rng.choice([0.3, 1.0])) * rng.standard_normal(pr.policy.n_params), int(rng.integers(2, 6))


def _divergences(inst: tuple[Problem, np.ndarray, int]) -> tuple:
    pr, theta_new, T = inst
    p, q = pr.policy.probs(pr.theta), pr.policy.probs(theta_new)
    return (exact.tv_per_state(p, q), exact.tv_max(p, q), exact.kl_max(p, q),
            exact.trajectory_fisher(pr.mdp, pr.policy, pr.theta, horizon=T))


def _divergences_expected(inst: tuple[Problem, np.ndarray, int], *, tv_half: bool = True,
                          discounted_fisher: bool = False) -> tuple:
    """TV = (1/2) sum |p - q| and KL(p || q) from log-probabilities; the trajectory Fisher as the dense Fisher
    weighted by the sum of the forward marginals p_0..p_{T-1} (the controls: TV without its 1/2, marginals
    weighted by gamma^t)."""
    pr, theta_new, T = inst
    p, q = ref.probs(pr.policy, pr.theta), ref.probs(pr.policy, theta_new)
    tv = (0.5 if tv_half else 1.0) * np.abs(p - q).sum(axis=1)
    kl = ref.kl_per_state(ref.log_probs(pr.policy, pr.theta), ref.log_probs(pr.policy, theta_new))
    w = (pr.mdp.gamma ** np.arange(T) if discounted_fisher else np.ones(T)) @ ref.marginals(pr.mdp, p, T)
    return tv, float(tv.max()), float(kl.max()), ref.fisher(pr.policy, pr.theta, w)


identity(
    id="divergences.per_state_and_trajectory_fisher",
    statement=r"D_{TV}(s) = \tfrac12\sum_a|p - q|,\ D_{TV}^{max} = \max_s D_{TV}(s),\ D_{KL}^{max} = \max_s KL(p\|q)(s),"
    r"\ F_{traj} = \sum_{t<T}E_{s\sim p_t,a\sim\pi}[\nabla\log\pi\nabla\log\pi^\top]",
    source="Schulman et al. 2015, sec. 3 (D_TV^max, D_KL^max); Kakade 2002, sec. 3 and Bagnell & Schneider 2003 "
    "(the Fisher information of the trajectory distribution)",
    reference="TV and KL written out from the reference probabilities and log-probabilities; the trajectory Fisher "
    "as the dense Fisher of the explicit score weighted by the forward marginals",
    instance=_divergence_instance,
    computed=_divergences,
    expected=_divergences_expected,
    tolerance=1e-12,
    tolerance_reason="sums of at most 4 terms per state and a dense Fisher over T <= 5 marginals of sums of products "
    "of probabilities: measured residuals <= 1e-15 over 200 instances, a margin of ~1000",
    mutants={
        "TV without its 1/2 (the L1 distance)": lambda inst: _divergences_expected(inst, tv_half=False),
        "trajectory Fisher weighted by gamma^t": lambda inst: _divergences_expected(inst, discounted_fisher=True),
    },
)
