"""The layers hold: no import cycles, no import from a lower layer to a higher one, no private
name imported across modules, no module over 500 lines, no function over 80.

The checker and the layer order live in :mod:`tests.layering_rules`. The first tests prove the
checker on small synthetic trees written into ``tmp_path`` (so each rule is seen to fail when it
is broken); the last ones run it on the real ``keylife/`` and ``cli/``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.layering_rules import (
    LAYERS,
    REAL_ROOTS,
    Violation,
    build_graph,
    check,
    report,
)

# The lead removes this marker once the layering redesign (issue 9) is merged.

# A small tree shaped like keylife, one or two modules per layer, that breaks no rule.
CLEAN: dict[str, str] = {
    "keylife/__init__.py": """
        from ._version import __version__
        from .errors import KeylifeError

        _LAZY = {"KeyManager": "manager", "open": "compose"}
    """,
    "keylife/_version.py": '__version__ = "0"',
    "keylife/errors.py": "class KeylifeError(Exception): ...",
    "keylife/clock.py": "import datetime",
    "keylife/lifecycle.py": """
        from typing import TYPE_CHECKING

        from .errors import KeylifeError

        if TYPE_CHECKING:
            from .clock import Clock
    """,
    "keylife/operations.py": "from . import lifecycle",
    "keylife/keygen.py": "from cryptography.hazmat.primitives import hashes",
    "keylife/store/__init__.py": "from .base import KeyStore",
    "keylife/store/base.py": "from ..lifecycle import Ring",
    "keylife/store/sqlite.py": """
        import sqlite3

        from ..errors import KeylifeError
        from .base import KeyStore
    """,
    "keylife/store/registry.py": "from . import sqlite",
    "keylife/manager.py": """
        from keylife import operations
        from keylife.store.base import KeyStore

        def rotate():
            from .keygen import generate
    """,
    "keylife/backup.py": "from .errors import KeylifeError",
    "keylife/acme/__init__.py": "from .rings import renew_ring",
    "keylife/acme/client.py": "import josepy",
    "keylife/acme/rings.py": """
        from ..manager import KeyManager
        from .client import AcmeClient
    """,
    "keylife/compose.py": """
        import importlib

        from .acme import AcmeAuthority
        from .store import registry

        def open():
            return importlib.import_module("keylife.store.sqlite")
    """,
    "keylife_cli/__init__.py": "",
    "keylife_cli/main.py": """
        from keylife._version import __version__

        from .key import key
    """,
    "keylife_cli/key.py": """
        import keylife
        from keylife.compose import open
    """,
}

Tree = Callable[..., dict[str, Path]]


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    """Write CLEAN, changed by ``changes`` (path -> source, or None to leave a file out), and
    return the roots to check."""

    def write(changes: Mapping[str, str | None] | None = None) -> dict[str, Path]:
        files: dict[str, str | None] = {**CLEAN, **(changes or {})}
        for rel, source in files.items():
            if source is None:
                continue
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source).strip() + "\n")
        return {"keylife": tmp_path / "keylife", "keylife_cli": tmp_path / "keylife_cli"}

    return write


def only(violations: list[Violation], kind: str) -> Violation:
    """The one violation found, of the kind expected."""
    assert [v.kind for v in violations] == [kind], report(violations)
    return violations[0]


# --- the checker, on synthetic trees ----------------------------------------------------------


def test_a_clean_tree_passes(tree: Tree) -> None:
    roots = tree()
    assert check(roots) == []
    graph = build_graph(roots)
    assert len(graph.modules) == len(CLEAN)
    assert sum(len(targets) for targets in graph.edges.values()) >= 20


def test_an_upward_import_fails_naming_both_modules_and_layers(tree: Tree) -> None:
    roots = tree({"keylife/lifecycle.py": "from keylife.backup import write_backup"})
    v = only(check(roots), "upward")
    assert v.modules == ("keylife.lifecycle", "keylife.backup")
    assert v.message == (
        "keylife/lifecycle.py:1: keylife.lifecycle (layer 1 'pure core') imports "
        "keylife.backup (layer 4 'services'), a higher layer"
    )


def test_a_function_level_upward_import_fails(tree: Tree) -> None:
    roots = tree(
        {
            "keylife/operations.py": """
                from . import lifecycle

                class Rotate:
                    def apply(self):
                        if True:
                            from .store.sqlite import SqliteStore
            """
        }
    )
    v = only(check(roots), "upward")
    assert v.modules == ("keylife.operations", "keylife.store.sqlite")
    assert "keylife/operations.py:6 (function-level)" in v.message
    assert "(layer 5 'adapters')" in v.message


def test_a_type_checking_upward_import_fails(tree: Tree) -> None:
    roots = tree(
        {
            "keylife/store/base.py": """
                import typing

                from ..lifecycle import Ring

                if typing.TYPE_CHECKING:
                    from ..backup import BackupSecret
            """
        }
    )
    v = only(check(roots), "upward")
    assert v.modules == ("keylife.store.base", "keylife.backup")
    assert "keylife/store/base.py:6 (TYPE_CHECKING)" in v.message


def test_a_cycle_within_one_layer_fails_and_names_the_cycle(tree: Tree) -> None:
    # client -> rings at module level, rings -> client inside a function: both adapters.
    roots = tree(
        {
            "keylife/acme/client.py": "from keylife.acme.rings import renew_ring",
            "keylife/acme/rings.py": """
                from ..manager import KeyManager

                def renew_ring():
                    from . import client
            """,
        }
    )
    v = only(check(roots), "cycle")
    assert v.message == (
        "import cycle: keylife.acme.client -> keylife.acme.rings -> keylife.acme.client "
        "[keylife/acme/client.py:1, keylife/acme/rings.py:4 (function-level)]"
    )


def test_a_longer_cycle_through_a_package_init_is_named_in_order(tree: Tree) -> None:
    # manager -> acme (the package) -> acme.rings -> manager: the circle issue 9 found.
    roots = tree(
        {
            "keylife/manager.py": """
                from keylife import operations

                def renew():
                    from .acme import renew_ring
            """,
            "keylife/acme/rings.py": "from keylife.manager import KeyManager",
        }
    )
    violations = check(roots)
    cycle = [v for v in violations if v.kind == "cycle"]
    assert [v.message.split(" [")[0] for v in cycle] == [
        "import cycle: keylife.acme -> keylife.acme.rings -> keylife.manager -> keylife.acme"
    ], report(violations)
    upward = [v for v in violations if v.kind == "upward"]
    assert [v.modules for v in upward] == [("keylife.manager", "keylife.acme")]


def test_relative_imports_resolve_to_the_module_they_name(tree: Tree) -> None:
    roots = tree(
        {
            "keylife/manager.py": """
                from . import operations
                from .store import registry
                from .store import KeyStore
                from ..keylife_cli import nothing
            """,
            "keylife/store/base.py": "from ..lifecycle import Ring\nfrom ..acme import client",
        }
    )
    graph = build_graph(roots)
    # `from . import operations`: the submodule; `from .store import registry`: the submodule,
    # not the package; `from .store import KeyStore`: the package __init__.
    assert set(graph.edges["keylife.manager"]) == {
        "keylife.operations",
        "keylife.store.registry",
        "keylife.store",
    }
    assert set(graph.edges["keylife.store.base"]) == {"keylife.lifecycle", "keylife.acme.client"}
    assert set(graph.edges["keylife.store.registry"]) == {"keylife.store.sqlite"}
    assert set(graph.edges["keylife.acme.rings"]) == {"keylife.manager", "keylife.acme.client"}
    # the lazy table and import_module("keylife.store.sqlite") are imports too
    assert {"keylife.manager", "keylife.compose"} <= set(graph.edges["keylife"])
    assert "keylife.store.sqlite" in graph.edges["keylife.compose"]
    violations = check(roots)
    assert [v.kind for v in violations] == ["unknown", "upward", "upward"], report(violations)
    assert "relative import '..keylife_cli' climbs out of the top package" in str(violations[0])
    assert [v.modules for v in violations[1:]] == [
        ("keylife.manager", "keylife.store.registry"),
        ("keylife.store.base", "keylife.acme.client"),
    ]


def test_dynamic_imports_are_followed(tree: Tree) -> None:
    roots = tree(
        {
            "keylife/store/__init__.py": """
                from .base import KeyStore

                _LAZY: dict[str, str] = {"SqliteStore": "sqlite"}
            """,
            "keylife/lifecycle.py": """
                import importlib
                from importlib import import_module

                def load():
                    importlib.import_module(".keygen", __package__)
                    return import_module("keylife.backup")
            """,
        }
    )
    violations = check(roots)
    assert [(v.kind, v.modules) for v in violations] == [
        ("upward", ("keylife.lifecycle", "keylife.backup")),
        ("upward", ("keylife.lifecycle", "keylife.keygen")),
        ("upward", ("keylife.store", "keylife.store.sqlite")),
    ], report(violations)
    assert "keylife/lifecycle.py:5 (importlib)" in str(violations[1])
    assert "keylife/store/__init__.py:3 (_LAZY)" in str(violations[2])


def test_an_unlisted_module_fails(tree: Tree) -> None:
    roots = tree({"keylife/helpers.py": "from .errors import KeylifeError"})
    v = only(check(roots), "no-layer")
    assert v.message == "module keylife.helpers has no layer; add it to LAYERS"


def test_a_module_in_two_layers_fails(tree: Tree) -> None:
    layers = [*LAYERS, ("extra", ("keylife.acme.c*",))]
    v = only(check(tree(), layers), "ambiguous-layer")
    assert v.modules == ("keylife.acme.client",)
    assert "matches layers 5 'adapters' and 8 'extra'" in v.message


def test_importing_a_private_name_fails(tree: Tree) -> None:
    roots = tree(
        {
            "keylife/lifecycle.py": "from .errors import KeylifeError, _wrap",
            "keylife_cli/key.py": "from keylife import _version",
        }
    )
    violations = check(roots)
    assert [(v.kind, v.modules) for v in violations] == [
        ("private", ("keylife.lifecycle", "keylife.errors")),
        ("private", ("keylife_cli.key", "keylife")),
    ], report(violations)
    assert "imports the private name _wrap from keylife.errors" in str(violations[0])
    # dunder names (`from ._version import __version__`) and a package's own private
    # submodules stay allowed: CLEAN has both.


def test_an_import_of_a_missing_module_fails(tree: Tree) -> None:
    roots = tree({"keylife/backup.py": "def f():\n    from keylife.gone import thing"})
    v = only(check(roots), "unknown")
    assert "imports thing from keylife.gone, which is not a module of the tree" in v.message


def test_long_modules_and_functions_fail(tree: Tree) -> None:
    def body(indent: int) -> str:
        return "\n".join(" " * indent + f"x{i} = {i}" for i in range(79))

    # 80 and 500 lines pass, 81 and 501 fail
    roots = tree(
        {
            "keylife/backup.py": f"def fits():\n{body(4)}\n" + "\n" * 419 + "# line 500",
            "keylife/keygen.py": f"class K:\n    def long(self):\n{body(8)}\n        pass",
            "keylife/clock.py": "#\n" * 501,
        }
    )
    violations = check(roots)
    assert [str(v) for v in violations] == [
        "keylife/clock.py: 501 lines (at most 500)",
        "keylife/keygen.py:2: function K.long is 81 lines (at most 80)",
    ], report(violations)


# --- the real tree ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> list[Violation]:
    return check(REAL_ROOTS)


def test_the_real_tree_is_read(real: list[Violation]) -> None:
    graph = build_graph(REAL_ROOTS)
    assert {"keylife", "keylife.errors", "keylife_cli.main"} <= set(graph.modules)
    assert "keylife.errors" in graph.edges["keylife_cli.context"]
    assert sum(len(targets) for targets in graph.edges.values()) > 100


def test_every_module_has_one_layer(real: list[Violation]) -> None:
    wrong = [v for v in real if v.kind in {"no-layer", "ambiguous-layer"}]
    assert not wrong, report(wrong)


def test_every_import_names_a_module(real: list[Violation]) -> None:
    wrong = [v for v in real if v.kind == "unknown"]
    assert not wrong, report(wrong)


def test_no_import_cycles(real: list[Violation]) -> None:
    wrong = [v for v in real if v.kind == "cycle"]
    assert not wrong, report(wrong)


def test_no_upward_imports(real: list[Violation]) -> None:
    wrong = [v for v in real if v.kind == "upward"]
    assert not wrong, report(wrong)


def test_no_private_names_imported_across_modules(real: list[Violation]) -> None:
    wrong = [v for v in real if v.kind == "private"]
    assert not wrong, report(wrong)


def test_no_long_modules_or_functions(real: list[Violation]) -> None:
    wrong = [v for v in real if v.kind == "size"]
    assert not wrong, report(wrong)
