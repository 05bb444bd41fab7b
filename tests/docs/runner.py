"""Run a Markdown page's fenced examples as a reader would: top to bottom, in a fresh home.

Each page runs in its own temporary directory with an empty ``HOME`` and an environment of
``PATH`` and ``HOME`` only; nothing else is injected (no names, no variables, no files). The
page's working directory is an empty directory next to that home.

- ```` ```python ```` blocks run, in order, in **one** fresh interpreter (``python -c`` with an
  empty ``__main__`` namespace), as if pasted into one session;
- ```` ```sh ```` / ```` ```bash ```` blocks run as one ``bash -e`` script each and must exit 0;
- ```` ```console ```` blocks are sessions: each ``$ COMMAND`` runs in one bash per block (so
  ``cd`` and ``export`` carry to the next command of the block), must exit 0 unless the line
  ends with ``# exit N``, and every following line without ``$`` must appear in its output
  (``...`` marks a part that varies);
- every other block (``text``, ``toml``, ``ini``, ``cron``, ``yaml``, ``hcl``, ``json``) is
  shown, not run. A fence without a language is refused: illustration is ```` ```text ````.

Shell blocks run in their own process group; a page that leaves a process running after its
last block (a server it forgot to stop) fails, and the runner then stops that group.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```([^\s`]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
RUN = {"python", "sh", "bash", "console"}
SHOWN = {"text", "toml", "ini", "cron", "yaml", "hcl", "json"}
BLOCK_TIMEOUT = 180.0
EXIT = re.compile(r"\s+#\s*exit (\d+)\s*$")

# The interpreter side: an empty namespace, one block per control message.
DRIVER = """
import json, os, sys, traceback
_in, _out = os.fdopen(int(sys.argv[1]), "r"), os.fdopen(int(sys.argv[2]), "w")
_ns = {"__name__": "__main__", "__builtins__": __builtins__}
for _line in _in:
    _msg = json.loads(_line)
    try:
        exec(compile(_msg["code"], _msg["label"], "exec"), _ns)
        _res = {"ok": True}
    except BaseException:
        _res = {"ok": False, "error": traceback.format_exc()}
    sys.stdout.flush(); sys.stderr.flush()
    _out.write(json.dumps(_res) + "\\n"); _out.flush()
"""


@dataclass
class Block:
    lang: str
    body: str
    line: int


def blocks(text: str) -> list[Block]:
    """Every fenced block of a Markdown text, in order, with its first line number."""
    return [
        Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
        for m in FENCE.finditer(text)
    ]


def runnable(text: str) -> bool:
    return any(b.lang in RUN for b in blocks(text))


@dataclass
class Step:
    command: str
    code: int
    expected: list[str] = field(default_factory=list)


def session(body: str) -> list[Step]:
    """The ``$`` commands of a console block (a line ending in ``\\`` continues), their
    expected exit codes (``# exit N`` at the end) and expected output lines."""
    steps: list[Step] = []
    continuing = False
    for line in body.splitlines():
        if continuing:
            steps[-1].command += "\n" + line
            continuing = line.endswith("\\")
        elif line.startswith("$ "):
            steps.append(Step(line[2:], 0))
            continuing = line.endswith("\\")
        elif steps and line.strip():
            steps[-1].expected.append(line)
    for step in steps:
        m = EXIT.search(step.command)
        if m:
            step.code, step.command = int(m.group(1)), step.command[: m.start()]
    return steps


def search_path() -> str:
    """PATH for the page: the interpreter's bin directory first (keylife, bao, mkdocs)."""
    extra = ["/usr/local/bin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/sbin", "/sbin"]
    return ":".join([str(Path(sys.executable).parent), *extra])


class PageRun:
    """One page's run: its home, working directory, interpreter and process groups."""

    stop_grace = 10.0  # seconds a stopped server may take to exit after the last block

    def __init__(self, page: Path, base: Path) -> None:
        self.page = page
        self.home = base / "home"
        self.cwd = base / "work"
        self.logs = base / "runner"
        for d in (self.home, self.cwd, self.logs):
            d.mkdir(parents=True)
        self.env = {"PATH": search_path(), "HOME": str(self.home)}
        self.groups: list[int] = []
        self.python: subprocess.Popen[bytes] | None = None
        self.counter = 0

    # -- python -------------------------------------------------------------------------
    def _start_python(self) -> None:
        ctl_r, self._ctl_w = os.pipe()
        self._res_r, res_w = os.pipe()
        self._py_log = self.logs / "python.out"
        with self._py_log.open("wb") as log:
            self.python = subprocess.Popen(
                [sys.executable, "-c", DRIVER, str(ctl_r), str(res_w)],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(ctl_r, res_w),
            )
        os.close(ctl_r)
        os.close(res_w)

    def run_python(self, block: Block) -> None:
        if self.python is None:
            self._start_python()
        label = f"{self.page.name} line {block.line}"
        os.write(self._ctl_w, (json.dumps({"code": block.body, "label": label}) + "\n").encode())
        line = self._read_result(BLOCK_TIMEOUT)
        result = json.loads(line)
        if not result["ok"]:
            raise AssertionError(
                f"{label}: python block failed\n{result['error']}\n"
                f"--- output so far ---\n{self._py_log.read_text()[-4000:]}"
            )

    def _read_result(self, timeout: float) -> str:
        buf = b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self._res_r, selectors.EVENT_READ)
            while not buf.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise AssertionError(f"{self.page.name}: python block ran over {timeout} s")
                chunk = os.read(self._res_r, 65536)
                if not chunk:
                    out = self._py_log.read_text()[-4000:]
                    raise AssertionError(f"{self.page.name}: the interpreter died\n{out}")
                buf += chunk
        return buf.decode()

    # -- shell --------------------------------------------------------------------------
    def _bash(self, script: str, what: str) -> tuple[int, str]:
        self.counter += 1
        path = self.logs / f"block{self.counter}.sh"
        out = self.logs / f"block{self.counter}.out"
        path.write_text(script)
        with out.open("wb") as log:
            proc = subprocess.Popen(
                ["bash", str(path)],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.groups.append(proc.pid)
        try:
            code = proc.wait(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill_group(proc.pid)
            proc.wait()
            raise AssertionError(f"{what} ran over {BLOCK_TIMEOUT} s") from None
        return code, out.read_text(errors="replace")

    def run_sh(self, block: Block) -> None:
        what = f"{self.page.name} line {block.line}: sh block"
        code, output = self._bash("set -e\n" + block.body, what)
        assert code == 0, f"{what} exited {code}\n{output}"

    def run_console(self, block: Block) -> None:
        steps = session(block.body)
        assert steps, f"{self.page.name} line {block.line}: console block without `$` commands"
        lines = ["set +e"]
        for i, step in enumerate(steps):
            out, rc = self.logs / f"c{self.counter}-{i}.out", self.logs / f"c{self.counter}-{i}.rc"
            lines.append(f"{{ {step.command}\n}} >{out} 2>&1 </dev/null; echo $? >{rc}")
        what = f"{self.page.name} line {block.line}: console block"
        code, output = self._bash("\n".join(lines) + "\n", what)
        assert code == 0, f"{what}: the session itself failed ({code})\n{output}"
        n = self.counter - 1
        for i, step in enumerate(steps):
            out_path = self.logs / f"c{n}-{i}.out"
            rc_path = self.logs / f"c{n}-{i}.rc"
            assert rc_path.exists(), f"{what}: `{step.command}` never ran (an earlier exit?)"
            got = int(rc_path.read_text())
            output = out_path.read_text(errors="replace")
            assert got == step.code, (
                f"{what}: `{step.command}` exited {got}, not {step.code}\n{output}"
            )
            for line in step.expected:
                for part in line.split("..."):
                    assert part.strip() in output, (
                        f"{what}: `{step.command}` lacks {part.strip()!r}\n{output}"
                    )

    # -- the page -----------------------------------------------------------------------
    def run(self) -> None:
        text = self.page.read_text()
        try:
            for block in blocks(text):
                if block.lang == "python":
                    self.run_python(block)
                elif block.lang in ("sh", "bash"):
                    self.run_sh(block)
                elif block.lang == "console":
                    self.run_console(block)
                else:
                    assert block.lang in SHOWN, (
                        f"{self.page.name} line {block.line}: fence language {block.lang!r} "
                        f"is neither run ({sorted(RUN)}) nor shown ({sorted(SHOWN)}); "
                        "use ```text for illustration"
                    )
            self._stop_python()
            deadline = time.monotonic() + self.stop_grace
            while any(self._alive(g) for g in self.groups) and time.monotonic() < deadline:
                time.sleep(0.1)
            left = [g for g in self.groups if self._alive(g)]
            assert not left, f"{self.page.name}: processes still running after the last block"
        finally:
            self.close()

    def _stop_python(self) -> None:
        if self.python is not None:
            os.close(self._ctl_w)
            try:
                self.python.wait(timeout=30)
            finally:
                if self.python.poll() is None:
                    self.python.kill()
                    self.python.wait()
                os.close(self._res_r)
                self.python = None

    @staticmethod
    def _alive(pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _kill_group(self, pgid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while self._alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    def close(self) -> None:
        if self.python is not None:
            self.python.kill()
            self.python.wait()
            with contextlib.suppress(OSError):
                os.close(self._ctl_w)
            with contextlib.suppress(OSError):
                os.close(self._res_r)
            self.python = None
        for pgid in self.groups:
            if self._alive(pgid):
                self._kill_group(pgid)
