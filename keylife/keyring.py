"""A service's view of one ring: :class:`KeyRing`, whose ``primary()`` protects and
``version(n)`` processes, and the operations built on them (docs/api.md, docs/formats.md):
``encrypt``/``decrypt``, ``encrypt_stream``/``decrypt_stream``, ``wrap``/``unwrap``/
``data_key``, ``rewrap``, ``sign``/``verify``/``sign_jws``, ``mac``/``verify_mac`` and the
public keys for verifiers.

Usage follows the state: only the primary protects (encrypts, signs, wraps, MACs); a blob
names its version and is processed by that version only while it is in its processing window.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag

from . import counters, envelope, primitives, streaming
from .accesslog import export_entry
from .clock import SystemClock, as_utc
from .errors import DecryptionError, KeyUsageError, NotFoundError, UnknownSpecError
from .keyset import Keyset, require
from .lifecycle import KeyVersion, Ring
from .loaded import LoadedKey
from .material import KeyMaterial
from .policy import Purpose
from .publickeys import kid
from .recover import Recovered, recover
from .ringcache import CachedStore
from .signing import Signatures
from .specs import KeyKind, KeySpec, parse_spec
from .writer import RingWriter

__all__ = ["KeyRing"]

Builder = Callable[[Keyset, LoadedKey], tuple[Any, ...]]

#: A decrypt naming a version newer than the cached document rereads the store, at most this
#: often per ring (so garbage version numbers cannot turn into a flood of store reads).
FORCED_REFRESH_INTERVAL = 0.5

_AEAD_KINDS = (KeyKind.AES, KeyKind.CHACHA20)
_MSG = envelope.MESSAGE
_MIN_MESSAGE = envelope.HEADER_SIZE + envelope.NONCE_SIZE + envelope.TAG_SIZE


class KeyRing(Signatures):
    """A service's view of one ring."""

    def __init__(
        self,
        manager: RingWriter,
        name: str,
        loaded: Ring | None = None,
        *,
        public_only: bool = False,
    ) -> None:
        self._manager = manager
        self.name = name
        #: the token may read only the ring's published public keys (Vault's verify-only
        #: policy): public_keys(), jwks() and public_key() come from those
        self._public_only = public_only
        # The copy ``manager.ring()`` read to check the name serves the next read once, so
        # ``manager.ring(name).primary()`` reads the store once, not twice.
        self._loaded = loaded
        store = manager.store
        self._cache = store if isinstance(store, CachedStore) else None
        self._ks: Keyset | None = None
        self._ks_until = 0.0
        self._ks_gen = -1
        self._wall = type(manager.clock) is SystemClock
        self._clock: Callable[[], float] = time.time if self._wall else self._t
        # Fast paths behind a cache: key -> (from, until, cache generation, *values); the
        # cache empties it when it drops this ring (a commit through this process).
        self._fast: dict[Any, tuple[Any, ...]] = {}
        self._enc: tuple[Any, ...] | None = None  # encrypt's entry, kept out of the dict
        self._tally = counters.tally(store)
        if self._cache is not None:
            self._cache.listen(self)

    def forget(self, name: str | None) -> None:
        """Drop what this object keeps of ring ``name`` (every ring when None)."""
        if name is None or name == self.name:
            self._fast = {}
            self._enc = None
            self._ks = None

    def __repr__(self) -> str:
        return f"<KeyRing {self.name}>"

    # ---- documents, time and key sets -------------------------------------------------------

    def _ring(self) -> Ring:
        ring, self._loaded = self._loaded, None
        return ring if ring is not None else self._manager.load(self.name)

    def _t(self) -> float:
        """Now as POSIX seconds: the wall clock directly under SystemClock, else the clock."""
        if self._wall:
            return time.time()
        return as_utc(self._manager.clock.now()).timestamp()

    def _build(self, ring: Ring) -> Keyset:
        grace = self._manager.policy.rules(Purpose.parse(ring.purpose)).grace_period
        return Keyset(ring, grace, partial(RingWriter.material, self._manager))

    def _keys(self) -> Keyset:
        """The key set of the current document: built per call on a plain store, kept for the
        refresh interval behind a cache."""
        cache = self._cache
        if cache is None:
            return self._build(self._ring())
        ks = self._ks
        if (
            ks is not None
            and cache.monotonic() < self._ks_until
            and self._ks_gen == cache.generation
        ):
            return ks
        self._ks_gen = cache.generation
        ring = cache.load_ring(self.name)
        if ring is None:
            raise NotFoundError(f"no ring named {self.name!r}")
        ks = cache.derived("keyset", ring, lambda: self._build(ring))
        assert isinstance(ks, Keyset)
        self._ks = ks
        # Trust this copy for a fraction of the interval, then ask the cache again (which
        # notices invalidations made by commits through this process).
        self._ks_until = cache.monotonic() + min(1.0, cache.refresh / 4)
        return ks

    def _reuse_until(self, t: float, end: float) -> float:
        """How long a fast-path entry made at ``t`` may serve: never without a cache, else up
        to ``end`` and at most a fraction of the refresh interval."""
        cache = self._cache
        if cache is None:
            return -math.inf
        bound: float = t + min(1.0, cache.refresh / 4)
        return min(end, bound)

    def _protecting(self, fmt: int, t: float, build: Builder) -> tuple[Any, ...]:
        """The fast-path entry of the primary for ``fmt``: (from, until, generation, *build)."""
        self._tally.maybe_flush()
        ks = self._keys()
        key, until = ks.primary_until(t)
        cache = self._cache
        generation = -1 if cache is None else cache.generation
        entry = (t, self._reuse_until(t, until), generation, *build(ks, key))
        if cache is not None:
            self._fast[fmt] = entry
        return entry

    def _processing_fast(self, head: bytes, fmt: int, t: float, build: Builder) -> tuple[Any, ...]:
        """The fast-path entry of the version a blob's 5-byte ``head`` names, checked."""
        if head[0] != fmt:
            raise envelope.refusal(fmt, self.name)
        number = int.from_bytes(head[1:5], "big")
        ks, key = self._processing(self._keys(), number, fmt)
        cache = self._cache
        until = self._reuse_until(t, ks.process_end(number))
        entry = (t, until, -1 if cache is None else cache.generation, *build(ks, key))
        if cache is not None:
            self._fast[head] = entry
        return entry

    def _refreshed(self, ks: Keyset, number: int) -> Keyset:
        """``ks``, or a fresh one when ``number`` is newer than it knows (rate-limited)."""
        cache = self._cache
        if cache is None or number < ks.ring.next_version:
            return ks
        if not cache.may_force(self.name, FORCED_REFRESH_INTERVAL):
            return ks
        cache.invalidate(self.name)
        self._ks = None
        return self._keys()

    def _processing(self, ks: Keyset, number: int, fmt: int) -> tuple[Keyset, LoadedKey]:
        """Version ``number`` for processing a ``fmt`` blob: opaque error if the ring has no
        such version, MaterialUnavailableError if it may not process now."""
        ks = self._refreshed(ks, number)
        if ks.ring.get(number) is None:
            raise envelope.refusal(fmt, self.name)
        return ks, ks.processing(number, self._t())

    def _require(self, operation: str, purposes: tuple[Purpose, ...], kinds: Any) -> Ring:
        ring = self._keys().ring
        require(ring, operation, purposes, kinds)
        return ring

    @property
    def spec(self) -> KeySpec:
        return self._ring().spec

    @property
    def purpose(self) -> str:
        return self._ring().purpose

    def kid(self, number: int) -> str:
        """The key id of version ``number``: ``RING:vN``."""
        return kid(self.name, number)

    def primary(self, now: dt.datetime | None = None) -> LoadedKey:
        """The version that applies protection (encrypts, signs) at ``now``."""
        t = self._t() if now is None else as_utc(now).timestamp()
        return self._keys().primary(t)

    def version(self, number: int, now: dt.datetime | None = None) -> LoadedKey:
        """Version ``number`` for processing (decrypt, verify), if the policy still allows it;
        it protects too if it is the primary."""
        t = self._t() if now is None else as_utc(now).timestamp()
        ks = self._keys()
        if ks.ring.get(number) is None:
            ks = self._refreshed(ks, number)
            if ks.ring.get(number) is None:
                raise NotFoundError(f"ring {self.name} has no version {number}")
        return ks.processing(number, t)

    def recover(self, number: int, *, reason: str) -> Recovered:
        """Compromised version ``number`` for processing only (decrypt, verify), each call
        audited with ``reason``: the one way to remove protection a compromised key applied."""
        return recover(self._manager, self.name, number, reason=reason)

    def history(self) -> list[KeyVersion]:
        """Every version, oldest first, including destroyed and compromised ones."""
        return list(self._ring().versions)

    # ---- messages ---------------------------------------------------------------------------

    def _message(self, ks: Keyset, key: LoadedKey) -> tuple[Any, ...]:
        memo = ks.memo.get((_MSG, key.number))
        if memo is None:
            require(ks.ring, "encrypt", (Purpose.DATA_ENCRYPTION,), _AEAD_KINDS)
            head = envelope.header(_MSG, key.number)
            ad = envelope.associated_data(_MSG, self.name, key.number)
            count = self._tally.counter(self.name, key.number) if key.protects else None
            messages = None if count is None else count.messages
            memo = (key.cipher.encrypt, key.cipher.decrypt, head, ad, messages, count)
            ks.memo[(_MSG, key.number)] = memo
        return memo

    def encrypt(self, plaintext: bytes, associated_data: bytes = b"") -> bytes:
        """Encrypt under the primary with a random nonce (format ``0x01``)."""
        t = self._clock()
        f = self._enc
        if f is None or not f[0] <= t < f[1]:
            f = self._protecting(_MSG, t, self._message)
            if self._cache is not None:
                self._enc = f
        _, _, _, seal, _, head, ad, messages, count = f
        if next(messages) >= count.check_at:  # a flush is due, or the message limit is near
            self._tally.reached(count)
        nonce = primitives.nonce_bytes(12)
        if associated_data:
            ad += associated_data
        return head + nonce + seal(nonce, plaintext, ad)  # type: ignore[no-any-return]

    def decrypt(self, ciphertext: bytes, associated_data: bytes = b"") -> bytes:
        """The plaintext of an ``encrypt`` result, if the version it names may process now."""
        t = self._clock()
        head = ciphertext[:5]
        try:
            f = self._fast.get(head)
        except TypeError:  # a bytearray or memoryview: not hashable
            head = bytes(head)
            f = self._fast.get(head)
        if f is None or not f[0] <= t < f[1]:
            if len(ciphertext) < _MIN_MESSAGE:
                raise envelope.refusal(_MSG, self.name)
            f = self._processing_fast(bytes(head), _MSG, t, self._message)
        unseal = f[4]
        ad = f[6]
        if associated_data:
            ad += associated_data
        try:
            return unseal(ciphertext[5:17], ciphertext[17:], ad)  # type: ignore[no-any-return]
        except (InvalidTag, ValueError):  # a short blob: nonce or tag missing
            raise envelope.refusal(_MSG, self.name) from None

    # ---- streams ----------------------------------------------------------------------------

    def encrypt_stream(self, src: BinaryIO, dst: BinaryIO, associated_data: bytes = b"") -> int:
        """Encrypt the binary file ``src`` to ``dst`` in 64 KiB segments (format ``0x02``) in
        constant memory; the number of bytes written."""
        self._require("encrypt_stream", (Purpose.DATA_ENCRYPTION,), _AEAD_KINDS)
        key = self.primary()
        self._tally.count(self.name, key.number)
        return streaming.encrypt_stream(
            key.material, self.name, key.number, src, dst, associated_data
        )

    def decrypt_stream(self, src: BinaryIO, dst: BinaryIO, associated_data: bytes = b"") -> int:
        """Decrypt an ``encrypt_stream`` result; the plaintext length. On an error, what was
        already written to ``dst`` must be discarded."""
        self._require("decrypt_stream", (Purpose.DATA_ENCRYPTION,), _AEAD_KINDS)

        def key_for(number: int) -> KeyMaterial:
            return self._processing(self._keys(), number, envelope.STREAM)[1].material

        return streaming.decrypt_stream(key_for, self.name, src, dst, associated_data)

    # ---- envelope encryption ----------------------------------------------------------------

    def _wrap_ring(self, operation: str) -> Ring:
        return self._require(operation, (Purpose.KEY_WRAPPING,), (KeyKind.AES, KeyKind.RSA))

    def wrap(self, key: bytes | KeyMaterial) -> bytes:
        """Wrap key bytes under the primary: AES-GCM (format ``0x03``) on AES rings, RSA-OAEP
        SHA-256 (format ``0x04``) on RSA rings."""
        ring = self._wrap_ring("wrap")
        raw = key.reveal() if isinstance(key, KeyMaterial) else bytes(key)
        primary = self.primary()
        if ring.spec.kind is KeyKind.RSA:
            public = primary.private_key.public_key()
            return primitives.wrap_rsa(public, self.name, primary.number, raw)  # type: ignore[arg-type]
        self._tally.count(self.name, primary.number)
        return primitives.seal(primary.cipher, envelope.WRAP_AEAD, self.name, primary.number, raw)

    def _unwrap_raw(self, blob: bytes) -> bytes:
        ring = self._wrap_ring("unwrap")
        rsa = ring.spec.kind is KeyKind.RSA
        fmt = envelope.WRAP_RSA if rsa else envelope.WRAP_AEAD
        number, body = envelope.parse(blob, fmt, 1 if rsa else 28, ring=self.name)
        _, key = self._processing(self._keys(), number, fmt)
        if rsa:
            return primitives.unwrap_rsa(key.private_key, self.name, number, body)  # type: ignore[arg-type]
        return primitives.open_sealed(key.cipher, fmt, self.name, number, body, b"")

    def unwrap(self, blob: bytes, spec: str | KeySpec | None = None) -> KeyMaterial:
        """The key inside a ``wrap`` result, as :class:`KeyMaterial` (``spec`` labels it;
        default: ``aes-<bits>`` by its length)."""
        raw = self._unwrap_raw(blob)
        return KeyMaterial(raw, _label(spec, raw, self.name))

    def data_key(self, spec: str = "aes-256") -> tuple[KeyMaterial, bytes]:
        """A fresh secret key of ``spec`` and the same key wrapped under the primary.

        The plaintext key is a :class:`KeyMaterial` (redacted repr, no pickling; ``reveal()``
        gives the bytes), so logging it by mistake shows nothing.
        """
        wanted = parse_spec(spec)
        if not wanted.symmetric:
            raise KeyUsageError(
                f"data keys are secret keys (aes-128, aes-256, chacha20, hmac-*), not {spec}",
                ring=self.name,
                operation="data_key",
            )
        material = KeyMaterial(primitives.random_bytes(wanted.key_bits // 8), wanted)
        return material, self.wrap(material)

    def rewrap(self, blob: bytes, associated_data: bytes = b"") -> bytes:
        """``blob`` (a message or a wrapped key) re-encrypted under the primary, the plaintext
        never leaving this call. A blob already on the primary is re-encrypted too."""
        if blob[:1] == bytes([envelope.MESSAGE]):
            return self.encrypt(self.decrypt(blob, associated_data), associated_data)
        if blob[:1] in (bytes([envelope.WRAP_AEAD]), bytes([envelope.WRAP_RSA])):
            if associated_data:
                raise KeyUsageError("wrapped keys take no associated data", ring=self.name)
            return self.wrap(self._unwrap_raw(blob))
        raise DecryptionError(
            f"not a keylife ciphertext or wrapped key for ring {self.name}", ring=self.name
        )

    def version_of(self, blob: bytes) -> int:
        """The version number a blob (any keylife format) names, without opening it."""
        if len(blob) < envelope.HEADER_SIZE or blob[0] not in envelope.LABELS.keys() | {5, 6}:
            raise DecryptionError(f"not a keylife blob for ring {self.name}", ring=self.name)
        return int.from_bytes(blob[1:5], "big")

    # ---- what Signatures needs --------------------------------------------------------------

    def _now(self) -> float:
        return self._t()

    def _keyset(self) -> Keyset:
        return self._keys()

    def _grace_of(self, ring: Ring) -> dt.timedelta:
        return self._manager.policy.rules(Purpose.parse(ring.purpose)).grace_period

    def _store(self) -> object:
        return self._manager.store

    def _process_key(self, ks: Keyset, number: int, fmt: int) -> tuple[Keyset, LoadedKey]:
        return self._processing(ks, number, fmt)

    def _exported(self, versions: list[int], format: str) -> None:
        if self._public_only:
            # A verify-only token reads the published halves and may write nothing, the audit
            # log included; Vault's own audit device records those reads (docs/vault.md).
            return
        entry = export_entry(self._manager.entry, self.name, versions, format)
        self._manager.store.append_audit([entry])


def _label(spec: str | KeySpec | None, raw: bytes, ring: str) -> KeySpec:
    if spec is not None:
        wanted = spec if isinstance(spec, KeySpec) else parse_spec(spec)
        if wanted.symmetric and wanted.key_bits != len(raw) * 8:
            raise KeyUsageError(
                f"the key unwrapped by ring {ring} is {len(raw)} bytes, not a {wanted.name} key",
                ring=ring,
                operation="unwrap",
            )
        return wanted
    bits = len(raw) * 8
    try:
        return parse_spec(f"aes-{bits}")
    except UnknownSpecError:
        raise DecryptionError(
            f"the key unwrapped by ring {ring} is {len(raw)} bytes; name its spec with spec=",
            ring=ring,
        ) from None
