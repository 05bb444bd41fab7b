"""``keylife cert list / show / renew`` and what ``cert revoke`` leaves behind, against Pebble
(issue 14, item 5), and ``cert issue --challenge tls-alpn-01`` (item 7)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from keylife_cli.cert import REVOKE_REASONS
from keylife_cli.main import cli

import keylife
from keylife.acme.status import certificate_status
from keylife.certificates import CERTIFICATE_REVOKED, certificate_due
from keylife.lifecycle import RevocationReason
from keylife.rotation.plan import StepKind, plan_rotation

DOC = Path(__file__).resolve().parents[2] / "docs" / "acme.md"

#: The documented keys of `cert show --json` (and of each entry of `cert list --json`).
STATUS_KEYS = {
    "ring",
    "domains",
    "valid",
    "retired",
    "version",
    "state",
    "revoked",
    "serial",
    "issuer",
    "not_before",
    "not_after",
    "days_left",
    "key_deactivation",
    "directory",
    "account_ring",
    "challenge",
    "key_type",
    "deploy",
    "deploy_hook",
    "ari",
    "next_renewal",
    "renewal_due",
    "renewal_reason",
}


@pytest.fixture
def store(tmp_path):
    return {
        "store": str(tmp_path / "data" / "keylife.db"),
        "master_key_file": str(tmp_path / "config" / "master.key"),
    }


def run(store, *args, as_json=True):
    base = ["--store", store["store"], "--master-key-file", store["master_key_file"]]
    result = CliRunner().invoke(
        cli, [*base, *(["--json"] if as_json else []), *args], catch_exceptions=False
    )
    return result


def manager_of(store):
    return keylife.open(store["store"], master_key_file=store["master_key_file"])


def make_key_ring(store, name="sign"):
    assert run(store, "init").exit_code == 0
    assert run(store, "key", "create", name, "--purpose", "signing").exit_code == 0


def issue(store, pebble, ring, domain, *extra, challenge="http-01"):
    args = [
        "cert",
        "issue",
        ring,
        "--domain",
        domain,
        "--directory",
        pebble.directory_url,
        "--ca-bundle",
        pebble.ca_bundle,
        "--trust-roots",
        pebble.trust_roots,
        "--agree-tos",
        "--poll-interval",
        "0.02",
        "--challenge",
        challenge,
    ]
    if challenge == "http-01":
        args += ["--http-port", str(pebble.http_port), "--http-address", "127.0.0.1"]
    else:
        args += ["--tls-port", str(pebble.tls_port), "--tls-address", "127.0.0.1"]
    result = run(store, *args, *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# -- cert list / cert show ------------------------------------------------------------------


def test_cert_list_and_show(pebble, store, tmp_path):
    deploy = tmp_path / "live"
    first = issue(store, pebble, "web", "list.example.com", "--deploy-to", str(deploy))
    issue(store, pebble, "api", "api.list.example.com")
    make_key_ring(store)

    result = run(store, "cert", "list")
    assert result.exit_code == 0, result.output
    docs = json.loads(result.output)["certificates"]
    assert sorted(d["ring"] for d in docs) == ["api", "web"], "only certificate rings"
    for doc in docs:
        assert set(doc) == STATUS_KEYS

    result = run(store, "cert", "show", "web")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc == next(d for d in docs if d["ring"] == "web")
    with manager_of(store) as manager:
        v = manager.load("web").get(first["version"])
        now = manager.now()
        due = certificate_due(v, now)
    assert doc["domains"] == ["list.example.com"]
    assert (doc["version"], doc["state"], doc["valid"]) == (first["version"], "active", True)
    assert doc["serial"] == first["serial"] and doc["revoked"] is None
    assert "Pebble" in doc["issuer"]
    assert doc["not_after"] == first["not_after"]
    assert 1820 <= doc["days_left"] <= 1827  # Pebble: five years
    assert doc["key_deactivation"] == v.deactivation.isoformat()  # the 90-day cryptoperiod
    assert doc["directory"] == pebble.directory_url
    assert doc["account_ring"].startswith("acme-account-")
    assert doc["deploy"] == {
        "directory": str(deploy),
        "files": {r: str(deploy / f"{r}.pem") for r in ("privkey", "cert", "chain", "fullchain")},
        "current": True,
    }
    assert doc["next_renewal"] == due.isoformat()
    assert doc["renewal_due"] is False
    assert "a third of the key's use left" in doc["renewal_reason"]
    assert doc["ari"] is None  # Pebble 2.4 has no renewalInfo

    text = run(store, "cert", "show", "web", as_json=False)
    assert text.exit_code == 0
    for needle in (
        "list.example.com",
        first["serial"],
        "days left",
        pebble.directory_url,
        str(deploy / "fullchain.pem"),
        "holds v1",
        due.isoformat(),
        "a third",
    ):
        assert needle in text.output, needle
    # a deployed file that is not the stored certificate is pointed out
    (deploy / "cert.pem").write_text("stale\n")
    assert json.loads(run(store, "cert", "show", "web").output)["deploy"]["current"] is False
    assert "does NOT hold v1" in run(store, "cert", "show", "web", as_json=False).output
    listing = run(store, "cert", "list", as_json=False).output
    assert "Certificate ring: web" in listing and "Certificate ring: api" in listing
    assert "PRIVATE KEY" not in listing + text.output + result.output


def test_cert_show_refuses_a_key_ring_and_a_missing_ring(pebble, store):
    issue(store, pebble, "web", "refuse.example.com")
    make_key_ring(store)
    result = run(store, "cert", "show", "sign")
    assert result.exit_code == 1
    err = json.loads(result.output)["error"]
    assert "not a certificate ring" in err["message"] and "cert list" in err["message"]
    assert run(store, "cert", "show", "nope").exit_code == 1


def test_cert_list_without_certificates(store):
    assert run(store, "init").exit_code == 0
    assert json.loads(run(store, "cert", "list").output) == {"certificates": []}
    assert "no certificate rings" in run(store, "cert", "list", as_json=False).output


def test_show_explains_an_ari_window_and_a_stale_one(pebble, store):
    first = issue(store, pebble, "ari", "ari-show.example.com")
    with manager_of(store) as manager:
        now = manager.now()
        start, end = now + dt.timedelta(days=20), now + dt.timedelta(days=22)
        later = now + dt.timedelta(hours=6)
        manager.update_attributes(
            "ari",
            first["version"],
            {
                "ari_window_start": start.isoformat(),
                "ari_window_end": end.isoformat(),
                "ari_retry_after": later.isoformat(),
                "ari_spread": "0.5",
            },
        )
    doc = json.loads(run(store, "cert", "show", "ari").output)
    assert doc["next_renewal"] == (start + dt.timedelta(days=1)).isoformat()
    assert "renewal window" in doc["renewal_reason"] and later.isoformat() in doc["renewal_reason"]
    assert doc["ari"] == {
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "retry_after": later.isoformat(),
    }
    with manager_of(store) as manager:
        stale = certificate_status(manager.load("ari"), later + dt.timedelta(minutes=1))
    assert "asked again" in stale.renewal.reason and not stale.renewal.due_now


# -- cert renew -----------------------------------------------------------------------------


def test_cert_renew_not_due_then_forced(pebble, store, tmp_path):
    deploy = tmp_path / "live"
    first = issue(store, pebble, "web", "renew-cli.example.com", "--deploy-to", str(deploy))
    result = run(store, "cert", "renew", "web")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["renewed"] is False and doc["version"] == first["version"]
    assert doc["next_renewal"] is not None
    text = run(store, "cert", "renew", "web", as_json=False).output
    assert "not due for renewal until" in text and doc["next_renewal"] in text
    assert "--force" in text
    with manager_of(store) as manager:
        assert [v.number for v in manager.load("web").versions] == [first["version"]]

    result = run(store, "cert", "renew", "web", "--force")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["renewed"] is True and doc["previous_version"] == first["version"]
    assert doc["version"] == first["version"] + 1 and doc["serial"] != first["serial"]
    assert doc["valid"] is True and doc["deploy"]["current"] is True
    with manager_of(store) as manager:
        ring = manager.load("web")
        old, new = ring.get(first["version"]), ring.get(doc["version"])
        assert old.state.value == "deactivated" and new.state.value == "active"
        assert new.fingerprint != old.fingerprint, "a new key"
        assert new.replaces == old.number
    assert deploy.joinpath("cert.pem").read_text() == new.attributes["certificate_pem"]


def test_cert_renew_refuses_a_key_ring(store):
    make_key_ring(store)
    result = run(store, "cert", "renew", "sign", "--force")
    assert result.exit_code == 1
    assert "not a certificate ring" in json.loads(result.output)["error"]["message"]


# -- cert revoke: every reason ends in a state the operator understands -----------------------


RENEWED_REASONS = [r for r in REVOKE_REASONS if r != "cessation-of-operation"]


@pytest.mark.parametrize("reason", RENEWED_REASONS)
def test_revoke_each_reason_names_the_next_step(pebble, store, reason, tmp_path):
    ring = "r-" + reason
    deploy = tmp_path / "live"
    first = issue(store, pebble, ring, f"{reason}.revoke.example.com", "--deploy-to", str(deploy))
    result = run(store, "cert", "revoke", ring, "--reason", reason)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    why = RevocationReason(reason)
    status = pebble.cert_status(int(first["serial"], 16))
    assert (status["Status"], status["Reason"]) == ("Revoked", why.rfc5280_code)
    assert doc["state"] == ("compromised" if why.compromise else "deactivated")
    assert doc["valid_certificate"] is False and doc["current_version"] is None
    assert doc["renewed_version"] is None
    assert f"`keylife cert renew {ring}`" in doc["next_step"]
    assert "keylife rotate" in doc["next_step"]
    assert f"{deploy} still holds the revoked certificate" in doc["next_step"]
    assert ("compromised key" in doc["next_step"]) is why.compromise
    assert (f"`keylife key retire {ring}`" in doc["next_step"]) is (
        reason in ("affiliation-changed", "privilege-withdrawn")
    )
    text = run(store, "cert", "revoke", ring, "--reason", reason, as_json=False)
    assert text.exit_code == 0, text.output  # a second revoke: already revoked, same advice
    assert "already revoked" in text.output and "next: " in text.output
    with manager_of(store) as manager:
        ring_now = manager.load(ring)
        v = ring_now.get(first["version"])
        assert CERTIFICATE_REVOKED in v.attributes
        assert v.revocation_reason is why
        # what `keylife rotate` will do: issue a new certificate, never revoke again
        plan = plan_rotation([ring_now], manager.policy, manager.now())
        assert [s.kind for s in plan.for_ring(ring)] == [StepKind.RENEW_CERTIFICATE]
    shown = json.loads(run(store, "cert", "show", ring).output)
    assert shown["valid"] is False and shown["revoked"] == reason and shown["retired"] is None
    assert shown["renewal_due"] is True and "no valid certificate" in shown["renewal_reason"]
    # ... and `cert renew` issues it without --force
    renewed = json.loads(run(store, "cert", "renew", ring).output)
    assert renewed["renewed"] is True and renewed["valid"] is True


def test_revoke_for_cessation_of_operation_retires_the_ring(pebble, store, tmp_path):
    deploy = tmp_path / "live"
    first = issue(store, pebble, "gone", "gone.revoke.example.com", "--deploy-to", str(deploy))
    # --renew contradicts the reason: refused before anything is sent
    refused = run(store, "cert", "revoke", "gone", "--reason", "cessation-of-operation", "--renew")
    assert refused.exit_code == 2
    assert pebble.cert_status(int(first["serial"], 16))["Status"] == "Valid"

    result = run(store, "cert", "revoke", "gone", "--reason", "cessation-of-operation")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    status = pebble.cert_status(int(first["serial"], 16))
    assert (status["Status"], status["Reason"]) == ("Revoked", 5)
    assert doc["state"] == "deactivated" and doc["valid_certificate"] is False
    assert doc["next_step"].startswith("nothing: gone is retired")
    assert f"take {deploy} out of your server's configuration" in doc["next_step"]
    with manager_of(store) as manager:
        ring = manager.load("gone")
        assert not plan_rotation([ring], manager.policy, manager.now()).for_ring("gone")
    shown = json.loads(run(store, "cert", "show", "gone").output)
    assert shown["retired"] and shown["next_renewal"] is None and not shown["renewal_due"]
    assert shown["renewal_reason"].startswith("never: the ring is retired")
    assert "Retired:" in run(store, "cert", "show", "gone", as_json=False).output
    for args in (["cert", "renew", "gone"], ["cert", "renew", "gone", "--force"]):
        again = run(store, *args)
        assert again.exit_code == 1
        message = json.loads(again.output)["error"]["message"]
        assert "retired" in message and "keylife cert issue" in message


@pytest.mark.parametrize("reason", ["superseded", "key-compromise"])
def test_revoke_with_renew_issues_the_replacement(pebble, store, reason):
    first = issue(store, pebble, "web", f"{reason}.renew-now.example.com")
    result = run(store, "cert", "revoke", "web", "--reason", reason, "--renew")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["renewed_version"] == first["version"] + 1
    assert doc["valid_certificate"] is True and doc["current_version"] == doc["renewed_version"]
    assert f"v{doc['renewed_version']} holds a new key" in doc["next_step"]
    with manager_of(store) as manager:
        ring = manager.load("web")
        assert ring.primary(manager.now()).number == doc["renewed_version"]
        assert not plan_rotation([ring], manager.policy, manager.now()).for_ring("web")


def test_revoke_with_renew_when_the_replacement_fails(pebble, store, unused_port):
    first = issue(store, pebble, "web", "renew-fails.example.com")
    with manager_of(store) as manager:
        ring = manager.load("web")
        settings = dict(json.loads(ring.attributes["acme"]), http_port=unused_port())
        manager.store.commit(
            dataclasses.replace(ring, attributes={"acme": json.dumps(settings)}),
            expected_revision=ring.revision,
        )
    result = run(store, "cert", "revoke", "web", "--reason", "superseded", "--renew")
    assert result.exit_code == 1
    message = json.loads(result.output)["error"]["message"]
    assert "certificate revoked (superseded), but no replacement was issued" in message
    assert "`keylife cert renew web`" in message
    status = pebble.cert_status(int(first["serial"], 16))
    assert status["Status"] == "Revoked"
    with manager_of(store) as manager:
        v = manager.load("web").get(first["version"])
        assert v.state.value == "deactivated" and CERTIFICATE_REVOKED in v.attributes


def test_revoking_an_old_version_leaves_the_current_one(pebble, store):
    first = issue(store, pebble, "web", "old.revoke.example.com")
    assert run(store, "cert", "renew", "web", "--force").exit_code == 0
    result = run(
        store, "cert", "revoke", "web", "--version", str(first["version"]), "--reason", "superseded"
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["valid_certificate"] is True and doc["current_version"] == first["version"] + 1
    assert doc["next_step"].startswith("nothing")


def test_revoke_on_a_ring_without_certificate(store):
    make_key_ring(store)
    result = run(store, "cert", "revoke", "sign", "--reason", "superseded")
    assert result.exit_code == 1
    assert "not a certificate ring" in json.loads(result.output)["error"]["message"]


# -- tls-alpn-01 through the CLI -------------------------------------------------------------


def test_cli_issue_and_renew_with_tls_alpn01(pebble, store):
    first = issue(store, pebble, "alpn", "alpn-cli.example.com", challenge="tls-alpn-01")
    with manager_of(store) as manager:
        settings = json.loads(manager.load("alpn").attributes["acme"])
    assert settings["challenge"] == "tls-alpn-01" and settings["tls_port"] == pebble.tls_port
    shown = json.loads(run(store, "cert", "show", "alpn").output)
    assert shown["challenge"] == "tls-alpn-01"
    renewed = json.loads(run(store, "cert", "renew", "alpn", "--force").output)
    assert renewed["version"] == first["version"] + 1


def test_tls_alpn01_wildcard_refused_before_any_order(store, unused_port):
    result = run(
        store,
        "cert",
        "issue",
        "w",
        "--domain",
        "*.example.com",
        "--directory",
        f"https://127.0.0.1:{unused_port()}/dir",
        "--challenge",
        "tls-alpn-01",
    )
    assert result.exit_code == 1
    assert "dns-01" in json.loads(result.output)["error"]["message"]


# -- the documented JSON shape ------------------------------------------------------------------


def test_documented_json_shape_is_the_real_one():
    text = DOC.read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.S)
    shown = [json.loads(b) for b in blocks]
    status = next(d for d in shown if "renewal_reason" in d)
    assert set(status) == STATUS_KEYS
    assert set(status["deploy"]) == {"directory", "files", "current"}
    assert set(status["ari"]) == {"window_start", "window_end", "retry_after"}
    revoke = next(d for d in shown if "next_step" in d)
    assert set(revoke) == {
        "ring",
        "version",
        "serial",
        "reason",
        "revoked",
        "already_revoked",
        "state",
        "renewed_version",
        "valid_certificate",
        "current_version",
        "next_step",
    }


def test_key_rotate_on_a_certificate_ring_renews_through_the_ca(pebble, store):
    """Issue 14: `keylife key rotate` on a certificate ring made a key without a certificate."""
    first = issue(store, pebble, "web", "rotate-cli.example.com")
    result = run(store, "key", "rotate", "web")
    assert result.exit_code == 0, result.output
    with manager_of(store) as manager:
        ring = manager.load("web")
        new = ring.primary(manager.now())
        assert new is not None and new.number == first["version"] + 1
        assert "certificate_pem" in new.attributes, "the new key came with its certificate"
        assert ring.get(first["version"]).state.value == "deactivated"
