"""The ``region`` column (region names) of a subject's ``EI_ratio.csv`` and ``best_parameters.csv``.

* a cohort of DK68 subjects (lockstep groups) names its rows in the DK68 order of
  :mod:`delssome_norms.datasets`, in both files, right after ``region_index``;
* a fit of another atlas writes that atlas's names (also through ``EIResult.save``), read as text;
* a folder written before the column (no ``region``) still collects, loads and resumes without
  refitting;
* a ``region`` column naming other regions than ``run.json`` is refused, naming the file, the
  row and both names.

Fits use the analytic stand-in simulator of tests/fit/fit_helpers.py (seconds each).
"""

from __future__ import annotations

import csv
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fit"))
from fit_helpers import (
    analytic_cohort_settings,
    tiny_cdf,
    tiny_fc,
    tiny_sc,
    use_analytic_simulator,
    write_manifest,
)

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import collect, estimate_ei, load_subject, run_cohort
from delssome_norms.io import ei_table as et
from delssome_norms.io import write_ei_ratio, write_matrix, write_parameters
from delssome_norms.pipeline import EIResult

FILES = ("EI_ratio.csv", "best_parameters.csv")
IDS = ["sub-00", "sub-01"]
OWN = ["NA", "Vis_A", "Vis B", "SomMot,1", "Default"]  # "NA": a name, not a missing value


def _cohort(manifest: Path, out: Path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        return run_cohort(manifest, out, analytic_cohort_settings(), group_size=2, quiet=True, **kw)


def _collect(out: Path, tmp: Path, name: str = "table.csv") -> pd.DataFrame:
    demo = tmp / "demo.csv"
    pd.DataFrame({"subject_id": IDS, "age_in_years": [30, 40], "sex": ["F", "M"]}).to_csv(
        demo, index=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        return collect(out, demo, tmp / name)


def _rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


@pytest.fixture
def dk68_cohort(tmp_path: Path, monkeypatch):
    """Two 68-region subjects fitted in one lockstep group; (out folder, stand-in simulator)."""
    sim = use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 2, n=68)
    out = tmp_path / "out"
    summary = _cohort(manifest, out)
    assert (summary.done, summary.failed) == (2, 0)
    return manifest, out, sim


def test_cohort_files_name_their_regions_in_dk68_order(dk68_cohort, tmp_path: Path) -> None:
    _, out, _ = dk68_cohort
    for sid in IDS:
        run = json.loads((out / sid / "run.json").read_text())
        assert run["lockstep_group"] == IDS  # written by the lockstep path
        for name in FILES:
            table = pd.read_csv(out / sid / name, keep_default_na=False)
            assert list(table.columns[:2]) == ["region_index", "region"], name
            assert list(table["region_index"]) == list(range(68))
            assert list(table["region"]) == list(DK68_REGIONS), name
        # the names sit beside the values of their own row: the E/I still averages to run.json's
        ei = pd.read_csv(out / sid / "EI_ratio.csv")
        assert ei["EI_ratio"].mean() == pytest.approx(run["result"]["ei_ratio_mean"], rel=1e-12)
        loaded = EIResult.from_dir(out / sid)
        assert loaded.regions == list(DK68_REGIONS)
        assert list(loaded.to_frame()["region"]) == list(ei["region"])
    table = _collect(out, tmp_path)
    ei = pd.read_csv(out / "sub-01" / "EI_ratio.csv")
    np.testing.assert_array_equal(
        table.loc[1, et.region_columns(68)].to_numpy(dtype=np.float64), ei["EI_ratio"].to_numpy()
    )


def test_an_own_atlas_fit_writes_its_own_names(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    n = len(OWN)
    fc = tmp_path / "fc.csv"
    pd.DataFrame(tiny_fc(n), columns=OWN).to_csv(fc, index=False)  # a header row of names
    write_matrix(tiny_sc(n), tmp_path / "sc.csv")
    write_matrix(tiny_cdf(), tmp_path / "cdf.csv")
    subject = load_subject(
        "own", 0.72, 14.4, fc=fc, fcd_cdf=tmp_path / "cdf.csv", sc=tmp_path / "sc.csv"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        estimate_ei(subject, tmp_path / "fit", analytic_cohort_settings())
    run = json.loads((tmp_path / "fit" / "run.json").read_text())
    assert run["provenance"]["atlas"]["regions"] == OWN
    for name in FILES:
        cells = et.read_region_cells(tmp_path / "fit" / name)
        assert cells == [(r + 1, str(r), OWN[r]) for r in range(n)], name
    # EIResult.save writes the same column (the same writer), and reads back the same names
    result = EIResult.from_dir(tmp_path / "fit")
    assert result.regions == OWN
    result.save(tmp_path / "copy")
    for name in FILES:
        assert (tmp_path / "copy" / name).read_bytes() == (tmp_path / "fit" / name).read_bytes()


def test_the_writers_leave_the_column_out_without_names(tmp_path: Path) -> None:
    """The synthetic generator's truth files (no names given) keep their layout byte for byte."""
    v = np.array([1.5, 2.25])
    ei = write_ei_ratio(tmp_path / "ei.csv", v, v, v, v)
    par = write_parameters(tmp_path / "p.csv", v, v, 0.01 * v, 1.0)
    assert ei.read_text().splitlines()[0] == "region_index,EI_ratio,S_E,S_I,r_E"
    assert par.read_text().splitlines()[0] == "region_index,wEE,wEI,sigma,G"
    assert et.read_region_cells(ei) is None
    named = write_parameters(tmp_path / "q.csv", v, v, 0.01 * v, 1.0, ["lh_x", "rh_x"])
    header, first = named.read_text().splitlines()[:2]
    assert (header, first) == ("region_index,region,wEE,wEI,sigma,G", "0,lh_x,1.5,1.5,0.015,1.0")
    with pytest.raises(ValueError, match="1 region names for 2 regions"):
        write_ei_ratio(tmp_path / "bad.csv", v, v, v, v, regions=["lh_x"])


def test_results_without_the_column_collect_load_and_resume(dk68_cohort, tmp_path: Path) -> None:
    """A folder written by an earlier version: no region column, nothing refitted or flagged."""
    manifest, out, sim = dk68_cohort
    before = _collect(out, tmp_path, "before.csv")
    for sid in IDS:
        for name in FILES:
            rows = _rows(out / sid / name)
            assert rows[0][1] == "region"
            _write_rows(out / sid / name, [r[:1] + r[2:] for r in rows])  # the old layout
    old = {(sid, f): (out / sid / f).read_bytes() for sid in IDS for f in FILES}
    assert all(b"region," not in data.splitlines()[0] for data in old.values())
    calls = sim.calls
    summary = _cohort(manifest, out)
    assert (summary.done, summary.skipped, summary.failed) == (0, 2, 0)
    assert sim.calls == calls  # nothing simulated again
    assert {(sid, f): (out / sid / f).read_bytes() for sid in IDS for f in FILES} == old
    after = _collect(out, tmp_path, "after.csv")
    pd.testing.assert_frame_equal(after, before)
    loaded = EIResult.from_dir(out / "sub-00")  # names from run.json
    assert loaded.regions == list(DK68_REGIONS)


def test_a_name_column_that_disagrees_with_run_json_is_refused(dk68_cohort, tmp_path: Path) -> None:
    manifest, out, sim = dk68_cohort
    ei = out / "sub-01" / "EI_ratio.csv"
    good = ei.read_bytes()
    rows = _rows(ei)
    rows[3][1] = "lh_precuneus"  # data row 3 (region_index 2) of another fit's order
    _write_rows(ei, rows)
    said = (
        r"row 3 \(region_index 2\) names region 'lh_precuneus' but run\.json records "
        r"'lh_caudalmiddlefrontal' for region_index 2"
    )
    with pytest.raises(InvalidInputError, match=said) as err:
        _collect(out, tmp_path)
    assert err.value.source == str(ei)
    assert not (tmp_path / "table.csv").exists()
    with pytest.raises(InvalidInputError, match=said):
        EIResult.from_dir(out / "sub-01")
    with pytest.raises(InvalidInputError, match=r"sub-01: EI_ratio\.csv: row 3 \(region_index 2\)"):
        _cohort(manifest, out)  # not reused as finished
    # best_parameters.csv is checked too: every name of another order (the first row named)
    ei.write_bytes(good)
    par = out / "sub-00" / "best_parameters.csv"
    rows = _rows(par)
    for r, name in zip(rows[1:], reversed(DK68_REGIONS)):
        r[1] = name
    _write_rows(par, rows)
    said = r"row 1 \(region_index 0\) names region 'rh_insula' but run\.json records 'lh_bankssts'"
    with pytest.raises(InvalidInputError, match=said + r" for region_index 0 \(and 67 more row") as err:
        _collect(out, tmp_path)
    assert err.value.source == str(par)
    # --overwrite rewrites the mixed-up file from the subject's checkpoint, without simulating
    calls = sim.calls
    summary = _cohort(manifest, out, overwrite=True)
    assert (summary.done, summary.skipped) == (1, 1) and sim.calls == calls
    assert list(pd.read_csv(par)["region"]) == list(DK68_REGIONS)


def test_simulate_writes_the_names_of_its_parameter_file(tmp_path: Path) -> None:
    """``simulate --params best_parameters.csv`` of a named fit writes the same names into its
    ``EI_ratio.csv`` (in region_index order, whatever the file's row order)."""
    from delssome_norms.cli.main import main
    from delssome_norms.io import write_parameters

    n = len(DK68_REGIONS)
    params = tmp_path / "best_parameters.csv"
    write_parameters(
        params, np.full(n, 3.5), np.full(n, 2.5), np.full(n, 0.005), 1.0, regions=list(DK68_REGIONS)
    )
    text = params.read_text().splitlines()
    params.write_text("\n".join([text[0], *reversed(text[1:])]) + "\n")  # rows in reverse order
    out = tmp_path / "sim"
    argv = ["simulate", "--params", str(params), "--tr", "0.72", "--scan-length", "100"]
    assert main([*argv, "--dt", "0.005", "--n-dup", "1", "--out-dir", str(out)]) == 0
    table = pd.read_csv(out / "EI_ratio.csv", keep_default_na=False)
    assert table["region"].tolist() == list(DK68_REGIONS)
    assert table["region_index"].tolist() == list(range(n))


def test_region_indices_after_a_spreadsheet_round_trip_are_still_checked(dk68_cohort, tmp_path):
    """A ``region_index`` written as ``2.0`` (a spreadsheet's round trip) is still compared with
    run.json (it was skipped), and an index that is no whole number is refused."""
    _, out, _ = dk68_cohort
    ei = out / "sub-01" / "EI_ratio.csv"
    rows = _rows(ei)
    for r in rows[1:]:
        r[0] = f"{int(r[0])}.0"
    rows[3][1] = "lh_precuneus"
    _write_rows(ei, rows)
    with pytest.raises(InvalidInputError, match=r"row 3 \(region_index 2\) names region 'lh_precuneus'"):
        EIResult.from_dir(out / "sub-01")
    rows[3][1], rows[3][0] = "lh_caudalmiddlefrontal", "two"
    _write_rows(ei, rows)
    with pytest.raises(InvalidInputError, match=r"row 3 \(region_index two\) names region"):
        EIResult.from_dir(out / "sub-01")


def test_region_index_cells_as_written() -> None:
    cells = {"3": 3, " 3 ": 3, "3.0": 3, "0": 0, "-1": None, "2.5": None, "²": None, "": None}
    assert {k: et.region_index_cell(k) for k in cells} == cells
