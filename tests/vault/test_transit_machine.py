"""Transit-resident rings run through the ordinary lifecycle: a Hypothesis state machine on a
real OpenBao dev server. The clock moves (a FixedClock); the ordinary planner's steps are applied
with ``TransitRings.apply`` and operators rotate, deactivate, compromise and destroy by hand.

After every step: each version only moved along the lifecycle's transition table, at most one
version protects, a ciphertext made under a version decrypts while that version is in its
processing window and never after it is destroyed or compromised, and Transit's floors are the
ones the states imply.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from keylife.clock import FixedClock
from keylife.errors import LifecycleError
from keylife.lifecycle import TRANSITIONS, State
from keylife.policy import DAY, DEFAULT_RULES, Policy, Purpose, PurposeRules
from keylife.rotation.plan import plan_ring
from keylife.vault import VaultKeyStore
from keylife.vault.transit_doc import GONE, floors
from tests.vault.conftest import DevServer
from tests.vault.test_transit_keys import decrypt, encrypt, key_info

pytestmark = pytest.mark.vault

RULES = PurposeRules(30 * DAY, 5 * DAY, 7 * DAY, "aes-256", destroy_after=10 * DAY)
POLICY = Policy(purposes={**DEFAULT_RULES, Purpose.DATA_ENCRYPTION: RULES})


def _reachable(start: State) -> set[State]:
    seen, todo = {start}, [start]
    while todo:
        state = todo.pop()
        for (frm, _action), to in TRANSITIONS.items():
            if frm is state and to not in seen:
                seen.add(to)
                todo.append(to)
    return seen


REACHABLE = {s: _reachable(s) for s in State}


def test_transit_rings_follow_the_lifecycle(
    vault_store: VaultKeyStore, vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    transit = mounts[1]

    class TransitMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.clock = FixedClock(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
            self.rings = vault_store.transit_rings(actor="sm", clock=self.clock, policy=POLICY)
            self.name = f"sm-{uuid.uuid4().hex[:8]}"
            self.key = f"kl-{self.name}"
            self.rings.create(self.name)
            self.states: dict[int, State] = {1: State.ACTIVE}
            self.cts: dict[int, str] = {}
            self._seal()

        def _seal(self) -> None:
            """Encrypt under the version Transit uses now (its newest), once per version."""
            ring = self.rings.load(self.name)
            newest = max(v.number for v in ring.versions)
            if newest not in self.cts:
                (ct,) = encrypt(vault_env, transit, self.key, [f"v{newest}".encode()])
                assert ct.startswith(f"vault:v{newest}:")
                self.cts[newest] = ct

        @rule(days=st.integers(0, 40))
        def advance(self, days: int) -> None:
            self.clock.advance(dt.timedelta(days=days))

        @rule()
        def run_planner(self) -> None:
            now = self.clock.now()
            for _ in range(16):
                steps, _due = plan_ring(self.rings.load(self.name), POLICY, now)
                if not steps:
                    break
                self.rings.apply(self.name, steps[0], now)
            else:
                raise AssertionError("the ring did not settle")
            self._seal()

        @rule()
        def rotate(self) -> None:
            self.rings.rotate(self.name, now=self.clock.now())
            self._seal()

        @rule(data=st.data(), action=st.sampled_from(["deactivate", "compromise", "destroy"]))
        def operator(self, data: Any, action: str) -> None:
            number = data.draw(st.integers(1, max(self.states)), label="version")
            # refused when not allowed from its state (or for the newest): nothing changes
            with contextlib.suppress(LifecycleError):
                getattr(self.rings, action)(self.name, number, now=self.clock.now())
            self._seal()

        @invariant()
        def only_transitions_and_one_primary(self) -> None:
            now = self.clock.now()
            ring = self.rings.load(self.name)
            numbers = [v.number for v in ring.versions]
            assert numbers == list(range(1, len(numbers) + 1))
            for v in ring.versions:
                before = self.states.get(v.number, State.PRE_ACTIVE)
                assert v.state in REACHABLE[before], (v.number, before, v.state)
                self.states[v.number] = v.state
            assert sum(1 for v in ring.versions if v.protects_at(now)) <= 1
            # Transit encrypts with its newest version: it is the one keylife keeps active
            assert [v.number for v in ring.versions if v.state is State.ACTIVE] in (
                [],
                [numbers[-1]],
            )

        @invariant()
        def decrypt_follows_the_states(self) -> None:
            now = self.clock.now()
            ring = self.rings.load(self.name)
            for number, ct in self.cts.items():
                v = ring.get(number)
                assert v is not None
                status, plain = decrypt(vault_env, transit, self.key, ct)
                if v.processes_at(now, RULES.grace_period):
                    assert (status, plain) == (200, f"v{number}".encode()), (number, v.state)
                if v.state in GONE:
                    assert status == 400, (number, v.state)

        @invariant()
        def transit_floors_match(self) -> None:
            ring = self.rings.load(self.name)
            info = key_info(vault_env, transit, self.key)
            dec, enc = floors(ring)
            assert info["min_decryption_version"] == dec
            assert info["min_encryption_version"] == enc or len(ring.versions) == 1

    run_state_machine_as_test(
        TransitMachine,
        settings=settings(
            max_examples=15,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
