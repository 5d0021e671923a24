"""The example notebooks in ``notebooks/``: committed without outputs, and each runs top to bottom.

Every notebook ends with ``assert`` statements on scientific numbers against the ground truth of the
packaged SYNTHETIC reference cohort, so executing it is a real check. Each is executed with
``nbclient`` in a fresh kernel that runs this interpreter (``sys.executable``, so the kernel always
sees the installed package, whatever kernelspecs exist on the machine), with a temporary working
directory (also the kernel's ``TMPDIR``), every warning shown (none may be printed) and a
300-second budget per notebook. Each notebook also says what a researcher replaces to run it on
their own data, and the commands, options and functions it points to must exist.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
import shlex
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="needs the 'notebooks' extra")
nbclient = pytest.importorskip("nbclient", reason="needs the 'notebooks' extra")
pytest.importorskip("ipykernel", reason="needs the 'notebooks' extra")
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

from delssome_norms.datasets.reference import DATA_FILES, MANIFEST_FILE, data_dir  # noqa: E402
from delssome_norms.model import _kernel  # noqa: E402

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = (
    "01_estimate_ei.ipynb",
    "02_lifespan_trajectories.ipynb",
    "03_sensory_vs_association.ipynb",
    "04_sex_differences.ipynb",
    "05_score_new_patients.ipynb",
)
BUDGET_S = 300.0
"""Wall-clock budget of one notebook (kernel start included) [s]."""
KERNEL_NAME = "delssome-notebook-test"
NEEDS_FAST_SIMULATOR = {"01_estimate_ei.ipynb"}
"""Notebooks that simulate enough to need the fused CPU kernel to stay within the budget."""


def _missing_data() -> list[str]:
    folder = data_dir()
    return [name for name in (MANIFEST_FILE, *DATA_FILES) if not (folder / name).is_file()]


@pytest.fixture(scope="session")
def kernel_dirs(tmp_path_factory) -> list[str]:
    """A kernelspec folder whose only kernel runs ``sys.executable -m ipykernel_launcher``."""
    root = tmp_path_factory.mktemp("kernels")
    spec_dir = root / KERNEL_NAME
    spec_dir.mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "delssome_norms test kernel",
        "language": "python",
        "env": {"PYTHONWARNINGS": "default"},  # every warning shown once, deprecations included
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return [str(root)]


def test_the_five_notebooks_are_present() -> None:
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{name} has no code cells"
    with_outputs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.outputs]
    counted = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.execution_count]
    assert not with_outputs, f"{name}: cells {with_outputs} have outputs; strip them before committing"
    assert not counted, f"{name}: cells {counted} have execution counts; strip them before committing"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_states_the_data_are_synthetic_and_checks_results(name: str) -> None:
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    intro = " ".join(c.source for c in nb.cells[:3] if c.cell_type == "markdown")
    assert "SYNTHETIC" in intro, f"{name}: the introduction must say that the data are synthetic"
    assert any(c.cell_type == "code" and "\nassert " in f"\n{c.source}" for c in nb.cells), (
        f"{name} checks nothing"
    )


@pytest.mark.timeout(BUDGET_S + 60)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(
    name: str, kernel_dirs: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = _missing_data()
    if missing:
        pytest.skip(
            f"packaged reference data missing in {data_dir()} ({', '.join(missing)}); "
            "regenerate with `python reference_data/generate.py`"
        )
    if name in NEEDS_FAST_SIMULATOR and not _kernel.available():
        pytest.skip(
            "the fused CPU simulation kernel is unavailable (no working C++ compiler); the plain "
            f"torch engine cannot fit a subject within {BUDGET_S:.0f} s"
        )
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's temporary folders land in tmp_path
    km = KernelManager(
        kernel_name=KERNEL_NAME, kernel_spec_manager=KernelSpecManager(kernel_dirs=kernel_dirs)
    )
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=int(BUDGET_S),
        startup_timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError (with the cell and traceback) on failure
    wall = time.perf_counter() - start
    print(f"{name}: {wall:.1f} s")
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    warned = [
        o.text
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "stream" and o.name == "stderr" and "warning" in o.text.lower()
    ]
    assert not warned, f"{name} warns (deprecated or misused API?):\n" + "\n".join(warned)
    assert wall <= BUDGET_S, f"{name} took {wall:.0f} s (budget {BUDGET_S:.0f} s)"


# -- what a researcher replaces: every notebook says how to run it on their own data, and the
# commands, options, functions and keyword arguments it points to exist in this package.

_SPAN = re.compile(r"`([^`\n]+)`")
_CALL = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)\(([^()]*(?:\([^()]*\)[^()]*)*)\)")
_PUBLIC_MODULES = (
    "datasets", "fit", "io", "model", "norms", "pipeline", "plotting", "stats", "surrogate",
    "synthetic",
)  # fmt: skip


def _markdown(name: str) -> str:
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def _public_names() -> dict[str, object]:
    names: dict[str, object] = {}
    for module in _PUBLIC_MODULES:
        mod = importlib.import_module(f"delssome_norms.{module}")
        names.update({n: getattr(mod, n) for n in getattr(mod, "__all__", ())})
    return names


def _cli_problems(span: str, parser: argparse.ArgumentParser) -> list[str]:
    """Subcommands and ``--options`` of one ``delssome-norms ...`` span that the CLI lacks."""
    tokens = shlex.split(span)[1:]
    current, path = parser, ["delssome-norms"]
    while tokens and not tokens[0].startswith("-"):
        subs = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            break
        word = tokens.pop(0)
        if word not in subs[0].choices:
            return [f"`{span}`: {' '.join(path)} has no subcommand {word!r}"]
        current, path = subs[0].choices[word], [*path, word]
    current.format_help()  # adds the options a command defers until it is used
    known = {s for a in current._actions for s in a.option_strings}
    opts = [t.split("=")[0] for t in tokens if t.startswith("--")]
    return [f"`{span}`: {' '.join(path)} has no option {o}" for o in opts if o not in known]


def _call_problems(span: str, names: dict[str, object]) -> list[str]:
    """Calls of public package names in a span whose function or keyword arguments do not exist."""
    problems = []
    for func, args in _CALL.findall(span):
        head, _, attr = func.partition(".")
        if head not in names:
            continue
        obj = names[head]
        if attr:
            if not hasattr(obj, attr):
                problems.append(f"`{span}`: {head} has no attribute {attr}")
                continue
            obj = getattr(obj, attr)
        params = inspect.signature(obj).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            continue
        for kw in re.findall(r"(?:^|,)\s*([A-Za-z_]\w*)\s*=(?!=)", args):
            if kw not in params:
                problems.append(f"`{span}`: {func}() has no argument {kw!r}")
    return problems


def test_every_notebook_says_how_to_use_your_own_data() -> None:
    for name in NOTEBOOKS:
        nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
        own = [
            c.source
            for c in nb.cells
            if c.cell_type == "markdown" and c.source.startswith("## ") and "own data" in c.source
        ]
        assert own, f"{name}: no '## ... own data' section saying what a researcher replaces"
        assert "`delssome-norms " in own[0], f"{name}: the own-data section names no command"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_pointers_exist_in_the_package(name: str) -> None:
    from delssome_norms.cli.main import build_parser

    text = _markdown(name)
    parser, names = build_parser(), _public_names()
    problems = []
    for span in _SPAN.findall(text):
        if span.startswith("delssome-norms "):
            problems += _cli_problems(span, parser)
        else:
            problems += _call_problems(span, names)
        for dotted in re.findall(r"\bdelssome_norms(?:\.\w+)+", span):
            parts = dotted.split(".")
            for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
                try:
                    obj = importlib.import_module(".".join(parts[:cut]))
                except ImportError:
                    continue
                for attr in parts[cut:]:
                    if not hasattr(obj, attr):
                        problems.append(f"`{span}`: {dotted} does not exist")
                        break
                    obj = getattr(obj, attr)
                break
    for rel in re.findall(r"`((?:bench|docs|reference_data|scripts)/[\w./-]+)`", text):
        if not (NOTEBOOK_DIR.parent / rel).exists():
            problems.append(f"`{rel}` does not exist")
    assert not problems, f"{name}:\n" + "\n".join(problems)
