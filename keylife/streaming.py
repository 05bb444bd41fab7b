"""Segmented AEAD for large files (format ``0x02`` of :mod:`keylife.envelope`), in constant
memory.

The construction is the STREAM online AEAD of Hoang, Reyhanitabar, Rogaway and Vizár (as in
Tink's AES-GCM-HKDF streaming AEAD): a random 16-byte salt gives each stream its own segment
key, ``HKDF-SHA256(version key, salt, info = label · ring · header · associated data)``, so the
ring name, the header and the caller's associated data are bound without repeating them per
segment. Segment ``i`` is sealed with the nonce ``prefix (7) · i (4, big-endian) · last (1)``:
a reordered segment fails (wrong counter), a truncated stream fails (its new last segment was
sealed with last = 0), and data appended after the real last segment fails (that segment was
sealed with last = 1 and is no longer last).

Plaintext is written as each segment authenticates; when decryption fails part of the output
may already be written and must be discarded (the CLI writes to a temporary file and renames
only on success).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from . import envelope, primitives
from .material import KeyMaterial

__all__ = ["SEGMENT_SIZE", "decrypt_stream", "encrypt_stream", "segment_key"]

#: Plaintext bytes per segment written by :func:`encrypt_stream`.
SEGMENT_SIZE = 64 * 1024


def segment_key(material: KeyMaterial, salt: bytes, info: bytes) -> primitives.AEAD:
    """The AEAD of one stream: HKDF-SHA256 of the version key, as long as that key."""
    raw = material.reveal()
    derived = HKDF(hashes.SHA256(), len(raw), salt, info).derive(raw)
    return primitives.aead(KeyMaterial(derived, material.spec))


def _read_exact(src: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes, fewer only at the end of ``src`` (pipes return short reads)."""
    data = src.read(size)
    if not data or len(data) == size:
        return data or b""
    parts = [data]
    have = len(data)
    while have < size:
        more = src.read(size - have)
        if not more:
            break
        parts.append(more)
        have += len(more)
    return b"".join(parts)


def encrypt_stream(
    material: KeyMaterial,
    ring: str,
    version: int,
    src: BinaryIO,
    dst: BinaryIO,
    associated_data: bytes = b"",
    *,
    segment: int | None = None,
    salt: bytes | None = None,
    prefix: bytes | None = None,
) -> int:
    """Encrypt ``src`` to ``dst`` under ``material``; the number of bytes written.
    ``segment``, ``salt`` and ``prefix`` are for the test vectors only."""
    segment = SEGMENT_SIZE if segment is None else segment
    salt = primitives.random_bytes(envelope.STREAM_SALT_SIZE) if salt is None else salt
    prefix = primitives.random_bytes(envelope.STREAM_PREFIX_SIZE) if prefix is None else prefix
    head = envelope.stream_header(version, segment, salt, prefix)
    cipher = segment_key(material, salt, envelope.stream_info(ring, head, associated_data))
    dst.write(head)
    written = len(head)
    counter = 0
    current = _read_exact(src, segment)
    while True:
        following = _read_exact(src, segment) if len(current) == segment else b""
        last = not following
        nonce = envelope.stream_nonce(prefix, counter, last)
        sealed = cipher.encrypt(nonce, current, None)
        dst.write(sealed)
        written += len(sealed)
        if last:
            return written
        current = following
        counter += 1


def decrypt_stream(
    key_for: Callable[[int], KeyMaterial],
    ring: str,
    src: BinaryIO,
    dst: BinaryIO,
    associated_data: bytes = b"",
) -> int:
    """Decrypt an encrypted stream from ``src`` to ``dst``; the plaintext length.

    ``key_for(version)`` returns the material of the version the header names, after checking
    that it may process now (it raises otherwise). Any defect of the stream raises the opaque
    :class:`~keylife.errors.DecryptionError`.
    """
    head = _read_exact(src, envelope.STREAM_HEADER_SIZE)
    version, segment, salt, prefix = envelope.parse_stream_header(head, ring=ring)
    cipher = segment_key(key_for(version), salt, envelope.stream_info(ring, head, associated_data))
    size = segment + envelope.TAG_SIZE
    counter = total = 0
    current = _read_exact(src, size)
    while True:
        if len(current) < envelope.TAG_SIZE:
            raise envelope.refusal(envelope.STREAM, ring)
        following = _read_exact(src, size) if len(current) == size else b""
        last = not following
        if counter >= envelope.MAX_SEGMENTS:
            raise envelope.refusal(envelope.STREAM, ring)
        try:
            plain = cipher.decrypt(envelope.stream_nonce(prefix, counter, last), current, None)
        except InvalidTag:
            raise envelope.refusal(envelope.STREAM, ring) from None
        dst.write(plain)
        total += len(plain)
        if last:
            return total
        current = following
        counter += 1
