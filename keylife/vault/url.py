"""Vault store URLs: ``vaults://host1:8200,host2:8200/MOUNT?transit=transit&key=keylife``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import StoreError
from .client import VaultSettings

__all__ = ["DEFAULT_KEY", "DEFAULT_MOUNT", "DEFAULT_TRANSIT", "StoreLocation", "canonical_url"]

DEFAULT_MOUNT = "keylife"
DEFAULT_TRANSIT = "transit"
DEFAULT_KEY = "keylife"
SCHEMES = {"vault": "http", "vaults": "https", "http": "http", "https": "https"}


@dataclass(frozen=True)
class StoreLocation:
    """Where a Vault store lives and how to reach it."""

    settings: VaultSettings
    mount: str
    transit_mount: str
    key_name: str

    @classmethod
    def parse(cls, url: str) -> StoreLocation:
        """Parse ``vault://`` (HTTP), ``vaults://`` (HTTPS) or ``http(s)://`` store URLs.

        Hosts may be left out (``vaults:///keylife``) to take ``VAULT_ADDR`` (a
        comma-separated list is accepted). Query options: ``transit``, ``key``, ``addr``
        (repeatable), ``namespace``, ``cacert``, ``timeout``, ``deadline``, ``role_id_file``,
        ``secret_id_file``, ``approle_mount``, ``tls_skip_verify`` (warns).
        """
        parts = urlsplit(url)
        scheme = SCHEMES.get(parts.scheme)
        if scheme is None:
            raise StoreError(
                f"unsupported Vault store URL {url!r}; use vault://HOST:PORT/MOUNT or "
                "vaults://HOST:PORT/MOUNT"
            )
        query = {k: v for k, v in parse_qs(parts.query).items() if v}
        options = {k: v[-1] for k, v in query.items()}
        addresses = [f"{scheme}://{h.strip()}" for h in parts.netloc.split(",") if h.strip()]
        for extra in query.get("addr", []):
            addresses += [a.strip() for a in extra.split(",") if a.strip()]
        settings = VaultSettings.from_env(addresses, options=options)
        plain = [a for a in settings.addresses if a.startswith("http://")]
        if parts.scheme in ("vaults", "https") and plain:
            raise StoreError(
                f"{parts.scheme}:// asks for TLS, but {plain[0]} is plain HTTP; use an https:// "
                "address (VAULT_ADDR) or the vault:// scheme for a loopback dev server"
            )
        return cls(
            settings,
            unquote(parts.path).strip("/") or DEFAULT_MOUNT,
            options.get("transit", DEFAULT_TRANSIT),
            options.get("key", DEFAULT_KEY),
        )


def canonical_url(settings: VaultSettings, mount: str, transit_mount: str, key_name: str) -> str:
    """The URL that names a store (shown in reports; holds no secret)."""
    hosts = ",".join(a.split("://", 1)[1] for a in settings.addresses)
    scheme = "vaults" if all(a.startswith("https") for a in settings.addresses) else "vault"
    return f"{scheme}://{hosts}/{mount}?transit={transit_mount}&key={key_name}"
