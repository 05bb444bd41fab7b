"""Fuzz: what the audit code reads from outside (a checkpoint line anyone may have edited, a
Vault lookup-self answer) decodes to a valid value or raises CheckpointError, never another
exception."""

from __future__ import annotations

import base64
import datetime as dt
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from keylife.checkpoint import FORMAT, Checkpoint, parse_checkpoint
from keylife.errors import CheckpointError

KEY = Ed25519PrivateKey.generate()
PUBLIC = base64.b64encode(
    KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
).decode()


def signed(**changes: object) -> dict[str, object]:
    cp = Checkpoint(
        store="sqlite:///k.db",
        seq=3,
        head="a" * 64,
        at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC).isoformat(),
        ring="keylife-audit-checkpoint",
        version=1,
        public_key=PUBLIC,
    )
    doc = json.loads(cp.to_line())
    doc["signature"] = base64.b64encode(KEY.sign(cp.payload())).decode()
    doc.update(changes)
    return doc


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def attempt(text: str) -> None:
    try:
        cp = parse_checkpoint(text)
    except CheckpointError:
        return
    assert cp.format == FORMAT and len(cp.head) == 64


def test_a_good_line_parses() -> None:
    assert parse_checkpoint(json.dumps(signed())).seq == 3


@settings(max_examples=150, deadline=2000)
@given(st.text(max_size=300))
def test_any_text(text: str) -> None:
    attempt(text)


@settings(max_examples=150, deadline=2000)
@given(st.sampled_from(sorted(signed())), JSON)
def test_any_field_value(field: str, value: object) -> None:
    doc = signed(**{field: value})
    attempt(json.dumps(doc))


@settings(max_examples=150, deadline=2000)
@given(JSON)
def test_any_lookup_self_answer_gives_a_one_line_identity(body: object) -> None:
    from keylife.vault.identity import identity_from_lookup

    for answer in (body, {"data": body}):
        identity = identity_from_lookup(answer)
        assert identity.startswith("vault:") and identity.isprintable()
        assert len(identity) < 500 and len(identity.split()) <= 3
