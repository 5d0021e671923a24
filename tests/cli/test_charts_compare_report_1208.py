"""``charts compare`` offers the model options of ``charts fit`` (one sex, the site model), and
``charts report``/``plot`` refuse scores that the scores' provenance says another chart made."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

from delssome_norms.cli.main import main


def _run(argv: list[str], capsys) -> tuple[int, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(argv)
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def reference_rows() -> pd.DataFrame:
    from delssome_norms.datasets import load_reference_table

    return load_reference_table().sample(n=900, random_state=3)


def test_compare_fits_the_one_sex_design_that_fit_fits(tmp_path: Path, capsys, reference_rows) -> None:
    table = tmp_path / "women.csv"
    reference_rows[reference_rows["sex"] == "female"].to_csv(table, index=False)
    base = ["charts", "compare", "--table", str(table), "--targets", "ei_ratio_mean"]
    base += ["--families", "NO", "--mu-dfs", "3"]
    code, err = _run([*base, "--out", str(tmp_path / "a.csv")], capsys)
    assert code == 2 and "only one sex" in err and "--no-mu-sex" in err
    code, err = _run(
        [
            *base,
            "--out",
            str(tmp_path / "b.csv"),
            "--no-mu-sex",
            "--no-sigma-sex",
            "--random-sites",
            "mu",
        ],
        capsys,
    )
    assert code == 0, err
    bic = pd.read_csv(tmp_path / "b.csv")
    # the same model charts fit fits with the same options: its log-likelihood
    code, err = _run(
        [
            "charts", "fit", "--table", str(table), "--out", str(tmp_path / "chart"),
            "--targets", "ei_ratio_mean", "--family", "NO", "--mu-df", "3",
            "--no-mu-sex", "--no-sigma-sex", "--random-sites", "mu",
        ],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    from delssome_norms.norms import GrowthChart

    chart = GrowthChart.load(tmp_path / "chart")
    assert list(chart.get_params()["random_sites"]) == ["mu"]
    assert bic["loglik"].iloc[0] == pytest.approx(float(chart.loglik_[0]), rel=1e-9)
    assert "+ random(site_scanner)" in bic["formula_mu"].iloc[0]
    code, err = _run([*base, "--out", str(tmp_path / "c.csv"), "--random-sites", "kappa"], capsys)
    assert code == 2 and "--random-sites" in err


def test_report_refuses_scores_made_with_another_similar_chart(
    tmp_path: Path, capsys, reference_rows
) -> None:
    people = tmp_path / "people.csv"
    reference_rows.head(3).to_csv(people, index=False)
    scores = tmp_path / "scores.csv"
    code, err = _run(
        ["charts", "score", "--chart", "reference", "--table", str(people), "--out", str(scores)], capsys
    )
    assert code == 0, err
    from delssome_norms.datasets import load_reference_table

    full = tmp_path / "ref.csv"
    load_reference_table().to_csv(full, index=False)  # the shipped chart's own training table
    mine = tmp_path / "mine"
    code, err = _run(
        ["charts", "fit", "--table", str(full), "--out", str(mine), "--targets", "ei_ratio_mean"], capsys
    )
    assert code == 0, err
    subject = str(reference_rows["subject_id"].iloc[0])
    argv = ["charts", "report", "--scores", str(scores), "--subject", subject]
    code, err = _run([*argv, "--chart", str(mine), "--out", str(tmp_path / "r1")], capsys)
    assert code == 2
    assert "says the chart reference scored them" in err and "content_sha256" in err
    assert not (tmp_path / "r1" / "report.md").exists()
    code, err = _run(
        ["charts", "plot", "--chart", str(mine), "--scores", str(scores), "--subject", subject,
         "--out", str(tmp_path / "fan.png")],
        capsys,
    )  # fmt: skip
    assert code == 2 and "says the chart reference scored them" in err
    code, err = _run([*argv, "--chart", "reference", "--out", str(tmp_path / "r2")], capsys)
    assert code == 0, err
    assert "reference chart" in (tmp_path / "r2" / "report.md").read_text(encoding="utf-8")
    # scores without their provenance sidecar fall back to the centile check alone
    meta = json.loads(scores.with_suffix(".provenance.json").read_text(encoding="utf-8"))
    assert meta["chart"]["chart"] == "reference"
    scores.with_suffix(".provenance.json").unlink()
    code, err = _run([*argv, "--chart", str(mine), "--out", str(tmp_path / "r3")], capsys)
    assert "says the chart reference scored them" not in err
