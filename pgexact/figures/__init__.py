r"""Textbook figures, regenerated deterministically from the exact closed forms.

Every figure is a :class:`FigureSpec`: a name, a title, a caption that names the source of the
formulas it plots, a size, and ``make(fig)`` which draws onto a :class:`matplotlib.figure.Figure`
(Agg canvas, no pyplot state). :func:`render` writes the chosen figures (default: all) as
PNG, SVG or PDF; the output is byte-identical run to run (fixed seeds, fixed SVG hash salt, no
dates in the metadata) and all-or-nothing (rendered into a temporary directory, moved only
when every figure succeeded).

``pgexact figures [--out DIR] [--only NAME[,NAME]] [--format png|svg|pdf]`` calls
:func:`render`; :func:`captions` is the caption text.

Examples
--------
>>> from pgexact.figures import FIGURES
>>> "ppo_clip" in FIGURES
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from matplotlib.figure import Figure

from . import _core
from ._render import FORMATS, render_specs

__all__ = ["FigureSpec", "REGISTRY", "FIGURES", "render", "captions", "get", "OutDirIsAFileError"]


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the registry.

    Attributes
    ----------
    name : str
        File stem and CLI name.
    title : str
        Short title.
    caption : str
        Caption for slides, naming the source of every plotted formula.
    make : callable
        ``make(fig: matplotlib.figure.Figure) -> None`` draws the figure.
    figsize : tuple of float
        Size in inches.
    """

    name: str
    title: str
    caption: str
    make: Callable[[Figure], None]
    figsize: tuple[float, float] = (7.5, 4.5)


_SPECS: list[FigureSpec] = [
    FigureSpec(
        "gradient_fields", "Vanilla vs natural gradient fields",
        "Direction fields of the exact policy gradient ∇J and of the natural gradient F⁺∇J (minimum-norm "
        "solution, state-averaged Fisher) for a softmax policy with logits (θ1, θ2, 0) on a 3-armed bandit "
        "with means (1, 0.6, 0); contours of J. The vanilla field vanishes where the policy saturates, the "
        "natural one does not. Sources: Kakade (2002), 'A Natural Policy Gradient', sec. 3; Amari (1998).",
        _core.make_gradient_fields, (11.0, 4.8),
    ),
    FigureSpec(
        "softmax_plateau", "Softmax-PG plateau vs NPG",
        "Sub-optimality J* − J(θ_k) of exact softmax policy-gradient ascent and of tabular NPG "
        "(θ ← θ + η·A/(1−γ)), started near a sub-optimal deterministic policy: on a 3-armed bandit PG sits on "
        "a plateau for ~10³ iterations before its O(1/k) phase; on a 5-state chain (γ = 0.9) started near the "
        "myopic policy it does not leave the plateau within 3000 iterations. NPG's direction does not shrink "
        "with π and it converges linearly. J* by exact policy iteration. "
        "Sources: Mei et al. (2020), 'On the Global Convergence Rates of Softmax Policy Gradient Methods', "
        "sec. 4 (plateaus); Agarwal et al. (2021), Lemma 5.1 and Thm 5.3 (NPG).",
        _core.make_softmax_plateau, (11.0, 4.5),
    ),
    FigureSpec(
        "ppo_clip", "PPO clipped objective",
        "L^CLIP(r) = min(rA, clip(r, 1−ε, 1+ε)A) against the probability ratio r for A = +1 and A = −1, "
        "ε = 0.2. The objective is flat only on the side where the ratio has already moved in the improving "
        "direction. Source: Schulman et al. (2017), 'Proximal Policy Optimization Algorithms', eq. 7 and Fig. 1 "
        "(see erratum ppo-clip-outside).",
        _core.make_ppo_clip, (10.0, 4.2),
    ),
    FigureSpec(
        "marginal_drift", "State-marginal drift and the 2εt bound",
        "Exact L1 distance Σ_s|p'_t(s) − p_t(s)| between the state marginals of two policies (Levine's tightrope "
        "walker, and softmax policies on a random near-deterministic 6-state MDP), against the coupling bound min(2εt, 2) with ε = max_s TV(π'(·|s), π(·|s)), and the printed "
        "'bound' 2t·max_s KL, which fails. Sources: Levine, CS285 Lecture 9 (coupling argument); Schulman et al. "
        "(2015), Appendix A; erratum drift-bound-kl.",
        _core.make_marginal_drift, (11.0, 5.4),
    ),
    FigureSpec(
        "kl_quadratic", "Exact KL vs its Fisher quadratic approximation",
        "Exact E_{s~d} KL(π_θ‖π_{θ+sv}) and the reverse KL along the natural-gradient direction v (vᵀFv = 1), "
        "against the quadratic model ½ s² vᵀFv; the ratio tends to 1 as s → 0. d is the normalized discounted "
        "occupancy. Sources: Kakade (2002), sec. 3; Schulman et al. (2015), Appendix C.",
        _core.make_kl_quadratic, (10.5, 4.2),
    ),
    FigureSpec(
        "bernoulli_npg", "Bernoulli natural-gradient example",
        "Maximizing J(θ) = π_θ(1) = σ(θ): the vanilla gradient σ(θ)(1−σ(θ)) vanishes as θ grows, while the "
        "Fisher information is the same σ(1−σ), so the natural gradient is exactly 1 and θ grows at a constant "
        "rate. Step size 1, θ0 = 0, computed with pgexact.policy_gradient / natural_gradient. Source: the "
        "course notes' example 'Natural gradient on a simple problem' (Policy Gradients (textbook chapter), § Natural policy gradient); "
        "Kakade (2002).",
        _core.make_bernoulli_npg, (10.0, 4.2),
    ),
    FigureSpec(
        "short_corridor", "Short corridor J(p)",
        "Value of the start state of the short corridor with switched actions as a function of the probability p "
        "of 'right', from pgexact.evaluate (points) and the closed form (2p−4)/(p(1−p)) (line); optimum at "
        "p* = 2 − √2 ≈ 0.586, J* ≈ −11.66. Source: Sutton & Barto (2018), Example 13.1 and Figure 13.1.",
        _core.make_short_corridor, (7.5, 4.5),
    ),
    FigureSpec(
        "trpo_bound", "TRPO lower bound vs true improvement",
        "Along the natural-gradient direction: the true improvement J(π') − J(π), the surrogate L_π(π') − J(π), "
        "and the lower bounds L − C·α² (α = max-state TV) and L − C·max_s KL(π‖π') with C = 4εγ/(1−γ)², "
        "ε = max|A|. Both bounds stay below the true improvement and are tight only for small steps. Source: "
        "Schulman et al. (2015), Theorem 1 and eq. 9; Kakade & Langford (2002).",
        _core.make_trpo_bound, (7.5, 4.8),
    ),
]

from . import _ext  # figures that need the estimators, the update rules and the LQR module

_SPECS.extend(_ext.specs(FigureSpec))

from . import _research  # exact second moments, optimal baselines, convergence bounds, average reward

_SPECS.extend(_research.specs(FigureSpec))

from . import _classic_control  # noqa: E402 - discretized classic-control tasks

_SPECS.extend(_classic_control.specs(FigureSpec))

from . import _power  # power of the unbiasedness test, predicted and observed

_SPECS.extend(_power.specs(FigureSpec))

from . import _second_order  # the exact Hessian's spectrum along a policy-gradient path

_SPECS.extend(_second_order.specs(FigureSpec))

REGISTRY: dict[str, FigureSpec] = {s.name: s for s in _SPECS}
#: Names of every figure, in rendering order.
FIGURES: tuple[str, ...] = tuple(REGISTRY)


def get(name: str) -> FigureSpec:
    """The figure named ``name``; ``ValueError`` listing the valid names otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str (one of: {', '.join(FIGURES)}), got {type(name).__name__}")
    if name not in REGISTRY:
        raise ValueError(f"name {name!r} is not a known figure; valid names: {', '.join(FIGURES)}")
    return REGISTRY[name]


def _check_names(names: object) -> list[str]:
    """Figure names in registry terms: None (all), one str, or an iterable of str (duplicates dropped)."""
    if names is None:
        return list(FIGURES)
    if isinstance(names, str):
        names = [names]
    if isinstance(names, (bytes, dict)) or not isinstance(names, Iterable):
        raise TypeError(f"names must be None, a str or an iterable of str, got {type(names).__name__}")
    chosen = list(names)
    for i, n in enumerate(chosen):
        if not isinstance(n, str):
            raise TypeError(f"names[{i}] must be a str (a figure name), got {type(n).__name__}")
    unknown = [n for n in chosen if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown figure name(s) in names: {', '.join(map(repr, unknown))}; valid names: {', '.join(FIGURES)}")
    return list(dict.fromkeys(chosen))


def captions(names: Iterable[str] | None = None) -> str:
    """Caption text of the chosen figures (default: all), one paragraph each."""
    chosen = _check_names(names)
    return "\n\n".join(f"{n}.png — {REGISTRY[n].title}\n  {REGISTRY[n].caption}" for n in chosen) + "\n"


class OutDirIsAFileError(NotADirectoryError, ValueError):
    """``out_dir`` names an existing file: a bad argument (``ValueError``), and the
    ``NotADirectoryError`` the operating system would give."""


def render(
    names: Iterable[str] | None = None,
    out_dir: str | os.PathLike[str] = "figures",
    fmt: str = "png",
    progress: bool = True,
) -> list[Path]:
    """Render figures into ``out_dir``; return the written paths in registry order.

    Parameters
    ----------
    names : iterable of str, optional
        Figure names (default: all of :data:`FIGURES`). Unknown names raise ``ValueError``
        listing the valid ones, before anything is drawn.
    out_dir : path-like
        Output directory; created if missing. An existing file raises
        :class:`OutDirIsAFileError` naming ``out_dir`` (a ``ValueError`` and a
        ``NotADirectoryError``); a directory that cannot be created or written,
        ``PermissionError``. Either way nothing is written.
    fmt : {"png", "svg", "pdf"}
    progress : bool
        Show a tqdm progress bar on stderr.

    Notes
    -----
    All-or-nothing: figures are drawn into a temporary directory inside ``out_dir`` and moved
    into place only when every one succeeded; on any error the temporary directory (and
    ``out_dir`` if this call created it) is removed. Output is byte-identical run to run.
    """
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f"out_dir must be a str or a path-like object, got {type(out_dir).__name__}")
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise OutDirIsAFileError(f"out_dir={str(out_dir)!r} is a file, not a directory")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, got {type(progress).__name__}")
    chosen = _check_names(names)
    if not chosen:
        raise ValueError(f"no figure names given; valid names: {', '.join(FIGURES)}")
    return render_specs([REGISTRY[n] for n in chosen], out_dir, fmt, progress)
