"""A fault-injecting HTTP proxy in front of the dev server (loopback, free port, threads).

Each request is matched against the proxy's faults in order; the first that matches (path
substring, optional method, not used up) decides what happens, else the request is forwarded
unchanged. Kinds:

- ``delay``: wait ``seconds``, then forward;
- ``drop``: close the connection without answering (after reading the request);
- ``html``: answer ``status`` (default 200) with an HTML maintenance page;
- ``empty``: answer ``status`` with an empty body (``application/json``);
- ``object``: answer ``status`` with ``{}`` (``application/json``);
- ``status``: answer ``status`` (429/500/503...) with a Vault-shaped ``{"errors": [...]}``;
- ``body``: answer ``status`` with ``body`` (JSON) as given;
- ``revoke``: forward with the token replaced by a dead one (the token "expires" from now).

``armed_by`` delays a fault until a request with that path is seen (e.g. the first write).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HTML = b"<html><body><h1>Down for maintenance</h1></body></html>"


@dataclass
class Fault:
    kind: str
    path: str = ""
    method: str | None = None
    status: int = 200
    seconds: float = 0.0
    times: int | None = None  # None: every matching request
    after: int = 0  # let this many matching requests through first
    body: Any = None
    exclude: str | None = None  # paths containing this are never matched
    armed_by: str | None = None  # only from the first request whose path contains this on
    seen: int = 0

    def take(self, method: str, path: str) -> bool:
        if self.armed_by is not None:
            if self.armed_by not in path:
                return False
            self.armed_by = None
        if self.path not in path or (self.method and self.method != method):
            return False
        if self.exclude and self.exclude in path:
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        return self.times is None or self.seen - self.after <= self.times


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                proxy.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_LIST = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def store_url(self, mount: str, transit: str) -> str:
        return f"vault://127.0.0.1:{self.server.server_address[1]}/{mount}?transit={transit}&key=keylife"

    def add(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def _fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            self.requests.append((method, path))
            for fault in self.faults:
                if fault.take(method, path):
                    return fault
        return None

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        fault = self._fault(h.command, h.path)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "connection")}
        if fault is not None:
            if fault.kind == "delay":
                time.sleep(fault.seconds)
            elif fault.kind == "drop":
                h.close_connection = True
                h.connection.shutdown(2)
                return
            elif fault.kind == "revoke":
                headers["X-Vault-Token"] = "hvs.expired-token"
            else:
                self._answer(h, fault)
                return
        conn = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            conn.request(h.command, h.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            h.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                    h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        finally:
            conn.close()

    def _answer(self, h: BaseHTTPRequestHandler, fault: Fault) -> None:
        ctype = "application/json"
        if fault.kind == "html":
            data, ctype = HTML, "text/html; charset=utf-8"
        elif fault.kind == "empty":
            data = b""
        elif fault.kind == "object":
            data = b"{}"
        elif fault.kind == "status":
            data = json.dumps({"errors": [f"injected HTTP {fault.status}"]}).encode()
        else:
            data = json.dumps(fault.body).encode()
        h.send_response(fault.status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
