"""Real Pebble + pebble-challtestsrv on loopback for the ACME tests.

Pebble's listener certificate is made at run time with trustme; nothing secret is committed.
Each server runs on free 127.0.0.1 ports and is stopped by its own Popen handle.
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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.acme.stub import StubAcme

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"
CHALLTESTSRV = shutil.which("pebble-challtestsrv") or "/usr/bin/pebble-challtestsrv"
HERE = Path(__file__).parent
EAB_KID = "kid-1"
EAB_HMAC = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"


def free_port(udp_too: bool = False) -> int:
    """A port free on 127.0.0.1 for TCP (and UDP when asked)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            if not udp_too:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"server did not listen on {port}: {log.read_text(errors='replace')}")


@dataclass
class Proc:
    proc: subprocess.Popen[bytes]
    log: Any

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


def start(cmd: list[str], log_path: Path, env: dict[str, str] | None = None) -> Proc:
    log = open(log_path, "wb")  # noqa: SIM115 - closed by Proc.stop
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    return Proc(proc, log)


@dataclass
class ChallTestSrv:
    dns_port: int
    management_port: int
    proc: Proc

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def post(self, path: str, body: dict[str, Any]) -> None:
        req = urllib.request.Request(
            self.management_url + path, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            resp.read()

    def dns_hook(self, action: str) -> str:
        """A shell command for --dns-hook that talks to this challtestsrv."""
        return f"{sys.executable} {HERE / 'dns_hook.py'} {action} {self.management_url}"


@dataclass
class Pebble:
    directory_url: str
    management_url: str
    ca_bundle: str
    http_port: int
    tls_port: int
    proc: Proc
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    def _ctx(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_bundle)

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(
            self.management_url + path, context=self._ctx(), timeout=5
        ) as resp:
            return json.loads(resp.read())

    def cert_status(self, serial: int) -> dict[str, Any]:
        status: dict[str, Any] = self.get_json(f"/cert-status-by-serial/{serial:x}")
        return status

    def roots_pem(self) -> str:
        with urllib.request.urlopen(
            self.management_url + "/roots/0", context=self._ctx(), timeout=5
        ) as resp:
            return str(resp.read().decode())

    @property
    def trust_roots(self) -> str:
        """A PEM file with Pebble's issuing root (made at each start, served at /roots/0):
        the root issued chains must verify to."""
        path = self.workdir / "issuing-roots.pem"
        if not path.exists():
            path.write_text(self.roots_pem())
        return str(path)


@dataclass
class PebbleLauncher:
    base: Path
    dns: ChallTestSrv
    ca: trustme.CA
    started: list[Proc] = field(default_factory=list)

    def launch(self, name: str, *, nonce_reject: int = 0, eab: bool = False, **env: str) -> Pebble:
        work = self.base / name
        work.mkdir()
        leaf = self.ca.issue_cert("localhost", "127.0.0.1")
        cert, key, ca_pem = work / "cert.pem", work / "key.pem", work / "ca.pem"
        leaf.private_key_pem.write_to_path(str(key))
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        self.ca.cert_pem.write_to_path(str(ca_pem))
        port, mgmt, http_port, tls_port = (free_port() for _ in range(4))
        config: dict[str, Any] = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{port}",
                "managementListenAddress": f"127.0.0.1:{mgmt}",
                "certificate": str(cert),
                "privateKey": str(key),
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": eab,
            }
        }
        if eab:
            config["pebble"]["externalAccountMACKeys"] = {EAB_KID: EAB_HMAC}
        (work / "config.json").write_text(json.dumps(config))
        penv = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": str(nonce_reject),
            "PEBBLE_AUTHZREUSE": "0",
            **env,
        }
        proc = start(
            [
                PEBBLE,
                "-config",
                str(work / "config.json"),
                "-dnsserver",
                f"127.0.0.1:{self.dns.dns_port}",
            ],
            work / "pebble.log",
            env=penv,
        )
        self.started.append(proc)
        wait_port(port, proc.proc, work / "pebble.log")
        wait_port(mgmt, proc.proc, work / "pebble.log")
        return Pebble(
            directory_url=f"https://127.0.0.1:{port}/dir",
            management_url=f"https://127.0.0.1:{mgmt}",
            ca_bundle=str(ca_pem),
            http_port=http_port,
            tls_port=tls_port,
            proc=proc,
            workdir=work,
            env=penv,
        )


def _require_binaries() -> None:
    for binary in (PEBBLE, CHALLTESTSRV):
        if not os.access(binary, os.X_OK):
            pytest.skip(f"{binary} not installed (Debian package 'pebble')")


def start_challtestsrv(work: Path) -> ChallTestSrv:
    """pebble-challtestsrv for DNS only (its own HTTP responders off), on free loopback ports;
    the caller stops ``.proc``."""
    dns_port, mgmt_port = free_port(udp_too=True), free_port()
    proc = start(
        [
            CHALLTESTSRV,
            "-dns01",
            f"127.0.0.1:{dns_port}",
            "-management",
            f"127.0.0.1:{mgmt_port}",
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-defaultIPv6",
            "",
        ],
        work / "challtestsrv.log",
    )
    try:
        wait_port(mgmt_port, proc.proc, work / "challtestsrv.log")
        wait_port(dns_port, proc.proc, work / "challtestsrv.log")
    except BaseException:
        proc.stop()
        raise
    return ChallTestSrv(dns_port, mgmt_port, proc)


@pytest.fixture(scope="session")
def challtestsrv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChallTestSrv]:
    _require_binaries()
    server = start_challtestsrv(tmp_path_factory.mktemp("challtestsrv"))
    try:
        yield server
    finally:
        server.proc.stop()


@pytest.fixture(scope="session")
def pebble_launcher(
    tmp_path_factory: pytest.TempPathFactory, challtestsrv: ChallTestSrv
) -> Iterator[PebbleLauncher]:
    launcher = PebbleLauncher(tmp_path_factory.mktemp("pebble"), challtestsrv, trustme.CA())
    try:
        yield launcher
    finally:
        for proc in launcher.started:
            proc.stop()


@pytest.fixture(scope="session")
def pebble(pebble_launcher: PebbleLauncher) -> Pebble:
    """The main Pebble: no nonce rejection, no authz reuse, no VA sleep."""
    return pebble_launcher.launch("main")


@pytest.fixture(scope="session")
def pebble_nonce_storm(pebble_launcher: PebbleLauncher) -> Pebble:
    """A Pebble that rejects 60 % of valid nonces with badNonce."""
    return pebble_launcher.launch("storm", nonce_reject=60)


@pytest.fixture(scope="session")
def pebble_eab(pebble_launcher: PebbleLauncher) -> Pebble:
    """A Pebble that requires External Account Binding (kid-1)."""
    return pebble_launcher.launch("eab", eab=True)


@pytest.fixture(scope="session")
def pebble_altroots(pebble_launcher: PebbleLauncher) -> Pebble:
    """A Pebble that offers alternate chains (PEBBLE_ALTERNATE_ROOTS=1)."""
    return pebble_launcher.launch("altroots", PEBBLE_ALTERNATE_ROOTS="1")


@pytest.fixture(scope="session")
def unused_port() -> Any:
    """A function returning a free 127.0.0.1 TCP port."""
    return free_port


@pytest.fixture(scope="session")
def eab_credentials() -> tuple[str, str]:
    """(key id, base64url HMAC key) that ``pebble_eab`` accepts."""
    return EAB_KID, EAB_HMAC


# -- a scripted ACME server, for what Pebble 2.4 cannot show and for hostile CAs -----------


@pytest.fixture
def acme_stub(tmp_path: Path) -> Iterator[StubAcme]:
    stub = StubAcme(tmp_path)
    try:
        yield stub
    finally:
        stub.stop()
