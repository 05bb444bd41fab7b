"""Issue 13 item 5, the sections the first report lacked: last rotation runs (from the audit
log's per-run records), recoveries and overrides with who and when, the certificates' trusted
root and last renewal, ACME account rollovers among the upcoming events, --as-of exceptions,
and ``--tls`` endpoint verdicts; both renderers walk one list of sections."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import jsonschema
from click.testing import CliRunner
from keylife_cli.main import cli

import keylife
from keylife.audit import ChainReport
from keylife.auditstate import policy_digest
from keylife.certificates import ACME_ACCOUNT
from keylife.clock import FixedClock
from keylife.policy import default_policy
from keylife.recover import recover
from keylife.report import (
    AuditState,
    Report,
    build_report,
    collect_report,
    json_schema,
    render_html,
    render_markdown,
    report_to_dict,
)
from keylife.report.layout import sections
from keylife.rotation import run
from tests.rings import fresh_ring
from tests.tls.conftest import pki, start_peer  # noqa: F401 - the fixtures, used by name
from tests.tls.pki import Pki

DAY = dt.timedelta(days=1)
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def open_store(tmp_path: Path, clock: FixedClock) -> keylife.KeyManager:
    db, key = tmp_path / "k.db", tmp_path / "mk"
    if db.exists():
        return keylife.open(str(db), master_key_file=key, clock=clock, actor="cron@example")
    return keylife.init(str(db), master_key_file=key, clock=clock, actor="cron@example")


def test_last_runs_show_time_identity_policy_digest_counts_and_failed_rings(
    tmp_path: Path,
) -> None:
    clock = FixedClock(T0)
    with open_store(tmp_path, clock) as m:
        for name in ("a", "b", "broken"):
            m.create_ring(name, "aes-256", "data-encryption", deactivate_at=T0 + 20 * DAY)
    with closing(sqlite3.connect(tmp_path / "k.db")) as con, con:  # unreadable material
        (blob,) = con.execute("SELECT blob FROM material WHERE ring='broken'").fetchone()
        con.execute("UPDATE material SET blob=? WHERE ring='broken'", (blob[:-1] + b"\0",))
    clock.advance(10 * DAY)
    with open_store(tmp_path, clock) as m:
        first = run(m)
        clock.advance(DAY)
        second = run(m)
        report = collect_report(m)
        digest = policy_digest(m.policy)
    assert first.failed == ["broken"] and second.failed == ["broken"]
    newest, oldest = report.runs
    assert (oldest.succeeded, oldest.failed, oldest.skipped) == (2, 1, 0)
    assert (newest.succeeded, newest.failed) == (0, 1)  # a and b were done the first time
    assert newest.policy_sha256 == digest and newest.policy_source == "<built-in>"
    assert newest.failed_rings == ("broken",) and not newest.ok
    assert newest.actor == "cron@example" and newest.identity  # the OS user
    assert newest.at.startswith((T0 + 11 * DAY).date().isoformat())
    document = report_to_dict(report)
    jsonschema.validate(document, json_schema())
    assert document["runs"][0]["policy_sha256"] == digest
    assert document["summary"]["failed_runs"] == 2
    html, md = render_html(report), render_markdown(report)
    assert digest in html and digest in md and 'id="runs"' in html


def test_recoveries_and_overrides_name_who_and_when(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    with open_store(tmp_path, clock) as m:
        m.create_ring("leaked", "aes-256", "data-encryption")
        m.compromise("leaked", message="found in a paste")
        clock.advance(DAY)
        recover(m, "leaked", 1, reason="decrypt the March archive to re-encrypt it")
        m.create_ring(
            "archive",
            "aes-256",
            "data-encryption",
            deactivate_at=T0 + 900 * DAY,
            exceed_policy="contract needs 30 months",
        )
        report = collect_report(m)
    by_kind = {(e.ring, e.kind): e for e in report.exceptions}
    recovery = by_kind[("leaked", "recovery")]
    assert recovery.version == 1 and "re-encrypt" in recovery.detail
    assert recovery.at.startswith((T0 + DAY).date().isoformat())
    assert "on behalf of cron@example" in recovery.by or recovery.by == "cron@example"
    override = by_kind[("archive", "policy-exception")]
    assert override.detail == "contract needs 30 months" and override.at and override.by
    jsonschema.validate(report_to_dict(report), json_schema())


def test_certificates_show_their_trusted_root_and_last_renewal(tmp_path: Path, pki: Pki) -> None:  # noqa: F811
    clock = FixedClock(dt.datetime.now(dt.UTC))
    with open_store(tmp_path, clock) as m:
        attrs = {"certificate_pem": pki.leaf.pem().decode(), "chain_pem": pki.root.pem().decode()}
        m.create_ring(
            "web", "ec-p256", "tls-server", deactivate_at=clock.now() + 80 * DAY,
            version_attributes=attrs, exceed_policy="imported",
        )  # fmt: skip
        report = collect_report(m)
    (v1,) = report.certificates
    root_der = pki.root.der
    assert v1.root_in_chain is True
    assert v1.root_fingerprint == "sha256:" + hashlib.sha256(root_der).hexdigest()
    assert v1.root_subject == pki.root.cert.subject.rfc4514_string()
    assert v1.last_renewal is None  # one certificate: never renewed
    assert v1.root_fingerprint in render_html(report)


def test_root_outside_the_chain_and_last_renewal(pki: Pki) -> None:  # noqa: F811
    from keylife.report.certs import read_certificate

    facts = read_certificate(
        pki.behind_intermediate.pem().decode(), pki.intermediate.pem().decode()
    )
    assert facts.root_in_chain is False and facts.root_fingerprint == ""
    assert facts.root_subject == pki.root.cert.subject.rfc4514_string()
    assert read_certificate("not a pem", "").problem.startswith("certificate does not parse")
    leaf_only = read_certificate(pki.leaf.pem().decode(), "-----BEGIN CERTIFICATE-----\nx")
    assert leaf_only.not_after is not None  # a bad chain leaves the leaf's facts
    now = dt.datetime.now(dt.UTC)
    ring, _ = fresh_ring("web", "ec-p256", "tls-server", created=now - 40 * DAY,
                         deactivation=now + 40 * DAY)  # fmt: skip
    from dataclasses import replace

    v1 = replace(ring.versions[0], attributes={"certificate_pem": pki.leaf.pem().decode()})
    v2 = replace(v1, number=2, created=now - DAY)
    two = replace(ring, versions=(v1, v2))
    report = build_report([two], default_policy(), now, audit=_empty_audit())
    assert {c.last_renewal for c in report.certificates} == {now - DAY}


def _empty_audit() -> AuditState:
    return AuditState(ChainReport(True, 0), (0, "0" * 64), [])


def test_upcoming_events_include_acme_account_rollovers() -> None:
    from dataclasses import replace

    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    ring, _ = fresh_ring("acme-account", "ec-p256", "signing", created=now - 300 * DAY,
                         deactivation=now + 40 * DAY)  # fmt: skip
    account = replace(ring, attributes={ACME_ACCOUNT: "{}"})
    report = build_report([account], default_policy(), now, audit=_empty_audit())
    events = [(e.kind, e.version) for e in report.events]
    assert events == [("rollover-account", 1), ("deactivate", 1)]  # keyChange 30 days ahead
    assert "rollover-account" in render_markdown(report)


def test_as_of_lists_what_falls_below_the_policy_then(report50: Report) -> None:
    later = {(e.ring, e.version) for e in report50.exceptions if e.kind == "non-compliant-as-of"}
    assert later == {(f"legacy-rsa-{i}", 1) for i in range(3)}
    detail = next(e.detail for e in report50.exceptions if e.kind == "non-compliant-as-of")
    assert detail.startswith("on 2031-01-01: ") and "112" in detail


def test_html_and_markdown_walk_the_same_sections(report50: Report) -> None:
    html, md = render_html(report50), render_markdown(report50)
    for section in sections(report50):
        assert f'id="{section.id}">' in html, section.id
        assert "#" * section.level + " " + section.title in md.splitlines(), section.title
    assert not any(s.id == "tls" for s in sections(report50))  # no --tls, no section


def test_tls_option_adds_endpoint_verdicts_and_a_rollup(
    tmp_path: Path,
    start_peer,  # noqa: F811
) -> None:
    good, expired = start_peer("strong"), start_peer("expired")
    targets = tmp_path / "targets.txt"
    targets.write_text(
        f"# the fleet\n{good.target} localhost\n{expired.target} localhost\nbad host!\n"
    )
    clock = FixedClock(dt.datetime.now(dt.UTC))
    open_store(tmp_path, clock).close()
    base = ["--store", str(tmp_path / "k.db"), "--master-key-file", str(tmp_path / "mk")]
    args = ["report", "--format", "json", "--tls", str(targets), "--tls-ca-file"]
    result = CliRunner().invoke(cli, [*base, *args, str(good.ca_file)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    jsonschema.validate(document, json_schema())
    tls = document["tls"]
    assert tls["verdicts"] == {"pass": 1, "fail": 1, "error": 1}
    verdicts = {e["target"]: e["verdict"] for e in tls["endpoints"]}
    assert verdicts[good.target] == "pass" and verdicts[expired.target] == "fail"
    assert any("expired" in r["rule"] for r in tls["rules"]), tls["rules"]
    assert document["summary"]["tls_not_passing"] == 2
    html = CliRunner().invoke(
        cli, [*base, *args, str(good.ca_file), "--format", "html"], catch_exceptions=False
    )
    assert html.exit_code == 0 and 'id="tls"' in html.stdout and 'id="tls-rollup"' in html.stdout
    missing = CliRunner().invoke(cli, [*base, "report", "--tls", str(tmp_path / "nope.txt")])
    assert missing.exit_code != 0 and "cannot read targets file" in missing.output


def test_a_run_record_of_another_shape_still_gives_a_run_entry() -> None:
    from keylife.audit import AuditRecord
    from keylife.report.sections import last_runs

    odd = AuditRecord(1, "2030-01-01T00:00:00+00:00", "me", "rotate-run", None, None,
                      "success", "policy from elsewhere", "0" * 64, "1" * 64)  # fmt: skip
    (entry,) = last_runs([odd])
    assert entry.policy_sha256 == "" and entry.succeeded is None and entry.ok
