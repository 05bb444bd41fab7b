"""What the standalone challenge responders share: listen on ``address:port``, serve in a
thread while challenges are pending, stop cleanly.

:class:`StandaloneResponder` owns the listener's life (start, stop, ``bound_port``, use as a
context manager to keep one listener across several orders); the http-01 and tls-alpn-01
responders supply only the server class and what they answer.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from typing import Generic, Self, TypeVar

from keylife.errors import AcmeError

#: How often a serving thread checks for shutdown.
POLL_INTERVAL = 0.05


class DualStackServer(socketserver.ThreadingTCPServer):
    """A threaded TCP server whose ``::`` listener also answers IPv4 where the OS allows it;
    it waits for its handler threads when closed."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


S = TypeVar("S", bound=DualStackServer)


class StandaloneResponder(Generic[S]):
    """The listener part of a standalone responder. Subclasses set ``challenge_type`` and
    implement :meth:`make_server`; ``bind_hint`` is added to a failed listen's message."""

    challenge_type = ""
    bind_hint = ""

    def __init__(self, port: int, address: str = "") -> None:
        self.port = port
        self.address = address
        self._server: S | None = None
        self._thread: threading.Thread | None = None
        self._held = False

    def make_server(self, address: tuple[str, int], family: socket.AddressFamily) -> S:
        raise NotImplementedError

    @property
    def server(self) -> S | None:
        """The running server, or None when not listening."""
        return self._server

    @property
    def bound_port(self) -> int:
        if self._server is None:
            raise AcmeError(f"the {self.challenge_type} responder is not running")
        return int(self._server.server_address[1])

    def start(self) -> None:
        if self._server is not None:
            return
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        try:
            server = self.make_server((self.address, self.port), family)
        except OSError as exc:
            where = f"{self.address or '*'}:{self.port}"
            hint = f"; {self.bind_hint}" if self.bind_hint else ""
            raise AcmeError(
                f"cannot listen for {self.challenge_type} on {where}: {exc.strerror}{hint}"
            ) from exc
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name=f"keylife-{self.challenge_type}",
        )
        self._thread.start()
        self.started()

    def started(self) -> None:
        """Called once the listener runs (subclasses set up per-run state here)."""

    def stopped(self) -> None:
        """Called once the listener has stopped (subclasses clear per-run state here)."""

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()
        if server is not None:
            self.stopped()

    def release(self) -> None:
        """Stop unless held open by a ``with`` block (what ``cleanup`` ends with)."""
        if not self._held:
            self.stop()

    def __enter__(self) -> Self:
        self.start()
        self._held = True
        return self

    def __exit__(self, *exc: object) -> None:
        self._held = False
        self.stop()


__all__ = ["POLL_INTERVAL", "DualStackServer", "StandaloneResponder"]
