r"""Audit an update: which conventions its recorded updates are consistent with, and how far it is from ∇J.

:func:`audit` runs a driver (a library's own collection, buffer, advantage and loss code, or the
plain-numpy reference) or a user's update function on one continuous stream of a small MDP,
then compares the recorded updates with the exact expected update
(:func:`~pgexact.conformance.expected_update`) of every candidate convention by the exact test
and the scale-free test of :mod:`~pgexact.conformance.stats`.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .._validation import as_float_array, check_memory, check_positive_int
from ..exact.evaluation import _evaluate
from ..exact.gradients import policy_gradient
from ..mdps import gridworld
from ..models.finite_mdp import FiniteMDP, check_mdp
from ..policies import TabularSoftmax, softmax_rows
from . import reference
from ._driver import DriverRun, TransitionBatch
from .convention import AUTORESETS, PRESETS, TRUNCATIONS, WEIGHTINGS, Convention
from .expected import _logit_updates
from .stats import FALSE_ALARM, N_BLOCKS, Verdict, mean_test, parallel_test, power_against

__all__ = ["AuditReport", "ConventionVerdict", "audit", "default_mdp", "default_logits", "candidate_conventions"]


def default_mdp() -> FiniteMDP:
    """The audits' default problem: a 3×3 gridworld, slip 0.2, γ = 0.8, goal in the far corner.

    Examples
    --------
    >>> m = default_mdp()
    >>> m.n_states, m.n_actions, m.gamma
    (9, 4, 0.8)
    """
    return gridworld(3, 3, gamma=0.8, slip=0.2)


def default_logits(n_states: int, n_actions: int) -> np.ndarray:
    r"""A fixed, non-uniform logits table: :math:`0.7\sin(1.7\,(sA + a))`.

    Examples
    --------
    >>> default_logits(2, 2).round(2).tolist()
    [[0.0, 0.69], [-0.18, -0.65]]
    """
    S = check_positive_int("n_states", n_states)
    A = check_positive_int("n_actions", n_actions)
    check_memory(f"default_logits({S}, {A})", 8.0 * S * A, "lower n_states or n_actions")
    return 0.7 * np.sin(1.7 * np.arange(S * A, dtype=np.float64)).reshape(S, A)


def candidate_conventions(base: Convention, autoresets: tuple = ("same_step", "next_step")) -> list[Convention]:
    """Every (weighting, truncation, autoreset, bootstrap_end) variant of ``base``.

    Examples
    --------
    >>> len(candidate_conventions(Convention()))
    32
    """
    if not isinstance(base, Convention):
        raise TypeError(f"base must be a pgexact.conformance.Convention, got {type(base).__name__}")
    if isinstance(autoresets, str) or not isinstance(autoresets, (tuple, list)) or not all(
            isinstance(a, str) and a in AUTORESETS for a in autoresets):
        raise ValueError(f"autoresets must be a tuple of {AUTORESETS}, got {autoresets!r}")
    out = []
    for wt, tr, ar, be in itertools.product(WEIGHTINGS, TRUNCATIONS, autoresets, (True, False)):
        c = base.replace(weighting=wt, truncation=tr, autoreset=ar, bootstrap_end=be)
        out.append(c.replace(name=c.label()))
    return out


@dataclass(frozen=True)
class ConventionVerdict:
    """One candidate convention's verdicts (see :class:`AuditReport`).

    ``power`` is the exact test's predicted power (normal approximation, standard errors measured
    on the data) against the nearest candidate with another ``truncation``; ``power_by`` gives it
    against every candidate whose prediction differs (candidates differing only in
    ``bootstrap_end`` are often too close to tell apart).
    """

    convention: Convention
    mean: Verdict
    parallel: Verdict
    cosine_to_gradient: float
    power: float
    power_by: dict = dataclasses.field(default_factory=dict)

    @property
    def consistent(self) -> bool:
        """Not rejected: by the scale-free test when advantages are normalized, else by both tests."""
        if self.convention.normalize_advantages:
            return not self.parallel.reject
        return not (self.mean.reject or self.parallel.reject)

    def to_dict(self) -> dict:
        return {"convention": self.convention.to_dict(), "label": self.convention.label(),
                "mean": self.mean.to_dict(), "parallel": self.parallel.to_dict(),
                "cosine_to_gradient": self.cosine_to_gradient, "power": self.power,
                "power_by": dict(self.power_by),
                "consistent": self.consistent}


@dataclass(frozen=True)
class AuditReport:
    r"""What an audit found.

    Attributes
    ----------
    library, version : str
    config : dict
        The settings the driver ran with.
    preset : str or None
        The library's documented-default convention (:data:`~pgexact.conformance.PRESETS`).
    verdicts : tuple of ConventionVerdict
        Per candidate convention: the exact test (``mean``) and the scale-free test
        (``parallel``) with their statistic z, threshold and verdict; the cosine of its exact
        expected update to ∇J; the power of its exact test against the nearest candidate with
        another truncation treatment.
    consistent : tuple of Convention
        The candidates the data do not reject.
    cosine, angle : float
        Cosine and angle (degrees) between the mean recorded update and the exact policy
        gradient :math:`\nabla J` (``pgexact.policy_gradient``) in the logits.
    relative_bias : float
        :math:`\tan\angle`: the mean update's component orthogonal to ∇J relative to its
        component along ∇J (scale-free, so also meaningful for normalized advantages).
    false_alarm : float
        α of each test (Bonferroni over coordinates, batch means).
    n_batches, n_envs, n_steps, time_limit, seed
        The run.

    Examples
    --------
    >>> r = audit("reference", n_batches=40, n_blocks=10, seed=0)
    >>> [c.label() for c in r.consistent][:1]
    ['uniform/bootstrap/same_step/end=V']
    """

    library: str
    version: str
    config: dict
    preset: str | None
    verdicts: tuple
    consistent: tuple
    cosine: float
    angle: float
    relative_bias: float
    false_alarm: float
    n_batches: int
    n_envs: int
    n_steps: int
    time_limit: int
    seed: Any
    mean_update: np.ndarray
    gradient: np.ndarray

    def verdict(self, label: str) -> ConventionVerdict:
        """The verdict of the candidate whose :meth:`Convention.label` is ``label``."""
        if not isinstance(label, str):
            raise TypeError(f"label must be a str (a Convention.label()), got {type(label).__name__}")
        for v in self.verdicts:
            if v.convention.label() == label:
                return v
        raise ValueError(f"label {label!r} is not a candidate convention; candidates: "
                       + ", ".join(v.convention.label() for v in self.verdicts))

    def to_dict(self) -> dict:
        """JSON-ready dict of the report."""
        return {"library": self.library, "version": self.version, "config": _jsonable(self.config),
                "preset": self.preset, "consistent": [c.label() for c in self.consistent],
                "cosine": self.cosine, "angle_degrees": self.angle, "relative_bias": self.relative_bias,
                "false_alarm": self.false_alarm, "n_batches": self.n_batches, "n_envs": self.n_envs,
                "n_steps": self.n_steps, "time_limit": self.time_limit, "seed": _jsonable(self.seed),
                "verdicts": [v.to_dict() for v in self.verdicts]}

    def __str__(self) -> str:
        lines = [f"audit of {self.library} {self.version}" + (f" (preset {self.preset})" if self.preset else ""),
                 f"  {self.n_batches} batches of {self.n_envs} envs x {self.n_steps} steps, time limit "
                 f"{self.time_limit}, seed {self.seed}; each test's false alarm <= {self.false_alarm:g}",
                 f"  mean update vs exact grad J: cosine {self.cosine:.4f}, angle {self.angle:.2f} deg, "
                 f"tan(angle) {self.relative_bias:.3f}",
                 "",
                 f"  {'convention':<40} {'mean z':>8} {'par z':>8} {'thresh':>7} {'cos∇J':>7} {'power':>6}  verdict"]
        for v in sorted(self.verdicts, key=lambda v: (not v.consistent, v.mean.z)):
            lines.append(f"  {v.convention.label():<40} {v.mean.z:8.2f} {v.parallel.z:8.2f} "
                         f"{v.mean.threshold:7.2f} {v.cosine_to_gradient:7.4f} {v.power:6.2f}  "
                         f"{'consistent' if v.consistent else 'rejected'}")
        lines.append("")
        lines.append("  consistent: " + (", ".join(c.label() for c in self.consistent) or "none"))
        if not self.consistent and self.verdicts:
            best = self.closest()
            t = best.parallel if best.convention.normalize_advantages else best.mean
            lines.append(f"  closest: {best.convention.label()} ({t.test} test z = {t.z:.2f})")
        return "\n".join(lines)

    def closest(self) -> ConventionVerdict:
        """The candidate with the smallest statistic (the scale-free one when advantages are normalized)."""
        if not self.verdicts:
            raise ValueError("the report has no candidate conventions")
        return min(self.verdicts, key=lambda v: (v.parallel if v.convention.normalize_advantages else v.mean).z)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return repr(x)


def _resolve_driver(driver: Any):
    """A module-like object with ``collect`` (and ``NAME``/``LIBRARY``)."""
    if isinstance(driver, str):
        if driver == reference.NAME:
            return reference
        try:
            drivers = importlib.import_module("pgexact.conformance.drivers")
        except ImportError:
            raise ValueError(f"unknown driver {driver!r}: this installation has only 'reference' "
                             "(the library drivers live in pgexact.conformance.drivers)") from None
        return drivers.get_driver(driver)
    if hasattr(driver, "collect"):
        return driver
    raise TypeError(f"driver_or_callable must be a driver name, a driver module (with collect) or a "
                    f"callable(TransitionBatch) -> update; got {type(driver).__name__}")


def _cosine(x: np.ndarray, y: np.ndarray) -> float:
    nx, ny = float(np.linalg.norm(x)), float(np.linalg.norm(y))
    if nx == 0 or ny == 0:
        return float("nan")
    return float(np.clip(np.dot(x.ravel(), y.ravel()) / (nx * ny), -1.0, 1.0))


def _block_groups(n_batches: int, n_blocks: int) -> list[tuple[int, ...]]:
    size = n_batches // n_blocks
    start = n_batches - n_blocks * size
    return [tuple(range(start + k * size, start + (k + 1) * size)) for k in range(n_blocks)]


def audit(driver_or_callable: Any, mdp: FiniteMDP | None = None, *, logits: Any = None, values: Any = None,
          time_limit: int = 10, n_envs: int = 16, n_steps: int = 32, n_batches: int = 200, seed: Any = 0,
          conventions: Any = None, autoreset: str | None = None, n_blocks: int = N_BLOCKS,
          false_alarm: float = FALSE_ALARM, **library_kwargs: Any) -> AuditReport:
    r"""Audit a library driver or an update function against every candidate convention.

    The driver records ``n_batches`` updates (the ascent direction in the logits of a tabular
    softmax actor at ``logits``, critic frozen at ``values``) from one continuous stream of
    ``n_envs`` environments ``pgexact.gym.make_env(mdp, max_episode_steps=time_limit)``. For
    each candidate convention the exact expected update of each block of batches is computed
    (:func:`~pgexact.conformance.expected_update`, chain or renewal, no sampling) and the
    recorded updates are tested against it: exact test
    :math:`\mathbb{E}[Y] = \mu` and scale-free test :math:`\mathbb{E}[Y] \parallel \mu`
    (:mod:`~pgexact.conformance.stats`, batch means over ``n_blocks`` blocks, false alarm
    ≤ ``false_alarm`` each).

    Parameters
    ----------
    driver_or_callable : str, driver module or callable
        ``"reference"`` (the plain-numpy buffer of :mod:`~pgexact.conformance.reference`, with
        convention fields in ``library_kwargs``), a library driver's name (``"sb3-ppo"``, …,
        from :mod:`pgexact.conformance.drivers`), a module with ``collect``, or a user's
        update function ``f(batch: TransitionBatch) -> (S, A) array``, run on the reference
        simulator with ``autoreset``.
    mdp : FiniteMDP, optional
        Default :func:`default_mdp` (3×3 gridworld, slip 0.2, γ = 0.8).
    logits : array_like (S, A), optional
        Default :func:`default_logits`.
    values : array_like (S,), optional
        Default: the exact discounted :math:`V^\pi` of ``mdp``.
    time_limit, n_envs, n_steps, n_batches : int
    seed : int
    conventions : sequence of Convention, optional
        Candidates (default :func:`candidate_conventions` of the driver's preset with its
        configuration's γ, λ, entropy coefficient and normalization).
    autoreset : str, optional
        The simulator's autoreset mode for a callable (default ``"same_step"``) and for the
        ``"reference"`` driver (default: its convention's).
    n_blocks : int
    false_alarm : float
    **library_kwargs
        Passed to the driver's ``collect``.

    Returns
    -------
    AuditReport

    Examples
    --------
    A user's update function — here one that treats time limits as terminations — is told apart
    from the correct treatment:

    >>> import numpy as np
    >>> from pgexact.conformance import reference, Convention
    >>> m = default_mdp(); lg = default_logits(9, 4)
    >>> V = np.asarray(__import__("pgexact").evaluate(m, softmax_rows(lg)).V)
    >>> mine = Convention(truncation="terminate", gamma=0.8, lam=0.95, time_limit=10, n_envs=16, n_steps=32)
    >>> fn = lambda b: reference.reference_update(b, lg, V, mine)
    >>> r = audit(fn, m, n_batches=100, n_blocks=10, seed=2)
    >>> r.verdict("uniform/terminate/same_step/end=V").consistent
    True
    >>> r.verdict("uniform/bootstrap/same_step/end=V").consistent
    False
    """
    mdp = default_mdp() if mdp is None else check_mdp(mdp)
    S, A = mdp.n_states, mdp.n_actions
    logits = default_logits(S, A) if logits is None else as_float_array("logits", logits)
    if logits.shape != (S, A):
        raise ValueError(f"logits must have shape (S, A) = ({S}, {A}), got {logits.shape}")
    pi = softmax_rows(logits)
    V = np.asarray(_evaluate(mdp, pi).V if values is None else as_float_array("values", values), dtype=np.float64)
    if V.shape != (S,):
        raise ValueError(f"values must have shape (S,) = ({S},), got {V.shape}")
    time_limit = check_positive_int("time_limit", time_limit)
    n_envs = check_positive_int("n_envs", n_envs)
    n_steps = check_positive_int("n_steps", n_steps)
    n_batches = check_positive_int("n_batches", n_batches)
    n_blocks = check_positive_int("n_blocks", n_blocks)
    if n_batches < n_blocks or n_blocks < 2:
        raise ValueError(f"n_batches={n_batches} must be at least n_blocks={n_blocks} >= 2")
    if callable(driver_or_callable) and not hasattr(driver_or_callable, "collect") and not isinstance(
            driver_or_callable, str):
        fn: Callable[[TransitionBatch], Any] = driver_or_callable
        autoreset = "same_step" if autoreset is None else autoreset
        if autoreset not in AUTORESETS:
            raise ValueError(f"autoreset must be one of {AUTORESETS}, got {autoreset!r}")
        run = reference.collect(mdp, logits, V, time_limit=time_limit, n_envs=n_envs, n_steps=n_steps,
                                n_batches=n_batches, seed=seed, update_fn=fn, autoreset=autoreset,
                                gamma=mdp.gamma)
        run = DriverRun(run.updates, getattr(fn, "__name__", "update function"), "", {"autoreset": autoreset}, None)
    else:
        drv = _resolve_driver(driver_or_callable)
        if drv is reference:
            library_kwargs.setdefault("gamma", mdp.gamma)
            if autoreset is not None:
                library_kwargs["autoreset"] = autoreset
        elif autoreset is not None:
            raise TypeError("autoreset applies to update functions and the reference driver; a library "
                            "driver's environments use the library's own autoreset")
        run = drv.collect(mdp, logits, V, time_limit=time_limit, n_envs=n_envs, n_steps=n_steps,
                          n_batches=n_batches, seed=seed, **library_kwargs)
        if not isinstance(run, DriverRun):
            raise TypeError(f"the driver's collect returned {type(run).__name__}, expected a DriverRun")
    if run.updates.shape != (n_batches, S, A):
        raise ValueError(f"the driver recorded updates of shape {run.updates.shape}, expected "
                         f"(n_batches, S, A) = ({n_batches}, {S}, {A})")
    if conventions is None:
        conventions = candidate_conventions(_base_convention(run, mdp, time_limit, n_envs, n_steps))
    else:
        conventions = list(conventions)
        for i, c in enumerate(conventions):
            if not isinstance(c, Convention):
                raise TypeError(f"conventions[{i}] is a {type(c).__name__}, expected a Convention")
    groups = _block_groups(n_batches, n_blocks)
    size = n_batches // n_blocks
    start = n_batches - n_blocks * size
    preds, ents = [], []

    def per_batch(blocks: np.ndarray) -> np.ndarray:
        full = np.empty((n_batches, S, A))
        full[:start] = blocks[0]
        full[start:] = np.repeat(blocks, size, axis=0)
        return full

    cache: dict = {}  # row occupancies depend only on the autoreset mode and the sizes
    for c in conventions:
        c = c.replace(time_limit=time_limit, n_steps=n_steps, n_envs=n_envs)
        adv, ent, _ = _logit_updates(mdp, pi, V, c, groups, cache=cache)
        preds.append(per_batch(adv + ent))
        ents.append(per_batch(ent))
    grad = policy_gradient(mdp, TabularSoftmax(S, A), logits.ravel()).reshape(S, A)
    Y = run.updates
    verdicts = []
    means = [p[start:].mean(axis=0) for p in preds]
    for c, mu, ent, m0 in zip(conventions, preds, ents, means):
        # the exact test also looks along the differences to the other candidates' predictions
        dirs = np.array([m1 - m0 for m1 in means if np.abs(m1 - m0).max() > 1e-12 * np.abs(m0).max()])
        mt = mean_test(Y, mu, directions=dirs if len(dirs) else None, n_blocks=n_blocks,
                       false_alarm=false_alarm)
        # normalized advantages scale the advantage part only: test Y - entropy part || advantage part
        pt = parallel_test(Y, mu - ent, offset=ent, n_blocks=n_blocks, false_alarm=false_alarm)
        power_by = {c1.label(): power_against(mt, m1 - m0) for c1, m1 in zip(conventions, means)
                    if np.abs(m1 - m0).max() > 1e-12 * np.abs(m0).max()}
        power = min((p for lab, p in power_by.items()
                     if _label_part(lab, 1) != c.truncation), default=float("nan"))
        verdicts.append(ConventionVerdict(c, mt, pt, _cosine(mu.mean(axis=0), grad), power, power_by))
    ybar = Y.mean(axis=0)
    cos = _cosine(ybar, grad)
    angle = math.degrees(math.acos(cos)) if np.isfinite(cos) else float("nan")
    rel = math.tan(math.radians(angle)) if np.isfinite(angle) and angle < 90 else float("inf")
    return AuditReport(run.library, run.version, dict(run.config), run.preset, tuple(verdicts),
                       tuple(v.convention for v in verdicts if v.consistent), cos, angle, rel, false_alarm,
                       n_batches, n_envs, n_steps, time_limit, seed, ybar, grad)


_FIELDS = {f.name for f in dataclasses.fields(Convention)}


def _label_part(label: str, i: int) -> str:
    return label.split("/")[i]


def _base_convention(run: DriverRun, mdp: FiniteMDP, time_limit: int, n_envs: int, n_steps: int) -> Convention:
    """The driver's preset with the configuration's γ, λ, entropy coefficient and normalization."""
    base = PRESETS[run.preset] if run.preset in PRESETS else Convention(gamma=mdp.gamma)
    if run.preset is not None and run.preset not in PRESETS:
        raise ValueError(f"the driver names preset {run.preset!r}, not in PRESETS ({', '.join(PRESETS)})")
    changes = {k: v for k, v in run.config.items() if k in _FIELDS - {"name", "n_envs", "n_steps", "time_limit"}}
    if "gamma" not in changes and run.preset is not None:
        changes["gamma"] = base.gamma
    return base.replace(time_limit=time_limit, n_envs=n_envs, n_steps=n_steps, **changes)
