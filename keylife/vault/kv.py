"""KV v2 under one mount: read, read a version, check-and-set write, list, destroy, metadata.

Vault's answers are decoded here, once, into small typed results (:class:`KvEntry`,
:class:`KvMetadata`); callers never see a raw response. Paths are relative to the mount and
already quoted (:func:`keylife.vault.client.q` quotes one segment). Every call names what it
does (``what``) for error messages; nothing here logs or formats a document's content.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import CasMismatch
from .client import VaultClient

__all__ = ["KV", "KvEntry", "KvMetadata"]


@dataclass(frozen=True)
class KvEntry:
    """The data of one KV v2 version and that version's number."""

    data: dict[str, Any]
    version: int
    #: when this version was written (Vault's ``created_time``; "" when not known)
    created: str = field(default="", compare=False)


@dataclass(frozen=True)
class KvMetadata:
    """A secret's metadata: its current and oldest kept version, and which versions exist."""

    current_version: int
    oldest_version: int
    versions: tuple[int, ...]


def _data(body: Mapping[str, Any] | None) -> dict[str, Any]:
    data = (body or {}).get("data")
    return data if isinstance(data, dict) else {}


class KV:
    """The KV v2 engine mounted at ``mount``, reached through ``client``."""

    def __init__(self, client: VaultClient, mount: str) -> None:
        self.client = client
        self.mount = mount.strip("/")

    def __repr__(self) -> str:
        return f"<KV {self.mount}/>"

    def _entry(self, body: Mapping[str, Any] | None, what: str) -> KvEntry | None:
        """A KV v2 read answer: ``{data: {data, metadata: {version, deletion_time, ...}}}``."""
        data = _data(body)
        content, meta = data.get("data"), data.get("metadata")
        version = meta.get("version") if isinstance(meta, dict) else None
        if not isinstance(meta, dict) or not isinstance(version, int) or version < 1:
            raise self.client.unexpected(what, "a KV read without metadata.version")
        if isinstance(content, dict):
            created = meta.get("created_time")
            return KvEntry(content, version, created if isinstance(created, str) else "")
        if content is None and (meta.get("deletion_time") or meta.get("destroyed") is True):
            return None  # deleted or destroyed version
        raise self.client.unexpected(what, "a KV read without data")

    def read(self, path: str, *, what: str) -> KvEntry | None:
        """The current version, or None when there is none (missing or deleted)."""
        status, body, _ = self.client.request("GET", f"{self.mount}/data/{path}", what=what)
        return None if status == 404 else self._entry(body, what)

    def read_version(self, path: str, version: int, *, what: str) -> KvEntry | None:
        """Version ``version`` of ``path``, or None when it is gone (or never existed)."""
        status, body, _ = self.client.request(
            "GET", f"{self.mount}/data/{path}?version={int(version)}", what=what
        )
        return None if status == 404 else self._entry(body, what)

    def cas_write(
        self,
        path: str,
        data: Mapping[str, Any],
        *,
        cas: int,
        what: str,
        ours: Callable[[dict[str, Any]], bool],
    ) -> int:
        """Check-and-set write (``cas=0``: create); returns the new version (see :meth:`write`)."""
        return self.write(path, data, cas=cas, what=what, ours=ours)[0]

    def write(
        self,
        path: str,
        data: Mapping[str, Any],
        *,
        cas: int,
        what: str,
        ours: Callable[[dict[str, Any]], bool],
    ) -> tuple[int, str]:
        """Check-and-set write (``cas=0``: create); returns the new version and its
        ``created_time``.

        When the answer to an earlier attempt was lost and a retry lost the check-and-set,
        the current version is read back and ``ours(data)`` decides whether that earlier
        attempt was in fact applied. A lost check-and-set raises :class:`CasMismatch`.
        """
        payload = {"options": {"cas": cas}, "data": dict(data)}
        try:
            _status, body, _amb = self.client.request(
                "POST", f"{self.mount}/data/{path}", json=payload, what=what
            )
        except CasMismatch:
            current = self.read(path, what=f"{what} (read back)")
            if current is not None and current.version == cas + 1 and ours(current.data):
                return current.version, current.created
            raise
        answer = _data(body)
        version, created = answer.get("version"), answer.get("created_time")
        if not isinstance(version, int) or version < 1:
            raise self.client.unexpected(what, "a KV write answer without data.version")
        return version, created if isinstance(created, str) else ""

    def list(self, path: str, *, what: str) -> list[str]:
        """The keys directly under ``path`` (folders end in ``/``); [] when there are none."""
        status, body, _ = self.client.request("LIST", f"{self.mount}/metadata/{path}", what=what)
        if status == 404:
            return []
        keys = _data(body).get("keys")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise self.client.unexpected(what, "a KV list answer without data.keys")
        return list(keys)

    def list_versions(
        self, path: str, *, what: str, deleted: set[str] | None = None
    ) -> dict[str, tuple[int, str]] | None:
        """``{key: (current version, that version's created_time)}`` for the secrets directly
        under ``path``, in one request (OpenBao's ``detailed-metadata``); None when the server
        has no such endpoint (HashiCorp Vault). A secret whose current version is deleted
        (:meth:`delete`) is left out, and its key added to ``deleted`` when given."""
        status, body, _ = self.client.request(
            "LIST", f"{self.mount}/detailed-metadata/{path}", what=what
        )
        if status == 404:  # {"errors": []}: nothing there; with "warnings": no such endpoint
            return None if (body or {}).get("warnings") else {}
        info = _data(body).get("key_info")
        if not isinstance(info, dict):
            raise self.client.unexpected(what, "a detailed listing without data.key_info")
        out: dict[str, tuple[int, str]] = {}
        for key, meta in info.items():
            if str(key).endswith("/") or not isinstance(meta, dict):
                continue
            current = meta.get("current_version")
            versions = meta.get("versions")
            one = versions.get(str(current)) if isinstance(versions, dict) else None
            created = one.get("created_time") if isinstance(one, dict) else ""
            if isinstance(one, dict) and (one.get("deletion_time") or one.get("destroyed")):
                if deleted is not None:
                    deleted.add(str(key))
                continue
            if isinstance(current, int) and current > 0:
                out[str(key)] = (current, created if isinstance(created, str) else "")
        return out

    def delete(self, path: str, *, what: str) -> None:
        """Soft-delete the current version of ``path`` (a data-path DELETE): reads find
        nothing, while its metadata and older versions stay (and so does its version count,
        so a ``cas=0`` create of ``path`` is refused)."""
        self.client.request("DELETE", f"{self.mount}/data/{path}", what=what)

    def destroy(self, path: str, *, what: str) -> None:
        """Delete every version and the metadata of ``path``: nothing of it remains."""
        self.client.request("DELETE", f"{self.mount}/metadata/{path}", what=what)

    def metadata(self, path: str, *, what: str) -> KvMetadata | None:
        """The metadata of ``path``, or None when it does not exist."""
        status, body, _ = self.client.request("GET", f"{self.mount}/metadata/{path}", what=what)
        if status == 404:
            return None
        data = _data(body)
        if not isinstance(data.get("current_version"), int):
            raise self.client.unexpected(what, "KV metadata without current_version")
        versions = data.get("versions")
        numbers = tuple(
            sorted(int(k) for k in versions if str(k).isdigit())
            if isinstance(versions, dict)
            else ()
        )
        current, oldest = data.get("current_version"), data.get("oldest_version")
        return KvMetadata(
            int(current) if isinstance(current, int) else 0,
            int(oldest) if isinstance(oldest, int) else 0,
            numbers,
        )
