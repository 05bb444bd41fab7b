"""Every subcommand of issue 2 once, --json discipline, and the exit code table."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

import keylife


def _one_json(result) -> dict:
    """stdout holds exactly one JSON document (json.loads refuses trailing data)."""
    return json.loads(result.stdout)


def test_every_subcommand_once(env, tmp_path: Path) -> None:
    run, js = env.run, env.json

    assert js("init") == {"store": f"sqlite://{env.db}", "initialised": True}
    assert js("init")["initialised"] is True  # idempotent

    v = js("key", "create", "pay", "--type", "ec-p256", "--purpose", "signing")
    assert (v["ring"], v["number"], v["state"], v["spec"]) == ("pay", 1, "active", "ec-p256")
    assert v["fingerprint"].startswith("sha256:")
    start = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=3)
    later, end = start.isoformat(), (start + dt.timedelta(days=200)).isoformat()
    pre = js(
        "key", "create", "pre", "--purpose", "data-encryption",
        "--activate-at", later, "--deactivate-at", end,
    )  # fmt: skip
    assert pre["state"] == "pre-active" and pre["spec"] == "aes-256"
    assert pre["deactivation"] == f"{end}T00:00:00+00:00"

    listed = js("key", "list")["rings"]
    assert [(r["name"], r["primary"]) for r in listed] == [("pay", 1), ("pre", None)]
    listed_text = env.run("key", "list").stdout
    assert "pay" in listed_text and "pre" in listed_text

    assert js("key", "activate", "pre", "1")["state"] == "active"
    assert js("key", "rotate", "pay")["number"] == 2
    assert js("key", "suspend", "pay", "2", "--reason", "audit")["state"] == "suspended"
    assert js("key", "resume", "pay", "2")["state"] == "active"
    assert js("key", "deactivate", "pre", "1")["state"] == "deactivated"
    scheduled = js("key", "destroy", "pre", "1", "--reason", "no data left")
    assert scheduled["state"] == "deactivated" and scheduled["destroy_scheduled"]["due"]
    assert js("key", "cancel-destroy", "pre", "1")["destroy_scheduled"] is None
    js("key", "revoke", "pre", "1", "--reason", "key-compromise")
    assert js("key", "destroy", "pre", "1", "--wait", "0s")["state"] == "destroyed-compromised"
    assert js("key", "create", "old", "--purpose", "authentication")["state"] == "active"
    revoked = js("key", "revoke", "old", "1", "--reason", "superseded", "--message", "replaced")
    assert revoked["revocation_reason"] == "superseded" and revoked["state"] == "deactivated"
    comp = js("key", "compromise", "pay", "--occurred-at", "2026-01-01T00:00:00Z")
    assert comp["compromised"]["number"] == 2 and comp["replacement"]["number"] == 3
    assert comp["compromised"]["state"] == "compromised" and comp["dependents"]

    show = js("key", "show", "pay")
    assert show["primary"] == 3 and [d["number"] for d in show["details"]] == [1, 2, 3]
    one = js("key", "show", "pay", "--version", "2")
    assert [d["number"] for d in one["details"]] == [2]
    hist = js("key", "history", "pay")
    assert hist["ring"] == "pay" and len(hist["versions"]) == 3
    assert [e["action"] for e in hist["versions"][1]["events"]] == [
        "create", "activate", "suspend", "resume", "compromise",
    ]  # fmt: skip

    records = js("audit", "show")["records"]
    assert records[0]["seq"] == 1 and all(r["hash"] for r in records)
    only_pre = js("audit", "show", "--ring", "pre")["records"]
    assert {r["ring"] for r in only_pre} == {"pre"}
    actions = [r["action"] for r in only_pre]
    assert actions == [
        "create", "activate", "deactivate", "schedule-destroy", "cancel-destroy", "revoke",
        "schedule-destroy", "destroy", "retire",
    ]  # fmt: skip
    assert js("audit", "verify") == {
        "ok": True, "records": len(records), "first_bad_seq": None, "problem": "",
    }  # fmt: skip

    assert js("policy", "show")["profile"] == "default"
    good = tmp_path / "p.toml"
    good.write_text('[policy]\nprofile = "128-bit"\n')
    assert js("policy", "check", str(good)) == {"file": str(good), "valid": True}

    assert js("store", "rekey")["rekeyed"] is True

    archive = tmp_path / "b.klb"
    pf = str(env.passphrase_file())
    assert js("backup", str(archive), "--passphrase-file", pf)["rings"] == 3
    target = ["--store", str(tmp_path / "r" / "k.db"), "--master-key-file", str(tmp_path / "r.key")]
    assert js(*target, "restore", str(archive), "--passphrase-file", pf)["verified"] is True
    assert js(*target, "key", "list")["rings"] == js("key", "list")["rings"]

    # Text output of the same commands says the same things, for humans.
    assert "pay" in run("key", "list").stdout
    assert "pay v3  active" in run("key", "show", "pay").stdout
    assert "compromise" in run("key", "history", "pay").stdout
    assert "chain intact" in run("audit", "verify").stdout


def test_console_script(store) -> None:
    version = store.sh("--version")
    assert (
        version.returncode == 0
        and version.stdout.strip() == f"keylife, version {keylife.__version__}"
    )
    created = store.sh("--json", "key", "create", "svc", "--purpose", "tls-server")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["spec"] == "ec-p256"
    listed = store.sh("--json", "key", "list")
    assert [r["name"] for r in json.loads(listed.stdout)["rings"]] == ["svc"]
    # Logs (-vv) go to stderr; stdout stays one JSON document.
    verbose = store.sh("-vv", "--json", "audit", "verify")
    assert json.loads(verbose.stdout)["ok"] is True
    assert store.sh("--help").stdout.count("Commands") == 1


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("key", "show", "nope"), 1, "no ring named 'nope'"),
        (("key", "destroy", "k", "1"), 1, "is active; cannot destroy"),
        (("key", "activate", "k", "9"), 1, "has no version 9"),
        (("key", "create", "k", "--purpose", "signing"), 1, "already exists"),
        (("key", "create", "k2", "--type", "rsa-1024", "--purpose", "signing"), 1, "Allowed"),
        (("key", "list", "--bogus"), 2, "No such option"),
        (("key", "create", "x", "--purpose", "nonsense"), 2, "Invalid value"),
        (("key", "create", "x", "--purpose", "signing", "--activate-at", "soon"), 2, "ISO 8601"),
        (("key", "revoke", "k", "1", "--reason", "bored"), 2, "Invalid value"),
        (("key", "destroy", "k", "one"), 2, "not a valid integer"),
        (("no-such-command",), 2, "No such command"),
    ],
)
def test_exit_codes(store, args, code, words) -> None:
    assert store.run("key", "create", "k", "--purpose", "signing").exit_code == 0
    result = store.run(*args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    if code == 1:
        # Under --json a failure is still exactly one JSON document on stdout.
        doc = _one_json(store.run("--json", *args))
        assert words in doc["error"]["message"]


def test_exit_3_when_no_store(env, tmp_path: Path) -> None:
    result = env.run("key", "list")
    assert result.exit_code == 3
    assert "keylife init" in result.stderr
    doc = _one_json(env.run("--json", "audit", "verify"))
    assert doc["error"]["type"] == "StoreUnavailableError"
    assert env.sh("key", "list").returncode == 3
    # A store whose master key file is missing is unavailable too.
    env.run("init")
    env.key_file.unlink()
    result = env.run("key", "list")
    assert result.exit_code == 3 and "master key file" in result.stderr
    # ...and init refuses to paper over it with a fresh key.
    again = env.run("init")
    assert again.exit_code == 1 and "master key" in again.stderr and "missing" in again.stderr


def test_exit_4_when_the_rotation_lock_is_held(store) -> None:
    runner = pytest.importorskip("keylife.rotation.runner")
    with store.open() as m:
        # Due for rotation: it deactivates within the signing lead time.
        m.create_ring("k", "ec-p256", "signing", deactivate_at=m.now() + dt.timedelta(days=1))
        lease = m.store.acquire_lease(
            runner.LEASE_NAME, "another-host:1234", dt.timedelta(hours=1), m.now()
        )
        assert lease is not None
    result = store.run("rotate")
    assert result.exit_code == 4, (result.stdout, result.stderr)
    assert store.sh("rotate").returncode == 4
