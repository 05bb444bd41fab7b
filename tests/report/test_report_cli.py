"""``keylife report`` on the command line: formats, --out, --as-of, --window, refusals."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import jsonschema
from click.testing import CliRunner, Result
from keylife_cli.main import cli

from keylife.report import json_schema

from .store50 import RINGS


def run(store: Path, *args: str) -> Result:
    base = ["--store", str(store / "k.db"), "--master-key-file", str(store / "master.key")]
    return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)


def test_json_report_follows_the_schema(store50: Path) -> None:
    result = run(store50, "report", "--format", "json", "--as-of", "2031-01-01")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    jsonschema.validate(document, json_schema())
    assert document["summary"]["non_compliant_as_of"] == 3
    assert len(document["inventory"]) == RINGS
    via_flag = run(store50, "--json", "report", "--window", "30d")
    assert via_flag.exit_code == 0 and json.loads(via_flag.stdout)["window_days"] == 30


def test_out_writes_the_file_whole(store50: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = run(store50, "report", "--format", "html", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"report written to {out} (html, {RINGS} rings)" in result.stdout
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    md = run(store50, "report", "--out", str(tmp_path / "r.md"))
    assert md.exit_code == 0 and (tmp_path / "r.md").read_text().startswith("# keylife")


def test_refusals_are_usage_errors(store50: Path) -> None:
    assert run(store50, "--json", "report", "--format", "html").exit_code == 2
    too_long = run(store50, "report", "--window", "9999d")
    assert too_long.exit_code == 2 and "at most 1830d" in too_long.output
    assert run(store50, "report", "--window", "soon").exit_code == 2
    assert run(store50, "report", "--as-of", "next year").exit_code == 2


def test_help_shows_examples() -> None:
    result = CliRunner().invoke(cli, ["report", "--help"])
    assert (
        result.exit_code == 0 and "keylife report --format html --out report.html" in result.output
    )
