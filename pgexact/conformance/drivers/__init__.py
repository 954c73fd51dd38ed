"""Drivers that run real RL libraries' own update code on a finite MDP (:func:`get_driver`).

Each driver is a module exposing ``NAME``, ``LIBRARY`` and
``collect(mdp, logits, values=None, *, time_limit, n_envs, n_steps, n_batches, seed,
**library_kwargs) -> DriverRun``; it imports its library only when it runs, so this package
imports without the optional extras.

Examples
--------
>>> from pgexact.conformance.drivers import DRIVERS, get_driver
>>> sorted(DRIVERS)[:3]
['cleanrl-ppo', 'rlax', 'sb3-a2c']
>>> DRIVERS["sb3-ppo"][2]  # the extra that installs its library
'conformance-sb3'
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

__all__ = ["DRIVERS", "available", "get_driver"]

#: Driver name -> (module in this package, the modules its library provides, the extra that installs it).
DRIVERS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "sb3-ppo": ("sb3_ppo", ("stable_baselines3", "gymnasium"), "conformance-sb3"),
    "sb3-a2c": ("sb3_a2c", ("stable_baselines3", "gymnasium"), "conformance-sb3"),
    "cleanrl-ppo": ("cleanrl_ppo", ("torch", "gymnasium"), "conformance-cleanrl"),
    "rlax": ("rlax_gae", ("rlax", "jax", "gymnasium"), "conformance-rlax"),
    "tianshou-ppo": ("tianshou_ppo", ("tianshou", "torch", "gymnasium"), "conformance-tianshou"),
    "skrl-ppo": ("skrl_ppo", ("skrl", "torch", "gymnasium"), "conformance-skrl"),
    "torchrl-ppo": ("torchrl_ppo", ("torchrl", "tensordict", "torch", "gymnasium"), "conformance-torchrl"),
}


def _check_name(name: object) -> str:
    if not isinstance(name, str) or name not in DRIVERS:
        raise ValueError(f"name must be one of the drivers {', '.join(repr(n) for n in DRIVERS)}; got {name!r}")
    return name


def _missing(name: str) -> list[str]:
    return [m for m in DRIVERS[name][1] if importlib.util.find_spec(m) is None]


def available() -> list[str]:
    """The drivers whose libraries are installed, in :data:`DRIVERS` order.

    Examples
    --------
    >>> set(available()) <= set(DRIVERS)
    True
    """
    return [n for n in DRIVERS if not _missing(n)]


def get_driver(name: str) -> ModuleType:
    """The driver module called ``name`` (its library is imported only when it runs).

    Raises
    ------
    ValueError
        ``name`` is not a driver.
    ImportError
        The driver's library is not installed; the message names the extra to install.

    Examples
    --------
    >>> get_driver("no-such-library")
    Traceback (most recent call last):
    ...
    ValueError: name must be one of the drivers 'sb3-ppo', 'sb3-a2c', 'cleanrl-ppo', 'rlax', 'tianshou-ppo', 'skrl-ppo', 'torchrl-ppo'; got 'no-such-library'
    """
    name = _check_name(name)
    module, _, extra = DRIVERS[name]
    missing = _missing(name)
    if missing:
        raise ImportError(
            f"driver {name!r} needs {', '.join(missing)}: pip install 'pgexact[{extra}]' "
            "(or 'pgexact[conformance]' for every driver)"
        )
    return importlib.import_module(f"{__name__}.{module}")
