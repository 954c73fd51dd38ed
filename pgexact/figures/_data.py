"""What each figure plots, recorded as arrays: the record the figure test compares on any machine.

A PNG depends on the matplotlib and FreeType versions that drew it (tick placement, text layout,
antialiasing), so pixels are compared only where the matplotlib version equals the one that drew
the committed PNGs. What a figure *plots* does not: :func:`recording` intercepts every plotting
call made on an :class:`~matplotlib.axes.Axes` or a :class:`~matplotlib.figure.Figure` while the
figures are drawn, and keeps the arguments the figure code passed — the data arrays, the labels,
titles, scales and limits — before matplotlib turns them into pixels. Calls that matplotlib makes
from inside another recorded call (``semilogy`` calling ``plot``, ``colorbar`` drawing its own
mesh) are not recorded, so the record does not depend on matplotlib's internals.

``python -m pgexact.figures._data [DIR]`` renders every figure into ``DIR`` (default
``figures``) and writes the record next to the PNGs as ``DIR/plotted.npz``, with the matplotlib
version that drew them; run it after changing a figure and commit both.
"""

from __future__ import annotations

import contextlib
import functools
import numbers
import sys
from pathlib import Path
from typing import Any, Iterator

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: File name of the record, next to the committed PNGs.
RECORD_NAME = "plotted.npz"
#: Key of the matplotlib version that drew the committed PNGs.
VERSION_KEY = "__matplotlib_version__"

#: Axes methods whose arguments are what a figure shows.
AXES_METHODS = (
    "plot", "semilogx", "semilogy", "loglog", "errorbar", "scatter", "step", "stairs", "stem",
    "bar", "barh", "hist", "fill", "fill_between", "fill_betweenx",
    "axhline", "axvline", "axhspan", "axvspan", "hlines", "vlines", "axline",
    "imshow", "pcolormesh", "pcolor", "contour", "contourf", "clabel", "quiver", "streamplot",
    "text", "annotate", "legend", "set_title", "set_xlabel", "set_ylabel",
    "set_xscale", "set_yscale", "set_xlim", "set_ylim", "set_aspect",
)
#: Figure methods likewise.
FIGURE_METHODS = ("subplots", "suptitle", "colorbar", "add_subplot")


def _value(v: Any) -> np.ndarray | None:
    """A recordable form of one argument: a float array, a string, or None (not recorded)."""
    if isinstance(v, str):
        return np.array(v)
    if isinstance(v, (bool, np.bool_)):
        return np.array(float(v))
    if isinstance(v, (numbers.Real, np.ndarray, list, tuple)):
        try:
            return np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            pass
        try:
            arr = np.asarray(v)
        except ValueError:  # ragged
            return None
        return arr if arr.dtype.kind == "U" else None  # a list of labels
    return None


class Recorder:
    """The calls recorded while figures are drawn, grouped by figure in drawing order."""

    def __init__(self) -> None:
        self.figures: list[int] = []  # id of each Figure, in the order first seen
        self.calls: list[list[tuple[str, str, dict[str, np.ndarray]]]] = []
        self._depth = 0

    def _figure_index(self, fig: Figure) -> int:
        key = id(fig)
        if key not in self.figures:
            self.figures.append(key)
            self.calls.append([])
        return self.figures.index(key)

    def record(self, owner: Axes | Figure, method: str, args: tuple, kwargs: dict) -> None:
        fig = owner if isinstance(owner, Figure) else owner.figure
        where = "fig" if owner is fig else f"ax{fig.axes.index(owner)}"
        fields: dict[str, np.ndarray] = {}
        for i, a in enumerate(args):
            v = _value(a)
            if v is not None:
                fields[f"arg{i}"] = v
        for k in sorted(kwargs):
            v = _value(kwargs[k])
            if v is not None:
                fields[k] = v
        self.calls[self._figure_index(fig)].append((where, method, fields))

    def arrays(self, names: list[str]) -> dict[str, np.ndarray]:
        """The record as ``{"figure/call.where.method.field": array}``, figures named in drawing order.

        ``call`` numbers the figure's recorded calls, ``where`` is ``ax<i>`` (the i-th axes of the
        figure) or ``fig``, ``field`` is ``arg<i>`` for positional arguments or the keyword.
        """
        if len(names) != len(self.calls):
            raise ValueError(f"{len(self.calls)} figures were drawn, {len(names)} names given")
        out: dict[str, np.ndarray] = {}
        for name, calls in zip(names, self.calls):
            for j, (where, method, fields) in enumerate(calls):
                for field, value in fields.items():
                    out[f"{name}/{j:03d}.{where}.{method}.{field}"] = value
        return out


def _wrap(cls: type, method: str, recorder: Recorder) -> tuple[Any, Any]:
    original = getattr(cls, method)

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if recorder._depth == 0:
            recorder.record(self, method, args, kwargs)
        recorder._depth += 1
        try:
            return original(self, *args, **kwargs)
        finally:
            recorder._depth -= 1

    return original, wrapper


@contextlib.contextmanager
def recording() -> Iterator[Recorder]:
    """Record the plotting calls made while the block runs (not thread-safe: patches matplotlib)."""
    recorder = Recorder()
    patched = []
    try:
        for cls, methods in ((Axes, AXES_METHODS), (Figure, FIGURE_METHODS)):
            for method in methods:
                original, wrapper = _wrap(cls, method, recorder)
                setattr(cls, method, wrapper)
                patched.append((cls, method, original))
        yield recorder
    finally:
        for cls, method, original in reversed(patched):
            setattr(cls, method, original)


def record(out_dir: str | Path = "figures") -> Path:
    """Render every figure into ``out_dir`` and write the record of what they plot beside them."""
    from . import FIGURES, render

    out = Path(out_dir)
    with recording() as rec:
        render(out_dir=out, progress=True)
    arrays = rec.arrays(list(FIGURES))
    arrays[VERSION_KEY] = np.array(matplotlib.__version__)
    path = out / RECORD_NAME
    np.savez_compressed(path, **arrays)
    return path


if __name__ == "__main__":  # pragma: no cover - the recording command
    print(record(sys.argv[1] if len(sys.argv) > 1 else "figures"))
