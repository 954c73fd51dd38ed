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
  variable.

Result records (frozen dataclasses such as ``Evaluation``) may store a NaN they were given, but
their constructors obey the same rules on exceptions. Protocols are not instantiable by design and
are skipped.

Everything else fails the test: any other exception, a warning escaping from numpy or scipy
(warnings are turned into errors here), a NaN in the result, or a call running longer than
:data:`CALL_SECONDS` (a hang).

The CI profile (``CI=true``) is derandomized and runs :data:`TOTAL_CASES` cases in all.
"""

from __future__ import annotations

import inspect
import math
import signal
import warnings
from dataclasses import fields, is_dataclass
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pgexact
from pgexact import errors
from pgexact._public import public_modules

#: Cases over the whole public API in one run (split evenly over the callables).
TOTAL_CASES = 10_000
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
PER_CALLABLE = max(10, -(-TOTAL_CASES // max(len(FUZZED), 1)))


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
