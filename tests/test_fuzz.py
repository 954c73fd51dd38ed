"""Fuzz every public function and class with malformed and extreme input.

The list of what is fuzzed is generated from the ``__all__`` of every public module (walked with
``pkgutil``), so a new public name cannot escape. Each argument is drawn either from a pool of
*valid* values matched to the parameter's name (a small MDP, a policy and a θ of matching sizes,
trajectories, an LQR, ...) or from a pool of malformed and extreme values (None, strings, NaN,
±inf, huge or negative sizes, ragged lists, wrong shapes, ...), so that calls get past the first
check and reach the deeper ones.

Accepted outcomes of a call:

- a result with no NaN in it (every argument that reaches a computation is finite, so a NaN is
  never the true value);
- ``ValueError``, ``TypeError`` or a :mod:`pgexact.errors` exception whose message names one of the
  callable's parameters (as the caller spells it) or the callable itself, never an internal
  variable, and is not a traceback dump.

Result records (frozen dataclasses such as ``Evaluation``) may store a NaN they were given, but
their constructors obey the same rules on exceptions. Protocols are not instantiable by design and
are skipped.

Everything else fails the test: any other exception, a warning escaping from numpy or scipy
(warnings are turned into errors here), a NaN in the result, or a call running longer than
:data:`CALL_SECONDS` (a hang).

The same rule is applied to the instance methods and properties of every public class, called on
valid live objects (:func:`_live`), and to the torch and JAX adapters under ``torch.func.vmap`` /
``grad``, ``torch.compile``, ``jax.vmap`` / ``grad`` / ``jit``.

The CI profile (``CI=true``) is derandomized and runs :data:`TOTAL_CASES` cases in all.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import signal
import warnings
from dataclasses import fields, is_dataclass
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import pgexact
from pgexact import errors
from pgexact._public import public_modules

#: Cases over the whole public API in one run (split evenly over the functions and the instance
#: methods). 7,000 keeps the file's CI time at what 10,000 over the functions alone took, with the
#: instance methods and the adapters under transforms added (measured on the CI profile).
TOTAL_CASES = 7_000
#: A single call running longer than this is a hang.
CALL_SECONDS = 5.0


# --------------------------------------------------------------------------- the public API
def public_callables() -> dict[str, Callable[..., Any]]:
    """``"module.name" -> object`` for every callable in an ``__all__``, each object once."""
    out: dict[str, Callable[..., Any]] = {}
    seen: set[int] = set()
    for module in public_modules():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if not callable(obj) or id(obj) in seen:
                continue
            seen.add(id(obj))
            out[f"{module.__name__}.{name}"] = obj
    return out


def test_every_public_module_has_all() -> None:
    missing = [m.__name__ for m in public_modules() if not hasattr(m, "__all__")]
    assert not missing, f"public modules without __all__ (the fuzzer cannot see them): {missing}"


# --------------------------------------------------------------------------- the world
def _world() -> dict[str, list[Any]]:
    """Valid values by parameter name, all of matching sizes (S = 3, A = 2)."""
    from pgexact import estimators, lqr, mdps, updates

    rng = np.random.default_rng(0)
    disc = mdps.random_mdp(3, 2, gamma=0.9, seed=0)
    fin = mdps.random_mdp(3, 2, gamma=1.0, horizon=3, seed=1)
    tab = pgexact.TabularSoftmax(3, 2)
    lin = pgexact.LinearSoftmax(rng.standard_normal((3, 2, 2)))
    theta = 0.5 * rng.standard_normal(6)
    pi = tab.probs(theta)
    pi2 = tab.probs(-theta)
    tr_fin = pgexact.rollout(fin, pi, 6, seed=0)
    tr_geo = pgexact.rollout(disc, pi, 6, seed=0, geometric=True)
    system = lqr.LQR(A=[[1.0, 0.2], [0.0, 0.9]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]],
                     Sigma0=np.eye(2), gamma=0.9, noise_cov=0.01 * np.eye(2))
    gain = np.array([[0.2, 0.5]])
    gaussian = lqr.LinearGaussian(2, 1, noise_cov=[[0.04]])
    source = updates.ExactSource(disc, tab)
    values = {
        "mdp": [disc, fin],
        "policy": [tab, lin, gaussian],
        "theta": [theta, np.zeros(6), np.zeros(2), gain.reshape(-1)],
        "pi": [pi, pi2, (tab, theta)],
        "p": [pi], "q": [pi2], "pi_old": [pi], "pi_new": [pi2],
        "trajs": [tr_fin, tr_geo], "trajectories": [tr_fin, tr_geo], "samples": [tr_fin, tr_geo],
        "V": [np.zeros(3), rng.standard_normal(3)], "A": [rng.standard_normal((3, 2))],
        "Q": [rng.standard_normal((3, 2))], "b": [0.5, np.zeros(3)],
        "weights": [np.full(3, 1 / 3)], "v": [np.ones(6)],
        "gamma": [0.9, 0.5], "lam": [0.9, 0.0, 1.0], "n": [1, 2], "horizon": [3, None], "T": [3],
        "seed": [0, 1], "rng": [np.random.default_rng(0)], "delta": [0.01], "lr": [0.1],
        "clip": [0.2], "tol": [1e-8], "alpha": [0.1], "n_episodes": [1, 5],
        "n_states": [3], "n_actions": [2], "n_iterations": [1, 2], "instances": [1],
        "lqr": [system], "K": [gain], "noise_cov": [[[0.04]]], "source": [source],
        "features": [rng.standard_normal((3, 2, 2))], "actions": [np.array([0, 1, 1])],
        "estimator": [estimators.reinforce], "executor": [None],
    }
    # arguments of the public classes' methods (test_fuzz_public_method)
    values.update({
        "x": [np.ones(2), rng.standard_normal((4, 2))], "u": [np.ones(1), rng.standard_normal((4, 1))],
        "t": [0, 1], "g": [np.ones(1), rng.standard_normal((4, 1))], "what": ["Sigma0"],
        "Sigma0": [np.eye(2)], "log_std": [None, np.zeros(1)],
        "values": [rng.standard_normal(3), np.ones(tr_fin.steps.reward.shape[0])],
        "x_steps": [np.ones(tr_fin.steps.reward.shape[0])], "factor": [0.9, 1.0],
        "parts": [[tr_fin, tr_fin]], "index": [np.array([0, 1]), np.arange(3)], "scale": [1.0, 0.5],
        "probs": [pi], "codes": [None], "compiled": [False], "states": [np.zeros((4, 2))],
        "rows": [np.array([0, 2])], "with_controls": [False, True], "action": [0, 1],
    })
    values["x"] += values.pop("x_steps")
    for name in ("theta_old", "theta_new", "theta_p", "theta_q"):
        values[name] = values["theta"]
    return values


def _malformed() -> list[Any]:
    return [
        None, "x", True, -1, 0, 2, 10**12, -0.5, math.nan, math.inf, -math.inf, 1e308, 1j,
        [], [[]], [[1, 2], [3]], {"a": 1}, object(),
        np.array([]), np.full((3, 2), np.nan), np.zeros((3, 2)), np.full((3, 2), 1e300),
        np.ones((3, 2, 3)), -np.ones(6), np.full(6, 1e16), np.array(["a", "b"]), np.ones(7),
    ]


try:  # pgexact.jax requires JAX's float64 mode (documented; RuntimeError otherwise, see test_jax.py)
    import jax

    jax.config.update("jax_enable_x64", True)
except ImportError:  # pragma: no cover - the optional extra is absent
    pass

WORLD = _world()
MALFORMED = _malformed()


def _argument(name: str) -> st.SearchStrategy[Any]:
    valid = WORLD.get(name)
    bad = st.sampled_from(MALFORMED)
    if not valid:
        return bad
    return st.one_of(st.sampled_from(valid), st.sampled_from(valid), bad)


# --------------------------------------------------------------------------- the oracle
class Hang(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` swallows it."""


def _alarm(signum: int, frame: Any) -> None:
    raise Hang()


def _has_nan(value: Any, depth: int = 0) -> bool:
    if depth > 3:
        return False
    if isinstance(value, (float, np.floating)):
        return bool(np.isnan(value))
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "fc" and bool(np.isnan(value).any())
    if isinstance(value, (list, tuple)):
        return any(_has_nan(v, depth + 1) for v in value[:50])
    if is_dataclass(value) and not isinstance(value, type):
        return any(_has_nan(getattr(value, f.name, None), depth + 1) for f in fields(value))
    return False


ACCEPTED = (ValueError, TypeError, errors.NumericalError)


def _any_nan(kwargs: dict[str, Any]) -> bool:
    return any(_has_nan(v) for v in kwargs.values())


def call_and_judge(
    label: str, fn: Callable[..., Any], kwargs: dict[str, Any], names: list[str], record: bool = False
) -> None:
    """Call ``fn(**kwargs)`` and fail unless the outcome is one of the accepted ones.

    ``names`` are the parameter names an error message may cite; ``record`` relaxes the NaN rule
    for result records, which store what they are given.
    """
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CALL_SECONDS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            # underflow to a subnormal or 0 is IEEE's correctly rounded result, silent under numpy's
            # defaults (no user sees it) and done on purpose inside scipy (nextafter in solve_ivp)
            with np.errstate(all="raise", under="ignore"):
                result = fn(**kwargs)
    except Hang:
        pytest.fail(f"{label}({_show(kwargs)}) ran longer than {CALL_SECONDS} s")
    except ACCEPTED as exc:
        message = str(exc).lower()
        if "traceback (most recent call last)" in message:  # a dump re-raised (jax's callbacks)
            pytest.fail(f"{label}({_show(kwargs)}) raised {type(exc).__name__} whose message is a "
                        f"traceback: {message[:300]!r}")
        # a ``name`` argument is how the caller calls the checked value: messages use it instead
        called = [kwargs["name"]] if isinstance(kwargs.get("name"), str) and kwargs["name"] else []
        if not any(n.lower() in message for n in names + called + [label.rsplit(".", 1)[-1]]):
            pytest.fail(
                f"{label}({_show(kwargs)}) raised {type(exc).__name__}({message!r}), "
                f"which names none of the arguments passed ({', '.join(kwargs) or 'none'})"
            )
        return
    except Exception as exc:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{label}({_show(kwargs)}) raised {type(exc).__name__}: {exc}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    if _has_nan(result) and not (record and _any_nan(kwargs)):
        pytest.fail(f"{label}({_show(kwargs)}) returned NaN")


def _show(kwargs: dict[str, Any]) -> str:
    def short(v: Any) -> str:
        r = repr(v).replace("\n", " ")
        return r if len(r) < 60 else r[:57] + "..."

    return ", ".join(f"{k}={short(v)}" for k, v in kwargs.items())


# --------------------------------------------------------------------------- the cases
def _parameters(fn: Callable[..., Any]) -> list[inspect.Parameter] | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return [
        p for p in sig.parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"
    ]


@st.composite
def _kwargs(draw: Any, params: list[inspect.Parameter]) -> dict[str, Any]:
    out = {}
    for p in params:
        if p.default is not inspect.Parameter.empty and draw(st.booleans()):
            continue  # leave an optional argument at its default half the time
        out[p.name] = draw(_argument(p.name))
    return out


#: Callables excluded from argument fuzzing, each with the reason and where it is covered instead.
EXCLUDED = {
    "pgexact.cli.main": "takes an argv list: fuzzed by test_cli_argv below",
    "pgexact.cli.run_verify": "runs the whole registry: covered by test_cli_argv (--instances, --only)",
    "pgexact.figures.render": "draws every figure by default (tens of seconds) and writes files into the "
    "working directory: its argument checks are covered by test_figures.py",
    "pgexact.conformance.audit": "runs a driver over 200 batches and 32 candidate conventions by default "
    "(seconds): its argument checks are covered by test_conformance.py",
    "pgexact.conformance.audit.audit": "the same function as pgexact.conformance.audit",
    "pgexact.conformance.reference.collect": "simulates every batch of a run (seconds at the sizes the "
    "fuzz draws): its argument checks are covered by test_conformance.py",
}

API = public_callables()
FUZZED = sorted(k for k in API if k not in EXCLUDED)
#: Cases per callable: functions and instance methods share :data:`TOTAL_CASES` (set below, once the
#: methods are listed).
PER_CALLABLE = 10


@pytest.fixture
def registry_snapshot():
    """Theorems registered by a fuzzed call are removed afterwards."""
    from pgexact.theorems import registry

    registry.all_theorems()
    before = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(before)


@pytest.mark.parametrize("label", FUZZED)
def test_fuzz_public_callable(label: str, registry_snapshot: None) -> None:
    fn = API[label]
    if getattr(fn, "_is_protocol", False):
        pytest.skip(f"{label} is a Protocol: not instantiable by design")
    params = _parameters(fn)
    if params is None:
        pytest.skip(f"{label} has no inspectable signature")
    names = [p.name for p in params]
    record = isinstance(fn, type) and is_dataclass(fn)

    @settings(max_examples=PER_CALLABLE, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(kwargs=_kwargs(params))
    def run(kwargs: dict[str, Any]) -> None:
        call_and_judge(label, fn, kwargs, names, record)

    run()


# --------------------------------------------------------------------------- instance methods
def _live() -> dict[type, list[Callable[[], Any]]]:
    """Factories of valid live objects, by public class.

    Objects are built once and shared by the examples (their methods do not change them), except
    the environment, which ``step`` changes: its factory returns a fresh one. They come from the
    same world as :func:`_world`: S = 3, A = 2, θ of size 6, an LQR with n = 2, m = 1. Edge-valid objects are included on purpose (an estimate of one episode, a
    finite-horizon evaluation), since that is where a method meets its corner cases.
    """
    from pgexact import average, conformance, errata, estimators, exact, figures, lqr, mdps, sampling, theorems
    from pgexact import updates
    from pgexact.conformance import reference
    from pgexact.conformance import stats as cstats

    audit_module = importlib.import_module("pgexact.conformance.audit")  # the package's `audit` is the function

    w = WORLD
    disc, fin = w["mdp"]
    tab, lin, gaussian = w["policy"]
    theta = w["theta"][0]
    pi, pi2 = w["pi"][0], w["pi"][1]
    tr_fin, tr_geo = w["trajs"]
    system, gain = w["lqr"][0], w["K"][0]
    theta_k = gain.reshape(-1)
    source = w["source"][0]
    short = system.with_horizon(3)
    det = lqr.LinearGaussian(2, 1)
    sampled = updates.SampledSource(disc, tab, 20, seed=0)
    estimate = estimators.reinforce(tr_fin, tab, theta)
    one = estimators.reinforce(pgexact.rollout(fin, pi, 1, seed=3), tab, theta)
    theorem = theorems.get("pdl.discounted")
    erratum = errata.get("ddpg-gradient")
    avg_source = updates.AverageSource(disc, tab)

    def uniform(x: np.ndarray, u: np.ndarray) -> np.ndarray:
        return np.full((x.shape[0], u.shape[0]), 1.0 / u.shape[0])

    grid = mdps.gridworld(2, 2, gamma=0.9)
    logits = np.zeros((4, 4))
    convention = conformance.Convention(gamma=0.9, lam=0.8, time_limit=3, n_envs=2, n_steps=4)
    block_means = np.random.default_rng(0).normal(size=(40, 2, 2))

    @functools.cache
    def report() -> Any:  # the reference driver over 20 batches in 5 blocks (0.2 s, once)
        return conformance.audit("reference", grid, time_limit=3, n_envs=2, n_steps=4, n_batches=20,
                                 n_blocks=5, seed=0)
    out = {
        pgexact.FiniteMDP: [lambda: disc, lambda: fin],
        pgexact.policies.LinearSoftmax: [lambda: lin],
        pgexact.policies.TabularSoftmax: [lambda: tab],
        lqr.LQR: [lambda: system, lambda: short],
        lqr.LinearGaussian: [lambda: gaussian, lambda: det],
        pgexact.sampling.Trajectories: [lambda: tr_fin, lambda: tr_geo],
        pgexact.updates.ExactSource: [lambda: source],
        pgexact.updates.SampledSource: [lambda: sampled],
        pgexact.updates.ExactOracle: [lambda: source.at(theta)],
        pgexact.updates.SampledOracle: [lambda: sampled.at(theta, seed=0)],
        pgexact.updates.SurrogateBatch: [lambda: source.at(theta).batch],
        pgexact.updates.NPGStep: [lambda: updates.npg_step(source, theta, 0.01)],
        pgexact.updates.PGStep: [lambda: updates.pg_step(source, theta, 0.1)],
        pgexact.updates.PPOStep: [lambda: updates.ppo_update(source, theta, 0.2, lr=0.1, epochs=1)],
        pgexact.updates.TRPOStep: [lambda: updates.trpo_step(source, theta, 0.01)],
        pgexact.updates.TrainingHistory: [lambda: updates.train(updates.pg_step, source, theta, 2, lr=0.1)],
        pgexact.updates.PolicyIterationResult: [lambda: updates.policy_iteration(disc)],
        pgexact.updates.ValueIterationResult: [lambda: updates.value_iteration(disc)],
        pgexact.updates.SoftEvaluation: [lambda: updates.soft_evaluate(disc, pi, 0.1)],
        pgexact.updates.SoftOptimum: [lambda: updates.soft_value_iteration(disc, 0.1)],
        pgexact.updates.SoftPolicyIterationResult: [lambda: updates.soft_policy_iteration(disc, 0.1)],
        pgexact.average.AverageEvaluation: [lambda: average.evaluate(disc, pi)],
        pgexact.errata.Erratum: [lambda: erratum],
        pgexact.errata.Witness: [lambda: erratum.witness()],
        pgexact.errata.Location: [lambda: erratum.locations[0]],
        pgexact.estimators.Estimate: [lambda: estimate, lambda: one],
        pgexact.estimators.EstimatorMoments: [
            lambda: estimators.estimator_moments(fin, tab, theta, "reinforce")],
        pgexact.estimators.MeanTest: [lambda: estimators.mean_test(  # mean_test needs >= 160 episodes
            estimators.reinforce(pgexact.rollout(fin, pi, 200, seed=4), tab, theta), expected=np.zeros(6))],
        pgexact.estimators.OptimalBaselines: [lambda: estimators.optimal_baselines(fin, tab, theta)],
        pgexact.estimators.StreamedMean: [
            lambda: estimators.streaming_mean(estimators.reinforce, [tr_fin, tr_fin], tab, theta)],
        pgexact.exact.Evaluation: [lambda: exact.evaluate(disc, pi), lambda: exact.evaluate(fin, pi)],
        pgexact.exact.PerformanceDifference: [lambda: exact.performance_difference(disc, pi, pi2)],
        pgexact.exact.PolicyGradientForms: [lambda: exact.policy_gradient_forms(disc, tab, theta)],
        pgexact.exact.TrajectoryEnumeration: [lambda: exact.reinforce_by_enumeration(fin, tab, theta)],
        pgexact.figures.FigureSpec: [lambda: figures.REGISTRY[figures.FIGURES[0]]],
        pgexact.lqr.LQREvaluation: [lambda: lqr.evaluate(system, gain, noise_cov=[[0.04]]),
                                      lambda: lqr.evaluate(short, gain, noise_cov=[[0.04]])],
        pgexact.lqr.OptimalControl: [lambda: lqr.riccati(system), lambda: lqr.riccati(short)],
        pgexact.lqr.LQRTrajectories: [lambda: lqr.rollout(short, gaussian, theta_k, 4, seed=0)],
        pgexact.lqr.SoftEvaluation: [lambda: lqr.soft_evaluate(system, gain, [[0.04]], 0.1)],
        pgexact.lqr.SoftOptimal: [lambda: lqr.soft_optimal(system, 0.1)],
        pgexact.mdps.ShortCorridor: [lambda: mdps.short_corridor(horizon=5)],
        pgexact.mdps.DiscretizedControl: [lambda: mdps.pendulum(3, 3, 2, gamma=0.9)],
        pgexact.sampling.AliasTable: [lambda: sampling.AliasTable.from_probs(pi)],
        pgexact.sampling.StepView: [lambda: tr_fin.steps],
        pgexact.theorems.Theorem: [lambda: theorem],
        pgexact.theorems.Control: [lambda: next(iter(theorem.controls))],
        pgexact.theorems.Outcome: [lambda: theorem.run(theorem.instance(np.random.default_rng(0)))[0]],
        pgexact.average.AverageOptimum: [lambda: average.optimal(disc)],
        pgexact.average.MultichainEvaluation: [lambda: average.multichain_evaluate(disc, pi)],
        pgexact.updates.AverageSource: [lambda: avg_source],
        pgexact.updates.AverageOracle: [lambda: avg_source.at(theta)],
        pgexact.updates.NewtonStep: [lambda: updates.newton_step(source, theta, damping=1.0),
                                     lambda: updates.cubic_newton_step(source, theta, 10.0)],
        pgexact.exact.DiscretizationError: [lambda: exact.discretization_error(
            mdps.pendulum, uniform, (4, 3), ratio=2.0, order=2.0, gamma=0.9, n_torques=2)],
        # conformance on a 2 x 2 gridworld (S = 4, A = 4), batches of 2 environments x 4 steps
        conformance.Convention: [lambda: convention, lambda: conformance.PRESETS[next(iter(conformance.PRESETS))]],
        conformance.DriverRun: [lambda: reference.collect(grid, logits, np.zeros(4), time_limit=3, n_envs=2,
                                                          n_steps=4, n_batches=3, seed=0)],
        conformance.TransitionBatch: [lambda: next(reference.simulate(
            grid, np.full((4, 4), 0.25), time_limit=3, n_envs=2, n_steps=4, n_batches=1, seed=0))],
        conformance.ExpectedUpdate: [lambda: conformance.expected_update(grid, np.full((4, 4), 0.25), convention,
                                                                         batch=0)],
        conformance.AuditReport: [lambda: report()],
        audit_module.ConventionVerdict: [lambda: report().verdicts[0]],
        conformance.BatchCovariance: [lambda: conformance.batch_covariance(grid, logits, convention)],
        conformance.stats.Verdict: [lambda: cstats.mean_test(block_means, np.zeros((2, 2))),
                                    lambda: cstats.parallel_test(block_means + 1.0, np.ones((2, 2)))],
    }
    try:
        from pgexact import gym as pgym

        def env() -> Any:  # stepping before reset() is gymnasium's RuntimeError, by its contract
            made = pgym.make_env(disc)
            made.reset(seed=0)
            return made

    except ImportError:  # pragma: no cover - the optional extra is absent
        env = None
    shared = {cls: [functools.cache(make) for make in makers] for cls, makers in out.items()}
    if env is not None:
        shared[pgym.FiniteMDPEnv] = [env]
    return shared


def public_classes() -> dict[str, type]:
    """``"module.Name" -> class`` for every class in an ``__all__`` (labelled as in ``API``)."""
    return {label: obj for label, obj in API.items() if isinstance(obj, type)}


#: Public classes with no live object, each with the reason.
NOT_LIVE = {
    "Protocol": "a Protocol is not instantiable by design",
    "exception": "exceptions are raised, not called: their messages are judged by every other case",
    "base": "an abstract base class: its methods are fuzzed on the concrete subclasses' objects",
}


#: Public classes whose live objects are still to be written (their methods are not fuzzed yet):
#: listed by name so that the gap is visible and a further class cannot join it unnoticed.
LIVE_TO_WRITE: set[str] = set()


def _why_not_live(cls: type) -> str | None:
    if getattr(cls, "_is_protocol", False):
        return "Protocol"
    if issubclass(cls, BaseException):
        return "exception"
    if any(issubclass(other, cls) and other is not cls for other in CLASSES.values()):
        return "base"
    return None


def public_members(cls: type) -> dict[str, str]:
    """``name -> "method" | "property"`` for the public members that pgexact itself defines."""
    out: dict[str, str] = {}
    for name in dir(cls):
        if name.startswith("_"):
            continue
        owner = next((k for k in cls.__mro__ if name in vars(k)), None)
        if owner is None or not owner.__module__.startswith("pgexact"):
            continue  # inherited from object, a dataclass or a third party (gymnasium.Env)
        raw = vars(owner)[name]
        if isinstance(raw, property):
            out[name] = "property"
        elif callable(raw) or isinstance(raw, (classmethod, staticmethod)):
            if not isinstance(raw, type):
                out[name] = "method"
    return out


API_CLASSES = public_classes()
CLASSES = API_CLASSES
LIVE = _live()
MEMBERS = sorted(
    f"{label}.{name}"
    for label, cls in API_CLASSES.items() if cls in LIVE
    for name in public_members(cls)
)


PER_CALLABLE = max(10, -(-TOTAL_CASES // max(len(FUZZED) + len(MEMBERS), 1)))


#: Arguments of a method held fixed (not fuzzed), each with the reason.
FIXED = {
    "pgexact.sampling.AliasTable.from_probs": (
        {"compiled": False},
        "compiled=True compiles the numba kernel (seconds on a first call, over CALL_SECONDS): "
        "tests/test_compiled_kernel.py covers it"),
}


def test_every_public_class_has_live_objects_or_a_reason() -> None:
    missing = [label for label, cls in API_CLASSES.items()
               if cls not in LIVE and _why_not_live(cls) is None and label not in LIVE_TO_WRITE]
    assert not missing, f"public classes with no live object to fuzz their methods on: {missing}"
    unknown = [cls for cls in LIVE if cls not in API_CLASSES.values()]
    assert not unknown, f"live objects of classes that are not public: {unknown}"
    assert len(MEMBERS) >= 100  # the scan reaches the methods and properties
    assert set(KNOWN_FAILURES) <= set(MEMBERS), "a known failure that is not a fuzzed member"


def test_live_objects_are_valid() -> None:
    for cls, factories in LIVE.items():
        for make in factories:
            assert type(make()) is cls, cls


#: Methods that still fail the rule, each with the failure: expected failures (reported as XFAIL, and
#: as XPASS once fixed, when the entry is to be removed), never skipped.
KNOWN_FAILURES: dict[str, str] = {}


@pytest.mark.parametrize("member", [
    pytest.param(m, marks=pytest.mark.xfail(reason=KNOWN_FAILURES[m], strict=False))
    if m in KNOWN_FAILURES else m
    for m in MEMBERS
])
def test_fuzz_public_method(member: str, registry_snapshot: None) -> None:
    label, name = member.rsplit(".", 1)
    cls = API_CLASSES[label]
    kind = public_members(cls)[name]
    factories = LIVE[cls]
    if kind == "property":
        for make in factories:
            obj = make()
            call_and_judge(member, lambda obj=obj: getattr(obj, name), {}, [name, cls.__name__])
        return
    params = _parameters(getattr(factories[0](), name))
    if params is None:  # pragma: no cover - every pgexact method has a signature
        pytest.skip(f"{member} has no inspectable signature")
    fixed = FIXED.get(member, ({}, ""))[0]
    params = [p for p in params if p.name not in fixed]
    names = [p.name for p in params] + [cls.__name__]

    # a known failure is reported as found, not shrunk (shrinking would spend seconds on each run)
    phases = [Phase.explicit, Phase.generate] if member in KNOWN_FAILURES else list(Phase)

    @settings(max_examples=PER_CALLABLE, deadline=None, database=None, phases=phases,
              suppress_health_check=list(HealthCheck))
    @given(which=st.integers(0, len(factories) - 1), kwargs=_kwargs(params))
    def run(which: int, kwargs: dict[str, Any]) -> None:
        method = getattr(factories[which](), name)
        call_and_judge(member, method, {**kwargs, **fixed}, names)

    run()


def test_failures_the_live_objects_found_stay_fixed() -> None:
    """Methods of the live objects name the argument at fault."""
    from pgexact import conformance, updates

    report = LIVE[conformance.AuditReport][0]()
    with pytest.raises(TypeError, match=r"^label must be a str \(a Convention.label\(\)\), got NoneType"):
        report.verdict(None)
    with pytest.raises(TypeError, match=r"^label must be a str"):
        report.verdict(np.array([]))  # not numpy's "truth value of an empty array is ambiguous"
    with pytest.raises(ValueError, match=r"^label 'nope' is not a candidate convention; candidates: uniform/"):
        report.verdict("nope")  # a ValueError naming label, not a KeyError
    label = report.verdicts[0].convention.label()
    assert report.verdict(label) is report.verdicts[0]
    source = LIVE[updates.AverageSource][0]()
    theta = WORLD["theta"][0]
    for bad, kind in ((None, TypeError), (np.zeros(2), ValueError), (np.full(6, np.nan), ValueError)):
        with pytest.raises(kind, match=r"^theta_old"):  # the argument at fault, not "theta"
            source.exact_kl(bad, theta)
        with pytest.raises(kind, match=r"^theta_new"):
            source.exact_kl(theta, bad)
    assert source.exact_kl(theta, theta) == pytest.approx(0.0, abs=1e-15)


def test_alias_table_names_ragged_codes() -> None:
    # ragged codes: numpy's "inhomogeneous shape" error names no argument, this one does
    from pgexact.sampling import AliasTable

    with pytest.raises(TypeError, match=r"^codes must be an integer array of shape \(K,\)=\(2,\), got a ragged list"):
        AliasTable.from_probs([[0.5, 0.5]], codes=[[1, 2], [3]])
    table = AliasTable.from_probs([[0.5, 0.5]], codes=[4, 7])
    assert table.sample(np.zeros(2, dtype=int), np.array([0.25, 0.75])).tolist() == [4, 7]


# --------------------------------------------------------------------------- adapters under transforms
#: The adapters' functions of (mdp, pi), each fuzzed under every transform of its framework.
ADAPTER_FUNCTIONS = ("expected_return", "values", "action_values", "advantages", "occupancy")


def _adapter_inputs() -> dict[str, np.ndarray]:
    """Policy matrices for the (S = 3, A = 2) world MDP: one valid, the others malformed."""
    pi = WORLD["pi"][0]
    short = pi.copy()
    short[1] *= 0.9
    negative = pi.copy()
    negative[2] = [1.5, -0.5]
    nan = pi.copy()
    nan[0, 0] = np.nan
    return {"valid": pi, "nan": nan, "rows not summing to 1": short, "negative": negative,
            "wrong shape": np.full((2, 2), 0.5)}


ADAPTER_INPUTS = _adapter_inputs()


def _transforms(framework: str) -> dict[str, Callable[[Callable[[Any], Any]], Callable[[Any], Any]]]:
    """``name -> wrap``: ``wrap(f)`` is a function of one (S, A) array ``pi``, the transform applied to f.

    ``vmap`` runs f on a batch of two copies of the input; ``grad`` differentiates the sum of f's
    output; ``compile`` / ``jit`` trace f (torch.compile with the eager backend: Dynamo's tracing,
    graph breaks included, without Inductor's code generation, which takes tens of seconds).
    """
    if framework == "torch":
        import torch

        def as_tensor(x: Any) -> Any:
            return torch.tensor(np.array(x, dtype=np.float64))  # a copy: pi may be read-only

        def out(y: Any) -> np.ndarray:
            return y.detach().cpu().numpy()

        return {
            "torch.func.vmap": lambda f: lambda pi: out(
                torch.func.vmap(f)(torch.stack([as_tensor(pi), as_tensor(pi)]))),
            "torch.func.grad": lambda f: lambda pi: out(torch.func.grad(lambda p: f(p).sum())(as_tensor(pi))),
            "torch.compile": lambda f: lambda pi: out(torch.compile(f, backend="eager")(as_tensor(pi))),
        }
    import jax
    import jax.numpy as jnp

    return {
        "jax.vmap": lambda f: lambda pi: np.asarray(jax.vmap(f)(jnp.stack([jnp.asarray(pi)] * 2))),
        "jax.grad": lambda f: lambda pi: np.asarray(jax.grad(lambda p: f(p).sum())(jnp.asarray(pi))),
        "jax.jit": lambda f: lambda pi: np.asarray(jax.jit(f)(jnp.asarray(pi))),
    }


def _adapter_cases() -> list[tuple[str, str, str]]:
    import importlib.util

    cases = []
    for framework in ("torch", "jax"):
        if importlib.util.find_spec(framework) is None:  # pragma: no cover - optional extra absent
            continue
        for transform in _transforms(framework):
            for function in ADAPTER_FUNCTIONS:
                cases.append((framework, transform, function))
    return cases


#: Adapter cases that still fail the rule, each with the failure (expected failures, never skipped).
#: Under ``jax.jit`` the values of ``pi`` exist only when the compiled program runs, so the check runs
#: in the solve's host callback, and JAX turns any exception raised there into its own error with a
#: traceback dump as message: ``jax.errors.JaxRuntimeError`` (a RuntimeError), or in some call orders
#: a plain ``ValueError('INTERNAL: CpuCallback error calling callback: Traceback ...')`` (jax's C++
#: fast path, jax-ml/jax#34083); the original exception is
#: not chained (jax-ml/jax#26102). ``checkify.check`` would raise a ValueError, but only inside
#: ``checkify.checkify``: under a plain ``jax.jit`` it refuses to trace. Documented in pgexact.jax.
ADAPTER_KNOWN_FAILURES: dict[tuple[str, str], str] = {
    ("jax.jit", _f): "an invalid pi under jax.jit: JaxRuntimeError (or ValueError) 'INTERNAL: CpuCallback "
    "error calling callback: Traceback ... ValueError: pi[1, :] sums to ...', JAX's wrapping of the host "
    "callback's ValueError, which JAX does not let a library re-raise (see above)"
    for _f in ADAPTER_FUNCTIONS
}


#: Run in the default (and CI) profile; the other functions share these two's code paths (the
#: forward/backward of J, and the one evaluation whose field differs) and run under ``-m slow``.
ADAPTER_FAST = ("expected_return", "values")


def _adapter_marks(case: tuple[str, str, str]) -> list[Any]:
    marks = [] if case[2] in ADAPTER_FAST else [pytest.mark.slow]
    if case[1:] in ADAPTER_KNOWN_FAILURES:
        marks.append(pytest.mark.xfail(reason=ADAPTER_KNOWN_FAILURES[case[1:]], strict=False))
    return marks


@pytest.mark.parametrize("framework, transform, function", [
    pytest.param(*case, marks=_adapter_marks(case)) for case in _adapter_cases()
])
def test_fuzz_adapter_under_transform(framework: str, transform: str, function: str) -> None:
    """Every input, valid or not, under the transform: a correct result or an error naming ``pi``.

    On the valid input the transformed result equals the plain one (vmap: each row of the batch;
    compile / jit: the value; grad: the plain backward pass of the sum), to 1e-12 relative: the same
    closed form evaluated in the same order, up to the transform's reassociation.
    """
    import importlib

    adapter = importlib.import_module(f"pgexact.{framework}")
    mdp = WORLD["mdp"][0]
    fn = getattr(adapter, function)
    transformed = _transforms(framework)[transform](lambda p: fn(mdp, p))
    label = f"{transform}(pgexact.{framework}.{function})"
    # the valid input first, outside the warnings-as-errors of call_and_judge: the transform's own
    # lazy imports (torch._dynamo) may warn on first use, which is not the adapter's doing
    pi = ADAPTER_INPUTS["valid"]
    got = transformed(pi)
    if framework == "torch":
        import torch

        p = torch.tensor(pi, requires_grad=True)
        value = fn(mdp, p)
        plain = (torch.autograd.grad(value.sum(), p)[0] if "grad" in transform else value).detach().numpy()
    else:
        import jax

        plain = np.asarray(jax.grad(lambda q: fn(mdp, q).sum())(pi) if "grad" in transform else fn(mdp, pi))
    expected = np.stack([plain, plain]) if "vmap" in transform else plain
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
    for case, bad in ADAPTER_INPUTS.items():
        call_and_judge(label, transformed, {"pi": bad}, ["pi", function])


TOKENS = ["verify", "errata", "figures", "--instances", "1", "0", "-1", "x", "--seed", "--only",
          "pg.q_form", "nope", "--json", "--controls", "--format", "jpg", "--help", "frobnicate"]


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(argv=st.lists(st.sampled_from(TOKENS), max_size=6))
def test_cli_argv(argv: list[str]) -> None:
    """The command line ends in a clean exit status for any argv, never a traceback."""
    from pgexact.cli import main

    if argv[:1] == ["verify"] and "--only" not in argv:
        argv = argv + ["--only", "nope"]  # a full default run takes seconds; covered by test_cli.py
    if argv[:1] == ["figures"]:
        argv = argv + ["--only", "nope"]  # rendering is covered by test_figures.py

    def call() -> Any:
        try:
            return main(argv)
        except SystemExit as exc:
            return exc.code

    code = None
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CALL_SECONDS)
    try:
        code = call()
    except Hang:
        pytest.fail(f"pgexact {' '.join(argv)} ran longer than {CALL_SECONDS} s")
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"pgexact {' '.join(argv)} raised {type(exc).__name__}: {exc}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert code in (None, 0, 1, 2) or isinstance(code, str)
