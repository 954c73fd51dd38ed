"""Write one gallery example per registered figure, so that every figure of ``pgexact figures``
appears in the gallery (a new figure needs no new file)."""

from __future__ import annotations

import shutil
from pathlib import Path

from pgexact.figures import REGISTRY

HEADER = """Textbook figures
================

Each figure of ``pgexact figures``, drawn from the closed forms; the caption printed under each
names the source of every plotted formula.
"""

TEMPLATE = '''"""
{title}
{underline}

The figure ``{name}`` of ``pgexact figures``, drawn from the closed forms.
"""

import matplotlib.pyplot as plt

from pgexact.figures import get

spec = get("{name}")
print(spec.caption)
fig = plt.figure(figsize=spec.figsize, layout="constrained")
spec.make(fig)
plt.show()
'''


def write_figure_examples(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "README.rst").write_text(HEADER)
    for name, spec in REGISTRY.items():
        text = TEMPLATE.format(title=spec.title, underline="=" * len(spec.title), name=name)
        (out / f"plot_{name}.py").write_text(text)
