"""Check that the built documentation renders its formulas with no network.

The site loads MathJax from ``_static/mathjax`` (the ``sphinx-mathjax-offline`` extension of the
``docs`` extra), not from a CDN. This script serves a built site on the loopback interface, opens a
page full of formulas in headless Chromium with every host name but the loopback made unresolvable
(so a CDN cannot be reached even on a machine with a network), and checks that MathJax typeset every
formula: each ``math`` element of the page holds an ``mjx-container`` and no ``mjx-merror``. It also
takes a screenshot to look at.

As a negative control it opens the same page with its MathJax ``<script>`` pointed at the CDN; that
copy must *not* render (otherwise the check could not tell an offline site from an online one).

Usage (after ``python -m sphinx -W -b html docs docs/_build/html``; Chromium from Debian's
``chromium`` package)::

    python docs/check_offline_math.py [--html docs/_build/html] [--page api/pgexact.estimators.html]
                                      [--screenshot math.png] [--chromium chromium]

Exit status 0 when the page renders offline and the control does not; 1 otherwise, with a line
saying which.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
CDN = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-default-apps", "--disable-sync",
    # every host name but the loopback's fails to resolve: the page gets no network
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--window-size=1280,1800", "--virtual-time-budget=20000", "--run-all-compositor-stages-before-draw",
]


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """An HTTP server on 127.0.0.1 (a free port) serving ``root``, running in a thread."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass


def chromium(binary: str, url: str, *, screenshot: Path | None = None) -> str:
    """The DOM of ``url`` after its scripts ran (``--dump-dom``); optionally a screenshot too."""
    with tempfile.TemporaryDirectory(prefix="pgexact-chromium-") as profile:
        flags = FLAGS + [f"--user-data-dir={profile}"]
        if screenshot is not None:
            subprocess.run([binary, *flags, f"--screenshot={screenshot}", url], check=True,
                           capture_output=True, timeout=120)
        proc = subprocess.run([binary, *flags, "--dump-dom", url], check=True, capture_output=True,
                              text=True, timeout=120)
    return proc.stdout


def math_report(dom: str) -> tuple[int, int, int]:
    """``(math elements, rendered ones, TeX errors)`` of a page's DOM.

    A math element is Sphinx's ``<span class="math ...">`` or ``<div class="math ...">``; it is
    rendered when MathJax put an ``mjx-container`` in it.
    """
    elements = re.findall(r'<(span|div) class="math[^"]*">(.*?)</\1>', dom, flags=re.S)
    rendered = sum(1 for _, inner in elements if "<mjx-container" in inner)
    return len(elements), rendered, dom.count("<mjx-merror")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=HERE / "_build" / "html")
    parser.add_argument("--page", default="api/pgexact.estimators.html")
    parser.add_argument("--screenshot", type=Path, default=Path("offline_math.png"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args(argv)

    page = args.html / args.page
    if not page.is_file():
        print(f"check_offline_math: no built page {page} (build the docs first)", file=sys.stderr)
        return 1
    html = page.read_text(encoding="utf-8")
    local = re.search(r'<script[^>]*src="([^"]*mathjax/tex-chtml\.js[^"]*)"', html)
    if local is None:
        print(f"check_offline_math: {args.page} loads no local _static/mathjax/tex-chtml.js",
              file=sys.stderr)
        return 1
    control = page.with_name("_offline_math_control.html")
    control.write_text(html.replace(local.group(1), CDN), encoding="utf-8")
    server, base = serve(args.html)
    try:
        dom = chromium(args.chromium, f"{base}/{args.page}", screenshot=args.screenshot.resolve())
        control_dom = chromium(args.chromium, f"{base}/{Path(args.page).with_name(control.name)}")
    finally:
        server.shutdown()
        control.unlink()

    total, rendered, errors = math_report(dom)
    c_total, c_rendered, _ = math_report(control_dom)
    print(f"{args.page}: {rendered} of {total} formulas rendered offline, {errors} TeX errors; "
          f"screenshot {args.screenshot}")
    print(f"control (MathJax from the CDN, network cut): {c_rendered} of {c_total} rendered")
    ok = True
    if total == 0 or rendered != total or errors:
        print("check_offline_math: FAILED: formulas not rendered offline", file=sys.stderr)
        ok = False
    if c_total == 0 or c_rendered:
        print("check_offline_math: FAILED: the control rendered, so the check cannot tell",
              file=sys.stderr)
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
