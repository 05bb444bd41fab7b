"""Every fenced example of docs/ and the README runs as written (see tests/docs/runner.py):
each page top to bottom, in a fresh home, with nothing injected."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.runner import REPO, RUN, SHOWN, PageRun, blocks, runnable

PAGES = sorted([*(REPO / "docs").glob("*.md"), REPO / "README.md"])
RUNNABLE = [p for p in PAGES if runnable(p.read_text())]
# Pages whose examples were run before this runner existed: none may drop out.
MUST_RUN = {
    "README.md",
    "api.md",
    "cli.md",
    "policy.md",
    "security.md",
    "operations.md",
    "vault.md",
    "tls.md",
    "acme.md",
}


def test_every_page_that_was_run_still_is() -> None:
    assert {p.name for p in RUNNABLE} >= MUST_RUN


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_fences_say_run_or_show(page: Path) -> None:
    for block in blocks(page.read_text()):
        assert block.lang in RUN | SHOWN, (
            f"{page.name} line {block.line}: fence {block.lang!r}; "
            "illustration is ```text, examples are ```python, ```sh or ```console"
        )


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: p.name)
def test_page_runs_as_written(page: Path, tmp_path: Path) -> None:
    PageRun(page, tmp_path).run()
