"""Regenerate docs/report.png: ``python -m tests.report.screenshot`` (needs chromium)."""

from __future__ import annotations

import datetime as dt
import subprocess
import tempfile
from pathlib import Path

import keylife
from keylife.clock import FixedClock
from keylife.report import collect_report, render_html

from .browser import screenshot
from .store50 import NOW, build

DOCS = Path(__file__).resolve().parents[2] / "docs"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root / "k.db", root / "master.key").close()
        with keylife.open(
            str(root / "k.db"), master_key_file=root / "master.key", clock=FixedClock(NOW)
        ) as m:
            report = collect_report(m, as_of=dt.datetime(2031, 1, 1, tzinfo=dt.UTC))
        page = root / "report.html"
        page.write_text(render_html(report).replace(str(root), "/var/lib/keylife"))
        out = DOCS / "report.png"
        screenshot(page, out, root / "profile", size="1280,900")
    subprocess.run(["convert", str(out), "-strip", str(out)], check=False, capture_output=True)
    print(f"{out}: {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
