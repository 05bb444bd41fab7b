"""``keylife key list`` and ``keylife key show``.

``key list`` streams: rings are read a page at a time (``--prefix``, ``--limit``) and each is
printed as it is read, so the first line of a 100,000-ring store comes at once and memory stays
flat. Under ``--json`` the output is still one JSON document, written as it goes (on a failure
half-way it is closed with the error and exit code); ``--jsonl`` prints one object per ring and
line. On Vault, transit-resident rings (keys that never leave Vault) follow the store's rings,
marked ``transit``. Every ring gets a condensed state summary (``v3 active, v2 processing, v1
destroyed``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from .context import EXIT_FAILED, EXIT_UNAVAILABLE, Obj, emit, errors, pass_obj
from .render import clean, print_version, ring_summary, version_dict

if TYPE_CHECKING:
    import datetime as dt

    from keylife.lifecycle import KeyVersion, Ring
    from keylife.manager import KeyManager

__all__ = ["list_", "show", "state_summary"]

HEADER = (
    f"{'RING':<28} {'TYPE':<12} {'PURPOSE':<16} {'PRIMARY':>7} {'VERS':>4}  "
    f"{'DEACTIVATES':<16}  STATES"
)


def _label(v: KeyVersion, now: dt.datetime, grace: dt.timedelta | None) -> str:
    from keylife.lifecycle import State

    if v.state is State.DEACTIVATED and grace is not None and v.processes_at(now, grace):
        return "processing"  # still decrypts / verifies, in the grace period
    return v.state.value


def state_summary(ring: Ring, now: dt.datetime, grace: dt.timedelta | None) -> str:
    """The ring's versions newest first, runs of equal state condensed:
    ``v5 active, v3-v4 processing, v1-v2 destroyed`` (``processing``: deactivated, still in
    the purpose's grace period; ``grace`` None: not known)."""
    runs: list[tuple[str, int, int]] = []  # (label, newest, oldest)
    for v in sorted(ring.versions, key=lambda v: -v.number):
        label = _label(v, now, grace)
        if runs and runs[-1][0] == label and runs[-1][2] == v.number + 1:
            runs[-1] = (label, runs[-1][1], v.number)
        else:
            runs.append((label, v.number, v.number))
    return ", ".join(
        f"v{new} {label}" if new == old else f"v{old}-v{new} {label}" for label, new, old in runs
    )


def _grace(m: KeyManager, ring: Ring) -> dt.timedelta | None:
    from keylife.policy import Purpose

    try:
        return m.policy.rules(Purpose(ring.purpose)).grace_period
    except (ValueError, KeyError):
        return None


def _entry(m: KeyManager, ring: Ring, now: dt.datetime, key: str | None = None) -> dict[str, Any]:
    doc = ring_summary(ring, now)
    doc["transit"] = key is not None
    if key is not None:
        doc["key"] = key
    if not ring.damage:
        doc["state_summary"] = state_summary(ring, now, _grace(m, ring))
    return doc


def _entries(m: KeyManager, prefix: str, limit: int | None) -> Iterator[dict[str, Any]]:
    """The store's rings, then (on Vault) the transit-resident ones, as they are read."""
    from keylife.store.schedule import iter_rings

    now = m.now()
    count = 0
    for ring in iter_rings(m.store, prefix=prefix, limit=limit):
        count += 1
        yield _entry(m, ring, now)
    factory = getattr(m.store, "transit_rings", None)
    if not callable(factory) or (limit is not None and count >= limit):
        return
    transit = factory(actor=m.actor, clock=m.clock, policy=m.policy)
    for name in transit.names():
        if not name.startswith(prefix):
            continue
        view = transit.show(name)
        doc = _entry(m, view.ring, now, key=view.key)
        doc["type"] = view.key_type
        yield doc
        count += 1
        if limit is not None and count >= limit:
            return


def _row(doc: dict[str, Any]) -> str:
    name = ("transit:" if doc["transit"] else "") + doc["name"]
    if "damaged" in doc:
        return f"{clean(name):<28} DAMAGED: {clean(doc['damaged'])}"
    primary = "-" if doc["primary"] is None else f"v{doc['primary']}"
    ends = doc["primary_deactivation"]
    ends = "-" if ends is None else ends[:16].replace("T", " ")
    row = (
        f"{clean(name):<28} {clean(doc['type']):<12} {clean(doc['purpose']):<16} {primary:>7} "
        f"{doc['versions']:>4}  {ends:<16}  {doc['state_summary']}"
    )
    for number, due in sorted((doc.get("destroy_scheduled") or {}).items()):
        row += f"\n{'':<28} v{number} scheduled for destruction {due[:16].replace('T', ' ')}"
    return row


class _JsonDocument:
    """``{"rings": [...]}`` written an element at a time, byte for byte what
    ``json.dumps(document, indent=2, sort_keys=True)`` prints."""

    def __init__(self) -> None:
        self.count = 0

    def add(self, doc: dict[str, Any]) -> None:
        text = json.dumps(doc, indent=2, sort_keys=True, default=str).replace("\n", "\n    ")
        click.echo(('{\n  "rings": [\n    ' if not self.count else ",\n    ") + text, nl=False)
        self.count += 1

    def close(self, extra: dict[str, Any] | None = None) -> None:
        tail = "".join(f",\n  {json.dumps(k)}: {json.dumps(v)}" for k, v in (extra or {}).items())
        click.echo('{\n  "rings": []' + tail + "\n}" if not self.count else "\n  ]" + tail + "\n}")


@click.command("list")
@click.option("--prefix", default="", metavar="PREFIX", help="Only rings whose name starts so.")
@click.option("--limit", type=click.IntRange(min=0), metavar="N", help="At most N rings.")
@click.option("--jsonl", is_flag=True, help="One JSON object per ring and line, as read.")
@pass_obj
def list_(obj: Obj, prefix: str, limit: int | None, jsonl: bool) -> None:
    """Every ring: type, purpose, primary version, when it deactivates, and its versions'
    states (condensed). On Vault, transit-resident rings follow, marked transit:NAME.

    Rings are printed as they are read (a page at a time), so large stores list at once."""
    from keylife.errors import KeylifeError, StoreUnavailableError

    with errors(obj), obj.manager() as m:
        document = _JsonDocument() if obj.as_json and not jsonl else None
        shown = 0
        try:
            for doc in _entries(m, prefix, limit):
                if document is not None:
                    document.add(doc)
                elif jsonl:
                    click.echo(json.dumps(doc, sort_keys=True, default=str))
                else:
                    click.echo((HEADER + "\n" if not shown else "") + _row(doc))
                shown += 1
        except KeylifeError as exc:
            if document is None or not document.count:
                raise
            code = EXIT_UNAVAILABLE if isinstance(exc, StoreUnavailableError) else EXIT_FAILED
            error = {"type": type(exc).__name__, "message": str(exc)}
            document.close({"error": error, "exit_code": code})
            sys.exit(code)
        if document is not None:
            document.close()
        elif not shown and not jsonl:
            click.echo("no rings")


@click.command()
@click.argument("name")
@click.option("--version", "number", type=int, help="One version (default: all).")
@pass_obj
def show(obj: Obj, name: str, number: int | None) -> None:
    """Metadata of ring NAME's versions (never material); for a certificate ring, also its
    certificate as `keylife cert show` reports it."""
    from keylife.certificates import is_certificate_ring
    from keylife.errors import AcmeError, NotFoundError

    with errors(obj), obj.manager() as m:
        ring = m.load(name)
        now = m.now()
        summary = {**ring_summary(ring, now), "state_summary": ""}
        if not ring.damage:
            summary["state_summary"] = state_summary(ring, now, _grace(m, ring))
    versions = [v for v in ring.versions if number is None or v.number == number]
    if number is not None and not versions:
        with errors(obj):
            raise NotFoundError(f"ring {name} has no version {number}")
    certificate: dict[str, Any] | None = None
    if is_certificate_ring(ring):
        from keylife.acme.status import certificate_status

        try:
            certificate = certificate_status(ring, now).to_dict()
        except AcmeError as exc:
            certificate = {"ring": ring.name, "error": str(exc)}

    def text() -> None:
        p = ring.primary(now)
        click.echo(
            f"ring {clean(ring.name)}: {ring.spec.name} for {clean(ring.purpose)}, primary "
            f"{'v' + str(p.number) if p else 'none'}"
        )
        click.echo(f"  states        {summary['state_summary']}")
        for v in versions:
            print_version(v)
        if certificate is not None:
            from .cert import print_certificate_status

            if "error" in certificate:
                click.echo(f"Certificate: {clean(certificate['error'])}")
            else:
                print_certificate_status(certificate)

    doc = {**summary, "details": [version_dict(v) for v in versions]}
    if certificate is not None:
        doc["certificate"] = certificate
    emit(obj, doc, text)
