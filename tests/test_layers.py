"""The import layers of CONTRIBUTING.md "Layout" hold: no upward import, no import circle.

Order, lowest first: errors → io → datasets → model → fit → surrogate → pipeline → synthetic →
norms → stats → plotting → demo → cli. Lazy (function-level) imports and modules named by string
count as imports.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from layers_helpers import (
    LAYERS,
    find_cycles,
    find_imports,
    layer_violations,
    module_names,
    subpackage_cycles,
)

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "delssome_norms"


@pytest.fixture(scope="module")
def modules() -> dict[str, Path]:
    return module_names(PACKAGE_ROOT, "delssome_norms")


def test_every_subpackage_has_a_layer(modules: dict[str, Path]) -> None:
    tops = {name.split(".")[1] for name in modules if name.count(".") >= 1}
    assert tops - set(LAYERS) == set()


def test_no_upward_imports(modules: dict[str, Path]) -> None:
    problems = layer_violations("delssome_norms", modules)
    assert problems == [], "upward imports:\n" + "\n".join(problems)


def test_no_import_cycles_inside_subpackages(modules: dict[str, Path]) -> None:
    cycles = subpackage_cycles("delssome_norms", modules)
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_checker_reports_a_deliberate_violation(tmp_path: Path) -> None:
    """A temporary package with one upward import of each kind, one cycle and one clean import."""
    root = tmp_path / "pkg"
    _write(
        root,
        {
            "__init__.py": "from pkg.errors import E\n",
            "errors.py": "class E(Exception):\n    pass\n",
            "io/__init__.py": "",
            "io/readers.py": (
                "import importlib\n"
                "from pkg.errors import E\n"  # allowed: lower layer
                "\n"
                "def f():\n"
                "    from pkg.model import g\n"  # line 5: lazy upward import
                "    return importlib.import_module('pkg.fit.cmaes')\n"  # line 6: by string
            ),
            "io/plugin.py": 'PLUGIN = "pkg.fit.cmaes"\n',  # line 1: module named by a string
            "model/__init__.py": "from .a import g\n",
            "model/a.py": "from . import b\n\ndef g():\n    pass\n",
            "model/b.py": "from pkg.model.a import g\n",  # cycle a -> b -> a
            "fit/__init__.py": "",
            "fit/cmaes.py": "from ..model import g\n",  # allowed: relative, lower layer
        },
    )
    modules = module_names(root, "pkg")
    problems = layer_violations("pkg", modules, layers=("errors", "io", "model", "fit"))
    assert len(problems) == 3, problems
    assert f"{root / 'io' / 'plugin.py'}:1: pkg.io.plugin (io) imports pkg.fit.cmaes" in problems[0]
    assert f"{root / 'io' / 'readers.py'}:5: pkg.io.readers (io) imports pkg.model" in problems[1]
    assert f"{root / 'io' / 'readers.py'}:6: pkg.io.readers (io) imports pkg.fit.cmaes" in problems[2]
    cycles = subpackage_cycles("pkg", modules)
    assert cycles == [["pkg.model.a", "pkg.model.b", "pkg.model.a"]]


def test_checker_flags_a_module_outside_the_layers(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    _write(root, {"__init__.py": "", "errors.py": "", "extra/__init__.py": "import pkg.errors\n"})
    problems = layer_violations("pkg", module_names(root, "pkg"), layers=("errors",))
    assert len(problems) == 1 and "pkg.extra belongs to no layer" in problems[0]


def test_find_cycles_on_a_synthetic_graph() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": [], "e": ["e"]}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles({"a": ["b"], "b": ["c"], "c": []}) == []


def test_simulation_backends_do_not_import_the_integrator(modules: dict[str, Path]) -> None:
    """``model.integrate`` picks a backend; backends share ``model.batch`` (no circle, lazy or not)."""
    backends = {f"delssome_norms.model.{m}" for m in ("graphed", "_kernel", "_triton", "batch")}
    back = [
        f"{i.path}:{i.line}"
        for i in find_imports("delssome_norms", modules)
        if i.source in backends and i.target == "delssome_norms.model.integrate"
    ]
    assert back == []
