"""``keylife vault status``: how keylife reaches Vault and what Vault says about itself.

Shows the client's settings (addresses, TLS verification, the pinned CA file), the token's
accessor and display name (never the token), the server version, seal and HA state. Nothing
here is secret: an accessor cannot be used to authenticate.
"""

from __future__ import annotations

from typing import Any

from .client import VaultClient

__all__ = ["vault_status"]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def vault_status(client: VaultClient) -> dict[str, Any]:
    """One document: ``address``, ``addresses``, ``tls``, ``token``, ``server``, ``ha``."""
    s = client.settings
    _s, health, _ = client.request(
        "GET", "sys/health?standbyok=true&perfstandbyok=true", what="read health", auth=False
    )
    _s, leader, _ = client.request("GET", "sys/leader", what="read HA state", auth=False)
    _s, token, _ = client.request("GET", "auth/token/lookup-self", what="token lookup")
    health, leader = health or {}, leader or {}
    tok = (token or {}).get("data") or {}
    address = client.address
    return {
        "address": address,
        "addresses": list(s.addresses),
        "tls": {
            "https": address.startswith("https://"),
            "verify": True,
            "ca_file": s.cacert,
            "trust": f"pinned to {s.cacert}" if s.cacert else "system CAs",
            "skip_verify_refused": s.skip_verify_refused,
        },
        "token": {
            "accessor": _str(tok.get("accessor")),
            "display_name": _str(tok.get("display_name")),
            "policies": [str(p) for p in tok.get("policies") or [] if isinstance(p, str)],
            "ttl": tok.get("ttl") if isinstance(tok.get("ttl"), int) else None,
        },
        "server": {
            "version": _str(health.get("version")),
            "cluster_name": _str(health.get("cluster_name")),
            "sealed": health.get("sealed") is True,
            "standby": health.get("standby") is True,
        },
        "ha": {
            "enabled": leader.get("ha_enabled") is True,
            "is_self": leader.get("is_self") is True,
            "leader_address": _str(leader.get("leader_address")),
        },
    }
