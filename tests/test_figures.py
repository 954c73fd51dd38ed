"""Figures: rendering mechanism (cheap subset), determinism, bad input, all-or-nothing output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pgexact.figures import FIGURES, REGISTRY, FigureSpec, captions, get, render
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


@pytest.mark.slow
def test_render_all(tmp_path: Path) -> None:
    paths = render(out_dir=tmp_path, progress=False)
    assert [p.stem for p in paths] == list(FIGURES)


def test_committed_pngs_are_what_pgexact_figures_produces(tmp_path: Path) -> None:
    """Every registered figure is committed in figures/, and matches a fresh rendering.

    Compared as images (RMS difference over 0..255 at most 1), so that a different freetype or
    matplotlib patch release does not fail it while any change of content does.
    """
    from matplotlib.testing.compare import compare_images

    committed = Path(__file__).resolve().parents[1] / "figures"
    assert sorted(p.stem for p in committed.glob("*.png")) == sorted(FIGURES)
    for path in render(out_dir=tmp_path, progress=False):
        diff = compare_images(str(committed / path.name), str(path), tol=1.0)
        assert diff is None, f"figures/{path.name} differs from `pgexact figures`: {diff}"



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
