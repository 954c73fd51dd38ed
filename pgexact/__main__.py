"""``python -m pgexact``: the same command line as ``pgexact``."""

from .cli import main

raise SystemExit(main())
