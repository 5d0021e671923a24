"""Review: cohorts and growth-chart figures of atlases other than DK68 (10 and 34 regions).

* ``cohort --mode surrogate`` with weights of another N is refused once, before any work;
* a subject whose gradient no wEI pattern can follow fails alone in its lockstep group;
* the warning about missing maps says the shipped maps are DK68-only;
* ``charts report``/``brainmap`` name regions from the table's regions sidecar (never DK68
  names for another atlas) and refuse a brain map of another atlas;
* the site-column error of ``charts fit`` names options that exist.

Cohort fits use the analytic stand-in simulator (tests/fit/fit_helpers.py): seconds each.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_helpers import analytic_cohort_settings, use_analytic_simulator, write_manifest

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import run_cohort
from delssome_norms.io import write_matrix

N34 = 34


def _spiky(n: int) -> np.ndarray:
    """A gradient dominated by one region (index n // 2, about sqrt(n) SD from the mean): a wEI
    pattern following it with an across-region SD of 0.3 spans about 0.3 sqrt(n), wider than the
    bounds allow for n = 100."""
    g = np.linspace(-0.05, 0.05, n)
    g[n // 2] = 1.0
    return (g - g.mean()) / g.std()


# ------------------------------------------------------------------------------------------- #
# cohort: surrogate weights of another N
# ------------------------------------------------------------------------------------------- #
def test_surrogate_cohort_of_another_atlas_is_refused_once_before_any_work(
    tmp_path: Path, capsys
) -> None:
    manifest = write_manifest(tmp_path, 2, n=N34)
    out = tmp_path / "out"
    argv = [
        "cohort", "--manifest", str(manifest), "--out-dir", str(out), "--mode", "surrogate",
        "--generations", "1", "--popsize", "6", "--mu", "2", "--n-dup", "1", "--fcd-window", "5",
        "--burn-in", "0.72", "--warmup-steps", "50", "--dt-train", "0.01", "--dt-val", "0.01",
        "--dt-test", "0.01", "--quiet",
    ]  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(argv) == 2
    err = capsys.readouterr().err
    # the shipped weights are DK68's: one refusal naming both N, --mode and --weights
    assert "N=68" in err and f"N={N34}" in err
    assert "--mode euler" in err and "--weights" in err
    assert err.count("N=68") == 1
    # refused before the scan-length warning of the weights' timing cover, and before any folder
    assert "scan length" not in err
    assert not any("trained range" in str(w.message) for w in caught)
    assert not out.exists()


# ------------------------------------------------------------------------------------------- #
# lockstep: a subject whose gradient no pattern can follow fails alone
# ------------------------------------------------------------------------------------------- #
def test_infeasible_gradient_fails_its_subject_alone(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    n = 100
    manifest = write_manifest(tmp_path, 3, n=n)
    x = np.linspace(-1, 1, n)
    smooth, spiky = (x - x.mean()) / x.std(), _spiky(n)
    maps = {
        "smooth_gradient": smooth,
        "smooth_myelin": 1.6 - 0.2 * x + 0.05 * np.sin(7 * x),
        "spiky_gradient": spiky,
        "spiky_myelin": 1.5 - 0.1 * spiky + 0.001 * np.sin(7 * x),  # follows the spike too
    }
    for name, value in maps.items():
        write_matrix(value, tmp_path / "data" / f"{name}.csv")
    table = pd.read_csv(manifest)
    kinds = ["smooth", "spiky", "smooth"]
    table["gradient"] = [f"data/{k}_gradient.csv" for k in kinds]
    table["myelin"] = [f"data/{k}_myelin.csv" for k in kinds]
    table.to_csv(manifest, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        summary = run_cohort(
            manifest, tmp_path / "out", analytic_cohort_settings(), group_size=3, quiet=True
        )
    assert summary.n_groups == 1  # the three shared one lockstep group
    assert (summary.done, summary.failed) == (2, 1)
    failure = summary.failures.set_index("subject_id").loc["sub-01"]
    assert failure["stage"] == "input"
    assert failure["error"].startswith("gradient map: no candidate can pass")
    assert f"region index {n // 2}" in failure["error"]  # the region that dominates the map
    for sid in ("sub-00", "sub-02"):  # fitted, with finite E/I
        ei = pd.read_csv(tmp_path / "out" / sid / "EI_ratio.csv")
        assert len(ei) == n and np.isfinite(ei["EI_ratio"]).all()
        run = json.loads((tmp_path / "out" / sid / "run.json").read_text())
        assert run["lockstep_group"] == ["sub-00", "sub-01", "sub-02"]
    assert not (tmp_path / "out" / "sub-01" / "checkpoint").exists()  # nothing was simulated


# ------------------------------------------------------------------------------------------- #
# the warning about missing maps
# ------------------------------------------------------------------------------------------- #
@pytest.mark.filterwarnings("ignore:the E/I intervals will not be calibrated")
def test_no_maps_warning_says_the_shipped_maps_are_dk68_only(tmp_path: Path, monkeypatch) -> None:
    from delssome_norms.fit import estimate_ei
    from delssome_norms.fit.atlas_checks import no_maps_message
    from delssome_norms.fit.subject import load_subject

    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 1, n=10)
    with pytest.warns(InputWarning, match="no myelin/gradient maps") as record:
        run_cohort(manifest, tmp_path / "out", analytic_cohort_settings(), quiet=True)
    text = " ".join(str(w.message) for w in record if "myelin/gradient" in str(w.message))
    assert "DK68-only" in text and "this atlas has 10" in text
    data = tmp_path / "data"
    subject = load_subject(
        "sub-x", 0.72, 14.4, fc=data / "sub-00_FC.csv", fcd_cdf=data / "sub-00_FCD_CDF.csv",
        sc=data / "sc.csv",
    )  # fmt: skip
    with pytest.warns(InputWarning, match=r"^no myelin/gradient maps given.*DK68-only"):
        estimate_ei(subject, tmp_path / "single", analytic_cohort_settings())
    # a DK68 subject keeps the old text (its default maps are shipped)
    assert "DK68-only" not in no_maps_message(68, "the subject's FC")


# ------------------------------------------------------------------------------------------- #
# charts report / brainmap of another atlas
# ------------------------------------------------------------------------------------------- #
NAMES10 = [f"7Networks_{h}_{k}" for h in ("LH", "RH") for k in range(5)]


@pytest.fixture(scope="module")
def atlas10(tmp_path_factory) -> dict:
    """A collect-style table of a 10-region atlas (the first 10 regional columns of the synthetic
    reference table, 601 people) with its regions sidecar, a chart fitted on it (NO family, a few
    seconds) and 5 people scored with `charts score`."""
    from delssome_norms.datasets.reference import load_reference_table
    from delssome_norms.io.ei_table import region_columns, regions_frame

    folder = tmp_path_factory.mktemp("atlas10")
    table = load_reference_table().iloc[::20].reset_index(drop=True)
    keep = set(region_columns(10))
    table = table.drop(
        columns=[c for c in table.columns if c.startswith("ei_ratio_roi_") and c not in keep]
    )
    table["ei_ratio_mean"] = table[region_columns(10)].mean(axis=1)
    table.to_csv(folder / "cohort_ei.csv", index=False)
    regions_frame(NAMES10).to_csv(folder / "cohort_ei.regions.csv", index=False)
    table.head(5).to_csv(folder / "people.csv", index=False)
    regions_frame(NAMES10).to_csv(folder / "people.regions.csv", index=False)
    chart = folder / "chart"
    fit = ["charts", "fit", "--table", str(folder / "cohort_ei.csv"), "--out", str(chart)]
    assert main([*fit, "--family", "NO", "--mu-df", "3", "--sigma-df", "3"]) == 0
    scores = folder / "scores.csv"
    score = ["charts", "score", "--chart", str(chart), "--table", str(folder / "people.csv")]
    assert main([*score, "--out", str(scores)]) == 0
    return {"folder": folder, "chart": chart, "scores": scores, "subject": str(table["subject_id"][0])}


def _top_regions(scores: Path, subject: str, k: int = 5) -> list[int]:
    """Indices of the subject's k largest abs(z), read from the score table itself."""
    row = pd.read_csv(scores, dtype={"subject_id": str}).set_index("subject_id").loc[subject]
    z = np.array([row[f"ei_ratio_roi_{j}_z"] for j in range(10)], dtype=float)
    return list(np.argsort(-np.abs(z), kind="stable")[:k])


def _report(atlas10: dict, out: Path) -> str:
    argv = ["charts", "report", "--chart", str(atlas10["chart"]), "--scores", str(atlas10["scores"])]
    assert main([*argv, "--subject", atlas10["subject"], "--out", str(out)]) == 0
    return (out / "report.md").read_text()


def _deviant_rows(text: str) -> list[str]:
    part = text.split("most deviant regions", 1)[1].split("## Figures", 1)[0]
    return [line.split("|")[2].strip() for line in part.splitlines() if line.startswith("| ") and
            line.split("|")[1].strip().isdigit()]  # fmt: skip


def test_score_copies_the_regions_sidecar_and_report_names_regions_by_it(atlas10) -> None:
    sidecar = atlas10["folder"] / "scores.regions.csv"
    assert list(pd.read_csv(sidecar)["region"]) == NAMES10
    text = _report(atlas10, atlas10["folder"] / "report")
    expected = [NAMES10[k] for k in _top_regions(atlas10["scores"], atlas10["subject"])]
    assert _deviant_rows(text) == expected
    assert not any(name in text for name in DK68_REGIONS)  # no DK68 name anywhere
    assert "10 regions, not DK68" in text and "brain_map_z.png" not in text
    assert not (atlas10["folder"] / "report" / "brain_map_z.png").exists()
    assert (atlas10["folder"] / "report" / "fan_chart.png").exists()


def test_report_without_the_sidecar_names_regions_from_the_chart(atlas10, tmp_path: Path) -> None:
    scores = tmp_path / "scores.csv"  # the scores alone: the chart recorded its table's names
    scores.write_bytes(atlas10["scores"].read_bytes())
    text = _report({**atlas10, "scores": scores}, tmp_path / "report")
    expected = [NAMES10[k] for k in _top_regions(scores, atlas10["subject"])]
    assert _deviant_rows(text) == expected
    assert not any(name in text for name in DK68_REGIONS)
    assert "of 68" not in text


def test_brainmap_of_another_atlas_is_refused(atlas10, capsys) -> None:
    out = atlas10["folder"] / "map.png"
    argv = ["charts", "brainmap", "--scores", str(atlas10["scores"]), "--subject", atlas10["subject"]]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "10 regions, not DK68" in err and "no centroids" in err and "coords=" in err
    assert not out.exists()


def test_plot_brain_map_of_another_atlas_without_coords_says_how(tmp_path: Path) -> None:
    from delssome_norms.plotting import plot_brain_map

    with pytest.raises(InvalidInputError, match=r"got 10; values of another atlas need .*coords="):
        plot_brain_map(np.arange(10.0))


def test_charts_fit_without_a_site_column_names_an_option_that_exists(atlas10, capsys) -> None:
    from delssome_norms.cli.main import build_parser

    table = pd.read_csv(atlas10["folder"] / "cohort_ei.csv")
    path = atlas10["folder"] / "nosite.csv"
    table.drop(columns=["site", "scanner", "site_scanner"]).to_csv(path, index=False)
    argv = ["charts", "fit", "--table", str(path), "--out", str(atlas10["folder"] / "c2")]
    assert main([*argv, "--family", "NO"]) == 2
    err = capsys.readouterr().err
    assert "--site-column" in err and "without site terms" not in err
    # every option the message names exists on charts fit
    helps = build_parser().parse_args(["charts", "fit", "--table", "t", "--out", "o"])
    named = {w.strip("(),;") for w in err.split() if w.startswith("--")}
    assert named <= {f"--{k.replace('_', '-')}" for k in vars(helps)} | {"--no-mu-sex"}
