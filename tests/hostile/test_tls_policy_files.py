"""Issue 10, item 13 (TLS part): a deeply nested `[tls]` policy file is a one-line usage error.
Before: `keylife tls check --policy nested.toml` died with a RecursionError traceback."""

from __future__ import annotations

from pathlib import Path

from tests.tls import hostile_peers as hp


def test_deeply_nested_tls_policy_is_a_one_line_error(tmp_path: Path) -> None:
    policy = tmp_path / "nested.toml"
    policy.write_text("[tls]\nallowed_groups = " + "[" * 10_000 + "\n")
    run = hp.run_keylife("tls", "check", "127.0.0.1:1", "--policy", str(policy), hard_limit=60)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert f"cannot read TLS policy {policy}: values nested too deeply" in run.stderr
