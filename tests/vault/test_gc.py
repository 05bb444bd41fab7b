"""`keylife vault gc` (issue 17 item 9): unreferenced material blobs older than a margin are
listed (dry run by default) and erased with --apply; referenced and young blobs stay."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from keylife_cli.main import cli

import keylife
from keylife.vault import VaultKeyStore
from keylife.vault.gc import collect
from tests.vault.conftest import DevServer

pytestmark = pytest.mark.vault


def blob(env: DevServer, mount: str, path: str) -> None:
    status, body = env.api(
        "POST", f"{mount}/data/{path}", {"options": {"cas": 0}, "data": {"ct": "vault:v1:AAAA"}}
    )
    assert status == 200, body


def test_gc_lists_then_erases_only_old_unreferenced_blobs(
    vault_env: DevServer, mounts: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    mount = mounts[0]
    url = vault_env.store_url(*mounts)
    with keylife.init(url, actor="test") as m:
        m.create_ring("web", "ec-p256", "signing")
        m.rotate("web")
    blob(vault_env, mount, "m/web/1/0000orphan")  # a crash before the commit point
    blob(vault_env, mount, "m/gone/1/0000ghost")  # its ring document deleted
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    with VaultKeyStore.from_url(url) as store:
        young = collect(store.kv, now=dt.datetime.now(dt.UTC))
        assert not young.orphans and len(young.young) == 2  # within the margin: kept
        report = collect(store.kv, now=later)
        assert sorted((o.ring, o.blob) for o in report.orphans) == [
            ("gone", "0000ghost"),
            ("web", "0000orphan"),
        ]
        assert report.dry_run and report.removed == 0
    # the CLI: a dry run by default, --apply erases
    result = CliRunner().invoke(cli, ["--json", "--store", url, "vault", "gc", "--min-age", "60"])
    assert result.exit_code == 0, result.stdout
    doc = json.loads(result.stdout)
    assert doc["dry_run"] is True and doc["removed"] == 0
    assert vault_env.api("GET", f"{mount}/data/m/web/1/0000orphan")[0] == 200
    with VaultKeyStore.from_url(url) as store:
        done = collect(store.kv, now=later, apply=True)
        assert done.removed == 2
        assert collect(store.kv, now=later).orphans == []
    assert vault_env.api("GET", f"{mount}/data/m/web/1/0000orphan")[0] == 404
    assert vault_env.api("GET", f"{mount}/metadata/m/gone/1/0000ghost")[0] == 404
    with keylife.open(url, actor="test") as m:  # the referenced material is intact
        ring = m.ring("web")
        assert ring.primary().number == 2 and ring.version(1).number == 1
