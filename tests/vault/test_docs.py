"""docs/vault.md: its Python examples run, in order, against a real OpenBao dev server, and
the policy it shows is the one `keylife vault policy` prints."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

import keylife
from keylife.vault import VaultKeyStore, open_store
from tests.vault.conftest import DevServer

pytestmark = pytest.mark.vault

DOC = Path(__file__).resolve().parents[2] / "docs" / "vault.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_docs_examples_run(
    vault_env: DevServer,
    mounts: tuple[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = vault_env.store_url(*mounts)
    clock = keylife.FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    with keylife.open(open_store(url, create=True), actor="ops", clock=clock) as m:
        m.create_ring("payments-signing", "ec-p256", "signing")
        clock.advance(dt.timedelta(hours=12))
        m.rotate("payments-signing")
    source = keylife.init(str(tmp_path / "db" / "k.db"), master_key_file=tmp_path / "mk")
    source.create_ring("from-sqlite", "aes-256")
    target = f"vault://{vault_env.addr.split('://')[1]}/{mounts[0]}-copy?transit={mounts[1]}"
    blocks = _blocks("python")
    assert len(blocks) >= 2
    namespace: dict[str, object] = {
        "__name__": "docs_vault",
        "STORE_URL": url,
        "SOURCE_STORE": source.store,
        "TARGET_URL": target,
        "TRANSIT": mounts[1],
        "CIPHERTEXTS": str(tmp_path / "cts.txt"),
    }
    try:
        for number, block in enumerate(blocks, 1):
            exec(compile(block, f"docs/vault.md python block {number}", "exec"), namespace)
    finally:
        source.close()
    from cryptography.hazmat.primitives.asymmetric import ec

    assert isinstance(namespace["signing_key"], ec.EllipticCurvePrivateKey)
    assert namespace["old"].number == 1  # type: ignore[attr-defined]
    out = capsys.readouterr().out
    assert out.split()[:2] == ["1", "1"]
    assert "2 ['destroyed', 'active']" in out
    with VaultKeyStore.from_url(target) as copy:
        assert copy.list_ring_names() == ["from-sqlite"]
    # the transit-resident example: every ciphertext rewrapped to v2, v1 trimmed
    lines = (tmp_path / "cts.txt").read_text().splitlines()
    assert len(lines) == 5 and all(line.startswith("vault:v2:") for line in lines)
    assert not (tmp_path / "cts.txt.rewrap-checkpoint").exists()
    status, key = vault_env.api("GET", f"{mounts[1]}/keys/kl-invoices")
    assert status == 200 and sorted(key["data"]["keys"]) == ["2"]
    status, plain = vault_env.api(
        "POST", f"{mounts[1]}/decrypt/kl-invoices", {"ciphertext": lines[4]}
    )
    assert status == 200 and plain["data"]["plaintext"] == "aW52b2ljZSA0"  # "invoice 4"


def test_docs_policy_matches_generated() -> None:
    import base64

    from keylife.vault.policy import service_policy
    from keylife.vault.transit import context_prefix

    text = DOC.read_text()
    assert base64.b64encode(context_prefix("payments-signing")).decode() + "*" in text
    with VaultKeyStore.from_url("vault://127.0.0.1:1/keylife") as store:
        hcl = service_policy(store, "payments-signing")
    for line in re.findall(r'path "([^"]+)"', hcl):
        assert f'path "{line}"' in text
