"""Review of the real-data journey: the TR of a run's JSON sidecars in ``estimate-ei
--timeseries`` (as in ``prepare``), BIDS inheritance of ``task-rest_bold.json`` from the dataset
root or a subject/session folder, ``validate --drop-na-frames`` warning once, and an aparc table
of another measure than myelin."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InputWarning, InvalidInputError

NAMES = list(DK68_REGIONS)


def _series(frames: int = 400, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((frames, 68)) + rng.standard_normal((frames, 68)).cumsum(0) * 0.1


def _write_run(path: Path, frames: int = 400, seed: int = 7) -> np.ndarray:
    values = _series(frames, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(values, columns=NAMES).to_csv(path, sep="\t", index=False)
    return values


def _side(path: Path, tr: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"RepetitionTime": tr}))


@pytest.fixture
def fitted(monkeypatch) -> list:
    """estimate-ei stops where the fit would start; the subject it would fit is kept."""
    from delssome_norms.pipeline import EIEstimator

    seen: list = []

    def stop(self, subject, progress, *rest):
        seen.append(subject)
        raise InvalidInputError("stopped before the fit (test)", "test")

    monkeypatch.setattr(EIEstimator, "_fit_subject", stop)
    return seen


def _expected_cdf(values: np.ndarray, tr: float) -> np.ndarray:
    from delssome_norms.fit.subject import empirical_statistics

    return np.asarray(empirical_statistics([values], tr)[1]).ravel()


# --- 1. estimate-ei --timeseries reads the runs' sidecars -------------------------------------


def test_estimate_ei_takes_the_tr_of_the_runs_sidecar(tmp_path: Path, fitted, capsys) -> None:
    run = tmp_path / "run1.tsv"
    values = _write_run(run)
    _side(tmp_path / "run1.json", 2.0)
    argv = ["estimate-ei", "--timeseries", str(run), "--out-dir", str(tmp_path / "sub01")]
    assert main(argv) == 2  # the stop above
    assert "TR 2 s from the runs' JSON sidecars" in capsys.readouterr().out
    (subject,) = fitted
    assert subject.tr == 2.0
    assert subject.sources["tr"] == str((tmp_path / "run1.json").absolute())  # in run.json's inputs
    assert subject.scan_length == pytest.approx(400 * 2.0)  # frames x the sidecar's TR
    # the FCD-CDF of a round(60 / 2.0) = 30-frame window, not the 83 frames of TR 0.72
    np.testing.assert_allclose(np.ravel(subject.fcd_cdf), _expected_cdf(values, 2.0), atol=1e-12)
    assert not np.allclose(np.ravel(subject.fcd_cdf), _expected_cdf(values, 0.72))


def test_estimate_ei_warns_when_tr_and_sidecar_disagree(tmp_path: Path, fitted, capsys) -> None:
    run = tmp_path / "run1.tsv"
    _write_run(run)
    _side(tmp_path / "run1.json", 2.0)
    argv = ["estimate-ei", "--timeseries", str(run), "--tr", "0.72", "--out-dir", str(tmp_path / "s")]
    with pytest.warns(InputWarning, match="RepetitionTime 2 s but --tr is 0.72 s"):
        assert main(argv) == 2
    assert fitted[0].tr == 0.72 and fitted[0].scan_length == pytest.approx(400 * 0.72)


def test_estimate_ei_without_tr_or_sidecar_names_tr(tmp_path: Path, fitted, capsys) -> None:
    run = tmp_path / "run1.tsv"
    _write_run(run)
    assert main(["estimate-ei", "--timeseries", str(run), "--out-dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "--tr" in err and str(run) in err and not fitted
    fc = tmp_path / "fc.csv"
    np.savetxt(fc, np.eye(68), delimiter=",")
    argv = ["estimate-ei", "--fc", str(fc), "--fcd-cdf", str(fc), "--scan-length", "800"]
    assert main([*argv, "--out-dir", str(tmp_path / "s")]) == 2
    assert "--tr" in capsys.readouterr().err and not fitted


# --- 2. BIDS inheritance ------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Runs without sidecars of their own; the TRs are in files above them."""
    root = tmp_path / "bids"
    _write_run(root / "sub-01" / "func" / "sub-01_task-rest_seg-DK_timeseries.tsv", 200, 1)
    for ses, seed in (("1", 2), ("2", 3)):
        folder = root / "sub-02" / f"ses-{ses}" / "func"
        _write_run(folder / f"sub-02_ses-{ses}_task-rest_seg-DK_timeseries.tsv", 200, seed)
    _side(root / "task-rest_bold.json", 2.0)  # the dataset's
    _side(root / "task-nback_bold.json", 9.0)  # another task: not these runs'
    _side(root / "sub-02" / "ses-2" / "sub-02_ses-2_task-rest_bold.json", 1.5)  # nearer: wins
    (root / "sub-02" / "ses-2" / "func" / "sub-02_ses-2_task-rest_timeseries.json").write_text(
        json.dumps({"Sources": ["x"]})  # nearer still but no RepetitionTime: does not mask it
    )
    return root


def test_bids_runs_inherit_the_tr_from_root_and_session_sidecars(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["prepare", "--bids-dir", str(tree), "--out-dir", str(out)]) == 0
    rows = pd.read_csv(out / "manifest.csv").set_index("subject_id")
    assert rows["tr"].to_dict() == {"sub-01": 2.0, "sub-02_ses-1": 2.0, "sub-02_ses-2": 1.5}
    assert rows.loc["sub-02_ses-2", "scan_length"] == pytest.approx(200 * 1.5)


def test_bids_inheritance_the_runs_own_folder_wins(tree: Path, tmp_path: Path) -> None:
    _side(tree / "sub-01" / "func" / "sub-01_task-rest_desc-preproc_bold.json", 0.8)
    _side(tree / "sub-01" / "sub-01_task-rest_bold.json", 3.0)  # subject level: farther
    out = tmp_path / "out"
    assert main(["prepare", "--bids-dir", str(tree / "sub-01"), "--out-dir", str(out)]) == 0
    assert pd.read_csv(out / "manifest.csv")["tr"].tolist() == [0.8]


def test_timeseries_in_a_bids_tree_inherit_the_tr(tree: Path, tmp_path: Path, fitted, capsys) -> None:
    run = tree / "sub-02" / "ses-1" / "func" / "sub-02_ses-1_task-rest_seg-DK_timeseries.tsv"
    assert main(["prepare", "--timeseries", str(run), "--out-dir", str(tmp_path / "p")]) == 0
    assert "FCD window 30 frames (60 s at TR 2 s)" in capsys.readouterr().out
    assert main(["estimate-ei", "--timeseries", str(run), "--out-dir", str(tmp_path / "s")]) == 2
    assert fitted[0].tr == 2.0 and fitted[0].scan_length == pytest.approx(200 * 2.0)


def test_a_plain_run_does_not_inherit_from_folders_above(tmp_path: Path, capsys) -> None:
    run = tmp_path / "sub-01" / "run1.tsv"  # not a BIDS name: only run1.json is its own
    _write_run(run)
    _side(tmp_path / "task-rest_bold.json", 2.0)
    assert main(["prepare", "--timeseries", str(run), "--out-dir", str(tmp_path / "p")]) == 2
    assert "--tr" in capsys.readouterr().err


# --- 3. validate --drop-na-frames warns once ----------------------------------------------------


def test_validate_drop_na_frames_warns_once(tmp_path: Path, capsys) -> None:
    values = _series()
    values[:3] = np.nan
    path = tmp_path / "run.tsv"
    pd.DataFrame(values, columns=NAMES).to_csv(path, sep="\t", index=False, na_rep="n/a")
    with pytest.warns(InputWarning) as record:
        code = main(["validate", "--timeseries", str(path), "--tr", "0.72", "--drop-na-frames"])
    assert code == 0
    dropped = [w for w in record if "dropped 3 of 400" in str(w.message)]
    assert len(dropped) == 1, [str(w.message) for w in record]
    out = capsys.readouterr().out
    assert "397 frames x 68 regions" in out and "subject as estimate-ei reads it" in out


def test_validate_timeseries_takes_the_sidecar_tr(tmp_path: Path, capsys) -> None:
    path = tmp_path / "run.tsv"
    _write_run(path)
    _side(tmp_path / "run.json", 2.0)
    assert main(["validate", "--timeseries", str(path)]) == 0
    out = capsys.readouterr().out
    assert "TR 2 s from the runs' JSON sidecars" in out and "TR 2 s, 800 s scan" in out
    with pytest.warns(InputWarning, match="RepetitionTime 2 s but --tr is 0.72 s"):
        assert main(["validate", "--timeseries", str(path), "--tr", "0.72"]) == 0


# --- 4. an aparc table of thickness is not saved as myelin unasked -------------------------------


def _aparc(folder: Path, measure: str, values: np.ndarray) -> list[str]:
    paths = []
    for h, hemi in enumerate(("lh", "rh")):
        cols = {f"{hemi}.aparc.{measure}": ["sub-01", "sub-02"]}
        for k, region in enumerate(DK68_REGIONS[34 * h : 34 * (h + 1)]):
            cols[f"{hemi}_{region[3:]}_{measure}"] = values[:, 34 * h + k]
        path = folder / f"{hemi}.{measure}.tsv"
        pd.DataFrame(cols).to_csv(path, sep="\t", index=False)
        paths.append(str(path))
    return paths


def test_a_thickness_table_needs_map_name(tmp_path: Path, capsys) -> None:
    values = np.random.default_rng(0).uniform(2.0, 3.0, (2, 68))
    tables = _aparc(tmp_path, "thickness", values)
    out = tmp_path / "maps"
    assert main(["prepare", "--aparc-stats", *tables, "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'thickness'" in err and "--map-name" in err
    assert not out.exists() or not any(out.iterdir())
    assert (
        main(["prepare", "--aparc-stats", *tables, "--map-name", "myelin", "--out-dir", str(out)]) == 0
    )
    assert "aparc measure 'thickness'" in capsys.readouterr().out
    np.testing.assert_allclose(np.loadtxt(out / "sub-02_myelin.csv", delimiter=","), values[1])


def test_a_t1w_t2w_table_is_myelin_by_default(tmp_path: Path) -> None:
    values = np.random.default_rng(1).uniform(1.0, 2.0, (2, 68))
    out = tmp_path / "maps"
    assert (
        main(["prepare", "--aparc-stats", *_aparc(tmp_path, "t1wt2w", values), "--out-dir", str(out)])
        == 0
    )
    np.testing.assert_allclose(np.loadtxt(out / "sub-01_myelin.csv", delimiter=","), values[0])


def test_in_one_folder_the_sidecar_naming_the_run_wins(tmp_path: Path, capsys) -> None:
    func = tmp_path / "bids" / "sub-01" / "func"
    run1 = func / "sub-01_task-rest_run-1_timeseries.tsv"
    _write_run(run1, 300, 1)
    _write_run(func / "sub-01_task-rest_run-2_timeseries.tsv", 300, 2)
    _side(func / "sub-01_task-rest_bold.json", 2.0)  # every rest run of sub-01 ...
    _side(func / "sub-01_task-rest_run-1_bold.json", 0.8)  # ... but run 1 has its own
    assert main(["prepare", "--timeseries", str(run1), "--out-dir", str(tmp_path / "p")]) == 0
    assert "FCD window 75 frames (60 s at TR 0.8 s)" in capsys.readouterr().out
    assert main(["prepare", "--bids-dir", str(tmp_path / "bids"), "--out-dir", str(tmp_path / "q")]) == 2
    assert "different RepetitionTime [0.8, 2.0]" in capsys.readouterr().err
