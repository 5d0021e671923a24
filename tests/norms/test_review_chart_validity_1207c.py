"""Chart validity review (1207c): training sites of a handful of people with extreme offsets,
sites adapted from few controls, calibration hidden by pooling, and --nu-df/--tau-df.

Expectations are computed independently of the code under test: site tail checks from the
chart's own parameters with the normal distribution written out (z = (y - mu) / sigma; the
value 3 interquartile ranges beyond the quartiles is mu +- 4.7214 sigma), calibration errors
and group sizes by counting rows with numpy, and the z of a sex mixture from its formula.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special

from delssome_norms.cli.main import build_parser, main
from delssome_norms.errors import ConvergenceWarning, InputWarning, InvalidInputError
from delssome_norms.norms import GrowthChart, load_reference_chart
from delssome_norms.norms.calibration import calibration_summary, calibration_table

MEAN = "ei_ratio_mean"
SCALE = {"A": 0.6, "B": 1.6, "C": 0.8, "D": 1.3}  # the training sites' spreads differ
K_TAIL = special.ndtri(0.75) * (1 + 2 * 3.0)  # quartile + 3 IQR of a normal: 4.7214 sd


def cohort(seed: int, sizes: dict, flat: str | None = None, sd: float = 0.1, sex_shift=0.0):
    """Normal E/I with an age trend; site ``flat`` has near-constant values (sd / 10); females
    ``+sex_shift``, males ``-sex_shift``."""
    rng = np.random.default_rng(seed)
    parts = []
    for site, n in sizes.items():
        age = rng.uniform(10, 80, n)
        female = rng.random(n) < 0.5
        mu = 1.0 + 0.002 * age + np.where(female, sex_shift, -sex_shift)
        spread = sd * (0.1 if site == flat else SCALE.get(site, 1.0))
        parts.append(
            pd.DataFrame(
                {
                    "subject_id": [f"{site}-{seed}-{i}" for i in range(n)],
                    "age_in_years": age,
                    "sex": np.where(female, "female", "male"),
                    "site_scanner": site,
                    MEAN: mu + spread * rng.standard_normal(n),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def fit_recording(table, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chart = GrowthChart("NO", mu_df=3, sigma_df=None, **kw).fit(table)
    return chart, caught


def score_recording(chart, table, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = chart.score(table, **kw)
    return scores, caught


def messages(caught, category) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, category)]


@pytest.fixture(scope="module")
def wild():
    """A chart whose training site E has 6 people of near-constant values."""
    train = cohort(0, {"A": 60, "B": 60, "C": 60, "D": 60, "E": 6}, flat="E")
    return fit_recording(train)


def hand_site_tail_z(chart, site: str) -> float:
    """The tail check of a site of a NO chart, written out: the population's and the site's
    values mu +- 4.72 sigma, scored on the site's curves, over 1-year ages and both sexes."""
    lo, hi = chart.chart_range_
    ages = np.r_[np.arange(lo, hi, 1.0), hi]
    worst = 0.0
    for sex in ("female", "male"):
        pop = chart.predict_parameters(ages, sex)
        own = chart.predict_parameters(ages, sex, site=site)
        for theta in (pop, own):
            for sign in (1, -1):
                y = theta["mu"] + sign * K_TAIL * theta["sigma"]
                worst = max(worst, float(np.max(np.abs((y - own["mu"]) / own["sigma"]))))
    return worst


# -- 1. a training site of a handful of people -----------------------------------------------
def test_fit_warns_about_small_sites_and_a_training_site_with_extreme_offsets(wild) -> None:
    chart, caught = wild
    small = messages(caught, InputWarning)
    assert len(small) == 1 and "site(s) E (6) have fewer than 10 people" in small[0]
    assert "sigma" in small[0] and "--random-sites mu" in small[0]
    (extreme,) = messages(caught, ConvergenceWarning)
    assert "training site(s) are extreme: E (6 people): ei_ratio_mean" in extreme
    assert "site_unreliable" in extreme and "--random-sites mu" in extreme
    # the population chart is fine: only the site fails, by the hand-written check
    assert chart.reliable_.all()
    by_hand = {s: hand_site_tail_z(chart, s) for s in chart.sites_}
    assert by_hand["E"] > 20 and all(by_hand[s] < 6 for s in "ABCD")
    np.testing.assert_allclose(
        chart.site_tail_z(chart.sites_)[:, 0], [by_hand[s] for s in chart.sites_], rtol=1e-6
    )
    assert chart.unreliable_sites_ == {"E": [MEAN]}
    assert chart.site_n_ == {"A": 60, "B": 60, "C": 60, "D": 60, "E": 6}


def test_scores_of_people_at_that_site_are_flagged_site_unreliable(wild) -> None:
    chart, _ = wild
    people = cohort(1, {"A": 20, "E": 30, "B": 10})
    wide, caught = score_recording(chart, people)
    is_e = people["site_scanner"].eq("E").to_numpy()
    assert wide.loc[is_e, "flag"].eq("site_unreliable").all()
    assert wide.loc[~is_e, "flag"].eq("").all()  # nobody else, and no chart_unreliable
    (warned,) = messages(caught, ConvergenceWarning)
    assert warned.startswith("table: 30 row(s) from training site(s) E (6 people)")
    assert "flagged site_unreliable" in warned
    # E's people are indeed far out: their z spread ~10x (their values vary as A's, sd ~0.06)
    assert wide.loc[is_e, f"{MEAN}_z"].std() > 5 > wide.loc[~is_e, f"{MEAN}_z"].std()
    long, _ = score_recording(chart, people, layout="long")
    assert (long["flag"].eq("site_unreliable").to_numpy() == is_e).all()


def test_strict_fit_refuses_a_training_site_with_extreme_offsets() -> None:
    train = cohort(0, {"A": 60, "B": 60, "C": 60, "D": 60, "E": 6}, flat="E")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InvalidInputError, match="E \\(6 people\\)"):
            GrowthChart("NO", mu_df=3, sigma_df=None, strict=True).fit(train)


def test_site_terms_of_mu_only_do_not_warn_about_small_sites() -> None:
    train = cohort(0, {"A": 60, "B": 60, "C": 60, "D": 60, "E": 6}, flat="E")
    chart, caught = fit_recording(train, random_sites=("mu",))
    assert not [m for m in messages(caught, Warning) if "fewer than 10 people" in m]
    assert chart.unreliable_sites_ == {}  # no sigma offset: E's curves are the population's


def test_the_site_check_is_saved_and_older_charts_compute_it(wild, tmp_path) -> None:
    chart, _ = wild
    folder = chart.save(tmp_path / "chart")
    meta = json.loads((folder / "chart.json").read_text())
    assert meta["convergence"]["unreliable_sites"] == {"E": [MEAN]}
    assert meta["site_people"]["E"] == 6
    with np.load(folder / "arrays.npz") as npz:
        stored = npz["tail_z_by_site"]
    np.testing.assert_allclose(stored[:, 0], [hand_site_tail_z(chart, s) for s in chart.sites_])
    people = cohort(1, {"A": 5, "E": 5})
    loaded = GrowthChart.load(folder)
    assert loaded.unreliable_sites_ == {"E": [MEAN]}
    assert score_recording(loaded, people)[0]["flag"].tolist() == [""] * 5 + ["site_unreliable"] * 5
    # a chart saved before the check was stored (no array, no counts, no digests) loads and
    # computes it when scoring
    old = tmp_path / "old"
    old.mkdir()
    with np.load(folder / "arrays.npz") as npz:
        np.savez(old / "arrays.npz", **{k: npz[k] for k in npz.files if k != "tail_z_by_site"})
    for key in ("site_people", "arrays_sha256", "content_sha256"):
        meta.pop(key)
    meta["convergence"].pop("unreliable_sites")
    meta["arrays"].pop("tail_z_by_site")
    (old / "chart.json").write_text(json.dumps(meta))
    older = GrowthChart.load(old)
    assert older.site_n_ == {} and getattr(older, "_site_tail_z", None) is None
    scores, caught = score_recording(older, people)
    assert scores["flag"].tolist() == [""] * 5 + ["site_unreliable"] * 5
    assert "training site(s) E " in messages(caught, ConvergenceWarning)[0]  # count unknown


def test_the_shipped_chart_loads_with_no_unreliable_site() -> None:
    chart = load_reference_chart()
    assert chart.unreliable_sites_ == {} and chart.site_n_ == {}
    assert float(chart.site_tail_z(chart.sites_).max()) < 20


# -- 2. sites adapted from few controls -----------------------------------------------------
@pytest.fixture(scope="module")
def base():
    train = cohort(2, {"A": 80, "B": 80, "C": 80, "D": 80})
    return fit_recording(train)[0]


def test_scores_of_sites_adapted_from_few_controls_are_flagged(base, tmp_path) -> None:
    controls = cohort(3, {"N": 12, "M": 40})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adapted = base.adapt(controls)
    assert adapted.adapted_sites_["N"]["n_controls"] == 12
    people = cohort(4, {"N": 7, "M": 5, "A": 4})
    wide, caught = score_recording(adapted, people)
    expected = np.where(people["site_scanner"].eq("N"), "few_site_controls", "")
    assert wide["flag"].tolist() == expected.tolist()
    (warned,) = [m for m in messages(caught, InputWarning) if "few_site_controls" in m]
    assert warned.startswith("table: 7 row(s) from site(s) N (12 controls), adapted from fewer than 30")
    assert "M (" not in warned
    long, _ = score_recording(adapted, people, layout="long")
    assert long["flag"].tolist() == expected.tolist()  # one target: one row per person
    loaded = GrowthChart.load(adapted.save(tmp_path / "adapted"))
    assert score_recording(loaded, people)[0]["flag"].tolist() == expected.tolist()
    # the chart before adapting: N is unseen, not "few controls"
    before, _ = score_recording(base, people)
    assert not before["flag"].str.contains("few_site_controls").any()


# -- 3. calibration by sex, age band and site ---------------------------------------------------
@pytest.fixture(scope="module")
def sexless():
    """A chart without sex terms on a cohort whose females lie 0.05 above and males 0.05 below
    (half the sd 0.1), and held-out people of the same cohort."""
    sizes = {"A": 500, "B": 500}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chart = GrowthChart("NO", mu_df=3, sigma_df=None, mu_sex=False, sigma_sex=False)
        chart.fit(cohort(5, sizes, sd=0.1, sex_shift=0.05))
    return chart, cohort(6, {"A": 1500, "B": 1500}, sd=0.1, sex_shift=0.05)


def test_calibration_by_sex_shows_what_pooling_hides(sexless) -> None:
    chart, held = sexless
    pooled = calibration_summary(chart, held)
    by_sex = calibration_summary(chart, held, by="sex")
    assert list(by_sex.columns[:3]) == ["sex", "target", "n"]
    assert by_sex["sex"].tolist() == ["female", "male"]
    assert by_sex["n"].tolist() == [int(held["sex"].eq(s).sum()) for s in ("female", "male")]
    # the chart's sd is that of the mixture, sqrt(sd_site^2 + 0.05^2) per site: a woman's
    # z is +0.05 / that on average (site A: sd 0.06 -> +0.64; site B: sd 0.16 -> +0.30)
    expect = np.mean([0.05 / np.hypot(0.1 * SCALE[s], 0.05) for s in "AB"])
    np.testing.assert_allclose(by_sex["z_mean"], [expect, -expect], atol=0.06)
    assert abs(pooled.loc[0, "z_mean"]) < 0.05
    assert by_sex["mace_pp"].min() > 3 * pooled.loc[0, "mace_pp"]
    # the fraction below the median, counted by hand per sex
    table = calibration_table(chart, held, q=[50.0], by=["sex"])
    scores = chart.score(held)
    for sex in ("female", "male"):
        below = float((scores.loc[held["sex"].eq(sex), f"{MEAN}_centile"] < 0.5).mean())
        assert table.loc[table["sex"] == sex, "empirical"].item() == pytest.approx(below)


def test_calibration_by_age_band_and_site_counts_each_group(sexless) -> None:
    chart, held = sexless
    got = calibration_summary(chart, held, by=["site", "age"], age_bands=[10, 30, 60, 80])
    assert list(got.columns[:3]) == ["age_band", "site_scanner", "target"]
    age = held["age_in_years"].to_numpy()
    for (band, site), n in zip(zip(got["age_band"], got["site_scanner"]), got["n"]):
        lo, hi = (float(v) for v in str(band).split("-"))
        inside = (age >= lo) & ((age < hi) | ((hi == 80) & (age == 80)))
        assert n == int((inside & held["site_scanner"].eq(site).to_numpy()).sum())
    assert [str(b) for b in got["age_band"].unique()] == ["10-30", "30-60", "60-80"]
    assert got["n"].sum() == len(held)
    with pytest.raises(InvalidInputError, match="by must list"):
        calibration_summary(chart, held, by=["sex", "decade"])


def test_calibration_counts_and_names_people_of_unseen_sites(sexless) -> None:
    chart, held = sexless
    table = pd.concat([held.iloc[:300], cohort(7, {"Elsewhere": 50})], ignore_index=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = calibration_summary(chart, table)
    said = messages(caught, InputWarning)
    assert [m for m in said if "50 of 350 people are left out of the calibration" in m]
    assert not [m for m in said if "get the population-average prediction" in m]
    assert summary.loc[0, "n"] == 300
    assert summary.attrs["left_out"] == {"unseen_site": 50, "age_out_of_range": 0, "missing_value": 0}


def test_cli_calibrate_writes_the_grouped_summary_and_names_the_worst_group(
    sexless, tmp_path, capsys
) -> None:
    chart, held = sexless
    folder = chart.save(tmp_path / "chart")
    path = tmp_path / "held.csv"
    pd.concat([held, cohort(7, {"Elsewhere": 40})]).to_csv(path, index=False)
    out, cent = tmp_path / "cal.csv", tmp_path / "centiles.csv"
    argv = ["charts", "calibrate", "--chart", str(folder), "--table", str(path), "--out", str(out)]
    assert main([*argv, "--by", "sex", "--centiles-out", str(cent)]) == 0
    printed = capsys.readouterr().out
    written = pd.read_csv(out)
    expected = calibration_summary(chart, held, by="sex")
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)
    worst = expected.loc[expected["mace_pp"].idxmax()]
    assert f"worst group sex {worst['sex']}, {MEAN}: MACE {worst['mace_pp']:.2f} pp" in printed
    assert "left out 40 of a site the chart does not know (unseen_site" in printed
    centiles = pd.read_csv(cent)
    assert set(centiles["sex"]) == {"female", "male"} and len(centiles) == 2 * 7
    assert main([*argv, "--age-bands", "0,50,120"]) == 2  # --age-bands without --by age
    assert "--age-bands" in capsys.readouterr().err


# -- 4. --nu-df and --tau-df ----------------------------------------------------------------------
def test_fit_and_compare_take_nu_df_and_tau_df(tmp_path, capsys) -> None:
    args = build_parser().parse_args(["charts", "fit", "--table", "t.csv", "--out", "c"])
    assert (args.nu_df, args.tau_df) == (None, None)  # GrowthChart's defaults: constant
    rng = np.random.default_rng(8)
    n = 300
    age = rng.uniform(10, 80, n)
    table = pd.DataFrame(
        {
            "subject_id": [f"p{i}" for i in range(n)],
            "age_in_years": age,
            "sex": rng.choice(["female", "male"], n),
            "site_scanner": "A",
            MEAN: 1.0 + 0.002 * age + 0.1 * rng.standard_normal(n),
        }
    )
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "chart"
    common = ["--table", str(path), "--family", "JSU", "--mu-df", "3", "--max-iter", "5"]
    code = main(["charts", "fit", *common, "--out", str(out), "--nu-df", "3", "--random-sites", "none"])
    assert code in (0, 1)
    meta = json.loads((out / "chart.json").read_text())
    assert (meta["options"]["nu_df"], meta["options"]["tau_df"]) == (3, None)
    loaded = GrowthChart.load(out)
    assert loaded.formulas_["nu"].startswith("bs(age_in_years, df=3") and loaded.formulas_["tau"] == "1"
    assert loaded.designs_[2].n_fixed == 4 and loaded.designs_[3].n_fixed == 1  # 1 + 3 bs columns
    bic = tmp_path / "bic.csv"
    compare = ["charts", "compare", *common[:2], "--out", str(bic), "--families", "JSU"]
    code = main([*compare, "--mu-dfs", "3", "--tau-df", "3"])
    assert code == 0
    result = pd.read_csv(bic)
    assert result["tau_df"].tolist() == [3] and result["nu_df"].isna().all()
    assert main(["charts", "fit", *common, "--out", str(tmp_path / "x"), "--nu-df", "2"]) == 2
    assert "--nu-df" in capsys.readouterr().err
