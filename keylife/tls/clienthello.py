"""Hand-built ClientHello messages and a parser for what a server answers.

This speaks just enough of the TLS record and handshake layers to learn what a server accepts,
without any cryptography: the local OpenSSL cannot offer SSL 3.0, 3DES, RC4, EXPORT or NULL
suites, but a byte string can. For SSL 3.0 to TLS 1.2 the server's first flight (ServerHello,
Certificate, ServerKeyExchange, ServerHelloDone) is in the clear. For TLS 1.3 the ClientHello
carries an empty key_share, so a TLS 1.3 server answers with a HelloRetryRequest naming the
suite and group it chose: support is learned without a key exchange.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from keylife.errors import FlightLimitError, HelloParseError

__all__ = [
    "HRR_RANDOM",
    "MAX_CERTIFICATES",
    "MAX_FLIGHT_BYTES",
    "MAX_RECORD_PAYLOAD",
    "Alert",
    "ClientHelloSpec",
    "HelloParseError",
    "ServerFlight",
    "ServerFlightParser",
    "TlsVersion",
    "build_client_hello",
    "parse_client_hello",
]


class TlsVersion(IntEnum):
    SSL3 = 0x0300
    TLS1_0 = 0x0301
    TLS1_1 = 0x0302
    TLS1_2 = 0x0303
    TLS1_3 = 0x0304

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def from_label(cls, label: str) -> TlsVersion:
        key = label.replace(" ", "").replace("v", "").replace("_", ".").upper()
        for version, name in _LABELS.items():
            if name.replace(" ", "").upper() == key:
                return version
        raise ValueError(f"unknown protocol version {label!r}")


_LABELS = {
    TlsVersion.SSL3: "SSL 3.0",
    TlsVersion.TLS1_0: "TLS 1.0",
    TlsVersion.TLS1_1: "TLS 1.1",
    TlsVersion.TLS1_2: "TLS 1.2",
    TlsVersion.TLS1_3: "TLS 1.3",
}

HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")

# Handshake and record constants (RFC 5246, RFC 8446).
REC_CHANGE_CIPHER_SPEC = 20
REC_ALERT = 21
REC_HANDSHAKE = 22
REC_APPLICATION = 23
HS_CLIENT_HELLO = 1
HS_SERVER_HELLO = 2
HS_CERTIFICATE = 11
HS_SERVER_KEY_EXCHANGE = 12
HS_CERTIFICATE_REQUEST = 13
HS_SERVER_HELLO_DONE = 14

EXT_SERVER_NAME = 0x0000
EXT_SUPPORTED_GROUPS = 0x000A
EXT_EC_POINT_FORMATS = 0x000B
EXT_SIGNATURE_ALGORITHMS = 0x000D
EXT_ENCRYPT_THEN_MAC = 0x0016
EXT_EXTENDED_MASTER_SECRET = 0x0017
EXT_SUPPORTED_VERSIONS = 0x002B
EXT_PSK_MODES = 0x002D
EXT_KEY_SHARE = 0x0033
EXT_RENEGOTIATION_INFO = 0xFF01

SCSV_RENEGOTIATION = 0x00FF

# rsa_pkcs1 and ecdsa with SHA-2 and SHA-1, rsa_pss, ed25519/ed448, dsa: everything a server of
# any age may need to pick its certificate.
SIGNATURE_ALGORITHMS = (
    0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0809, 0x080A, 0x080B,
    0x0401, 0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0203, 0x0201, 0x0202, 0x0402, 0x0502,
    0x0602,
)  # fmt: skip


# Caps on what one connection may make the prober hold (see docs/tls.md, "Hostile peers").
MAX_RECORD_PAYLOAD = 2**14 + 2048
"""Largest TLS record payload accepted (RFC 5246 TLSCiphertext limit)."""
MAX_FLIGHT_BYTES = 128 * 1024
"""Bytes read from one connection for the server's first flight (OpenSSL allows 100 KiB of
certificate list); a peer sending more is an error, whatever it sends."""
MAX_CERTIFICATES = 16
"""Certificates accepted in one Certificate message; real chains hold 2 to 5."""


@dataclass(frozen=True)
class Alert:
    level: int
    description: int


@dataclass(frozen=True)
class ClientHelloSpec:
    """What one probe offers."""

    version: TlsVersion
    suites: Sequence[int]
    groups: Sequence[int] = ()
    server_name: str | None = None


def _u8(n: int) -> bytes:
    return struct.pack("!B", n)


def _u16(n: int) -> bytes:
    return struct.pack("!H", n)


def _u24(n: int) -> bytes:
    return struct.pack("!I", n)[1:]


def _ext(ext_type: int, body: bytes) -> bytes:
    return _u16(ext_type) + _u16(len(body)) + body


def _vec16(items: Sequence[int]) -> bytes:
    body = b"".join(_u16(i) for i in items)
    return _u16(len(body)) + body


def build_client_hello(spec: ClientHelloSpec) -> bytes:
    """One TLS record holding a ClientHello as ``spec`` describes."""
    tls13 = spec.version == TlsVersion.TLS1_3
    legacy_version = TlsVersion.TLS1_2 if tls13 else spec.version
    suites = list(spec.suites)
    if not tls13:
        suites.append(SCSV_RENEGOTIATION)
    body = _u16(legacy_version) + os.urandom(32)
    session_id = os.urandom(32) if tls13 else b""
    body += _u8(len(session_id)) + session_id
    body += _vec16(suites)
    body += b"\x01\x00"  # compression methods: null only
    if spec.version != TlsVersion.SSL3:
        body += _extensions(spec)
    hello = _u8(HS_CLIENT_HELLO) + _u24(len(body)) + body
    record_version = TlsVersion.SSL3 if spec.version == TlsVersion.SSL3 else TlsVersion.TLS1_0
    return _u8(REC_HANDSHAKE) + _u16(record_version) + _u16(len(hello)) + hello


def _extensions(spec: ClientHelloSpec) -> bytes:
    exts = b""
    if spec.server_name:
        name = spec.server_name.encode("idna")
        entry = b"\x00" + _u16(len(name)) + name
        exts += _ext(EXT_SERVER_NAME, _u16(len(entry)) + entry)
    if spec.groups:
        exts += _ext(EXT_SUPPORTED_GROUPS, _vec16(spec.groups))
    exts += _ext(EXT_EC_POINT_FORMATS, b"\x01\x00")
    if spec.version >= TlsVersion.TLS1_2:
        exts += _ext(EXT_SIGNATURE_ALGORITHMS, _vec16(SIGNATURE_ALGORITHMS))
    if spec.version == TlsVersion.TLS1_3:
        exts += _ext(EXT_SUPPORTED_VERSIONS, b"\x02" + _u16(TlsVersion.TLS1_3))
        exts += _ext(EXT_PSK_MODES, b"\x01\x01")
        exts += _ext(EXT_KEY_SHARE, _u16(0))  # empty: ask the server to pick a group
    else:
        exts += _ext(EXT_EXTENDED_MASTER_SECRET, b"")
        exts += _ext(EXT_ENCRYPT_THEN_MAC, b"")
    return _u16(len(exts)) + exts


@dataclass(frozen=True)
class ParsedClientHello:
    """What a ClientHello offers: used to read what a local OpenSSL context would send."""

    versions: tuple[int, ...]
    suites: tuple[int, ...]
    groups: tuple[int, ...]


def parse_client_hello(data: bytes) -> ParsedClientHello:
    """Read offered versions, suites and groups from the first record(s) of a ClientHello."""
    parser = ServerFlightParser()
    msgs = parser.feed_raw_handshake(data)
    for msg_type, body in msgs:
        if msg_type != HS_CLIENT_HELLO:
            continue
        r = _Reader(body)
        legacy = r.u16()
        r.take(32)
        r.take(r.u8())
        suites = _u16_list(r.take(r.u16()))
        r.take(r.u8())
        versions: tuple[int, ...] = (legacy,)
        groups: tuple[int, ...] = ()
        for ext_type, ext in _read_extensions(r):
            if ext_type == EXT_SUPPORTED_VERSIONS:
                er = _Reader(ext)
                versions = _u16_list(er.take(er.u8()))
            elif ext_type == EXT_SUPPORTED_GROUPS:
                er = _Reader(ext)
                groups = _u16_list(er.take(er.u16()))
        if len(versions) == 1 and versions[0] <= TlsVersion.TLS1_2:
            versions = tuple(v for v in TlsVersion if v <= versions[0])
        return ParsedClientHello(versions=versions, suites=suites, groups=groups)
    raise HelloParseError("no ClientHello in data")


def _u16_list(raw: bytes) -> tuple[int, ...]:
    if len(raw) % 2:
        raise HelloParseError("a list of 16-bit values has an odd length")
    return tuple(struct.unpack(f"!{len(raw) // 2}H", raw))


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise HelloParseError("message truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        v: int = struct.unpack("!H", self.take(2))[0]
        return v

    def u24(self) -> int:
        v: int = struct.unpack("!I", b"\x00" + self.take(3))[0]
        return v

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


def _read_extensions(r: _Reader) -> list[tuple[int, bytes]]:
    if r.left == 0:
        return []
    exts = _Reader(r.take(r.u16()))
    out = []
    while exts.left:
        ext_type = exts.u16()
        out.append((ext_type, exts.take(exts.u16())))
    return out


@dataclass
class ServerFlight:
    """What the server said in answer to one ClientHello."""

    version: int | None = None  # negotiated version, None if no ServerHello
    suite: int | None = None
    hello_retry: bool = False
    group: int | None = None  # TLS 1.3: from key_share; TLS 1.2: from ServerKeyExchange
    dh_bits: int | None = None  # finite-field DH modulus size from ServerKeyExchange
    certificates: list[bytes] = field(default_factory=list)
    alert: Alert | None = None
    done: bool = False  # nothing more is needed from this connection


_ONCE = {
    HS_SERVER_HELLO: "ServerHello",
    HS_CERTIFICATE: "Certificate",
    HS_SERVER_KEY_EXCHANGE: "ServerKeyExchange",
}


class ServerFlightParser:
    """Incremental parser for a server's first flight; feed bytes as they arrive.

    Holds at most ``max_bytes`` of the peer's data and ``max_certificates`` certificates: a
    peer that sends more, or repeats a message that comes once per flight, raises
    :class:`~keylife.errors.FlightLimitError` or :class:`~keylife.errors.HelloParseError`.
    """

    def __init__(
        self,
        offered_version: TlsVersion | None = None,
        *,
        max_bytes: int = MAX_FLIGHT_BYTES,
        max_certificates: int = MAX_CERTIFICATES,
    ) -> None:
        self._records = bytearray()
        self._handshake = bytearray()
        self._seen: set[int] = set()
        self.offered = offered_version
        self.max_bytes = max_bytes
        self.max_certificates = max_certificates
        self.received = 0
        self.flight = ServerFlight()

    @property
    def room(self) -> int:
        """How many more bytes the parser accepts (callers size their reads with it)."""
        return max(0, self.max_bytes - self.received)

    def feed(self, data: bytes) -> ServerFlight:
        """Consume ``data``; raises HelloParseError when the bytes are not TLS."""
        self._count(len(data))
        self._records += data
        while not self.flight.done:
            record = self._next_record()
            if record is None:
                break
            rec_type, payload = record
            if rec_type == REC_ALERT:
                if len(payload) >= 2:
                    self.flight.alert = Alert(payload[0], payload[1])
                self.flight.done = True
            elif rec_type == REC_HANDSHAKE:
                self._handshake += payload
                self._consume_handshake()
            elif rec_type in (REC_CHANGE_CIPHER_SPEC, REC_APPLICATION):
                # encrypted TLS 1.3 traffic after a real ServerHello: nothing more to read
                self.flight.done = self.flight.version is not None
                if not self.flight.done:
                    raise HelloParseError("unexpected record before ServerHello")
            else:
                raise HelloParseError(f"not a TLS record (content type {rec_type})")
        return self.flight

    def _count(self, n: int) -> None:
        self.received += n
        if self.received > self.max_bytes:
            raise FlightLimitError(
                f"the server's handshake flight exceeds {self.max_bytes} bytes (MAX_FLIGHT_BYTES)",
                limit=self.max_bytes,
                unit="bytes",
            )

    def feed_raw_handshake(self, data: bytes) -> list[tuple[int, bytes]]:
        """Split records of handshake data into (type, body) messages (for ClientHellos)."""
        self._count(len(data))
        self._records = bytearray(data)
        msgs: list[tuple[int, bytes]] = []
        while (record := self._next_record()) is not None:
            if record[0] == REC_HANDSHAKE:
                self._handshake += record[1]
        while len(self._handshake) >= 4:
            length = int.from_bytes(self._handshake[1:4], "big")
            if len(self._handshake) < 4 + length:
                break
            msgs.append((self._handshake[0], bytes(self._handshake[4 : 4 + length])))
            del self._handshake[: 4 + length]
        return msgs

    def _next_record(self) -> tuple[int, bytes] | None:
        buf = self._records
        if len(buf) >= 1 and buf[0] not in (20, 21, 22, 23):
            raise HelloParseError(f"not a TLS record (first byte 0x{buf[0]:02x})")
        if len(buf) >= 2 and buf[1] != 3:
            raise HelloParseError(f"not a TLS record (version major {buf[1]})")
        if len(buf) < 5:
            return None
        length = int.from_bytes(buf[3:5], "big")
        if length > MAX_RECORD_PAYLOAD:
            raise HelloParseError(f"record length {length} exceeds the TLS limit")
        if len(buf) < 5 + length:
            return None
        record = buf[0], bytes(buf[5 : 5 + length])
        del buf[: 5 + length]
        return record

    def _consume_handshake(self) -> None:
        while len(self._handshake) >= 4 and not self.flight.done:
            msg_type = self._handshake[0]
            length = int.from_bytes(self._handshake[1:4], "big")
            if length > self.max_bytes:
                raise FlightLimitError(
                    f"a handshake message of {length} bytes exceeds the flight cap of "
                    f"{self.max_bytes} bytes (MAX_FLIGHT_BYTES)",
                    limit=self.max_bytes,
                    unit="bytes",
                )
            if len(self._handshake) < 4 + length:
                return
            body = bytes(self._handshake[4 : 4 + length])
            del self._handshake[: 4 + length]
            self._on_message(msg_type, body)

    def _on_message(self, msg_type: int, body: bytes) -> None:
        flight = self.flight
        if flight.version is None and msg_type != HS_SERVER_HELLO:
            raise HelloParseError(f"expected ServerHello, got handshake type {msg_type}")
        if msg_type in _ONCE:
            if msg_type in self._seen:
                raise HelloParseError(f"the server sent a second {_ONCE[msg_type]} message")
            self._seen.add(msg_type)
        if msg_type == HS_SERVER_HELLO:
            self._server_hello(body)
        elif msg_type == HS_CERTIFICATE:
            self._certificate(body)
        elif msg_type == HS_SERVER_KEY_EXCHANGE:
            self._server_key_exchange(body)
        elif msg_type == HS_SERVER_HELLO_DONE:
            flight.done = True

    def _certificate(self, body: bytes) -> None:
        r = _Reader(body)
        certs = _Reader(r.take(r.u24()))
        while certs.left:
            if len(self.flight.certificates) >= self.max_certificates:
                raise FlightLimitError(
                    f"the server sent more than {self.max_certificates} certificates "
                    "(MAX_CERTIFICATES)",
                    limit=self.max_certificates,
                    unit="certificates",
                )
            self.flight.certificates.append(certs.take(certs.u24()))

    def _server_hello(self, body: bytes) -> None:
        flight = self.flight
        r = _Reader(body)
        version = r.u16()
        random = r.take(32)
        r.take(r.u8())
        flight.suite = r.u16()
        r.u8()  # compression
        for ext_type, ext in _read_extensions(r):
            if ext_type == EXT_SUPPORTED_VERSIONS and len(ext) == 2:
                version = int.from_bytes(ext, "big")
            elif ext_type == EXT_KEY_SHARE and len(ext) >= 2:
                flight.group = int.from_bytes(ext[:2], "big")
        flight.version = version
        if version == TlsVersion.TLS1_3:
            flight.hello_retry = random == HRR_RANDOM
            flight.done = True  # the rest is encrypted (or a retry we will not answer)

    def _server_key_exchange(self, body: bytes) -> None:
        from keylife.tls.ciphersuites import suite_by_code

        suite = suite_by_code(self.flight.suite or 0)
        if suite is None:
            return
        r = _Reader(body)
        if suite.key_exchange in ("ECDHE", "ECDH"):
            if r.u8() == 3:  # named_curve
                self.flight.group = r.u16()
        elif suite.key_exchange in ("DHE", "DH", "DHE_PSK"):
            if suite.key_exchange == "DHE_PSK":
                r.take(r.u16())  # psk identity hint
            p = r.take(r.u16())
            self.flight.dh_bits = int.from_bytes(p, "big").bit_length()
