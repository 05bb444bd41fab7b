"""docs/stability.md's claims about moved names hold, and every public module it lists has an
API reference page in the site's navigation."""

from __future__ import annotations

import importlib
import re

from tests.docs.runner import REPO


def test_the_vault_shim_is_the_moved_class() -> None:
    from keylife.store.vault import VaultKeyStore as old
    from keylife.vault import VaultKeyStore as new

    assert old is new


def test_open_and_init_live_in_compose() -> None:
    import keylife
    import keylife.compose

    assert keylife.open is keylife.compose.open and keylife.init is keylife.compose.init


def test_every_reference_page_is_in_the_nav_and_imports() -> None:
    nav = (REPO / "mkdocs.yml").read_text()
    for page in sorted((REPO / "docs" / "reference").glob("*.md")):
        assert f"reference/{page.name}" in nav, page.name
        for target in re.findall(r"^::: ([\w.]+)", page.read_text(), re.M):
            module, _, name = target.rpartition(".")
            try:
                importlib.import_module(target)
            except ModuleNotFoundError:
                assert hasattr(importlib.import_module(module), name), target
    for module in ("errors", "policy", "lifecycle", "operations", "rotation", "tls", "acme"):
        assert (REPO / "docs" / "reference" / f"{module}.md").exists(), module
