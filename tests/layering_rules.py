"""keylife's layers, written once, and a checker that reads every import with ``ast``.

:data:`LAYERS` is the one place the layer order lives (docs/architecture.md explains it). A
module may import modules of its own layer and of the layers before it, never one after it, and
no chain of imports may lead back to where it started.

The checker takes the package roots as a parameter (``{"keylife": Path("keylife"),
"keylife_cli": Path("cli")}``), so the same code checks the real tree and the small synthetic
trees the tests write. It follows:

* ``import a.b`` and ``from a.b import c`` anywhere: at module level, inside functions and
  classes, under ``if TYPE_CHECKING:``, in ``try`` blocks;
* relative imports (``from . import keygen``, ``from ..acme import x``), resolved against the
  importing module's package; ``from pkg import name`` is an import of the submodule
  ``pkg.name`` when there is one, of ``pkg`` itself otherwise;
* ``importlib.import_module("keylife.x")`` (or ``import_module``) with a string literal;
* the lazy re-export table of a package ``__init__``: ``_LAZY = {"Name": "module"}`` imports
  ``package.module``.

Importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``; those implicit parent
imports are not counted, only the module that is named. That is why the ``keylife`` package
``__init__`` can sit in the composition layer: it re-exports (lazily) from everywhere, and a
module importing ``keylife.errors`` depends on ``keylife.errors``, not on ``keylife``.

Imports of anything outside the roots (stdlib, third-party) are ignored.
"""

from __future__ import annotations

import ast
import fnmatch
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The layers, lowest first. A pattern is a dotted module name (``keylife.store`` is the package
#: ``__init__``), ``pkg.*`` (the package ``pkg`` and everything under it) or an ``fnmatch`` glob.
#: Every module must match exactly one layer.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "errors and clock",
        (
            "keylife.errors",
            "keylife.clock",
            "keylife.contention",
            "keylife.files",
            "keylife.names",
            "keylife.durations",
            "keylife.identity",
            "keylife._version",
        ),
    ),
    (
        "pure core",
        (
            "keylife.specs",
            "keylife.policy",
            "keylife.lifecycle",
            "keylife.operations",
            "keylife.changes",
            "keylife.revocation",
            "keylife.destruction",
            "keylife.limits",
            "keylife.dependents",
            "keylife.certificates",
            "keylife.rotation.plan",
            "keylife.rotation.forecast",
            "keylife.audit",
            "keylife.auditstate",
            "keylife.documents",
            "keylife.envelope",
            "keylife.residence",
        ),
    ),
    (
        "crypto primitives",
        (
            "keylife.material",
            "keylife.keygen",
            "keylife.keyimport",
            "keylife.sealing",
            "keylife.primitives",
            "keylife.streaming",
            "keylife.publickeys",
            "keylife.published",
        ),
    ),
    ("store contract", ("keylife.store.base", "keylife.store.schedule", "keylife.store")),
    (
        "services",
        (
            "keylife.writer",
            "keylife.accesslog",
            "keylife.creation",
            "keylife.transitions",
            "keylife.keyring",
            "keylife.counters",
            "keylife.keyset",
            "keylife.signing",
            "keylife.ringcache",
            "keylife.rewrap",
            "keylife.manager",
            "keylife.loaded",
            "keylife.rotation.runner",
            "keylife.rotation.metrics",
            "keylife.rotation.health",
            "keylife.rotation.holders",
            "keylife.rotation.results",
            "keylife.rotation.schedule",
            "keylife.rotation.pool",
            "keylife.rotation.paging",
            "keylife.rotation.settle",
            "keylife.rotation",
            "keylife.backup",
            "keylife.carriedcounts",
            "keylife.recovery",
            "keylife.recover",
            "keylife.store.migrate",
            "keylife.report.*",
            "keylife.checkpoint",
        ),
    ),
    (
        "adapters",
        (
            "keylife.store.sqlite*",
            "keylife.store.registry",
            "keylife.store.vault*",
            "keylife.vault.*",
            "keylife.acme.*",
            "keylife.tls.*",
        ),
    ),
    ("composition", ("keylife.compose", "keylife.config", "keylife")),
    ("CLI", ("keylife_cli.*",)),
)

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80

#: The roots of the real tree: package name -> directory, relative to the repository.
REPO = Path(__file__).resolve().parents[1]
REAL_ROOTS: dict[str, Path] = {"keylife": REPO / "keylife", "keylife_cli": REPO / "cli"}


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    shown: str  # the path as reported: "keylife/store/vault.py"
    is_package: bool
    tree: ast.Module
    lines: int

    @property
    def package(self) -> str:
        """The package relative imports are resolved against."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    line: int
    kind: str  # "module-level", "function-level", "TYPE_CHECKING", "importlib", "_LAZY"
    names: tuple[str, ...] = ()  # for ``from target import names``


@dataclass(frozen=True)
class Violation:
    kind: str  # "cycle", "upward", "no-layer", "ambiguous-layer", "private", "unknown", "size"
    message: str
    modules: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.message


# --- modules -------------------------------------------------------------------------------


def discover(roots: Mapping[str, Path]) -> dict[str, Module]:
    """Every ``.py`` file under the roots, by dotted module name."""
    modules: dict[str, Module] = {}
    for package, root in roots.items():
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root)
            parts = [package, *rel.parts[:-1]]
            is_package = rel.name == "__init__.py"
            if not is_package:
                parts.append(rel.stem)
            source = path.read_text(encoding="utf-8")
            name = ".".join(parts)
            modules[name] = Module(
                name=name,
                path=path,
                shown=str(Path(root.name, rel)),
                is_package=is_package,
                tree=ast.parse(source, filename=str(path)),
                lines=len(source.splitlines()),
            )
    return modules


def layer_of(module: str, layers: Sequence[tuple[str, Sequence[str]]]) -> list[int]:
    """The indexes of every layer that has a pattern matching ``module``."""
    found = []
    for index, (_, patterns) in enumerate(layers):
        for pattern in patterns:
            if pattern.endswith(".*"):
                base = pattern[:-2]
                hit = module == base or module.startswith(base + ".")
            else:
                hit = fnmatch.fnmatchcase(module, pattern)
            if hit:
                found.append(index)
                break
    return found


# --- imports -------------------------------------------------------------------------------


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _nodes(node: ast.AST, where: str) -> Iterator[tuple[ast.AST, str]]:
    """Every node under ``node`` with where it runs: module level, in a function, or only for
    type checkers."""
    for child in ast.iter_child_nodes(node):
        yield child, where
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _nodes(child, "function-level")
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            inner = "TYPE_CHECKING" if where == "module-level" else where
            for stmt in child.body:
                yield stmt, inner
                yield from _nodes(stmt, inner)
            for stmt in child.orelse:
                yield stmt, where
                yield from _nodes(stmt, where)
        else:
            yield from _nodes(child, where)


def _resolve(package: str, level: int, name: str | None) -> str | None:
    """The absolute name of an import ``level`` dots deep from ``package`` (0: absolute), or
    None if it climbs out of the top package."""
    parts = package.split(".")
    if level == 0 or level - 1 >= len(parts):
        return name if level == 0 else None
    base = ".".join(parts[: len(parts) - (level - 1)])
    return f"{base}.{name}" if name else base


def _import_module_target(call: ast.Call, module: Module) -> str | None:
    """``importlib.import_module("keylife.x")``, or (".x", __name__ / __package__ / "pkg")."""
    func = call.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    args: list[object] = [
        a.value if isinstance(a, ast.Constant) else getattr(a, "id", None) for a in call.args
    ]
    if called != "import_module" or not args or not isinstance(args[0], str):
        return None
    name: str = args[0]
    level = len(name) - len(name.lstrip("."))
    anchors = {"__name__": module.name, "__package__": module.package}
    second = args[1] if len(args) > 1 else None
    anchor = anchors.get(second, second) if isinstance(second, str) else None
    if level == 0 or not isinstance(anchor, str):
        return name if level == 0 else None
    return _resolve(anchor, level, name[level:])


def _lazy_targets(module: Module) -> Iterator[tuple[str, int]]:
    if not module.is_package:
        return
    for stmt in module.tree.body:
        if isinstance(stmt, ast.Assign):
            named = any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in stmt.targets)
        elif isinstance(stmt, ast.AnnAssign):
            named = isinstance(stmt.target, ast.Name) and stmt.target.id == "_LAZY"
        else:
            continue
        if not named or not isinstance(stmt.value, ast.Dict):
            continue
        for value in stmt.value.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                target = value.value
                if target.startswith("."):
                    target = target[1:]
                yield f"{module.name}.{target}", value.lineno


def imports_of(module: Module) -> Iterator[Import]:
    """Every import ``module`` makes, absolute, before deciding which ones are keylife's."""
    for node, where in _nodes(module.tree, "module-level"):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module.name, alias.name, node.lineno, where)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module.package, node.level, node.module)
            if target is None:
                target = "." * node.level + (node.module or "")
            names = tuple(alias.name for alias in node.names)
            yield Import(module.name, target, node.lineno, where, names)
        elif isinstance(node, ast.Call):
            target = _import_module_target(node, module)
            if target is not None:
                yield Import(module.name, target, node.lineno, "importlib")
    for target, line in _lazy_targets(module):
        yield Import(module.name, target, line, "_LAZY")


# --- the check -----------------------------------------------------------------------------


@dataclass
class Graph:
    modules: dict[str, Module]
    # importer -> target -> the first import that makes the edge
    edges: dict[str, dict[str, Import]]
    violations: list[Violation]


def _where(modules: Mapping[str, Module], imp: Import) -> str:
    kind = "" if imp.kind == "module-level" else f" ({imp.kind})"
    return f"{modules[imp.importer].shown}:{imp.line}{kind}"


def _targets(
    imp: Import, modules: Mapping[str, Module], roots: Mapping[str, Path]
) -> tuple[list[str], list[Violation]]:
    """The modules of the tree one import statement loads, and what is wrong with it."""
    where, importer = _where(modules, imp), imp.importer
    if imp.target.startswith("."):
        message = f"{where}: relative import {imp.target!r} climbs out of the top package"
        return [], [Violation("unknown", message, (importer,))]
    if imp.target.partition(".")[0] not in roots:
        return [], []  # stdlib or third-party
    if not imp.names:
        if imp.target in modules:
            return [imp.target], []
        message = f"{where}: imports {imp.target}, which is not a module of the tree"
        return [], [Violation("unknown", message, (importer, imp.target))]
    targets: list[str] = []
    wrong: list[Violation] = []
    inside = importer == imp.target or importer.startswith(imp.target + ".")
    for name in imp.names:
        if f"{imp.target}.{name}" in modules:
            # a submodule: private ones are for their own package
            targets.append(f"{imp.target}.{name}")
            private = name.startswith("_") and not inside
        elif imp.target in modules:
            targets.append(imp.target)
            private = name.startswith("_") and not (name.startswith("__") and name.endswith("__"))
        else:
            message = (
                f"{where}: imports {name} from {imp.target}, which is not a module of the tree"
            )
            wrong.append(Violation("unknown", message, (importer, imp.target)))
            continue
        if private:
            message = (
                f"{where}: {importer} imports the private name {name} from {imp.target}; "
                "make it public or move it"
            )
            wrong.append(Violation("private", message, (importer, imp.target)))
    return targets, wrong


def build_graph(roots: Mapping[str, Path]) -> Graph:
    """The import graph between the modules under ``roots``, plus the imports that cannot be
    resolved and the private names imported across modules."""
    modules = discover(roots)
    edges: dict[str, dict[str, Import]] = {name: {} for name in modules}
    violations: list[Violation] = []
    for module in modules.values():
        for imp in imports_of(module):
            targets, wrong = _targets(imp, modules, roots)
            violations.extend(wrong)
            for target in targets:
                if target != module.name:
                    edges[module.name].setdefault(target, imp)
    return Graph(modules, edges, violations)


def _shortest_path(edges: Mapping[str, Mapping[str, Import]], start: str, goal: str) -> list[str]:
    """The shortest chain of imports from ``start`` to ``goal`` (both included), or []."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = [goal]
            while path[-1] != start:
                path.append(previous[path[-1]])
            return path[::-1]
        for child in sorted(edges[node]):
            if child != start and child not in previous:
                previous[child] = node
                queue.append(child)
    return []


def cycles(graph: Graph) -> list[Violation]:
    """One violation per distinct cycle: for every import that can be followed back to its
    importer, the shortest way back, so every import that takes part in a cycle is named."""
    out: list[Violation] = []
    seen: set[tuple[str, ...]] = set()
    for importer in sorted(graph.edges):
        for target in sorted(graph.edges[importer]):
            back = _shortest_path(graph.edges, target, importer)
            if not back:
                continue
            loop = [importer, *back[:-1]]
            first = loop.index(min(loop))
            loop = loop[first:] + loop[:first]
            if tuple(loop) in seen:
                continue
            seen.add(tuple(loop))
            hops = [
                _where(graph.modules, graph.edges[a][b])
                for a, b in zip(loop, [*loop[1:], loop[0]], strict=True)
            ]
            path = " -> ".join([*loop, loop[0]])
            out.append(Violation("cycle", f"import cycle: {path} [{', '.join(hops)}]", tuple(loop)))
    return sorted(out, key=lambda v: v.modules)


def layering(graph: Graph, layers: Sequence[tuple[str, Sequence[str]]]) -> list[Violation]:
    """Modules without exactly one layer, and imports from a lower layer to a higher one."""
    out: list[Violation] = []
    level: dict[str, int] = {}
    for name in sorted(graph.modules):
        hits = layer_of(name, layers)
        if not hits:
            out.append(
                Violation("no-layer", f"module {name} has no layer; add it to LAYERS", (name,))
            )
        elif len(hits) > 1:
            which = " and ".join(f"{i} {layers[i][0]!r}" for i in hits)
            out.append(
                Violation(
                    "ambiguous-layer",
                    f"module {name} matches layers {which}; make LAYERS name one",
                    (name,),
                )
            )
        else:
            level[name] = hits[0]
    for importer in sorted(graph.edges):
        for target, imp in sorted(graph.edges[importer].items()):
            if importer not in level or target not in level:
                continue
            low, high = level[importer], level[target]
            if low < high:
                out.append(
                    Violation(
                        "upward",
                        f"{_where(graph.modules, imp)}: {importer} (layer {low} "
                        f"{layers[low][0]!r}) imports {target} (layer {high} "
                        f"{layers[high][0]!r}), a higher layer",
                        (importer, target),
                    )
                )
    return out


def sizes(
    graph: Graph,
    max_module_lines: int = MAX_MODULE_LINES,
    max_function_lines: int = MAX_FUNCTION_LINES,
) -> list[Violation]:
    """Modules over ``max_module_lines`` lines and functions over ``max_function_lines``."""
    out: list[Violation] = []
    for name, module in sorted(graph.modules.items()):
        if module.lines > max_module_lines:
            out.append(
                Violation(
                    "size",
                    f"{module.shown}: {module.lines} lines (at most {max_module_lines})",
                    (name,),
                )
            )
        for qualname, node in _functions(module.tree, ""):
            end = node.end_lineno if node.end_lineno is not None else node.lineno
            length = end - node.lineno + 1
            if length > max_function_lines:
                out.append(
                    Violation(
                        "size",
                        f"{module.shown}:{node.lineno}: function {qualname} is {length} lines "
                        f"(at most {max_function_lines})",
                        (name,),
                    )
                )
    return out


def _functions(
    node: ast.AST, prefix: str
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + child.name, child
            yield from _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        else:
            yield from _functions(child, prefix)


def check(
    roots: Mapping[str, Path],
    layers: Sequence[tuple[str, Sequence[str]]] = LAYERS,
    max_module_lines: int = MAX_MODULE_LINES,
    max_function_lines: int = MAX_FUNCTION_LINES,
) -> list[Violation]:
    """Every violation in the trees under ``roots``: unresolvable and private imports, modules
    without a layer, upward imports, cycles, and modules or functions that are too long."""
    graph = build_graph(roots)
    return [
        *graph.violations,
        *layering(graph, layers),
        *cycles(graph),
        *sizes(graph, max_module_lines, max_function_lines),
    ]


def report(violations: Sequence[Violation]) -> str:
    return "\n".join(f"[{v.kind}] {v.message}" for v in violations)


if __name__ == "__main__":  # pragma: no cover
    found = check(REAL_ROOTS)
    print(report(found) or "no violations")
    raise SystemExit(1 if found else 0)
