"""How to reach Vault: addresses, token, TLS trust, timeouts, AppRole (:class:`VaultSettings`).

TLS trust is pinned: with ``VAULT_CACERT`` (or the ``cacert=`` URL option) only that CA file is
trusted, whatever ``REQUESTS_CA_BUNDLE`` or the system store say; the file must exist and be
readable. ``VAULT_SKIP_VERIFY`` / ``tls_skip_verify`` are **not** honoured: keylife always
verifies Vault's certificate (tokens and key material on its way to Transit cross that
connection) and says so in one logged warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StoreError

__all__ = ["VaultSettings", "is_loopback"]

log = logging.getLogger("keylife.vault")

SKIP_VERIFY_WARNING = (
    "VAULT_SKIP_VERIFY / tls_skip_verify is not honoured: keylife always verifies Vault's TLS "
    "certificate (tokens and key material cross that connection); set VAULT_CACERT (or "
    "cacert= in the store URL) to the CA file that signed Vault's certificate"
)


def _read_file(path: str) -> str:
    try:
        return Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from exc


def is_loopback(address: str) -> bool:
    host = address.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def _ca_file(path: str, source: str) -> str:
    """``path`` made absolute after checking that it is a readable file."""
    full = Path(path).expanduser()
    try:
        with open(full, "rb") as f:
            head = f.read(64 * 1024)
    except OSError as exc:
        raise StoreError(
            f"the CA file {path} ({source}) cannot be read: {exc.strerror or exc}; give the PEM "
            "file of the CA that signed Vault's certificate"
        ) from exc
    if b"-----BEGIN CERTIFICATE-----" not in head:
        raise StoreError(
            f"the CA file {path} ({source}) holds no PEM certificate; give the PEM file of the "
            "CA that signed Vault's certificate"
        )
    return str(full.resolve())


#: OpenBao's variable names, read when their ``VAULT_*`` twin is unset.
BAO_NAMES = ("ADDR", "TOKEN", "NAMESPACE", "CACERT", "CLIENT_TIMEOUT", "SKIP_VERIFY")


def with_bao_names(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with each unset ``VAULT_X`` filled from ``BAO_X`` (``VAULT_*`` wins)."""
    out = dict(env)
    for name in BAO_NAMES:
        if not out.get(f"VAULT_{name}") and out.get(f"BAO_{name}"):
            out[f"VAULT_{name}"] = out[f"BAO_{name}"]
    return out


@dataclass
class VaultSettings:
    """How to reach and authenticate to Vault. Build with :meth:`from_env`.

    ``verify`` is True (the system CAs) or the path of the one CA file trusted (pinned).
    """

    addresses: list[str]
    token: str | None = field(default=None, repr=False)
    namespace: str | None = None
    verify: bool | str = True
    connect_timeout: float = 2.0
    read_timeout: float = 10.0
    deadline: float = 30.0
    role_id: str | None = field(default=None, repr=False)
    secret_id: str | None = field(default=None, repr=False)
    approle_mount: str = "approle"
    renew_increment: str = "1h"
    #: VAULT_SKIP_VERIFY / tls_skip_verify was asked for (and refused: verification stays on)
    skip_verify_refused: bool = False
    #: No address was given anywhere: ``addresses`` holds the Vault CLI's default.
    address_defaulted: bool = False

    @property
    def cacert(self) -> str | None:
        """The pinned CA file, or None (system CAs)."""
        return self.verify if isinstance(self.verify, str) else None

    @classmethod
    def from_env(
        cls,
        addresses: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
    ) -> VaultSettings:
        """Settings from explicit ``addresses``/``options`` first, then the Vault CLI's variables.

        ``VAULT_ADDR`` may hold a comma-separated list. ``VAULT_TOKEN`` (else the CLI's
        ``~/.vault-token``), ``VAULT_NAMESPACE``, ``VAULT_CACERT`` (pinned),
        ``VAULT_CLIENT_TIMEOUT`` are honoured; ``VAULT_SKIP_VERIFY`` is refused with a warning.
        OpenBao's names (``BAO_ADDR``, ``BAO_TOKEN``, ``BAO_NAMESPACE``, ``BAO_CACERT``,
        ``BAO_CLIENT_TIMEOUT``, ``BAO_SKIP_VERIFY``) are read too; a ``VAULT_*`` variable wins
        over its ``BAO_*`` twin.
        AppRole: ``KEYLIFE_VAULT_ROLE_ID`` / ``KEYLIFE_VAULT_ROLE_ID_FILE`` and
        ``KEYLIFE_VAULT_SECRET_ID`` / ``KEYLIFE_VAULT_SECRET_ID_FILE`` (or the
        ``role_id_file``/``secret_id_file`` options).
        """
        env = with_bao_names(os.environ if env is None else env)
        opts = dict(options or {})
        addrs = [a.strip().rstrip("/") for a in addresses if a.strip()]
        if not addrs:
            raw = env.get("VAULT_ADDR", "")
            addrs = [a.strip().rstrip("/") for a in raw.split(",") if a.strip()]
        defaulted = not addrs
        if defaulted:
            addrs = ["https://127.0.0.1:8200"]  # the Vault CLI's default
        for addr in addrs:
            if not addr.startswith(("http://", "https://")):
                raise StoreError(f"Vault address {addr!r} must start with http:// or https://")
            if addr.startswith("http://") and not is_loopback(addr):
                log.warning(
                    "Vault address %s is plain HTTP: tokens and wrapped key material cross the "
                    "network unencrypted; use https (vaults://)",
                    addr,
                )
        verify: bool | str = True
        if opts.get("cacert"):
            verify = _ca_file(opts["cacert"], "cacert= in the store URL")
        elif env.get("VAULT_CACERT"):
            verify = _ca_file(env["VAULT_CACERT"], "VAULT_CACERT")
        skip = opts.get("tls_skip_verify") or env.get("VAULT_SKIP_VERIFY", "")
        refused = skip.strip().lower() in ("1", "true", "yes", "t")
        if refused:
            log.warning(SKIP_VERIFY_WARNING)
        role_id = opts.get("role_id") or env.get("KEYLIFE_VAULT_ROLE_ID")
        role_file = opts.get("role_id_file") or env.get("KEYLIFE_VAULT_ROLE_ID_FILE")
        if not role_id and role_file:
            role_id = _read_file(role_file)
        secret_id = env.get("KEYLIFE_VAULT_SECRET_ID")
        secret_file = opts.get("secret_id_file") or env.get("KEYLIFE_VAULT_SECRET_ID_FILE")
        if not secret_id and secret_file:
            secret_id = _read_file(secret_file)
        token = env.get("VAULT_TOKEN") or None
        if token is None and not role_id:
            helper = Path(env.get("HOME", str(Path.home()))) / ".vault-token"
            if helper.is_file():
                token = helper.read_text().strip() or None
        timeout = float(opts.get("timeout") or env.get("VAULT_CLIENT_TIMEOUT", "10") or 10)
        return cls(
            addresses=addrs,
            token=token,
            namespace=opts.get("namespace") or env.get("VAULT_NAMESPACE") or None,
            verify=verify,
            connect_timeout=min(2.0, timeout),
            read_timeout=timeout,
            deadline=float(opts.get("deadline") or env.get("KEYLIFE_VAULT_DEADLINE", "30")),
            role_id=role_id or None,
            secret_id=secret_id or None,
            approle_mount=opts.get("approle_mount", "approle"),
            skip_verify_refused=refused,
            address_defaulted=defaulted,
        )
