"""``keylife report``: compliance evidence (inventory, exceptions, upcoming events,
certificates, audit state) as HTML, Markdown or JSON.

:func:`~keylife.report.model.build_report` is pure; :func:`collect_report` reads a store;
the renderers only format.
"""

from __future__ import annotations

from .collect import collect_report
from .html import render_html
from .jsonout import SCHEMA_VERSION, json_schema, render_json, report_to_dict
from .markdown import render_markdown
from .model import AuditState, CertificateFacts, Report, build_report

__all__ = [
    "SCHEMA_VERSION",
    "AuditState",
    "CertificateFacts",
    "Report",
    "build_report",
    "collect_report",
    "json_schema",
    "render_html",
    "render_json",
    "render_markdown",
    "report_to_dict",
]
