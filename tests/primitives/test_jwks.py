"""A JWS made by ``ring.sign_jws`` verifies with PyJWT against ``ring.jwks()`` (and the JWKS
``keylife key public --format jwks`` prints), on the embedded store and on a real OpenBao; the
JWKS drops versions past their processing window, and tokens of those versions stop
verifying."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import jwt
import pytest

import keylife

from .conftest import DAY, T0

SPECS = ["ec-p256", "ec-p384", "ec-p521", "ed25519", "rsa-2048"]


def verify_with_pyjwt(token: str, jwks: dict[str, object]) -> dict[str, object]:
    """What a relying party does: pick the key by ``kid`` from the JWKS, verify with PyJWT."""
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    return jwt.decode(token, key=key, algorithms=[header["alg"]])  # type: ignore[no-any-return]


def check_jwks_through_rotation(m: keylife.KeyManager, clock: keylife.FixedClock) -> None:
    for spec in SPECS:
        m.create_ring(f"jws-{spec}", spec, "signing")
    tokens = {
        spec: m.ring(f"jws-{spec}").sign_jws({"sub": "alice", "spec": spec}) for spec in SPECS
    }
    for spec, token in tokens.items():
        ring = m.ring(f"jws-{spec}")
        jwks = ring.jwks()
        assert [(k["kid"], k["use"]) for k in jwks["keys"]] == [(f"jws-{spec}:v1", "sig")]
        assert verify_with_pyjwt(token, jwks) == {"sub": "alice", "spec": spec}
    clock.advance(10 * DAY)
    for spec in SPECS:
        m.rotate(f"jws-{spec}")
    for spec, token in tokens.items():
        ring = m.ring(f"jws-{spec}")
        jwks = ring.jwks()
        assert [k["kid"] for k in jwks["keys"]] == [f"jws-{spec}:v1", f"jws-{spec}:v2"]
        assert verify_with_pyjwt(token, jwks)["sub"] == "alice"  # v1: still in its window
        assert verify_with_pyjwt(ring.sign_jws(b'{"n":2}'), jwks) == {"n": 2}
        with pytest.raises(jwt.InvalidSignatureError):
            other = m.ring("jws-ed25519" if spec != "ed25519" else "jws-ec-p256")
            forged = token.rsplit(".", 1)[0] + "." + other.sign_jws({"x": 1}).rsplit(".", 1)[1]
            verify_with_pyjwt(forged, jwks)
    clock.advance(366 * DAY)  # past the signing grace period
    for spec, token in tokens.items():
        jwks = m.ring(f"jws-{spec}").jwks()
        assert [k["kid"] for k in jwks["keys"]] == [f"jws-{spec}:v2"]
        with pytest.raises(KeyError):
            verify_with_pyjwt(token, jwks)


def test_jwks_with_pyjwt_on_sqlite(sandbox) -> None:
    clock = keylife.FixedClock(T0)
    db, key = str(sandbox / "k.db"), sandbox / "mk"
    with keylife.init(db, master_key_file=key, clock=clock) as m:
        check_jwks_through_rotation(m, clock)
        m.create_ring("cli-jws", "ec-p256", "signing")
        token = m.ring("cli-jws").sign_jws({"sub": "bob"})
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "keylife_cli",
            "--store",
            db,
            "--master-key-file",
            str(key),
            "key",
            "public",
            "cli-jws",
            "--format",
            "jwks",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert verify_with_pyjwt(token, json.loads(proc.stdout)) == {"sub": "bob"}


@pytest.mark.vault
def test_jwks_with_pyjwt_on_openbao(vault_env, mounts) -> None:
    url = vault_env.store_url(*mounts)
    keylife.init(url).close()
    clock = keylife.FixedClock(dt.datetime.now(dt.UTC))
    with keylife.open(url, clock=clock, refresh=30) as m:
        check_jwks_through_rotation(m, clock)
