r"""Proximal policy optimization (PPO): clipped surrogate, adaptive KL penalty, dual descent.

Each variant maximizes its objective on one batch (the exact batch of every (s, a) pair with its
closed-form weight, or a sampled one) by epochs of minibatch gradient ascent.

Conventions: the KL of a step is :math:`E_{s\sim d_{old}} KL(\pi_{old}(\cdot|s) \| \pi_{new}(\cdot|s))`
(old first; Schulman et al. 2015, eq. 12); F is the state-averaged Fisher matrix, whose
quadratic form is the second-order Taylor expansion of that KL:
:math:`KL(\theta, \theta + h) = \tfrac12 h^\top F h + O(|h|^3)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._random import as_generator
from .._validation import check_positive_int, check_time_steps
from ._checks import check_clip, check_delta, check_lr, check_nonnegative_finite, check_source
from ._common import _split_seed, _theta
from .sources import SurrogateBatch, _clipped_objective, _kl_and_gradient, _surrogate_and_gradient

__all__ = ["PPOStep", "ppo_update", "ppo_kl_update", "ppo_dual_update"]


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
    clip_fraction : float or None
        Weighted fraction of clipped rows after the update (``None`` for the penalty variants).
    step_size : float
        The learning rate of the inner gradient ascent.
    coefficient : float or None
        The penalty coefficient β or multiplier λ *used* in this update (``None`` for the clipped
        variant).
    next_coefficient : float or None
        β after the adaptive rule, or λ after the dual step (``None`` for the clipped variant).
    J_old : float or None
    """

    theta: np.ndarray
    theta_old: np.ndarray
    objective: np.ndarray
    surrogate_improvement: float
    kl: float
    clip_fraction: float | None
    step_size: float
    coefficient: float | None
    next_coefficient: float | None
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
    value, grad = objective_and_grad(batch, theta)
    history = [value]
    if n_minibatches == 1 or n == 0:  # full batch: one evaluation per epoch serves both
        for _ in range(epochs):
            theta = theta + lr * grad
            value, grad = objective_and_grad(batch, theta)
            history.append(value)
        return theta, np.asarray(history)
    for _ in range(epochs):
        perm = rng.permutation(n)  # type: ignore[union-attr]
        for idx in np.array_split(perm, min(n_minibatches, n)):
            mb = batch._subset(idx, n / idx.shape[0])
            theta = theta + lr * objective_and_grad(mb, theta)[1]
        history.append(objective_and_grad(batch, theta)[0])
    return theta, np.asarray(history)


def _ppo_common(source: Any, theta: Any, lr: Any, epochs: Any, n_minibatches: Any, seed: Any):
    source = check_source(source)
    theta = _theta(source, theta)
    lr = check_lr(lr)
    epochs = check_positive_int("epochs", epochs)
    n_minibatches = check_positive_int("n_minibatches", n_minibatches)
    # every minibatch step is a Python-level gradient evaluation: bound the loop, never hang
    check_time_steps(f"the ascent with epochs={epochs} and n_minibatches={n_minibatches}",
                     epochs * n_minibatches, "lower epochs or n_minibatches")
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
        v, g, _ = _clipped_objective(policy, batch, t, clip)
        return v, g

    new, hist = _ascent(f, oracle.batch, theta, lr=lr, epochs=epochs, n_minibatches=n_mb, rng=rng)
    frac = _clipped_objective(policy, oracle.batch, new, clip)[2]
    return PPOStep(
        theta=new,
        theta_old=theta,
        objective=hist,
        surrogate_improvement=float(oracle.surrogate(new)),
        kl=float(oracle.kl(new)),
        clip_fraction=frac,
        step_size=lr,
        coefficient=None,
        next_coefficient=None,
        J_old=oracle.J,
    )


def _penalized(policy: Any, pi_old: np.ndarray, coef: float, delta: float):
    def f(batch: SurrogateBatch, t: np.ndarray) -> tuple[float, np.ndarray]:
        sv, sg = _surrogate_and_gradient(policy, batch, t)
        kv, kg = _kl_and_gradient(policy, batch, t, pi_old)
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
        clip_fraction=None,
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
        clip_fraction=None,
        step_size=lr,
        coefficient=lam,
        next_coefficient=max(0.0, lam + dual_lr * (d - delta)),
        J_old=oracle.J,
        _carry_name="lam",
    )
