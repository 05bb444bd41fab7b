"""``keylife rotate --metrics-file``: the store's state in the textfile, read back with the
Prometheus client's own parser (issue 13 item 7)."""

from __future__ import annotations

import datetime as dt

from prometheus_client.parser import text_string_to_metric_families

from keylife.checkpoint import make_checkpoint
from tests.report.store50 import self_signed

from .conftest import StoreEnv

DAY = dt.timedelta(days=1)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the textfile by (name, sorted labels); the parser rejects bad syntax."""
    out = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge" and family.documentation, family.name
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_carry_certificates_audit_head_checkpoint_and_compliance(
    store_env: StoreEnv,
) -> None:
    with store_env.manager() as m:
        now = m.now()
        m.create_ring("orders", "aes-256", "data-encryption")
        m.create_ring("legacy", "rsa-2048", "signing")
        pem, _ = self_signed("www.example.com", now - DAY, 90)
        m.create_ring(
            "web-tls",
            "ec-p256",
            "tls-server",
            deactivate_at=now + 88 * DAY,
            version_attributes={"certificate_pem": pem, "domains": "www.example.com"},
        )
        checkpoint = make_checkpoint(m)
    path = store_env.root / "keylife.prom"
    # under the 128-bit profile the rsa-2048 key is replaced; its v1 still holds material
    result = store_env.run("--policy", "128-bit", "rotate", "--metrics-file", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    got = samples(path.read_text())
    not_after = (now - DAY + 90 * DAY).replace(microsecond=0)
    key = (
        "keylife_certificate_not_after_timestamp_seconds",
        (("ring", "web-tls"), ("version", "1")),
    )
    assert got[key] == not_after.timestamp()
    with store_env.manager() as m:
        records = m.store.read_audit()
    assert got[("keylife_audit_head_sequence", ())] == records[-1].seq
    made = dt.datetime.fromisoformat(checkpoint.at).timestamp()
    assert abs(got[("keylife_audit_last_checkpoint_timestamp_seconds", ())] - made) < 1
    assert got[("keylife_key_versions", (("compliance", "non_compliant"),))] == 1  # legacy v1
    # orders v1, legacy v2, web-tls v1 and the checkpoint ring's Ed25519 key
    assert got[("keylife_key_versions", (("compliance", "compliant"),))] == 4
    assert ("keylife_ring_next_due_timestamp_seconds", (("ring", "orders"),)) in got
    assert got[("keylife_rotate_failures", ())] == 0


def test_a_store_that_cannot_be_read_leaves_only_the_store_metrics_out() -> None:
    from keylife.errors import StoreUnavailableError
    from keylife.rotation import metrics
    from keylife.rotation.results import RunReport

    class Gone:
        def rings(self) -> list[object]:
            raise StoreUnavailableError("store went away")

    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert metrics.store_facts(Gone(), now) is None  # type: ignore[arg-type]
    got = samples(metrics.render(RunReport(now, False, (), 0, {}), "", None))
    assert got[("keylife_rotate_failures", ())] == 0
    assert not any(name.startswith("keylife_audit") for name, _ in got)
