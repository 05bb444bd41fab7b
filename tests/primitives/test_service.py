"""Long-running services: ``keylife.open(..., refresh=N)`` caches ring documents and unsealed
keys for a bounded time, thread-safe, and picks up rotations made by other processes within
the interval, on the embedded store and on a real OpenBao."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import keylife
from keylife.ringcache import CachedStore
from keylife.rotation import run as rotate_run

REFRESH = 1.0
#: Scheduling slack on a shared 2-core machine, on top of the refresh interval.
SLACK = 1.5
ROTATIONS = 20


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_serves_reads_until_the_interval_ends(sandbox) -> None:
    db, key = str(sandbox / "k.db"), sandbox / "mk"
    keylife.init(db, master_key_file=key).close()
    writer = keylife.open(db, master_key_file=key)
    writer.create_ring("svc", "aes-256", "data-encryption")
    service = keylife.open(db, master_key_file=key, refresh=30)
    assert isinstance(service.store, CachedStore)
    ticker = Ticker()
    service.store.monotonic = ticker
    ring = service.ring("svc")
    reads: list[str] = []
    inner_load = service.store.inner.load_ring

    def counting(name: str) -> keylife.Ring | None:
        reads.append(name)
        return inner_load(name)

    service.store.inner.load_ring = counting  # type: ignore[method-assign]
    old = ring.encrypt(b"one")
    for _ in range(100):
        assert ring.decrypt(ring.encrypt(b"x")) == b"x"
    assert len(reads) <= 1  # served from memory
    writer.rotate("svc")  # another process, as far as the service can tell
    assert ring.version_of(ring.encrypt(b"still v1")) == 1
    new = writer.ring("svc").encrypt(b"two")  # a newer version than the cache knows
    assert ring.decrypt(new) == b"two"  # forces a refresh at once
    ticker.now += 31
    assert ring.version_of(ring.encrypt(b"now v2")) == 2
    assert ring.decrypt(old) == b"one"
    writer.rotate("svc")
    ticker.now += 31
    assert service.ring("svc").primary().number == 3
    service.close()
    writer.close()


@dataclass
class Service:
    ring: keylife.KeyRing
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    boxes: list[tuple[bytes, bytes]] = field(default_factory=list)
    seen: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, version)
    failures: list[BaseException] = field(default_factory=list)
    operations: int = 0

    def run(self) -> None:
        rng = random.Random(os.getpid())
        while not self.stop.is_set():
            try:
                plain = rng.randbytes(rng.randint(0, 300))
                box = self.ring.encrypt(plain, b"svc")
                with self.lock:
                    self.seen.append((time.monotonic(), self.ring.version_of(box)))
                    self.boxes.append((box, plain))
                    earlier, expected = rng.choice(self.boxes)
                assert self.ring.decrypt(earlier, b"svc") == expected
                self.operations += 1
            except BaseException as exc:
                self.failures.append(exc)
                return
            time.sleep(0.002)


def run_service_through_rotations(
    service_manager: keylife.KeyManager, rotations: list[tuple[str, list[str]]]
) -> None:
    """Two service threads per ring encrypt and decrypt while each ``(ring, command)`` of
    ``rotations`` (a CLI rotation) runs in another process, one after the other."""
    services = {name: Service(service_manager.ring(name)) for name, _ in rotations}
    threads = [threading.Thread(target=s.run) for s in services.values() for _ in range(2)]
    for t in threads:
        t.start()
    expected = dict.fromkeys(services, 1)
    try:
        for name, command in rotations:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
            assert proc.returncode == 0, proc.stderr
            expected[name] += 1
            service, n = services[name], expected[name]
            done = time.monotonic()
            deadline = done + REFRESH + SLACK
            while time.monotonic() < deadline:
                with service.lock:
                    if any(v >= n and at >= done for at, v in service.seen[-50:]):
                        break
                time.sleep(0.01)
            else:
                pytest.fail(f"no {name} ciphertext under v{n} within {REFRESH + SLACK} s")
            assert not service.failures, service.failures
    finally:
        for service in services.values():
            service.stop.set()
        for t in threads:
            t.join(10)
    for name, service in services.items():
        assert not service.failures, service.failures
        assert service.operations > 0
        assert max(v for _, v in service.seen) == expected[name]
        fresh = service_manager.ring(name)
        for box, plain in service.boxes:  # every ciphertext decrypts
            assert fresh.decrypt(box, b"svc") == plain


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "keylife_cli", *args]


def test_service_through_20_cli_rotations_on_sqlite(sandbox: Path) -> None:
    db, key = str(sandbox / "k.db"), sandbox / "mk"
    with keylife.init(db, master_key_file=key) as m:
        m.create_ring("svc", "aes-256", "data-encryption")
    with keylife.open(db, master_key_file=key, refresh=REFRESH) as service:
        rotate = _cli("--store", db, "--master-key-file", str(key), "key", "rotate", "svc")
        run_service_through_rotations(service, [("svc", rotate)] * ROTATIONS)


@pytest.mark.vault
def test_service_through_20_cli_rotations_on_openbao(vault_env, mounts) -> None:
    """20 rotations over two rings (10 each)."""
    url = vault_env.store_url(*mounts)
    with keylife.init(url) as m:
        m.create_ring("svc-a", "aes-256", "data-encryption")
        m.create_ring("svc-b", "chacha20", "data-encryption")
    rotations = [
        (name, _cli("--store", url, "key", "rotate", name)) for name in ("svc-a", "svc-b") * 10
    ]
    with keylife.open(url, refresh=REFRESH) as service:
        run_service_through_rotations(service, rotations)


@pytest.mark.vault
def test_a_vault_ring_takes_40_rotations(vault_env, mounts) -> None:
    """The ring document travels as one JSON string: OpenBao's max_request_json_strings refused
    the nested document after 13 rotations."""
    with keylife.init(vault_env.store_url(*mounts)) as m:
        m.create_ring("many", "aes-256", "data-encryption")
        for _ in range(40):
            m.rotate("many")
        assert m.ring("many").primary().number == 41
        assert len(m.load("many").versions) == 41


def test_a_change_through_the_same_manager_is_seen_at_once(sandbox) -> None:
    db, key = str(sandbox / "k.db"), sandbox / "mk"
    keylife.init(db, master_key_file=key).close()
    with keylife.open(db, master_key_file=key, refresh=300) as m:
        m.create_ring("svc", "aes-256", "data-encryption")
        ring = m.ring("svc")
        first = ring.encrypt(b"one")
        assert ring.version_of(first) == 1
        m.rotate("svc")  # the commit drops the ring from the cache and from ring's fast path
        assert ring.version_of(ring.encrypt(b"two")) == 2
        m.destroy("svc", 1)
        assert ring.decrypt(first) == b"one"  # scheduled: still readable
        rotate_run(m, now=m.now() + m.policy.destroy_wait)
        with pytest.raises(keylife.KeylifeError):
            ring.decrypt(first)


def test_made_up_versions_force_at_most_one_reread_per_interval(sandbox) -> None:
    db, key = str(sandbox / "k.db"), sandbox / "mk"
    keylife.init(db, master_key_file=key).close()
    with keylife.open(db, master_key_file=key, refresh=300) as m:
        m.create_ring("svc", "aes-256", "data-encryption")
        ticker = Ticker()
        m.store.monotonic = ticker
        box = m.ring("svc").encrypt(b"x")
        forged = box[:1] + (99).to_bytes(4, "big") + box[5:]
        reads: list[str] = []
        inner_load = m.store.inner.load_ring

        def counting(name: str) -> keylife.Ring | None:
            reads.append(name)
            return inner_load(name)

        m.store.inner.load_ring = counting  # type: ignore[method-assign]
        for _ in range(50):  # a new KeyRing per request, as a web service would do
            with pytest.raises(keylife.DecryptionError):
                m.ring("svc").decrypt(forged)
        assert len(reads) == 1
        ticker.now += 1
        with pytest.raises(keylife.DecryptionError):
            m.ring("svc").decrypt(forged)
        assert len(reads) == 2
