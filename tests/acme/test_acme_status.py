"""A certificate ring's stored ACME settings are read back from the store (a restored backup, a
shared Vault path): whatever JSON is there, reading them and reporting on them gives a keylife
error or a valid report, never another exception."""

from __future__ import annotations

import contextlib
import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keylife.acme import CertSettings
from keylife.acme.status import CertificateStatus, Renewal
from keylife.errors import KeylifeError

NOW = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
VALID = json.loads(
    CertSettings(
        directory="https://acme.example/dir",
        domains=("www.example.com",),
        deploy_to="/etc/keylife/live/web",
        deploy_hook="systemctl reload nginx",
    ).to_json()
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


def report(text: str) -> dict[str, object]:
    s = CertSettings.from_json(text)
    s.solver()
    status = CertificateStatus(
        ring="web",
        settings=s,
        version=None,
        certificate=None,
        renewal=Renewal(NOW, "now: the ring has no valid certificate", True),
        deployed_current=None,
        now=NOW,
        valid=False,
    )
    doc = status.to_dict()
    json.dumps(doc)
    return doc


def test_the_valid_settings_report():
    doc = report(json.dumps(VALID))
    assert doc["deploy"]["files"]["fullchain"] == "/etc/keylife/live/web/fullchain.pem"
    assert doc["account_ring"].startswith("acme-account-")


@settings(max_examples=200, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(VALID)), value=JSON_VALUES)
def test_fuzz_one_stored_field(field, value):
    with contextlib.suppress(KeylifeError):
        report(json.dumps({**VALID, field: value}))


@settings(max_examples=100, deadline=1000)
@given(value=JSON_VALUES)
def test_fuzz_whole_document(value):
    with contextlib.suppress(KeylifeError):
        report(json.dumps(value))


def test_record_revocation_of_a_version_not_yet_in_use(tmp_path):
    """A pre-active version whose certificate was revoked must never go into use."""
    import keylife
    from keylife.acme.rings import record_revocation
    from keylife.certificates import CERTIFICATE_REVOKED
    from keylife.destruction import held
    from keylife.errors import DestroyScheduleError
    from keylife.rotation import run

    with keylife.init(
        str(tmp_path / "k.db"), master_key_file=str(tmp_path / "master.key")
    ) as manager:
        later = manager.now() + dt.timedelta(days=3)
        for name in ("soon", "soon-compromised"):
            manager.create_ring(name, "ec-p256", "tls-server", activate_at=later)
            assert manager.load(name).get(1).state.value == "pre-active"
        v = record_revocation(manager, "soon", 1, "superseded")
        # its destruction is scheduled: held back from use until `keylife rotate` carries it out
        assert v.state.value == "pre-active" and CERTIFICATE_REVOKED in v.attributes
        assert held(v)
        with pytest.raises(DestroyScheduleError, match="scheduled for destruction"):
            manager.activate("soon", 1)
        run(manager, now=manager.now() + manager.policy.destroy_wait, rings=["soon"])
        assert manager.load("soon").get(1).state.value == "destroyed"
        assert "retired" in manager.load("soon").attributes  # that was its only key
        v = record_revocation(manager, "soon-compromised", 1, "key-compromise")
        assert v.state.value == "compromised" and CERTIFICATE_REVOKED in v.attributes


def self_signed_pem(not_before: dt.datetime) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "waiting.example.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=90))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_a_certificate_waiting_to_go_into_use_is_not_renewed(tmp_path):
    """As the planner: no renewal while a newer certificate waits (pre-active)."""
    import keylife
    from keylife.acme.status import certificate_status
    from keylife.certificates import ACME_SETTINGS, CERTIFICATE_PEM

    with keylife.init(
        str(tmp_path / "k.db"), master_key_file=str(tmp_path / "master.key")
    ) as manager:
        later = manager.now() + dt.timedelta(days=3)
        manager.create_ring(
            "waits",
            "ec-p256",
            "tls-server",
            activate_at=later,
            attributes={ACME_SETTINGS: json.dumps(VALID)},
            version_attributes={CERTIFICATE_PEM: self_signed_pem(later)},
        )
        status = certificate_status(manager.load("waits"), manager.now())
    assert status.valid is False and status.version is not None
    assert status.renewal.due is None and not status.renewal.due_now
    assert "v1's certificate waits to go into use" in status.renewal.reason
    assert status.to_dict()["serial"] == "7"
