"""Deterministic, all-or-nothing rendering of the figure registry."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterable

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FORMATS = ("png", "svg", "pdf")

#: rcParams for every figure: readable on slides, and byte-identical output run to run.
RC = {
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "legend.fontsize": 8.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
    "savefig.dpi": 130,
    # no "savefig.bbox": "tight": the constrained layout already fits the margins, and a tight
    # bounding box costs a second full draw of every figure (about a fifth of the render time)
    "svg.hashsalt": "pgexact",  # fixed ids in SVG output
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
    "path.simplify": True,
}

#: Metadata that removes dates and version strings, so files do not change between runs.
METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
}


def _check_out_dir(out_dir: str | os.PathLike[str]) -> tuple[Path, Path | None]:
    """Resolve ``out_dir``; return it and the topmost missing ancestor to create (or None).

    Raise a clear ``OSError`` (``NotADirectoryError`` / ``PermissionError``) if it is unusable.
    """
    out = Path(out_dir).expanduser()
    if out.exists():
        if not out.is_dir():
            raise NotADirectoryError(f"output directory {str(out)!r} exists and is not a directory")
        if not os.access(out, os.W_OK | os.X_OK):
            raise PermissionError(f"output directory {str(out)!r} is not writable; nothing was written")
        return out, None
    top, parent = out, out.parent
    while not parent.exists() and parent != parent.parent:
        top, parent = parent, parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(
            f"output directory {str(out)!r} does not exist and cannot be created "
            f"({str(parent)!r} is not a writable directory); nothing was written"
        )
    return out, top


def render_specs(specs: Iterable, out_dir: str | os.PathLike[str], fmt: str, progress: bool) -> list[Path]:
    """Render ``specs`` into ``out_dir`` atomically: into a temporary directory first, then moved."""
    from tqdm import tqdm

    specs = list(specs)
    out, created_top = _check_out_dir(out_dir)
    try:
        if created_top is not None:
            out.mkdir(parents=True)
        staging = Path(tempfile.mkdtemp(prefix=".pgexact-figures-", dir=out))
    except OSError as exc:
        if created_top is not None:
            shutil.rmtree(created_top, ignore_errors=True)
        raise PermissionError(f"output directory {str(out)!r} cannot be written ({exc}); nothing was written") from exc
    try:
        staged = []
        bar = tqdm(specs, desc="figures", unit="fig", disable=not progress, file=sys.stderr)
        with matplotlib.rc_context(RC):
            for spec in bar:
                bar.set_postfix_str(spec.name)
                fig = Figure(figsize=spec.figsize, layout="constrained")
                FigureCanvasAgg(fig)
                spec.make(fig)
                path = staging / f"{spec.name}.{fmt}"
                fig.savefig(path, format=fmt, metadata=METADATA[fmt])
                staged.append(path)
        finals = []
        for path in staged:
            final = out / path.name
            os.replace(path, final)
            finals.append(final)
        return finals
    except BaseException:
        if created_top is not None:
            shutil.rmtree(created_top, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
