"""Sphinx configuration of the pgexact documentation (``sphinx-build -W -b html docs docs/_build``)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import pgexact  # noqa: E402
from api_pages import write_api_pages  # noqa: E402
from figure_examples import write_figure_examples  # noqa: E402

project = "pgexact"
author = "the pgexact developers"
copyright = "the pgexact developers"
release = version = pgexact.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    # MathJax 3 served from _static/mathjax: formulas render with no network (docs/check_offline_math.py)
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_generated", "**/*.ipynb", "**/*.zip"]
html_theme = "pydata_sphinx_theme"
html_title = "pgexact"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]  # $...$ and $$...$$ in the Markdown pages are math
suppress_warnings = ["myst.header"]

autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False

FIGURE_EXAMPLES = HERE / "_generated" / "figures"
write_figure_examples(FIGURE_EXAMPLES)

sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "examples" / "tutorials"), str(FIGURE_EXAMPLES)],
    "gallery_dirs": ["auto_examples/tutorials", "auto_examples/figures"],
    "filename_pattern": r"/(plot|tutorial)_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "plot_gallery": "True",
}

write_api_pages(HERE / "api")

#: Links between the repository's Markdown files, as the documentation pages that include them.
PAGE_OF = {"DESIGN.md": "design.md", "REFERENCES.md": "references.md", "CHANGELOG.md": "changelog.md",
           "README.md": "readme.md"}


def _relink(app, relative_path, parent_docname, content):
    """In an included Markdown file, point ``[..](DESIGN.md)``-style links at the pages."""
    for source, page in PAGE_OF.items():
        content[0] = content[0].replace(f"]({source})", f"]({page})")


def _viewcode_backlinks(app, exc):
    """Point every "[docs]" back-link of the source pages at an anchor that exists.

    ``sphinx.ext.viewcode`` builds a back-link as ``<page>#<module>.<name>`` with one ``<module>``
    per *source* module: the public module that documented the first of its objects. A private
    module whose objects are documented in different public modules (``pgexact._chunks``:
    ``ChunkError`` in ``pgexact.distributed``, ``chunk_seed`` in ``pgexact.sampling``) then gets
    links to anchors that do not exist. Each such link is pointed at ``<page module>.<name>`` on
    the same page; a back-link that still misses its anchor is a warning (an error under ``-W``).
    """
    if exc is not None or app.builder.format != "html":
        return
    from sphinx.util import logging

    out = Path(app.outdir)
    anchors: dict[Path, set[str]] = {}

    def ids(page: Path) -> set[str]:
        if page not in anchors:
            text = page.read_text(encoding="utf-8") if page.exists() else ""
            anchors[page] = set(re.findall(r'id="([^"]+)"', text))
        return anchors[page]

    def fix(source: Path, match: re.Match) -> str:
        href, module, anchor = match.group(1), match.group(2), match.group(3)
        page = (source.parent / href).resolve()
        if anchor in ids(page):
            return match.group(0)
        parts = anchor.split(".")
        for k in range(1, len(parts)):
            candidate = f"{module}.{'.'.join(parts[k:])}"
            if candidate in ids(page):
                return f'href="{href}#{candidate}"'
        logging.getLogger(__name__).warning(
            f"viewcode back-link {href}#{anchor} in {source.relative_to(out)} has no anchor")
        return match.group(0)

    for source in (out / "_modules").rglob("*.html"):
        text = source.read_text(encoding="utf-8")
        new = re.sub(r'href="([^"#]*?api/([\w.]+)\.html)#([^"]+)"', lambda m: fix(source, m), text)
        if new != text:
            source.write_text(new, encoding="utf-8")


def setup(app):
    app.connect("include-read", _relink)
    app.connect("build-finished", _viewcode_backlinks)
