"""Fuzzing the store's decoders (issue 10, "fuzzing that keeps it fixed").

Ring documents and audit rows come from a store someone else may write to. Property: a
mutated valid document decodes to a valid value or raises CorruptRecordError; ``decode_ring``
and ``decode_audit`` never raise; whatever decodes can be planned, listed and chain-checked
without another exception. Ring names are checked by one rule.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keylife.audit import AuditRecord, decode_audit, verify_chain
from keylife.errors import CorruptRecordError, LifecycleError
from keylife.lifecycle import decode_ring, ring_from_dict, ring_to_dict
from keylife.names import check_ring_name, is_ring_name
from keylife.policy import default_policy
from keylife.rotation import run as rotate_run
from keylife.rotation.plan import plan_ring

from .files_support import mutate

FUZZ = settings(
    max_examples=150,
    deadline=dt.timedelta(milliseconds=500),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Ring documents and audit records of a store that went through every kind of change."""
    import keylife

    root = tmp_path_factory.mktemp("fuzz-store")
    with keylife.init(str(root / "k.db"), master_key_file=root / "m.key", actor="ops") as m:
        m.create_ring("sig", "ec-p256", "signing")
        m.rotate("sig")
        m.suspend("sig", 2, reason="hold")
        m.create_ring("data", "aes-256", "data-encryption")
        m.compromise("data", occurred_at=m.now() - dt.timedelta(days=1), message="leak")
        m.create_ring("mac", "hmac-sha256:128", "authentication")
        m.deactivate("mac", 1)
        m.destroy("mac", 1)  # scheduled; the planner carries it out a destroy_wait later
        rotate_run(m, now=m.now() + m.policy.destroy_wait, rings=["mac"])
        rings = [ring_to_dict(r) for r in m.rings()]
        audit = [r.to_dict() for r in m.audit_records()]
    return {"rings": rings, "audit": audit}


@FUZZ
@given(data=st.data())
def test_mutated_ring_documents(samples: dict[str, Any], data: Any) -> None:
    original = data.draw(st.sampled_from(samples["rings"]))
    doc = mutate(original, data)
    try:
        ring = ring_from_dict(doc, 1)
    except CorruptRecordError as exc:
        assert "\n" not in str(exc) or "\\n" in repr(exc)
        ring = None
    damaged = decode_ring(json.dumps(doc), 1, original["name"])  # never raises
    assert damaged.name == original["name"]
    for r in (ring, damaged):
        if r is not None:
            plan_ring(r, default_policy(), NOW)
            r.primary(NOW)
            json.dumps(ring_to_dict(r))


@FUZZ
@given(text=st.binary(max_size=200) | st.text(max_size=200))
def test_random_ring_rows(text: bytes | str) -> None:
    ring = decode_ring(text, 1, "row")
    assert ring.name == "row"


@FUZZ
@given(data=st.data())
def test_mutated_audit_rows(samples: dict[str, Any], data: Any) -> None:
    records = samples["audit"]
    i = data.draw(st.integers(0, len(records) - 1))
    doc = mutate(records[i], data)
    with contextlib.suppress(CorruptRecordError):
        AuditRecord.from_dict(doc, i + 1)
    rows = [json.dumps(r) for r in records]
    rows[i] = data.draw(st.sampled_from([json.dumps(doc), json.dumps(doc)[:-1]]))
    decoded = [decode_audit(row, n) for n, row in enumerate(rows, start=1)]
    report = verify_chain(decoded)
    if decoded[i].damage or decoded[i] != AuditRecord.from_dict(records[i]):
        # Any change that reaches the record (extra keys do not) breaks the chain there.
        assert not report.ok and report.first_bad_seq is not None
    for r in decoded:
        json.dumps(r.to_dict())


@FUZZ
@given(name=st.text(max_size=140) | st.sampled_from(["a" * 128, "a" * 129, "../x", "x\n", "-x"]))
def test_ring_names(name: str) -> None:
    try:
        assert check_ring_name(name) == name
    except LifecycleError as exc:
        assert not is_ring_name(name) and "\n" not in str(exc)
        return
    assert name.isascii() and name.isprintable() and "/" not in name and len(name) <= 128


def test_the_samples_round_trip(samples: dict[str, Any]) -> None:
    for doc in samples["rings"]:
        assert ring_to_dict(ring_from_dict(doc, 1)) == doc
    assert verify_chain([AuditRecord.from_dict(r) for r in samples["audit"]]).ok


def test_a_file_path_is_never_a_ring_name(tmp_path: Path) -> None:
    assert not is_ring_name(str(tmp_path))
