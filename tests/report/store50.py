"""A store of 50 rings in every state, for the report tests and the docs screenshot.

Built through the real manager with a fixed clock: plain rings, rotated rings, pre-active,
suspended and destroyed versions, compromised keys (with a hostile revocation message), a
policy exception, rsa-2048 keys that fall below 128 bits in 2031, a certificate version and a
failed rotation run.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import keylife
from keylife.clock import FixedClock
from keylife.errors import KeylifeError
from keylife.lifecycle import Action
from keylife.manager import KeyManager

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
#: When the report is made: 200 days after the store's first ring.
NOW = T0 + dt.timedelta(days=200)
RINGS = 50
HOSTILE = "<script>alert(1)</script> | <img src=http://evil.example/x.png>"


def self_signed(
    domain: str, not_before: dt.datetime, days: int
) -> tuple[str, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, domain)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Test CA <1>")]))
        .public_key(key.public_key())
        .serial_number(0x1234ABCD)
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key


def build(db: Path, key_file: Path) -> KeyManager:
    """Create the store; returns a manager whose clock stands at :data:`NOW`."""
    clock = FixedClock(T0)
    m = keylife.init(str(db), master_key_file=key_file, clock=clock, actor="ops@example.com")
    day = dt.timedelta(days=1)
    made = 0

    def ring(name: str, *args: object, **kw: object) -> None:
        nonlocal made
        m.create_ring(name, *args, **kw)  # type: ignore[arg-type]
        made += 1

    for i in range(12):
        ring(f"orders-{i:02d}", "aes-256", "data-encryption")
        clock.advance(day)
    for i in range(6):
        ring(f"payments-{i:02d}", "ec-p256", "signing")
        m.rotate(f"payments-{i:02d}", reason="scheduled rotation")
    for i in range(4):
        ring(f"staged-{i}", "aes-256", "data-encryption", activate_at=NOW + (10 + 20 * i) * day)
    for i in range(4):
        ring(f"held-{i}", "aes-128", "key-wrapping")
        m.suspend(f"held-{i}", 1, reason="under investigation")
    for i in range(4):
        ring(f"retired-{i}", "hmac-sha256", "authentication")
        m.rotate(f"retired-{i}")
        m.destroy(f"retired-{i}", 1, reason="no data left")
    for i in range(3):
        ring(f"leaked-{i}", "aes-256", "data-encryption")
        m.compromise(f"leaked-{i}", message=f"found in a public paste {HOSTILE}")
    for i in range(3):
        ring(f"legacy-rsa-{i}", "rsa-2048", "signing")
    ring(
        "contract-archive",
        "aes-256",
        "data-encryption",
        deactivate_at=T0 + 900 * day,
        exceed_policy=f"customer contract needs 30 months {HOSTILE}",
    )
    pem, _key = self_signed("www.example.com", T0 + 150 * day, 90)
    m.create_ring(
        "web-tls",
        "ec-p256",
        "tls-server",
        activate_at=T0 + 150 * day,
        deactivate_at=T0 + 240 * day,
        version_attributes={
            "certificate_pem": pem,
            "domains": "www.example.com api.example.com",
            "serial": "1234abcd",
            "acme_directory": "https://acme.test/directory",
        },
        exceed_policy="imported certificate",
    )
    made += 1
    while made < RINGS:
        ring(f"misc-{made:02d}", "x25519", "key-agreement")
    clock.advance(NOW - clock.now())
    for i in range(4):  # their scheduled destructions are due: carried out as `keylife rotate` does
        m.transition(f"retired-{i}", 1, Action.DESTROY, reason="no data left", if_needed=True)
    # a failed rotation run, as the runner records one
    m.record_failure("rotate", "orders-03", None, KeylifeError("store unavailable <b>x</b>"))
    return m
