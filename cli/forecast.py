"""``keylife rotate --dry-run --window 90d``: every step due within the window, in date order."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click

from .context import Obj, emit
from .render import clean

if TYPE_CHECKING:
    from keylife.manager import KeyManager
    from keylife.rotation.forecast import Forecast

#: The longest --window accepted (the planner is stepped through it ring by ring).
MAX_WINDOW = dt.timedelta(days=1830)


def parse_window(value: str, option: str = "--window") -> dt.timedelta:
    """A ``90d``-style duration of at most :data:`MAX_WINDOW`; a usage error otherwise."""
    from keylife.durations import parse_duration

    try:
        window = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    if window > MAX_WINDOW:
        raise click.BadParameter(
            f"at most {MAX_WINDOW.days}d (5 years); got {value}", param_hint=option
        )
    return window


def _print(result: Forecast) -> None:
    click.echo(f"forecast from {result.now.isoformat()} to {result.end.isoformat()}:")
    if not result.steps:
        click.echo("  nothing falls due")
    for f in result.steps:
        s = f.step
        target = f" v{s.version}" if s.version is not None else ""
        click.echo(
            f"  {f.at:%Y-%m-%d %H:%M}  {clean(s.ring)}: {s.kind.value}{target}  ({s.reason})"
        )
    for ring, why in sorted(result.stopped.items()):
        click.echo(f"  {clean(ring)}: forecast ends: {clean(why)}")


def show_forecast(
    obj: Obj,
    m: KeyManager,
    window: dt.timedelta,
    now: dt.datetime | None,
    rings: tuple[str, ...],
) -> None:
    """Print (or emit as JSON) the forecast of ``rings`` (all when empty); nothing is written."""
    from keylife.rotation.forecast import forecast

    chosen = [m.load(name) for name in rings] if rings else m.rings()
    result = forecast(chosen, m.policy, now or m.now(), window)
    emit(obj, {**result.to_dict(), "dry_run": True}, lambda: _print(result))
