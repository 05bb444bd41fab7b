"""``keylife tls``: check TLS endpoints against the TLS policy.

Only click is imported at module load; the checker (cryptography, pyOpenSSL) is imported inside
the command so that ``keylife --help`` stays fast.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from keylife.tls import TlsReport

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_ERROR = 3

log = logging.getLogger("keylife.tls")


@click.group(name="tls")
def tls() -> None:
    """Check TLS endpoints and settings against the TLS policy."""


@tls.command(name="check")
@click.argument("targets", metavar="HOST[:PORT]...", nargs=-1, required=True)
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
@click.option("--sni", metavar="NAME", help="Server name to send and to match (default: host).")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON document.")
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
    type=click.IntRange(min=1, max=32),
    default=4,
    show_default=True,
    help="Most simultaneous connections to one server.",
)
@click.pass_context
def check(
    ctx: click.Context,
    targets: tuple[str, ...],
    policy_spec: str | None,
    ca_file: str | None,
    sni: str | None,
    as_json: bool,
    timeout: float,
    deadline: float,
    connections: int,
) -> None:
    """Probe each endpoint and give a verdict per endpoint.

    Exit status: 0 when every endpoint passes, 1 when any violates a rule, 3 when any could
    not be checked (unreachable, not TLS, too slow, too large), 2 for bad arguments.
    """
    from keylife.errors import TlsError
    from keylife.tls import check_endpoints, load_policy, parse_target, render_json
    from keylife.tls.targets import check_server_name

    as_json = as_json or bool(getattr(ctx.obj, "as_json", False))
    try:
        policy = load_policy(policy_spec or _policy_from_parent(ctx))
        parsed = [parse_target(t) for t in targets]
        if sni is not None:
            check_server_name(sni)
    except TlsError as exc:
        raise click.UsageError(str(exc), ctx) from exc
    log.info("checking %d endpoint(s) with policy %s", len(parsed), policy.name)
    reports = check_endpoints(
        parsed,
        policy,
        sni=sni,
        ca_file=ca_file,
        timeout=timeout,
        deadline=deadline,
        max_connections=connections,
    )
    for report in reports:
        if report.verdict == "error":
            log.warning("%s: %s", report.target, report.error)
    if as_json:
        click.echo(render_json(reports, policy=policy.name))
    else:
        for report in reports:
            _print_report(report)
    verdicts = {r.verdict for r in reports}
    ctx.exit(EXIT_ERROR if "error" in verdicts else EXIT_FAIL if "fail" in verdicts else EXIT_PASS)


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
