"""Review of ``charts report`` for edge people: outside the chart's ages, at an unseen site."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.cli.person_report import check_drawable
from delssome_norms.datasets.reference import load_patients
from delssome_norms.errors import InvalidInputError


@pytest.fixture(scope="module")
def edge_scores(tmp_path_factory) -> Path:
    """patient-00001 as three people: as is, at an unseen site, and aged 99.9 (beyond 99)."""
    folder = tmp_path_factory.mktemp("edges")
    base = load_patients().iloc[[0]].drop(columns=["deviation", "deviation_group", "deviation_sd"])
    newsite = base.assign(subject_id="newsite", site="SiteNEW", site_scanner="SiteNEW_GE")
    old = base.assign(subject_id="old", age_in_years=99.9)
    table = folder / "people.csv"
    pd.concat([base, newsite, old]).to_csv(table, index=False)
    scores = folder / "scores.csv"
    with warnings.catch_warnings():  # the unseen site and the age are warned about when scored
        warnings.simplefilter("ignore")
        argv = ["charts", "score", "--chart", "reference", "--table", str(table)]
        assert main([*argv, "--out", str(scores)]) == 0
    return scores


def _report(scores: Path, subject: str, out: Path) -> int:
    argv = ["charts", "report", "--chart", "reference", "--scores", str(scores)]
    return main([*argv, "--subject", subject, "--out", str(out)])


def test_age_outside_the_chart_is_one_clear_error_without_a_figure_warning(
    edge_scores: Path, tmp_path: Path, capsys
) -> None:
    """It used to warn "the figure says so" and then stop with "has no ei_ratio_mean_centile
    value": no figure, and no word of the age or of --extrapolate."""
    out = tmp_path / "report_old"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the contradictory warning would raise here
        assert _report(edge_scores, "old", out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "old (age 99.9 years) lies outside the ages of the chart" in err
    assert "charts score --extrapolate" in err
    assert not out.exists()
    row = pd.read_csv(edge_scores).set_index("subject_id", drop=False).loc["old"]
    with pytest.raises(InvalidInputError, match="flag age_out_of_range"):
        check_drawable(row, "scores.csv")


def test_unseen_site_report_says_whose_chart_the_centiles_are_on(
    edge_scores: Path, tmp_path: Path
) -> None:
    """The report said "Centiles are on the person's own site's chart" for a site the chart has
    never seen (scored on the population average, flag unseen_site, never explained)."""
    out = tmp_path / "report_newsite"
    with pytest.warns(UserWarning, match="is flagged unseen_site"):
        assert _report(edge_scores, "newsite", out) == 0
    text = (out / "report.md").read_text()
    assert "own site's chart" not in text
    assert "without a site offset (SiteNEW_GE is not in the chart)" in text
    assert "0 is the chart median for their age and sex;" in text
    assert "| unseen_site | the person's site is not in the chart" in text
    assert "charts adapt" in text

    out = tmp_path / "report_seen"
    assert _report(edge_scores, "patient-00001", out) == 0
    text = (out / "report.md").read_text()
    assert "Centiles (0-100 %) are on the person's own site's chart" in text
    assert "median for their age, sex and site" in text
    assert "| flags | none |" in text
    # the count of |z| > 1.96 comes with what chance alone gives (5 % of 68 regions)
    assert "| expected by chance | about 3.4 (" in text
