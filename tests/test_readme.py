"""The README's Python blocks run, in order, in a fresh interpreter, outside the clone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python fenced blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_has_python_blocks() -> None:
    assert len(python_blocks(README.read_text(encoding="utf-8"))) >= 5


def test_readme_blocks_run_in_order_in_a_fresh_interpreter(tmp_path: Path) -> None:
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    script = "\n\n".join(f"# --- README block {i + 1}\n{b}" for i, b in enumerate(blocks))
    path = tmp_path / "readme_blocks.py"
    path.write_text(script, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    if os.environ.get("PYTHONPATH"):  # a developer's checkout that is not the installed one
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    proc = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", str(path)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"README blocks failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
