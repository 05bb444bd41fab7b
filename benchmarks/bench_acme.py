"""Issuance time against Pebble: ``keylife cert issue`` vs ``certbot certonly``, same run.

Usage: python benchmarks/bench_acme.py [--runs N] [--certbot PATH]

Starts pebble-challtestsrv (DNS only) and Pebble on free 127.0.0.1 ports with
PEBBLE_VA_NOSLEEP=1, PEBBLE_WFE_NONCEREJECT=0, PEBBLE_AUTHZREUSE=0, a trustme listener
certificate, then times, per run and each with a fresh account/config directory:

- keylife CLI (a new process, store created, account registered) for http-01 standalone and
  dns-01 (base + wildcard, hook command);
- keylife as a library call (in-process; account registered each time);
- certbot certonly --standalone and --manual with the same dns hook script.

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
        directory, http_port, mgmt = pebble.directory_url, pebble.http_port, dns.management_port
        ca_pem = pebble.ca_bundle
        roots = pebble.trust_roots  # Pebble's issuing root: issued chains must verify to it
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

        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        results: dict[str, list[float]] = {}

        def record(name: str, seconds: float) -> None:
            results.setdefault(name, []).append(seconds)

        certbot = args.certbot if Path(args.certbot).exists() else shutil.which("certbot")
        from keylife.acme import AcmeClient, DnsHook01, StandaloneHttp01, generate_private_key

        for run in range(args.runs):
            # keylife CLI, fresh store each run (new process, store init, account, issue)
            for mode in ("http-01", "dns-01"):
                store = work / f"kl-{mode}-{run}"
                names = (
                    ["--domain", f"h{run}.example.com"]
                    if mode == "http-01"
                    else ["--domain", f"d{run}.example.com", "--domain", f"*.d{run}.example.com"]
                )
                extra = (
                    ["--http-port", str(http_port), "--http-address", "127.0.0.1"]
                    if mode == "http-01"
                    else [
                        "--challenge",
                        "dns-01",
                        "--dns-hook",
                        f"{hook} auth",
                        "--dns-cleanup-hook",
                        f"{hook} cleanup",
                    ]
                )
                cmd = [
                    sys.executable,
                    "-m",
                    "keylife_cli",
                    "--store",
                    str(store / "keylife.db"),
                    "--master-key-file",
                    str(store / "master.key"),
                    "cert",
                    "issue",
                    "web",
                    *names,
                    "--directory",
                    directory,
                    "--ca-bundle",
                    ca_pem,
                    "--trust-roots",
                    roots,
                    "--agree-tos",
                    *extra,
                ]
                record(f"keylife cert issue (CLI), {mode}", timed(cmd, env))
            # keylife library (in-process)
            for mode in ("http-01", "dns-01"):
                start = time.monotonic()
                with AcmeClient(
                    directory, generate_private_key(), ca_bundle=ca_pem, trust_roots=roots
                ) as c:
                    c.register(agree_tos=True)
                    if mode == "http-01":
                        c.issue(
                            [f"l{run}.example.com"],
                            generate_private_key(),
                            StandaloneHttp01(http_port, "127.0.0.1"),
                        )
                    else:
                        c.issue(
                            [f"ld{run}.example.com", f"*.ld{run}.example.com"],
                            generate_private_key(),
                            DnsHook01(f"{hook} auth", f"{hook} cleanup"),
                        )
                record(f"keylife library AcmeClient.issue, {mode}", time.monotonic() - start)
            if certbot:
                cenv = {**os.environ, "REQUESTS_CA_BUNDLE": ca_pem}
                for mode in ("http-01", "dns-01"):
                    cdir = work / f"cb-{mode}-{run}"
                    common = [
                        certbot,
                        "certonly",
                        "--config-dir",
                        str(cdir / "config"),
                        "--work-dir",
                        str(cdir / "work"),
                        "--logs-dir",
                        str(cdir / "logs"),
                        "--server",
                        directory,
                        "--agree-tos",
                        "--register-unsafely-without-email",
                        "--non-interactive",
                        "--no-random-sleep-on-renew",
                    ]
                    if mode == "http-01":
                        cmd = [
                            *common,
                            "--standalone",
                            "--http-01-port",
                            str(http_port),
                            "--http-01-address",
                            "127.0.0.1",
                            "-d",
                            f"c{run}.example.com",
                        ]
                    else:
                        cmd = [
                            *common,
                            "--manual",
                            "--preferred-challenges",
                            "dns",
                            "--manual-auth-hook",
                            f"{hook} auth",
                            "--manual-cleanup-hook",
                            f"{hook} cleanup",
                            "-d",
                            f"cd{run}.example.com",
                            "-d",
                            f"*.cd{run}.example.com",
                        ]
                    record(f"certbot certonly, {mode}", timed(cmd, cenv))

        lines = []
        for name, values in results.items():
            lines.append(
                f"| {name} | {statistics.median(values):.2f} s | "
                f"{min(values):.2f}-{max(values):.2f} | {len(values)} |"
            )
        print("| flow | median | range | runs |\n|---|---|---|---|")
        print("\n".join(lines))
        for mode in ("http-01", "dns-01"):
            cb = results.get(f"certbot certonly, {mode}")
            kl = results.get(f"keylife cert issue (CLI), {mode}")
            if cb and kl:
                ratio = statistics.median(kl) / statistics.median(cb)
                print(f"{mode}: keylife CLI / certbot = {ratio:.2f}")
    finally:
        for proc in (*launcher.started, dns.proc):
            proc.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
