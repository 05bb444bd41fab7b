"""``keylife rotate``: the cron job."""

from __future__ import annotations

import datetime as dt
import logging
import random
import sys
import time
from typing import TYPE_CHECKING

import click

from .context import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    Obj,
    emit,
    errors,
    fail,
    parse_when,
    pass_obj,
)
from .render import clean

if TYPE_CHECKING:
    from keylife.manager import KeyManager
    from keylife.rotation import RunReport

log = logging.getLogger("keylife.rotate")


def _print_report(report: RunReport) -> None:
    when = report.as_of.isoformat()
    if report.nothing_due:
        click.echo(f"nothing was due as of {when} ({report.rings_checked} rings checked)")
        return
    verb = "would apply" if report.dry_run else "applied"
    click.echo(f"rotation {'plan' if report.dry_run else 'run'} as of {when}:")
    for r in report.rings:
        click.echo(f"  {clean(r.ring)}: {r.status}")
        if r.error and not r.steps:
            click.echo(f"    {clean(r.error)}")
        for s in r.steps:
            target = f" v{s.version}" if s.version is not None else ""
            made = f" -> v{s.new_version}" if s.new_version is not None else ""
            click.echo(
                f"    {s.kind}{target}{made}: {s.outcome if s.outcome != 'planned' else verb}"
                f"  ({s.message})"
            )
    if not report.dry_run:
        click.echo(
            f"{report.count('succeeded')} succeeded, {report.count('failed')} failed, "
            f"{report.rings_checked} rings checked"
        )
    if report.failed:
        click.echo(f"failed rings: {', '.join(report.failed)}", err=True)
    if report.aborted:
        skipped = [clean(r.ring) for r in report.rings if r.status == "skipped"]
        shown = ", ".join(skipped[:20]) + (f" and {len(skipped) - 20} more" * (len(skipped) > 20))
        click.echo(
            f"run stopped: {report.aborted}; "
            f"{len(skipped)} rings not attempted (the next run catches up)"
            + (f": {shown}" if skipped else ""),
            err=True,
        )


def _check_options(
    obj: Obj,
    dry_run: bool,
    as_of: str | None,
    concurrency: int | None,
    checkpoint_file: str | None,
) -> dt.datetime | None:
    """Usage errors among rotate's options (exit 2); the ``--as-of`` moment."""
    from keylife.rotation.pool import MAX_CONCURRENCY

    if concurrency is not None and not 1 <= concurrency <= MAX_CONCURRENCY:
        fail(
            obj,
            f"--concurrency must be from 1 to {MAX_CONCURRENCY} (rings applied at once; "
            f"default 16 on Vault, 1 on the embedded store), not {concurrency}",
            EXIT_USAGE,
            "UsageError",
        )
    when: dt.datetime | None = parse_when(as_of, "--as-of")
    if when is not None and not dry_run:
        fail(obj, "--as-of plans for another moment and needs --dry-run", EXIT_USAGE, "UsageError")
    if checkpoint_file and dry_run:
        fail(obj, "--checkpoint anchors a real run; drop --dry-run", EXIT_USAGE, "UsageError")
    return when


@click.command()
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option("--as-of", help="Plan for this ISO 8601 moment instead of now (needs --dry-run).")
@click.option("--ring", "rings", multiple=True, help="Limit the run to this ring (repeatable).")
@click.option(
    "--window",
    help="With --dry-run: every step due within this span (e.g. 90d), in date order.",
)
@click.option(
    "--jitter",
    type=click.FloatRange(0, 3600),
    default=0.0,
    help="Sleep a random 0..SECONDS before starting, to spread a fleet (explicit, never hidden).",
)
@click.option(
    "--wait",
    type=click.FloatRange(0, 3600),
    default=0.0,
    help="Wait up to SECONDS for another run's lock instead of exiting 4.",
)
@click.option(
    "--lease-ttl",
    type=click.IntRange(10, 86400),
    default=600,
    show_default=True,
    help="Seconds the lock lasts if this run dies without releasing it.",
)
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False),
    help="Write a Prometheus textfile (node_exporter textfile collector).",
)
@click.option(
    "--deadline",
    type=click.FloatRange(1, 86400 * 7),
    default=3600,
    show_default=True,
    help="Seconds the whole run may take; rings not reached by then are reported as skipped.",
)
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(dir_okay=False),
    help="After the run, append a signed checkpoint of the audit log's head to FILE.",
)
@click.option(
    "--concurrency",
    type=int,
    default=None,
    help="Rings applied at once, on that many threads (default: 16 on Vault, 1 on the "
    "embedded store).",
)
@pass_obj
def rotate(
    obj: Obj,
    dry_run: bool,
    as_of: str | None,
    rings: tuple[str, ...],
    window: str | None,
    jitter: float,
    wait: float,
    lease_ttl: int,
    metrics_file: str | None,
    deadline: float,
    concurrency: int | None,
    checkpoint_file: str | None = None,
) -> None:
    """Activate, rotate, renew, deactivate and destroy whatever is due under the policy.

    Exit codes: 0 nothing failed; 1 some ring failed (named on stderr and in the report);
    3 the store is unavailable, the lease was lost, or the run's deadline or a signal stopped
    it (the current ring is finished, the report says which rings were not attempted);
    4 another run holds the lock.
    """
    from keylife.rotation import Runner

    when = _check_options(obj, dry_run, as_of, concurrency, checkpoint_file)
    if window is not None:
        from .forecast import parse_window, show_forecast

        span = parse_window(window)
        if not dry_run:
            fail(obj, "--window forecasts and needs --dry-run", EXIT_USAGE, "UsageError")
        with errors(obj), obj.manager() as m:
            show_forecast(obj, m, span, when, rings)
        sys.exit(EXIT_OK)
    if jitter:
        delay = random.uniform(0, jitter)
        log.info("jitter: sleeping %.1f s before starting", delay)
        time.sleep(delay)
    with errors(obj):
        if metrics_file and not dry_run:
            from keylife.rotation import metrics

            metrics.check_writable(metrics_file)  # before anything is applied
    with errors(obj), obj.manager() as m:
        runner = Runner(
            m,
            lease_ttl=dt.timedelta(seconds=lease_ttl),
            wait=wait,
            deadline=deadline,
            concurrency=concurrency,
        )
        show_bar = sys.stderr.isatty() and not obj.as_json
        if show_bar and not dry_run:
            plan, _ = runner.plan(m.now(), rings or None)
            with click.progressbar(
                length=len(plan.rings), label="rotating", file=sys.stderr
            ) as bar:
                report = runner.run(rings=rings or None, progress=lambda _name: bar.update(1))
        else:
            report = runner.run(now=when, rings=rings or None, dry_run=dry_run)
        if metrics_file and not dry_run:
            from keylife.rotation import metrics

            metrics.write(metrics_file, report, metrics.store_facts(m, report.as_of))
        anchored = _checkpoint(m, checkpoint_file) if checkpoint_file else None
    code = run_exit_code(report)
    extra = {} if anchored is None else {"checkpoint": anchored}

    def text() -> None:
        _print_report(report)
        if anchored is not None:
            click.echo(
                f"checkpoint of record {anchored['seq']} appended to {clean(anchored['file'])}"
            )

    emit(obj, {**report.to_dict(), "exit_code": code, **extra}, text)
    sys.exit(code)


def _checkpoint(m: KeyManager, path: str) -> dict[str, object]:
    """Sign the log's head after the run and append it to ``path`` (what `keylife audit
    checkpoint --out` does): one checkpoint per run."""
    from keylife.checkpoint import append_checkpoint, make_checkpoint

    made = make_checkpoint(m)
    append_checkpoint(path, made)
    return {"file": path, "seq": made.seq, "head": made.head}


def run_exit_code(report: RunReport) -> int:
    """0 nothing failed; 1 some ring failed; 3 the store became unavailable mid-run."""
    if report.aborted:
        return EXIT_UNAVAILABLE
    return EXIT_FAILED if report.failed else EXIT_OK
