"""Issue 10 item 4: every ACME operation has an overall deadline and every answer a size cap.

A scripted HTTPS CA answers one byte at a time, or sends a body far larger than any ACME
message: the client gives up within its deadline, having read at most the cap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from keylife.acme import AcmeClient, StandaloneHttp01, generate_private_key
from keylife.acme.wire import JSON_LIMIT
from keylife.errors import AcmeResponseError, AcmeTimeoutError
from tests.acme.stub import StubAcme, cli_args, run_cli


@pytest.fixture
def acme_stub(tmp_path: Path) -> Iterator[StubAcme]:
    stub = StubAcme(tmp_path)
    try:
        yield stub
    finally:
        stub.stop()


class Sent:
    """Counts what a hostile handler managed to write before the client hung up."""

    def __init__(self) -> None:
        self.bytes = 0
        self.done = threading.Event()


def trickle(sent: Sent, head: bytes = b"", delay: float = 0.2) -> Callable[[Any], bool]:
    """Send ``head`` at once, then one byte every ``delay`` seconds, forever."""

    def respond(handler: Any) -> bool:
        try:
            handler.wfile.write(head)
            handler.wfile.flush()
            while True:
                handler.wfile.write(b" ")
                handler.wfile.flush()
                sent.bytes += 1
                time.sleep(delay)
                if sent.bytes > 600:
                    return True
        except OSError:
            return True
        finally:
            sent.done.set()

    return respond


def flood(sent: Sent, length_header: bool) -> Callable[[Any], bool]:
    """A 200 answer whose body never ends (or claims 2 GiB)."""

    def respond(handler: Any) -> bool:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nReplay-Nonce: bm9uY2U\r\n"
        head += b"Content-Length: 2147483648\r\n" if length_header else b""
        chunk = b"[" * 65536
        try:
            handler.wfile.write(head + b"\r\n")
            while sent.bytes < 512 * 1024 * 1024:
                handler.wfile.write(chunk)
                sent.bytes += len(chunk)
        except OSError:
            return True
        finally:
            sent.done.set()
        return True

    return respond


def client(stub: StubAcme, timeout: float) -> AcmeClient:
    return AcmeClient(
        stub.directory_url,
        generate_private_key(),
        ca_bundle=stub.ca_bundle,
        trust_roots=stub.roots_file,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "head",
    [b"", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{"],
    ids=["status-line", "headers", "body"],
)
def test_one_byte_at_a_time_times_out(acme_stub, head):
    sent = Sent()
    acme_stub.override["/dir"] = trickle(sent, head)
    started = time.monotonic()
    with client(acme_stub, timeout=1.5) as c, pytest.raises(AcmeTimeoutError, match="timed out"):
        c.register(agree_tos=True)
    elapsed = time.monotonic() - started
    assert 1.4 < elapsed < 4, elapsed
    assert sent.done.wait(5), "the server still writes: the client did not hang up"


def test_deadline_covers_the_whole_issue(acme_stub):
    """Each answer comes quickly but the order stays 'processing': the overall deadline ends
    the operation even though no single read is slow."""
    acme_stub.behaviour.update(processing_polls=10_000, retry_after="1")
    started = time.monotonic()
    with client(acme_stub, timeout=2) as c, pytest.raises(AcmeTimeoutError):
        c.register(agree_tos=True)
        c.issue(["slow.example.com"], generate_private_key(), StandaloneHttp01(0, "127.0.0.1"))
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("length_header", [True, False], ids=["content-length", "unbounded"])
def test_huge_body_is_refused_at_the_cap(acme_stub, length_header):
    sent = Sent()
    acme_stub.override["/dir"] = flood(sent, length_header)
    with client(acme_stub, timeout=30) as c, pytest.raises(AcmeResponseError) as info:
        c.register(agree_tos=True)
    assert info.value.field == "body"
    assert str(JSON_LIMIT) in str(info.value)
    assert sent.done.wait(10)
    # the client read at most the cap plus what was in flight in socket buffers
    assert sent.bytes < 16 * JSON_LIMIT, sent.bytes


def test_cli_timeout_option(acme_stub, tmp_path):
    sent = Sent()
    acme_stub.override["/dir"] = trickle(sent, b"HTTP/1.1 200 OK\r\n")
    home = tmp_path / "home"
    home.mkdir()
    started = time.monotonic()
    result = run_cli(
        home,
        "cert",
        "issue",
        "web",
        "--domain",
        "t.example.com",
        *cli_args(acme_stub),
        "--timeout",
        "2",
    )
    assert time.monotonic() - started < 15
    assert result.returncode == 1, result.stderr
    assert "timed out after 2 s" in result.stderr and "Traceback" not in result.stderr
