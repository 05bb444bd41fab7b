"""Certificates as key versions: CLI issue into a store, renewal via ``keylife rotate``,
revocation through ``keylife cert revoke`` and ``keylife key compromise``, account rollover."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import stat

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from keylife_cli.main import cli

import keylife
from keylife.acme import CertSettings, issue_certificate, renewal_due
from keylife.acme.rings import account_ring_for
from keylife.rotation.runner import run as run_rotation


@pytest.fixture
def store(tmp_path):
    return {
        "store": str(tmp_path / "data" / "keylife.db"),
        "master_key_file": str(tmp_path / "config" / "master.key"),
    }


def invoke(store, *args):
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["--store", store["store"], "--master-key-file", store["master_key_file"], "--json", *args],
        catch_exceptions=False,
    )
    return result


def http_args(pebble):
    return [
        "--directory",
        pebble.directory_url,
        "--ca-bundle",
        pebble.ca_bundle,
        "--trust-roots",
        pebble.trust_roots,
        "--http-port",
        str(pebble.http_port),
        "--http-address",
        "127.0.0.1",
        "--agree-tos",
        "--email",
        "ops@example.com",
        "--poll-interval",
        "0.02",
    ]


def test_cli_issue_stores_a_version_and_deploys(pebble, store, tmp_path):
    deploy = tmp_path / "live"
    hook_out = tmp_path / "hook.txt"
    result = invoke(
        store,
        "cert",
        "issue",
        "web",
        "--domain",
        "cli.example.com",
        "--domain",
        "www.cli.example.com",
        *http_args(pebble),
        "--deploy-to",
        str(deploy),
        "--deploy-hook",
        f'echo "$KEYLIFE_RING $KEYLIFE_VERSION $KEYLIFE_FULLCHAIN" > {hook_out}',
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["ring"] == "web"
    with keylife.open(store["store"], master_key_file=store["master_key_file"]) as manager:
        ring = manager.load("web")
        assert ring.purpose == "tls-server"
        assert json.loads(ring.attributes["acme"])["domains"] == [
            "cli.example.com",
            "www.cli.example.com",
        ]
        version = ring.get(doc["version"])
        assert version is not None
        assert version.state.value == "active"
        cert = x509.load_pem_x509_certificate(version.attributes["certificate_pem"].encode())
        assert version.activation == cert.not_valid_before_utc
        # Pebble's 5-year certificate is used for the tls-server cryptoperiod (90 days) only
        assert cert.not_valid_after_utc - cert.not_valid_before_utc > dt.timedelta(days=365)
        assert version.deactivation == cert.not_valid_before_utc + dt.timedelta(days=90)
        assert version.attributes["order_url"].startswith("https://127.0.0.1")
        assert version.attributes["chain_pem"].startswith("-----BEGIN CERTIFICATE-----")
        assert format(cert.serial_number, "x") == doc["serial"]
        # the stored key is the certificate's key
        loaded = manager.ring("web").primary()
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        assert loaded.key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)
        # the ring's first version is the certificate's key: no uncertified placeholder
        assert doc["version"] == 1 and [v.number for v in ring.versions] == [1]
        # the account key is a managed key too
        assert manager.load(account_ring_for(pebble.directory_url)).purpose == "signing"
    assert (deploy / "fullchain.pem").read_text() == (
        version.attributes["certificate_pem"] + version.attributes["chain_pem"]
    )
    assert stat.S_IMODE((deploy / "privkey.pem").stat().st_mode) == 0o600
    assert hook_out.read_text().split() == [
        "web",
        str(doc["version"]),
        str(deploy / "fullchain.pem"),
    ]
    assert "PRIVATE KEY" not in result.output


def test_cli_issue_dns01_wildcard(pebble, challtestsrv, store):
    result = invoke(
        store,
        "cert",
        "issue",
        "wild",
        "--domain",
        "wild.example.com",
        "--domain",
        "*.wild.example.com",
        *http_args(pebble),
        "--challenge",
        "dns-01",
        "--dns-hook",
        challtestsrv.dns_hook("set"),
        "--dns-cleanup-hook",
        challtestsrv.dns_hook("clear"),
        "--key-type",
        "rsa-2048",
    )
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(result.output)["domains"]) == [
        "*.wild.example.com",
        "wild.example.com",
    ]


def test_cli_failed_challenge_stores_nothing(pebble, store, unused_port):
    args = http_args(pebble)
    args[args.index("--http-port") + 1] = str(unused_port())
    result = invoke(store, "cert", "issue", "broken", "--domain", "broken.example.com", *args)
    assert result.exit_code == 1
    err = json.loads(result.output)["error"]
    assert err["type"] == "ChallengeFailures"
    assert "broken.example.com" in err["message"]
    assert "Traceback" not in result.output
    with keylife.open(store["store"], master_key_file=store["master_key_file"]) as manager:
        names = [r.name for r in manager.rings()]
    assert "broken" not in names, "no ring, no half-stored certificate"


def test_cli_unreachable_ca_is_a_clear_error(store, unused_port, tmp_path):
    result = invoke(
        store,
        "cert",
        "issue",
        "x",
        "--domain",
        "x.example.com",
        "--directory",
        f"https://127.0.0.1:{unused_port()}/dir",
        "--agree-tos",
    )
    assert result.exit_code == 1
    assert "cannot reach the ACME server" in json.loads(result.output)["error"]["message"]


def long_account_policy():
    """Pebble's certificates live five years, longer than the default two-year cryptoperiod
    of the account (signing) key: a policy with a longer one lets a renewal run at year 3."""
    import dataclasses

    from keylife.policy import Purpose, default_policy

    policy = default_policy()
    purposes = dict(policy.purposes)
    purposes[Purpose.SIGNING] = dataclasses.replace(
        purposes[Purpose.SIGNING], cryptoperiod=dt.timedelta(days=6 * 365)
    )
    return dataclasses.replace(policy, purposes=purposes)


def _issue_lib(pebble, store, name, domain):
    manager = keylife.init(
        store["store"], master_key_file=store["master_key_file"], policy=long_account_policy()
    )
    settings = CertSettings(
        directory=pebble.directory_url,
        domains=(domain,),
        http_port=pebble.http_port,
        http_address="127.0.0.1",
        ca_bundle=pebble.ca_bundle,
        trust_roots=pebble.trust_roots,
        poll_interval=0.02,
    )
    result = issue_certificate(manager, name, settings, agree_tos=True)
    return manager, result


def test_renewal_planned_and_done_by_rotate(pebble, store):
    """``keylife rotate`` renews a due certificate: pure plan, then the runner calls
    ``keylife.acme.renew_ring``. Pebble's certificates last five years, so the run is made at
    the renewal time (an injected moment); the CA's new certificate looks due again at that
    moment, and the runner renews a ring at most once per run."""
    from keylife.rotation.plan import StepKind, plan_rotation

    manager, first = _issue_lib(pebble, store, "renewme", "renew.example.com")
    with manager:
        v1 = manager.load("renewme").get(first.version)
        due = renewal_due(v1.activation, v1.deactivation, v1.activation)
        # today nothing is due: a real rotate run leaves the ring alone
        report = run_rotation(manager, rings=["renewme"])
        assert report.ok and report.nothing_due
        assert [v.number for v in manager.load("renewme").versions] == [first.version]
        ring = manager.load("renewme")
        before = plan_rotation([ring], manager.policy, due - dt.timedelta(minutes=1))
        assert not before.steps
        at = due + dt.timedelta(minutes=1)
        plan = plan_rotation([ring], manager.policy, at)
        assert [(s.kind, s.version) for s in plan.steps] == [
            (StepKind.RENEW_CERTIFICATE, first.version)
        ]
        report = run_rotation(manager, rings=["renewme"], now=at)
        assert report.ok, report.to_dict()
        steps = [(s.kind, s.outcome) for s in report.rings[0].steps]
        assert steps == [("renew-certificate", "succeeded")]
        ring = manager.load("renewme")
        new = ring.get(report.rings[0].steps[0].new_version)
        assert new is not None and new.number == first.version + 1
        assert new.attributes["serial"] != v1.attributes["serial"]
        assert new.fingerprint != v1.fingerprint, "a new key on every renewal"
        assert new.replaces == first.version
        assert ring.get(first.version).state.value == "deactivated"
        assert manager.ring("renewme").primary().number == new.number


def test_cli_revoke_by_account_and_by_certificate_key(pebble, store):
    manager, first = _issue_lib(pebble, store, "rev", "rev.example.com")
    manager.close()
    result = invoke(store, "cert", "revoke", "rev", "--reason", "superseded")
    assert result.exit_code == 0, result.output
    assert pebble.cert_status(first.certificate.serial)["Status"] == "Revoked"
    assert pebble.cert_status(first.certificate.serial)["Reason"] == 4
    with keylife.open(store["store"], master_key_file=store["master_key_file"]) as m:
        assert m.load("rev").get(first.version).state.value == "deactivated"

    manager, second = _issue_lib(pebble, store, "rev2", "rev2.example.com")
    manager.close()
    result = invoke(
        store, "cert", "revoke", "rev2", "--reason", "key-compromise", "--by-certificate-key"
    )
    assert result.exit_code == 0, result.output
    status = pebble.cert_status(second.certificate.serial)
    assert (status["Status"], status["Reason"]) == ("Revoked", 1)
    with keylife.open(store["store"], master_key_file=store["master_key_file"]) as m:
        assert m.load("rev2").get(second.version).state.value == "compromised"


def test_key_compromise_revokes_at_the_ca_and_reissues(pebble, store):
    manager, first = _issue_lib(pebble, store, "comp", "comp.example.com")
    manager.close()
    result = invoke(
        store,
        "--json",
        "key",
        "compromise",
        "comp",
        "--occurred-at",
        dt.datetime.now(dt.UTC).isoformat(),
    )
    assert result.exit_code == 0, result.output
    status = pebble.cert_status(first.certificate.serial)
    assert (status["Status"], status["Reason"]) == ("Revoked", 1)
    doc = json.loads(result.output)
    assert doc["compromised"]["state"] == "compromised"
    replacement = doc["replacement"]
    assert replacement is not None and replacement["state"] == "active"
    assert "certificate_pem" in replacement["attributes"]
    assert replacement["attributes"]["serial"] != format(first.certificate.serial, "x")
    with keylife.open(store["store"], master_key_file=store["master_key_file"]) as m:
        ring = m.load("comp")
        # no uncertified stand-in: the compromised key, then the CA's new one
        assert [(v.number, v.state.value) for v in ring.versions] == [
            (1, "compromised"),
            (2, "active"),
        ]


def test_key_compromise_with_the_ca_down_reissues_on_the_next_rotate(pebble, store, tmp_path):
    from keylife.rotation.plan import StepKind, plan_rotation

    manager, first = _issue_lib(pebble, store, "down", "down.example.com")
    with manager:
        ring = manager.load("down")
        settings = json.loads(ring.attributes["acme"])
        unreachable = dict(settings, directory="https://127.0.0.1:9/dir")
        # point the ring at a CA that is not there (revocation and reissue both fail)
        manager.store.commit(
            dataclasses.replace(ring, attributes={"acme": json.dumps(unreachable)}),
            expected_revision=ring.revision,
        )
        result = manager.compromise("down", occurred_at=manager.now())
        assert result.replacement is None
        assert any("NOT revoked" in d for d in result.dependents)
        assert any("keylife rotate" in d for d in result.dependents)
        ring = manager.load("down")
        assert ring.primary(manager.now()) is None
        plan = plan_rotation([ring], manager.policy, manager.now())
        assert [s.kind for s in plan.steps] == [
            StepKind.REVOKE_CERTIFICATE,
            StepKind.RENEW_CERTIFICATE,
        ]
        # the CA is back
        ring = manager.load("down")
        manager.store.commit(
            dataclasses.replace(ring, attributes={"acme": json.dumps(settings)}),
            expected_revision=ring.revision,
        )
        report = run_rotation(manager, rings=["down"])
        assert report.ok, report.to_dict()
        kinds = [s.kind for s in report.rings[0].steps]
        assert kinds == ["revoke-certificate", "renew-certificate"]
        status = pebble.cert_status(first.certificate.serial)
        assert (status["Status"], status["Reason"]) == ("Revoked", 1)
        assert "certificate_revoked_at" in manager.load("down").get(1).attributes
        primary = manager.ring("down").primary()
        assert primary.number == 2 and "certificate_pem" in primary.version.attributes
        assert run_rotation(manager, rings=["down"]).nothing_due
        failures = [a for a in manager.audit_records("down") if a.outcome.startswith("failure")]
        assert {a.action for a in failures} >= {"revoke-certificate", "renew-certificate"}


def test_cli_account_rollover_keeps_issuing(pebble, store):
    manager, first = _issue_lib(pebble, store, "acct", "acct.example.com")
    account = manager.load(account_ring_for(pebble.directory_url))
    old_fp = account.versions[-1].fingerprint
    manager.close()
    result = invoke(
        store,
        "cert",
        "account",
        "rollover",
        "--directory",
        pebble.directory_url,
        "--ca-bundle",
        pebble.ca_bundle,
    )
    assert result.exit_code == 0, result.output
    manager, second = _issue_lib(pebble, store, "acct", "acct.example.com")
    with manager:
        ring = manager.load(account_ring_for(pebble.directory_url))
        primary = ring.primary(manager.now())
        assert primary is not None and primary.fingerprint != old_fp
        assert [v.state.value for v in ring.versions] == ["deactivated", "active"]
        # same account URL before and after
        new_ver = manager.load("acct").get(second.version)
        old_ver = manager.load("acct").get(first.version)
        assert new_ver.attributes["acme_account"] == old_ver.attributes["acme_account"]


def test_cert_cli_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, keylife_cli.cert; "
        "bad = [m for m in ('acme', 'josepy', 'requests', 'cryptography') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_rotate_refreshes_renewal_info_after_retry_after(pebble, acme_stub, store):
    """A certificate from Pebble; its ring is then pointed at the ARI stub (Pebble 2.4 has no
    renewalInfo). Once the stored Retry-After has passed, ``keylife rotate`` asks the CA again
    and plans the renewal by the new window."""
    from keylife.rotation.plan import StepKind, plan_rotation

    manager, first = _issue_lib(pebble, store, "ari", "ari.example.com")
    # a window inside the version's 90-day use (the tls-server cryptoperiod)
    start = (manager.now() + dt.timedelta(days=20)).replace(microsecond=0)
    acme_stub.behaviour["ari"] = {
        "start": start.isoformat(),
        "end": (start + dt.timedelta(days=2)).isoformat(),
    }
    with manager:
        ring = manager.load("ari")
        settings = json.loads(ring.attributes["acme"])
        account = settings.get("account_ring") or account_ring_for(pebble.directory_url)
        stubbed = dict(
            settings,
            directory=acme_stub.directory_url,
            account_ring=account,
            ca_bundle=acme_stub.ca_bundle,
        )
        manager.store.commit(
            dataclasses.replace(ring, attributes={"acme": json.dumps(stubbed)}),
            expected_revision=ring.revision,
        )
        stale = (manager.now() - dt.timedelta(minutes=5)).isoformat()
        manager.update_attributes(
            "ari",
            first.version,
            {
                "ari_window_start": "2031-06-01T00:00:00+00:00",
                "ari_window_end": "2031-06-03T00:00:00+00:00",
                "ari_retry_after": stale,
            },
        )
        plan = plan_rotation(manager.rings(), manager.policy, manager.now())
        assert [s.kind for s in plan.for_ring("ari")] == [StepKind.REFRESH_RENEWAL_INFO]
        report = run_rotation(manager, rings=["ari"])
        assert report.ok, report.to_dict()
        v = manager.load("ari").get(first.version)
        assert v.attributes["ari_window_start"] == start.isoformat()  # the stub's window
        assert dt.datetime.fromisoformat(v.attributes["ari_retry_after"]) > manager.now()
        assert [r for r in acme_stub.requests if r[1].startswith("/ari/")]
        rings = manager.rings()

        def kinds_at(when: dt.datetime) -> list[StepKind]:
            return [s.kind for s in plan_rotation(rings, manager.policy, when).for_ring("ari")]

        # renewal now follows the stub's window, not the 2031 window nor the lifetime rule
        assert StepKind.RENEW_CERTIFICATE not in kinds_at(start - dt.timedelta(days=1))
        assert StepKind.RENEW_CERTIFICATE in kinds_at(start + dt.timedelta(days=2))
        assert run_rotation(manager, rings=["ari"]).nothing_due
        assert [a.action for a in manager.audit_records("ari")][-1] == "annotate"
