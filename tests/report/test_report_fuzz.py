"""Fuzz: what the report reads from the store (certificate PEMs, reasons, attributes) never
raises an unexpected exception and never becomes markup."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from keylife.audit import AuditRecord, ChainReport
from keylife.limits import POLICY_EXCEPTION
from keylife.policy import default_policy
from keylife.report import AuditState, build_report, render_html, render_markdown
from keylife.report.certs import read_certificate
from keylife.report.sections import RUNS_SHOWN, audited_acts, last_runs
from tests.rings import fresh_ring

from .test_report_browser import parse

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
AUDIT = AuditState(ChainReport(True, 0), (0, "0" * 64), [])
PEM_HEAD = "-----BEGIN CERTIFICATE-----\n"


@settings(max_examples=150, deadline=2000)
@given(st.one_of(st.text(max_size=300), st.text(max_size=300).map(lambda t: PEM_HEAD + t)))
def test_any_certificate_text_gives_facts_or_a_problem(text: str) -> None:
    facts = read_certificate(text)
    assert facts.problem or facts.not_after is not None


@settings(max_examples=100, deadline=5000)
@given(st.text(max_size=200), st.text(max_size=200))
def test_store_text_never_becomes_markup(reason: str, domains: str) -> None:
    ring, _ = fresh_ring("r", created=NOW, deactivation=NOW + dt.timedelta(days=30))
    v = ring.versions[0]
    attrs = {POLICY_EXCEPTION: reason, "certificate_pem": reason, "domains": domains}
    ring = replace(ring, versions=(replace(v, attributes=attrs, revocation_message=reason),))
    report = build_report([ring], default_policy(), NOW, audit=AUDIT)
    tags = parse(render_html(report))
    assert tags.links == []
    assert set(tags.tags) <= {
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "div", "b",
        "span", "i", "code", "table", "thead", "tbody", "tr", "th", "td", "svg", "line",
        "text", "g", "rect", "path",
    }  # fmt: skip
    for line in render_markdown(report).splitlines():
        assert "<" not in line.replace("\\<", "")


VALID_PEM = None


def _leaf_pem() -> str:
    from .store50 import self_signed

    global VALID_PEM
    if VALID_PEM is None:
        VALID_PEM = self_signed("fuzz.example", NOW, 30)[0]
    return VALID_PEM


@settings(max_examples=100, deadline=2000)
@given(st.one_of(st.text(max_size=300), st.text(max_size=300).map(lambda t: PEM_HEAD + t)))
def test_any_chain_text_keeps_the_leaf_facts(chain: str) -> None:
    facts = read_certificate(_leaf_pem(), chain)
    assert facts.not_after is not None and facts.root_subject


RECORD = st.builds(
    lambda seq, action, reason, outcome, ring: AuditRecord(
        seq, NOW.isoformat(), "me", action, ring, None, outcome, reason, "0" * 64, "1" * 64
    ),
    st.integers(1, 10**6),
    st.sampled_from(["rotate-run", "rotate", "recover", "policy-exception", "create"]),
    st.one_of(
        st.text(max_size=200),
        st.from_regex(
            r"policy .{0,20} sha256:[0-9a-f]{64}: \d{1,30} succeeded, \d failed, "
            r"\d skipped",
            fullmatch=True,
        ),
    ),
    st.sampled_from(["success", "failure: x"]),
    st.one_of(st.none(), st.text(max_size=20)),
)


@settings(max_examples=100, deadline=5000)
@given(st.lists(RECORD, max_size=20))
def test_any_audit_records_give_runs_and_acts(records: list[AuditRecord]) -> None:
    runs = last_runs(records)
    assert len(runs) == min(RUNS_SHOWN, sum(r.action == "rotate-run" for r in records))
    assert all(r.succeeded is None or r.succeeded >= 0 for r in runs)
    acts = audited_acts(records)
    assert all(a.ring for a in acts)
