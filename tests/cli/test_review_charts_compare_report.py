"""Review of ``charts compare``, ``report``, ``plot`` and ``brainmap`` as a user runs them: on a
small chart fitted on a few targets, and on the shipped reference chart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS, load_reference_table
from delssome_norms.norms import GrowthChart
from delssome_norms.plotting.charts import plot_chart_centiles
from delssome_norms.plotting.person import centile_text

TARGETS = ["ei_ratio_mean", "ei_ratio_roi_0", "ei_ratio_roi_1"]


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict:
    """A chart of 3 targets fitted on 300 reference people, and 10 others scored with it."""
    folder = tmp_path_factory.mktemp("review_charts")
    table = load_reference_table()
    train = table.sample(300, random_state=0)
    people = table.drop(train.index).sample(10, random_state=1)
    paths = {name: folder / f"{name}.csv" for name in ("train", "people", "scores")}
    train.to_csv(paths["train"], index=False)
    people.to_csv(paths["people"], index=False)
    chart = folder / "chart"
    argv = ["charts", "fit", "--table", str(paths["train"]), "--out", str(chart)]
    assert main([*argv, "--targets", ",".join(TARGETS), "--centile-tables", "none"]) == 0
    argv = ["charts", "score", "--chart", str(chart), "--table", str(paths["people"])]
    assert main([*argv, "--out", str(paths["scores"])]) == 0
    scores = pd.read_csv(paths["scores"], dtype={"subject_id": str})
    return {"folder": folder, "chart": chart, "scores_table": scores, **paths}


def _one_error(capsys, text: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("delssome-norms: error: ") and err.count("\n") == 1, err
    assert text in err, err
    return err


def test_report_and_brainmap_of_a_chart_with_a_few_regions(small, capsys) -> None:
    """A chart fitted on some regions only was refused ("lacks 66 of the 68 regional
    columns"); the report and the brain map now draw the regions it has and say so."""
    row = small["scores_table"].iloc[0]
    subject = row["subject_id"]
    out = small["folder"] / "report"
    argv = ["charts", "report", "--chart", str(small["chart"]), "--scores", str(small["scores"])]
    assert main([*argv, "--subject", subject, "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    # the numbers are the score table's
    assert f"| mean E/I (harmonised) | {row['ei_ratio_mean_harmonised']:.4f} |" in text
    c = row["ei_ratio_mean_centile"]
    assert f"| mean E/I centile | {centile_text(c)} ({100 * c:.1f} %) |" in text
    assert f"| mean E/I z | {row['ei_ratio_mean_z']:+.2f} |" in text
    assert "| regions not in the scores | 66 of 68 (the chart has no target for them) |" in text
    assert "regions without a score" not in text  # the 66 are not missing values
    z = [row["ei_ratio_roi_0_z"], row["ei_ratio_roi_1_z"]]
    first = int(np.argmax(np.abs(z)))
    assert f"| 1 | {DK68_REGIONS[first]} | {z[first]:+.2f} |" in text
    assert "## The 2 most deviant regions" in text
    assert f"abs(z) > 1.96 | {int((np.abs(z) > 1.96).sum())} of 2 |" in text
    png = small["folder"] / "brain.png"
    argv = ["charts", "brainmap", "--scores", str(small["scores"]), "--subject", subject]
    assert main([*argv, "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_brainmap_of_a_table_without_age_or_sex_is_drawn(small, capsys) -> None:
    """A score table without age or sex stopped with an unexpected KeyError (exit 1)."""
    cut = small["folder"] / "no_age_sex.csv"
    small["scores_table"].drop(columns=["age_in_years", "sex"]).to_csv(cut, index=False)
    png = small["folder"] / "cut.png"
    subject = small["scores_table"]["subject_id"].iloc[0]
    assert (
        main(["charts", "brainmap", "--scores", str(cut), "--subject", subject, "--out", str(png)]) == 0
    )
    assert "unexpected" not in capsys.readouterr().err
    assert png.exists()


def test_person_errors_name_the_option_and_the_chart(small, capsys) -> None:
    scores = str(small["scores"])
    subject = small["scores_table"]["subject_id"].iloc[0]
    out = small["folder"] / "bad.png"
    base = ["charts", "plot", "--chart", str(small["chart"]), "--out", str(out)]
    assert main([*base, "--scores", scores, "--subject", "nobody"]) == 2
    _one_error(capsys, f"{scores} (--scores): has no subject_id 'nobody'")
    assert main([*base, "--table", str(small["people"]), "--target", "ei_ratio_roi_5"]) == 2
    _one_error(capsys, "--target: the chart has no target 'ei_ratio_roi_5'")
    # scores of the small chart on the reference chart: refused, naming --chart
    argv = ["charts", "report", "--chart", "reference", "--scores", scores, "--subject", subject]
    assert main([*argv, "--out", str(small["folder"] / "bad_report")]) == 2
    _one_error(capsys, "were not made with this chart")
    assert not out.exists() and not (small["folder"] / "bad_report").exists()
    # a long score table (one row per target) is named as such
    long = small["folder"] / "long.csv"
    argv = ["charts", "score", "--chart", str(small["chart"]), "--table", str(small["people"])]
    assert main([*argv, "--out", str(long), "--layout", "long"]) == 0
    capsys.readouterr()
    argv = ["charts", "brainmap", "--scores", str(long), "--subject", subject, "--out", str(out)]
    assert main(argv) == 2
    _one_error(capsys, "(--scores): has 3 rows with subject_id")
    assert not out.exists()


def test_fan_chart_legend_sits_outside_the_data(small) -> None:
    """The legend was drawn inside the male panel ("best") on top of people's points."""
    chart = GrowthChart.load(small["chart"])
    data = pd.read_csv(small["train"])
    person = {"subject_id": "sub-01", "sex": "female", "age_in_years": 30.0, "value": 3.2,
              "centile": 0.6}  # fmt: skip
    fig = plot_chart_centiles(chart, "ei_ratio_roi_0", data, person=person)
    fig.draw_without_rendering()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1
    box = legends[0].get_window_extent()
    for ax in fig.axes:
        panel = ax.get_window_extent()
        assert box.y1 <= panel.y0 or not panel.overlaps(box)
    labels = [t.get_text() for t in legends[0].get_texts()]
    assert "harmonised values" in labels and "sub-01 (female panel)" in labels


def test_compare_statistics_and_options(small, capsys) -> None:
    out = small["folder"] / "bic.csv"
    argv = ["charts", "compare", "--table", str(small["train"]), "--out", str(out)]
    argv += ["--targets", "ei_ratio_mean"]
    # a listed model fitted once, not once per repetition
    assert main([*argv, "--families", "NO,NO,SHASHo2", "--mu-dfs", "3,3"]) == 0
    result = pd.read_csv(out)
    assert sorted(result["family"]) == ["NO", "SHASHo2"]
    n = result["n_obs"].to_numpy()
    assert np.all(n == 300)
    np.testing.assert_allclose(
        result["bic"], -2 * result["loglik"] + np.log(n) * result["edf"], rtol=1e-10
    )
    np.testing.assert_allclose(result["aic"], -2 * result["loglik"] + 2 * result["edf"], rtol=1e-10)
    best = result.loc[result["reliable"], "bic"].min()
    np.testing.assert_allclose(result["delta_bic"], result["bic"] - best)
    assert result.loc[result["best"], "bic"].item() == best
    # the NO log-likelihood, independently: the normal density at the fitted mu and sigma
    train = pd.read_csv(small["train"])
    chart = GrowthChart("NO", mu_df=3).fit(train, targets=["ei_ratio_mean"])
    p = chart.predict_parameters(
        train["age_in_years"], train["sex"], site=train["site_scanner"], targets=["ei_ratio_mean"]
    )
    ll = norm.logpdf(train["ei_ratio_mean"], p["mu"][:, 0], p["sigma"][:, 0]).sum()
    row = result[result["family"] == "NO"].iloc[0]
    assert row["loglik"] == pytest.approx(ll, abs=1e-3)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--families", "NO,FOO", "--families: family must be one of"),
        ("--mu-dfs", "3,0", "--mu-dfs: mu_df must be an integer from 3 to 30"),
        ("--sigma-df", "99", "--sigma-df: sigma_df must be an integer from 3 to 30"),
    ],
)
def test_compare_bad_model_options_name_the_option_before_any_fit(
    small, capsys, option, value, message
) -> None:
    out = small["folder"] / "never.csv"
    argv = ["charts", "compare", "--table", str(small["train"]), "--out", str(out), option, value]
    assert main(argv) == 2
    _one_error(capsys, message)
    assert not Path(out).exists()


def test_compare_help_says_it_compares_models_and_how_to_read_delta_bic(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["charts", "compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Compare chart models (not people)" in text
    assert "bic = -2 loglik + log(n_obs) edf" in text
    assert "0 marks the best" in text


@pytest.mark.parametrize(
    ("option", "value"), [("--mu-df", "0"), ("--sigma-df", "50"), ("--max-iter", "0")]
)
def test_fit_bad_model_options_name_the_option(small, capsys, option, value) -> None:
    """They were attributed to "GrowthChart", an API name the command line does not show."""
    out = small["folder"] / "never_chart"
    argv = ["charts", "fit", "--table", str(small["train"]), "--out", str(out), option, value]
    assert main(argv) == 2
    _one_error(capsys, f"{option}: ")
    assert not out.exists()
