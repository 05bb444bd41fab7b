"""Losing a check-and-set race to another writer: how often, for how long and after what wait
to try again. Every check-and-set loop in keylife waits with :func:`cas_backoff`; the ring
writer (:mod:`keylife.writer`) also bounds its attempts with :func:`cas_attempts`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

__all__ = ["CAS_PATIENCE", "CAS_RETRIES", "cas_attempts", "cas_backoff"]

#: A ring write that loses to concurrent writers is tried again at least ``CAS_RETRIES``
#: times, and on until ``CAS_PATIENCE`` seconds have passed since the first try: on a loaded
#: machine, where reading, computing and writing take longer, a writer can lose eight times in
#: a row to others rotating the same ring (seen with four processes on two busy cores), and a
#: caller would rather wait a few seconds than be told to try again.
CAS_RETRIES = 8
CAS_PATIENCE = 10.0


def cas_attempts() -> Iterator[int]:
    """Attempt numbers for a check-and-set loop: at least :data:`CAS_RETRIES`, more while
    :data:`CAS_PATIENCE` seconds have not passed since the first."""
    deadline = time.monotonic() + CAS_PATIENCE
    attempt = 0
    while attempt < CAS_RETRIES or time.monotonic() < deadline:
        yield attempt
        attempt += 1


def cas_backoff(attempt: int, *, first: float = 0.005, cap: float = 0.4) -> None:
    """Wait before the attempt after ``attempt`` (0 for the first): writers that lost
    together must not retry in lock-step, so a random wait of up to ``first`` seconds,
    doubling with each attempt, at most ``cap``."""
    time.sleep(random.uniform(0, min(cap, first * 2**attempt)))
