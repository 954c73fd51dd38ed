r"""The theorem registry: each theorem is data, read alike by ``pgexact verify``, the tests and the figures.

A :class:`Theorem` holds an id, its statement (LaTeX), its source, a generator of random
instances, a residual function, a tolerance justified by theory, the independent reference the
residual compares against, and negative controls (the same computation with a plausible
mistake). A theorem *passes* on an instance when the residual is ``<= tolerance``; a control is
*rejected* on an instance when its residual is ``>= CONTROL_FACTOR * tolerance``, and the fraction
of instances on which it is rejected is the theorem's measured power.

Theorems are built with three declarative constructors:

* :func:`identity` — ``computed == expected`` (relative error);
* :func:`inequality` — ``lhs <= rhs`` (positive part of the violation; the ratio ``lhs / rhs``
  tells how close the bound comes to binding);
* :func:`statistical` — Monte Carlo frequencies against exact probabilities, with a stated
  false-alarm probability (see :func:`bernoulli_statistic`).

Modules that define theorems call them at import time; the catalogue of modules is
:data:`THEOREM_MODULES`.
"""

from __future__ import annotations

import importlib
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import _checks as check
from ._checks import _short
from ._residuals import FALSE_ALARM, bernoulli_statistic, relative_error

__all__ = [
    "Theorem",
    "Control",
    "Outcome",
    "register",
    "identity",
    "inequality",
    "statistical",
    "bernoulli_statistic",
    "all_theorems",
    "get",
    "relative_error",
    "discrimination",
    "UnknownTheoremError",
    "THEOREM_MODULES",
    "CONTROL_FACTOR",
    "FALSE_ALARM",
]

#: Modules (relative to ``pgexact.theorems``) whose import registers theorems.
THEOREM_MODULES: tuple[str, ...] = (
    "finite", "lqr", "estimators", "updates", "sampler", "baselines", "average", "average_values", "convergence",
    "convergence_entropy", "finite_kl",
    "geometric", "second_order", "adapters",
    "classic_control",
    "policy_free",
    "updates_coverage",
    "updates_cg",
    "updates_paths",
    "statistics",
    "statistics_estimators",
    "second_order_estimators",
    "models",
    "lqr.natural",
    "lqr.newton",
    "lqr.soft_step",
    "lqr.sampled",
    "lqr.values",
    "moments_nstep",
    "finite_horizon",
    "estimators_pathwise",
    "moments_finite",
    "estimators_discounted",
    "sampler_paths",
    "conformance",
)

#: A negative control is *rejected* on an instance when its residual is at least this many times
#: the theorem's tolerance.
CONTROL_FACTOR = 100.0


@dataclass(frozen=True)
class Control:
    """A negative control: the theorem's computation with one plausible mistake.

    Attributes
    ----------
    name : str
        The mistake, e.g. ``"dropped gamma"`` or ``"KL(q || p) instead of KL(p || q)"``.
    residual : callable
        ``residual(instance) -> float``: the theorem's residual with the mistake made. The control
        is rejected on an instance when this is ``>= CONTROL_FACTOR * tolerance``.
    """

    name: str
    residual: Callable[[Any], float]


@dataclass(frozen=True)
class Outcome:
    """The residual of one instance and, for inequalities, ``lhs / rhs`` (1 = binding)."""

    residual: float
    ratio: float | None = None


@dataclass(frozen=True)
class Theorem:
    """A checkable identity, inequality or statistical statement.

    Attributes
    ----------
    id : str
        Short unique name, e.g. ``"pg.q_form"``.
    statement : str
        The statement in LaTeX.
    source : str
        Paper and equation/lemma, textbook section, or course-note title and section.
    instance : callable
        ``instance(rng: numpy.random.Generator) -> Any``: a random instance.
    residual : callable
        ``residual(instance) -> float`` or ``-> Outcome``: ``>= 0``; small when the theorem holds
        (relative error for identities, positive part of the violation for inequalities).
    tolerance : float
        Largest acceptable residual.
    tolerance_reason : str
        Why this tolerance (conditioning, truncation, finite-difference order, false alarm, ...).
    reference : str
        The independent computation the residual compares against (e.g. "complex-step derivative
        of J"), sharing no code path with the computation checked beyond the model's data.
    controls : tuple of Control
        Negative controls; each must be rejected on most instances (its measured power).
    kind : str
        ``"identity"``, ``"inequality"``, ``"statistical"`` or ``"custom"``.
    evaluate : callable, optional
        ``evaluate(instance, with_controls) -> (Outcome, tuple of control residuals)``: the
        residual and (if asked) every control's residual on one instance, sharing the reference
        computation. Built by the constructors; :meth:`run` falls back to ``residual`` and the
        controls' own functions when absent.
    loose_reason : str
        Inequalities only: why no instance can bring the bound within a factor 2 of binding (the
        bound is loose by nature, e.g. Pinsker's factor 2), or what the check claims instead. Empty
        when the registered instances bring the bound within a factor 2 (its *discrimination*,
        see :func:`discrimination`, is below 2), which a test enforces.
    default_instances : int, optional
        At most this many instances in a default ``pgexact verify`` run (an explicit
        ``--instances`` other than the default runs that many): for a theorem whose every instance
        pays a compilation (the JAX adapter's), so that the default run stays short.
    """

    id: str
    statement: str
    source: str
    instance: Callable[[np.random.Generator], Any]
    residual: Callable[[Any], Any]
    tolerance: float
    tolerance_reason: str
    reference: str = ""
    controls: tuple[Control, ...] = ()
    kind: str = "custom"
    evaluate: Callable[[Any, bool], tuple[Outcome, tuple[float, ...]]] | None = None
    loose_reason: str = ""
    default_instances: int | None = None

    def outcome(self, instance: Any) -> Outcome:
        """The residual (and ratio, for inequalities) on a given instance.

        ``instance`` is what this theorem's ``instance(rng)`` draws; anything else (``None``, an
        object without the fields the residual reads) raises ``TypeError`` naming it.
        """
        self._check_instance(instance)
        try:
            return _as_outcome(self.residual(instance))
        except (AttributeError, TypeError, ValueError, IndexError, KeyError) as exc:
            self._refuse_foreign(instance, exc)
            raise

    def _check_instance(self, instance: Any) -> None:
        if instance is None:
            raise TypeError(
                f"instance must be an instance of theorem {self.id!r}, as drawn by its instance(rng), got None"
            )

    def _refuse_foreign(self, instance: Any, exc: BaseException) -> None:
        """After the residual failed: a ``TypeError`` naming ``instance`` if it is not of the kind
        this theorem draws (one instance is drawn to compare types; only on this error path)."""
        drawn = self.instance(np.random.default_rng(0))
        if type(instance) is not type(drawn) or (
            isinstance(drawn, tuple) and len(instance) != len(drawn)
        ):
            raise TypeError(
                f"instance must be an instance of theorem {self.id!r}, as drawn by its instance(rng) "
                f"(a {type(drawn).__name__}), got {type(instance).__name__} ({exc})"
            ) from exc

    def run(self, instance: Any, with_controls: bool = False) -> tuple[Outcome, tuple[float, ...]]:
        """The outcome on ``instance`` and, if ``with_controls``, every control's residual."""
        self._check_instance(instance)
        if self.evaluate is not None:
            try:
                return self.evaluate(instance, with_controls)
            except (AttributeError, TypeError, ValueError, IndexError, KeyError) as exc:
                self._refuse_foreign(instance, exc)
                raise
        out = self.outcome(instance)
        if not with_controls:
            return out, ()
        return out, tuple(_guard(lambda c=c: c.residual(instance)) for c in self.controls)

    def check(self, rng: np.random.Generator) -> float:
        """Draw one instance from ``rng`` and return its residual."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return self.outcome(self.instance(rng)).residual


def discrimination(tightest_ratio: float | None) -> float | None:
    r"""The largest factor by which a bound can be tightened with no instance failing: ``1 / max(lhs / rhs)``.

    For an inequality :math:`\ell \le r` with non-negative sides, tightening the bound by a factor
    :math:`f` (dividing the larger side by f, or multiplying the smaller one) leaves every instance
    passing exactly when :math:`f \le \min r/\ell`. 1.0 means the bound binds on some instance;
    ``inf`` that the left side was 0 everywhere; None when no ratio is defined (signed sides, or not
    an inequality).

    Examples
    --------
    >>> discrimination(0.8)
    1.25
    >>> discrimination(None) is None
    True

    Raises
    ------
    TypeError
        ``tightest_ratio`` is neither None nor a real number.
    ValueError
        ``tightest_ratio`` is negative or NaN.
    """
    if tightest_ratio is None:
        return None
    if isinstance(tightest_ratio, (bool, np.bool_)) or not isinstance(tightest_ratio, (int, float, np.integer, np.floating)):
        raise TypeError(f"tightest_ratio must be a real number or None, got {type(tightest_ratio).__name__} "
                        f"{_short(tightest_ratio)}")
    x = float(tightest_ratio)
    if not x >= 0.0:  # negative or NaN
        raise ValueError(f"tightest_ratio must be >= 0 (a ratio of non-negative sides), got {tightest_ratio!r}")
    if x == 0.0:  # nothing came near the bound
        return float("inf")
    return 1.0 / x


def _guard(control: Callable[[], float]) -> float:
    """A control's residual, or NaN if the mistaken computation raised (NaN never counts as rejected)."""
    try:
        return float(control())
    except Exception:  # noqa: BLE001 - a broken control must not hide the theorem's own result
        return float("nan")


def _as_outcome(value: Any) -> Outcome:
    if isinstance(value, Outcome):
        return value
    return Outcome(float(value))


def _check_common(
    id: Any, statement: Any, source: Any, reference: Any, instance: Any, tolerance_reason: Any = None
) -> None:
    """Validate the arguments every constructor shares (each error names its argument)."""
    check.text("id", id)
    check.text("statement", statement)
    check.text("source", source)
    check.text("reference", reference)
    check.function("instance", instance)
    if tolerance_reason is not None:  # None: statistical theorems state theirs from false_alarm
        check.text("tolerance_reason", tolerance_reason)


def identity(
    *,
    id: str,
    statement: str,
    source: str,
    reference: str,
    instance: Callable[[np.random.Generator], Any],
    computed: Callable[[Any], Any],
    expected: Callable[[Any], Any],
    tolerance: float,
    tolerance_reason: str,
    mutants: dict[str, Callable[[Any], Any]],
    floor: float = 1.0,
    default_instances: int | None = None,
) -> Theorem:
    """Register the identity ``computed(instance) == expected(instance)``.

    The residual is :func:`relative_error` ``(computed, expected, floor)``; both may be arrays or
    tuples of arrays (compared pairwise). ``expected`` is the independent reference described by
    ``reference``. Each mutant is a plausible mistaken version of ``computed``; its residual
    against the same ``expected`` (computed once per instance) is the negative control.

    Raises
    ------
    TypeError, ValueError
        An argument of the wrong kind or value (named in the message): texts must be non-empty
        strings, ``instance``, ``computed``, ``expected`` and every mutant callable, ``tolerance``
        finite and positive, ``floor`` finite and non-negative, ``mutants`` a non-empty dict.
    """
    _check_common(id, statement, source, reference, instance, tolerance_reason)
    check.function("computed", computed)
    check.function("expected", expected)
    tolerance = check.real("tolerance", tolerance, low=0.0)
    floor = check.real("floor", floor, low=0.0, low_open=False)
    mutants = check.mutants("mutants", mutants)
    names = tuple(mutants)
    fns = tuple(mutants.values())

    def residual(inst: Any) -> float:
        return relative_error(computed(inst), expected(inst), floor)

    def evaluate(inst: Any, with_controls: bool) -> tuple[Outcome, tuple[float, ...]]:
        ref = expected(inst)
        out = Outcome(relative_error(computed(inst), ref, floor))
        if not with_controls:
            return out, ()
        return out, tuple(_guard(lambda fn=fn: relative_error(fn(inst), ref, floor)) for fn in fns)

    def control(mutant: Callable[[Any], Any]) -> Callable[[Any], float]:
        return lambda inst: relative_error(mutant(inst), expected(inst), floor)

    return register(
        Theorem(
            id=id,
            statement=statement,
            source=source,
            instance=instance,
            residual=residual,
            tolerance=tolerance,
            tolerance_reason=tolerance_reason,
            reference=reference,
            controls=tuple(Control(n, control(fn)) for n, fn in zip(names, fns)),
            kind="identity",
            evaluate=evaluate,
            default_instances=None if default_instances is None else _positive_count(default_instances),
        )
    )


def _positive_count(value: Any) -> int:
    """``default_instances`` as a positive int (``TypeError``/``ValueError`` naming it)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"default_instances must be a positive int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"default_instances must be a positive int, got {value}")
    return int(value)


def _inequality_outcome(lhs: Any, rhs: Any, floor: float) -> Outcome:
    """Worst relative violation of ``lhs <= rhs`` elementwise and the largest ``lhs / rhs``.

    The ratio is reported only where ``rhs > 0`` and ``lhs >= 0`` everywhere (a ratio of signed
    quantities says nothing about how close a bound comes to binding); ``None`` otherwise.
    """
    lhs = np.asarray(lhs, dtype=float)
    rhs = np.asarray(rhs, dtype=float)
    lhs, rhs = np.broadcast_arrays(lhs, rhs)
    if lhs.size == 0:
        return Outcome(0.0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        viol = np.maximum(lhs - rhs, 0.0) / np.maximum(np.abs(rhs), floor)
        residual = float(np.max(viol))
        if np.isnan(residual):
            residual = float("inf")
        ratio: float | None = None
        if np.all(lhs >= 0) and np.all(rhs >= 0):
            r = np.where(rhs > 0, lhs / np.where(rhs > 0, rhs, 1.0), np.where(lhs > 0, np.inf, 0.0))
            ratio = float(np.max(r))
    return Outcome(residual, ratio)


def inequality(
    *,
    id: str,
    statement: str,
    source: str,
    reference: str,
    instance: Callable[[np.random.Generator], Any],
    lhs: Callable[[Any], Any],
    rhs: Callable[[Any], Any],
    tolerance: float,
    tolerance_reason: str,
    mutants: dict[str, tuple[Callable[[Any], Any] | None, Callable[[Any], Any] | None]],
    floor: float = 1.0,
    loose_reason: str = "",
) -> Theorem:
    """Register the inequality ``lhs(instance) <= rhs(instance)`` (scalars or arrays, elementwise).

    The residual is the largest positive part of ``lhs - rhs`` relative to ``max(|rhs|, floor)``;
    the ratio ``max lhs / rhs`` is reported for non-negative sides (the tightest seen tells how
    close the bound comes to binding; its inverse is the theorem's :func:`discrimination`). Each
    mutant is a pair ``(lhs_mutant, rhs_mutant)``; ``None`` keeps that side as it is.
    ``loose_reason`` states why no instance brings the bound within a factor 2 of binding (empty
    when the instances do).

    Raises
    ------
    TypeError, ValueError
        An argument of the wrong kind or value, named in the message (as for :func:`identity`;
        each mutant is a pair of callables or None, not both None).
    """
    _check_common(id, statement, source, reference, instance, tolerance_reason)
    check.function("lhs", lhs)
    check.function("rhs", rhs)
    tolerance = check.real("tolerance", tolerance, low=0.0)
    floor = check.real("floor", floor, low=0.0, low_open=False)
    mutants = check.mutants("mutants", mutants, pairs=True)
    check.text("loose_reason", loose_reason, empty=True)
    pairs = tuple(mutants.values())

    def residual(inst: Any) -> Outcome:
        return _inequality_outcome(lhs(inst), rhs(inst), floor)

    def evaluate(inst: Any, with_controls: bool) -> tuple[Outcome, tuple[float, ...]]:
        left, right = lhs(inst), rhs(inst)
        out = _inequality_outcome(left, right, floor)
        if not with_controls:
            return out, ()
        res = []
        for ml, mr in pairs:
            res.append(
                _guard(
                    lambda ml=ml, mr=mr: _inequality_outcome(
                        left if ml is None else ml(inst), right if mr is None else mr(inst), floor
                    ).residual
                )
            )
        return out, tuple(res)

    def control(pair: tuple) -> Callable[[Any], float]:
        left = pair[0] or lhs
        right = pair[1] or rhs
        return lambda inst: _inequality_outcome(left(inst), right(inst), floor).residual

    return register(
        Theorem(
            id=id,
            statement=statement,
            source=source,
            instance=instance,
            residual=residual,
            tolerance=tolerance,
            tolerance_reason=tolerance_reason,
            reference=reference,
            controls=tuple(Control(name, control(pair)) for name, pair in mutants.items()),
            kind="inequality",
            evaluate=evaluate,
            loose_reason=loose_reason,
        )
    )


def statistical(
    *,
    id: str,
    statement: str,
    source: str,
    reference: str,
    instance: Callable[[np.random.Generator], Any],
    observed: Callable[[Any], tuple[Any, Any]],
    expected: Callable[[Any], Any],
    mutants: dict[str, Callable[[Any], tuple[Any, Any]]],
    false_alarm: float = FALSE_ALARM,
    power_note: str = "",
    default_instances: int | None = None,
) -> Theorem:
    """Register a statistical theorem: observed frequencies match exact probabilities.

    ``observed(instance) -> (counts, trials)`` (Monte Carlo, from the sampler checked) and
    ``expected(instance) -> p`` (exact probabilities from an independent computation), cell by
    cell; the residual is :func:`bernoulli_statistic` and the tolerance 1: a correct sampler fails
    an instance with probability at most ``false_alarm``. Each mutant is a mistaken sampler
    ``instance -> (counts, trials)``; it is rejected when its statistic is at least
    ``CONTROL_FACTOR`` (a log-likelihood ratio 100 times the critical value).

    Raises
    ------
    TypeError, ValueError
        An argument of the wrong kind or value, named in the message (as for :func:`identity`;
        ``false_alarm`` in (0, 1), ``power_note`` a string, ``default_instances`` a positive int: at most
        that many instances in a default ``pgexact verify`` run, as for :func:`identity`).
    """
    _check_common(id, statement, source, reference, instance)
    check.function("observed", observed)
    check.function("expected", expected)
    false_alarm = check.real("false_alarm", false_alarm, low=0.0, high=1.0, high_open=True)
    check.text("power_note", power_note, empty=True)
    mutants = check.mutants("mutants", mutants)
    names = tuple(mutants)
    fns = tuple(mutants.values())

    def stat(obs: tuple[Any, Any], p: Any) -> float:
        return bernoulli_statistic(obs[0], obs[1], p, false_alarm)

    def residual(inst: Any) -> float:
        return stat(observed(inst), expected(inst))

    def evaluate(inst: Any, with_controls: bool) -> tuple[Outcome, tuple[float, ...]]:
        p = expected(inst)
        out = Outcome(stat(observed(inst), p))
        if not with_controls:
            return out, ()
        return out, tuple(_guard(lambda fn=fn: stat(fn(inst), p)) for fn in fns)

    def control(fn: Callable[[Any], tuple[Any, Any]]) -> Callable[[Any], float]:
        return lambda inst: stat(fn(inst), expected(inst))

    reason = (
        f"statistical: max over cells of n KL(phat || p) / log(2m/alpha) with alpha = {false_alarm:g}; "
        "Chernoff's bound and a union bound over the m cells make the false-alarm probability per "
        f"instance at most {false_alarm:g}, whatever the sample size"
    )
    if power_note:
        reason += "; " + power_note
    return register(
        Theorem(
            id=id,
            statement=statement,
            source=source,
            instance=instance,
            residual=residual,
            tolerance=1.0,
            tolerance_reason=reason,
            reference=reference,
            controls=tuple(Control(n, control(fn)) for n, fn in zip(names, fns)),
            kind="statistical",
            evaluate=evaluate,
            default_instances=None if default_instances is None else _positive_count(default_instances),
        )
    )


_REGISTRY: dict[str, Theorem] = {}


def register(theorem: Theorem) -> Theorem:
    """Add ``theorem`` to the registry (ids are unique) and return it.

    Raises
    ------
    TypeError, ValueError
        ``theorem`` is not a :class:`Theorem`, one of its fields is of the wrong kind (named as
        ``theorem.<field>``), or its id is registered already.
    """
    if not isinstance(theorem, Theorem):
        raise TypeError(f"theorem must be a Theorem (build one with identity, inequality or statistical), got {type(theorem).__name__}")
    check.text("theorem.id", theorem.id)
    for name in ("statement", "source", "reference", "tolerance_reason"):
        check.text(f"theorem.{name}", getattr(theorem, name))
    check.function("theorem.instance", theorem.instance)
    check.function("theorem.residual", theorem.residual)
    check.real("theorem.tolerance", theorem.tolerance, low=0.0)
    if not isinstance(theorem.controls, tuple) or not all(isinstance(c, Control) for c in theorem.controls):
        raise TypeError(f"theorem.controls must be a tuple of Control, got {_short(theorem.controls)}")
    if theorem.evaluate is not None:
        check.function("theorem.evaluate", theorem.evaluate)
    check.text("theorem.loose_reason", theorem.loose_reason, empty=True)
    if theorem.id in _REGISTRY:
        raise ValueError(f"theorem id {theorem.id!r} is registered twice")
    _REGISTRY[theorem.id] = theorem
    return theorem



def theorem_seed(seed: int, theorem_id: str) -> np.random.SeedSequence:
    """Seed of one theorem's instances in ``pgexact verify``: depends on the root seed and the id only (not on
    the registry's order), so a row is reproducible on its own and does not change when theorems are added."""
    return np.random.SeedSequence([seed, zlib.crc32(theorem_id.encode())])


def _load() -> None:
    for name in THEOREM_MODULES:
        importlib.import_module(f"pgexact.theorems.{name}")


def all_theorems() -> list[Theorem]:
    """Every registered theorem, in registration order."""
    _load()
    return list(_REGISTRY.values())


class UnknownTheoremError(KeyError, ValueError):
    """No theorem has the requested id: a ``KeyError`` (a failed lookup) and a ``ValueError`` (a bad argument)."""

    def __str__(self) -> str:  # the message as written, not KeyError's repr of it
        return str(self.args[0]) if self.args else ""


def get(theorem_id: str) -> Theorem:
    """The theorem with this id.

    Raises
    ------
    TypeError
        ``theorem_id`` is not a string.
    UnknownTheoremError
        (a ``KeyError`` and a ``ValueError``) no theorem has this id; the message lists the valid ids.
    """
    check.text("theorem_id", theorem_id)
    _load()
    try:
        return _REGISTRY[theorem_id]
    except KeyError:
        raise UnknownTheoremError(
            f"theorem_id {theorem_id!r} is not a registered theorem; valid ids: {', '.join(sorted(_REGISTRY))}"
        ) from None
