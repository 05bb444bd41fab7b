"""Fuzz: what the report reads from the store (certificate PEMs, reasons, attributes) never
raises an unexpected exception and never becomes markup."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from keylife.audit import ChainReport
from keylife.limits import POLICY_EXCEPTION
from keylife.policy import default_policy
from keylife.report import AuditState, build_report, render_html, render_markdown
from keylife.report.certs import read_certificate
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
