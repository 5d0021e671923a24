"""Review 1207 (Python API): ``empirical_statistics`` reads a labelled DataFrame's columns by
name, as the file readers read a header row, and gives a transposed run the readers' message;
``GrowthChart.score`` keeps the table's index; ``centiles`` refuses numeric sex codes; the
pipeline-mismatch messages spell the Python argument; E/I <= 0 is refused on a chart whose curves
are of E/I ratios, also without provenance."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import empirical_statistics
from delssome_norms.io import read_timeseries
from delssome_norms.model import bold_fcd_cdf
from delssome_norms.norms import GrowthChart

TR = 0.72  # FCD window round(60 / 0.72) = 83 frames: a run needs 84
FRAMES = 120
SITES = ["S1", "S2"]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _run(n_regions: int = 68, frames: int = FRAMES, seed: int = 0) -> np.ndarray:
    """A (frames, regions) BOLD-like run with region-specific correlations (a shared signal
    with region-dependent loadings), so that a misordering changes the FC."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(frames, 3))
    loadings = rng.uniform(-1.0, 1.0, size=(3, n_regions))
    return shared @ loadings + 0.7 * rng.normal(size=(frames, n_regions))


# -- 1. empirical_statistics reads DataFrame labels -----------------------------------------------
def test_dk68_labelled_columns_in_another_order_and_spelling_give_the_dk68_fc() -> None:
    run = _run()
    perm = np.random.default_rng(3).permutation(68)
    spelled = [f"ctx-{r[:2]}-{r[3:]}" if k % 2 else r for k, r in enumerate(DK68_REGIONS)]
    shuffled = pd.DataFrame(run[:, perm], columns=[spelled[k] for k in perm])
    fc, cdf = empirical_statistics([shuffled], TR)
    # the FC in DK68 order, labelled so, as NumPy's Pearson correlation of the ordered run
    assert isinstance(fc, pd.DataFrame)
    assert list(fc.index) == list(DK68_REGIONS) == list(fc.columns)
    np.testing.assert_allclose(fc.to_numpy(), np.corrcoef(run.T), atol=1e-10)
    expected_cdf = bold_fcd_cdf(run, 83).numpy()
    np.testing.assert_allclose(cdf, expected_cdf, atol=1e-12)
    # unlabelled input is unchanged: an ndarray in the given (atlas) order
    plain, _ = empirical_statistics([run], TR)
    assert isinstance(plain, np.ndarray)
    np.testing.assert_allclose(plain, fc.to_numpy(), atol=1e-12)


def test_numbered_columns_are_put_in_numeric_order_and_range_columns_kept() -> None:
    run = _run(seed=1)
    perm = np.random.default_rng(4).permutation(68)
    numbered = pd.DataFrame(run).iloc[:, perm]  # columns 47, 22, ...: the atlas's numbering
    with pytest.warns(InputWarning, match="number the regions in another order"):
        fc, _ = empirical_statistics(numbered, TR)  # one DataFrame is one run
    assert isinstance(fc, np.ndarray)
    np.testing.assert_allclose(fc, np.corrcoef(run.T), atol=1e-10)
    fc_range, _ = empirical_statistics([pd.DataFrame(run)], TR)
    np.testing.assert_allclose(fc_range, np.corrcoef(run.T), atol=1e-10)


def test_other_labels_of_68_columns_are_refused_and_another_atlas_kept_in_column_order() -> None:
    run = _run(seed=2)
    other = pd.DataFrame(run, columns=[f"{'Vis' if k % 2 else 'SomMot'}_{k}" for k in range(68)])
    with pytest.raises(InvalidInputError) as info:
        empirical_statistics([other], TR)
    assert info.value.source == "run 1"
    assert "68 names that are not DK68 regions ('SomMot_0', 'Vis_1'" in info.value.problem
    assert "give the plain array (.to_numpy())" in info.value.problem
    with pytest.raises(InvalidInputError, match=r"non-numeric column\(s\) subject_id; give"):
        empirical_statistics([other.assign(subject_id="sub-01")], TR)
    # another atlas's width: its names, in the first run's column order; a second run listing
    # them in another order is put in that order by name
    names = [f"{'Vis' if k % 2 else 'SomMot'}_{k}" for k in range(10)]
    small = _run(10, seed=5)
    first = pd.DataFrame(small, columns=names)
    second = first.iloc[:, ::-1]
    with pytest.warns(InputWarning, match="run 2: lists the regions of run 1 in another order"):
        fc, _ = empirical_statistics([first, second], TR)
    assert list(fc.index) == names
    np.testing.assert_allclose(fc.to_numpy(), np.corrcoef(small.T), atol=1e-10)


def test_one_hemisphere_is_a_34_region_atlas_and_mixed_runs_are_refused() -> None:
    run = _run(seed=6)
    lh = [k for k, r in enumerate(DK68_REGIONS) if r.startswith("lh_")]
    table = pd.DataFrame(run[:, lh[::-1]], columns=[DK68_REGIONS[k] for k in lh[::-1]])
    with pytest.warns(InputWarning, match="names 34 of the 68 DK68 regions"):
        fc, _ = empirical_statistics([table], TR)
    assert list(fc.index) == [DK68_REGIONS[k] for k in lh]
    np.testing.assert_allclose(fc.to_numpy(), np.corrcoef(run[:, lh].T), atol=1e-10)
    full = pd.DataFrame(run, columns=list(DK68_REGIONS))
    with pytest.raises(InvalidInputError, match="run 1 names its regions but run 2 does not"):
        empirical_statistics([full, run], TR)


def test_a_transposed_run_gets_the_readers_message(tmp_path) -> None:
    run = _run(seed=7, frames=300)
    path = tmp_path / "transposed.tsv"
    np.savetxt(path, run.T, delimiter="\t")
    with pytest.raises(InvalidInputError) as from_file:
        read_timeseries(path, min_frames=84)
    for given in (run.T, pd.DataFrame(run.T)):
        with pytest.raises(InvalidInputError) as info:
            empirical_statistics([given], TR)
        assert info.value.problem == from_file.value.problem
        assert "is it transposed?" in info.value.problem and "run 1" == info.value.source
    # region names down the index: regions x frames
    with pytest.raises(InvalidInputError, match=r"region names down its index .*DataFrame\.T"):
        empirical_statistics([pd.DataFrame(run.T, index=list(DK68_REGIONS))], TR)


# -- charts ------------------------------------------------------------------------------------
def _cohort(n: int = 300, seed: int = 0, sites=SITES, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "subject_id": [f"p{seed}_{i}" for i in range(n)],
            "age_in_years": rng.uniform(5, 90, n),
            "sex": rng.choice(["female", "male"], n),
            "site_scanner": rng.choice(sites, n),
        }
    )
    table["ei_ratio_mean"] = 3.0 + 0.005 * table["age_in_years"] + rng.normal(0, 0.3, n) - shift
    table["ei_ratio_roi_0"] = 2.5 + rng.normal(0, 0.3, n) - shift
    table["ei_ratio_roi_1"] = 3.5 + rng.normal(0, 0.3, n) - shift
    return table


@pytest.fixture(scope="module")
def chart() -> GrowthChart:
    """A chart of E/I ratios fitted on a plain table (no provenance: its meaning unrecorded)."""
    return _quiet(GrowthChart(family="NO", mu_df=3, sigma_df=3).fit, _cohort())


def test_score_keeps_the_tables_index(chart) -> None:
    table = _cohort(40, seed=1)
    sub = table[table["sex"] == "female"].copy()  # a filter: index 2, 5, 6, ...
    assert not sub.index.equals(pd.RangeIndex(len(sub)))
    wide = _quiet(chart.score, sub)
    assert wide.index.equals(sub.index)
    plain = _quiet(chart.score, sub.reset_index(drop=True))  # the scores, by position
    sub["centile"] = wide["ei_ratio_mean_centile"]  # the pandas idiom: aligned by index
    np.testing.assert_array_equal(sub["centile"].to_numpy(), plain["ei_ratio_mean_centile"])
    assert sub["centile"].notna().all()
    long = _quiet(chart.score, sub, layout="long")
    assert long.index.tolist() == np.repeat(sub.index.to_numpy(), 3).tolist()
    assert long["target"].tolist()[:3] == ["ei_ratio_mean", "ei_ratio_roi_0", "ei_ratio_roi_1"]
    mean = long[long["target"] == "ei_ratio_mean"]
    np.testing.assert_array_equal(mean.loc[sub.index, "centile"], sub["centile"])


@pytest.mark.parametrize("sex", [0, 1, 1.0, np.int64(0), np.array([1.0, 0.0])])
def test_centiles_refuse_numeric_sex_codes(chart, sex) -> None:
    ages = [30.0] if np.ndim(sex) == 0 else [30.0, 40.0]
    with pytest.raises(
        InvalidInputError, match=r"numeric sex code\(s\) [01].*UK Biobank: 0 = female"
    ) as info:
        chart.centiles(ages, sex)
    assert info.value.source == "sex"
    if np.ndim(sex) == 0:
        with pytest.raises(InvalidInputError, match="numeric sex code"):
            chart.population_centiles(sex)
    # labels work, and are told apart
    female = chart.centiles([30.0], "F", q=[50.0])
    male = chart.centiles([30.0], "male", q=[50.0])
    assert female["sex"].tolist()[0] == "female" and male["sex"].tolist()[0] == "male"
    assert female["C50"].iloc[0] != male["C50"].iloc[0]


def test_pipeline_mismatch_messages_spell_the_python_argument(chart) -> None:
    named = copy.deepcopy(chart)
    named.provenance_ = {
        "pipeline": {"n_regions": 2, "mode": "euler"},
        "atlas": {"regions": ["lh_insula", "rh_insula"]},
    }
    table = _cohort(5, seed=2)
    other = {"pipeline": {"mode": "surrogate"}, "atlas": {"regions": ["lh_insula", "rh_insula"]}}
    with pytest.raises(InvalidInputError) as info:
        named.score(table, provenance=other)
    assert "--allow-pipeline-mismatch (allow_pipeline_mismatch=True in Python) to use the table " in (
        info.value.problem
    )
    with pytest.warns(InputWarning, match=r"used anyway \(--allow-pipeline-mismatch \(allow_pipeline"):
        named.score(table, provenance=other, allow_pipeline_mismatch=True)
    with pytest.raises(InvalidInputError) as info:
        named.score(table, regions=["lh_cuneus", "rh_cuneus"], allow_pipeline_mismatch=True)
    assert "even with --allow-pipeline-mismatch (allow_pipeline_mismatch=True in Python):" in (
        info.value.problem
    )


def test_ei_at_or_below_zero_is_refused_on_a_chart_of_ei_ratios(chart) -> None:
    table = _cohort(6, seed=3)
    table.loc[[1, 4], "ei_ratio_mean"] = [-1.0, 0.0]
    with pytest.raises(InvalidInputError) as info:
        _quiet(chart.score, table)
    assert info.value.source == "table"
    assert info.value.problem.startswith(
        "column ei_ratio_mean has E/I ratio(s) <= 0 in row(s) 2, 5 (subject_id p3_1, p3_4): "
    )
    # the controls of a new site: the same
    controls = _cohort(40, seed=4, sites=["NEW"])
    controls.loc[7, "ei_ratio_roi_1"] = -0.5
    with pytest.raises(
        InvalidInputError, match=r"ei_ratio_roi_1 has E/I ratio\(s\) <= 0 in row\(s\) 8 "
    ):
        _quiet(chart.adapt, controls)
    # a chart of another quantity under these names (centred: its curves cover 0) scores them
    centred = _quiet(GrowthChart(family="NO", mu_df=3, sigma_df=3).fit, _cohort(shift=3.0))
    people = _cohort(6, seed=5, shift=3.0)
    people.loc[1, "ei_ratio_mean"] = -1.0
    scores = _quiet(centred.score, people)
    assert np.isfinite(scores["ei_ratio_mean_z"]).all() and scores.loc[1, "flag"] == ""


def test_one_unknown_sex_for_every_age_is_named_once() -> None:
    from delssome_norms.norms import load_reference_chart

    with pytest.raises(InvalidInputError, match=r"'1' in row\(s\) 1;"):
        load_reference_chart().population_centiles("1")
