"""``keylife report``: compliance evidence in one command."""

from __future__ import annotations

import click

from .context import Obj, errors, parse_when, pass_obj
from .forecast import parse_window


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md", "json"]),
    help="Output format (default: md; json under --json).",
)
@click.option("--out", type=click.Path(dir_okay=False), help="Write the report to this file.")
@click.option(
    "--as-of", help="Also check compliance at this future date (e.g. 2031-01-01: 128-bit rule)."
)
@click.option("--window", default="90d", show_default=True, help="Upcoming events window.")
@click.option(
    "--tls",
    "tls_targets",
    type=click.Path(dir_okay=False),
    help="Also check these TLS endpoints (the targets file of 'tls check --targets').",
)
@click.option(
    "--tls-ca-file",
    type=click.Path(dir_okay=False, exists=True),
    help="With --tls: trust these CA certificates (PEM) instead of the system's.",
)
@pass_obj
def report(
    obj: Obj,
    fmt: str | None,
    out: str | None,
    as_of: str | None,
    window: str,
    tls_targets: str | None,
    tls_ca_file: str | None,
) -> None:
    """Inventory, compliance, exceptions, upcoming events, certificates and audit state.

    The HTML is one self-contained file (no scripts, no external resources); the JSON follows
    the published schema keylife/report/schema.json.
    """
    from keylife.errors import KeylifeError
    from keylife.files import atomic_write
    from keylife.report import collect_report, render_html, render_json, render_markdown

    span = parse_window(window)
    later = parse_when(as_of, "--as-of")
    chosen = fmt or ("json" if obj.as_json else "md")
    if obj.as_json and chosen != "json" and out is None:
        raise click.UsageError("--json prints one JSON document: add --out FILE for " + chosen)
    with errors(obj), obj.manager() as m:
        tls = None
        if tls_targets is not None:
            from keylife.tls.reportsection import check_targets_file

            tls = check_targets_file(tls_targets, now=m.now(), ca_file=tls_ca_file)
        built = collect_report(m, as_of=later, window=span, tls=tls)
        renderers = {"html": render_html, "md": render_markdown, "json": render_json}
        text = renderers[chosen](built)
        if out is None:
            click.echo(text, nl=False)
            return
        atomic_write(out, text.encode("utf-8"), mode=0o644, error=KeylifeError)
    if not obj.as_json:
        click.echo(f"report written to {out} ({chosen}, {len(built.rings)} rings)")
    else:
        import json

        click.echo(json.dumps({"written": out, "format": chosen, "rings": len(built.rings)}))
