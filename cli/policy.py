"""``keylife policy show|check``"""

from __future__ import annotations

import click

from .context import Obj, emit, errors, pass_obj
from .render import clean


def _print_policy(d: dict[str, object], label: str) -> None:
    click.echo(f"source       {clean(d['source'])}")
    click.echo(f"profile      {d['profile']}")
    click.echo(f"min strength {d['min_strength']} bits (128 for every key from 2031-01-01)")
    click.echo(f"audit reads  {'yes' if d.get('audit_reads') else 'no'}")
    second = " after a second actor's approval" if d["destroy_requires_second_actor"] else ""
    click.echo(f"destroy wait {d['destroy_wait']}{second}")
    purposes = d["purposes"]
    assert isinstance(purposes, dict)
    click.echo(
        f"{'PURPOSE':<16} {'DEFAULT':<12} {'PERIOD':>7} {'LEAD':>6} {'GRACE':>6} {'STAGE':>6} "
        f"{'DESTROY':>8} {'MAX MSGS':>10}  {label}"
    )
    for name, p in purposes.items():
        click.echo(
            f"{name:<16} {p['default_type']:<12} {p['cryptoperiod']:>7} {p['lead_time']:>6} "
            f"{p['grace_period']:>6} {p.get('stage') or '-':>6} "
            f"{p.get('destroy_after') or '-':>8} {_messages(p.get('max_messages')):>10}  "
            f"{', '.join(p['allowed_now'])}"
        )


def _messages(n: object) -> str:
    """``max_messages`` in a column: ``-`` when unset, ``2^31`` for a power of two."""
    if not isinstance(n, int):
        return "-"
    return f"2^{n.bit_length() - 1}" if n > 1 and n & (n - 1) == 0 else str(n)


def _view(policy: object, at: object) -> dict[str, object]:
    from keylife.policy import Policy, Purpose

    assert isinstance(policy, Policy)
    d = policy.to_dict()
    purposes = d["purposes"]
    for p in Purpose:
        purposes[p.value]["allowed_now"] = [s.name for s in policy.allowed_specs(p, at)]  # type: ignore[arg-type]
    return d


@click.group()
def policy() -> None:
    """Show or check the key policy."""


@policy.command()
@click.option("--as-of", help="Show what is allowed on this ISO 8601 date (default: now).")
@pass_obj
def show(obj: Obj, as_of: str | None) -> None:
    """Print the effective policy."""
    from .context import parse_when

    at = parse_when(as_of, "--as-of")
    with errors(obj):
        from keylife.clock import SystemClock
        from keylife.compose import resolve_policy

        pol = resolve_policy(obj.policy)
        d = _view(pol, at or SystemClock().now())
    label = "ALLOWED NOW" if at is None else f"ALLOWED ON {at.date().isoformat()}"
    emit(obj, d, lambda: _print_policy(d, label))


@policy.command()
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@click.option(
    "--store",
    "against_store",
    is_flag=True,
    help="List every version in the store outside the policy in force today (exit 1 if any).",
)
@pass_obj
def check(obj: Obj, file: str | None, against_store: bool) -> None:
    """Validate policy FILE; exit 1 with the file, key and allowed values if it is invalid.
    With --store, check every stored version against the policy (FILE, or the one in force)."""
    import sys

    if file is None and not against_store:
        raise click.UsageError("give a policy FILE, --store, or both")
    with errors(obj):
        from keylife.policy import load_policy

        policy = load_policy(file) if file is not None else None
    if not against_store:
        emit(obj, {"file": file, "valid": True}, f"{clean(file)}: policy is valid")
        return
    with errors(obj), obj.manager() as m:
        from keylife.limits import violations

        found = violations(m.rings(), policy or m.policy, m.now())

    def text() -> None:
        if not found:
            click.echo("every stored version is within the policy")
        for v in found:
            click.echo(f"{clean(v.ring)} v{v.version}  {v.rule}: {clean(v.reason)}")

    emit(obj, {"violations": [v.to_dict() for v in found], "ok": not found}, text)
    if found:
        sys.exit(1)
