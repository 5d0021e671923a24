"""What ``charts fit`` writes into its ``--out``: the chart (``chart.json`` + ``arrays.npz``) and
its side files (``convergence.csv``, ``<target>/<sex>_population_centiles.csv``), replacing those
of an earlier chart together.

In the manner of :func:`delssome_norms.io.write_together`: every side file is first written at a
staging name beside its target; then the earlier side files are removed, the chart is saved
(its two files replaced in full), and the staged side files are renamed into place. Stopped
(Ctrl-C, an error) before that, the earlier chart and its side files stay as they were; stopped
between, the folder holds a chart and some or none of its side files, never side files of
another chart beside it.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from pathlib import Path

import pandas as pd

CONVERGENCE_FILE = "convergence.csv"
"""Per target: converged, tail_z, reliable (``chart.convergence_``)."""
CENTILES_NAME = "{sex}_population_centiles.csv"
"""A target's population centile table for one sex, in ``<out>/<target>/``."""
SEXES = ("female", "male")


def centile_tables(chart, which: str) -> dict[Path, pd.DataFrame]:
    """The population centile tables ``--centile-tables which`` asks for, by path relative to
    the chart folder: every target (``all``), the mean E/I only (``mean``) or none."""
    from delssome_norms.io import ei_table as et

    chosen = {"all": None, "mean": [t for t in chart.targets_ if t == et.MEAN_TARGET], "none": []}[which]
    tables: dict[Path, pd.DataFrame] = {}
    if chosen is None or chosen:
        for sex in chart.sexes_:  # a chart fitted on one sex has no curves of the other
            for target, frame in chart.population_centiles(sex, targets=chosen).items():
                tables[Path(target) / CENTILES_NAME.format(sex=sex)] = frame
    return tables


def _earlier_side_files(out: Path) -> list[Path]:
    """The side files an earlier ``charts fit`` left in ``out`` (only names this command writes)."""
    found = [out / CONVERGENCE_FILE] if (out / CONVERGENCE_FILE).is_file() else []
    for sex in SEXES:
        found += sorted(p for p in out.glob(f"*/{CENTILES_NAME.format(sex=sex)}") if p.is_file())
    return found


def save_chart_and_tables(chart, out: str | Path, which: str = "all") -> list[Path]:
    """Save ``chart`` to ``out`` (replacing a chart there) with its convergence table and the
    centile tables ``which`` (:func:`centile_tables`), so that no side file of an earlier chart
    stays beside the new one.

    Returns
    -------
    list of Path
        The side files written.
    """
    from delssome_norms.io import write_table

    out = Path(out)
    writes: list[tuple[Path, Callable[[Path], object]]] = [
        (out / CONVERGENCE_FILE, lambda p: write_table(chart.convergence_, p))
    ]
    for rel, frame in centile_tables(chart, which).items():
        writes.append((out / rel, lambda p, f=frame: write_table(f, p, float_format="%.7g")))
    token = secrets.token_hex(6)
    staged: list[tuple[Path, Path]] = []
    folders: list[Path] = []  # created here, or emptied of an earlier chart's tables
    try:
        for target, write in writes:
            folders += [d for d in (target.parent, *target.parent.parents) if not d.exists()]
            target.parent.mkdir(parents=True, exist_ok=True)
            stage = target.with_name(f".staged-{token}-{target.name}")
            staged.append((stage, target))
            write(stage)
        for path in _earlier_side_files(out):  # none of them describes the new chart
            path.unlink(missing_ok=True)
            folders.append(path.parent)
        chart.save(out, overwrite=True)  # a rerun replaces the chart of its --out
        for stage, target in staged:
            stage.replace(target)
    finally:
        for stage, _ in staged:
            stage.unlink(missing_ok=True)
        for folder in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):  # only when left empty
                folder.rmdir()
    return [target for _, target in staged]
