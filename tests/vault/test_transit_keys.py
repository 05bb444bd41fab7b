"""Transit-resident keys on a real OpenBao server: versions under the lifecycle, Transit's floors
raised and trimmed, `keylife vault rewrap` in resumable batches, and its dry run."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from keylife_cli.main import cli

from keylife.clock import SystemClock
from keylife.errors import InvalidTransitionError, KeylifeError
from keylife.manager import KeyManager
from keylife.rotation import run
from keylife.vault import TransitKeyView, TransitRings, VaultKeyStore
from keylife.vault.rewrap import plan_rewrap
from tests.vault.conftest import DevServer

pytestmark = pytest.mark.vault


def encrypt(env: DevServer, transit: str, key: str, texts: list[bytes], version: int = 0) -> Any:
    items: list[dict[str, Any]] = [{"plaintext": base64.b64encode(t).decode()} for t in texts]
    for item in items:
        if version:
            item["key_version"] = version
    status, out = env.api("POST", f"{transit}/encrypt/{key}", {"batch_input": items})
    if status != 200:
        return status, out
    results = out["data"]["batch_results"]
    if any("error" in r and r["error"] for r in results):
        return 400, results
    return [r["ciphertext"] for r in results]


def decrypt(env: DevServer, transit: str, key: str, ct: str) -> tuple[int, bytes | None]:
    status, out = env.api("POST", f"{transit}/decrypt/{key}", {"ciphertext": ct})
    if status != 200:
        return status, None
    return status, base64.b64decode(out["data"]["plaintext"])


def transit_rings(store: VaultKeyStore, actor: str = "ops") -> TransitRings:
    return store.transit_rings(actor=actor, clock=SystemClock())


def states(view: TransitKeyView) -> list[str]:
    return [v.state.value for v in view.ring.versions]


def key_info(env: DevServer, transit: str, key: str) -> dict[str, Any]:
    status, out = env.api("GET", f"{transit}/keys/{key}")
    assert status == 200, out
    return dict(out["data"])


def test_versions_under_the_lifecycle(
    vault_store: VaultKeyStore, vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    transit = mounts[1]
    tk = transit_rings(vault_store)
    ring = tk.create("payments")
    assert ring.key == "kl-payments" and states(ring) == ["active"]
    assert ring.ring.purpose == "data-encryption" and ring.ring.spec.name == "aes-256"
    assert ring.ring.attributes == {"transit_key": "kl-payments"}
    assert ring.version(1).fingerprint == "transit:payments:v1"
    info = key_info(vault_env, transit, "kl-payments")
    assert info["exportable"] is False and info["allow_plaintext_backup"] is False
    (ct1,) = encrypt(vault_env, transit, "kl-payments", [b"one"])
    assert ct1.startswith("vault:v1:")

    # a new version supersedes the old one (at most one protects): v1 stops encrypting
    ring = tk.rotate("payments")
    assert ring.latest == 2 and states(ring) == ["deactivated", "active"]
    assert ring.ring.versions[0].deactivation is not None
    assert ring.to_dict()["versions"][0]["deactivated"] is not None
    (ct2,) = encrypt(vault_env, transit, "kl-payments", [b"two"])
    assert ct2.startswith("vault:v2:")
    with pytest.raises(KeylifeError, match="rotate"):
        tk.deactivate("payments", 2)  # the newest: rotate first
    with pytest.raises(InvalidTransitionError, match="v1 is deactivated; cannot deactivate"):
        tk.deactivate("payments", 1)
    assert key_info(vault_env, transit, "kl-payments")["min_encryption_version"] == 2
    status, body = encrypt(vault_env, transit, "kl-payments", [b"x"], version=1)
    assert status == 400 and "minimum encryption key version" in json.dumps(body), body
    assert decrypt(vault_env, transit, "kl-payments", ct1) == (200, b"one")  # still decrypts

    # compromise raises min_decryption_version and trims: v1 ciphertexts are refused
    ring = tk.compromise("payments", 1, reason="leaked")
    assert states(ring) == ["compromised", "active"]
    assert ring.ring.versions[0].revocation_message == "leaked"
    info = key_info(vault_env, transit, "kl-payments")
    assert info["min_decryption_version"] == 2 and info["min_available_version"] == 2
    assert sorted(info["keys"]) == ["2"]  # trimmed: v1 is gone from Vault
    assert decrypt(vault_env, transit, "kl-payments", ct1)[0] == 400
    assert decrypt(vault_env, transit, "kl-payments", ct2) == (200, b"two")

    # compromising the newest version rotates first, so a usable version remains
    ring = tk.compromise("payments", 2)
    assert ring.latest == 3
    assert states(ring) == ["compromised", "compromised", "active"]
    assert decrypt(vault_env, transit, "kl-payments", ct2)[0] == 400
    (ct3,) = encrypt(vault_env, transit, "kl-payments", [b"three"])
    assert ct3.startswith("vault:v3:")
    assert transit_rings(vault_store).names() == ["payments"]
    records = [(r.action, r.version) for r in vault_store.read_audit()]
    assert records == [
        ("create", 1),
        ("rotate", 2),
        ("deactivate", 1),
        ("compromise", 1),
        ("rotate", 3),
        ("deactivate", 2),
        ("compromise", 2),
    ]


def test_destroy_marks_older_versions_and_trims(
    vault_store: VaultKeyStore, vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    tk = transit_rings(vault_store)
    tk.create("logs")
    for _ in range(3):
        tk.rotate("logs")
    with pytest.raises(KeylifeError):
        tk.destroy("logs", 4)
    scheduled = tk.destroy("logs", 2)  # a destroy_wait later; nothing is trimmed yet
    assert states(scheduled) == ["deactivated", "deactivated", "deactivated", "active"]
    assert sorted(key_info(vault_env, mounts[1], "kl-logs")["keys"]) == ["1", "2", "3", "4"]
    week = SystemClock().now() + dt.timedelta(days=7)
    assert run(KeyManager(vault_store, actor="ops"), now=week, rings=["transit:logs"]).ok
    ring = tk.show("logs")
    assert states(ring) == ["destroyed", "destroyed", "deactivated", "active"]
    assert "below the decryption floor" in ring.ring.versions[0].revocation_message
    info = key_info(vault_env, mounts[1], "kl-logs")
    assert info["min_decryption_version"] == 3 and sorted(info["keys"]) == ["3", "4"]
    with pytest.raises(InvalidTransitionError, match="v2 is destroyed; cannot destroy"):
        tk.destroy("logs", 2)


def _ciphertext_file(
    env: DevServer, transit: str, path: Path, n: int
) -> tuple[list[bytes], list[str]]:
    texts = [f"secret-{i}".encode() for i in range(n)]
    cts = encrypt(env, transit, "kl-docs", texts)
    path.write_text("".join(c + "\n" for c in cts))
    return texts, cts


def test_rewrap_in_batches_killed_and_resumed(
    vault_store: VaultKeyStore, vault_env: DevServer, mounts: tuple[str, str], tmp_path: Path
) -> None:
    transit = mounts[1]
    tk = transit_rings(vault_store)
    tk.create("docs")
    path = tmp_path / "cts.txt"
    texts, _ = _ciphertext_file(vault_env, transit, path, 60)
    tk.rotate("docs")

    # a real process, SIGKILLed by itself right after its third batch
    script = f"""
import os, signal
from keylife.clock import SystemClock
from keylife.manager import KeyManager
from keylife.rotation import run
from keylife.vault import VaultKeyStore
from keylife.vault.rewrap import rewrap_file
store = VaultKeyStore.from_url({vault_store.url!r})
rings = store.transit_rings(actor="t", clock=SystemClock())
def progress(done, total):
    if done >= 21:
        os.kill(os.getpid(), signal.SIGKILL)
rewrap_file(rings, "docs", {str(path)!r}, batch_size=7, progress=progress)
"""
    proc = subprocess.run([sys.executable, "-c", script], env=dict(os.environ), timeout=60)
    assert proc.returncode == -9
    lines = path.read_text().splitlines()
    assert len(lines) == 60
    assert [line.split(":")[1] for line in lines] == ["v2"] * 21 + ["v1"] * 39
    checkpoint = json.loads((tmp_path / "cts.txt.rewrap-checkpoint").read_text())
    assert checkpoint == {"target_version": 2, "next_line": 21}
    assert not list(tmp_path.glob(".cts.txt.*"))  # no temporary file left behind

    result = CliRunner().invoke(
        cli,
        [
            *("--store", vault_store.url, "--json", "vault", "rewrap", "docs"),
            str(path),
            "--batch-size",
            "7",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc == {
        "target_version": 2,
        "rewrapped": 39,
        "batches": 6,
        "resumed_from_line": 21,
    }
    lines = path.read_text().splitlines()
    assert all(line.startswith("vault:v2:") for line in lines)
    assert not (tmp_path / "cts.txt.rewrap-checkpoint").exists()
    assert [decrypt(vault_env, transit, "kl-docs", c)[1] for c in lines] == texts
    # nothing left to do: a second run makes no Vault rewrap call
    again = CliRunner().invoke(
        cli, ["--store", vault_store.url, "vault", "rewrap", "docs", str(path)]
    )
    assert again.exit_code == 0 and "rewrapped 0 ciphertexts" in again.output


def test_dry_run_lists_ciphertexts_on_the_version_to_be_trimmed(
    vault_store: VaultKeyStore, vault_env: DevServer, mounts: tuple[str, str], tmp_path: Path
) -> None:
    transit = mounts[1]
    tk = transit_rings(vault_store)
    tk.create("docs")
    path = tmp_path / "cts.txt"
    _texts, v1 = _ciphertext_file(vault_env, transit, path, 3)
    tk.rotate("docs")
    v2 = encrypt(vault_env, transit, "kl-docs", [b"new"])
    path.write_text("\n".join([v1[0], v2[0], v1[1], "not a ciphertext", v1[2]]) + "\n")
    before = path.read_text()

    result = CliRunner().invoke(
        cli,
        ["--store", vault_store.url, "--json", "vault", "rewrap", "docs", str(path), "--dry-run"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["target_version"] == 2 and plan["to_rewrap"] == 3
    assert plan["versions"] == [
        {
            "version": 1,
            "state": "deactivated",
            "ciphertexts": 3,
            "lines": [1, 3, 5],
            "trimmed_if_compromised_or_destroyed": True,
        }
    ]
    assert plan["invalid_lines"] == [4] and plan["unusable_lines"] == []
    assert path.read_text() == before  # a dry run changes nothing
    text = CliRunner().invoke(
        cli, ["--store", vault_store.url, "vault", "rewrap", "docs", str(path), "--dry-run"]
    )
    assert "v1 (deactivated): 3 ciphertexts, lines 1, 3, 5" in text.output
    assert "not Transit ciphertexts: lines 4\n" in text.output

    # compromise v1 without rewrapping: exactly those lines become undecryptable
    tk.compromise("docs", 1)
    after = plan_rewrap(tk, "docs", path)
    assert after.unusable == [1, 3, 5] and after.states[1] == "compromised"
    assert [decrypt(vault_env, transit, "kl-docs", c)[0] for c in v1] == [400, 400, 400]


def test_transit_cli_keeps_its_output(vault_store: VaultKeyStore) -> None:
    def keylife(*args: str) -> Any:
        result = CliRunner().invoke(
            cli, ["--store", vault_store.url, "--actor", "cli-op", "--json", "vault", *args]
        )
        return result.exit_code, json.loads(result.output) if result.output else None

    code, doc = keylife("transit", "create", "cli-ring")
    assert code == 0 and doc["key"] == "kl-cli-ring" and doc["key_type"] == "aes256-gcm96"
    code, doc = keylife("transit", "rotate", "cli-ring")
    assert code == 0 and doc["latest_version"] == 2 and doc["min_encryption_version"] == 2
    assert [v["state"] for v in doc["versions"]] == ["deactivated", "active"]
    assert set(doc["versions"][0]) == {
        "number",
        "state",
        "created",
        "deactivated",
        "compromised",
        "destroyed",
        "reason",
    }
    code, doc = keylife("transit", "show", "cli-ring")
    assert code == 0 and doc["transit"]["latest_version"] == 2
    code, doc = keylife("transit", "deactivate", "cli-ring", "2")
    assert code == 1 and "rotate before deactivating it" in doc["error"]["message"]
    code, doc = keylife("transit", "create", "bad name")
    assert code == 1 and "ring name 'bad name' is not allowed" in doc["error"]["message"]
    actors = {r.actor for r in vault_store.read_audit() if r.ring == "transit:cli-ring"}
    assert actors == {"cli-op"}
