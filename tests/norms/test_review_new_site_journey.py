"""A clinician's new site: adapt the shipped chart with 25 controls, score 6 patients, report, plot.

The site's E/I is built from the reference chart itself: each person's value is the population
quantile at a chosen z, plus a site offset of +0.4 E/I (identity link, so an offset of mu). The
controls take the 25 normal quantiles Phi^-1((i - 0.5) / 25) (mean 0, sd 0.96) in every target,
so the adapted site must give them back z of mean 0, sd ~1, and the patients their built-in z.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from delssome_norms.cli.main import main
from delssome_norms.io import file_sha256
from delssome_norms.norms import load_reference_chart
from delssome_norms.norms.reference import reference_chart_path

OFFSET = 0.4  # E/I units, every target
PATIENT_Z = np.array([3.0, 3.0, -3.0, 2.0, 0.0, 3.0])
SITE = "NewSite_Prisma"


def _people(chart, ages, sexes, z, prefix: str) -> pd.DataFrame:
    """People of the new site whose every target lies at ``z`` (per person) on the population
    chart, shifted by :data:`OFFSET`."""
    params = chart.predict_parameters(ages, sexes)
    theta = [params[p] for p in chart.family_.params]
    y = chart.family_.ppf(np.broadcast_to(norm.cdf(z)[:, None], theta[0].shape), *theta) + OFFSET
    table = pd.DataFrame(
        {
            "subject_id": [f"{prefix}-{i:02d}" for i in range(len(ages))],
            "age_in_years": ages,
            "sex": sexes,
            "site_scanner": SITE,
        }
    )
    return pd.concat([table, pd.DataFrame(y, columns=chart.targets_)], axis=1)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """controls.csv (25, one of them aged 2: outside the chart), patients.csv (6), the chart."""
    chart = load_reference_chart()
    rng = np.random.default_rng(3)
    folder = tmp_path_factory.mktemp("new_site")
    z = rng.permutation(norm.ppf((np.arange(25) + 0.5) / 25))
    ages = np.round(rng.uniform(20, 70, 25), 1)
    sexes = np.where(np.arange(25) % 2 == 0, "female", "male")
    controls = _people(chart, ages, sexes, z, "ctl")
    young = _people(chart, np.array([20.0]), np.array(["male"]), np.array([0.0]), "young")
    young["age_in_years"] = 2.0  # below the chart's 4-99 years
    pd.concat([controls, young], ignore_index=True).to_csv(folder / "controls.csv", index=False)
    pages = np.array([25.0, 40.0, 55.0, 33.0, 61.0, 47.0])
    psex = np.array(["female", "male", "female", "male", "female", "male"])
    _people(chart, pages, psex, PATIENT_Z, "pat").to_csv(folder / "patients.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def adapted(site):
    out = site / "chart_new_site"
    args = ["charts", "adapt", "--chart", "reference", "--controls", str(site / "controls.csv")]
    with pytest.warns(UserWarning):  # the 2-year-old is left out; fewer than 30 controls
        assert main([*args, "--out", str(out)]) == 0
    return out


def _score(chart: str, table, out) -> pd.DataFrame:
    assert main(["charts", "score", "--chart", chart, "--table", str(table), "--out", str(out)]) == 0
    return pd.read_csv(out, keep_default_na=False)


def test_the_new_sites_patients_recover_their_built_in_z(site, adapted, tmp_path) -> None:
    z_cols = [f"{t}_z" for t in load_reference_chart().targets_]
    patients = _score(str(adapted), site / "patients.csv", tmp_path / "p.csv")
    assert (patients["flag"] == "few_site_controls").all()  # adapted from 25 < 30 controls
    np.testing.assert_allclose(patients[z_cols].to_numpy(), PATIENT_Z[:, None] * np.ones(69), atol=0.15)
    controls = site / "controls.csv"
    ctl = pd.read_csv(controls).iloc[:25]
    ctl.to_csv(tmp_path / "ctl.csv", index=False)
    zc = _score(str(adapted), tmp_path / "ctl.csv", tmp_path / "c.csv")[z_cols].to_numpy()
    assert abs(zc.mean()) < 0.05 and 0.9 < zc.std() < 1.1
    # the same people scored again: identical files
    _score(str(adapted), site / "patients.csv", tmp_path / "p2.csv")
    assert (tmp_path / "p.csv").read_bytes() == (tmp_path / "p2.csv").read_bytes()


def test_the_adapted_chart_says_which_chart_and_which_controls(site, adapted) -> None:
    meta = json.loads((adapted / "chart.json").read_text())
    assert meta["format_version"] == 1 and meta["provenance"]["synthetic"] is True
    (record,) = meta["adaptations"]
    ref = json.loads((reference_chart_path() / "chart.json").read_text())
    assert record["adapted_from"]["arrays_sha256"] == ref["arrays_sha256"]
    assert record["adapted_from"]["synthetic"] is True
    assert record["controls"] == str(site / "controls.csv")
    assert record["controls_sha256"] == file_sha256(site / "controls.csv")
    used = record["sites"][SITE]
    assert used["subject_ids"] == [f"ctl-{i:02d}" for i in range(25)]  # not the 2-year-old
    assert (used["n_controls"], used["n_female"], used["n_male"]) == (25, 13, 12)
    ages = pd.read_csv(site / "controls.csv").age_in_years.iloc[:25]
    assert used["age_range"] == [ages.min(), ages.max()]


def test_a_report_needs_the_chart_that_scored_the_site(site, adapted, tmp_path, capsys) -> None:
    """The adapted chart and its parent share the population curves, so the harmonised-value
    check alone let a report of scores made on the new site's curves name the shipped chart
    (and say the site is not in it), and the reverse."""
    on_site = tmp_path / "on_site.csv"
    _score(str(adapted), site / "patients.csv", on_site)
    unseen = tmp_path / "unseen.csv"
    with pytest.warns(UserWarning, match="unseen_site"):
        _score("reference", site / "patients.csv", unseen)
    capsys.readouterr()
    report = ["charts", "report", "--subject", "pat-00", "--out", str(tmp_path / "r")]
    assert main([*report, "--chart", "reference", "--scores", str(on_site)]) == 2
    err = capsys.readouterr().err
    assert f"{on_site} (--scores): the scores of pat-00 (site {SITE}) were made on that site's" in err
    with pytest.warns(UserWarning, match="unseen_site"):
        assert main([*report, "--chart", str(adapted), "--scores", str(unseen)]) == 2
    assert "did not know the site (flag unseen_site), but this chart knows it" in capsys.readouterr().err
    plot = ["charts", "plot", "--subject", "pat-00", "--out", str(tmp_path / "p.png")]
    assert main([*plot, "--chart", "reference", "--scores", str(on_site)]) == 2
    assert not (tmp_path / "p.png").exists() and not (tmp_path / "r").exists()
    # the right pairs work, and the report says the adapted chart rests on synthetic data
    assert main([*report, "--chart", str(adapted), "--scores", str(on_site)]) == 0
    text = (tmp_path / "r" / "report.md").read_text()
    assert "| mean E/I z | +3." in text and f"| site | {SITE} |" in text
    assert f"against the chart `{adapted}`, derived from: SYNTHETIC reference chart" in text
    assert main([*plot, "--chart", str(adapted), "--scores", str(on_site)]) == 0
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_ages_with_a_decimal_comma_are_named(site, tmp_path, capsys) -> None:
    table = pd.read_csv(site / "patients.csv")
    table["age_in_years"] = table["age_in_years"].map(lambda a: f"{a:.1f}".replace(".", ","))
    table.to_csv(tmp_path / "comma.csv", index=False)
    args = ["charts", "score", "--chart", "reference", "--table", str(tmp_path / "comma.csv")]
    assert main([*args, "--out", str(tmp_path / "s.csv")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "column age_in_years" in line and "'25,0' is written with a decimal comma" in line


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda t: t.drop(columns=["ei_ratio_roi_5"]), "the table lacks ei_ratio_roi_5"),
        (
            lambda t: t.assign(ei_ratio_roi_68=t["ei_ratio_roi_0"]),
            "the table has ei_ratio_roi_68 beyond the chart's regions",
        ),
    ],
)
def test_a_missing_or_added_region_column_is_named(site, tmp_path, capsys, change, named) -> None:
    """Named, and never told to try --allow-pipeline-mismatch, which refuses it all the same."""
    change(pd.read_csv(site / "controls.csv").iloc[:25]).to_csv(tmp_path / "c.csv", index=False)
    args = ["charts", "adapt", "--chart", "reference", "--controls", str(tmp_path / "c.csv")]
    assert main([*args, "--out", str(tmp_path / "chart")]) == 2
    err = capsys.readouterr().err
    assert named in err and "to use the table anyway" not in err and "to score anyway" not in err
    assert main([*args, "--out", str(tmp_path / "chart"), "--allow-pipeline-mismatch"]) == 2
    assert named in capsys.readouterr().err
