"""Hypothesis properties of the ring primitives, and fuzzing of every parser of outside input
(``decrypt``, ``decrypt_stream``, ``unwrap``, ``verify``, ``verify_mac``, ``rewrap``): a keylife
error or a valid result, never another exception. Bounded: the whole file runs in well under
a minute."""

from __future__ import annotations

import contextlib
import io
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keylife
from keylife import errors

from .conftest import DAY

FAST = settings(max_examples=60, deadline=2000, suppress_health_check=list(HealthCheck))
FUZZ = settings(max_examples=200, deadline=2000, suppress_health_check=list(HealthCheck))
_names = (f"p{i}" for i in itertools.count())


def test_round_trip_for_every_version_in_its_window(manager, clock) -> None:
    @settings(max_examples=15, deadline=10000, suppress_health_check=list(HealthCheck))
    @given(
        plaintexts=st.lists(st.binary(max_size=200), min_size=1, max_size=4),
        ad=st.binary(max_size=20),
        gaps=st.lists(st.integers(1, 800), min_size=4, max_size=4),
        spec=st.sampled_from(["aes-128", "aes-256", "chacha20"]),
    )
    def check(plaintexts: list[bytes], ad: bytes, gaps: list[int], spec: str) -> None:
        name = next(_names)
        manager.create_ring(name, spec, "data-encryption")
        ring = manager.ring(name)
        boxes = []
        for i, plain in enumerate(plaintexts):
            if i:
                clock.advance(gaps[i] * DAY)
                manager.rotate(name)
            boxes.append((ring.encrypt(plain, ad), plain))
        clock.advance(gaps[0] * DAY)
        grace = manager.policy.rules(keylife.Purpose.DATA_ENCRYPTION).grace_period
        for box, plain in boxes:
            version = manager.load(name).get(ring.version_of(box))
            assert version is not None
            if version.processes_at(clock.now(), grace):
                assert ring.decrypt(box, ad) == plain
            else:
                with pytest.raises(errors.MaterialUnavailableError):
                    ring.decrypt(box, ad)

    check()


def test_any_flipped_bit_or_other_ring_is_refused(rings) -> None:
    orders, invoices = rings.ring("orders"), rings.ring("invoices")

    @FAST
    @given(plain=st.binary(max_size=100), ad=st.binary(max_size=10), where=st.integers(0))
    def check(plain: bytes, ad: bytes, where: int) -> None:
        box = orders.encrypt(plain, ad)
        bit = where % (len(box) * 8)
        bad = bytearray(box)
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(keylife.KeylifeError):
            orders.decrypt(bytes(bad), ad)
        with pytest.raises(errors.DecryptionError):
            invoices.decrypt(box, ad)

    check()


def test_truncated_or_reordered_streams_are_refused(rings) -> None:
    orders = rings.ring("orders")
    data = bytes(range(256)) * 700  # 179,200 bytes: three segments
    out = io.BytesIO()
    orders.encrypt_stream(io.BytesIO(data), out)
    blob = out.getvalue()
    seg = 65536 + 16

    @settings(max_examples=40, deadline=5000, suppress_health_check=list(HealthCheck))
    @given(cut=st.integers(0, len(blob) - 1), order=st.permutations([0, 1, 2]))
    def check(cut: int, order: list[int]) -> None:
        with pytest.raises(errors.DecryptionError):
            orders.decrypt_stream(io.BytesIO(blob[:cut]), io.BytesIO())
        segments = [blob[32 + i * seg : 32 + (i + 1) * seg] for i in range(3)]
        shuffled = blob[:32] + b"".join(segments[i] for i in order)
        if order != [0, 1, 2]:
            with pytest.raises(errors.DecryptionError):
                orders.decrypt_stream(io.BytesIO(shuffled), io.BytesIO())

    check()


def test_verify_rejects_other_rings_and_versions_outside_the_window(rings, clock) -> None:
    names = ["sig-p256", "sig-ed", "sig-rsa", "sig-p384"]

    @FAST
    @given(data=st.binary(max_size=64), signer=st.sampled_from(names), other=st.sampled_from(names))
    def check(data: bytes, signer: str, other: str) -> None:
        signature = rings.ring(signer).sign(data)
        assert rings.ring(signer).verify(data, signature) == f"{signer}:v1"
        if other != signer:
            with pytest.raises(errors.InvalidSignatureError):
                rings.ring(other).verify(data, signature)

    check()
    ring = rings.ring("sig-p256")
    signature = ring.sign(b"old")
    rings.rotate("sig-p256")
    clock.advance(366 * DAY)
    with pytest.raises(errors.MaterialUnavailableError):
        ring.verify(b"old", signature)


# ---- fuzzing: outside input -----------------------------------------------------------------


def _mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    flips = st.tuples(st.integers(0, max(0, len(valid) - 1)), st.integers(1, 255)).map(
        lambda p: valid[: p[0]] + bytes([valid[p[0]] ^ p[1]]) + valid[p[0] + 1 :]
    )
    cuts = st.integers(0, len(valid)).map(lambda n: valid[:n])
    extended = st.binary(min_size=1, max_size=40).map(lambda extra: valid + extra)
    spliced = st.binary(max_size=40).map(lambda head: valid[:5] + head)
    return st.one_of(st.binary(max_size=300), flips, cuts, extended, spliced)


def _safe(call, *args) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(keylife.KeylifeError):
        call(*args)


def test_fuzz_decrypt_unwrap_rewrap(rings) -> None:
    orders, kek, rsa = rings.ring("orders"), rings.ring("kek"), rings.ring("kek-rsa")
    box = orders.encrypt(b"payload", b"ad")
    wrapped = kek.wrap(b"k" * 32)
    rsa_wrapped = rsa.wrap(b"k" * 32)

    @FUZZ
    @given(
        blob=st.one_of(_mutations(box), _mutations(wrapped), _mutations(rsa_wrapped)),
        ad=st.sampled_from([b"", b"ad"]),
    )
    def check(blob: bytes, ad: bytes) -> None:
        _safe(orders.decrypt, blob, ad)
        _safe(orders.rewrap, blob, ad)
        _safe(kek.unwrap, blob)
        _safe(rsa.unwrap, blob)
        _safe(kek.rewrap, blob)

    check()


def test_fuzz_decrypt_stream(rings) -> None:
    orders = rings.ring("orders")
    out = io.BytesIO()
    orders.encrypt_stream(io.BytesIO(b"z" * 70000), out)

    @FUZZ
    @given(blob=_mutations(out.getvalue()[:200]) | _mutations(out.getvalue()))
    def check(blob: bytes) -> None:
        _safe(orders.decrypt_stream, io.BytesIO(blob), io.BytesIO())

    check()


def test_fuzz_verify_and_verify_mac(rings) -> None:
    rings_ = [rings.ring(n) for n in ("sig-p256", "sig-ed", "sig-rsa")]
    signatures = [r.sign(b"data") for r in rings_]
    webhooks = rings.ring("webhooks")
    tag = webhooks.mac(b"data")

    @FUZZ
    @given(
        blob=st.one_of(*(_mutations(s) for s in signatures), _mutations(tag)),
        data=st.sampled_from([b"data", b""]),
    )
    def check(blob: bytes, data: bytes) -> None:
        for ring in rings_:
            _safe(ring.verify, data, blob)
        _safe(webhooks.verify_mac, data, blob)

    check()
