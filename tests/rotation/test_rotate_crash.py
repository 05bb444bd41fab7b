"""``keylife rotate`` killed with SIGKILL at many points of a multi-ring run.

Each time, the next run must converge to the same final state as an uninterrupted run, with no
version lost and at most one primary per ring.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import StoreEnv

RINGS = 9


def _structure(env: StoreEnv) -> dict[str, list[tuple[int, str]]]:
    with env.manager() as m:
        now = m.now()
        out = {}
        for ring in m.rings():
            primaries = [v for v in ring.versions if v.protects_at(now)]
            assert len(primaries) <= 1, ring.name
            for v in ring.versions:
                assert m.store.has_material(ring.name, v.number) == v.has_material
            out[ring.name] = [(v.number, v.state.value) for v in ring.versions]
        assert m.verify_audit().ok
        return out


def _clone(template: Path, dest: Path) -> StoreEnv:
    shutil.copytree(template, dest)
    return StoreEnv(dest)


@pytest.mark.slow
def test_sigkill_at_many_points_converges(tmp_path: Path) -> None:
    template = StoreEnv(tmp_path / "template")
    template.init()
    names = template.make_due(RINGS, spec="aes-256")

    reference = _clone(template.root, tmp_path / "reference")
    done = reference.run("rotate")
    assert done.returncode == 0, done.stderr
    expected = _structure(reference)
    assert set(expected) == set(names) and all(len(v) == 2 for v in expected.values())
    steps_total = 2 * RINGS

    points = [(k, offset) for k in range(steps_total) for offset in (0.0, 0.002, 0.008)]
    points += [(-1, 0.0)]  # before the first step
    assert len(points) >= 50
    killed_mid_run = 0
    for i, (after_lines, offset) in enumerate(points):
        env = _clone(template.root, tmp_path / f"run-{i}")
        proc = env.popen("-v", "rotate", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        seen = 0
        if after_lines >= 0:
            for line in proc.stderr:
                if " done (" in line:
                    seen += 1
                    if seen > after_lines:
                        break
        if offset:
            time.sleep(offset)
        proc.send_signal(signal.SIGKILL)
        proc.stderr.close()
        proc.wait(timeout=30)
        if proc.returncode == -signal.SIGKILL:
            killed_mid_run += 1
        recover = env.run("rotate")
        assert recover.returncode == 0, (i, recover.stdout, recover.stderr)
        assert _structure(env) == expected, (i, after_lines, offset)
        shutil.rmtree(env.root)
    assert killed_mid_run >= 50
