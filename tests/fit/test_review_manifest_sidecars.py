"""The TR of cohort-manifest rows and of ``load_subject`` from the runs' JSON sidecars (BIDS
RepetitionTime), as ``estimate-ei --timeseries`` takes it: a given TR wins with a warning where a
sidecar differs; without one, the sidecars'; a row whose TR cannot be found fails alone."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_helpers import N_TINY, analytic_cohort_settings, tiny_sc, use_analytic_simulator

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import empirical_statistics, load_subject, run_cohort
from delssome_norms.io import read_manifest, write_matrix


def _run(path: Path, frames: int, seed: int = 0, tr: float | None = None) -> np.ndarray:
    """A run of ``frames`` x N_TINY (a shared signal: positive FC), with a sidecar giving ``tr``."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((frames, N_TINY)) + rng.standard_normal((frames, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, values, delimiter="\t")
    if tr is not None:
        path.with_suffix(".json").write_text(json.dumps({"RepetitionTime": tr}))
    return values


def _sc(folder: Path) -> Path:
    write_matrix(tiny_sc(), folder / "sc.csv")
    return folder / "sc.csv"


# --- cohort manifests ---------------------------------------------------------------------------


def test_manifest_without_a_tr_column_takes_each_rows_sidecar_tr(tmp_path: Path) -> None:
    _run(tmp_path / "a.tsv", 240, tr=2.0)
    _run(tmp_path / "b.tsv", 200, tr=0.8)
    (tmp_path / "m.csv").write_text("subject_id,timeseries\ns1,a.tsv\ns2,b.tsv\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)  # agreeing sidecars: nothing to warn about
        table = read_manifest(tmp_path / "m.csv")
    assert table["tr"].tolist() == [2.0, 0.8]
    assert table["scan_length"].tolist() == pytest.approx([240 * 2.0, 200 * 0.8])
    assert "input_problem" not in table.columns


def test_manifest_empty_tr_cell_takes_the_sidecar_inherited_from_the_dataset(tmp_path: Path) -> None:
    """BIDS inheritance: a dataset-level ``task-rest_bold.json`` gives the run's TR."""
    run = tmp_path / "bids" / "sub-01" / "func" / "sub-01_task-rest_bold.tsv"
    _run(run, 150)
    (tmp_path / "bids" / "task-rest_bold.json").write_text(json.dumps({"RepetitionTime": 1.5}))
    _run(tmp_path / "b.tsv", 100)  # no sidecar: its own tr
    (tmp_path / "m.csv").write_text(
        f"subject_id,timeseries,tr,scan_length\nsub-01,{run},,\ns2,b.tsv,0.72,\n"
    )
    table = read_manifest(tmp_path / "m.csv")
    assert table["tr"].astype(float).tolist() == [1.5, 0.72]
    assert table["scan_length"].tolist() == pytest.approx([150 * 1.5, 100 * 0.72])


def test_manifest_tr_that_differs_from_the_sidecar_is_used_with_a_warning(tmp_path: Path) -> None:
    _run(tmp_path / "a.tsv", 240, tr=2.0)
    (tmp_path / "m.csv").write_text("subject_id,timeseries,tr\nsub-07,a.tsv,0.72\n")
    with pytest.warns(InputWarning) as record:
        table = read_manifest(tmp_path / "m.csv")
    messages = [str(w.message) for w in record if "RepetitionTime" in str(w.message)]
    assert len(messages) == 1, messages
    assert "sub-07" in messages[0] and str(tmp_path / "a.json") in messages[0]
    assert "RepetitionTime 2 s but its tr in the manifest is 0.72 s" in messages[0]
    assert table["tr"].tolist() == [0.72]
    assert table["scan_length"].tolist() == pytest.approx([240 * 0.72])


def test_manifest_rows_whose_tr_cannot_be_found_fail_alone(tmp_path: Path) -> None:
    _run(tmp_path / "ok.tsv", 100, tr=0.8)
    _run(tmp_path / "none.tsv", 100)  # no sidecar, no tr
    _run(tmp_path / "r1.tsv", 100, tr=0.8)
    _run(tmp_path / "r2.tsv", 100, tr=2.0)  # runs whose sidecars disagree
    _run(tmp_path / "ms.tsv", 100, tr=2000.0)  # a sidecar in milliseconds
    (tmp_path / "m.csv").write_text(
        "subject_id,timeseries,tr,scan_length\n"
        "s-ok,ok.tsv,,\ns-none,none.tsv,,\ns-mixed,r1.tsv;r2.tsv,,\ns-ms,ms.tsv,,\n"
    )
    table = read_manifest(tmp_path / "m.csv")
    problems = dict(zip(table["subject_id"], table["input_problem"]))
    assert pd.isna(problems["s-ok"]) and table["tr"].iloc[0] == 0.8
    assert table["scan_length"].iloc[0] == pytest.approx(100 * 0.8)
    assert (
        "row 2 (s-none)" in problems["s-none"]
        and "no JSON sidecar with RepetitionTime" in (problems["s-none"])
    )
    assert "give its tr in the manifest" in problems["s-none"]
    assert "different RepetitionTime [0.8, 2.0]" in problems["s-mixed"]
    assert "row 4 (s-ms)" in problems["s-ms"] and str(tmp_path / "ms.json") in problems["s-ms"]
    assert np.isnan(table["tr"].iloc[1:].astype(float)).all()


def test_manifest_fc_row_without_tr_is_refused(tmp_path: Path) -> None:
    _run(tmp_path / "a.tsv", 100, tr=0.8)
    (tmp_path / "m.csv").write_text(
        "subject_id,timeseries,fc,fcd_cdf,tr,scan_length\ns1,a.tsv,,,,\ns2,,fc.csv,cdf.csv,,100\n"
    )
    with pytest.raises(InvalidInputError, match=r"row 2 \(s2\).*no tr \(seconds\)"):
        read_manifest(tmp_path / "m.csv")


def test_cohort_fits_sidecar_rows_and_fails_a_row_without_a_tr_alone(
    tmp_path: Path, monkeypatch
) -> None:
    use_analytic_simulator(monkeypatch)
    for i in range(2):
        for run in (1, 2):
            _run(tmp_path / f"ts{i}_{run}.tsv", 30, seed=10 * i + run, tr=0.8)
    _run(tmp_path / "lost.tsv", 30, seed=5)  # no sidecar
    _sc(tmp_path)
    (tmp_path / "m.csv").write_text(
        "subject_id,timeseries,sc\n"
        "sub-00,ts0_1.tsv;ts0_2.tsv,sc.csv\nsub-01,lost.tsv,sc.csv\nsub-02,ts1_1.tsv;ts1_2.tsv,sc.csv\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)  # the cohort-gradient and short-run notes
        summary = run_cohort(
            tmp_path / "m.csv", tmp_path / "out", analytic_cohort_settings(), group_size=2, quiet=True
        )
    assert (summary.done, summary.failed) == (2, 1)
    failures = pd.read_csv(tmp_path / "out" / "failures.csv")
    assert failures["subject_id"].tolist() == ["sub-01"]
    assert failures["stage"].tolist() == ["input"]
    assert "no JSON sidecar with RepetitionTime" in failures["error"].iloc[0]
    assert "lost.tsv" in failures["error"].iloc[0]
    for sid in ("sub-00", "sub-02"):
        run = json.loads((tmp_path / "out" / sid / "run.json").read_text())
        assert run["timing"]["tr"] == 0.8
        assert run["timing"]["scan_length"] == pytest.approx(30 * 0.8)


# --- load_subject -------------------------------------------------------------------------------


def test_load_subject_without_tr_takes_the_sidecar_tr(tmp_path: Path) -> None:
    values = _run(tmp_path / "run1.tsv", 200, tr=2.0)
    subject = load_subject("sub-01", None, None, timeseries=[tmp_path / "run1.tsv"], sc=_sc(tmp_path))
    assert subject.tr == 2.0
    assert subject.scan_length == pytest.approx(200 * 2.0)
    assert subject.sources["tr"] == str(tmp_path / "run1.json")
    # the FCD window follows the sidecar's TR: round(60 / 2) frames, not round(60 / 0.72)
    _, cdf_2 = empirical_statistics([values], 2.0)
    _, cdf_072 = empirical_statistics([values], 0.72)
    np.testing.assert_allclose(subject.fcd_cdf, cdf_2)
    assert not np.allclose(subject.fcd_cdf, cdf_072)


def test_load_subject_tr_that_differs_from_the_sidecar_is_used_with_a_warning(
    tmp_path: Path,
) -> None:
    _run(tmp_path / "run1.tsv", 200, tr=2.0)
    with pytest.warns(InputWarning, match="RepetitionTime 2 s but tr is 0.72 s") as record:
        subject = load_subject(
            "sub-09", 0.72, None, timeseries=str(tmp_path / "run1.tsv"), sc=_sc(tmp_path)
        )
    message = next(str(w.message) for w in record if "RepetitionTime" in str(w.message))
    assert message.startswith("sub-09") and str(tmp_path / "run1.json") in message
    assert subject.tr == 0.72 and subject.scan_length == pytest.approx(200 * 0.72)
    assert "tr" not in subject.sources


def test_load_subject_without_tr_refuses_what_has_no_sidecar(tmp_path: Path) -> None:
    _run(tmp_path / "bare.tsv", 200)
    with pytest.raises(InvalidInputError, match=r"sub-01: .*no JSON sidecar.*bare\.tsv.*give tr"):
        load_subject("sub-01", None, None, timeseries=tmp_path / "bare.tsv")
    with pytest.raises(InvalidInputError, match=r"tr .* is required with FC \+ FCD-CDF"):
        load_subject("sub-01", None, 100.0, fc="FC.csv", fcd_cdf="CDF.csv")
    with pytest.raises(InvalidInputError, match="required with time series given as arrays"):
        load_subject("sub-01", None, None, timeseries=[np.zeros((200, N_TINY))])
    _run(tmp_path / "r1.tsv", 200, tr=0.8)
    _run(tmp_path / "r2.tsv", 200, tr=2.0)
    with pytest.raises(InvalidInputError, match=r"different RepetitionTime \[0.8, 2.0\]"):
        load_subject("sub-01", None, None, timeseries=f"{tmp_path / 'r1.tsv'};{tmp_path / 'r2.tsv'}")
