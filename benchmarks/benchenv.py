"""What every benchmark checks before importing keylife: that it runs in the checkout's
virtualenv. Standard library only, so a wrong interpreter gets the one-line hint, not an
ImportError."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def require_venv() -> None:
    """Benchmarks need keylife and its dependencies: the checkout's virtualenv has them."""
    installed = Path(sys.executable).with_name("keylife").exists()  # the venv's command
    if not installed or not all(importlib.util.find_spec(m) for m in ("keylife", "cryptography")):
        raise SystemExit(
            f"benchmarks: {sys.executable} is not keylife's virtualenv; run "
            f".venv/bin/python benchmarks/{Path(sys.argv[0]).name} from the checkout "
            "(./scripts/test or ./scripts/quickstart makes .venv)"
        )
