"""Issue 11, item 4: a compromised version is usable only through an explicit, audited call
that names a reason, and only to process (decrypt), never to protect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from keylife_cli.main import cli

import keylife
from keylife.errors import KeylifeError, LifecycleError, MaterialUnavailableError


@pytest.fixture
def m(tmp_path: Path) -> Iterator[keylife.KeyManager]:
    with keylife.init(str(tmp_path / "k.db"), master_key_file=tmp_path / "mk") as manager:
        yield manager


def test_compromised_data_can_be_recovered_only_explicitly(m: keylife.KeyManager) -> None:
    m.create_ring("orders", purpose="data-encryption")
    box = m.ring("orders").encrypt(b"card 4111", b"order-1")
    result = m.compromise("orders")
    assert any("keylife key recover orders 1 --reason" in d for d in result.dependents)
    ring = m.ring("orders")
    with pytest.raises(KeylifeError):
        ring.decrypt(box, b"order-1")  # the ordinary path refuses a compromised version
    with pytest.raises(MaterialUnavailableError):
        ring.version(1)
    with pytest.raises(LifecycleError, match="needs a reason"):
        ring.recover(1, reason=" ")
    before = len(m.audit_records("orders"))
    recovered = ring.recover(1, reason="INC-42: re-encrypt order 1")
    assert recovered.decrypt(box, b"order-1") == b"card 4111"
    assert "card" not in repr(recovered)
    assert not recovered.key.protects
    assert not hasattr(recovered.key.aead(), "encrypt")  # process-only: it cannot protect
    records = m.audit_records("orders")[before:]
    assert [(r.action, r.version, r.reason) for r in records] == [
        ("recover", 1, "INC-42: re-encrypt order 1")
    ]
    with pytest.raises(LifecycleError, match="recover is for compromised versions"):
        ring.recover(2, reason="not compromised")


def test_cli_recover(tmp_path: Path) -> None:
    env = {"KEYLIFE_STORE": str(tmp_path / "c.db"), "KEYLIFE_MASTER_KEY_FILE": str(tmp_path / "m")}
    invoke = CliRunner(env=env).invoke
    assert invoke(cli, ["init"]).exit_code == 0
    assert invoke(cli, ["key", "create", "orders", "--purpose", "data-encryption"]).exit_code == 0
    with keylife.open(str(tmp_path / "c.db"), master_key_file=tmp_path / "m") as m:
        box = m.ring("orders").encrypt(b"secret row")
        m.compromise("orders")
    (tmp_path / "box").write_bytes(box)
    args = ["key", "recover", "orders", "1", "--in", str(tmp_path / "box")]
    assert invoke(cli, args).exit_code == 2  # --reason is required
    done = invoke(cli, [*args, "--reason", "migrate", "--out", str(tmp_path / "plain")])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "plain").read_bytes() == b"secret row"
