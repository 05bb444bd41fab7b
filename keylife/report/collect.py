"""Gather what the report needs from an open manager, then build it (the only I/O)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from .certs import certificate_facts
from .model import AuditState, Report, build_report

if TYPE_CHECKING:
    from ..writer import RingWriter
    from .sections import TlsResults

__all__ = ["collect_report"]


def collect_report(
    manager: RingWriter,
    *,
    now: dt.datetime | None = None,
    as_of: dt.datetime | None = None,
    window: dt.timedelta = dt.timedelta(days=90),
    tls: TlsResults | None = None,
) -> Report:
    """The report of ``manager``'s store under its policy at ``now`` (default: its clock),
    with the results of a TLS fleet check when ``tls`` is given
    (:func:`keylife.tls.reportsection.check_targets_file` runs one)."""
    when = now or manager.now()
    rings = manager.rings()
    records = manager.store.read_audit()
    head_fn = getattr(manager.store, "audit_head", None)
    head = head_fn() if callable(head_fn) else None
    from ..audit import verify_chain
    from ..auditstate import check_state

    audit = AuditState(verify_chain(records, head=head), head, records, check_state(records, rings))
    return build_report(
        rings,
        manager.policy,
        when,
        audit=audit,
        store=manager.store.url,
        certificates=certificate_facts(rings),
        as_of=as_of,
        window=window,
        tls=tls,
    )
