"""Signatures, MACs and public keys of a ring: the :class:`Signatures` half of
:class:`~keylife.keyring.KeyRing`.

``sign`` returns ``0x05 · version (4) · signature``; the signature after the 5-byte header is
the standard one (ECDSA DER, Ed25519, RSA-PSS), so a verifier holding the public key from
``jwks()`` checks it with any library. ``mac`` returns ``0x06 · version (4) · HMAC tag``.
``verify`` and ``verify_mac`` return the ``kid`` (``RING:vN``) that verified, or raise
:class:`~keylife.errors.InvalidSignatureError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from . import envelope, primitives, publickeys
from .errors import KeyUsageError, MaterialUnavailableError, NotFoundError, VaultPermissionError
from .keyset import Keyset, require
from .lifecycle import KeyVersion, Ring
from .loaded import LoadedKey
from .policy import Purpose
from .published import PublishedKeys
from .specs import KeyKind
from .store.base import PublicKeySource

__all__ = ["Signatures", "published_keys", "readable_published"]

_SIGN_KINDS = (KeyKind.EC, KeyKind.ED25519, KeyKind.ED448, KeyKind.RSA)
_PUBLIC_PURPOSES = tuple(Purpose)
_SIG = envelope.SIGNATURE
_MAC = envelope.MAC


def _no_material(version: KeyVersion) -> Any:
    raise MaterialUnavailableError(
        f"{version.ring} v{version.number}: only its published public key may be read"
    )


def published_keys(store: object, name: str) -> PublishedKeys | None:
    """Ring ``name``'s published public keys, if ``store`` publishes them
    (:class:`~keylife.store.base.PublicKeySource`); None when it does not or has none."""
    if not isinstance(store, PublicKeySource):
        return None
    return store.load_public(name)


def readable_published(store: object, name: str) -> bool:
    """Whether this store's token may read ring ``name``'s published public keys."""
    try:
        return published_keys(store, name) is not None
    except VaultPermissionError:
        return False


class Signatures:
    """sign / verify / sign_jws, mac / verify_mac, public_keys / jwks / public_key."""

    name: str

    # Provided by KeyRing.
    def _now(self) -> float:
        raise NotImplementedError

    def _keyset(self) -> Keyset:
        raise NotImplementedError

    def _process_key(self, ks: Keyset, number: int, fmt: int) -> tuple[Keyset, LoadedKey]:
        raise NotImplementedError

    def _exported(self, versions: list[int], format: str) -> None:
        """Record an export of public keys (the audit log)."""
        raise NotImplementedError

    _fast: dict[Any, tuple[Any, ...]]
    _cache: Any
    _clock: Callable[[], float]

    def _protecting(
        self, fmt: int, t: float, build: Callable[[Keyset, LoadedKey], tuple[Any, ...]]
    ) -> tuple[Any, ...]:
        raise NotImplementedError

    def _processing_fast(
        self, head: bytes, fmt: int, t: float, build: Callable[[Keyset, LoadedKey], tuple[Any, ...]]
    ) -> tuple[Any, ...]:
        raise NotImplementedError

    # ---- signatures -------------------------------------------------------------------------

    def _signer(self, ks: Keyset, key: LoadedKey) -> tuple[Any, ...]:
        memo = ks.memo.get((_SIG, key.number))
        if memo is None:
            require(ks.ring, "sign", (Purpose.SIGNING,), _SIGN_KINDS)
            sign = primitives.signer(key.private_key, key.version.spec)  # type: ignore[arg-type]
            memo = (envelope.header(_SIG, key.number), sign)
            ks.memo[(_SIG, key.number)] = memo
        return memo

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` with the primary: ``0x05 · version · signature``."""
        t = self._clock()
        f = self._fast.get(_SIG)
        if f is None or not f[0] <= t < f[1]:
            f = self._protecting(_SIG, t, self._signer)
        return f[3] + f[4](data)  # type: ignore[no-any-return]

    def _verifier(self, ks: Keyset, key: LoadedKey) -> tuple[Any, ...]:
        memo = ks.memo.get(("verify", key.number))
        if memo is None:
            require(ks.ring, "verify", (Purpose.SIGNING,), _SIGN_KINDS)
            check = primitives.verifier(key.public_key(), key.version.spec)  # type: ignore[arg-type]
            memo = (check, publickeys.kid(self.name, key.number))
            ks.memo[("verify", key.number)] = memo
        return memo

    def verify(self, data: bytes, signature: bytes) -> str:
        """The ``kid`` of the version whose signature this is, if it verifies and that version
        may process now; InvalidSignatureError otherwise."""
        if len(signature) <= envelope.HEADER_SIZE:
            raise envelope.refusal(_SIG, self.name)
        t = self._now()
        head = bytes(signature[:5])
        f = self._fast.get(head)
        if f is None or not f[0] <= t < f[1]:
            f = self._processing_fast(head, _SIG, t, self._verifier)
        if not f[3](data, bytes(signature[5:])):
            raise envelope.refusal(_SIG, self.name)
        return f[4]  # type: ignore[no-any-return]

    def sign_jws(self, payload: bytes | str | Mapping[str, Any], **headers: Any) -> str:
        """A compact JWS (RFC 7515) of ``payload`` (bytes, text, or a mapping sent as JSON)
        signed by the primary, with ``alg`` (ES256/ES384/ES512/EdDSA/PS256) and
        ``kid`` = ``RING:vN`` in its header; extra header fields from ``headers``."""
        if isinstance(payload, Mapping):
            payload = json.dumps(payload, separators=(",", ":"), sort_keys=True)
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        ks = self._keyset()
        key = ks.primary(self._now())
        _, sign = self._signer(ks, key)
        spec = key.version.spec
        return publickeys.compact_jws(
            sign, spec, publickeys.kid(self.name, key.number), data, headers
        )

    # ---- MACs -------------------------------------------------------------------------------

    def _mac_key(self, ks: Keyset, key: LoadedKey) -> tuple[Any, ...]:
        memo = ks.memo.get((_MAC, key.number))
        if memo is None:
            require(ks.ring, "mac", (Purpose.AUTHENTICATION,), (KeyKind.HMAC,))
            hash_name = primitives.hash_for(key.version.spec)
            memo = (envelope.header(_MAC, key.number), key.material.reveal(), hash_name)
            ks.memo[(_MAC, key.number)] = memo
        return memo

    def mac(self, data: bytes) -> bytes:
        """The HMAC of ``data`` under the primary: ``0x06 · version · tag``."""
        ks = self._keyset()
        head, raw, hash_name = self._mac_key(ks, ks.primary(self._now()))
        tag: bytes = head + primitives.mac_tag(raw, hash_name, data)
        return tag

    def verify_mac(self, data: bytes, tag: bytes) -> str:
        """The ``kid`` of the version whose tag this is, if it verifies (constant-time) and
        that version may process now; InvalidSignatureError otherwise."""
        number, body = envelope.parse(tag, _MAC, 1, ring=self.name)
        ks = self._keyset()
        memo = ks.memo.get((_MAC, number))
        if memo is None or not ks.processes(number, self._now()):
            ks, key = self._process_key(ks, number, _MAC)
            memo = self._mac_key(ks, key)
        _, raw, hash_name = memo
        if not primitives.mac_ok(raw, hash_name, data, bytes(body)):
            raise envelope.refusal(_MAC, self.name)
        return publickeys.kid(self.name, number)

    # ---- public keys ------------------------------------------------------------------------

    _public_only = False

    def _grace_of(self, ring: Ring) -> Any:
        raise NotImplementedError

    def _public_view(self) -> tuple[Keyset, Callable[[int], publickeys.AnyPublicKey]]:
        """The key set whose versions' public halves are asked for, and how to get one: from
        the ring and its material, or (a token that may read only the published public keys,
        see :meth:`KeyManager.ring`) from the store's published document."""
        if self._public_only:
            published = published_keys(self._store(), self.name)
            if published is None:
                raise NotFoundError(f"ring {self.name} has no published public keys")
            ks = Keyset(published.ring, self._grace_of(published.ring), _no_material)
            public_of: Callable[[int], publickeys.AnyPublicKey] = published.keys.__getitem__
        else:
            ks = self._keyset()
            public_of = lambda n: ks.loaded(n, False).public_key()  # noqa: E731
        if ks.ring.spec.symmetric:
            raise KeyUsageError(
                f"ring {self.name} holds secret keys ({ks.ring.spec.name}); it has no public keys",
                ring=self.name,
                operation="public_keys",
            )
        return ks, public_of

    def _store(self) -> object:
        raise NotImplementedError

    def _in_window(
        self, ks: Keyset, public_of: Callable[[int], publickeys.AnyPublicKey]
    ) -> dict[str, publickeys.AnyPublicKey]:
        t = self._now()
        return {
            publickeys.kid(self.name, number): public_of(number)
            for number in ks.processing_versions(t)
        }

    def public_keys(self) -> dict[str, publickeys.AnyPublicKey]:
        """``kid`` -> public key of every version in its processing window, oldest first."""
        return self._in_window(*self._public_view())

    def jwks(self) -> dict[str, Any]:
        """The JWK Set of :meth:`public_keys`, each key with ``kid``, ``use`` and ``alg``."""
        ks, public_of = self._public_view()
        ring = ks.ring
        keys = [
            publickeys.jwk(public, ring.spec, ring.purpose, key_id)
            for key_id, public in self._in_window(ks, public_of).items()
        ]
        return {"keys": keys}

    def public_key(self, version: int | None = None, format: str = "pem") -> bytes:
        """One version's public key (default: the primary) as ``pem``, ``der``, ``ssh``,
        ``jwk`` (JSON) or ``jwks`` (every version in its window, JSON)."""
        if format == "jwks":
            jwks = self.jwks()
            self._exported([int(k["kid"].rsplit(":v", 1)[1]) for k in jwks["keys"]], format)
            return json.dumps(jwks, indent=2).encode() + b"\n"
        ks, public_of = self._public_view()
        ring = ks.ring
        t = self._now()
        if version is None:
            found = ks.primary_number(t)
            number = ks.primary(t).number if found is None else found  # None: raises
        elif ks.ring.get(version) is None:
            published = " published" if self._public_only else ""
            raise NotFoundError(f"ring {self.name} has no{published} version {version}")
        else:
            number = version if ks.processes(version, t) else ks.processing(version, t).number
        public = public_of(number)
        if format == "jwk":
            doc = publickeys.jwk(public, ring.spec, ring.purpose, publickeys.kid(ring.name, number))
            data = json.dumps(doc, indent=2).encode() + b"\n"
        else:
            try:
                data = publickeys.export(public, format)
            except ValueError as exc:
                raise KeyUsageError(str(exc), ring=self.name, operation="public_key") from None
        self._exported([number], format)
        return data
