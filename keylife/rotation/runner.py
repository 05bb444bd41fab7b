"""Applying a plan: the imperative shell around :func:`plan_rotation`.

The runner holds a lease (so concurrent runs never double-rotate), then for each ring with due
steps it re-plans that ring from the stored state and applies the first step with a
check-and-set write, until the ring has nothing due. Every step is therefore idempotent: a run
killed at any point leaves a state that the next run completes, and a step another run already
did is simply no longer in the plan. A failure on one ring does not stop the others.

Independent rings are applied on ``concurrency`` threads (:mod:`keylife.rotation.pool`;
default: the store's ``rotate_concurrency``, 16 on Vault, else 1), each ring by one thread.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from ..auditstate import policy_digest
from ..clock import FixedClock, as_utc
from ..counters import counts_for, prefetch_counts
from ..errors import KeylifeError, LockHeldError, NotFoundError, StoreUnavailableError
from ..lifecycle import Action, Ring
from ..manager import KeyManager
from ..policy import Purpose
from ..residence import is_transit_resident
from ..store.schedule import RingsToPlan
from ..writer import RingWriter
from . import schedule
from .health import check_ring, versions_to_check
from .holders import holder_is_dead, new_holder
from .paging import plan_pages, replanned_pages
from .plan import Plan, Step, StepKind, plan_ring
from .pool import apply_rings, check_concurrency, map_rings
from .results import RingResult, RunReport, StepResult
from .settle import settle

log = logging.getLogger("keylife.rotate")

LEASE_NAME = "keylife-rotate"
#: Report name prefix of transit-resident rings (Vault keys that never leave Vault).
TRANSIT_PREFIX = "transit:"
DEFAULT_RUN_DEADLINE = 3600.0  # seconds; rings not reached by then are skipped, named


_ONCE_PER_RUN = frozenset(
    {
        StepKind.RENEW_CERTIFICATE,
        StepKind.ROLLOVER_ACCOUNT,
        StepKind.REVOKE_CERTIFICATE,
        StepKind.REFRESH_RENEWAL_INFO,
    }
)


class Runner:
    """Applies rotation plans against one manager's store."""

    def __init__(
        self,
        manager: KeyManager,
        *,
        lease_ttl: dt.timedelta = dt.timedelta(minutes=10),
        wait: float = 0.0,
        holder: str | None = None,
        deadline: float | None = DEFAULT_RUN_DEADLINE,
        concurrency: int | None = None,
    ) -> None:
        self.manager = manager
        #: rings applied at once (threads); None: the store's ``rotate_concurrency``, else 1
        self.concurrency = check_concurrency(
            getattr(manager.store, "rotate_concurrency", 1) if concurrency is None else concurrency
        )
        self.lease_ttl = lease_ttl
        self.wait = wait
        self.deadline = deadline  # seconds the whole run may take (None: unbounded)
        self._stop_reason = ""
        self.holder = holder or new_holder()
        #: Rings the last plan could not read (name -> why): each fails, named, in the report.
        self.damaged: dict[str, str] = {}
        #: Rings whose primary or staged successor does not open or match its fingerprint.
        self.unhealthy: dict[str, str] = {}
        self._loaded: list[Ring] = []
        self._pages: RingsToPlan | None = None
        self._revisions: dict[str, int] = {}
        self._planned = Plan(dt.datetime.min.replace(tzinfo=dt.UTC), ())
        self._snapshot: dict[str, Ring] = {}
        #: messages per version of each planned ring (read once per run, for max_messages)
        self._ring_counts: dict[str, dict[int, int]] = {}
        self._count_cache: dict[str, dict[int, int]] = {}
        self._lease_taken = 0.0
        #: (ring, version) whose material this run's health check opened and matched
        self._opened: set[tuple[str, int]] = set()

    # ---- planning ---------------------------------------------------------------------------

    def _rings(self, only: Sequence[str] | None) -> list[Ring]:
        store = self.manager.store
        if not only:
            return store.load_rings()
        rings = []
        for name in only:
            if name.startswith(TRANSIT_PREFIX):
                continue
            ring = store.load_ring(name)
            if ring is None:
                raise NotFoundError(f"no ring named {name!r}")
            rings.append(ring)
        return rings

    def plan(self, now: dt.datetime, only: Sequence[str] | None = None) -> tuple[Plan, int]:
        # On a large store only the rings that may be due are loaded (keylife.rotation.schedule),
        # a page at a time: the run keeps the due ones (keylife.rotation.paging)
        found = (
            None if only else schedule.rings_to_plan(self.manager.store, self.manager.policy, now)
        )
        self._pages = found
        if found is None:
            rings = self._rings(only)
            cache, policy = self._count_cache, self.manager.policy  # read once per run
            cache.update(prefetch_counts(self.manager.store, policy, rings, known=cache))
            paged = plan_pages([rings], self.manager.policy, now, self._counts)
        else:
            paged = plan_pages(found.pages(), self.manager.policy, now, self._counts)
        self._loaded, self._revisions = list(paged.due.values()), paged.revisions
        self._snapshot, self.damaged = paged.due, paged.damaged
        self._ring_counts = paged.counts
        plan = self._planned = paged.plan
        quiet = {} if found is None else found.quiet
        checked = len(paged.revisions)
        if found is None:
            self._loaded = rings
        if quiet:
            plan = Plan(now, plan.steps, {**quiet, **plan.next_due})
        transit_steps, transit_due = self._plan_transit(now, only)
        if not transit_due:
            return plan, checked + len(quiet)
        return (
            Plan(now, (*plan.steps, *transit_steps), {**plan.next_due, **transit_due}),
            checked + len(quiet) + len(transit_due),
        )

    # ---- transit-resident rings (keys that never leave Vault) --------------------------------

    def _transit(self) -> Any:
        factory = getattr(self.manager.store, "transit_rings", None)
        if not callable(factory):
            return None
        m = self.manager
        return factory(actor=m.actor, clock=m.clock, policy=m.policy)

    def _plan_transit(
        self, now: dt.datetime, only: Sequence[str] | None
    ) -> tuple[list[Step], dict[str, dt.datetime | None]]:
        rings = self._transit()
        if rings is None:
            return [], {}
        names = rings.names()
        if only:
            wanted = {n.removeprefix(TRANSIT_PREFIX) for n in only if n.startswith(TRANSIT_PREFIX)}
            missing = wanted - set(names)
            if missing:
                raise NotFoundError(f"no transit-resident ring named {sorted(missing)[0]!r}")
            names = [n for n in names if n in wanted]
        steps: list[Step] = []
        due: dict[str, dt.datetime | None] = {}
        for name in names:
            try:
                ring = rings.load(name)
            except StoreUnavailableError:
                raise
            except KeylifeError as exc:  # one malformed record fails that ring only
                self.damaged[TRANSIT_PREFIX + name] = str(exc)
                continue
            found, nxt = plan_ring(ring, self.manager.policy, now)
            due[TRANSIT_PREFIX + name] = nxt
            steps += [replace(s, ring=TRANSIT_PREFIX + name) for s in found]
        return steps, due

    def _run_transit(self, name: str, now: dt.datetime) -> RingResult:
        rings = self._transit()
        assert rings is not None
        short = name.removeprefix(TRANSIT_PREFIX)

        def plan() -> tuple[list[Step], dt.datetime | None]:
            return plan_ring(rings.load(short), self.manager.policy, now)

        def apply(step: Step) -> int | None:
            new: int | None = rings.apply(short, step, now)
            return new

        return settle(name, plan, apply, once=frozenset())

    # ---- the lease --------------------------------------------------------------------------

    def _acquire(self) -> None:
        deadline = time.monotonic() + self.wait
        while True:
            wall = self.manager.clock.now()
            store = self.manager.store
            if store.acquire_lease(LEASE_NAME, self.holder, self.lease_ttl, wall):
                self._lease_taken = time.monotonic()
                return
            current = store.read_lease(LEASE_NAME)
            if current is not None and holder_is_dead(current.holder):
                log.warning("taking over the lock of dead run %s", current.holder)
                if store.acquire_lease(
                    LEASE_NAME, self.holder, self.lease_ttl, wall, takeover_from=current.holder
                ):
                    self._lease_taken = time.monotonic()
                    return
            if time.monotonic() >= deadline:
                raise LockHeldError(
                    "another `keylife rotate` run holds the lock on this store; it lapses "
                    f"{int(self.lease_ttl.total_seconds())} s after its holder last renewed it"
                )
            time.sleep(0.2)

    def request_stop(self, reason: str) -> None:
        """Stop after the ring in progress (its commit completes)."""
        self._stop_reason = self._stop_reason or reason

    def _stop_check(self, started: float) -> str:
        if self._stop_reason or self.deadline is None:
            return self._stop_reason
        late = time.monotonic() - started > self.deadline
        return f"the run's deadline of {self.deadline:g} s passed" if late else ""

    def _on_signals(self) -> Callable[[], None]:
        """SIGTERM/SIGINT stop the run after this ring (main thread); returns the undo."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        stop = lambda n, _f: self.request_stop(f"stopped by {signal.Signals(n).name}")  # noqa: E731
        saved = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for sig, old in saved.items():
                signal.signal(sig, old)

        return restore

    def _renew_if_needed(self) -> None:
        if time.monotonic() - self._lease_taken > self.lease_ttl.total_seconds() / 3:
            self._acquire()

    # ---- running ----------------------------------------------------------------------------

    def run(
        self,
        *,
        now: dt.datetime | None = None,
        rings: Sequence[str] | None = None,
        dry_run: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> RunReport:
        """Plan for ``now`` (default: the manager's clock) and, unless ``dry_run``, apply it."""
        as_of = as_utc(now) if now is not None else self.manager.now()
        self._count_cache = {}
        plan, checked = self.plan(as_of, rings)
        if dry_run or not plan:
            aborted = self._check_health(as_of, record=not dry_run)
            results = tuple(
                RingResult(
                    name,
                    "planned",
                    tuple(
                        StepResult(s.kind.value, s.version, "planned", s.reason)
                        for s in plan.for_ring(name)
                    ),
                    next_due=plan.next_due.get(name),
                )
                for name in plan.rings
            )
            broken = results + self._broken()
            return RunReport(as_of, dry_run, broken, checked, plan.next_due, aborted)
        started, restore = time.monotonic(), self._on_signals()
        try:
            self._acquire()
            # Re-plan under the lease: a run that finished just before us changed the store,
            # with its own clock; unless a moment was asked for, plan for now, not for when
            # this run started waiting.
            if now is None:
                as_of = max(as_of, self.manager.now())
            plan, checked = self.plan(as_of, rings)
            aborted = self._check_health(as_of, record=True)
            todo = [n for n in plan.rings if n not in self.unhealthy]  # unhealthy: failed below
            applied, stopped = apply_rings(
                todo,
                lambda name: self._run_ring(name, as_of),
                concurrency=self.concurrency,
                stop=lambda: aborted or self._stop_check(started),
                renew=self._renew_if_needed,
                progress=progress,
            )
            aborted = aborted or stopped
        finally:
            try:
                self.manager.store.release_lease(LEASE_NAME, self.holder)
            except KeylifeError as exc:  # the lease lapses by itself
                log.warning("could not release the rotation lease: %s", exc)
            restore()
        next_due = dict(plan.next_due)
        for r in applied:
            next_due[r.ring] = r.next_due
        report = RunReport(as_of, False, (*applied, *self._broken()), checked, next_due, aborted)
        self._record_run(report)
        return report

    def _record_run(self, report: RunReport) -> None:
        """One audit record per applied run: the policy in force (by digest) and the outcome."""
        policy = self.manager.policy
        why = (
            f"policy {policy.source} {policy_digest(policy)}: {report.count('succeeded')} "
            f"succeeded, {report.count('failed')} failed, {report.count('skipped')} skipped"
        )
        outcome = "success" if report.ok else "failure: " + (report.aborted or "rings failed")
        with contextlib.suppress(KeylifeError):  # the run's own records are what matters
            self.manager.store.append_audit(
                [self.manager.entry("rotate-run", None, None, why, outcome=outcome)]
            )

    def _check_health(self, now: dt.datetime, *, record: bool) -> str:
        """Check the keys in use of every ring the plan read, due or not; the reason to stop
        when the store went away meanwhile."""
        self.unhealthy = {}
        self._opened = set()

        def check(ring: Ring) -> str | StoreUnavailableError:
            try:
                return check_ring(self.manager, ring, now)
            except StoreUnavailableError as exc:
                return exc

        found = self._pages
        pages = [self._loaded] if found is None else replanned_pages(found.pages(), self._revisions)
        for page in pages:
            stopped = self._check_page(page, check, now, record=record)
            if stopped:
                return stopped
        return ""

    def _check_page(
        self,
        page: list[Ring],
        check: Callable[[Ring], str | StoreUnavailableError],
        now: dt.datetime,
        *,
        record: bool,
    ) -> str:
        for ring, problem in zip(page, map_rings(check, page, self.concurrency), strict=True):
            if isinstance(problem, StoreUnavailableError):
                log.error("store unavailable, stopping the run: %s", problem)
                return str(problem)
            if problem:
                log.error("%s: %s", ring.name, problem)
                self.unhealthy[ring.name] = problem
                if record:
                    self.manager.record_failure("rotate", ring.name, None, KeylifeError(problem))
            elif ring.name in self._snapshot and not is_transit_resident(ring):
                self._opened |= {(ring.name, v.number) for v in versions_to_check(ring, now)}
        if record:  # what was planned quiet and is healthy need not be loaded next run
            m = self.manager
            schedule.remember(m.store, m.policy, now, page, self._planned, self.unhealthy)
        return ""

    def _broken(self) -> tuple[RingResult, ...]:
        return tuple(
            RingResult(name, "failed", error=f"ring record is damaged: {why}")
            for name, why in sorted(self.damaged.items())
        ) + tuple(
            RingResult(name, "failed", error=why) for name, why in sorted(self.unhealthy.items())
        )

    def _run_ring(self, name: str, now: dt.datetime) -> RingResult:
        if name.startswith(TRANSIT_PREFIX):
            return self._run_transit(name, now)
        view = self.manager.at(FixedClock(now))
        first = self._snapshot.get(name)
        cached = getattr(view.store, "cached_ring", None)
        current: list[Ring] = []

        def plan() -> tuple[list[Step], dt.datetime | None]:
            # The ring as planned under the lease, then as this run's own commit left it (a
            # store that remembers it, Vault: no read); otherwise read again. A copy that is
            # stale only costs a lost check-and-set, after which the ring is read again.
            ring = first if not current else None
            if current and callable(cached):
                ring = cached(name)
            current[:] = [ring if ring is not None else view.load(name)]
            counts = self._ring_counts.get(name)
            if counts is None:
                counts = self._counts(current[0])
            return plan_ring(current[0], view.policy, now, counts)

        def apply(step: Step) -> int | None:
            return self._apply(view, current[0], step, now)

        def record(exc: KeylifeError) -> None:
            view.record_failure("rotate", name, None, exc)

        # The CA's answer (dates, clock skew) may make a renewal look due again at once; one
        # conversation with the CA per ring and run is enough, the next run looks again.
        return settle(name, plan, apply, once=_ONCE_PER_RUN, on_failure=record)

    def _counts(self, ring: Ring) -> dict[int, int]:
        """Messages per version of ``ring``, read only where ``max_messages`` applies, once
        per run: the plan before the lease, the plan under it and the rotation's own check
        see the same counts (counts only grow; the next run sees what came since)."""
        found = self._count_cache.get(ring.name)
        if found is None:
            found = self._count_cache[ring.name] = counts_for(
                self.manager.store, self.manager.policy, ring
            )
        return found

    def _apply(self, view: KeyManager, ring: Ring, step: Step, now: dt.datetime) -> int | None:
        """Apply one planned step through the same manager operations an operator uses."""
        kind = step.kind
        if kind in _TRANSITION_OF:
            assert step.version is not None
            view.transition(
                ring.name,
                step.version,
                _TRANSITION_OF[kind],
                reason=step.reason,
                if_needed=True,
                loaded=ring,
            )
            return None
        if kind in (StepKind.ROTATE, StepKind.STAGE):
            self._check_readable(view, ring, now, self._opened)
            stage = view.policy.rules(Purpose(ring.purpose)).stage
            version = view.rotate(
                ring.name,
                reason=step.reason,
                stage=stage if kind is StepKind.STAGE else None,
                loaded=ring,
                only_if_due=True,
                counts=self._counts(ring),
            )
            return version.number
        if kind is StepKind.RENEW_CERTIFICATE:
            # The CA dates the certificate by its own clock, after the run's `now`: store it
            # with the wall clock (or the run's moment, if that is later) so a certificate
            # valid from "just now" is active at once rather than pre-active until next run.
            wall = self.manager.now()
            issuer = view if now > wall else self.manager
            return issuer.renew_certificate(ring.name).number
        if kind is StepKind.ROLLOVER_ACCOUNT:
            return view.rollover_account(ring.name)
        assert step.version is not None
        if kind is StepKind.REFRESH_RENEWAL_INFO:
            view.refresh_renewal_info(ring.name, step.version)
            return None
        if kind is StepKind.REVOKE_CERTIFICATE:
            view.revoke_certificate(ring.name, step.version)
            return None
        raise KeylifeError(f"unknown step {kind}")  # pragma: no cover

    @staticmethod
    def _check_readable(
        view: KeyManager, ring: Ring, now: dt.datetime, opened: set[tuple[str, int]]
    ) -> None:
        """Every version that still processes must open; otherwise data would be unreadable
        (``opened``: versions this run's health check already opened)."""
        grace = view.policy.rules(Purpose(ring.purpose)).grace_period
        for v in ring.versions:
            if v.processes_at(now, grace) and (ring.name, v.number) not in opened:
                RingWriter.material(view, v)


_TRANSITION_OF = {
    StepKind.ACTIVATE: Action.ACTIVATE,
    StepKind.DEACTIVATE: Action.DEACTIVATE,
    StepKind.DESTROY: Action.DESTROY,
}


def run(
    manager: KeyManager,
    *,
    now: dt.datetime | None = None,
    rings: Sequence[str] | None = None,
    dry_run: bool = False,
    lease_ttl: dt.timedelta = dt.timedelta(minutes=10),
    wait: float = 0.0,
    concurrency: int | None = None,
) -> RunReport:
    """Plan and apply everything due (the library form of ``keylife rotate``);
    ``concurrency``: rings applied at once (default: the store's, 16 on Vault, else 1)."""
    runner = Runner(manager, lease_ttl=lease_ttl, wait=wait, concurrency=concurrency)
    return runner.run(now=now, rings=rings, dry_run=dry_run)
