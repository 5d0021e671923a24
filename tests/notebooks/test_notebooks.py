"""The example notebooks in ``notebooks/``: committed without outputs, and each runs top to bottom.

Every notebook ends with ``assert`` statements on scientific numbers against the ground truth of the
packaged SYNTHETIC reference cohort, so executing it is a real check. Each is executed with
``nbclient`` in a fresh kernel that runs this interpreter (``sys.executable``, so the kernel always
sees the installed package, whatever kernelspecs exist on the machine), with a temporary working
directory (also the kernel's ``TMPDIR``) and a 300-second budget per notebook.
"""

from __future__ import annotations

import json
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
    assert wall <= BUDGET_S, f"{name} took {wall:.0f} s (budget {BUDGET_S:.0f} s)"
