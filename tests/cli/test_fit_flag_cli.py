"""CLI: the interval and the fit-quality flag reach ``collect``'s table and ``charts fit``.

Two subjects are fitted with ``estimate-ei`` (real simulator, 6-region toy network, tiny search).
One of them is turned into a result of an older version (no interval, no verdict in its files),
the other is marked flagged in its ``run.json``; ``collect`` must carry both correctly.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning
from delssome_norms.io import write_matrix
from delssome_norms.norms.simulate import make_truth, simulate_cohort

N = 6
FAST = [
    "--popsize", "6", "--mu", "2", "--n-dup", "2", "--dt-train", "0.005", "--dt-val", "0.005",
    "--dt-test", "0.005", "--burn-in", "0.72", "--fcd-window", "5", "--warmup-steps", "50",
    "--test-top-k", "2", "--generations", "2", "--quiet",
]  # fmt: skip


def _fit(tmp: Path, sid: str, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    ts = rng.standard_normal((40, N)) + 0.8 * rng.standard_normal((40, 1))
    sc = np.random.default_rng(0).random((N, N)) ** 3
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0.0)
    data = tmp / "data"
    data.mkdir(exist_ok=True)
    write_matrix(sc, data / "sc.csv")
    np.savetxt(data / f"{sid}.tsv", ts, delimiter="\t")
    out = tmp / "out" / sid
    argv = [
        "estimate-ei", "--timeseries", str(data / f"{sid}.tsv"), "--tr", "0.72",
        "--sc", str(data / "sc.csv"), "--out-dir", str(out), "--maps", "fc-gradient", *FAST,
    ]  # fmt: skip
    assert main(argv) == 0
    return out


def test_collect_carries_intervals_flags_and_reads_older_results(tmp_path: Path, capsys) -> None:
    old, flagged = _fit(tmp_path, "sub-00", 0), _fit(tmp_path, "sub-01", 1)
    # sub-00 as written by a version without intervals: no columns, no blocks
    run = json.loads((old / "run.json").read_text())
    run.pop("ei_interval")
    run.pop("fit_quality")
    (old / "run.json").write_text(json.dumps(run))
    ei = pd.read_csv(old / "EI_ratio.csv").drop(columns=["EI_ratio_lo", "EI_ratio_hi"])
    ei.to_csv(old / "EI_ratio.csv", index=False)
    # sub-01 carries a verdict with two reasons
    run = json.loads((flagged / "run.json").read_text())
    interval = run["ei_interval"]
    run["fit_quality"] = {**run["fit_quality"], "flagged": True}
    run["fit_quality"]["reasons"] = ["cost_above_floor", "gate_rejected_most"]
    (flagged / "run.json").write_text(json.dumps(run))
    demo = tmp_path / "demo.csv"
    pd.DataFrame(
        {"subject_id": ["sub-00", "sub-01"], "age_in_years": [20, 30], "sex": ["F", "M"]}
    ).to_csv(demo, index=False)
    table_path = tmp_path / "cohort_ei.csv"
    fit_output = capsys.readouterr().out
    # the tiny search is far below the calibration's budget: said at the fit and by collect
    assert interval["calibration_applies"] is False
    assert "generations 2 (calibrated at 30)" in interval["calibration_differences"]
    assert "sub-01: note: the interval is not calibrated for this fit (generations 2" in fit_output
    with pytest.warns(InputWarning, match=r"1 of 2 subject\(s\).*sub-01 \(cost_above_floor;gate"):
        with pytest.warns(InputWarning, match=r"intervals of 1 of 2 subject\(s\) are not "
                          r"calibrated for their fits \(atlas \(1 subject\), generations \(1 "
                          r"subject\), maps \(1 subject\), popsize \(1 subject\), scan_length "
                          r"\(1 subject\), test_top_k \(1 subject\); e\.g\. "
                          r"sub-01: generations 2 \(calibrated at 30\)"
                          r".* too narrow: sub-01;"):  # fmt: skip
            assert main(["collect", "--in-dir", str(tmp_path / "out"), "--demographics",
                         str(demo), "--out", str(table_path)]) == 0  # fmt: skip
    table = pd.read_csv(table_path).set_index("subject_id")
    assert np.isnan(table.loc["sub-00", "ei_ratio_mean_lo"])
    assert np.isnan(table.loc["sub-00", "ei_ratio_mean_hi"])
    assert not table.loc["sub-00", "fit_flagged"]
    assert table.loc["sub-01", "ei_ratio_mean_lo"] == pytest.approx(interval["mean_lo"])
    assert table.loc["sub-01", "ei_ratio_mean_hi"] == pytest.approx(interval["mean_hi"])
    assert table.loc["sub-01", "ei_ratio_mean_lo"] < table.loc["sub-01", "ei_ratio_mean"]
    assert table.loc["sub-01", "fit_flagged"]
    assert table.loc["sub-01", "fit_flag_reasons"] == "cost_above_floor;gate_rejected_most"
    # the older result's calibration is unknown (blank), the tiny fit's is not covered
    assert np.isnan(table.loc["sub-00", "ei_interval_calibrated"])
    assert table.loc["sub-01", "ei_interval_calibrated"] == False  # noqa: E712 (CSV text)


@pytest.fixture(scope="module")
def flagged_table(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("flagged")
    cohort = simulate_cohort(make_truth(n_targets=1, n_sites=3, seed=3), 600, seed=1)
    cohort["subject_id"] = [f"p{i:03d}" for i in range(len(cohort))]
    cohort["fit_flagged"] = False
    cohort["fit_flag_reasons"] = ""
    cohort.loc[:4, "fit_flagged"] = True
    cohort.loc[:4, "fit_flag_reasons"] = "gate_rejected_most"
    cohort.to_csv(d / "table.csv", index=False)
    return d / "table.csv"


def test_charts_fit_warns_about_flagged_people(flagged_table: Path, tmp_path: Path, capsys) -> None:
    with pytest.warns(InputWarning, match=r"5 of 600 people.*p000 \(the gate rejected most"):
        main(["charts", "fit", "--table", str(flagged_table), "--out", str(tmp_path / "c")])
    assert "on 600 people" in capsys.readouterr().out


def test_charts_fit_exclude_flagged_drops_them(flagged_table: Path, tmp_path: Path, capsys) -> None:
    argv = ["charts", "fit", "--table", str(flagged_table), "--out", str(tmp_path / "c")]
    main([*argv, "--exclude-flagged"])
    out = capsys.readouterr().out
    assert "left out 5 of 600 people" in out and "p004" in out
    assert "on 595 people" in out


def test_flagged_without_reasons_is_read_without_warnings(
    flagged_table: Path, tmp_path: Path, capsys
) -> None:
    # an empty reasons column reads back as float NaN; filling it used to raise a pandas warning
    table = pd.read_csv(flagged_table)
    table["fit_flag_reasons"] = ""
    path = tmp_path / "no_reasons.csv"
    table.to_csv(path, index=False)
    assert pd.read_csv(path)["fit_flag_reasons"].dtype == float
    argv = ["charts", "fit", "--table", str(path), "--out", str(tmp_path / "c"), "--exclude-flagged"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(argv) == 0
    captured = capsys.readouterr()
    assert "left out 5 of 600 people: p000, p001" in captured.out
    assert "warning" not in captured.err and not caught, (captured.err, [str(w) for w in caught])


def test_scores_flag_uncalibrated_intervals(flagged_table: Path, tmp_path: Path, capsys) -> None:
    chart = tmp_path / "c"
    assert main(["charts", "fit", "--table", str(flagged_table), "--out", str(chart)]) in (0, 1)
    table = pd.read_csv(flagged_table).head(4)
    table["ei_ratio_mean_lo"] = table["ei_ratio_mean"] * 0.9
    table["ei_ratio_mean_hi"] = table["ei_ratio_mean"] * 1.1
    table["fit_flagged"] = False
    table["ei_interval_calibrated"] = ["False", "True", "", "false"]  # as a CSV reads back
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "s.csv"
    assert main(["charts", "score", "--chart", str(chart), "--table", str(path), "--out", str(out)]) == 0
    scores = pd.read_csv(out, keep_default_na=False)
    assert scores["flag"].tolist() == ["interval_uncalibrated", "", "", "interval_uncalibrated"]
    assert "2 with E/I intervals the calibration does not cover" in capsys.readouterr().out
    # nullable booleans (pandas' convert_dtypes, pyarrow tables) with blanks read the same way
    from delssome_norms.norms import GrowthChart

    nullable = table.assign(ei_interval_calibrated=[False, True, None, False]).convert_dtypes()
    assert str(nullable["ei_interval_calibrated"].dtype) == "boolean"
    flags = GrowthChart.load(chart).score(nullable, targets=["ei_ratio_mean"])["flag"]
    assert flags.tolist() == ["interval_uncalibrated", "", "", "interval_uncalibrated"]
    table["ei_interval_calibrated"] = ["False", "maybe", "", ""]
    table.to_csv(path, index=False)
    assert main(["charts", "score", "--chart", str(chart), "--table", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "ei_interval_calibrated must be True/False, got 'maybe' in row(s) 2" in err


def test_exclude_flagged_needs_the_column(tmp_path: Path, capsys) -> None:
    cohort = simulate_cohort(make_truth(n_targets=1, n_sites=3, seed=3), 100, seed=1)
    cohort.to_csv(tmp_path / "t.csv", index=False)
    argv = ["charts", "fit", "--table", str(tmp_path / "t.csv"), "--out", str(tmp_path / "c")]
    assert main([*argv, "--exclude-flagged"]) == 2
    assert "fit_flagged column" in capsys.readouterr().err


def test_interval_bounds_are_not_statistics_targets() -> None:
    from delssome_norms.stats._cohort import default_targets

    cols = ["subject_id", "ei_ratio_mean", "ei_ratio_roi_0", "ei_ratio_mean_lo", "ei_ratio_mean_hi"]
    assert default_targets(pd.DataFrame(columns=cols)) == ["ei_ratio_mean", "ei_ratio_roi_0"]


@pytest.mark.parametrize("blank", ["some", "all"])
def test_empty_fit_flagged_cells_are_not_flagged(
    flagged_table: Path, tmp_path: Path, capsys, blank: str
) -> None:
    """Empty fit_flagged cells (people added by hand) are not flagged: pandas 3 keeps them NaN
    through astype(str) (pandas 2 gave "nan"), so they were refused as "got nan"."""
    table = pd.read_csv(flagged_table)
    table["fit_flagged"] = table["fit_flagged"].astype(object)
    table.loc[5 if blank == "some" else 0 :, "fit_flagged"] = None
    path = tmp_path / "blank.csv"
    table.to_csv(path, index=False)
    read = pd.read_csv(path)["fit_flagged"]
    assert read.isna().sum() == (595 if blank == "some" else 600)
    argv = ["charts", "fit", "--table", str(path), "--out", str(tmp_path / "c"), "--exclude-flagged"]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert ("left out 5 of 600 people" in out) == (blank == "some")
    assert f"on {595 if blank == 'some' else 600} people" in out
