"""Growth-chart follow-ups: regions matched by name, ``--random-sites``, one-sex fan charts."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.provenance import SIDECAR_KIND
from delssome_norms.io.regions import regions_sha256
from delssome_norms.norms import GrowthChart

R = 6
NAMES = [f"own_{c}" for c in "ABCDEF"]
PERM = np.array([4, 0, 5, 2, 1, 3])  # column j of the permuted table holds region PERM[j]


def _cohort(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """People of an own 6-region atlas; region k has level 1 + 0.1 k and its own age slope."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(10, 80, n)
    cols = {
        "subject_id": [f"p{i}" for i in range(n)],
        "age_in_years": age,
        "sex": rng.choice(["female", "male"], n),
        "site_scanner": rng.choice(["s1", "s2", "s3"], n),
    }
    for k in range(R):
        cols[f"ei_ratio_roi_{k}"] = 1 + 0.1 * k + 0.004 * (k - 2.5) * (age - 45) + rng.normal(0, 0.03, n)
    return pd.DataFrame(cols)


def _provenance(names: list[str]) -> dict:
    digest = regions_sha256(names)
    return {
        "kind": SIDECAR_KIND,
        "atlas": {"name": f"custom-{R}", "n_regions": R, "regions": names, "regions_sha256": digest},
        "pipeline": {"atlas": f"custom-{R}", "n_regions": R, "regions_sha256": digest, "mode": "euler"},
    }


def _permuted(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    for j in range(R):
        out[f"ei_ratio_roi_{j}"] = table[f"ei_ratio_roi_{PERM[j]}"].to_numpy()
    return out


@pytest.fixture(scope="module")
def chart() -> GrowthChart:
    return GrowthChart("NO").fit(_cohort(), provenance=_provenance(NAMES))


def test_score_matches_permuted_regions_by_name(chart):
    people = _cohort(30, seed=1)
    expected = chart.score(people, provenance=_provenance(NAMES))
    with pytest.warns(InputWarning, match="another order than the chart"):
        got = chart.score(_permuted(people), provenance=_provenance([NAMES[p] for p in PERM]))
    for k in range(R):  # region k keeps its own chart's scores, under the chart's column name
        np.testing.assert_allclose(got[f"ei_ratio_roi_{k}_z"], expected[f"ei_ratio_roi_{k}_z"])
    # controls of a new site listing the regions otherwise: the same offsets as in chart order
    controls = _cohort(40, seed=2).assign(site_scanner="new")
    a = chart.adapt(controls, provenance=_provenance(NAMES))
    with pytest.warns(InputWarning, match="matched to the chart's regions by name"):
        b = chart.adapt(_permuted(controls), regions=[NAMES[p] for p in PERM])
    for p in a.site_effects_:
        np.testing.assert_allclose(b.site_effects_[p], a.site_effects_[p], atol=1e-10)


def test_other_regions_refused_even_when_mismatch_allowed(chart):
    people = _cohort(10, seed=3)
    other = [*NAMES[:-1], "own_Z"]
    for allow in (False, True):
        with pytest.raises(InvalidInputError, match=r"own_Z \(ei_ratio_roi_5\) is not among"):
            chart.score(people, provenance=_provenance(other), allow_pipeline_mismatch=allow)


def test_cli_score_by_regions_sidecar(tmp_path, capsys):
    train, people = _cohort(), _cohort(20, seed=4)
    train.to_csv(tmp_path / "train.csv", index=False)
    frame = pd.DataFrame({"column": [f"ei_ratio_roi_{k}" for k in range(R)], "region": NAMES})
    frame.to_csv(tmp_path / "train.regions.csv", index=False)
    people.to_csv(tmp_path / "same.csv", index=False)
    _permuted(people).to_csv(tmp_path / "perm.csv", index=False)
    frame.assign(region=[NAMES[p] for p in PERM]).to_csv(tmp_path / "perm.regions.csv", index=False)
    chart_dir = tmp_path / "chart"
    fit = ["charts", "fit", "--table", str(tmp_path / "train.csv"), "--out", str(chart_dir)]
    assert main([*fit, "--family", "NO", "--random-sites", "mu"]) == 0
    loaded = GrowthChart.load(chart_dir)
    assert list(loaded.random_sites) == ["mu"] and set(loaded.site_effects_) == {"mu"}
    assert loaded.provenance_["atlas"]["regions"] == NAMES
    for stem in ("same", "perm"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = main(
                ["charts", "score", "--chart", str(chart_dir), "--table", str(tmp_path / f"{stem}.csv"),
                 "--out", str(tmp_path / f"{stem}_scores.csv")]
            )  # fmt: skip
        assert code == 0
    same, perm = (pd.read_csv(tmp_path / f"{s}_scores.csv") for s in ("same", "perm"))
    cols = [c for c in same.columns if c.endswith("_z")]
    np.testing.assert_allclose(perm[cols], same[cols])
    # the scores' regions sidecar names the scores' columns: the chart's order
    assert pd.read_csv(tmp_path / "perm_scores.regions.csv")["region"].tolist() == NAMES
    # `charts plot --table` marks the person's own value of the region drawn
    marks = []
    for stem in ("same", "perm"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            argv = ["charts", "plot", "--chart", str(chart_dir), "--out", str(tmp_path / f"{stem}.png"),
                    "--table", str(tmp_path / f"{stem}.csv"), "--target", "ei_ratio_roi_1",
                    "--subject", "p0", "--points", "raw"]  # fmt: skip
            assert main(argv) == 0
        marks.append(capsys.readouterr().out.splitlines()[-2])
    assert "marked p0" in marks[0] and marks[1] == marks[0]


def test_random_sites_none_and_bad_values(tmp_path, capsys):
    _cohort(120).to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "c"
    fit = ["charts", "fit", "--table", str(tmp_path / "t.csv"), "--out", str(out), "--family", "NO"]
    assert main([*fit, "--targets", "ei_ratio_roi_0", "--random-sites", "none"]) == 0
    meta = json.loads((out / "chart.json").read_text())
    assert meta["options"]["random_sites"] == [] and GrowthChart.load(out).site_effects_ == {}
    assert main(["charts", "fit", "--table", str(tmp_path / "t.csv"), "--out", str(out),
                 "--random-sites", "mu,foo"]) == 2  # fmt: skip
    assert "--random-sites: unknown parameter(s) foo" in capsys.readouterr().err


def test_nonconvergence_names_random_sites_option():
    """An ageing cohort (60-95 years, 200 people, 7 sites of 16-43): sigma's site random effect
    keeps three regions' fits from converging; without it they converge."""
    from delssome_norms.datasets import load_reference_table

    old = load_reference_table().query("age_in_years >= 60")
    rng = np.random.default_rng(2)
    sizes = [16, 22, 25, 30, 31, 33, 43]
    groups = zip(old.groupby("site_scanner"), sizes)
    sub = pd.concat([g.iloc[rng.choice(len(g), n, replace=False)] for (_, g), n in groups])
    targets = ["ei_ratio_roi_15", "ei_ratio_roi_54", "ei_ratio_roi_64"]
    with pytest.warns(match=r"random_sites=\['mu'\] \(charts fit --random-sites mu\)"):
        default = GrowthChart().fit(sub, targets=targets)
    assert not default.converged_.any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mu_only = GrowthChart(random_sites=["mu"]).fit(sub, targets=targets)
    assert mu_only.converged_.all() and mu_only.reliable_.all()


def test_plot_draws_only_the_fitted_sex():
    from delssome_norms.plotting.charts import plot_chart_centiles

    women = _cohort(150).assign(sex="female")
    one = GrowthChart("NO", mu_sex=False, sigma_sex=False).fit(women, targets=["ei_ratio_roi_0"])
    fig = plot_chart_centiles(one, "ei_ratio_roi_0")
    assert [ax.get_title().rsplit(" - ", 1)[1] for ax in fig.axes] == ["female"]
    with pytest.raises(InvalidInputError, match="fitted on female people only"):
        plot_chart_centiles(one, "ei_ratio_roi_0", sexes=("female", "M"))
