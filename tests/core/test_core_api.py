"""The Python API tour: what a service does with keylife.open() and a ring."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.hmac import HMAC

import keylife
from keylife import errors
from keylife.rotation import run as rotate_run

DAY = dt.timedelta(days=1)


def test_open_uses_the_environment(store) -> None:
    with keylife.open() as m:  # KEYLIFE_STORE / KEYLIFE_MASTER_KEY_FILE from the fixture
        assert m.store.url == f"sqlite://{store.db}"
        assert m.policy.profile == "default"


def test_open_without_a_store_is_store_unavailable(env) -> None:
    with pytest.raises(errors.StoreUnavailableError, match="keylife init"):
        keylife.open()


def test_signing_ring_through_rotation_and_grace(store, t0) -> None:
    clock = keylife.FixedClock(t0)
    with store.open(clock=clock, actor="svc") as m:
        m.create_ring("payments-signing", "ec-p256", "signing")
        ring = m.ring("payments-signing")
        first = ring.primary()
        assert first.number == 1
        assert isinstance(first.key, ec.EllipticCurvePrivateKey)
        sig = first.key.sign(b"invoice 1", ec.ECDSA(hashes.SHA256()))

        clock.advance(100 * DAY)
        m.rotate("payments-signing")
        second = ring.primary()
        assert second.number == 2 and second.version.replaces == 1
        assert second.version.fingerprint != first.version.fingerprint
        # The old version still verifies within the grace period (365 days for signing)...
        old = ring.version(1)
        old.public_key().verify(sig, b"invoice 1", ec.ECDSA(hashes.SHA256()))
        with pytest.raises(InvalidSignature):
            second.key.public_key().verify(sig, b"invoice 1", ec.ECDSA(hashes.SHA256()))
        # ...and not after it.
        clock.advance(365 * DAY - dt.timedelta(seconds=1))
        assert ring.version(1).number == 1
        clock.advance(dt.timedelta(seconds=1))
        with pytest.raises(errors.MaterialUnavailableError, match="payments-signing v1"):
            ring.version(1)
        # An explicit time works too (no hidden now()).
        assert ring.version(1, now=t0 + 200 * DAY).number == 1

        history = ring.history()
        assert [v.number for v in history] == [1, 2]
        assert [v.state.value for v in history] == ["deactivated", "active"]
        assert [e.action for e in history[0].events] == ["create", "activate", "deactivate"]
        assert history[0].replaced_by == 2


def test_data_encryption_ring_decrypts_old_data_until_destroyed(store, t0) -> None:
    clock = keylife.FixedClock(t0)
    with store.open(clock=clock) as m:
        m.create_ring("orders", "aes-256", "data-encryption")
        ring = m.ring("orders")
        aead = ring.primary().aead()
        assert isinstance(aead, AESGCM)
        box = aead.encrypt(b"n" * 12, b"card 4111", b"order-1")
        with pytest.raises(TypeError, match="aead"):
            _ = ring.primary().key
        m.rotate("orders")
        assert ring.version(1).aead().decrypt(b"n" * 12, box, b"order-1") == b"card 4111"
        clock.advance(10 * DAY)
        m.destroy("orders", 1)  # scheduled: the policy's destroy_wait (7 days) later
        assert ring.version(1).aead().decrypt(b"n" * 12, box, b"order-1") == b"card 4111"
        clock.advance(7 * DAY)
        assert rotate_run(m).ok  # carries the destruction out
        with pytest.raises(errors.MaterialUnavailableError, match="destroyed"):
            ring.version(1)
        # Destroy keeps the metadata and never frees the number.
        assert [v.number for v in ring.history()] == [1, 2]
        assert ring.history()[0].destroy_date == t0 + 17 * DAY
        assert not m.store.has_material("orders", 1)
        assert m.rotate("orders").number == 3


def test_other_key_families(store, t0) -> None:
    with store.open(clock=keylife.FixedClock(t0)) as m:
        m.create_ring("cc", "chacha20", "data-encryption")
        assert isinstance(m.ring("cc").primary().aead(), ChaCha20Poly1305)
        m.create_ring("mac", "hmac-sha384", "authentication")
        mac = m.ring("mac").primary().hmac()
        assert isinstance(mac, HMAC) and mac.algorithm.name == "sha384"
        mac.update(b"x")
        assert len(mac.finalize()) == 48
        m.create_ring("ed", "ed25519", "signing")
        assert isinstance(m.ring("ed").primary().key, ed25519.Ed25519PrivateKey)
        m.create_ring("kx", "x25519", "key-agreement")
        assert isinstance(m.ring("kx").primary().key, x25519.X25519PrivateKey)
        m.create_ring("wrap", "rsa-3072", "key-wrapping")
        key = m.ring("wrap").primary().key
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 3072
        with pytest.raises(TypeError):
            m.ring("wrap").primary().aead()
        # Default types per purpose come from the policy.
        assert m.create_ring("dflt", purpose="authentication").spec.name == "hmac-sha256"


def test_suspend_resume_and_invalid_transitions(store, t0) -> None:
    with store.open(clock=keylife.FixedClock(t0)) as m:
        m.create_ring("r", "ec-p256", "signing")
        m.suspend("r", 1, reason="investigating")
        with pytest.raises(errors.MaterialUnavailableError):
            m.ring("r").primary()
        with pytest.raises(errors.MaterialUnavailableError):
            m.ring("r").version(1)
        with pytest.raises(errors.InvalidTransitionError) as info:
            m.destroy("r", 1)
        assert "is suspended; cannot destroy" in str(info.value)
        assert "Allowed from suspended: resume, deactivate, compromise" in str(info.value)
        m.resume("r", 1)
        assert m.ring("r").primary().number == 1
        events = m.load("r").get(1).events
        assert [(e.action, e.reason) for e in events][-2:] == [
            ("suspend", "investigating"),
            ("resume", "resumed by operator"),
        ]


def test_future_activation_and_explicit_deactivation(store, t0) -> None:
    clock = keylife.FixedClock(t0)
    with store.open(clock=clock) as m:
        v = m.create_ring(
            "later", "ec-p256", "signing", activate_at=t0 + DAY, deactivate_at=t0 + 30 * DAY
        )
        assert v.state is keylife.State.PRE_ACTIVE
        assert v.activation == t0 + DAY and v.deactivation == t0 + 30 * DAY
        with pytest.raises(errors.MaterialUnavailableError, match="no active version"):
            m.ring("later").primary()
        m.activate("later", 1)
        assert m.ring("later").primary().number == 1
        with pytest.raises(errors.LifecycleError, match="must be after activation"):
            m.create_ring("bad", "ec-p256", "signing", activate_at=t0, deactivate_at=t0)
        # Default deactivation: activation plus the purpose's cryptoperiod.
        d = m.create_ring("d", "ec-p256", "signing")
        assert d.deactivation - d.activation == m.policy.rules(keylife.Purpose.SIGNING).cryptoperiod


def test_compromise_in_one_step(store, t0) -> None:
    clock = keylife.FixedClock(t0)
    with store.open(clock=clock) as m:
        m.create_ring("api", "hmac-sha256", "authentication")
        clock.advance(DAY)
        result = m.compromise("api", occurred_at=t0 + DAY / 2, message="found in a paste")
        assert result.compromised.state is keylife.State.COMPROMISED
        assert result.compromised.compromise_occurred == t0 + DAY / 2
        assert result.compromised.revocation_reason is keylife.RevocationReason.KEY_COMPROMISE
        assert result.replacement.number == 2 and result.replacement.replaces == 1
        assert m.ring("api").primary().number == 2
        assert result.dependents and "MACs made with v1" in result.dependents[0]
        with pytest.raises(errors.MaterialUnavailableError):
            m.ring("api").version(1)
        m.destroy("api", 1, wait=dt.timedelta(0))  # compromised: no need to wait
        assert m.load("api").get(1).state is keylife.State.DESTROYED_COMPROMISED
        actions = [r.action for r in m.audit_records("api")]
        assert actions == [
            "create", "activate", "compromise", "create", "activate", "schedule-destroy", "destroy",
        ]  # fmt: skip
        with pytest.raises(errors.LifecycleError, match="in the future"):
            m.compromise("api", occurred_at=t0 + 30 * DAY)


def test_revoke_with_a_non_compromise_reason_deactivates(store, t0) -> None:
    with store.open(clock=keylife.FixedClock(t0)) as m:
        m.create_ring("r", "ed25519", "signing")
        v = m.revoke("r", 1, "cessation-of-operation", message="service retired")
        assert v.state is keylife.State.DEACTIVATED
        assert v.revocation_reason is keylife.RevocationReason.CESSATION_OF_OPERATION
        with pytest.raises(errors.LifecycleError, match="allowed reasons: unspecified"):
            m.revoke("r", 1, "because")


def test_error_tree() -> None:
    for name in errors.__all__:
        cls = getattr(keylife, name)
        assert issubclass(cls, errors.KeylifeError)
    assert issubclass(errors.SpecNotAllowedError, errors.PolicyError)
    assert issubclass(errors.IntegrityError, errors.StoreError)
    assert issubclass(errors.InvalidTransitionError, errors.LifecycleError)


def test_ring_then_primary_reads_the_ring_once(tmp_path) -> None:
    """``manager.ring(name).primary()`` (the common service call) reads the ring once; later
    calls on the same KeyRing read it again, so they never serve a stale primary."""
    from keylife.store.sqlite import MasterKeyFile, SqliteStore

    store = SqliteStore.init(tmp_path / "k.db", MasterKeyFile(tmp_path / "mk"))
    reads: list[str] = []
    original = store.load_ring

    def counting(name: str):  # type: ignore[no-untyped-def]
        reads.append(name)
        return original(name)

    store.load_ring = counting  # type: ignore[method-assign]
    with keylife.KeyManager(store) as m:
        m.create_ring("svc", "aes-256", "data-encryption")
        reads.clear()
        ring = m.ring("svc")
        assert ring.primary().number == 1
        assert reads == ["svc"]
        m.rotate("svc")
        reads.clear()
        assert ring.primary().number == 2  # fresh, not the copy from ring()
        assert reads == ["svc"]
