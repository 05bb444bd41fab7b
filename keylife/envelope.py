"""keylife's wire formats, as pure functions over bytes (docs/formats.md describes them byte by
byte, with test vectors).

Every blob starts with a format byte and the ring's version number (4 bytes, big-endian), so
a reader knows which version made it; the ring's name is never in the blob but always in the
associated data (or key derivation), so a blob of ring A never opens under ring B.

========  ==================  =============================================================
byte      format              rest
========  ==================  =============================================================
``0x01``  message             nonce (12) · AEAD ciphertext and tag (16)
``0x02``  stream              segment size (4) · salt (16) · nonce prefix (7) · segments
``0x03``  wrapped key (AEAD)  nonce (12) · AES-GCM ciphertext and tag (16)
``0x04``  wrapped key (RSA)   RSA-OAEP (SHA-256) ciphertext
``0x05``  signature           signature (ECDSA DER, Ed25519/Ed448 raw, RSA-PSS)
``0x06``  MAC                 HMAC tag
========  ==================  =============================================================

Nothing here touches a key or a random source: the crypto primitives layer does, and passes
the results through these functions. Parsing refuses with :class:`DecryptionError` or
:class:`InvalidSignatureError` and says nothing more.
"""

from __future__ import annotations

import struct

from .errors import DecryptionError, InvalidSignatureError

__all__ = [
    "MAC",
    "MESSAGE",
    "NONCE_SIZE",
    "SIGNATURE",
    "STREAM",
    "STREAM_HEADER_SIZE",
    "TAG_SIZE",
    "WRAP_AEAD",
    "WRAP_RSA",
    "associated_data",
    "header",
    "parse",
    "parse_stream_header",
    "stream_header",
    "stream_info",
    "stream_nonce",
]

MESSAGE = 0x01
STREAM = 0x02
WRAP_AEAD = 0x03
WRAP_RSA = 0x04
SIGNATURE = 0x05
MAC = 0x06

#: The label bound into the associated data (or key derivation) of each format.
LABELS: dict[int, bytes] = {
    MESSAGE: b"keylife/message/v1",
    STREAM: b"keylife/stream/v1",
    WRAP_AEAD: b"keylife/wrap/v1",
    WRAP_RSA: b"keylife/wrap-rsa/v1",
}

NONCE_SIZE = 12
TAG_SIZE = 16
HEADER_SIZE = 5
MAX_VERSION = 0xFFFFFFFF

_HEADER = struct.Struct(">BI")
# format (1) · version (4) · segment size (4) · salt (16) · nonce prefix (7)
_STREAM = struct.Struct(">BII16s7s")
STREAM_HEADER_SIZE = _STREAM.size
STREAM_SALT_SIZE = 16
STREAM_PREFIX_SIZE = 7
#: Segment sizes a reader accepts (plaintext bytes per segment; the writer uses 64 KiB).
MIN_SEGMENT = 4096
MAX_SEGMENT = 1 << 24
#: The segment counter is 4 bytes: at most 2**32 segments in one stream.
MAX_SEGMENTS = 1 << 32


def header(fmt: int, version: int) -> bytes:
    """The 5 bytes every blob starts with: format byte, version number (big-endian)."""
    if not 0 < version <= MAX_VERSION:
        raise ValueError(f"version {version} does not fit the 4-byte version field")
    return _HEADER.pack(fmt, version)


def associated_data(fmt: int, ring: str, version: int, extra: bytes = b"") -> bytes:
    """What the AEAD authenticates besides the ciphertext: the format's label, a zero byte,
    the ring name's length (2 bytes) and UTF-8 name, the blob's 5-byte header, then the
    caller's associated data (last, so its length needs no prefix)."""
    name = ring.encode()
    return b"".join(
        (LABELS[fmt], b"\x00", len(name).to_bytes(2, "big"), name, header(fmt, version), extra)
    )


def parse(blob: bytes, fmt: int, min_body: int, *, ring: str) -> tuple[int, memoryview]:
    """The version number and the rest of ``blob``, if it is a ``fmt`` blob at least
    ``min_body`` bytes after its header; otherwise the format's opaque error."""
    if len(blob) < HEADER_SIZE + min_body or blob[0] != fmt:
        raise refusal(fmt, ring)
    version = int.from_bytes(blob[1:HEADER_SIZE], "big")
    if version == 0:
        raise refusal(fmt, ring)
    return version, memoryview(blob)[HEADER_SIZE:]


def refusal(fmt: int, ring: str) -> DecryptionError | InvalidSignatureError:
    """The one error each format raises for anything wrong with a blob."""
    if fmt == SIGNATURE:
        return InvalidSignatureError(f"signature is not valid for ring {ring}", ring=ring)
    if fmt == MAC:
        return InvalidSignatureError(f"MAC tag is not valid for ring {ring}", ring=ring)
    what = {
        MESSAGE: "ciphertext",
        STREAM: "encrypted stream",
        WRAP_AEAD: "wrapped key",
        WRAP_RSA: "wrapped key",
    }[fmt]
    return DecryptionError(
        f"{what} does not decrypt under ring {ring} (malformed, altered, truncated, or made "
        "by another ring or key)",
        ring=ring,
    )


# ---- streams ---------------------------------------------------------------------------------


def stream_header(version: int, segment: int, salt: bytes, prefix: bytes) -> bytes:
    """The 32-byte header of an encrypted stream."""
    if len(salt) != STREAM_SALT_SIZE or len(prefix) != STREAM_PREFIX_SIZE:
        raise ValueError("stream salt is 16 bytes and nonce prefix 7 bytes")
    if not MIN_SEGMENT <= segment <= MAX_SEGMENT:
        raise ValueError(f"segment size must be between {MIN_SEGMENT} and {MAX_SEGMENT}")
    header(STREAM, version)  # checks the version range
    return _STREAM.pack(STREAM, version, segment, salt, prefix)


def parse_stream_header(data: bytes, *, ring: str) -> tuple[int, int, bytes, bytes]:
    """(version, segment size, salt, nonce prefix) of a stream header, or DecryptionError."""
    if len(data) != STREAM_HEADER_SIZE:
        raise refusal(STREAM, ring)
    fmt, version, segment, salt, prefix = _STREAM.unpack(data)
    if fmt != STREAM or version == 0 or not MIN_SEGMENT <= segment <= MAX_SEGMENT:
        raise refusal(STREAM, ring)
    return version, segment, salt, prefix


def stream_info(ring: str, stream_head: bytes, extra: bytes = b"") -> bytes:
    """The HKDF ``info`` of a stream's segment key: label, zero byte, ring name length (2)
    and name, the whole 32-byte header, then the caller's associated data."""
    name = ring.encode()
    return b"".join(
        (LABELS[STREAM], b"\x00", len(name).to_bytes(2, "big"), name, stream_head, extra)
    )


def stream_nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    """STREAM nonce of segment ``counter``: prefix (7) · counter (4, big-endian) · last flag."""
    if not 0 <= counter < MAX_SEGMENTS:
        raise ValueError("a stream holds at most 2**32 segments")
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")
