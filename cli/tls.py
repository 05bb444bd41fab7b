"""``keylife tls``: check TLS endpoints against the TLS policy.

Only click is imported at module load; the checker (cryptography, pyOpenSSL) is imported inside
the command so that ``keylife --help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from keylife.tls import FleetSummary, Target, TlsPolicy, TlsReport

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_ERROR = 3
EXIT_INTERRUPTED = 130
MAX_CONNECTIONS = 4096

log = logging.getLogger("keylife.tls")


@click.group(name="tls")
def tls() -> None:
    """Check TLS endpoints and settings against the TLS policy."""


@tls.command(name="check")
@click.argument("targets", metavar="[HOST[:PORT]]...", nargs=-1)
@click.option(
    "--targets",
    "targets_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="File of targets, one 'HOST[:PORT] [SNI]' per line; '#' comments and blank lines "
    "allowed. A line that does not parse is that target's error (exit 3), with its line number.",
)
@click.option(
    "--policy",
    "policy_spec",
    metavar="NAME|FILE",
    help="default, mozilla-modern, mozilla-intermediate, nist-800-52r2, or a TOML file "
    "with a [tls] table (default: the [tls] table of keylife's --policy file, else default).",
)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM bundle of trusted CAs (default: the system trust store).",
)
@click.option(
    "--sni",
    metavar="NAME",
    help="Server name to send and to match (default: the host) for targets without their own.",
)
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON document.")
@click.option(
    "--jsonl",
    "as_jsonl",
    is_flag=True,
    help="Print one JSON line per endpoint as soon as it is checked (and the summary last).",
)
@click.option("--summary", "with_summary", is_flag=True, help="Add a roll-up of the whole run.")
@click.option(
    "--expiring",
    metavar="DURATION",
    default="30d",
    show_default=True,
    help="With --summary: list leaf certificates that expire within this time (2w, 30d, 12h).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds allowed for each connection (connect and server handshake).",
)
@click.option(
    "--deadline",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds allowed for each endpoint, all its connections together; an endpoint not "
    "done by then gets verdict error, with what was seen so far.",
)
@click.option(
    "--connections",
    type=click.IntRange(min=1, max=MAX_CONNECTIONS),
    default=32,
    show_default=True,
    help="Most TCP connections open at once in the whole run, whatever the number of endpoints.",
)
@click.option(
    "--per-endpoint",
    type=click.IntRange(min=1, max=32),
    default=4,
    show_default=True,
    help="Most TCP connections open at once to one endpoint.",
)
@click.pass_context
def check(ctx: click.Context, /, **opts: Any) -> None:
    """Probe each endpoint and give a verdict per endpoint.

    Results are printed as endpoints finish. Exit status: 0 when every endpoint passes, 1 when
    any violates a rule, 3 when any could not be checked (unreachable, not TLS, too slow, too
    large, a targets line that does not parse; 3 wins over 1), 2 for bad arguments, 130 when
    interrupted (SIGINT): no new endpoint is started, those in flight finish (a second SIGINT
    abandons them) and every line printed so far is complete.
    """
    from keylife.clock import SystemClock
    from keylife.tls import ConnectionGate, FleetSummary, check_fleet

    run = _prepare(ctx, opts)
    summary = FleetSummary(now=SystemClock().now(), expiring_within=run.expiring)
    summary.targets = len(run.targets)
    log.info("checking %d endpoint(s) with policy %s", len(run.targets), run.policy.name)
    output = _Output(run.mode, len(run.targets), summary)
    stop, cancel = threading.Event(), threading.Event()
    gate = ConnectionGate(opts["connections"])
    with _on_sigint(stop, cancel):
        for index, report in check_fleet(
            run.targets,
            run.policy,
            connections=opts["connections"],
            per_endpoint=opts["per_endpoint"],
            ca_file=opts["ca_file"],
            timeout=opts["timeout"],
            deadline=opts["deadline"],
            now=summary.now,
            stop=stop,
            cancel=cancel,
            gate=gate,
        ):
            output.add(index, report)
    interrupted = stop.is_set() or cancel.is_set()
    output.finish(
        run.policy.name, summary.to_dict(interrupted=interrupted) if run.summary else None
    )
    log.debug("at most %d connections were open at once", gate.peak)
    if interrupted:
        log.warning(
            "interrupted: %d of %d endpoint(s) checked", summary.endpoints, len(run.targets)
        )
        ctx.exit(EXIT_INTERRUPTED)
    v = summary.verdicts
    ctx.exit(EXIT_ERROR if v["error"] else EXIT_FAIL if v["fail"] else EXIT_PASS)


@dataclass(frozen=True)
class _Run:
    policy: TlsPolicy
    targets: list[Target]
    mode: str  # "text", "json" or "jsonl"
    summary: bool
    expiring: dt.timedelta


def _prepare(ctx: click.Context, opts: dict[str, Any]) -> _Run:
    """Check every argument before the first connection: bad ones are usage errors (exit 2)."""
    from keylife.durations import parse_duration
    from keylife.errors import TlsError
    from keylife.tls import load_policy
    from keylife.tls.targets import check_server_name

    if opts["as_json"] and opts["as_jsonl"]:
        raise click.UsageError("--json and --jsonl exclude each other", ctx)
    mode = "jsonl" if opts["as_jsonl"] else "json" if opts["as_json"] else "text"
    if mode == "text" and getattr(ctx.obj, "as_json", False):
        mode = "json"
    try:
        expiring = parse_duration(opts["expiring"])
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param_hint="--expiring") from None
    try:
        policy = load_policy(opts["policy_spec"] or _policy_from_parent(ctx))
        sni = check_server_name(opts["sni"]) if opts["sni"] is not None else None
        targets = _targets(opts["targets"], opts["targets_file"], sni)
    except TlsError as exc:
        raise click.UsageError(str(exc), ctx) from exc
    if not targets:
        raise click.UsageError("no targets: give HOST[:PORT] arguments or --targets FILE", ctx)
    _raise_open_files_limit(ctx, opts["connections"])
    return _Run(policy, targets, mode, opts["with_summary"], expiring)


def _targets(args: tuple[str, ...], path: str | None, sni: str | None) -> list[Target]:
    """Arguments then the file's lines, without repeats; a bad argument raises TlsError."""
    from keylife.tls import Target, parse_target, read_targets, unique_targets

    given = [Target(*parse_target(a), sni, f"argument {i}") for i, a in enumerate(args, 1)]
    if path is not None:
        given += [
            replace(t, sni=sni) if t.sni is None and t.error is None else t
            for t in read_targets(path)
        ]
    return unique_targets(given)


def _raise_open_files_limit(ctx: click.Context, connections: int) -> None:
    """Make room for ``connections`` sockets (plus files) under RLIMIT_NOFILE, or say how."""
    import resource

    need = connections + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard == resource.RLIM_INFINITY or hard >= need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        else:
            raise click.UsageError(
                f"--connections {connections} needs {need} open files but the limit is {hard}; "
                "lower --connections or raise the limit (ulimit -n)",
                ctx,
            )


@contextmanager
def _on_sigint(stop: threading.Event, cancel: threading.Event) -> Iterator[None]:
    """First SIGINT: start no new endpoint. Second: abandon the ones in flight."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            cancel.set()
            os.write(2, b"keylife: interrupted again: abandoning the endpoints in flight\n")
        else:
            stop.set()
            os.write(
                2,
                b"keylife: interrupted: finishing the endpoints in flight "
                b"(interrupt again to abandon them)\n",
            )

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Output:
    """Writes results as they come: text or JSON lines at once, one JSON document at the end."""

    def __init__(self, mode: str, total: int, summary: FleetSummary) -> None:
        self.mode = mode
        self.total = total
        self.summary = summary
        self.collected: list[tuple[int, TlsReport]] = []
        self.progress = mode == "text" and sys.stderr.isatty() and total > 1

    def add(self, index: int, report: TlsReport) -> None:
        from keylife.tls import render_json_line

        self.summary.add(report)
        self._clear_bar()
        if report.verdict == "error":
            log.warning("%s: %s", report.target, report.error)
        if self.mode == "jsonl":
            sys.stdout.write(render_json_line(report) + "\n")
            sys.stdout.flush()
        elif self.mode == "json":
            self.collected.append((index, report))
        else:
            _print_report(report)
            sys.stdout.flush()
            self._draw_bar()

    def finish(self, policy: str, summary: dict[str, Any] | None) -> None:
        from keylife.tls import render_json, render_json_line

        self._clear_bar()
        if self.mode == "json":
            reports = [r for _, r in sorted(self.collected, key=lambda pair: pair[0])]
            click.echo(render_json(reports, policy=policy, summary=summary))
        elif summary is not None and self.mode == "jsonl":
            sys.stdout.write(render_json_line(summary) + "\n")
            sys.stdout.flush()
        elif summary is not None:
            _print_summary(summary)

    def _clear_bar(self) -> None:
        if self.progress:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()

    def _draw_bar(self) -> None:
        if not self.progress:
            return
        done = self.summary.endpoints
        filled = done * 30 // max(1, self.total)
        v = self.summary.verdicts
        sys.stderr.write(
            f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total}  "
            f"pass {v['pass']}  fail {v['fail']}  error {v['error']}"
        )
        sys.stderr.flush()


def _print_summary(summary: dict[str, Any]) -> None:
    v = summary["verdicts"]
    click.echo(
        f"summary: {summary['endpoints']} endpoint(s): {v['pass']} pass, {v['fail']} fail, "
        f"{v['error']} error"
        + (f"; {summary['not_checked']} not checked" if summary["not_checked"] else "")
        + ("; interrupted" if summary["interrupted"] else "")
    )
    for rule, count in summary["rules"].items():
        click.echo(f"  rule       {rule}  {count}")
    exp = summary["expiring"]
    click.echo(f"  expiring   {exp['count']} leaf certificate(s) within {exp['within_days']} days")
    for c in exp["certificates"]:
        click.echo(
            f"    {c['target']}  {c['subject']}  until {c['not_after'][:10]}"
            f"  ({c['days_left']} days)"
        )
    protocols = ", ".join(f"{p} {n}" for p, n in summary["protocols"].items())
    click.echo(f"  protocols  {protocols or '-'}")
    for suite, count in list(summary["suites"].items())[:20]:
        click.echo(f"  suite      {suite}  {count}")


def _policy_from_parent(ctx: click.Context) -> Any:
    """The root ``--policy`` file, when it carries a [tls] table."""
    path = getattr(ctx.obj, "policy", None)
    if not path or not str(path).endswith(".toml"):
        return None
    import tomllib

    try:
        with open(path, "rb") as fh:
            has_tls = "tls" in tomllib.load(fh)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None
    return path if has_tls else None


_STYLE = {"pass": "green", "fail": "red", "error": "yellow"}


def _print_report(report: TlsReport) -> None:
    name = f" (SNI {report.server_name})" if report.server_name else ""
    verdict = click.style(report.verdict.upper(), fg=_STYLE[report.verdict], bold=True)
    click.echo(f"{report.target}{name}  {verdict}  policy={report.policy}")
    if report.verdict == "error":
        click.echo(f"  error: {report.error}")
        return
    accepted = [p.version for p in report.protocols if p.accepted]
    click.echo(f"  protocols  {', '.join(accepted) or '-'}")
    click.echo(f"  suites     {len(report.suites)} accepted, weakest {_weakest(report)}")
    if report.groups:
        click.echo(f"  groups     {', '.join(report.groups)}")
    if report.certificates:
        leaf = report.certificates[0]
        click.echo(
            f"  leaf       {leaf.subject}  {leaf.key_type}-{leaf.key_bits}  "
            f"{leaf.signature_hash or '-'}  until {leaf.not_after[:10]}  "
            f"trusted={'yes' if report.trusted else 'no'}"
        )
    if report.findings:
        width = max(len(f.rule_id) for f in report.findings)
        for f in report.findings:
            sev = click.style(f.severity.upper(), fg="red" if f.severity == "fail" else "yellow")
            click.echo(f"  {sev:4} {f.rule_id:<{width}}  {f.observed}  [allowed: {f.allowed}]")
    else:
        click.echo("  no findings")
    click.echo(f"  ({report.handshakes} handshakes, {report.duration_ms} ms)", file=sys.stderr)


def _weakest(report: TlsReport) -> str:
    if not report.suites:
        return "-"
    weakest = min(report.suites, key=lambda s: s.strength)
    return f"{weakest.name} ({weakest.strength} bits)"
