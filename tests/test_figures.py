"""Figures: rendering mechanism (cheap subset), determinism, bad input, all-or-nothing output."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pgexact.figures import FIGURES, REGISTRY, FigureSpec, captions, get, render
from pgexact.figures._data import RECORD_NAME, VERSION_KEY, recording
from pgexact.figures._render import render_specs

CHEAP = ["ppo_clip", "trpo_bound"]  # < 1 s together


def test_registry_is_complete_and_captioned() -> None:
    assert len(set(FIGURES)) == len(FIGURES)
    for name in ["gradient_fields", "softmax_plateau", "ppo_clip", "marginal_drift", "kl_quadratic",
                 "bernoulli_npg", "short_corridor", "trpo_bound", "learning_curves", "gae_bias_variance",
                 "estimator_variance", "lqr_convergence"]:
        assert name in FIGURES
    for spec in REGISTRY.values():
        assert spec.title and len(spec.caption) > 80
        assert "Source" in spec.caption  # every caption names the source of its formulas
    text = captions()
    assert all(f"{n}.png" in text for n in FIGURES)


def test_render_cheap_subset_png(tmp_path: Path) -> None:
    paths = render(CHEAP, out_dir=tmp_path, progress=False)
    assert [p.name for p in paths] == [f"{n}.png" for n in CHEAP]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in paths)  # no staging leftovers


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_render_is_byte_identical_run_to_run(tmp_path: Path, fmt: str) -> None:
    a = render(["ppo_clip"], out_dir=tmp_path / "a", fmt=fmt, progress=False)[0]
    b = render(["ppo_clip"], out_dir=tmp_path / "b", fmt=fmt, progress=False)[0]
    assert a.read_bytes() == b.read_bytes()


def test_unknown_name_lists_valid_names_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="unknown figure name.*'nope'.*valid names: .*ppo_clip"):
        render(["ppo_clip", "nope"], out_dir=out, progress=False)
    assert not out.exists()
    with pytest.raises(ValueError, match="valid names"):
        get("nope")
    with pytest.raises(ValueError, match="fmt must be one of png, svg, pdf"):
        render(["ppo_clip"], out_dir=out, fmt="jpg", progress=False)


def test_output_path_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        render(["ppo_clip"], out_dir=f, progress=False)
    with pytest.raises(PermissionError, match="cannot be created"):
        render(["ppo_clip"], out_dir=f / "sub", progress=False)
    assert f.read_text() == "x" and sorted(os.listdir(tmp_path)) == ["file.txt"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_directory(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="not writable"):
            render(["ppo_clip"], out_dir=ro, progress=False)
        assert os.listdir(ro) == []
    finally:
        ro.chmod(0o700)


def test_failure_midway_leaves_nothing(tmp_path: Path) -> None:
    def boom(fig) -> None:
        raise RuntimeError("drawing failed")

    specs = [REGISTRY["ppo_clip"], FigureSpec("broken", "broken", "Source: none.", boom)]
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("keep")
    with pytest.raises(RuntimeError, match="drawing failed"):
        render_specs(specs, existing, "png", progress=False)
    assert os.listdir(existing) == ["keep.txt"]  # no ppo_clip.png, no staging directory
    fresh = tmp_path / "fresh" / "nested"
    with pytest.raises(RuntimeError):
        render_specs(specs, fresh, "png", progress=False)
    assert not fresh.exists() and not fresh.parent.exists()  # created directories are removed too


# Tolerance of the plotted-data comparison. The data are float64 results of numpy/scipy; another
# BLAS kernel, CPU or library release changes them by rounding only, amplified by the conditioning
# of the solves and by iterated updates. Measured between two OpenBLAS kernels (Haswell and
# Prescott) on every figure: a TRPO learning curve after 80 conjugate-gradient steps moves by
# 2.7e-8 of its largest value; a gap that has converged to 1e-12 (an O(1) cost minus its optimum),
# or a bias that is exactly zero up to rounding (1e-16), moves by its whole size. Hence
# |fresh - recorded| <= PLOT_RTOL (|recorded| + max |array|) + ROUNDING * max |data of the axes|.
# Both constants are 10x the smallest that passed between the two kernels. A change of content (a
# formula, a seed, a parameter) moves the data by far more.
PLOT_RTOL = 1e-6
ROUNDING = 1e-12


def _differing(fresh: dict[str, np.ndarray], recorded: dict[str, np.ndarray]) -> list[str]:
    """Keys whose values differ beyond rounding (strings: exactly; arrays: the tolerance above)."""
    axes_scale: dict[str, float] = {}
    for k, v in recorded.items():
        if v.dtype.kind == "f" and k.rsplit(".", 1)[-1].startswith("arg"):
            axes = k.split(".")[1]
            group = k.split("/")[0] + "/" + axes
            axes_scale[group] = max(axes_scale.get(group, 0.0), np.max(np.abs(v[np.isfinite(v)]), initial=0.0))
    bad = []
    for k, b in recorded.items():
        a = fresh[k]
        if a.dtype.kind == "U" or b.dtype.kind == "U":
            if not (a.dtype.kind == b.dtype.kind and np.array_equal(a, b)):
                bad.append(k)
            continue
        if a.shape != b.shape or not np.array_equal(np.isfinite(a), np.isfinite(b)):
            bad.append(k)
            continue
        fin = np.isfinite(b)
        own = np.max(np.abs(b[fin]), initial=0.0)
        group = k.split("/")[0] + "/" + k.split(".")[1]
        allowed = PLOT_RTOL * (np.abs(b[fin]) + own) + ROUNDING * axes_scale.get(group, own)
        if np.any(np.abs(a[fin] - b[fin]) > allowed) or not np.array_equal(a[~fin], b[~fin], equal_nan=True):
            bad.append(k)
    return bad


def test_committed_figures_are_what_pgexact_figures_produces(tmp_path: Path) -> None:
    """Every registered figure is committed in figures/, and plots what a fresh rendering plots.

    The comparison is of what each figure plots — the arrays, labels, titles, scales and limits the
    figure code hands to matplotlib, recorded in figures/plotted.npz by
    ``python -m pgexact.figures._data figures`` (run it after changing a figure and commit both) —
    so it holds with any matplotlib, FreeType or BLAS. The pixels are compared too (RMS over 0..255
    at most 1) where the installed matplotlib is the one that drew the committed PNGs.
    """
    import matplotlib
    from matplotlib.testing.compare import compare_images

    committed = Path(__file__).resolve().parents[1] / "figures"
    assert sorted(p.stem for p in committed.glob("*.png")) == sorted(FIGURES)
    with np.load(committed / RECORD_NAME) as npz:
        recorded = {k: npz[k] for k in npz.files}
    drew_pngs = str(recorded.pop(VERSION_KEY))
    with recording() as rec:
        paths = render(out_dir=tmp_path, progress=False)
    assert [p.stem for p in paths] == list(FIGURES)
    fresh = rec.arrays(list(FIGURES))
    for name in FIGURES:
        mine = sorted(k for k in fresh if k.startswith(name + "/"))
        theirs = sorted(k for k in recorded if k.startswith(name + "/"))
        assert mine == theirs, (
            f"{name}: the plotting calls differ from figures/{RECORD_NAME}: "
            f"new {sorted(set(mine) - set(theirs))[:5]}, gone {sorted(set(theirs) - set(mine))[:5]}"
        )
        differing = _differing({k: fresh[k] for k in mine}, {k: recorded[k] for k in theirs})
        assert not differing, f"{name}: plotted data differ from figures/{RECORD_NAME} at {differing[:5]}"
    if matplotlib.__version__ == drew_pngs:
        for path in paths:
            diff = compare_images(str(committed / path.name), str(path), tol=1.0)
            assert diff is None, f"figures/{path.name} differs from `pgexact figures`: {diff}"


def test_plotted_data_record_catches_a_changed_figure() -> None:
    """The record sees a change of content that leaves the figure's structure alone."""
    import matplotlib

    from pgexact.figures._render import RC

    def draw(scale: float) -> dict[str, np.ndarray]:
        def make(fig):
            ax = fig.subplots()
            ax.semilogy([1.0, 2.0, 3.0], scale * np.array([1.0, 0.5, 0.25]), label="curve")
            ax.set_title("t")
            ax.legend()

        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        with matplotlib.rc_context(RC), recording() as rec:
            fig = Figure()
            FigureCanvasAgg(fig)
            make(fig)
        return rec.arrays(["f"])

    a, b, c = draw(1.0), draw(1.0), draw(1.0 + 1e-4)
    # semilogy's own call to plot is matplotlib's business, not recorded
    assert {"f/001.ax0.semilogy.arg1", "f/001.ax0.semilogy.label", "f/002.ax0.set_title.arg0"} <= set(a)
    assert not any(".plot." in k for k in a)
    assert _differing(b, a) == []
    assert _differing(c, a) == ["f/001.ax0.semilogy.arg1"]  # a 1e-4 change of the data is seen


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"names": True}, TypeError, r"^names must be None, a str or an iterable of str, got bool"),
        ({"names": [1]}, TypeError, r"^names\[0\] must be a str"),
        ({"names": [["ppo_clip"]]}, TypeError, r"^names\[0\] must be a str"),
        ({"names": {"a": 1}}, TypeError, r"^names must be"),
        ({"names": []}, ValueError, r"^no figure names given"),
        ({"out_dir": None}, TypeError, r"^out_dir must be a str or a path-like object, got NoneType"),
        ({"out_dir": 3}, TypeError, r"^out_dir must be"),
        ({"fmt": None}, ValueError, r"^fmt must be one of png, svg, pdf, got None"),
        ({"fmt": []}, ValueError, r"^fmt must be one of"),
        ({"progress": None}, TypeError, r"^progress must be a bool, got NoneType"),
    ],
)
def test_render_refuses_malformed_arguments_before_drawing(tmp_path: Path, kwargs: dict, error: type, match: str) -> None:
    args = {"names": ["ppo_clip"], "out_dir": tmp_path / "out", "fmt": "png", "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        render(**args)
    assert not (tmp_path / "out").exists()


def test_get_and_captions_refuse_malformed_names() -> None:
    with pytest.raises(TypeError, match=r"^name must be a str .*got list"):
        get([])
    with pytest.raises(ValueError, match=r"^name 'nope' is not a known figure; valid names: .*ppo_clip"):
        get("nope")
    with pytest.raises(TypeError, match=r"^names must be None, a str or an iterable of str, got bool"):
        captions(True)
    with pytest.raises(TypeError, match=r"^names\[0\] must be a str"):
        captions([None])
    assert captions("ppo_clip") == captions(["ppo_clip", "ppo_clip"])
