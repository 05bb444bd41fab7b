from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from keylife.report import Report, collect_report

from .store50 import build


@pytest.fixture(scope="module")
def store50(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store50")
    build(root / "k.db", root / "master.key").close()
    return root


@pytest.fixture(scope="module")
def report50(store50: Path) -> Report:
    import keylife
    from keylife.clock import FixedClock

    from .store50 import NOW

    m = keylife.open(
        str(store50 / "k.db"), master_key_file=store50 / "master.key", clock=FixedClock(NOW)
    )
    with m:
        return collect_report(m, as_of=dt.datetime(2031, 1, 1, tzinfo=dt.UTC))
