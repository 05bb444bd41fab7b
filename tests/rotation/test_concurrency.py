"""``keylife rotate --concurrency N``: the thread pool of the runner and its stop rules (the
Vault side, on a real OpenBao, is in tests/vault/test_concurrent_rotation.py)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest

from keylife.errors import KeylifeError, StoreError, StoreUnavailableError
from keylife.rotation import run
from keylife.rotation.pool import apply_rings
from keylife.rotation.results import RingResult
from keylife.rotation.runner import Runner
from keylife.vault.batching import Coalescer

from .conftest import StoreEnv


def test_concurrency_out_of_range_is_a_usage_error_that_says_what_is_allowed(
    store_env: StoreEnv,
) -> None:
    for bad in ("0", "-3", "257"):
        r = store_env.run("rotate", "--concurrency", bad)
        assert r.returncode == 2, r.stderr
        assert "--concurrency must be from 1 to 256" in r.stderr and bad in r.stderr
    with store_env.manager() as m, pytest.raises(KeylifeError, match="from 1 to 256"):
        Runner(m, concurrency=0)


def test_embedded_store_defaults_to_one_and_threads_still_rotate_each_ring_once(
    store_env: StoreEnv,
) -> None:
    names = store_env.make_due(12)
    with store_env.manager() as m:
        assert Runner(m).concurrency == 1
    r = store_env.run("--json", "rotate", "--concurrency", "4")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert sorted(x["ring"] for x in doc["rings"] if x["status"] == "succeeded") == names
    with store_env.manager() as m:
        assert m.verify_audit().ok
        assert {len(ring.versions) for ring in m.rings()} == {2}
        creates = Counter(x.ring for x in m.audit_records() if x.action == "create")
        assert creates == Counter(dict.fromkeys(names, 2))  # v1 at creation, v2 by the run


def _slow(done: list[str], fail_on: str = "") -> object:
    def run_one(name: str) -> RingResult:
        time.sleep(0.05)
        if name == fail_on:
            raise StoreUnavailableError("Vault unavailable: test")
        done.append(name)
        return RingResult(name, "succeeded")

    return run_one


def test_a_stop_lets_rings_in_flight_finish_and_starts_no_new_one() -> None:
    done: list[str] = []
    names = [f"r{i}" for i in range(20)]
    stop_after = threading.Event()

    def stop() -> str:
        return "stopped by SIGTERM" if stop_after.is_set() else ""

    def progress(name: str) -> None:
        stop_after.set()  # the first finished ring "receives" the signal

    results, aborted = apply_rings(
        names, _slow(done), concurrency=4, stop=stop, renew=lambda: None, progress=progress
    )  # type: ignore[arg-type]
    assert aborted == "stopped by SIGTERM"
    assert [r.ring for r in results] == names  # in plan order, every ring named
    started = [r.ring for r in results if r.status == "succeeded"]
    assert 4 <= len(started) < 20 and sorted(started) == sorted(done)
    skipped = [r for r in results if r.status == "skipped"]
    assert len(skipped) == 20 - len(started)
    assert all(r.error == "not attempted: stopped by SIGTERM" for r in skipped)


def test_an_outage_in_one_thread_stops_the_run() -> None:
    done: list[str] = []
    names = [f"r{i}" for i in range(20)]
    results, aborted = apply_rings(
        names,
        _slow(done, fail_on="r2"),  # type: ignore[arg-type]
        concurrency=3,
        stop=lambda: "",
        renew=lambda: None,
    )
    assert aborted == "Vault unavailable: test"
    by = {r.ring: r for r in results}
    assert by["r2"].status == "failed" and "Vault unavailable" in by["r2"].error
    assert by["r19"].status == "skipped" and by["r19"].error.startswith("not attempted: ")
    assert {r.status for r in results} == {"succeeded", "failed", "skipped"}


def test_coalescer_sends_concurrent_items_together_and_fails_only_the_bad_one() -> None:
    flushes: list[list[int]] = []
    gate = threading.Event()

    def flush(items: list[int]) -> list[int | BaseException]:
        flushes.append(items)
        if len(flushes) == 1:
            gate.wait(5)  # the first flush is slow: the others queue behind it
        return [StoreError(f"bad {i}") if i == 13 else i * 10 for i in items]

    c: Coalescer[int, int] = Coalescer(flush, max_batch=64)
    out: dict[int, object] = {}

    def one(i: int) -> None:
        try:
            out[i] = c.submit(i)
        except StoreError as exc:
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    threads[0].start()
    time.sleep(0.1)
    for t in threads[1:]:
        t.start()
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join(10)
    assert flushes[0] == [0] and len(flushes) == 2 and sorted(flushes[1]) == list(range(1, 20))
    assert all(out[i] == i * 10 for i in range(20) if i != 13)
    assert isinstance(out[13], StoreError) and "bad 13" in str(out[13])


def test_library_run_takes_concurrency(store_env: StoreEnv) -> None:
    names = store_env.make_due(6)
    with store_env.manager() as m:
        report = run(m, concurrency=3)
    assert report.ok and sorted(r.ring for r in report.rings) == names
