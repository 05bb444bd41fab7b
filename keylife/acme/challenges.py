"""Challenge solvers: http-01 standalone responder, http-01 webroot, dns-01 hook commands.

A solver gets every pending challenge of an order at once (``prepare``), so a dns-01 hook runs
for each name and the propagation wait is paid once; ``cleanup`` always runs afterwards.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import os
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from keylife.acme.responder import DualStackServer, StandaloneResponder
from keylife.errors import AcmeError

log = logging.getLogger(__name__)

HTTP01_PREFIX = "/.well-known/acme-challenge/"


@dataclass(frozen=True)
class ChallengeTask:
    """One challenge to satisfy. ``validation`` is the http-01 key authorization (the file's
    content) or the dns-01 TXT record value. None of it is secret."""

    identifier: str
    identifier_type: str
    wildcard: bool
    token: str
    validation: str
    challenge_url: str
    authorization_url: str

    @property
    def display(self) -> str:
        return f"*.{self.identifier}" if self.wildcard else self.identifier

    @property
    def txt_name(self) -> str:
        return f"_acme-challenge.{self.identifier}"


class ChallengeSolver(Protocol):
    challenge_type: str

    def prepare(self, tasks: Sequence[ChallengeTask]) -> None: ...

    def cleanup(self, tasks: Sequence[ChallengeTask]) -> None: ...


# -- http-01 standalone ---------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _ChallengeServer
    timeout = 10
    server_version = "keylife-acme"
    sys_version = ""

    def do_GET(self) -> None:
        body = None
        if self.path.startswith(HTTP01_PREFIX):
            body = self.server.responses.get(self.path[len(HTTP01_PREFIX) :])
        if body is None:
            self.send_error(404)
            return
        data = body.encode("ascii")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("http-01 responder: " + format, *args)


class _ChallengeServer(DualStackServer):
    def __init__(self, address: tuple[str, int], family: socket.AddressFamily) -> None:
        self.address_family = family
        self.responses: dict[str, str] = {}
        super().__init__(address, _Handler)


class StandaloneHttp01(StandaloneResponder[_ChallengeServer]):
    """A small threaded HTTP server answering ``/.well-known/acme-challenge/<token>``.

    It listens only while challenges are pending. ``port=0`` picks a free port (tests).
    Usable as a context manager to keep one listener across several orders.
    """

    challenge_type = "http-01"

    def __init__(self, port: int = 80, address: str = "") -> None:
        super().__init__(port, address)

    def make_server(
        self, address: tuple[str, int], family: socket.AddressFamily
    ) -> _ChallengeServer:
        return _ChallengeServer(address, family)

    def prepare(self, tasks: Sequence[ChallengeTask]) -> None:
        self.start()
        assert self.server is not None
        for task in tasks:
            self.server.responses[task.token] = task.validation

    def cleanup(self, tasks: Sequence[ChallengeTask]) -> None:
        if self.server is not None:
            for task in tasks:
                self.server.responses.pop(task.token, None)
        self.release()


# -- http-01 webroot ------------------------------------------------------------------------


class WebrootHttp01:
    """Writes the challenge files under ``<webroot>/.well-known/acme-challenge/`` for an
    existing web server to serve, and removes them (and directories it made) afterwards."""

    challenge_type = "http-01"

    def __init__(self, webroot: str | os.PathLike[str]) -> None:
        self.webroot = Path(webroot)
        self._made_dirs: list[Path] = []

    def prepare(self, tasks: Sequence[ChallengeTask]) -> None:
        if not self.webroot.is_dir():
            raise AcmeError(f"webroot {self.webroot} is not a directory")
        directory = self.webroot / ".well-known" / "acme-challenge"
        for part in (directory.parent, directory):
            if not part.exists():
                try:
                    part.mkdir(mode=0o755)
                except OSError as exc:
                    raise AcmeError(f"cannot create {part}: {exc.strerror}") from exc
                part.chmod(0o755)
                self._made_dirs.append(part)
        for task in tasks:
            if "/" in task.token or task.token.startswith("."):
                raise AcmeError("the CA sent an unusable challenge token")
            path = directory / task.token
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                with os.fdopen(fd, "w", encoding="ascii") as handle:
                    handle.write(task.validation)
                path.chmod(0o644)
            except OSError as exc:
                raise AcmeError(f"cannot write the challenge file {path}: {exc.strerror}") from exc

    def cleanup(self, tasks: Sequence[ChallengeTask]) -> None:
        directory = self.webroot / ".well-known" / "acme-challenge"
        for task in tasks:
            try:
                (directory / task.token).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not remove challenge file %s: %s", task.token, exc.strerror)
        for part in reversed(self._made_dirs):
            with contextlib.suppress(OSError):
                part.rmdir()
        self._made_dirs = []


# -- dns-01 hooks ---------------------------------------------------------------------------


#: Variables a hook inherits from keylife's environment (plus ``LC_*``); nothing else, so no
#: secret (``KEYLIFE_MASTER_KEY``, ``KEYLIFE_BACKUP_PASSPHRASE``, ``KEYLIFE_EAB_HMAC_KEY``,
#: ``VAULT_TOKEN``, ``BAO_TOKEN``, cloud credentials...) ever reaches a hook process.
HOOK_ENV_ALLOWED = ("PATH", "HOME", "LANG", "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR")
#: The variables keylife itself sets for hooks (see docs/acme.md); only these may be added.
HOOK_VARIABLES = frozenset(
    {
        "KEYLIFE_ACME_DOMAIN",
        "KEYLIFE_ACME_TXT_NAME",
        "KEYLIFE_ACME_TXT_VALUE",
        "CERTBOT_DOMAIN",
        "CERTBOT_VALIDATION",
        "KEYLIFE_RING",
        "KEYLIFE_VERSION",
        "KEYLIFE_DOMAINS",
        "KEYLIFE_DEPLOY_DIR",
        "KEYLIFE_PRIVKEY",
        "KEYLIFE_CERT",
        "KEYLIFE_CHAIN",
        "KEYLIFE_FULLCHAIN",
        "RENEWED_LINEAGE",
        "RENEWED_DOMAINS",
    }
)


def hook_environment(
    extra: Mapping[str, str], inherited: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The whole environment of a hook: the allow-listed part of ``inherited`` (keylife's own
    environment by default) plus keylife's documented hook variables from ``extra``."""
    source = os.environ if inherited is None else inherited
    env = {k: v for k, v in source.items() if k in HOOK_ENV_ALLOWED or k.startswith("LC_")}
    env.setdefault("PATH", os.defpath)
    unknown = sorted(set(extra) - HOOK_VARIABLES)
    if unknown:
        raise AcmeError(f"not a documented hook variable: {', '.join(unknown)}")
    env.update(extra)
    return env


def run_hook(
    command: str, env: Mapping[str, str], *, what: str, timeout: float = 300.0
) -> subprocess.CompletedProcess[str]:
    """Run a user hook through ``/bin/sh -c`` in :func:`hook_environment` (``env`` adds
    keylife's hook variables); a non-zero exit raises."""
    full_env = hook_environment(env)
    try:
        result = subprocess.run(
            ["/bin/sh", "-c", command],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AcmeError(f"{what} did not finish within {timeout:g} s") from exc
    except OSError as exc:
        raise AcmeError(f"{what} could not be started: {exc.strerror}") from exc
    if result.returncode != 0:
        tail = (result.stderr or "").strip().splitlines()[-1:] or [""]
        raise AcmeError(f"{what} exited with status {result.returncode}: {tail[0][:200]}")
    return result


class DnsHook01:
    """dns-01 through commands: ``auth_hook`` publishes a TXT record, ``cleanup_hook`` removes it.

    Each hook runs once per challenge with ``KEYLIFE_ACME_DOMAIN`` (without ``*.``),
    ``KEYLIFE_ACME_TXT_NAME`` (``_acme-challenge.<domain>``), ``KEYLIFE_ACME_TXT_VALUE`` and,
    for certbot hook compatibility, ``CERTBOT_DOMAIN`` and ``CERTBOT_VALIDATION``. After all
    records are published keylife waits ``propagation_wait`` seconds once.
    """

    challenge_type = "dns-01"

    def __init__(
        self,
        auth_hook: str,
        cleanup_hook: str | None = None,
        *,
        propagation_wait: float = 0.0,
        hook_timeout: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if propagation_wait < 0:
            raise AcmeError("the propagation wait cannot be negative")
        self.auth_hook = auth_hook
        self.cleanup_hook = cleanup_hook
        self.propagation_wait = propagation_wait
        self.hook_timeout = hook_timeout
        self._sleep = sleep
        self._published: list[ChallengeTask] = []

    @staticmethod
    def environment(task: ChallengeTask) -> dict[str, str]:
        return {
            "KEYLIFE_ACME_DOMAIN": task.identifier,
            "KEYLIFE_ACME_TXT_NAME": task.txt_name,
            "KEYLIFE_ACME_TXT_VALUE": task.validation,
            "CERTBOT_DOMAIN": task.identifier,
            "CERTBOT_VALIDATION": task.validation,
        }

    def prepare(self, tasks: Sequence[ChallengeTask]) -> None:
        for task in tasks:
            run_hook(
                self.auth_hook,
                self.environment(task),
                what=f"the dns-01 hook for {task.display}",
                timeout=self.hook_timeout,
            )
            self._published.append(task)
        if self.propagation_wait:
            log.info("waiting %g s for DNS propagation", self.propagation_wait)
            self._sleep(self.propagation_wait)

    def cleanup(self, tasks: Sequence[ChallengeTask]) -> None:
        published, self._published = self._published, []
        if not self.cleanup_hook:
            return
        for task in published:
            try:
                run_hook(
                    self.cleanup_hook,
                    self.environment(task),
                    what=f"the dns-01 cleanup hook for {task.display}",
                    timeout=self.hook_timeout,
                )
            except AcmeError as exc:
                log.warning("%s", exc)


__all__ = [
    "HOOK_ENV_ALLOWED",
    "HOOK_VARIABLES",
    "ChallengeSolver",
    "ChallengeTask",
    "DnsHook01",
    "StandaloneHttp01",
    "WebrootHttp01",
    "hook_environment",
    "run_hook",
]
