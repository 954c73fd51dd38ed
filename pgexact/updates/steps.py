r"""Policy optimization updates: PG, NPG, TRPO and three PPO variants.

Every update is a pure function ``(source, theta, ...) -> result``: the result is a frozen
dataclass whose ``.theta`` holds the new parameters and whose other fields are diagnostics
(step size, KL moved, surrogate values, ...). The source (:class:`~pgexact.ExactSource` or
:class:`~pgexact.updates.SampledSource`) is asked once per update for an oracle at θ, so every
question of one update is answered from the same evaluation (or the same samples).

Conventions: the KL of a step is :math:`E_{s\sim d_{old}} KL(\pi_{old}(\cdot|s) \| \pi_{new}(\cdot|s))`
(old first; Schulman et al. 2015, eq. 12); F is the state-averaged Fisher matrix, whose
quadratic form is the second-order Taylor expansion of that KL:
:math:`KL(\theta, \theta + h) = \tfrac12 h^\top F h + O(|h|^3)`.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator, cg

from .._random import as_generator, as_seed_sequence
from .._validation import check_positive_int
from ._checks import check_clip, check_delta, check_lr, check_nonnegative_finite, check_ratio, check_source
from .sources import SurrogateBatch, clipped_objective, kl_and_gradient, surrogate_and_gradient

__all__ = [
    "PGStep",
    "NPGStep",
    "TRPOStep",
    "PPOStep",
    "pg_step",
    "npg_step",
    "trpo_step",
    "ppo_update",
    "ppo_kl_update",
    "ppo_dual_update",
]

_CG_HAS_RTOL = "rtol" in inspect.signature(cg).parameters


def _theta(source: Any, theta: Any) -> np.ndarray:
    return source.policy.check_theta(theta)


def _split_seed(seed: Any, n: int) -> list[Any]:
    """``n`` independent child seeds of ``seed`` (``None`` stays ``None``)."""
    if seed is None:
        return [None] * n
    return list(as_seed_sequence(seed).spawn(n))


# ----------------------------------------------------------------------------- PG
@dataclass(frozen=True, eq=False)
class PGStep:
    r"""Result of :func:`pg_step`.

    Attributes
    ----------
    theta : numpy.ndarray, shape (n_params,)
        :math:`\theta + \eta \nabla J`.
    theta_old : numpy.ndarray
    gradient : numpy.ndarray
        The gradient used (exact or estimated).
    step_size : float
        η.
    J_old : float or None
        Exact J(θ_old) when the source knows it.
    """

    theta: np.ndarray
    theta_old: np.ndarray
    gradient: np.ndarray
    step_size: float
    J_old: float | None

    def carry(self) -> dict[str, Any]:
        """Keyword arguments for the next call (none)."""
        return {}


def pg_step(source: Any, theta: Any, lr: float, *, seed: Any = None) -> PGStep:
    r"""Vanilla policy gradient ascent: :math:`\theta' = \theta + \eta \nabla J(\theta)`.

    (Williams 1992; Sutton et al. 2000.) With the exact source and ``lr = (1-γ)^3/8`` on a
    tabular softmax policy with rewards in [0, 1], :math:`J^* - J(\theta_t) = O(1/t)`
    (Mei et al. 2020, Theorem 4).

    Parameters
    ----------
    source : ExactSource or SampledSource
    theta : array_like, shape (n_params,)
    lr : float
        Learning rate η, a finite number > 0.
    seed : int, SeedSequence or Generator, optional
        Passed to the source (ignored by the exact source).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import ExactSource, TabularSoftmax, policy_gradient
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    >>> src = ExactSource(mdp, TabularSoftmax(3, 2))
    >>> res = pg_step(src, np.zeros(6), lr=0.1)
    >>> bool(np.allclose(res.theta, 0.1 * policy_gradient(mdp, src.policy, np.zeros(6))))
    True
    """
    source = check_source(source)
    theta = _theta(source, theta)
    lr = check_lr(lr)
    oracle = source.at(theta, seed=seed)
    g = oracle.gradient
    return PGStep(theta=theta + lr * g, theta_old=theta, gradient=g, step_size=lr, J_old=oracle.J)


# ----------------------------------------------------------------------------- NPG
@dataclass(frozen=True, eq=False)
class NPGStep:
    r"""Result of :func:`npg_step`.

    Attributes
    ----------
    theta : numpy.ndarray
        :math:`\theta + \alpha F^+ \nabla J`.
    theta_old : numpy.ndarray
    direction : numpy.ndarray
        The natural gradient :math:`w = F^+ \nabla J` (minimum norm).
    step_size : float
        α: :math:`\sqrt{2\delta / g^\top F^+ g}` for a KL radius, or the given learning rate η.
    g_natural_g : float
        :math:`g^\top F^+ g = g^\top w`.
    quadratic_kl : float
        :math:`\tfrac12 \alpha^2 w^\top F w`, the quadratic model of the KL moved (= δ when a
        radius is given and ``g_natural_g > 0``).
    J_old : float or None
    stationary : bool
        True when :math:`g^\top F^+ g = 0` (a stationary point: no step is taken).
    """

    theta: np.ndarray
    theta_old: np.ndarray
    direction: np.ndarray
    step_size: float
    g_natural_g: float
    quadratic_kl: float
    J_old: float | None
    stationary: bool

    def carry(self) -> dict[str, Any]:
        """Keyword arguments for the next call (none)."""
        return {}


def npg_step(
    source: Any, theta: Any, delta: float | None = None, *, lr: float | None = None, seed: Any = None
) -> NPGStep:
    r"""Natural policy gradient step with a KL radius δ (or a fixed learning rate η).

    .. math::

        \theta' = \theta + \alpha\, F^+ \nabla J, \qquad
        \alpha = \sqrt{\frac{2\delta}{\nabla J^\top F^+ \nabla J}}

    the maximizer of the linear model :math:`\nabla J^\top h` subject to the quadratic KL model
    :math:`\tfrac12 h^\top F h \le \delta` (Kakade 2002; Schulman et al. 2015, Appendix C;
    Achiam's lecture notes). For a tabular softmax policy
    :math:`F^+\nabla J = A/(1-\gamma)` up to per-state constants, so
    :math:`\pi_{new} \propto \pi_{old} \exp(\alpha A/(1-\gamma))` (Agarwal et al. 2021, Lemma 5.1).

    Parameters
    ----------
    source : ExactSource or SampledSource
    theta : array_like, shape (n_params,)
    delta : float, optional
        KL radius δ > 0. Exactly one of ``delta`` and ``lr`` must be given.
    lr : float, optional
        A fixed step η along :math:`F^+\nabla J` instead of the radius rule.
    seed : optional
        Passed to the source.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import ExactSource, TabularSoftmax, evaluate
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    >>> src = ExactSource(mdp, TabularSoftmax(3, 2))
    >>> res = npg_step(src, np.zeros(6), lr=0.5)
    >>> A = evaluate(mdp, np.full((3, 2), 0.5)).A
    >>> pi_new = np.exp(0.5 * A / 0.1); pi_new /= pi_new.sum(axis=1, keepdims=True)
    >>> bool(np.allclose(src.policy.probs(res.theta), pi_new, rtol=0, atol=1e-12))
    True
    """
    source = check_source(source)
    theta = _theta(source, theta)
    if (delta is None) == (lr is None):
        raise ValueError("give exactly one of delta (a KL radius) and lr (a fixed step size)")
    if delta is not None:
        delta = check_delta(delta)
    else:
        lr = check_lr(lr)
    oracle = source.at(theta, seed=seed)
    w = oracle.natural_gradient()
    gw = float(oracle.gradient @ w)
    wFw = float(w @ oracle.fisher_vector_product(w))
    if not (gw > 0.0) or not (wFw > 0.0):
        return NPGStep(theta, theta, w, 0.0, max(gw, 0.0), 0.0, oracle.J, True)
    alpha = math.sqrt(2.0 * delta / gw) if delta is not None else float(lr)  # type: ignore[operator]
    return NPGStep(
        theta=theta + alpha * w,
        theta_old=theta,
        direction=w,
        step_size=alpha,
        g_natural_g=gw,
        quadratic_kl=0.5 * alpha**2 * wFw,
        J_old=oracle.J,
        stationary=False,
    )


# ----------------------------------------------------------------------------- TRPO
@dataclass(frozen=True, eq=False)
class TRPOStep:
    r"""Result of :func:`trpo_step`.

    Attributes
    ----------
    theta : numpy.ndarray
        The accepted parameters, or ``theta_old`` when the line search found no acceptable step.
    theta_old : numpy.ndarray
    accepted : bool
        Whether a step was accepted. False means ``theta`` is ``theta_old``.
    message : str
        Why the step was accepted or rejected.
    direction : numpy.ndarray
        The conjugate-gradient solution x of :math:`F x = \nabla J`.
    cg_iterations : int
    cg_residual : float
        :math:`\|F x - g\| / \|g\|`.
    full_step_size : float
        :math:`\beta_0 = \sqrt{2\delta / x^\top F x}`.
    step_size : float
        The accepted :math:`\beta_0 r^k` (0 when rejected).
    n_backtracks : int
        k, the number of halvings (ratio ``backtrack_ratio``) before acceptance (or tried).
    kl : float
        Oracle KL :math:`E_{d_{old}} KL(\pi_{old}\|\pi_{new})` of the accepted step (of the last
        candidate tried when rejected).
    surrogate_improvement : float
        Oracle surrogate :math:`\bar A(\pi_{new})` of the accepted step (of the last candidate
        when rejected).
    expected_improvement : float
        :math:`\nabla J^\top (\theta_{new} - \theta)` of the accepted step (linear model).
    delta : float
    J_old : float or None
    """

    theta: np.ndarray
    theta_old: np.ndarray
    accepted: bool
    message: str
    direction: np.ndarray
    cg_iterations: int
    cg_residual: float
    full_step_size: float
    step_size: float
    n_backtracks: int
    kl: float
    surrogate_improvement: float
    expected_improvement: float
    delta: float
    J_old: float | None

    def carry(self) -> dict[str, Any]:
        """Keyword arguments for the next call (none)."""
        return {}


def conjugate_gradient(oracle: Any, g: np.ndarray, *, maxiter: int, rtol: float, damping: float) -> tuple[np.ndarray, int]:
    r"""Solve :math:`(F + \lambda I) x = g` by ``scipy.sparse.linalg.cg`` on Fisher-vector products.

    F is never formed. From :math:`x_0 = 0` the iterates stay in the Krylov space of g, which lies
    in the range of F when g does, so for singular F (softmax shift invariance) and λ = 0 the
    limit is the minimum-norm solution :math:`F^+ g`.
    """
    n = g.shape[0]

    def matvec(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(v)):  # CG broke down (p^T F p = 0): propagate, caller rejects
            return np.full(n, np.nan)
        out = oracle.fisher_vector_product(v)
        return out + damping * v if damping > 0 else out

    op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    count = [0]

    def _cb(_: np.ndarray) -> None:
        count[0] += 1

    kw = {"rtol": rtol} if _CG_HAS_RTOL else {"tol": rtol}
    with np.errstate(all="ignore"):
        x, _info = cg(op, g, maxiter=maxiter, atol=0.0, callback=_cb, **kw)
    return np.asarray(x, dtype=np.float64), count[0]


def trpo_step(
    source: Any,
    theta: Any,
    delta: float,
    *,
    cg_iters: int | None = None,
    cg_rtol: float = 1e-10,
    cg_damping: float = 0.0,
    backtrack_ratio: float = 0.5,
    max_backtracks: int = 20,
    seed: Any = None,
) -> TRPOStep:
    r"""One TRPO step: conjugate-gradient direction, then a backtracking line search on the true KL.

    Solve :math:`F x = \nabla J` by conjugate gradient on Fisher-vector products
    (``scipy.sparse.linalg.cg`` with a ``LinearOperator``; no matrix is formed or inverted),
    scale to the quadratic trust region :math:`\beta_0 = \sqrt{2\delta / x^\top F x}`, then try
    :math:`\theta + \beta_0 r^k x` for k = 0, 1, ..., ``max_backtracks`` and accept the first
    candidate with

    .. math::

        E_{s\sim d_{old}} KL(\pi_{old}(\cdot|s) \| \pi_{new}(\cdot|s)) \le \delta
        \quad\text{and}\quad \bar A(\pi_{new}) > 0

    (Schulman et al. 2015, sec. 6 and Appendix C). If none qualifies, the old parameters are
    returned with ``accepted=False`` and a message: a constraint violation is never accepted.
    With the exact source both tests are exact.

    Parameters
    ----------
    source : ExactSource or SampledSource
    theta : array_like, shape (n_params,)
    delta : float
        KL radius δ > 0.
    cg_iters : int, optional
        Maximum CG iterations; default ``n_params`` (exact-arithmetic convergence bound), at
        least 10.
    cg_rtol : float
        CG stops when :math:`\|F x - g\| \le` ``cg_rtol`` :math:`\|g\|`.
    cg_damping : float
        λ ≥ 0 added to F (0: the exact natural gradient).
    backtrack_ratio : float
        r in (0, 1).
    max_backtracks : int
    seed : optional
        Passed to the source.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import ExactSource, TabularSoftmax
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 3, gamma=0.9, seed=0)
    >>> src = ExactSource(mdp, TabularSoftmax(4, 3))
    >>> res = trpo_step(src, np.zeros(12), delta=0.01)
    >>> res.accepted, src.kl(res.theta_old, res.theta) <= 0.01
    (True, True)
    """
    source = check_source(source)
    theta = _theta(source, theta)
    delta = check_delta(delta)
    n = theta.shape[0]
    maxiter = max(n, 10) if cg_iters is None else check_positive_int("cg_iters", cg_iters)
    cg_rtol = check_lr(cg_rtol, name="cg_rtol")
    cg_damping = check_nonnegative_finite("cg_damping", cg_damping)
    ratio = check_ratio("backtrack_ratio", backtrack_ratio)
    if isinstance(max_backtracks, bool) or not isinstance(max_backtracks, (int, np.integer)) or max_backtracks < 0:
        raise ValueError(f"max_backtracks must be a non-negative integer, got {max_backtracks!r}")
    max_backtracks = int(max_backtracks)

    oracle = source.at(theta, seed=seed)
    g = oracle.gradient
    gnorm = float(np.linalg.norm(g))

    def reject(msg: str, x: np.ndarray, it: int, res: float, full: float, k: int, kl: float, imp: float) -> TRPOStep:
        return TRPOStep(theta, theta, False, msg, x, it, res, full, 0.0, k, kl, imp, 0.0, delta, oracle.J)

    if not (gnorm > 0.0):
        return reject("gradient is zero: stationary point, no step taken", np.zeros(n), 0, 0.0, 0.0, 0, 0.0, 0.0)
    x, iters = conjugate_gradient(oracle, g, maxiter=maxiter, rtol=cg_rtol, damping=cg_damping)
    if not np.all(np.isfinite(x)):
        return reject(
            "conjugate gradient broke down (p^T F p = 0: the Fisher matrix is numerically singular "
            "along the gradient, e.g. a near-deterministic policy); no step taken",
            np.zeros(n), iters, float("nan"), 0.0, 0, 0.0, 0.0,
        )
    Fx = oracle.fisher_vector_product(x)
    residual = float(np.linalg.norm(Fx + cg_damping * x - g) / gnorm)
    xFx = float(x @ Fx)
    if not (np.isfinite(xFx) and xFx > 0.0):
        return reject(f"x^T F x = {xFx:.3g} is not positive: no trust-region step", x, iters, residual, 0.0, 0, 0.0, 0.0)
    full = math.sqrt(2.0 * delta / xFx)
    kl = imp = float("nan")
    for k in range(max_backtracks + 1):
        beta = full * ratio**k
        cand = theta + beta * x
        kl = float(oracle.kl(cand))
        imp = float(oracle.surrogate(cand))
        if kl <= delta and imp > 0.0:
            return TRPOStep(
                theta=cand,
                theta_old=theta,
                accepted=True,
                message=f"accepted after {k} backtrack(s): KL {kl:.6g} <= delta {delta:.6g}, surrogate {imp:.6g} > 0",
                direction=x,
                cg_iterations=iters,
                cg_residual=residual,
                full_step_size=full,
                step_size=beta,
                n_backtracks=k,
                kl=kl,
                surrogate_improvement=imp,
                expected_improvement=float(g @ (beta * x)),
                delta=delta,
                J_old=oracle.J,
            )
    return reject(
        f"line search failed after {max_backtracks} backtrack(s): last candidate had KL {kl:.6g} "
        f"(delta {delta:.6g}) and surrogate {imp:.6g}; returning the old parameters",
        x, iters, residual, full, max_backtracks, kl, imp,
    )


# ----------------------------------------------------------------------------- PPO
@dataclass(frozen=True, eq=False)
class PPOStep:
    r"""Result of :func:`ppo_update`, :func:`ppo_kl_update` and :func:`ppo_dual_update`.

    Attributes
    ----------
    theta : numpy.ndarray
    theta_old : numpy.ndarray
    objective : numpy.ndarray, shape (epochs + 1,)
        The full-batch objective (clipped surrogate, or surrogate − penalty) before the first and
        after every epoch.
    surrogate_improvement : float
        Oracle surrogate :math:`\bar A(\pi_{new})`.
    kl : float
        Oracle :math:`E_{d_{old}} KL(\pi_{old}\|\pi_{new})` after the update.
    clip_fraction : float
        Weighted fraction of clipped rows after the update (``nan`` for the penalty variants).
    step_size : float
        The learning rate of the inner gradient ascent.
    coefficient : float
        The penalty coefficient β or multiplier λ *used* in this update (``nan`` for the clipped
        variant).
    next_coefficient : float
        β after the adaptive rule, or λ after the dual step (``nan`` for the clipped variant).
    J_old : float or None
    """

    theta: np.ndarray
    theta_old: np.ndarray
    objective: np.ndarray
    surrogate_improvement: float
    kl: float
    clip_fraction: float
    step_size: float
    coefficient: float
    next_coefficient: float
    J_old: float | None
    _carry_name: str = field(default="", repr=False)

    def carry(self) -> dict[str, Any]:
        """Keyword arguments for the next call: ``{"beta": ...}`` or ``{"lam": ...}`` (or none)."""
        return {self._carry_name: self.next_coefficient} if self._carry_name else {}


def _ascent(
    objective_and_grad: Any,
    batch: SurrogateBatch,
    theta: np.ndarray,
    *,
    lr: float,
    epochs: int,
    n_minibatches: int,
    rng: np.random.Generator | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Minibatch gradient ascent; minibatch weights are scaled by n/|mb| so that each minibatch
    gradient is an unbiased estimate of the full-batch gradient."""
    n = batch.n_rows
    history = [objective_and_grad(batch, theta)[0]]
    for _ in range(epochs):
        if n_minibatches == 1 or n == 0:
            theta = theta + lr * objective_and_grad(batch, theta)[1]
        else:
            perm = rng.permutation(n)  # type: ignore[union-attr]
            for idx in np.array_split(perm, min(n_minibatches, n)):
                mb = batch.subset(idx, scale=n / idx.shape[0])
                theta = theta + lr * objective_and_grad(mb, theta)[1]
        history.append(objective_and_grad(batch, theta)[0])
    return theta, np.asarray(history)


def _ppo_common(source: Any, theta: Any, lr: Any, epochs: Any, n_minibatches: Any, seed: Any):
    source = check_source(source)
    theta = _theta(source, theta)
    lr = check_lr(lr)
    epochs = check_positive_int("epochs", epochs)
    n_minibatches = check_positive_int("n_minibatches", n_minibatches)
    if n_minibatches > 1 and seed is None:
        raise ValueError("n_minibatches > 1 shuffles the batch: give a seed (randomness is always explicit)")
    sample_seed, shuffle_seed = _split_seed(seed, 2)
    oracle = source.at(theta, seed=sample_seed)
    rng = as_generator(shuffle_seed) if shuffle_seed is not None else None
    return source, theta, lr, epochs, n_minibatches, oracle, rng


def ppo_update(
    source: Any,
    theta: Any,
    clip: float,
    *,
    lr: float,
    epochs: int = 10,
    n_minibatches: int = 1,
    seed: Any = None,
) -> PPOStep:
    r"""PPO with the clipped surrogate, maximized by epochs of minibatch gradient ascent.

    .. math::

        L^{CLIP}(\theta') = \frac{1}{1-\gamma} \sum_s d_{old}(s) \sum_a \pi_{old}(a|s)
        \min\left(r A,\ \mathrm{clip}(r, 1-\epsilon, 1+\epsilon) A\right), \quad
        r = \frac{\pi_{\theta'}(a|s)}{\pi_{old}(a|s)}

    (Schulman et al. 2017, eq. 7; finite horizon: :math:`\sum_t \gamma^t p_t` and :math:`A_t`).
    :math:`L^{CLIP} \le \bar A` everywhere and :math:`\nabla L^{CLIP}(\theta_{old}) = \nabla J`.
    With the exact source the batch is every (s, a) pair with its exact weight, so full-batch
    ascent (``n_minibatches=1``) is deterministic.

    Parameters
    ----------
    source : ExactSource or SampledSource
    theta : array_like, shape (n_params,)
    clip : float
        ε in (0, 1).
    lr : float
        Learning rate of the inner ascent, > 0.
    epochs : int
        Passes over the batch.
    n_minibatches : int
        Minibatches per epoch (rows shuffled with ``seed``; required when > 1).
    seed : optional
        Split into a sampling seed (for the source) and a shuffling seed.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import ExactSource, TabularSoftmax
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    >>> src = ExactSource(mdp, TabularSoftmax(3, 2))
    >>> res = ppo_update(src, np.zeros(6), clip=0.2, lr=0.5, epochs=5)
    >>> bool(res.objective[-1] >= res.objective[0]), bool(res.objective[-1] <= res.surrogate_improvement + 1e-12)
    (True, True)
    """
    clip = check_clip(clip)
    source, theta, lr, epochs, n_mb, oracle, rng = _ppo_common(source, theta, lr, epochs, n_minibatches, seed)
    policy = source.policy

    def f(batch: SurrogateBatch, t: np.ndarray) -> tuple[float, np.ndarray]:
        v, g, _ = clipped_objective(policy, batch, t, clip)
        return v, g

    new, hist = _ascent(f, oracle.batch, theta, lr=lr, epochs=epochs, n_minibatches=n_mb, rng=rng)
    frac = clipped_objective(policy, oracle.batch, new, clip)[2]
    return PPOStep(
        theta=new,
        theta_old=theta,
        objective=hist,
        surrogate_improvement=float(oracle.surrogate(new)),
        kl=float(oracle.kl(new)),
        clip_fraction=frac,
        step_size=lr,
        coefficient=float("nan"),
        next_coefficient=float("nan"),
        J_old=oracle.J,
    )


def _penalized(policy: Any, pi_old: np.ndarray, coef: float, delta: float):
    def f(batch: SurrogateBatch, t: np.ndarray) -> tuple[float, np.ndarray]:
        sv, sg = surrogate_and_gradient(policy, batch, t)
        kv, kg = kl_and_gradient(policy, batch, t, pi_old)
        return sv - coef * (kv - delta), sg - coef * kg

    return f


def ppo_kl_update(
    source: Any,
    theta: Any,
    beta: float,
    kl_target: float,
    *,
    lr: float,
    epochs: int = 10,
    n_minibatches: int = 1,
    seed: Any = None,
) -> PPOStep:
    r"""PPO with an adaptive KL penalty (Schulman et al. 2017, sec. 4).

    Maximize :math:`L^{KLPEN}(\theta') = \bar A(\pi_{\theta'}) - \beta\, E_{s\sim d_{old}} KL(\pi_{old}(\cdot|s)\|\pi_{\theta'}(\cdot|s))`
    by epochs of minibatch gradient ascent, then adapt the coefficient with
    :math:`d = E_{d_{old}} KL(\pi_{old}\|\pi_{new})`: if :math:`d < d_{targ}/1.5`, β ← β/2; if
    :math:`d > 1.5\, d_{targ}`, β ← 2β. The new β is ``result.next_coefficient`` (and
    ``result.carry()``, which :func:`train` passes to the next call).

    Parameters
    ----------
    beta : float
        Penalty coefficient β > 0.
    kl_target : float
        :math:`d_{targ}` > 0.
    lr, epochs, n_minibatches, seed :
        As in :func:`ppo_update`.
    """
    beta = check_lr(beta, name="beta")
    kl_target = check_delta(kl_target, name="kl_target")
    source, theta, lr, epochs, n_mb, oracle, rng = _ppo_common(source, theta, lr, epochs, n_minibatches, seed)
    f = _penalized(source.policy, oracle.pi, beta, 0.0)
    new, hist = _ascent(f, oracle.batch, theta, lr=lr, epochs=epochs, n_minibatches=n_mb, rng=rng)
    d = float(oracle.kl(new))
    nxt = beta / 2.0 if d < kl_target / 1.5 else (beta * 2.0 if d > 1.5 * kl_target else beta)
    return PPOStep(
        theta=new,
        theta_old=theta,
        objective=hist,
        surrogate_improvement=float(oracle.surrogate(new)),
        kl=d,
        clip_fraction=float("nan"),
        step_size=lr,
        coefficient=beta,
        next_coefficient=nxt,
        J_old=oracle.J,
        _carry_name="beta",
    )


def ppo_dual_update(
    source: Any,
    theta: Any,
    delta: float,
    lam: float,
    *,
    lr: float,
    dual_lr: float,
    epochs: int = 10,
    n_minibatches: int = 1,
    seed: Any = None,
) -> PPOStep:
    r"""Dual gradient descent on the KL-constrained surrogate (the lecture notes' Lagrangian scheme).

    .. math::

        \mathcal L(\theta', \lambda) = \bar A(\pi_{\theta'}) - \lambda\left(E_{s\sim d_{old}}
        KL(\pi_{old}(\cdot|s) \| \pi_{\theta'}(\cdot|s)) - \delta\right)

    1. maximize :math:`\mathcal L(\cdot, \lambda)` in θ' incompletely (``epochs`` passes of
       minibatch gradient ascent);
    2. :math:`\lambda \leftarrow \max(0,\ \lambda + \alpha_\lambda (KL(\pi_{old}\|\pi_{new}) - \delta))`.

    The notes (CS285 lecture 9) write the KL as :math:`D_{KL}(\pi_{\theta'} \| \pi_\theta)` and
    omit the projection; here the KL is TRPO's old-first constraint and λ is projected on
    :math:`\lambda \ge 0`, as the multiplier of an inequality constraint must be. The new λ is
    ``result.next_coefficient`` (and ``result.carry()``).

    Parameters
    ----------
    delta : float
        KL radius δ > 0.
    lam : float
        Current multiplier λ ≥ 0.
    dual_lr : float
        :math:`\alpha_\lambda` > 0.
    lr, epochs, n_minibatches, seed :
        As in :func:`ppo_update`.
    """
    delta = check_delta(delta)
    lam = check_nonnegative_finite("lam", lam)
    dual_lr = check_lr(dual_lr, name="dual_lr")
    source, theta, lr, epochs, n_mb, oracle, rng = _ppo_common(source, theta, lr, epochs, n_minibatches, seed)
    f = _penalized(source.policy, oracle.pi, lam, delta)
    new, hist = _ascent(f, oracle.batch, theta, lr=lr, epochs=epochs, n_minibatches=n_mb, rng=rng)
    d = float(oracle.kl(new))
    return PPOStep(
        theta=new,
        theta_old=theta,
        objective=hist,
        surrogate_improvement=float(oracle.surrogate(new)),
        kl=d,
        clip_fraction=float("nan"),
        step_size=lr,
        coefficient=lam,
        next_coefficient=max(0.0, lam + dual_lr * (d - delta)),
        J_old=oracle.J,
        _carry_name="lam",
    )
