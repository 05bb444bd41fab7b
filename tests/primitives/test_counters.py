"""Per-version encryption counters and ``max_messages`` (issue 12): counts persist and add up
across managers and processes, a crash loses at most one batch, the planner rotates at
``max_messages``, ``keylife rotate`` does it, a version past the NIST limit refuses to encrypt,
and counts never go down."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keylife
from keylife import counters
from keylife.errors import IntegrityError, MessageLimitError, PolicyError
from keylife.policy import MESSAGE_LIMIT, Purpose, default_policy, policy_from_dict
from keylife.rotation import run as rotation_run
from keylife.rotation.plan import StepKind, plan_ring, plan_rotation
from keylife.store.sqlite import MasterKeyFile, SqliteStore
from keylife.vault.counts import parse_counts
from tests.rings import fresh_ring

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
POLICY = """[purposes.data-encryption]
max_messages = 5
"""


def _open(sandbox: Path, **kw: object) -> keylife.KeyManager:
    return keylife.open(str(sandbox / "k.db"), master_key_file=sandbox / "mk", **kw)  # type: ignore[arg-type]


@pytest.fixture
def wall(sandbox: Path) -> Iterator[keylife.KeyManager]:
    """A new embedded store on the wall clock (other processes open it too)."""
    m = keylife.init(str(sandbox / "k.db"), master_key_file=sandbox / "mk")
    try:
        yield m
    finally:
        m.close()


def _stored(sandbox: Path, ring: str = "orders") -> dict[int, int]:
    with _open(sandbox) as m:
        return m.store.encryption_counts(ring)


def test_counts_persist_and_add_up_across_managers_and_processes(
    wall: keylife.KeyManager, sandbox: Path
) -> None:
    wall.create_ring("orders", "aes-256", "data-encryption")
    wall.create_ring("kek", "aes-256", "key-wrapping")
    wall.close()
    a, b = _open(sandbox), _open(sandbox, refresh=30)
    try:
        for _ in range(3):
            a.ring("orders").encrypt(b"x")
        for _ in range(4):
            b.ring("orders").encrypt(b"y")
        a.ring("kek").data_key()  # a wrap draws a nonce too
        b.ring("kek").wrap(os.urandom(32))
        b.ring("orders").decrypt(a.ring("orders").encrypt(b"z"))  # decrypting counts nothing
    finally:
        a.close()
        b.close()
    assert _stored(sandbox) == {1: 8}
    assert _stored(sandbox, "kek") == {1: 2}
    # another process, which exits without closing its manager: flushed at exit
    code = (
        "import sys, keylife\n"
        "m = keylife.open(sys.argv[1], master_key_file=sys.argv[2], refresh=30)\n"
        "r = m.ring('orders')\n"
        "for _ in range(5): r.encrypt(b'p')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLIFE_")}
    subprocess.run(
        [sys.executable, "-c", code, str(sandbox / "k.db"), str(sandbox / "mk")],
        check=True,
        timeout=60,
        env=env,
    )
    assert _stored(sandbox) == {1: 13}


def test_a_crash_loses_at_most_one_batch(wall: keylife.KeyManager, sandbox: Path) -> None:
    wall.create_ring("orders", "aes-256", "data-encryption")
    wall.close()
    code = (
        "import os, sys, keylife\n"
        "from keylife import counters\n"
        "counters.FLUSH_EVERY = 10\n"
        "m = keylife.open(sys.argv[1], master_key_file=sys.argv[2], refresh=30)\n"
        "r = m.ring('orders')\n"
        "for _ in range(25): r.encrypt(b'p')\n"
        "os._exit(3)  # killed: no close, no exit handlers\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLIFE_")}
    died = subprocess.run(
        [sys.executable, "-c", code, str(sandbox / "k.db"), str(sandbox / "mk")],
        timeout=60,
        env=env,
        check=False,
    )
    assert died.returncode == 3
    # the batches of 10 reached the store; the last 5 died with the process
    assert _stored(sandbox) == {1: 20}


def test_a_version_past_the_nist_limit_refuses_to_encrypt(
    wall: keylife.KeyManager, sandbox: Path
) -> None:
    wall.create_ring("orders", "aes-256", "data-encryption")
    wall.create_ring("kek", "aes-256", "key-wrapping")
    wall.store.add_encryptions({("orders", 1): MESSAGE_LIMIT - 2, ("kek", 1): MESSAGE_LIMIT})
    wall.close()
    with _open(sandbox, refresh=30) as m:
        ring = m.ring("orders")
        blob = ring.encrypt(b"one")
        ring.encrypt(b"two")  # the 2**32-th message
        with pytest.raises(MessageLimitError, match="rotate the ring") as info:
            ring.encrypt(b"three")
        assert info.value.ring == "orders" and info.value.version == 1
        assert ring.decrypt(blob) == b"one"  # processing is not limited
        with pytest.raises(MessageLimitError):
            m.ring("kek").data_key()
        m.rotate("orders")
        assert ring.decrypt(ring.encrypt(b"again")) == b"again"
    assert _stored(sandbox)[1] >= MESSAGE_LIMIT


def _ring(max_messages: int | None = 100) -> tuple[keylife.Ring, keylife.Policy]:
    ring, _ = fresh_ring("orders", "aes-256", created=T0, deactivation=T0 + dt.timedelta(365))
    policy = policy_from_dict(
        {"purposes": {"data-encryption": {"max_messages": max_messages or 1}}}
    )
    return ring, policy


def test_planner_rotates_at_max_messages() -> None:
    ring, policy = _ring(100)
    now = T0 + dt.timedelta(days=1)
    assert plan_ring(ring, policy, now, {1: 99}) == ([], T0 + dt.timedelta(365 - 14))
    steps, _ = plan_ring(ring, policy, now, {1: 100})
    assert [(s.kind, s.version) for s in steps] == [(StepKind.ROTATE, 1)]
    assert "max_messages" in steps[0].reason and "100" in steps[0].reason
    plan = plan_rotation([ring], policy, now, {"orders": {1: 250}})
    assert [s.kind for s in plan.steps] == [StepKind.ROTATE]
    assert not plan_rotation([ring], policy, now, {"other": {1: 250}}).steps
    # counts of an older version do not rotate the primary
    assert plan_ring(ring, policy, now, {7: 10**6})[0] == []


def test_default_max_messages_is_half_the_nist_limit() -> None:
    rules = default_policy().rules(Purpose.DATA_ENCRYPTION)
    assert rules.max_messages == MESSAGE_LIMIT // 2
    assert default_policy().rules(Purpose.KEY_WRAPPING).max_messages == MESSAGE_LIMIT // 2
    assert default_policy().rules(Purpose.SIGNING).max_messages is None


def test_rotate_cli_rotates_at_max_messages(sandbox: Path) -> None:
    (sandbox / "policy.toml").write_text(POLICY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLIFE_")}
    env.update(
        KEYLIFE_STORE=str(sandbox / "k.db"),
        KEYLIFE_MASTER_KEY_FILE=str(sandbox / "mk"),
        KEYLIFE_POLICY=str(sandbox / "policy.toml"),
    )
    with keylife.init(env["KEYLIFE_STORE"], master_key_file=env["KEYLIFE_MASTER_KEY_FILE"]) as m:
        m.create_ring("orders", "aes-256", "data-encryption")
        m.create_ring("quiet", "aes-256", "data-encryption")
        for _ in range(5):
            m.ring("orders").encrypt(b"x")
        m.ring("quiet").encrypt(b"x")

    def kl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "keylife_cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    dry = kl("rotate", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "max_messages" in dry.stdout and "orders" in dry.stdout and "quiet" not in dry.stdout
    shown = kl("policy", "show")
    assert "MAX MSGS" in shown.stdout and "2^31" in shown.stdout  # key-wrapping's default
    done = kl("rotate")
    assert done.returncode == 0, done.stderr
    with keylife.open(env["KEYLIFE_STORE"], master_key_file=env["KEYLIFE_MASTER_KEY_FILE"]) as m:
        assert m.ring("orders").primary().number == 2
        assert m.ring("quiet").primary().number == 1
    assert "max_messages" not in kl("rotate", "--dry-run").stdout  # v2 has counted nothing


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"signing": {"max_messages": 10}}, "only purposes whose keys encrypt"),
        ({"data-encryption": {"max_messages": 0}}, "from 1 to 4294967296"),
        ({"data-encryption": {"max_messages": MESSAGE_LIMIT + 1}}, "from 1 to"),
        ({"key-wrapping": {"max_messages": "2^31"}}, "whole number"),
        ({"key-wrapping": {"max_messages": True}}, "whole number"),
    ],
)
def test_max_messages_policy_errors(body: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        policy_from_dict({"purposes": body}, "p.toml")


@settings(max_examples=150, deadline=2000)
@given(st.one_of(st.integers(), st.text(max_size=8), st.floats(), st.none(), st.booleans()))
def test_max_messages_fuzz(value: object) -> None:
    try:
        policy = policy_from_dict({"purposes": {"key-wrapping": {"max_messages": value}}})
    except PolicyError:
        return
    assert 0 < policy.rules(Purpose.KEY_WRAPPING).max_messages <= MESSAGE_LIMIT  # type: ignore[operator]


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=2000)
@given(st.dictionaries(st.sampled_from(["v", "counts", "tx", "x"]), _JSONISH, max_size=4))
def test_vault_counter_document_fuzz(doc: dict[str, object]) -> None:
    """The Vault counter document parser: a keylife error or valid counts, nothing else."""
    try:
        counts = parse_counts(doc, "kl/cnt/orders")
    except IntegrityError:
        return
    assert all(isinstance(v, int) and v >= 0 for v in counts.values())


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(1, 3), st.integers(0, 50)),
        min_size=1,
        max_size=25,
    )
)
def test_counts_never_go_down(tmp_path_factory: pytest.TempPathFactory, ops: list) -> None:
    """Whatever processes (tallies) count and flush, in any order, a stored count never
    decreases and ends as the sum of everything counted."""
    tmp = tmp_path_factory.mktemp("counts")
    store = SqliteStore.init(tmp / "k.db", MasterKeyFile(tmp / "mk"))
    others = [SqliteStore(tmp / "k.db", MasterKeyFile(tmp / "mk")) for _ in range(2)]
    stores = [store, *others]
    tallies = [counters.Tally(s) for s in stores]
    seen: dict[int, int] = {}
    counted: dict[int, int] = {}
    try:
        for who, version, n in ops:
            c = tallies[who].counter("r", version)
            for _ in range(n):
                next(c.messages)
            counted[version] = counted.get(version, 0) + n
            if n % 2 == 0:
                tallies[who].flush()
            now = store.encryption_counts("r")
            for v, total in now.items():
                assert total >= seen.get(v, 0)
            seen = now
        for t in tallies:
            t.flush()
        assert store.encryption_counts("r") == {v: n for v, n in counted.items() if n}
    finally:
        for s in stores:
            s.close()


def test_short_blobs_on_the_fast_path_are_refused(wall: keylife.KeyManager, sandbox: Path) -> None:
    """The length check runs off the fast path only: a truncated blob whose header matches a
    cached version still gets the opaque DecryptionError, never a ValueError."""
    from keylife.errors import DecryptionError

    wall.create_ring("orders", "aes-256", "data-encryption")
    with _open(sandbox, refresh=30) as m:
        ring = m.ring("orders")
        blob = ring.encrypt(b"payload")
        assert ring.decrypt(blob) == b"payload"  # the fast path now holds v1's header
        for n in range(len(blob)):
            with pytest.raises(DecryptionError):
                ring.decrypt(blob[:n])
            with pytest.raises(DecryptionError):
                ring.decrypt(bytearray(blob[:n]))


@pytest.mark.vault
def test_counts_on_openbao_with_a_service_token(
    vault_env: Any, mounts: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service holding only `keylife vault policy RING` counts its encryptions into
    `cnt/RING`; two services' counts add up, and `keylife rotate` rotates at max_messages."""
    from click.testing import CliRunner
    from keylife_cli.main import cli

    from keylife.vault import VaultKeyStore

    kv, _ = mounts
    url = vault_env.store_url(*mounts)
    assert CliRunner().invoke(cli, ["--store", url, "vault", "setup"]).exit_code == 0
    with keylife.open(VaultKeyStore.from_url(url), actor="op") as m:
        m.create_ring("web", "aes-256", "data-encryption")
    hcl = CliRunner().invoke(cli, ["--store", url, "vault", "policy", "web"]).output
    assert vault_env.api("POST", "sys/policies/acl/svc-web", {"policy": hcl})[0] == 204
    status, tok = vault_env.api("POST", "auth/token/create", {"policies": ["svc-web"], "ttl": "1h"})
    assert status == 200
    monkeypatch.setenv("VAULT_TOKEN", tok["auth"]["client_token"])
    services = [keylife.open(VaultKeyStore.from_url(url), refresh=30) for _ in range(2)]
    try:
        for n, svc in zip((3, 4), services, strict=True):
            ring = svc.ring("web")
            for _ in range(n):
                ring.decrypt(ring.encrypt(b"x"))
    finally:
        for svc in services:
            svc.close()
    monkeypatch.setenv("VAULT_TOKEN", vault_env.token)
    status, body = vault_env.api("GET", f"{kv}/data/cnt/web")
    assert status == 200 and body["data"]["data"]["counts"] == {"1": 7}
    policy = policy_from_dict({"purposes": {"data-encryption": {"max_messages": 7}}})
    with keylife.open(VaultKeyStore.from_url(url), actor="op", policy=policy) as m:
        assert m.store.encryption_counts("web") == {1: 7}
        report = rotation_run(m)
        assert [s.message for r in report.rings for s in r.steps if "max_messages" in s.message]
        assert m.ring("web").primary().number == 2


def test_a_flush_follows_the_interval(tmp_path: Path) -> None:
    """Counts reach the store within FLUSH_INTERVAL of use, not only every FLUSH_EVERY."""
    now = [100.0]
    store = SqliteStore.init(tmp_path / "k.db", MasterKeyFile(tmp_path / "mk"))
    try:
        tally = counters.Tally(store, monotonic=lambda: now[0])
        for _ in range(3):
            tally.count("r", 1)
        assert store.encryption_counts("r") == {}
        now[0] += counters.FLUSH_INTERVAL
        tally.count("r", 1)
        assert store.encryption_counts("r") == {1: 4}
    finally:
        store.close()


def test_a_quiet_ring_that_reaches_max_messages_is_planned(sandbox: Path) -> None:
    """The embedded store skips rings a run found quiet until their next event; counting
    messages writes no ring, so the count itself must void that record or a ring at
    max_messages would be skipped until the daily re-check."""
    (sandbox / "policy.toml").write_text(POLICY)
    store, mk = str(sandbox / "k.db"), sandbox / "mk"
    policy = keylife.load_policy(sandbox / "policy.toml")
    with keylife.init(store, master_key_file=mk, policy=policy) as m:
        m.create_ring("orders", "aes-256", "data-encryption")
        assert keylife.rotation.run(m).ok  # nothing due: "orders" is recorded quiet
        assert keylife.rotation.run(m).nothing_due
    with keylife.open(store, master_key_file=mk, policy=policy) as m:
        for _ in range(5):
            m.ring("orders").encrypt(b"x")
    with keylife.open(store, master_key_file=mk, policy=policy) as m:
        report = keylife.rotation.run(m)
        assert report.ok, report
        assert m.ring("orders").primary().number == 2


def test_a_run_reads_each_rings_counts_once(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan before the lease, the plan under it and the rotation's own check share one
    read of a ring's counts (on Vault each read is a request per ring)."""
    (sandbox / "policy.toml").write_text(POLICY)
    policy = keylife.load_policy(sandbox / "policy.toml")
    with keylife.init(str(sandbox / "k.db"), master_key_file=sandbox / "mk", policy=policy) as m:
        for name in ("orders", "quiet", "other"):
            m.create_ring(name, "aes-256", "data-encryption")
        for _ in range(5):
            m.ring("orders").encrypt(b"x")
    with keylife.open(str(sandbox / "k.db"), master_key_file=sandbox / "mk", policy=policy) as m:
        reads: list[str] = []
        read = m.store.encryption_counts

        def spy(ring: str) -> dict[int, int]:
            reads.append(ring)
            return read(ring)

        monkeypatch.setattr(m.store, "encryption_counts", spy)
        report = rotation_run(m)
        assert report.ok and [r.ring for r in report.rings] == ["orders"]
        assert sorted(reads) == ["orders", "other", "quiet"], reads
