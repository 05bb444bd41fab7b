"""Limited use of a compromised key: remove protection it applied (decrypt, verify), never
apply new protection, and leave an audit record each time (NIST SP 800-57 Part 1 §5.3.5).

:func:`recover` is the only door to a compromised version's material. It needs a reason,
writes an audit record (``recover``) before returning, and gives a :class:`Recovered` whose
operations only process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import envelope, primitives
from .errors import LifecycleError, NotFoundError
from .lifecycle import State
from .loaded import LoadedKey
from .writer import RingWriter

__all__ = ["Recovered", "recover"]


@dataclass(frozen=True)
class Recovered:
    """A compromised version, loaded for processing only."""

    ring: str
    key: LoadedKey = field(repr=False)

    @property
    def number(self) -> int:
        return self.key.number

    def decrypt(self, ciphertext: bytes, associated_data: bytes = b"") -> bytes:
        """The plaintext of a ``ring.encrypt`` result made with this version."""
        version, body = envelope.parse(
            ciphertext,
            envelope.MESSAGE,
            envelope.NONCE_SIZE + envelope.TAG_SIZE,
            ring=self.ring,
        )
        if version != self.number:
            raise envelope.refusal(envelope.MESSAGE, self.ring)
        cipher = primitives.aead(self.key.material)
        return primitives.open_sealed(
            cipher, envelope.MESSAGE, self.ring, version, body, associated_data
        )


def recover(writer: RingWriter, ring: str, number: int, *, reason: str) -> Recovered:
    """Load compromised ``ring`` v``number`` for processing only, audited with ``reason``."""
    if not reason.strip():
        raise LifecycleError("recovering a compromised key needs a reason (it is audited)")
    version = writer.load(ring).get(number)
    if version is None:
        raise NotFoundError(f"ring {ring} has no version {number}")
    if version.state is not State.COMPROMISED:
        raise LifecycleError(
            f"{ring} v{number} is {version.state.value}; recover is for compromised versions "
            "(use ring.version(n) for the others)"
        )
    writer.store.append_audit([writer.entry("recover", ring, number, reason.strip())])
    return Recovered(ring, LoadedKey(version, RingWriter.material(writer, version), protects=False))
