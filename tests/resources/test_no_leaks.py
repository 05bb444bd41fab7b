"""No handle outlives a failed open (issue 16 item 2).

Each way of failing to open a store (a bad policy, a missing store, a file that is not a store,
a wrong master key, an unreachable Vault) and a TLS check against a closed port runs many times
in this one process; the open file descriptors and threads must come back to their starting
count. The errors are kept, as a caller that logs or retries might: anything reachable from
their tracebacks stays alive, so a connection left open on an error path shows as a descriptor
that is never given back, whatever the garbage collector does.

On Python 3.13 (whose sqlite3 reports connections collected while open) every failing path also
runs with ``ResourceWarning`` as an error and a forced collection.
"""

from __future__ import annotations

import gc
import os
import socket
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import keylife
from keylife.errors import KeylifeError
from keylife.sealing import MasterKey, MasterKeyFile
from keylife.tls import check_endpoint

#: Lazily created things (a resolver thread finishing, a pool) may hold a few; growth may not.
SLACK = 3


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: connecting is refused, and nobody else can
    take it while the test runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def ways(
    tmp_path: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Callable[[], object]]:
    """Each way to open, or fail to open, a store: name -> a call that opens and closes."""
    good_db = tmp_path / "good" / "keylife.db"
    good_key = tmp_path / "good" / "master.key"
    keylife.init(good_db, master_key_file=good_key).close()
    other_key = tmp_path / "other" / "master.key"
    MasterKeyFile(other_key).write(MasterKey.generate())
    bad_policy = tmp_path / "policy.toml"
    bad_policy.write_text("[policy]\nmin_strength = 100\n")
    not_a_store = tmp_path / "junk" / "keylife.db"
    not_a_store.parent.mkdir()
    not_a_store.write_bytes(b"this is not an SQLite database\n" * 200)
    monkeypatch.setenv("VAULT_TOKEN", "not-a-real-token")
    # An unreachable Vault fails after the deadline: keep it short.
    vault = f"vault://127.0.0.1:{closed_port}/keylife?deadline=0.05"

    def succeed() -> object:
        with keylife.open(good_db, master_key_file=good_key) as manager:
            return manager.rings()

    def vault_open_and_read() -> object:
        with keylife.open(vault) as manager:
            return manager.rings()

    return {
        "success": succeed,
        "bad policy": lambda: keylife.open(good_db, policy=bad_policy, master_key_file=good_key),
        "missing store": lambda: keylife.open(tmp_path / "none.db", master_key_file=good_key),
        "missing master key": lambda: keylife.open(good_db, master_key_file=tmp_path / "no.key"),
        "not a store": lambda: keylife.open(not_a_store, master_key_file=good_key),
        "wrong master key": lambda: keylife.open(good_db, master_key_file=other_key),
        "unreachable vault (init)": lambda: keylife.init(vault),
        "unreachable vault (read)": vault_open_and_read,
    }


def attempt(call: Callable[[], object], kept: list[BaseException]) -> None:
    try:
        call()
    except KeylifeError as exc:
        kept.append(exc)


def test_ways_fail_as_expected(ways: dict[str, Callable[[], object]]) -> None:
    """Each failing way really fails with a keylife error (or the leak test proves nothing)."""
    for name, call in ways.items():
        if name == "success":
            call()
            continue
        with pytest.raises(KeylifeError):
            result = call()
            if isinstance(result, keylife.KeyManager):  # opened after all: do not leak it here
                result.close()


def test_descriptors_and_threads_return_after_500_opens_and_200_tls_checks(
    ways: dict[str, Callable[[], object]], closed_port: int
) -> None:
    calls = list(ways.values())
    kept: list[BaseException] = []
    attempt(calls[0], kept)  # warm up: imports, lazily created module state
    check_endpoint("127.0.0.1", closed_port, timeout=1, deadline=2)
    gc.collect()
    fds, threads = open_fds(), threading.active_count()

    for i in range(500):
        attempt(calls[i % len(calls)], kept)
    assert len(kept) >= 500 * (len(calls) - 1) // len(calls)
    mid_fds = open_fds()
    reports = [check_endpoint("127.0.0.1", closed_port, timeout=1, deadline=2) for _ in range(200)]
    assert all(r.verdict == "error" for r in reports)

    assert mid_fds <= fds + SLACK, f"{mid_fds - fds} descriptors leaked by 500 store opens"
    assert open_fds() <= fds + SLACK, f"{open_fds() - fds} descriptors leaked by 200 TLS checks"
    assert threading.active_count() <= threads + SLACK, (
        f"{threading.active_count() - threads} threads left behind: "
        f"{[t.name for t in threading.enumerate()]}"
    )


@pytest.mark.skipif(
    sys.version_info < (3, 13),
    reason="sqlite3 reports connections collected while open (ResourceWarning) from 3.13 on",
)
def test_every_failed_open_closes_what_it_opened_before_the_collector_runs(
    ways: dict[str, Callable[[], object]], closed_port: int
) -> None:
    for name, call in ways.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            kept: list[BaseException] = []
            attempt(call, kept)
            assert name == "success" or kept, f"{name}: did not fail"
            del kept
            # A ResourceWarning from a finaliser is raised inside gc and reported as
            # "unraisable"; pytest turns that into an error of this test (filterwarnings).
            gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        check_endpoint("127.0.0.1", closed_port, timeout=1, deadline=2)
        gc.collect()
