"""The Vault client's transport (``keylife.vault.transport``) against scripted peers: keep-alive
reuse, a connection the server dropped while idle, answers that are too large, peers that hang
up or never answer, refused connections, and a proxy from the environment."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keylife.errors import StoreUnavailableError
from keylife.vault import transport
from keylife.vault.client import VaultClient
from keylife.vault.settings import VaultSettings
from keylife.vault.transport import Connections, MaybeSent, NotSent, ProxiedSession
from tests.vault.tunnel import loopback_server, tunnel_proxy

OK = json.dumps({"data": {"x": 1}}).encode()
TIMEOUT = (2.0, 2.0)


def answer(body: bytes = OK, *, extra: str = "", status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}"
    if "Transfer-Encoding" not in extra:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def read_request(conn: socket.socket) -> bytes:
    """One request's head and body (by Content-Length); b"" when the client hung up."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


@contextmanager
def peer(handle: Callable[[socket.socket, list[bytes]], None]) -> Iterator[tuple[str, list[bytes]]]:
    """A loopback server running ``handle(conn, seen)`` per connection; (address, requests)."""
    seen: list[bytes] = []
    with loopback_server(lambda conn: handle(conn, seen)) as address:
        yield address, seen


@contextmanager
def pool(addr: str) -> Iterator[Connections]:
    connections = Connections(addr, True, None)
    try:
        yield connections
    finally:
        connections.close()


def keep_alive(conn: socket.socket, seen: list[bytes]) -> None:
    while request := read_request(conn):
        seen.append(request)
        conn.sendall(answer())


def one_answer_then_hang_up(conn: socket.socket, seen: list[bytes]) -> None:
    """Answers one request and closes, without saying so (an idle timeout on the server)."""
    request = read_request(conn)
    seen.append(request)
    conn.sendall(answer())


def test_one_connection_carries_many_requests() -> None:
    connections: list[int] = []

    def counting(conn: socket.socket, seen: list[bytes]) -> None:
        connections.append(1)
        keep_alive(conn, seen)

    with peer(counting) as (addr, seen):
        keep = Connections(addr, True, "ns1")
        for _ in range(5):
            got = keep.request("GET", "/v1/kv/data/x", headers={}, json_body=None, timeout=TIMEOUT)
            assert got.status_code == 200 and got.json() == {"data": {"x": 1}}
        got = keep.request(
            "POST",
            "/v1/kv/data/x",
            headers={"X-Vault-Token": "t"},
            json_body={"a": 1},
            timeout=TIMEOUT,
        )
        keep.close()
    assert len(connections) == 1 and len(seen) == 6
    assert b"X-Vault-Namespace: ns1" in seen[0] and b"X-Vault-Request: true" in seen[0]
    assert seen[-1].endswith(b'{"a":1}') and b"Content-Type: application/json" in seen[-1]


def test_a_forked_child_opens_its_own_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    connections: list[int] = []

    def counting(conn: socket.socket, seen: list[bytes]) -> None:
        connections.append(1)
        keep_alive(conn, seen)

    with peer(counting) as (addr, _seen), pool(addr) as p:
        p.request("GET", "/v1/x", headers={}, json_body=None, timeout=TIMEOUT)
        parent = os.getpid()
        monkeypatch.setattr(os, "getpid", lambda: parent + 1)  # as in a child after fork()
        p.request("GET", "/v1/x", headers={}, json_body=None, timeout=TIMEOUT)
        p.request("GET", "/v1/x", headers={}, json_body=None, timeout=TIMEOUT)
    assert len(connections) == 2  # one for the parent, one for the "child", reused


def test_a_connection_the_server_dropped_while_idle_is_not_reused() -> None:
    with peer(one_answer_then_hang_up) as (addr, seen), pool(addr) as p:
        for _ in range(3):
            time.sleep(0.05)  # the server's close arrives before the next request
            got = p.request("POST", "/v1/kv/data/x", headers={}, json_body={}, timeout=TIMEOUT)
            assert got.status_code == 200  # a fresh connection, not an ambiguous failure
    assert len(seen) == 3


def test_a_declared_body_over_the_cap_is_not_read() -> None:
    def huge(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {64 << 20}"
        conn.sendall(head.encode() + b"\r\n\r\n")
        time.sleep(1)  # never sends the body: reading it would wait for the read timeout

    with peer(huge) as (addr, _seen):
        client = VaultClient(VaultSettings([addr], token="t", deadline=1))
        client._token_checked = True  # no lookup-self against this peer
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match=f"a body of {64 * 1024 * 1024} bytes"):
            client.request("GET", "kv/data/x", what="read x")
        assert time.monotonic() - started < 1.0
        client.close()


def test_a_chunked_body_is_read_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "MAX_ANSWER", 1000)

    def chunked(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        body = b"".join(b"%x\r\n%s\r\n" % (500, b"x" * 500) for _ in range(10)) + b"0\r\n\r\n"
        conn.sendall(answer(body, extra="Transfer-Encoding: chunked\r\n"))

    with peer(chunked) as (addr, _seen), pool(addr) as p:
        got = p.request("GET", "/v1/x", headers={}, json_body=None, timeout=TIMEOUT)
    assert got.size > 1000 and got.content == b""  # not read past the cap


def test_a_peer_that_hangs_up_after_the_request_leaves_a_write_ambiguous() -> None:
    def hang_up(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))

    with peer(hang_up) as (addr, seen):
        with pool(addr) as p, pytest.raises(MaybeSent):
            p.request("POST", "/v1/x", headers={}, json_body={"k": "v"}, timeout=TIMEOUT)
        assert len(seen) == 1


def test_a_peer_that_never_answers_times_out() -> None:
    def silent(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        time.sleep(2)

    with peer(silent) as (addr, _seen):
        started = time.monotonic()
        with pool(addr) as p, pytest.raises(MaybeSent, match="timed out"):
            p.request("GET", "/v1/x", headers={}, json_body=None, timeout=(1.0, 0.3))
        assert time.monotonic() - started < 1.5


def test_a_peer_that_trickles_its_answer_is_cut_off_at_the_read_timeout() -> None:
    def trickle(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        for byte in answer():  # each byte well within a per-packet timeout
            conn.sendall(bytes([byte]))
            time.sleep(0.1)

    with peer(trickle) as (addr, _seen), pool(addr) as p:
        started = time.monotonic()
        with pytest.raises(MaybeSent, match="timed out"):
            p.request("GET", "/v1/x", headers={}, json_body=None, timeout=(1.0, 0.5))
        assert time.monotonic() - started < 1.5


def test_a_refused_connection_was_never_sent() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    with pool(f"http://127.0.0.1:{port}") as p, pytest.raises(NotSent):
        p.request("POST", "/v1/x", headers={}, json_body={}, timeout=TIMEOUT)


def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_a_proxy_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """An http:// proxy is spoken to by keylife's own connections (the full URL in the request
    line, the proxy's credentials in Proxy-Authorization), kept alive like a direct one."""
    _no_proxy_env(monkeypatch)
    with peer(keep_alive) as (proxy, seen):
        monkeypatch.setenv("HTTP_PROXY", proxy.replace("://", "://ops:s3cret@"))
        client = VaultClient(VaultSettings(["http://vault.example:8200"], token="t", deadline=2))
        client._token_checked = True
        for _ in range(2):
            status, body, _ = client.request("GET", "kv/data/x", what="read x")
        transport_used = client._transport("http://vault.example:8200")
        client.close()
    assert status == 200 and body == {"data": {"x": 1}}
    assert len(seen) == 2 and all(
        r.startswith(b"GET http://vault.example:8200/v1/kv/data/x HTTP/1.1\r\n")
        and b"\r\nHost: vault.example:8200\r\n" in r
        and b"\r\nProxy-Authorization: Basic b3BzOnMzY3JldA==\r\n" in r  # ops:s3cret
        for r in seen
    )
    assert isinstance(transport_used, Connections)
    assert "s3cret" not in repr(transport_used._proxy)


def test_a_proxy_that_refuses_the_tunnel_is_named_without_its_credentials() -> None:
    refusal = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n"
    with tunnel_proxy(refuse=refusal) as (proxy, seen):
        c = Connections(
            "https://vault.example:8200", True, None, proxy.replace("://", "://u:s3cret@")
        )
        with pytest.raises(NotSent) as caught:
            c.request("GET", "/v1/x", headers={}, json_body=None, timeout=TIMEOUT)
        c.close()
    said = str(caught.value)
    assert "refused a tunnel to vault.example:8200: 407 Proxy Authentication Required" in said
    assert proxy.split("://")[1] in said and "s3cret" not in said
    assert seen[0].startswith(b"CONNECT vault.example:8200 HTTP/1.1\r\n")


def test_a_proxy_that_trickles_its_tunnel_answer_is_cut_off_at_the_connect_timeout() -> None:
    def trickle(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        for byte in b"HTTP/1.1 200 Connection established\r\nX: " + b"y" * 200:
            conn.sendall(bytes([byte]))
            time.sleep(0.05)

    with peer(trickle) as (proxy, seen):
        c = Connections("https://vault.example:8200", True, None, proxy)
        started = time.monotonic()
        with pytest.raises(transport.ConnectTimeout, match="did not open a tunnel in time"):
            c.request("GET", "/v1/x", headers={}, json_body=None, timeout=(0.5, 5.0))
        took = time.monotonic() - started
        c.close()
    assert seen and took < 1.5, took


_TUNNEL_ANSWERS = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda status, junk: f"HTTP/1.1 {status} X\r\n".encode() + junk,
        st.integers(100, 599),
        st.binary(max_size=200),
    ),
)


@pytest.fixture(scope="module")
def hostile_proxy() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A proxy that answers CONNECT with ``answer["junk"]`` and hangs up."""
    answer = {"junk": b""}

    def hostile(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        conn.sendall(answer["junk"])

    with peer(hostile) as (proxy, _seen):
        yield proxy, answer


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(junk=_TUNNEL_ANSWERS)
def test_any_answer_to_the_tunnel_request_fails_as_not_sent(
    hostile_proxy: tuple[str, dict[str, bytes]], junk: bytes
) -> None:
    """Whatever a hostile proxy answers to CONNECT (then hanging up), the request fails as a
    transport error that says it never reached Vault, or as a failed TLS handshake."""
    proxy, answer = hostile_proxy
    answer["junk"] = junk
    c = Connections("https://vault.example:8200", True, None, proxy)
    with pytest.raises((NotSent, transport.TLSFailure)):
        c.request("GET", "/v1/x", headers={}, json_body=None, timeout=(2.0, 2.0))
    c.close()


def test_a_proxy_keylife_does_not_speak_goes_through_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_proxy_env(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    client = VaultClient(VaultSettings(["https://vault.example:8200"], token="t", deadline=2))
    assert isinstance(client._transport("https://vault.example:8200"), ProxiedSession)
    assert isinstance(client._transport("http://vault.example:8200"), Connections)  # no proxy
    client.close()


def test_without_a_proxy_the_client_never_imports_requests() -> None:
    """``requests`` takes about 90 ms to import: a CLI run against Vault without a proxy in
    its environment does not pay it."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from keylife.vault.client import VaultClient\n"
        "from keylife.vault.settings import VaultSettings\n"
        "c = VaultClient(VaultSettings(['http://127.0.0.1:1'], token='t', deadline=0.2))\n"
        "c._token_checked = True\n"
        "try:\n    c.request('GET', 'kv/x', what='x')\nexcept Exception:\n    pass\n"
        "print('requests' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_a_proxy_that_trickles_the_body_is_cut_off_at_the_read_timeout() -> None:
    """Through a proxy (``requests``), the read timeout bounds the whole body too: ``requests``
    alone restarts it at every packet."""
    body = json.dumps({"data": {"x": "y" * 40}}).encode()

    def trickle(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        head, _, rest = answer(body).partition(b"\r\n\r\n")
        conn.sendall(head + b"\r\n\r\n")
        for byte in rest:  # each byte well within a per-packet timeout
            conn.sendall(bytes([byte]))
            time.sleep(0.1)

    with peer(trickle) as (proxy, seen):
        session = ProxiedSession("http://vault.example:8200", True, None, {"http": proxy})
        started = time.monotonic()
        with pytest.raises(MaybeSent, match="timed out"):
            session.request("GET", "/v1/x", headers={}, json_body=None, timeout=(1.0, 0.5))
        took = time.monotonic() - started
        session.close()
    assert seen and took < 1.5, took
