r"""Figure of what library conventions weight: per-state weights of the exact expected update vs d_π."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..conformance import PRESETS, Convention, expected_update
from ..conformance.audit import default_logits, default_mdp
from ..exact import evaluate, policy_gradient
from ..policies.softmax import TabularSoftmax, softmax_rows
from ._core import C_BAD, C_NPG, C_OPT, C_PG, C_PPO, C_TRPO

__all__ = ["specs", "preset_updates"]

#: The default audit instance (:func:`pgexact.conformance.audit`'s defaults).
TIME_LIMIT, N_ENVS, N_STEPS = 10, 16, 32
#: Presets drawn, in this order (libraries sharing a convention on this instance are grouped).
PRESET_NAMES = ("sb3-ppo", "sb3-a2c", "cleanrl-ppo", "torchrl-ppo", "tianshou-ppo", "skrl-ppo", "rlax")


def preset_updates():
    r"""The default audit instance's exact expected updates, one per preset, and what ∇J uses.

    Each preset keeps its λ, entropy coefficient, truncation and autoreset, with the instance's
    γ, time limit and sizes; the critic is the exact :math:`V^\pi`; the update is the long-run
    average over batches (``batch=None``), before any advantage normalization.

    Returns
    -------
    d : numpy.ndarray, shape (S,)
        Normalized discounted occupancy :math:`d_\pi`.
    grad : numpy.ndarray, shape (S, A)
        :math:`\nabla J` in the logits.
    rows : list of (name, state_weights (S,), update (S, A), cosine to ∇J)
        ``"exact"`` (:meth:`Convention.exact`) first, then :data:`PRESET_NAMES`.

    Examples
    --------
    >>> d, grad, rows = preset_updates()
    >>> rows[0][0], round(float(d.sum()), 12), bool(rows[0][3] > rows[1][3])
    ('exact', 1.0, True)
    """
    mdp = default_mdp()
    S, A = mdp.n_states, mdp.n_actions
    logits = default_logits(S, A)
    pi = softmax_rows(logits)
    ev = evaluate(mdp, pi)
    grad = policy_gradient(mdp, TabularSoftmax(S, A), logits.ravel()).reshape(S, A)
    g = mdp.gamma
    conventions = [Convention.exact(gamma=g, time_limit=TIME_LIMIT, n_envs=N_ENVS, n_steps=N_STEPS)]
    conventions += [PRESETS[n].replace(gamma=g, time_limit=TIME_LIMIT, n_envs=N_ENVS, n_steps=N_STEPS)
                    for n in PRESET_NAMES]
    rows = []
    for c in conventions:
        e = expected_update(mdp, pi, c, values=ev.V)
        cos = float(np.sum(e.update * grad) / (np.linalg.norm(e.update) * np.linalg.norm(grad)))
        rows.append((c.name, np.asarray(e.state_weights), np.asarray(e.update), cos))
    return np.asarray(ev.d), grad, rows


def make_conformance_weights(fig: Figure) -> None:
    d, grad, rows = preset_updates()
    S = d.size
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1.0]})
    colors = [C_OPT, C_PG, "#56B4E9", C_BAD, C_NPG, C_PPO, C_TRPO, "#999999"]
    x = np.arange(S)
    width = 0.8 / (len(rows) + 1)
    ax1.bar(x - 0.4 + width / 2, d, width, color="0.75", edgecolor="k", lw=0.5,
            label=r"$d_\pi(s)$ (used by $\nabla J$)")
    for i, ((name, c, _, _), color) in enumerate(zip(rows, colors)):
        ax1.bar(x - 0.4 + width * (i + 1.5), c / c.sum(), width, color=color, label=name)
    ax1.set_xlabel("state s (3×3 gridworld, row-major; goal = 8)")
    ax1.set_ylabel("weight of state s (normalized to sum 1)")
    ax1.set_title("per-state weights of the exact expected update")
    ax1.legend(fontsize=7, ncol=2, loc="upper right")

    names = [r[0] for r in rows]
    cos = np.array([r[3] for r in rows])
    y = np.arange(len(rows))
    ax2.barh(y, 1.0 - cos, color=colors[: len(rows)])
    for yi, ci in zip(y, cos):
        ax2.text(1.0 - ci, yi, f"  {ci:.4f}", va="center", fontsize=8)
    ax2.set_yticks(y, names)
    ax2.invert_yaxis()
    ax2.set_xscale("log")
    ax2.set_xlim(1e-3, 1.0)
    ax2.set_xlabel(r"$1 - \cos(\mathbb{E}[\mathrm{update}], \nabla J)$")
    ax2.set_title("angle of each convention's update to ∇J")
    fig.suptitle(f"What library conventions estimate: 3×3 gridworld, slip 0.2, γ = 0.8, time limit "
                 f"{TIME_LIMIT}, {N_ENVS} envs × {N_STEPS} steps, exact critic")


def specs(FigureSpec):  # noqa: N803 - the class is passed in to avoid a circular import
    """The figure specs of this module (called by ``pgexact.figures``)."""
    return [
        FigureSpec(
            "conformance_weights", "What library conventions weight",
            "Left: the weight each state receives in the exact expected update of one batch "
            "(ExpectedUpdate.state_weights of pgexact.conformance.expected_update, normalized to sum 1; "
            "long-run average over batches, exact critic, before advantage normalization) under each library preset's convention — row weighting, time-limit "
            "truncation, autoreset, GAE λ, entropy bonus — on the default audit instance, against the "
            "normalized discounted occupancy d_π that the policy gradient uses; 'exact' weights rows by γ^k and "
            "bootstraps time limits. Right: 1 − cosine of each expected update to ∇J (logits of a tabular "
            "softmax at the audit's default logits). Sources: the policy gradient theorem, Sutton et al. (2000), "
            "Thm 1, and course notes 'Policy gradient methods', section 'The policy gradient theorem'; GAE, "
            "Schulman et al. (2016), eq. 16; Thomas (2014), 'Bias in natural actor-critic algorithms' (the "
            "missing γ^t); Pardo et al. (2018), 'Time limits in reinforcement learning'.",
            make_conformance_weights, (13.0, 5.0),
        ),
    ]
