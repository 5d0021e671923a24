"""Import-layer checker for ``tests/test_layers.py`` (CONTRIBUTING.md "Layout").

Walks every module's AST and collects each import of the package's own modules: module-level and
function-level ``import``/``from ... import`` (relative ones resolved), ``importlib.import_module``
/ ``__import__`` / ``importlib.resources.files`` calls with a string literal, and any other string
literal that is exactly the dotted name of one of the package's modules (a module named by string,
the way plugins are loaded). Each import is mapped to its layer; an import of a higher layer is
reported as ``file:line``. Module-level imports between modules of one subpackage form a graph
whose cycles are reported too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Layers, lowest first. Entries on one line share a layer only when grouped in a tuple.
LAYERS: tuple[str, ...] = (
    "errors",
    "io",
    "datasets",
    "model",
    "fit",
    "surrogate",
    "pipeline",
    "synthetic",
    "norms",
    "stats",
    "plotting",
    "demo",
    "cli",
)


@dataclass(frozen=True)
class Import:
    """One import found in a source file."""

    source: str  # importing module, dotted
    target: str  # imported module, dotted (resolved to an existing module where possible)
    path: Path
    line: int
    module_level: bool  # runs at import time (not inside a function, not under TYPE_CHECKING)


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under the package directory ``root``."""
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = [package, *rel.parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_package(name: str, modules: Mapping[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _resolve_relative(source: str, is_pkg: bool, level: int, module: str | None) -> str:
    base = source.split(".")
    if not is_pkg:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _type_checking_test(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


_IMPORT_CALLS = {"import_module", "__import__", "files"}


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def find_imports(package: str, modules: Mapping[str, Path]) -> list[Import]:
    """Every import of ``package``'s own modules made by ``package``'s modules."""
    found: list[Import] = []
    for source, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_pkg = _is_package(source, modules)
        docstrings = _docstring_nodes(tree)
        seen: set[int] = set()  # string arguments of import calls, already counted
        # Walk with a flag for "runs at import time".
        stack: list[tuple[ast.AST, bool]] = [(tree, True)]
        while stack:
            node, top = stack.pop()
            targets: list[str] = []
            named_by_string = False  # a module named by a string is imported where it is used
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = (
                    _resolve_relative(source, is_pkg, node.level, node.module)
                    if node.level
                    else (node.module or "")
                )
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            elif isinstance(node, ast.Call) and _call_name(node.func) in _IMPORT_CALLS:
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    targets = [arg.value]
                    seen.add(id(arg))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value in modules and id(node) not in docstrings | seen:
                    targets = [node.value]
                    named_by_string = True
            for t in targets:
                if t == package or t.startswith(package + "."):
                    found.append(
                        Import(source, t, path, getattr(node, "lineno", 0), top and not named_by_string)
                    )
            for child in ast.iter_child_nodes(node):
                child_top = top
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                    child_top = False
                if isinstance(node, ast.If) and _type_checking_test(node) and child in node.body:
                    child_top = False
                stack.append((child, child_top))
    return sorted(set(found), key=lambda i: (str(i.path), i.line, i.target, i.module_level))


def layer_of(module: str, package: str, layers: Sequence[str]) -> str | None:
    """The layer a dotted module belongs to (its first component below the package), or None."""
    parts = module.split(".")
    if parts[0] != package or len(parts) < 2:
        return None
    return parts[1] if parts[1] in layers else None


def layer_violations(
    package: str, modules: Mapping[str, Path], layers: Sequence[str] = LAYERS
) -> list[str]:
    """``file:line: source imports target`` for each upward import, and each unassigned module.

    The package's own ``__init__`` may import lazily from anywhere (re-exports via
    ``__getattr__``) but only ``errors`` at module level; any module may import the package root.
    """
    rank = {name: i for i, name in enumerate(layers)}
    problems: list[str] = []
    for name in modules:
        if name != package and layer_of(name, package, layers) is None:
            problems.append(f"{modules[name]}: module {name} belongs to no layer")
    for imp in find_imports(package, modules):
        src_layer = layer_of(imp.source, package, layers)
        dst_layer = layer_of(imp.target, package, layers)
        where = f"{imp.path}:{imp.line}"
        if imp.target == package:
            continue
        if dst_layer is None:
            problems.append(f"{where}: {imp.source} imports {imp.target}, which is in no layer")
            continue
        if src_layer is None:  # the package root
            if imp.module_level and dst_layer != layers[0]:
                problems.append(
                    f"{where}: {imp.source} imports {imp.target} at module level "
                    f"(the package root may re-export lazily only)"
                )
            continue
        if rank[dst_layer] > rank[src_layer]:
            problems.append(
                f"{where}: {imp.source} ({src_layer}) imports {imp.target} ({dst_layer}), a higher layer"
            )
    return problems


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Elementary cycles found by depth-first search (one per back edge), each ``[a, b, ..., a]``."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(set(graph.get(node, ()))):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def subpackage_cycles(package: str, modules: Mapping[str, Path]) -> list[list[str]]:
    """Cycles of module-level imports between the modules of one subpackage.

    An edge ``a -> b`` is a module-level import of ``b`` by ``a`` where both lie in the same
    subpackage (``package.<sub>``); a package's ``__init__`` is the node ``package.<sub>``.
    Importing a module's own parent package (implied by any dotted import) is not an edge.
    """
    graph: dict[str, set[str]] = {}
    for imp in find_imports(package, modules):
        if not imp.module_level or imp.target not in modules:
            continue
        src = imp.source.split(".")
        dst = imp.target.split(".")
        if len(src) < 2 or len(dst) < 2 or src[1] != dst[1] or imp.source == imp.target:
            continue
        graph.setdefault(imp.source, set()).add(imp.target)
    return find_cycles(graph)
