"""Account key rollover (RFC 8555 §7.3.5, keyChange), which the ``acme`` package lacks.

The outer JWS is signed by the current key with the account URL as ``kid``; its payload is an
inner JWS signed by the new key, with the new ``jwk`` in its header, the same ``url`` and no
nonce, whose payload names the account and the old public key.
"""

from __future__ import annotations

import json

from acme import jws as acme_jws
from josepy.jws import JWS

from keylife.acme.client import AcmeClient, jwk_and_alg
from keylife.acme.csr import CertificateKey
from keylife.acme.problems import translated


def build_key_change(
    client: AcmeClient, new_key: CertificateKey, url: str, account_url: str
) -> JWS:
    """The inner JWS of a keyChange request."""
    new_jwk, new_alg = jwk_and_alg(new_key)
    old_jwk, _ = jwk_and_alg(client.account_key)
    payload = {"account": account_url, "oldKey": old_jwk.public_key().to_partial_json()}
    inner: JWS = acme_jws.JWS.sign(
        json.dumps(payload).encode(), key=new_jwk, alg=new_alg, nonce=None, url=url, kid=None
    )
    return inner


def rollover_account_key(client: AcmeClient, new_key: CertificateKey) -> None:
    """Replace the account key at the CA; on success the client signs with ``new_key``."""
    account_url = client.require_account()
    with client.operation():
        url = client.resource_url("keyChange")
        inner = build_key_change(client, new_key, url, account_url)
        with translated("rolling over the account key", url):
            client.post(url, inner.to_partial_json())
    client.use_account_key(new_key)


__all__ = ["build_key_change", "rollover_account_key"]
