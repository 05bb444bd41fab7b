"""`keylife tls check` versus sslyze on the same local endpoints, in the same run.

Starts the test suite's TLS peers (Python ssl servers, openssl s_server, the scripted legacy
server) on 127.0.0.1, then times one `keylife tls check` run and one `sslyze` run over all of
them, and compares what each flags. sslyze is NOT a keylife dependency: install it into a
throwaway virtualenv and pass its executable:

    python3 -m venv /tmp/sslyze-venv && /tmp/sslyze-venv/bin/pip install sslyze
    python benchmarks/bench_tls.py --sslyze /tmp/sslyze-venv/bin/sslyze [--repeat 3] [--write]

`--write` replaces benchmarks/RESULTS-tls.md with the tables printed (keeping its sections
from "# Fleet runs" on).

`--fleet N [--connections C]` instead serves N endpoints from one process (tests/tls/fleet_peers.py)
and times `keylife tls check --targets` against sslyze (`--sslyze` may be "PYTHON -m sslyze")
and a per-endpoint keylife run, and prints a section for RESULTS-tls.md.

`--hostile` (no sslyze needed) instead runs `keylife tls check` against each hostile server of
tests/hostile/test_tls_hostile_servers.py and prints wall time, peak RSS and the error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.tls import peers
from tests.tls.conftest import LEGACY_PEERS, OPENSSL_PEERS, PYTHON_PEERS

ENDPOINTS = [
    "strong", "strong-rsa", "tls13-only", "openssl-strong", "tls10-11", "null-suites",
    "anonymous-only", "rsa1024", "expired", "self-signed", "wrong-host", "sha1",
    "incomplete-chain", "dhe1024", "ssl3-rc4-3des", "tls12-3des",
]  # fmt: skip

# sslyze's Mozilla-config issue names -> the keylife rules that cover the same ground
MOZILLA_TO_KEYLIFE = {
    "tls_versions": {"tls.protocol.min-version.v1", "tls.protocol.tls13-required.v1"},
    "ciphers": {"tls.cipher.allowlist.v1"},
    "ciphersuites": {"tls.cipher.allowlist.v1"},
    "tls_curves": {"tls.kex.group.v1"},
    "dh_param_size": {"tls.kex.dh-size.v1"},
    "certificate_types": {"tls.cert.key-type.v1"},
    "certificate_curves": {"tls.cert.key-type.v1", "tls.cert.key-size.v1"},
    "certificate_signatures": {"tls.cert.signature-hash.v1"},
    "rsa_key_size": {"tls.cert.key-size.v1"},
    "certificate_path_validation": {
        "tls.cert.trusted.v1",
        "tls.cert.hostname.v1",
        "tls.cert.expired.v1",
        "tls.cert.self-signed.v1",
        "tls.cert.chain-complete.v1",
        "tls.cert.missing.v1",
    },
}


def start_peers(stack: ExitStack, tmp: Path) -> tuple[dict[str, int], Path]:
    from tests.tls.pki import make_pki

    d = tmp / "pki"
    d.mkdir()
    pki = make_pki(d)
    ports: dict[str, int] = {}
    for name in ENDPOINTS:
        server: Any
        if name in PYTHON_PEERS:
            server = peers.PythonTlsServer(PYTHON_PEERS[name](pki))
        elif name in OPENSSL_PEERS:
            server = peers.OpensslServer(OPENSSL_PEERS[name](pki))
        else:
            versions, suites = LEGACY_PEERS[name]
            server = peers.LegacyServer(versions, suites, pki.rsa_leaf.der)
        stack.enter_context(server)
        ports[name] = server.port
    return ports, pki.root.cert_path


def run_keylife(ports: dict[str, int], ca: Path, policy: str) -> tuple[float, dict[str, Any]]:
    cmd = [
        sys.executable, "-c", "from keylife_cli.main import main; main()", "tls", "check",
        *(f"127.0.0.1:{p}" for p in ports.values()),
        "--sni", "localhost", "--ca-file", str(ca), "--policy", policy, "--json",
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    elapsed = time.perf_counter() - started
    doc = json.loads(proc.stdout)
    by_port = {r["port"]: r for r in doc["results"]}
    return elapsed, {name: by_port[port] for name, port in ports.items()}


def run_sslyze(
    sslyze: str, ports: dict[str, int], ca: Path, tmp: Path, extra: list[str]
) -> tuple[float, dict[str, Any], str]:
    out = tmp / "sslyze.json"
    cmd = [
        sslyze, f"--json_out={out}", f"--certinfo_ca_file={ca}", *extra,
        *(f"localhost:{p}{{127.0.0.1}}" for p in ports.values()),
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800)
    elapsed = time.perf_counter() - started
    doc = json.loads(out.read_text())
    by_port = {r["server_location"]["port"]: r for r in doc["server_scan_results"]}
    return elapsed, {name: by_port.get(port) for name, port in ports.items()}, proc.stdout


def mozilla_issues(console: str, ports: dict[str, int]) -> dict[str, set[str]]:
    """Issue names from sslyze's 'Checking results against Mozilla's ...' console section."""
    issues: dict[str, set[str]] = {name: set() for name in ports}
    by_port = {str(p): n for n, p in ports.items()}
    current = None
    for line in console.splitlines():
        m = re.match(r"\s+localhost:(\d+): (FAILED|OK)", line)
        if m:
            current = by_port.get(m.group(1))
            continue
        m = re.match(r"\s+\* (\w+):", line)
        if m and current:
            issues[current].add(m.group(1))
    return issues


def sslyze_flags(result: dict[str, Any] | None) -> set[str]:
    """keylife rule ids for what sslyze's plugin results show, independent of Mozilla's list."""
    flags: set[str] = set()
    if not result or result.get("scan_status") != "COMPLETED":
        return {"<error>"}
    scan = result["scan_result"]
    for key in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1"):
        attempt = scan.get(f"{key}_cipher_suites") or {}
        if (attempt.get("result") or {}).get("accepted_cipher_suites"):
            flags.add("tls.protocol.min-version.v1")
    for key in ("ssl_3_0", "tls_1_0", "tls_1_1", "tls_1_2", "tls_1_3"):
        attempt = scan.get(f"{key}_cipher_suites") or {}
        for accepted in (attempt.get("result") or {}).get("accepted_cipher_suites", []):
            suite = accepted["cipher_suite"]
            name = suite["name"]
            if suite["key_size"] < 128:
                flags.add("tls.cipher.min-strength.v1")
            if "_NULL_" in name or name.endswith("_NULL"):
                flags.add("tls.cipher.null.v1")
            if suite["is_anonymous"]:
                flags.add("tls.cipher.anonymous.v1")
            if "EXPORT" in name:
                flags.add("tls.cipher.export.v1")
            if "RC4" in name:
                flags.add("tls.cipher.rc4.v1")
            key = accepted.get("ephemeral_key") or {}
            if key.get("type_name") == "DH" and key.get("size", 4096) < 2048:
                flags.add("tls.kex.dh-size.v1")
    cert = (scan.get("certificate_info") or {}).get("result") or {}
    for dep in cert.get("certificate_deployments", []):
        if not any(p["was_validation_successful"] for p in dep["path_validation_results"]):
            flags.add("tls.cert.<path-validation>")
        if dep.get("verified_chain_has_sha1_signature"):
            flags.add("tls.cert.signature-hash.v1")
        leaf = dep["received_certificate_chain"][0]
        pk = leaf["public_key"]
        if pk["algorithm"] == "RSAPublicKey" and pk["key_size"] < 2048:
            flags.add("tls.cert.key-size.v1")
        if leaf["signature_hash_algorithm"]["name"] in ("sha1", "md5"):
            flags.add("tls.cert.signature-hash.v1")
        if dep.get("received_chain_has_valid_order") is False:
            flags.add("tls.cert.chain-order.v1")
    for vuln, key in (
        ("heartbleed", "is_vulnerable_to_heartbleed"),
        ("openssl_ccs_injection", "is_vulnerable_to_ccs_injection"),
    ):
        if ((scan.get(vuln) or {}).get("result") or {}).get(key):
            flags.add(f"<{vuln}>")
    reneg = (scan.get("session_renegotiation") or {}).get("result") or {}
    if reneg.get("is_vulnerable_to_client_renegotiation_dos"):
        flags.add("<client-renegotiation>")
    if reneg and reneg.get("supports_secure_renegotiation") is False:
        flags.add("<insecure-renegotiation>")
    if ((scan.get("tls_compression") or {}).get("result") or {}).get("supports_compression"):
        flags.add("<compression>")
    return flags


def covered(flag: str, keylife_rules: set[str]) -> bool:
    if flag == "tls.cert.<path-validation>":
        return bool(keylife_rules & MOZILLA_TO_KEYLIFE["certificate_path_validation"])
    if flag == "<error>":
        return False
    return flag in keylife_rules


def hostile(timeout: float, deadline: float) -> None:
    """Wall time, peak RSS and error of `keylife tls check` against each hostile server."""
    import importlib.util

    from tests.tls import hostile_peers as hp
    from tests.tls.pki import make_pki

    path = ROOT / "tests" / "hostile" / "test_tls_hostile_servers.py"
    spec = importlib.util.spec_from_file_location("hostile_cases", path)
    assert spec is not None and spec.loader is not None
    cases = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cases)
    with tempfile.TemporaryDirectory() as tmpdir:
        der = make_pki(Path(tmpdir)).rsa_leaf.der
    print(
        "| server | exit | seconds | peak RSS MB | "
        f"error (--timeout {timeout:g} --deadline {deadline:g}) |"
    )
    print("|---|---|---|---|---|")
    for name, (make, _) in sorted(cases.CASES.items()):
        with peers.HostileServer(make(der)) as server:
            run = hp.run_keylife(
                "tls", "check", f"127.0.0.1:{server.port}", "--json",
                "--timeout", f"{timeout:g}", "--deadline", f"{deadline:g}",
                hard_limit=deadline + 60,
            )  # fmt: skip
        try:
            error = json.loads(run.stdout)["results"][0]["error"]
        except (ValueError, KeyError, IndexError):
            error = (run.stderr.strip().splitlines() or ["?"])[-1]
        print(
            f"| {name} | {run.returncode} | {run.seconds:.1f} | {run.max_rss_mb:.0f} | "
            f"{error[:90]} |"
        )


# -- --fleet N: many endpoints served by one process, keylife --targets against sslyze --------


def per_endpoint_run(ports: list[int], ca: str) -> tuple[float, dict[int, Any]]:
    """keylife's check_endpoint on one endpoint after the other, in this process."""
    from keylife.tls import check_endpoint, load_policy

    policy = load_policy("default")
    started = time.perf_counter()
    out = {}
    for port in ports:
        report = check_endpoint("127.0.0.1", port, policy, sni="localhost", ca_file=ca)
        out[port] = (report.verdict, sorted((f.rule_id, f.severity) for f in report.findings))
    return time.perf_counter() - started, out


def fleet(n: int, connections: int, sslyze: str | None) -> None:
    from tests.tls import hostile_peers as hp
    from tests.tls.fleet_peers import raise_nofile

    limits = raise_nofile(connections + 256)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "pki").mkdir()
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.tls.fleet_peers", str(n), str(tmp / "pki")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert server.stdin is not None and server.stdout is not None
        try:
            info = json.loads(server.stdout.readline())
            ports, kinds, ca = info["ports"], info["kinds"], info["ca"]
            targets = tmp / "targets.txt"
            targets.write_text("".join(f"127.0.0.1:{p} localhost\n" for p in ports))
            k = hp.run_keylife(
                "tls", "check", "--targets", str(targets), "--ca-file", ca, "--jsonl",
                "--summary", "--connections", str(connections), hard_limit=3600,
            )  # fmt: skip
            seq_seconds, seq = per_endpoint_run(ports, ca)
            s_seconds, s_done = run_sslyze_fleet(sslyze, ports, ca, tmp) if sslyze else (0, 0)
        finally:
            server.stdin.close()
            server.wait(30)
    lines = [json.loads(line) for line in k.stdout.splitlines()]
    fleet_run = {d["port"]: d for d in lines if d["kind"] == "endpoint"}
    same = sum(
        1
        for p in ports
        if p in fleet_run
        and (fleet_run[p]["verdict"], sorted((f["rule_id"], f["severity"]) for f in
             fleet_run[p]["findings"])) == seq[p]
    )  # fmt: skip
    by_kind: dict[str, set[str]] = {}
    for p, kind in zip(ports, kinds, strict=True):
        by_kind.setdefault(kind, set()).add(seq[p][0])
    summary = lines[-1]
    print(f"## Fleet: {n} endpoints on one server process\n")
    print(
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}), "
        f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after; "
        f"open-file limit {limits[0]} (soft), {limits[1]} (hard).\n"
    )
    print("| run | wall time (s) | notes |\n|---|---:|---|")
    print(f"| keylife tls check --targets, --connections {connections} | {k.seconds:.1f} | "
          f"exit {k.returncode}, peak RSS {k.max_rss_mb:.0f} MB |")  # fmt: skip
    print(f"| keylife check_endpoint, one endpoint after the other | {seq_seconds:.1f} | "
          "same process, same code, no concurrency |")  # fmt: skip
    if sslyze:
        help_text = subprocess.run(
            [*sslyze.split(), "--help"], capture_output=True, text=True, check=False
        )
        version = (re.search(r"SSLyze version ([\d.]+)", help_text.stdout) or [None, "?"])[1]
        print(f"| sslyze {version} (own concurrency) | {s_seconds:.1f} | "
              f"{s_done}/{n} scans completed |")  # fmt: skip
        print(f"\nkeylife / sslyze = **{k.seconds / s_seconds:.3f}**")
    print(f"\nkeylife fleet / sequential = **{k.seconds / seq_seconds:.3f}**")
    print(f"\nVerdicts and findings identical to the per-endpoint run: **{same}/{n}**. "
          f"Verdicts per kind: " + ", ".join(f"{kk} {sorted(v)}" for kk, v in
          sorted(by_kind.items())) + f". Summary: {json.dumps(summary['verdicts'])}, "
          f"rules {json.dumps(summary['rules'])}.")  # fmt: skip


def run_sslyze_fleet(sslyze: str, ports: list[int], ca: str, tmp: Path) -> tuple[float, int]:
    """sslyze over the same targets, its own concurrency, the scans keylife also does."""
    targets = tmp / "sslyze-targets.txt"
    targets.write_text("".join(f"localhost:{p}{{127.0.0.1}}\n" for p in ports))
    out = tmp / "sslyze.json"
    cmd = [*sslyze.split(), f"--targets_in={targets}", f"--json_out={out}",
           f"--certinfo_ca_file={ca}", "--certinfo", "--sslv2", "--sslv3", "--tlsv1",
           "--tlsv1_1", "--tlsv1_2", "--tlsv1_3", "--elliptic_curves",
           "--mozilla_config=disable", "--quiet"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=False, timeout=7200)
    elapsed = time.perf_counter() - started
    doc = json.loads(out.read_text())
    done = sum(1 for r in doc["server_scan_results"] if r.get("scan_status") == "COMPLETED")
    return elapsed, done


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sslyze", help="the sslyze executable (in its own venv)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="write benchmarks/RESULTS-tls.md")
    ap.add_argument("--hostile", action="store_true", help="time the hostile servers instead")
    ap.add_argument("--timeout", type=float, default=10.0, help="with --hostile")
    ap.add_argument("--deadline", type=float, default=30.0, help="with --hostile")
    ap.add_argument("--fleet", type=int, help="N endpoints from one server process instead")
    ap.add_argument("--connections", type=int, default=64, help="with --fleet")
    args = ap.parse_args()
    if args.fleet:
        fleet(args.fleet, args.connections, args.sslyze)
        return
    if args.hostile:
        hostile(args.timeout, args.deadline)
        return
    if not args.sslyze:
        ap.error("--sslyze is required (or --hostile)")
    version = subprocess.run(
        [args.sslyze, "--help"], capture_output=True, text=True, check=False
    ).stdout
    sslyze_version = (re.search(r"SSLyze version ([\d.]+)", version) or [None, "?"])[1]
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmpdir, ExitStack() as stack:
        tmp = Path(tmpdir)
        ports, ca = start_peers(stack, tmp)
        k_times, s_times, s_min_times = [], [], []
        for _ in range(args.repeat):
            t, k_default = run_keylife(ports, ca, "default")
            k_times.append(t)
            t, s_res, console = run_sslyze(args.sslyze, ports, ca, tmp, [])
            s_times.append(t)
        minimal = ["--certinfo", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3"]
        minimal += ["--elliptic_curves", "--mozilla_config=disable"]
        for _ in range(args.repeat):
            t, _, _ = run_sslyze(args.sslyze, ports, ca, tmp, minimal)
            s_min_times.append(t)
        # the same without the scripted legacy peers, which sslyze cannot connect to at all
        modern = {n: p for n, p in ports.items() if n not in LEGACY_PEERS}
        k_mod_times, s_mod_times = [], []
        for _ in range(args.repeat):
            k_mod_times.append(run_keylife(modern, ca, "default")[0])
            s_mod_times.append(run_sslyze(args.sslyze, modern, ca, tmp, [])[0])
        _, k_moz = run_keylife(ports, ca, "mozilla-intermediate")
        moz = mozilla_issues(console, ports)

    k, s, sm, km, smod = (
        statistics.median(x) for x in (k_times, s_times, s_min_times, k_mod_times, s_mod_times)
    )
    lines += [
        "# keylife tls check vs sslyze",
        "",
        f"Measured {dt.date.today()} on {platform.node()} ({platform.machine()}, "
        f"Python {platform.python_version()}), {len(ENDPOINTS)} local endpoints on 127.0.0.1, "
        f"median of {args.repeat} runs each, wall time of the whole CLI process (start-up "
        f"included). sslyze {sslyze_version} from its own throwaway venv.",
        "",
        "| tool | wall time (s) | runs (s) |",
        "|---|---:|---|",
        f"| keylife tls check (all endpoints, default policy) | {k:.2f} | "
        + ", ".join(f"{x:.2f}" for x in k_times)
        + " |",
        f"| sslyze (default scan: all plugins + Mozilla intermediate check) | {s:.2f} | "
        + ", ".join(f"{x:.2f}" for x in s_times)
        + " |",
        "| sslyze (only certinfo, SSL 3.0-TLS 1.3 suites, curves; no Mozilla check) | "
        f"{sm:.2f} | " + ", ".join(f"{x:.2f}" for x in s_min_times) + " |",
        f"| keylife tls check, {len(modern)} OpenSSL-servable endpoints"
        f" only | {km:.2f} | " + ", ".join(f"{x:.2f}" for x in k_mod_times) + " |",
        f"| sslyze default scan, same {len(modern)} endpoints | {smod:.2f}"
        " | " + ", ".join(f"{x:.2f}" for x in s_mod_times) + " |",
        "",
        f"keylife / sslyze = **{k / s:.2f}** (default scan), **{k / sm:.2f}** (minimal scan), "
        f"**{km / smod:.2f}** (without the legacy peers).",
        "",
        "## Verdicts",
        "",
        "`sslyze flags`: keylife rule ids for what sslyze's plugin results show (accepted old "
        "protocols, suites with key_size < 128, NULL/anon/EXPORT/RC4 names, DH < 2048, failed "
        "path validation, SHA-1 in the verified chain, RSA < 2048 leaf); `<...>` for checks "
        "keylife does not have. `Mozilla`: issue names from sslyze's Mozilla intermediate "
        "check, compared with keylife run under `--policy mozilla-intermediate`.",
        "",
        "| endpoint | keylife (default) | keylife rules | sslyze flags | sslyze flags missed "
        "by keylife | Mozilla issues (sslyze) | missed by keylife mozilla-intermediate |",
        "|---|---|---|---|---|---|---|",
    ]
    total_missed = 0
    for name in ENDPOINTS:
        rep = k_default[name]
        rules = {f["rule_id"] for f in rep["findings"] if f["severity"] == "fail"}
        flags = sslyze_flags(s_res[name])
        missed = sorted(f for f in flags if not covered(f, rules))
        moz_rules = {f["rule_id"] for f in k_moz[name]["findings"] if f["severity"] == "fail"}
        moz_missed = sorted(
            i for i in moz[name] if not (MOZILLA_TO_KEYLIFE.get(i, {f"?{i}"}) & moz_rules)
        )
        total_missed += len([m for m in missed if not m.startswith("<")]) + len(moz_missed)
        if "<error>" in flags:
            missed = ["(sslyze could not scan it)"]
        short = ", ".join(sorted(r.removeprefix("tls.").removesuffix(".v1") for r in rules))
        lines.append(
            f"| {name} | {rep['verdict']} | {short or '-'} | "
            f"{', '.join(sorted(f.removeprefix('tls.').removesuffix('.v1') for f in flags)) or '-'}"
            f" | {', '.join(missed) or 'none'} | {', '.join(sorted(moz[name])) or '-'} | "
            f"{', '.join(moz_missed) or 'none'} |"
        )
    lines += [
        "",
        f"Rules sslyze flags that keylife left unflagged: **{total_missed}**.",
        "",
        "Handshakes per endpoint (keylife): "
        + ", ".join(f"{n} {k_default[n]['handshakes']}" for n in ENDPOINTS)
        + ".",
        "",
        "## Notes",
        "",
        "- keylife offers every suite in one hand-built ClientHello and removes the one the "
        "server picks, so it needs one handshake per accepted suite plus one per version "
        "(and per group); sslyze makes one full handshake per (version, suite) pair and also "
        "runs checks keylife does not have (Heartbleed, ROBOT, CCS injection, renegotiation, "
        "session resumption, early data, HTTP headers). The minimal sslyze scan removes those "
        "plugins and is no faster: the per-suite sweep dominates its time. The legacy peers "
        "cost sslyze several more seconds (it waits on them before giving up).",
        "- The scripted legacy peers (SSL 3.0/TLS 1.0 with RC4 and 3DES; TLS 1.2 with only "
        "3DES) answer only the first flight, like the ClientHello probes need. sslyze's "
        "connectivity test wants a full handshake, so it reports them as unreachable; keylife "
        "flags SSL 3.0, RC4 and 3DES (112-bit) there. sslyze reports 3DES with key_size 168, "
        "so even against a real 3DES server a `key_size < 128` rule would not catch it.",
        "- Path validation: both tools use Web PKI rules (keylife uses cryptography's verifier, "
        "as sslyze does), so trust verdicts agree; keylife also names the cause as its own "
        "rule (expired, self-signed, hostname, SHA-1, incomplete chain).",
        "- `keylife (default)` verdicts are under keylife's default policy, which does not "
        "restrict groups: the Python ssl peers' x448/secp521r1 are flagged only under "
        "`mozilla-intermediate` (rule tls.kex.group.v1), as sslyze's Mozilla check does.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        path = ROOT / "benchmarks" / "RESULTS-tls.md"
        old = path.read_text() if path.exists() else ""
        path.write_text(
            text + (old[old.index("\n# Fleet runs") :] if "\n# Fleet runs" in old else "")
        )


if __name__ == "__main__":
    main()
