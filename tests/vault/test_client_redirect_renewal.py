"""The Vault client against a standby that redirects to a dead leader, and a short-lived token
that must be renewed during a long run (real OpenBao behind, a scripted standby in front)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from keylife.errors import StoreUnavailableError
from keylife.vault.client import VaultClient, VaultSettings
from tests.vault.conftest import DevServer, free_port

pytestmark = pytest.mark.vault


class RedirectingStandby:
    """Answers every request with ``307 Location: <dead leader>``, as a standby does while the
    cluster has no leader (measured in the notes); counts the requests it got."""

    def __init__(self) -> None:
        dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        self.hits = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _redirect(self) -> None:
                outer.hits += 1
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(307)
                self.send_header("Location", dead + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_DELETE = do_LIST = _redirect

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def standby() -> Iterator[RedirectingStandby]:
    node = RedirectingStandby()
    try:
        yield node
    finally:
        node.stop()


def test_redirect_to_a_dead_leader_moves_on_to_the_next_address(
    vault_env: DevServer, standby: RedirectingStandby
) -> None:
    settings = VaultSettings([standby.addr, vault_env.addr], token=vault_env.token, deadline=10)
    client = VaultClient(settings)
    try:
        status, body, _ = client.request("GET", "auth/token/lookup-self", what="token lookup")
    finally:
        client.close()
    assert status == 200 and body is not None
    assert standby.hits >= 1  # it was asked first, and its redirect was not followed


def test_only_a_redirecting_standby_fails_within_the_deadline_naming_it(
    standby: RedirectingStandby,
) -> None:
    client = VaultClient(VaultSettings([standby.addr], token="t", deadline=2))
    start = time.monotonic()
    try:
        with pytest.raises(StoreUnavailableError) as info:
            client.request("GET", "sys/health", what="health", auth=False)
    finally:
        client.close()
    assert time.monotonic() - start < 6
    message = str(info.value)
    assert "Vault unavailable" in message and standby.addr in message and "307" in message


def test_a_short_lived_token_is_renewed_during_a_long_run(vault_env: DevServer) -> None:
    status, created = vault_env.api(
        "POST",
        "auth/token/create",
        {"ttl": "4s", "explicit_max_ttl": "120s", "renewable": True, "policies": ["default"]},
    )
    assert status == 200, created
    token = created["auth"]["client_token"]
    client = VaultClient(VaultSettings([vault_env.addr], token=token, deadline=10))
    try:
        for _ in range(4):  # 6 s in all: past the token's original 4 s TTL
            status, body, _ = client.request("GET", "auth/token/lookup-self", what="lookup")
            assert status == 200
            time.sleep(1.5)
        assert body is not None and body["data"]["ttl"] > 4  # renewed (capped at 120 s)
    finally:
        client.close()
