"""What relies on a compromised version: the steps an operator must take, by purpose."""

from __future__ import annotations

from .lifecycle import KeyVersion, Ring

__all__ = ["dependents"]

_ENCRYPTED = (
    "data encrypted or keys wrapped under v{n} since {start}: re-encrypt them under the "
    "replacement (decrypt them with `keylife key recover {ring} {n} --reason TEXT` or "
    "ring.recover({n}, reason=...), audited each time)"
)
_PROTECTED_DATA = {
    "data-encryption": _ENCRYPTED,
    "key-wrapping": _ENCRYPTED,
    "signing": "signatures made with v{n} since {start}: re-sign them and distrust the public "
    "key {fp}",
    "authentication": "MACs made with v{n} since {start}: recompute them",
}


def dependents(ring: Ring, bad: KeyVersion, was_primary: KeyVersion | None) -> list[str]:
    """What relies on a compromised version, as steps for the operator."""
    start = (bad.activation or bad.created).isoformat()
    template = _PROTECTED_DATA.get(ring.purpose, "peers that trust v{n} ({fp}): redeploy")
    deps = [template.format(n=bad.number, start=start, fp=bad.fingerprint, ring=ring.name)]
    for key, value in sorted(bad.attributes.items()):
        if key.startswith("deployed_to") or key == "certificate_pem":
            label = "certificate issued for this key" if key == "certificate_pem" else value
            deps.append(f"{key}: {label}")
    if was_primary is not None and was_primary.number != bad.number:
        deps.append(f"v{was_primary.number} was the primary and has been superseded")
    return deps
