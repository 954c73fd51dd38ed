r"""Figure of the exact Hessian's spectrum along an exact softmax policy-gradient path."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..exact import hessian, value_and_gradient
from ..mdps import bandit, chain
from ..policies.softmax import TabularSoftmax
from ._core import C_BAD, C_NPG, C_PG, optimal_value

__all__ = ["specs", "spectrum_path"]

#: Iterations at which the Hessian is formed (log-spaced; the gradient is recorded at every one).
N_HESSIANS = 120


def _problems():
    return [
        ("3-armed bandit, means (1, 0.9, 0), θ0 = (0, 5, 0)", bandit([1.0, 0.9, 0.0]), TabularSoftmax(1, 3),
         np.array([0.0, 5.0, 0.0]), 2.0, 5000),
        ("5-state chain (γ = 0.9), θ0 favours 'left'", chain(5, gamma=0.9, small_reward=0.2),
         TabularSoftmax(5, 2), np.tile([3.0, 0.0], 5), 2.0, 3000),
    ]


def spectrum_path(mdp, policy, theta0: np.ndarray, lr: float, n: int) -> dict[str, np.ndarray]:
    r"""Exact PG ascent :math:`\theta_{k+1} = \theta_k + \eta\nabla J(\theta_k)` with the Hessian's extreme eigenvalues.

    Returns arrays ``k`` (iterations with a Hessian), ``lam_min``, ``lam_max`` (of
    :math:`\tfrac12(H + H^\top)`, :func:`pgexact.hessian`), and, for every iteration, ``J`` and
    ``grad_norm``.
    """
    at = set(np.unique(np.geomspace(1, n, N_HESSIANS).astype(int)) - 1)
    theta = np.array(theta0, dtype=float)
    J, gn, ks, lo, hi = np.empty(n), np.empty(n), [], [], []
    for k in range(n):
        J[k], g = value_and_gradient(mdp, policy, theta)
        gn[k] = np.linalg.norm(g)
        if k in at:
            H = hessian(mdp, policy, theta)
            ev = np.linalg.eigvalsh(0.5 * (H + H.T))
            ks.append(k)
            lo.append(ev[0])
            hi.append(ev[-1])
        theta = theta + lr * g
    return {"k": np.array(ks), "lam_min": np.array(lo), "lam_max": np.array(hi), "J": J, "grad_norm": gn}


def make_hessian_spectrum(fig: Figure) -> None:
    axes = fig.subplots(1, 2)
    for ax, (title, mdp, pol, theta0, lr, n) in zip(axes, _problems()):
        path = spectrum_path(mdp, pol, theta0, lr, n)
        j_star, _ = optimal_value(mdp)
        k = path["k"] + 1
        scale = float(np.max(np.abs(np.concatenate([path["lam_min"], path["lam_max"]]))))
        # curvature below 1e-12 of the largest seen is rounding (the shift directions have H v = 0)
        positive = path["lam_max"] > 1e-12 * scale
        ax.loglog(np.arange(1, n + 1), path["grad_norm"], color=C_PG, lw=2, label=r"$\|\nabla J(\theta_k)\|$")
        ax.loglog(k, np.where(path["lam_min"] < 0, -path["lam_min"], np.nan), color=C_NPG, lw=2,
                  label=r"$-\lambda_{\min}(\nabla^2 J)$ (downward curvature)")
        ax.loglog(k, np.where(positive, path["lam_max"], np.nan), color=C_BAD, lw=2, ls="--",
                  label=r"$\lambda_{\max}(\nabla^2 J) > 0$ (upward curvature: saddle)")
        ax.loglog(np.arange(1, n + 1), np.maximum(j_star - path["J"], 1e-16), color="0.4", lw=1,
                  label=r"$J^\star - J(\theta_k)$")
        top = max(float(np.max(path["grad_norm"])), float(np.max(j_star - path["J"])), scale)
        ax.set_ylim(1e-10, 3.0 * top)
        ax.set_xlabel("iteration k (exact softmax PG, step %g)" % lr)
        ax.set_title(title, fontsize=9.5)
        ax.legend(fontsize=7.5, loc="lower left")
    fig.suptitle("Hessian spectrum along exact softmax policy-gradient ascent: plateaus are flat saddle regions")


def specs(FigureSpec):  # noqa: N803 - the class is passed in to avoid a circular import
    """The figure specs of this module (called by ``pgexact.figures``)."""
    return [
        FigureSpec(
            "hessian_spectrum", "Hessian spectrum along a softmax PG path",
            "Extreme eigenvalues of the exact Hessian ∇²J (pgexact.hessian, 120 log-spaced iterations) and the "
            "gradient norm along exact softmax policy-gradient ascent from the starts of the softmax_plateau "
            "figure. On the plateaus the gradient is small, the curvature is small in both directions and of both "
            "signs (λ_max > 0: a saddle-like region); leaving the bandit's plateau, the upward curvature vanishes "
            "and the path enters the concave region near the optimum. The per-state logit shifts give a zero "
            "eigenvalue throughout. Sources: Furmston, Lever & Barber (2016), JMLR 17(226) (policy Hessian); Mei et al. "
            "(2020), sec. 4 (plateaus of softmax PG).",
            make_hessian_spectrum, (11.0, 4.8),
        ),
    ]
