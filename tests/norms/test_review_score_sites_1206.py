"""Review 12-06: scoring a table collected without sites, and a fit's flag reasons in the scores.

A cohort table whose demographics had no site is scored on the population-average curves; the
warning must say that the table has no site column and that a site column (then ``charts
adapt``) is the way out, and ``charts adapt`` must not point to a ``--site-column`` option it does
not have. The scores keep the fit's ``fit_flag_reasons`` beside ``flag`` in both layouts, so that
``fc_outside_model_range`` (E/I not interpretable) stays apart from ``gate_rejected_most``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.norms import load_reference_chart

NO_SITE = "no site_scanner column, nor site [+ scanner] to build it from"
REASONS = ["cost_above_floor;gate_rejected_most", "", "gate_rejected_most;fc_outside_model_range"]


@pytest.fixture(scope="module")
def chart():
    return load_reference_chart()


def _table(site: list[str] | None = None) -> pd.DataFrame:
    """Three people as ``collect`` writes them from demographics without a site column."""
    table = pd.DataFrame(
        {
            "subject_id": ["sub-01", "sub-02", "sub-03"],
            "age_in_years": [25.0, 31.5, 44.2],
            "sex": ["female", "male", "female"],
            "ei_ratio_mean": [2.81, 3.07, 3.25],
            "fit_flagged": [True, False, True],
            "fit_flag_reasons": REASONS,
        }
    )
    if site is not None:
        table.insert(3, "site", site)
    return table


def _unseen_messages(record) -> list[str]:
    return [str(w.message) for w in record if "unseen_site" in str(w.message)]


def test_no_site_column_is_named_as_such_with_the_way_out(chart) -> None:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        scores = chart.score(_table(), targets=["ei_ratio_mean"], source="ei.csv")
    (msg,) = _unseen_messages(record)
    assert msg.startswith(f"ei.csv: the table has no site ({NO_SITE})")
    assert "its 3 people are scored on the population-average curves" in msg
    assert "add each person's site to the demographics" in msg and "collect again" in msg
    assert "charts adapt" in msg
    assert "from no" not in msg and "unknown to the chart" not in msg
    assert all(w.category is InputWarning for w in record if "unseen_site" in str(w.message))
    # every row is flagged and scored on the site-free curves: F(y | age, sex, no site)
    assert (scores["flag"].str.split(";").map(lambda f: "unseen_site" in f)).all()
    table = _table()
    theta = chart.predict_parameters(table["age_in_years"], table["sex"], targets=["ei_ratio_mean"])
    expected = chart.family_.cdf(
        table["ei_ratio_mean"].to_numpy(), *[theta[p][:, 0] for p in chart.family_.params]
    )
    np.testing.assert_allclose(scores["ei_ratio_mean_centile"], expected, rtol=1e-10)


def test_one_person_without_site_column_reads_in_the_singular(chart) -> None:
    with pytest.warns(InputWarning, match=r"its 1 person is scored on the population-average"):
        chart.score(_table().iloc[:1], targets=["ei_ratio_mean"])


def test_unknown_site_keeps_its_own_message(chart) -> None:
    """A site column with a site the chart lacks: named, with the adapt command."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        chart.score(_table(["MySite"] * 3), targets=["ei_ratio_mean"], source="ei.csv")
    (msg,) = _unseen_messages(record)
    assert "3 row(s) from site(s) MySite unknown to the chart" in msg
    assert "charts adapt --chart CHART --controls CONTROLS.csv" in msg
    assert "the table has no site" not in msg


def test_score_cli_without_site_column(tmp_path) -> None:
    path = tmp_path / "ei.csv"
    _table().to_csv(path, index=False)
    out = tmp_path / "s.csv"
    with pytest.warns(InputWarning) as record:
        code = main(["charts", "score", "--chart", "reference", "--table", str(path), "--out", str(out)])
    assert code == 0
    (msg,) = _unseen_messages(record)
    assert msg.startswith(f"{path}: the table has no site ({NO_SITE})")
    assert "its 3 people are scored" in msg and "from no site_scanner column" not in msg
    scores = pd.read_csv(out, keep_default_na=False)
    assert scores["flag"].str.startswith("unseen_site").all()
    assert scores["fit_flag_reasons"].tolist() == REASONS


def test_a_report_of_a_person_without_site_says_so(tmp_path) -> None:
    """The person's report says the table gives no site (it said "unknown is not in the chart"
    and sent the reader to ``charts adapt``, which needs a site)."""
    from delssome_norms.datasets import load_reference_table

    people = load_reference_table().head(3)
    people = people.drop(columns=[c for c in ("site", "scanner", "site_scanner") if c in people])
    path, out = tmp_path / "ei.csv", tmp_path / "s.csv"
    people.to_csv(path, index=False)
    with pytest.warns(InputWarning):
        assert (
            main(["charts", "score", "--chart", "reference", "--table", str(path), "--out", str(out)])
            == 0
        )
    report = tmp_path / "report"
    subject = str(people["subject_id"].iloc[0])
    argv = ["charts", "report", "--chart", "reference", "--scores", str(out), "--subject", subject]
    assert main([*argv, "--out", str(report)]) == 0
    text = (report / "report.md").read_text()
    assert "| site | not recorded |" in text and "unknown" not in text
    assert "(the scored table gives no site for this person)" in text
    assert "add a site column to the demographics and run `collect` again" in text


def test_adapt_without_site_column_says_what_to_add(chart) -> None:
    """``charts adapt`` has no --site-column option: the message must not send people to it."""
    controls = pd.concat([_table()] * 4, ignore_index=True)
    controls["subject_id"] = [f"c{i:02d}" for i in range(len(controls))]
    with pytest.raises(InvalidInputError) as err:
        chart.adapt(controls, source="controls.csv")
    msg = str(err.value)
    assert "controls.csv" in msg
    assert f"the controls have no site ({NO_SITE})" in msg
    assert "collect again" in msg
    assert "--site-column" not in msg


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_scores_keep_the_fit_flag_reasons(chart, layout) -> None:
    """Regression pin: ``poor_fit`` alone hides why; the reasons travel beside ``flag``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        table = _table(["SiteA_Siemens"] * 3)
        regions = {f"ei_ratio_roi_{j}": [2.8, 3.0, 3.2] for j in range(68)}
        table = pd.concat([table, pd.DataFrame(regions)], axis=1)
        scores = chart.score(table, targets=["ei_ratio_mean", "ei_ratio_roi_0"], layout=layout)
    per_person = 1 if layout == "wide" else 2
    assert len(scores) == 3 * per_person
    reasons = scores["fit_flag_reasons"].fillna("").tolist()
    assert reasons == [r for r in REASONS for _ in range(per_person)]
    poor = scores["flag"].str.split(";").map(lambda f: "poor_fit" in f).tolist()
    assert poor == [f for f in (True, False, True) for _ in range(per_person)]
    assert "unseen_site" not in ";".join(scores["flag"])  # a known site: its own offsets
    columns = list(scores.columns)
    assert columns.index("fit_flag_reasons") == columns.index("flag") - 1


def test_a_report_says_an_fc_outside_the_models_range_is_not_interpretable() -> None:
    """The person report reads ``fc_outside_model_range`` (FC after global signal regression)
    as a property of the data: the E/I is not interpretable, not merely 'may be wrong'."""
    from delssome_norms.cli.person_report import interval_lines

    row = pd.Series(
        {"fit_flagged": True, "fit_flag_reasons": "fc_outside_model_range;gate_rejected_most"}
    )
    text = "\n".join(interval_lines(row))
    assert "**E/I not interpretable** (fc_outside_model_range, gate_rejected_most)" in text
    assert "without global signal regression" in text and "may be wrong" not in text
    other = "\n".join(interval_lines(pd.Series({**row, "fit_flag_reasons": "cost_above_floor"})))
    assert "**flagged as poor** (cost_above_floor)" in other


def test_a_chart_refuses_several_sessions_of_one_reference_person_but_scores_each(chart) -> None:
    """``sub-000_ses-1`` and ``sub-000_ses-2`` are one person: a chart's reference (and a site's
    controls) count them once at most; scoring each session is fine."""
    from delssome_norms.datasets import load_reference_table
    from delssome_norms.norms import GrowthChart

    people = load_reference_table().head(400)
    two = pd.concat([people.head(40)] * 2, ignore_index=True)
    two["subject_id"] = [f"sub-{i % 40:03d}_ses-{1 + i // 40}" for i in range(80)]
    table = pd.concat([people.iloc[40:], two], ignore_index=True)
    with pytest.raises(InvalidInputError, match=r"sub-000 has 2 rows \(sub-000_ses-1, sub-000_ses-2\)"):
        GrowthChart().fit(table, targets=["ei_ratio_mean"])
    scores = chart.score(two, targets=["ei_ratio_mean"])
    assert len(scores) == 80
