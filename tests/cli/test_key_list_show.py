"""``keylife key list`` streams with ``--prefix``/``--limit``/``--jsonl`` and a state summary per
ring (issue 15 item 2, issue 14 item 6); ``keylife key show`` on a certificate ring reports its
certificate like ``cert show`` (issue 14 item 6)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from keylife_cli import key_list
from keylife_cli.main import cli

import keylife
from keylife.acme.settings import CertSettings
from keylife.certificates import ACME_SETTINGS, CERTIFICATE_PEM
from keylife.errors import StoreUnavailableError
from keylife.lifecycle import Ring
from keylife.store import sqlite_schedule
from keylife.store.sqlite import SqliteStore


@pytest.fixture
def store(tmp_path: Path) -> dict[str, str]:
    paths = {
        "store": str(tmp_path / "data" / "keylife.db"),
        "master_key_file": str(tmp_path / "config" / "master.key"),
    }
    keylife.init(paths["store"], master_key_file=paths["master_key_file"]).close()
    return paths


def run(store: dict[str, str], *args: str) -> Result:
    base = ["--store", store["store"], "--master-key-file", store["master_key_file"]]
    return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)


def manager(store: dict[str, str]) -> keylife.KeyManager:
    return keylife.open(store["store"], master_key_file=store["master_key_file"])


def make(store: dict[str, str], *names: str) -> None:
    with manager(store) as m:
        for name in names:
            m.create_ring(name, "aes-256", "data-encryption")


def test_prefix_limit_and_jsonl(store: dict[str, str]) -> None:
    make(store, "b1", "a2", "a1", "ab", "c")
    doc = json.loads(run(store, "--json", "key", "list", "--prefix", "a").output)
    assert [r["name"] for r in doc["rings"]] == ["a1", "a2", "ab"]
    doc = json.loads(run(store, "--json", "key", "list", "--prefix", "a", "--limit", "2").output)
    assert [r["name"] for r in doc["rings"]] == ["a1", "a2"]
    assert json.loads(run(store, "--json", "key", "list", "--limit", "0").output) == {"rings": []}
    lines = run(store, "key", "list", "--jsonl", "--prefix", "b").output.splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["b1"]
    text = run(store, "key", "list", "--prefix", "a", "--limit", "1").output.splitlines()
    assert text[0].startswith("RING") and text[1].startswith("a1 ") and len(text) == 2
    assert run(store, "key", "list", "--prefix", "zz").output == "no rings\n"
    # the streamed document is exactly what one json.dumps of it prints
    whole = run(store, "--json", "key", "list").output
    assert whole == json.dumps(json.loads(whole), indent=2, sort_keys=True) + "\n"


def test_state_summary_condenses_versions(store: dict[str, str]) -> None:
    make(store, "r")
    with manager(store) as m:
        for _ in range(3):
            m.rotate("r")
        m.destroy("r", 1)
        m.destroy("r", 2)  # scheduled; carried out by a run a destroy_wait later
        later = keylife.FixedClock(m.now() + m.policy.destroy_wait + dt.timedelta(minutes=1))
        assert keylife.rotation.run(m.at(later), rings=["r"]).ok
    doc = json.loads(run(store, "--json", "key", "list").output)["rings"][0]
    # v3 was deactivated by the last rotation and still decrypts in the grace period
    assert doc["state_summary"] == "v4 active, v3 processing, v1-v2 destroyed"
    assert doc["transit"] is False
    assert "v4 active, v3 processing, v1-v2 destroyed" in run(store, "key", "list").output
    shown = json.loads(run(store, "--json", "key", "show", "r").output)
    assert shown["state_summary"] == doc["state_summary"]


def test_key_list_prints_each_page_before_reading_the_next(
    store: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make(store, *(f"r{i}" for i in range(6)))
    monkeypatch.setattr(sqlite_schedule, "PAGE", 2)
    events: list[str] = []
    decode = sqlite_schedule.decode_ring
    monkeypatch.setattr(
        sqlite_schedule,
        "decode_ring",
        lambda doc, rev, name: events.append(f"read {name}") or decode(doc, rev, name),
    )
    echo = click.echo

    def printed(message: object = None, **kw: Any) -> None:
        events.append(f"print {message}")
        echo(message, **kw)

    monkeypatch.setattr(key_list.click, "echo", printed)
    assert run(store, "--json", "key", "list").exit_code == 0
    first = next(i for i, e in enumerate(events) if e.startswith("print") and '"r0"' in e)
    assert first < events.index("read r2") < events.index("read r5")


def test_a_failure_half_way_still_ends_one_json_document(
    store: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make(store, "a", "b", "c")
    pages = SqliteStore.iter_rings

    def broken(self: SqliteStore, **kw: Any) -> Iterator[Ring]:
        yield next(pages(self, **kw))
        raise StoreUnavailableError("the disk went away")

    monkeypatch.setattr(SqliteStore, "iter_rings", broken)
    result = run(store, "--json", "key", "list")
    assert result.exit_code == 3
    doc = json.loads(result.output)
    assert [r["name"] for r in doc["rings"]] == ["a"] and doc["exit_code"] == 3
    assert doc["error"] == {"type": "StoreUnavailableError", "message": "the disk went away"}
    text = run(store, "key", "list")
    assert text.exit_code == 3 and "\na " in text.output and "the disk went away" in text.output


def certificate(now: dt.datetime) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Issuer CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web.example.com")]))
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x1234ABCD)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=89))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.PEM).decode()


def test_key_show_on_a_certificate_ring_shows_its_certificate(store: dict[str, str]) -> None:
    with manager(store) as m:
        m.create_ring("web", "ec-p256", "tls-server")
        ring = m.load("web")
        now = m.now()
        settings = CertSettings(directory="https://acme.test/dir", domains=("web.example.com",))
        v1 = replace(ring.versions[0], attributes={CERTIFICATE_PEM: certificate(now)})
        changed = replace(
            ring, versions=(v1,), attributes={**ring.attributes, ACME_SETTINGS: settings.to_json()}
        )
        m.store.commit(changed, expected_revision=ring.revision)
    doc = json.loads(run(store, "--json", "key", "show", "web").output)
    cert = doc["certificate"]
    assert cert["domains"] == ["web.example.com"] and cert["serial"] == "1234abcd"
    assert "Test Issuer CA" in cert["issuer"] and cert["days_left"] in (88, 89)
    assert cert["not_after"] and cert["next_renewal"] and cert["renewal_reason"]
    assert doc["details"][0]["number"] == 1  # the key show document is still all there
    text = run(store, "key", "show", "web").output
    for needle in ("web.example.com", "1234abcd", "days left", "Next renewal", "Test Issuer"):
        assert needle in text, needle
    plain = json.loads(run(store, "--json", "key", "show", "web", "--version", "1").output)
    assert "certificate" in plain
    make(store, "data")
    assert "certificate" not in json.loads(run(store, "--json", "key", "show", "data").output)
