"""Who a Vault token is, as keylife records it in the audit log."""

from __future__ import annotations

__all__ = ["identity_from_lookup"]


def identity_from_lookup(body: object) -> str:
    """``vault:DISPLAY_NAME entity=ID accessor=ACCESSOR`` from a ``lookup-self`` answer (never
    the token itself). Values are cut to 128 printable, non-space characters, so an identity
    is one token per field whatever the server sent."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        data = {}

    def field(key: str) -> str:
        value = data.get(key)
        text = value[:128] if isinstance(value, str) else ""
        return "".join(c for c in text if c.isprintable() and not c.isspace())

    parts = [f"vault:{field('display_name') or 'unknown'}"]
    for key, name in (("entity_id", "entity"), ("accessor", "accessor")):
        if field(key):
            parts.append(f"{name}={field(key)}")
    return " ".join(parts)
