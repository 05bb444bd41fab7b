"""Issue 13 item 2: every public-key export is recorded (ring, versions, format, identity),
and with ``audit_reads = true`` every load of secret material is, batched to at most one audit
write per ring per minute (time from the injected clock; what is pending is written on
close)."""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from keylife_cli.main import cli

import keylife
from keylife.audit import AuditEntry
from keylife.clock import FixedClock
from keylife.errors import PolicyError
from keylife.policy import default_policy, load_policy

ME = f"os:{pwd.getpwuid(os.geteuid()).pw_name} uid={os.geteuid()}"
AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def run(tmp: Path, *args: str) -> Result:
    base = ["--store", str(tmp / "k.db"), "--master-key-file", str(tmp / "mk")]
    return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)


def _open(tmp: Path, **kw: object) -> keylife.KeyManager:
    return keylife.init(str(tmp / "k.db"), master_key_file=tmp / "mk", **kw)  # type: ignore[arg-type]


def test_public_key_exports_are_recorded(tmp_path: Path) -> None:
    with _open(tmp_path, actor="ops") as m:
        m.create_ring("web", "ec-p256", "signing")
        m.rotate("web")
        before = len(m.audit_records())
        m.ring("web").public_key(1, "der")  # the library call
    assert run(tmp_path, "key", "public", "web").exit_code == 0
    assert run(tmp_path, "key", "public", "web", "--format", "jwks").exit_code == 0
    with _open(tmp_path) as m:
        new = m.audit_records()[before:]
        assert m.verify_audit().ok
    assert [(r.action, r.ring, r.version) for r in new] == [
        ("export-public", "web", 1),
        ("export-public", "web", 2),
        ("export-public", "web", None),
    ]
    assert new[0].reason == "public key exported as der: v1"
    assert new[1].reason == "public key exported as pem: v2"
    assert new[2].reason == "public key exported as jwks: v1, v2"
    assert {r.identity for r in new} == {ME}


def test_audit_reads_is_a_policy_setting(tmp_path: Path) -> None:
    assert default_policy().audit_reads is False
    good = tmp_path / "reads.toml"
    good.write_text("[policy]\naudit_reads = true\n")
    assert load_policy(good).audit_reads is True
    assert load_policy(good).to_dict()["audit_reads"] is True
    bad = tmp_path / "bad.toml"
    bad.write_text('[policy]\naudit_reads = "yes"\n')
    with pytest.raises(PolicyError, match=r"policy\.audit_reads .* allowed values: true, false"):
        load_policy(bad)
    shown = CliRunner().invoke(cli, ["--policy", str(good), "policy", "show"])
    assert "audit reads  yes" in shown.stdout
    shown = CliRunner().invoke(cli, ["policy", "show"])
    assert "audit reads  no" in shown.stdout


def _reads(m: keylife.KeyManager) -> list[tuple[str | None, int | None, str]]:
    return [(r.ring, r.version, r.reason) for r in m.audit_records() if r.action == "read-material"]


def test_loads_are_not_recorded_by_default(tmp_path: Path) -> None:
    with _open(tmp_path) as m:
        m.create_ring("data", "aes-256", "data-encryption")
        m.ring("data").encrypt(b"x")
        assert _reads(m) == []


def test_loads_are_batched_one_write_per_ring_per_minute(tmp_path: Path) -> None:
    clock = FixedClock(AT)
    policy = replace(default_policy(), audit_reads=True)
    m = _open(tmp_path, clock=clock, policy=policy)
    m.create_ring("data", "aes-256", "data-encryption")
    m.create_ring("mac", "hmac-sha256", "authentication")
    writes: list[tuple[str | None, ...]] = []
    append = m.store.append_audit

    def counting(entries: Sequence[AuditEntry]) -> None:
        writes.append(tuple(sorted({e.ring for e in entries})))
        append(entries)

    m.store.append_audit = counting  # type: ignore[method-assign]
    data, mac = m.ring("data"), m.ring("mac")
    # ten minutes of a busy service: every operation unseals (no cache), 10 per second
    for _second in range(600):
        for _ in range(5):
            data.decrypt(data.encrypt(b"x"))
        mac.mac(b"y")
        clock.advance(dt.timedelta(seconds=1))
    # at most one write per ring per minute: the first load, then one a minute
    assert writes.count(("data",)) <= 10 + 1
    assert writes.count(("mac",)) <= 10 + 1
    assert len(writes) == writes.count(("data",)) + writes.count(("mac",))
    m.close()  # flushes what is pending
    with _open(tmp_path) as m2:
        reads = _reads(m2)
        records = [r for r in m2.audit_records() if r.action == "read-material"]
        assert m2.verify_audit().ok
    counts: dict[str, int] = {}
    for ring, version, reason in reads:
        assert version == 1
        counts[ring or ""] = counts.get(ring or "", 0) + int(reason.split()[0])
    assert counts == {"data": 600 * 10, "mac": 600}  # every load counted, none twice
    assert {r.identity for r in records} == {ME}
    first = [r for r in records if r.ring == "data"][:2]
    assert first[0].reason.startswith("1 load of secret material, 2026-03-01T12:00:00")
    assert dt.datetime.fromisoformat(first[1].at) - dt.datetime.fromisoformat(
        first[0].at
    ) >= dt.timedelta(minutes=1)


def test_read_records_are_json_and_hold_no_material(tmp_path: Path) -> None:
    policy = replace(default_policy(), audit_reads=True)
    with _open(tmp_path, policy=policy) as m:
        m.create_ring("data", "aes-256", "data-encryption")
        secret = m.ring("data").primary().material.reveal()
    out = run(tmp_path, "--json", "audit", "show")
    assert secret.hex() not in out.stdout
    docs = json.loads(out.stdout)["records"]
    assert any(d["action"] == "read-material" for d in docs)


def test_a_rotation_run_under_audit_reads_records_its_loads(tmp_path: Path) -> None:
    reads = tmp_path / "reads.toml"
    reads.write_text("[policy]\naudit_reads = true\n")
    with _open(tmp_path) as m:
        m.create_ring("data", "aes-256", "data-encryption")
    result = run(tmp_path, "--policy", str(reads), "rotate")
    assert result.exit_code == 0, result.output
    with _open(tmp_path) as m:
        assert ("data", 1) in {(r, v) for r, v, _ in _reads(m)}  # the run's health check
