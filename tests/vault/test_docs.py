"""docs/vault.md shows the policy `keylife vault policy` prints (its examples run in
tests/docs/test_pages.py, against the OpenBao dev server the page starts)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from keylife.vault import VaultKeyStore

pytestmark = pytest.mark.vault

DOC = Path(__file__).resolve().parents[2] / "docs" / "vault.md"


def test_docs_policy_matches_generated() -> None:
    import base64

    from keylife.vault.policy import service_policy
    from keylife.vault.transit import context_prefix

    text = DOC.read_text()
    assert base64.b64encode(context_prefix("payments-signing")).decode() + "*" in text
    with VaultKeyStore.from_url("vault://127.0.0.1:1/keylife") as store:
        hcl = service_policy(store, "payments-signing")
    for line in re.findall(r'path "([^"]+)"', hcl):
        assert f'path "{line}"' in text
