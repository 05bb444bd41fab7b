"""Issuance time against Pebble: ``keylife cert issue`` vs ``certbot certonly``, same run.

Usage: python benchmarks/bench_acme.py [--runs N] [--certbot PATH]

Starts pebble-challtestsrv (DNS only) and Pebble on free 127.0.0.1 ports with
PEBBLE_VA_NOSLEEP=1, PEBBLE_WFE_NONCEREJECT=0, PEBBLE_AUTHZREUSE=0, a trustme listener
certificate, then times, per run and each with a fresh account/config directory:

- keylife CLI (a new process, store created, account registered) for http-01 standalone,
  dns-01 (base + wildcard, hook command) and tls-alpn-01 standalone (Pebble's tlsPort);
- keylife as a library call (in-process; account registered each time), the same three;
- certbot certonly --standalone and --manual with the same dns hook script (certbot has no
  tls-alpn-01 plugin);
- the read-only commands on a store holding every ring the CLI runs issued:
  ``keylife cert list``, ``cert show`` and ``cert renew`` with nothing due.

certbot is not a keylife dependency: install it in a throwaway venv, e.g.
``python3 -m venv /tmp/certbot-venv && /tmp/certbot-venv/bin/pip install certbot``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import trustme

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    took = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return took


MODES = ("http-01", "dns-01", "tls-alpn-01")


@dataclass
class Bench:
    work: Path
    directory: str
    ca_pem: str
    roots: str
    http_port: int
    tls_port: int
    hook: Path
    env: dict[str, str]
    results: dict[str, list[float]] = field(default_factory=dict)

    def record(self, name: str, seconds: float) -> None:
        self.results.setdefault(name, []).append(seconds)

    def keylife(self, store: Path, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "keylife_cli",
            "--store",
            str(store / "keylife.db"),
            "--master-key-file",
            str(store / "master.key"),
            *args,
        ]

    def names(self, prefix: str, mode: str) -> list[str]:
        if mode == "dns-01":
            return [f"{prefix}.example.com", f"*.{prefix}.example.com"]
        return [f"{prefix}.example.com"]

    def challenge_args(self, mode: str) -> list[str]:
        if mode == "http-01":
            return ["--http-port", str(self.http_port), "--http-address", "127.0.0.1"]
        if mode == "tls-alpn-01":
            return [
                "--challenge",
                mode,
                "--tls-port",
                str(self.tls_port),
                "--tls-address",
                "127.0.0.1",
            ]
        return [
            "--challenge",
            "dns-01",
            "--dns-hook",
            f"{self.hook} auth",
            "--dns-cleanup-hook",
            f"{self.hook} cleanup",
        ]

    def cli_issue(self, run: int, mode: str, store: Path, *, ring: str = "web") -> float:
        domains = [x for name in self.names(f"k{mode[:3]}{run}", mode) for x in ("--domain", name)]
        cmd = self.keylife(
            store,
            "cert",
            "issue",
            ring,
            *domains,
            "--directory",
            self.directory,
            "--ca-bundle",
            self.ca_pem,
            "--trust-roots",
            self.roots,
            "--agree-tos",
            *self.challenge_args(mode),
        )
        return timed(cmd, self.env)

    def library_issue(self, run: int, mode: str) -> None:
        from keylife.acme import (
            AcmeClient,
            ChallengeSolver,
            DnsHook01,
            StandaloneHttp01,
            StandaloneTlsAlpn01,
            generate_private_key,
        )

        solver: ChallengeSolver
        if mode == "http-01":
            solver = StandaloneHttp01(self.http_port, "127.0.0.1")
        elif mode == "tls-alpn-01":
            solver = StandaloneTlsAlpn01(self.tls_port, "127.0.0.1")
        else:
            solver = DnsHook01(f"{self.hook} auth", f"{self.hook} cleanup")
        start = time.monotonic()
        with AcmeClient(
            self.directory, generate_private_key(), ca_bundle=self.ca_pem, trust_roots=self.roots
        ) as client:
            client.register(agree_tos=True)
            client.issue(self.names(f"l{mode[:3]}{run}", mode), generate_private_key(), solver)
        self.record(f"keylife library AcmeClient.issue, {mode}", time.monotonic() - start)

    def certbot_issue(self, certbot: str, run: int, mode: str) -> None:
        cdir = self.work / f"cb-{mode}-{run}"
        cmd = [
            certbot,
            "certonly",
            "--config-dir",
            str(cdir / "config"),
            "--work-dir",
            str(cdir / "work"),
            "--logs-dir",
            str(cdir / "logs"),
            "--server",
            self.directory,
            "--agree-tos",
            "--register-unsafely-without-email",
            "--non-interactive",
            "--no-random-sleep-on-renew",
        ]
        if mode == "http-01":
            cmd += ["--standalone", "--http-01-port", str(self.http_port)]
            cmd += ["--http-01-address", "127.0.0.1"]
        else:
            cmd += ["--manual", "--preferred-challenges", "dns"]
            cmd += ["--manual-auth-hook", f"{self.hook} auth"]
            cmd += ["--manual-cleanup-hook", f"{self.hook} cleanup"]
        for name in self.names(f"c{mode[:3]}{run}", mode):
            cmd += ["-d", name]
        cenv = {**os.environ, "REQUESTS_CA_BUNDLE": self.ca_pem}
        self.record(f"certbot certonly, {mode}", timed(cmd, cenv))

    def read_only(self, runs: int) -> None:
        """cert list / show / renew (nothing due) on one store holding ``runs`` certificate
        rings (issued untimed, http-01)."""
        store = self.work / "kl-read-only"
        for n in range(runs):
            self.cli_issue(1000 + n, "http-01", store, ring=f"web-{n}")
        for _ in range(runs):
            for label, args in (
                (f"keylife cert list ({runs} rings)", ["cert", "list"]),
                ("keylife cert show", ["cert", "show", "web-0"]),
                ("keylife cert renew (nothing due)", ["cert", "renew", "web-0"]),
            ):
                self.record(label, timed(self.keylife(store, *args), self.env))

    def report(self) -> None:
        print("| flow | median | range | runs |\n|---|---|---|---|")
        for name, values in self.results.items():
            print(
                f"| {name} | {statistics.median(values):.2f} s | "
                f"{min(values):.2f}-{max(values):.2f} | {len(values)} |"
            )
        for mode in ("http-01", "dns-01"):
            cb = self.results.get(f"certbot certonly, {mode}")
            kl = self.results.get(f"keylife cert issue (CLI), {mode}")
            if cb and kl:
                ratio = statistics.median(kl) / statistics.median(cb)
                print(f"{mode}: keylife CLI / certbot = {ratio:.2f}")


def dns_hook(work: Path, mgmt: int) -> Path:
    hook = work / "dns_hook.sh"
    hook.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = auth ]; then\n'
        f'  curl -sf -X POST -d "{{\\"host\\":\\"_acme-challenge.$CERTBOT_DOMAIN.\\",'
        f'\\"value\\":\\"$CERTBOT_VALIDATION\\"}}" http://127.0.0.1:{mgmt}/set-txt\n'
        "else\n"
        f'  curl -sf -X POST -d "{{\\"host\\":\\"_acme-challenge.$CERTBOT_DOMAIN.\\"}}"'
        f" http://127.0.0.1:{mgmt}/clear-txt\n"
        "fi\n"
    )
    hook.chmod(0o755)
    return hook


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--certbot", default="/tmp/certbot-venv/bin/certbot")
    args = parser.parse_args()

    # The test suite's launcher: the same Pebble and challtestsrv settings the tests use.
    sys.path.insert(0, str(ROOT))
    from tests.acme.conftest import PebbleLauncher, start_challtestsrv

    work = Path(tempfile.mkdtemp(prefix="keylife-bench-acme-"))
    dns = start_challtestsrv(work)
    launcher = PebbleLauncher(work, dns, trustme.CA())
    try:
        pebble = launcher.launch("pebble")
        bench = Bench(
            work=work,
            directory=pebble.directory_url,
            ca_pem=pebble.ca_bundle,
            roots=pebble.trust_roots,  # Pebble's issuing root: issued chains must verify to it
            http_port=pebble.http_port,
            tls_port=pebble.tls_port,
            hook=dns_hook(work, dns.management_port),
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        certbot = args.certbot if Path(args.certbot).exists() else shutil.which("certbot")
        for run in range(args.runs):
            for mode in MODES:
                # a fresh store each time: master key, store, account ring, registration
                took = bench.cli_issue(run, mode, work / f"kl-{mode}-{run}")
                bench.record(f"keylife cert issue (CLI), {mode}", took)
                bench.library_issue(run, mode)
                if certbot and mode != "tls-alpn-01":
                    bench.certbot_issue(certbot, run, mode)
        bench.read_only(args.runs)
        bench.report()
    finally:
        for proc in (*launcher.started, dns.proc):
            proc.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
