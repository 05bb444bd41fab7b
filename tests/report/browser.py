"""Headless Chromium for the report tests: screenshot, DOM dump and console messages.

Chromium logs every console message (errors, Content-Security-Policy refusals of a fetch or a
script) on stderr as ``:CONSOLE:`` lines when run with ``--enable-logging=stderr``.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

BROWSER_TIMEOUT = 90


@dataclass(frozen=True)
class Page:
    dom: str
    console: list[str]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is needed for the report tests: run scripts/test"
    return found


def _run(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    profile.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT,
        check=False,
    )


def load(page: Path, profile: Path) -> Page:
    """The DOM after load and every console message the page caused."""
    done = _run(page, profile, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return Page(done.stdout, console)


def screenshot(page: Path, out: Path, profile: Path, size: str = "1280,2000") -> list[str]:
    """Write a PNG of ``page``; returns the console messages of that load."""
    done = _run(page, profile, f"--screenshot={out}", f"--window-size={size}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.is_file() and out.stat().st_size > 1000, "no screenshot written"
    return [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
