"""Inputs review 1207c: a cohort manifest whose sc (or map) column is filled for some rows only,
warnings about an SC that cannot be right (regions without connections, raw streamline counts),
a surrogate fit given an SC its weights were not trained on, and the lock file of a refused run.

Expectations are built by hand: the subjects of each kind in a manifest, the regions zeroed in an
SC and their DK68 names, the max / median ratio of an SC computed here with numpy, the files a
refused run may leave.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_helpers import (
    N_TINY,
    analytic_cohort_settings,
    tiny_cdf,
    tiny_fc,
    tiny_sc,
    tiny_surrogate_weights,
    use_analytic_simulator,
    write_manifest,
)

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS, load_default_template
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import run_cohort
from delssome_norms.fit.manifest_checks import check_partly_filled
from delssome_norms.io import check_sc, write_matrix
from delssome_norms.io.guard import LOCK_FILE
from delssome_norms.io.tidy_lock import TidyOutDirLock, missing_folders

NO_CONNECTION = "no connection in the SC"
RAW_COUNTS = "raw streamline counts? log-scale them, e.g. log1p, as the template is"


def _sc_warnings(record) -> list[str]:
    return [
        str(w.message)
        for w in record
        if issubclass(w.category, InputWarning)
        and (NO_CONNECTION in str(w.message) or RAW_COUNTS in str(w.message))
    ]


# 1: a manifest's sc / map column filled for some rows only ---------------------------------- #
def _blank(manifest: Path, column: str, rows: list[int]) -> None:
    table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    table.loc[rows, column] = ""
    table.to_csv(manifest, index=False)


def test_a_manifest_with_some_sc_cells_empty_is_refused_before_any_work(
    tmp_path: Path, monkeypatch
) -> None:
    sim = use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 5)
    _blank(manifest, "sc", [1, 3, 4])  # sub-01, sub-03, sub-04 would get the template SC
    out = tmp_path / "fits"
    with pytest.raises(InvalidInputError) as err:
        run_cohort(manifest, out, analytic_cohort_settings(), quiet=True)
    text = str(err.value)
    assert err.value.source == str(manifest)
    assert "column sc names an SC file for 2 subject(s) (sub-00, sub-02)" in text
    assert "is empty for 3 (sub-01, sub-03, sub-04)" in text
    assert "default template SC" in text
    assert "fill the empty cells, or run the subjects with empty cells as a separate cohort" in text
    assert not out.exists() and sim.calls == 0  # nothing was fitted, no folder made


def test_a_manifest_with_some_map_cells_empty_is_refused(tmp_path: Path, monkeypatch) -> None:
    """Subjects without maps get the maps --maps chooses, a pipeline other than given maps'
    (collect refuses to combine them), so the map columns are refused alike."""
    sim = use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 3)
    x = np.linspace(-1, 1, N_TINY)
    write_matrix(1.4 - 0.2 * x, tmp_path / "data" / "myelin.csv")
    write_matrix(x, tmp_path / "data" / "gradient.csv")
    table = pd.read_csv(manifest, dtype=str)
    table["myelin"] = ["data/myelin.csv", "", "data/myelin.csv"]
    table["gradient"] = ["data/gradient.csv", "", "data/gradient.csv"]
    table.to_csv(manifest, index=False)
    out = tmp_path / "fits"
    with pytest.raises(InvalidInputError) as err:
        run_cohort(manifest, out, analytic_cohort_settings(), quiet=True)
    text = str(err.value)
    assert "columns myelin and gradient name map files for 2 subject(s) (sub-00, sub-02)" in text
    assert "are empty for 1 (sub-01)" in text and "the maps --maps chooses" in text
    assert not out.exists() and sim.calls == 0


def test_partly_filled_columns_of_a_table(tmp_path: Path) -> None:
    """None, NaN and blank text are empty cells; at most 3 ids of each kind are named."""
    ids = [f"s{i}" for i in range(7)]
    sc = ["a.csv", "", np.nan, None, "  ", "b.csv", "c.csv"]
    table = pd.DataFrame({"subject_id": ids, "sc": sc})
    with pytest.raises(InvalidInputError) as err:
        check_partly_filled(table, "manifest")
    text = str(err.value)
    assert text.startswith("manifest: column sc names an SC file for 3 subject(s) (s0, s5, s6)")
    assert "is empty for 4 (s1, s2, s3 and 1 more)" in text
    # every row filled, or every row empty, or no such column: nothing to refuse
    check_partly_filled(pd.DataFrame({"subject_id": ids[:2], "sc": ["a.csv", "b.csv"]}), "m")
    check_partly_filled(pd.DataFrame({"subject_id": ids[:2], "sc": [np.nan, ""]}), "m")
    check_partly_filled(pd.DataFrame({"subject_id": ids[:2], "myelin": ["m", "m"]}), "m")


def test_validate_reports_a_partly_filled_sc_column(tmp_path: Path, capsys) -> None:
    manifest = write_manifest(tmp_path, 3)
    _blank(manifest, "sc", [2])
    assert main(["validate", "--manifest", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert f"delssome-norms: error: {manifest}: column sc names an SC file for 2 subject(s)" in err
    assert "(sub-00, sub-01) and is empty for 1 (sub-02)" in err


# 2: SC warnings -------------------------------------------------------------------------------- #
def _sparse_template(isolated: list[int]) -> np.ndarray:
    sc = np.array(load_default_template().sc, dtype=np.float64)
    sc[isolated, :] = 0.0
    sc[:, isolated] = 0.0
    return sc


def test_regions_without_connections_are_named(tmp_path: Path) -> None:
    isolated = [0, 3, 4, 7, 10, 20, 40]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = check_sc(_sparse_template(isolated), input_name="sparse.csv")
    texts = _sc_warnings(record)
    assert len(texts) == 1  # not heavy-tailed: the template's values
    names = ", ".join(DK68_REGIONS[i] for i in isolated[:5])
    assert texts[0].startswith(f"sparse.csv: 7 of 68 regions have {NO_CONNECTION} ({names} and 2 more")
    assert out.shape == (68, 68)  # a warning, not a refusal
    # another atlas: by 0-based index, or by the names given
    sc = tiny_sc(8)
    sc[[2, 5], :] = 0.0
    sc[:, [2, 5]] = 0.0
    with pytest.warns(
        InputWarning, match=r"2 of 8 regions have no connection in the SC \(region 2, region 5;"
    ):
        check_sc(sc, input_name="sc8.csv")
    names8 = [f"net{i}" for i in range(8)]
    with pytest.warns(InputWarning, match=r"\(net2, net5; 53.6% of region pairs connected\)"):
        check_sc(sc, input_name="sc8b.csv", regions=names8)  # 30 of 56 ordered pairs


def test_a_heavy_tailed_sc_asks_for_log_scaling() -> None:
    rng = np.random.default_rng(3)
    sc = np.triu(np.floor(rng.lognormal(3.0, 1.6, (68, 68))), 1)
    sc = sc + sc.T
    nonzero = sc[~np.eye(68, dtype=bool)]
    ratio = nonzero.max() / np.median(nonzero[nonzero > 0])
    assert ratio > 20  # raw-count-like
    with pytest.warns(InputWarning) as record:
        check_sc(sc, input_name="counts.csv")
    texts = _sc_warnings(record)
    assert texts == [
        f"counts.csv: the SC's largest connection is {ratio:.0f} x its median nonzero one (the "
        f"template's: 1.6 x): {RAW_COUNTS}; the model scales the SC to a maximum of 0.02, so its "
        f"median connection becomes {0.02 / ratio:.2g} and the regions barely couple"
    ]
    with warnings.catch_warnings():  # its log1p is fine
        warnings.simplefilter("error")
        check_sc(np.log1p(sc), input_name="log.csv")


def test_the_packaged_scs_and_synthetic_subjects_are_not_warned_about(tmp_path: Path) -> None:
    from delssome_norms.datasets.reference import (
        load_reference_subjects,
        load_simulation_sc,
        materialise_subjects,
    )
    from delssome_norms.fit.cohort import _load_row, plan_cohort
    from delssome_norms.fit.settings import FitSettings
    from delssome_norms.io import read_manifest

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_sc(load_default_template().sc, input_name="template")
        check_sc(load_simulation_sc(), input_name="simulation SC")
    people = load_reference_subjects().demographics
    ids = [people.loc[people["kind"] == k, "subject_id"].iloc[0] for k in ("control", "patient")]
    folder = materialise_subjects(tmp_path / "synth", subject_ids=ids)
    manifest = folder / "manifest.csv" if folder.is_dir() else folder
    plan = plan_cohort(read_manifest(manifest), FitSettings(), group_size=1)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        subjects = [_load_row(r, plan.n_regions, FitSettings()) for r in plan.rows]
    assert len(subjects) == 2 and _sc_warnings(record) == []


def test_validate_warns_once_about_a_sparse_sc(tmp_path: Path, capsys) -> None:
    """The SC is read alone and again with the subject: one warning; exit status 0."""
    rng = np.random.default_rng(0)
    ts = rng.standard_normal((600, 68)) + rng.standard_normal((600, 1))
    write_matrix(np.corrcoef(ts.T), tmp_path / "fc.csv")
    write_matrix(tiny_cdf(0), tmp_path / "cdf.csv")
    write_matrix(_sparse_template(list(range(45))), tmp_path / "sc.csv")
    argv = ["validate", "--fc", str(tmp_path / "fc.csv"), "--fcd-cdf", str(tmp_path / "cdf.csv"),
            "--sc", str(tmp_path / "sc.csv"), "--tr", "0.72", "--scan-length", "432"]  # fmt: skip
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")  # validate's own filter shows each text once
        assert main(argv) == 0
    texts = _sc_warnings(record)
    assert len(texts) == 1
    assert texts[0].startswith(f"{tmp_path / 'sc.csv'}: 45 of 68 regions have {NO_CONNECTION} (")
    assert "lh_bankssts, lh_caudalanteriorcingulate," in texts[0]
    captured = capsys.readouterr()
    assert "ok  SC:" in captured.out


# 3: surrogate mode with an SC the weights were not trained on; the lock of a refused run ------ #
def _tiny_files(tmp: Path) -> dict[str, Path]:
    data = tmp / "data"
    data.mkdir(parents=True, exist_ok=True)
    paths = {k: data / f"{k}.csv" for k in ("fc", "cdf", "own_sc", "moved_sc")}
    write_matrix(tiny_fc(), paths["fc"])
    write_matrix(tiny_cdf(0), paths["cdf"])
    write_matrix(tiny_sc(seed=7), paths["own_sc"])
    order = [1, 0, 2, 3, 5, 4]  # the weights' own SC, in another region order
    write_matrix(tiny_sc()[np.ix_(order, order)], paths["moved_sc"])
    return paths


def _estimate(p: dict[str, Path], sc: Path, out: Path, *extra: str) -> list[str]:
    return [
        "estimate-ei", "--fc", str(p["fc"]), "--fcd-cdf", str(p["cdf"]), "--tr", "0.72",
        "--scan-length", "14.4", "--sc", str(sc), "--out-dir", str(out), "--generations", "1",
        "--popsize", "6", "--mu", "2", "--n-dup", "1", "--dt-train", "0.005", "--dt-val", "0.005",
        "--dt-test", "0.005", "--burn-in", "0.72", "--fcd-window", "5", "--warmup-steps", "50",
        "--test-top-k", "2", "--quiet", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("which", ["own_sc", "moved_sc"])
def test_surrogate_mode_refuses_another_sc_before_the_out_dir(
    tmp_path: Path, capsys, monkeypatch, which: str
) -> None:
    """Refused before any work: the out-dir is neither created nor locked (an SC of other
    values before the subject is read, the weights' SC in another order once it is)."""
    from delssome_norms.pipeline import EIEstimator

    weights = tiny_surrogate_weights(tmp_path / "weights")
    p = _tiny_files(tmp_path)
    started = []
    monkeypatch.setattr(EIEstimator, "fit_subject", lambda self, *a, **k: started.append(1))
    out = tmp_path / "fits" / "sub-01"
    code = main(_estimate(p, p[which], out, "--mode", "surrogate", "--weights", str(weights)))
    err = capsys.readouterr().err
    assert code == 2 and not started
    assert "differs from the template the surrogate was trained on" in err
    assert not out.exists() and not (tmp_path / "fits").exists()


def test_a_refused_estimate_leaves_no_folder_holding_a_lock(tmp_path: Path, capsys, monkeypatch) -> None:
    from delssome_norms.pipeline import EIEstimator

    def refuse(self, *args, **kwargs):
        raise InvalidInputError("refused for the test", "--out-dir")

    monkeypatch.setattr(EIEstimator, "fit_subject", refuse)
    p = _tiny_files(tmp_path)
    out = tmp_path / "new" / "sub-01"
    assert main(_estimate(p, p["own_sc"], out)) == 2
    assert "refused for the test" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # the folders it made are gone with the lock file
    kept = tmp_path / "kept"
    kept.mkdir()  # a folder the user made stays
    assert main(_estimate(p, p["own_sc"], kept)) == 2
    assert kept.is_dir()


def test_tidy_lock_removes_only_what_it_made_and_left_empty(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    created = missing_folders(target)
    assert created == [target.absolute(), (tmp_path / "a").absolute()]
    target.mkdir(parents=True)
    with TidyOutDirLock(target, created):  # success: the lock file stays, as after any run
        pass
    assert (target / LOCK_FILE).exists()
    with pytest.raises(RuntimeError), TidyOutDirLock(target, created):
        (target / "result.csv").write_text("x\n")
        raise RuntimeError
    assert (target / "result.csv").exists()  # not empty: left as it is
    (target / "result.csv").unlink()
    with pytest.raises(RuntimeError), TidyOutDirLock(target, created):
        raise RuntimeError
    assert not (tmp_path / "a").exists()


def test_partly_filled_columns_naming_the_defaults_are_one_pipeline(tmp_path: Path) -> None:
    """The demo manifest's sc.csv, myelin.csv and gradient.csv hold the template SC and the
    shipped maps: rows leaving them empty get the same, so nothing is refused (a second
    review found cohorts refused that fitted and collected fine)."""
    from delssome_norms.datasets import load_reference_subjects, materialise_subjects
    from delssome_norms.io import read_manifest

    people = load_reference_subjects().demographics
    ids = people.loc[people["kind"] == "control", "subject_id"].iloc[:3].tolist()
    made = materialise_subjects(tmp_path / "synth", subject_ids=ids)
    manifest = made / "manifest.csv" if made.is_dir() else made
    folder = manifest.parent
    table = pd.read_csv(manifest, dtype=str)
    table.loc[0, "sc"] = ""
    table.loc[1, ["myelin", "gradient"]] = ""
    table.to_csv(manifest, index=False)
    check_partly_filled(read_manifest(manifest), str(manifest))  # not refused
    # a given SC of other values (the template with one connection changed) is refused
    sc = pd.read_csv(folder / "sc.csv", header=None).to_numpy(dtype=float)
    i, j = np.argwhere(sc > 0)[0]
    sc[i, j] = sc[j, i] = sc[i, j] * 1.5
    write_matrix(sc, folder / "other_sc.csv")
    table.loc[1:, "sc"] = "other_sc.csv"
    table.to_csv(manifest, index=False)
    with pytest.raises(InvalidInputError, match=r"column sc names an SC file for 2 subject"):
        check_partly_filled(read_manifest(manifest), str(manifest))


def test_partly_filled_shipped_maps_are_refused_with_fc_gradient_maps(tmp_path: Path) -> None:
    """With --maps fc-gradient the rows without maps get an FC gradient, not the shipped maps:
    map files holding the shipped maps for some rows only make two pipelines (collect refused
    the folder after every fit)."""
    from delssome_norms.datasets import load_reference_subjects, materialise_subjects
    from delssome_norms.io import read_manifest

    people = load_reference_subjects().demographics
    ids = people.loc[people["kind"] == "control", "subject_id"].iloc[:2].tolist()
    made = materialise_subjects(tmp_path / "synth", subject_ids=ids)
    manifest = made / "manifest.csv" if made.is_dir() else made
    table = pd.read_csv(manifest, dtype=str)
    table.loc[1, ["myelin", "gradient"]] = ""
    table.to_csv(manifest, index=False)
    check_partly_filled(read_manifest(manifest), str(manifest), "default")  # one pipeline
    with pytest.raises(InvalidInputError, match=r"columns myelin and gradient name map files"):
        check_partly_filled(read_manifest(manifest), str(manifest), "fc-gradient")
