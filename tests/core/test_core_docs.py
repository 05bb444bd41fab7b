"""The reference tables of the core docs match the code (the examples of every page run in
tests/docs/test_pages.py)."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
OWNED = ["index.md", "concepts.md", "policy.md", "cli.md", "api.md", "security.md"]
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(name: str, lang: str) -> list[str]:
    return [body for kind, body in BLOCK.findall((DOCS / name).read_text()) if kind == lang]


def test_policy_tables_match_the_code() -> None:
    from keylife.policy import DEFAULT_RULES, PURPOSE_KINDS, format_duration
    from keylife.specs import SPECS

    text = (DOCS / "policy.md").read_text()
    for purpose, r in DEFAULT_RULES.items():
        destroy = format_duration(r.destroy_after) if r.destroy_after else "-"
        row = (
            f"| `{purpose.value}` | `{r.default_type}` | {format_duration(r.cryptoperiod)} | "
            f"{format_duration(r.lead_time)} | {format_duration(r.grace_period)} | {destroy} |"
        )
        assert row in text, row
    for name, spec in SPECS.items():
        purposes = ", ".join(p.value for p, kinds in PURPOSE_KINDS.items() if spec.kind in kinds)
        row = f"| `{name}` | {spec.strength} | {purposes} |"
        assert row in text, row


def test_cli_reference_matches_the_code() -> None:
    from keylife_cli import context
    from keylife_cli.key import key
    from keylife_cli.main import _COMMANDS

    text = (DOCS / "cli.md").read_text()
    for code in (
        context.EXIT_OK,
        context.EXIT_FAILED,
        context.EXIT_USAGE,
        context.EXIT_UNAVAILABLE,
        context.EXIT_LOCKED,
    ):
        assert f"\n| {code} |" in text
    for name in _COMMANDS:
        assert f"`keylife {name}" in text, name
    for verb in key.commands:
        assert re.search(rf"`keylife key [a-z|\\]*\b{verb}\b", text), verb
    for var in (
        "KEYLIFE_STORE",
        "KEYLIFE_MASTER_KEY_FILE",
        "KEYLIFE_MASTER_KEY",
        "KEYLIFE_POLICY",
        "KEYLIFE_BACKUP_PASSPHRASE",
        "KEYLIFE_CONFIG",
        "XDG_DATA_HOME",
        "XDG_CONFIG_HOME",
    ):
        assert var in text, var


def test_index_links_resolve() -> None:
    text = (DOCS / "index.md").read_text()
    links = re.findall(r"\]\(([^)]+\.md)\)", text)
    mine = [link for link in links if link in OWNED]
    assert set(mine) == set(OWNED) - {"index.md"}
    for link in ("operations.md", "tls.md", "acme.md", "vault.md"):
        assert link in links  # written by the other engineers


def test_policy_example_writes_the_file_it_shows() -> None:
    """policy.md shows the TOML file, and its Python example writes the same settings."""
    import tomllib

    shown = tomllib.loads(blocks("policy.md", "toml")[0])
    code = blocks("policy.md", "python")[0]
    written = re.search(r'write_text\("""\\\n(.*?)"""\)', code, re.S)
    assert written, "policy.md's example no longer writes policy.toml"
    assert tomllib.loads(written.group(1)) == shown
