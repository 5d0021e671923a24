"""Review of the SYNTHETIC reference cohort: the shipped numbers, computed independently from the raw
files with numpy/pandas, the loaders' contract (labels, fresh or read-only arrays, clear errors) and
the generator's reproducibility and argument checks on small cohorts.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from delssome_norms import synthetic as syn
from delssome_norms.datasets import (
    load_default_maps,
    load_default_template,
    load_patients,
    load_reference_subjects,
    load_reference_table,
    materialise_subjects,
    region_classes,
)
from delssome_norms.datasets import reference as ref
from delssome_norms.errors import InvalidInputError

SENSORY = {
    "pericalcarine", "cuneus", "lingual", "lateraloccipital", "precentral", "postcentral",
    "paracentral", "transversetemporal", "superiortemporal",
}  # fmt: skip


@pytest.fixture(scope="module")
def raw() -> dict[str, np.ndarray]:
    """The table file itself, read without the loaders."""
    with np.load(ref.data_dir() / ref.TABLE_FILE, allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


@pytest.fixture(scope="module")
def raw_subjects() -> dict[str, np.ndarray]:
    with np.load(ref.data_dir() / ref.SUBJECTS_FILE, allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


# --------------------------------------------------------------------------------------------------
# The documented numbers (README.md, reference_data/README.md), from the raw files
# --------------------------------------------------------------------------------------------------


def test_documented_counts_ages_and_file_sizes(raw) -> None:
    age, sex = raw["age_in_years"], raw["numeric_sex"].astype(int)
    assert len(age) == 12005 and (age.min(), age.max()) == (4.5, 98.4)
    assert len(np.unique(raw["site_index"])) == 14 and raw["ei_quantum"] == 2e-4
    assert 0.49 < sex.mean() < 0.51  # female with probability 1/2 (6,041 of 12,005)
    sizes = {n: (ref.data_dir() / n).stat().st_size for n in (*ref.DATA_FILES, ref.MANIFEST_FILE)}
    # reference_data/README.md's table: 1.76 MB, 1.31 MB, 21 kB; 3.11 MB in all
    assert round(sizes[ref.TABLE_FILE] / 1e6, 2) == 1.76
    assert round(sizes[ref.SUBJECTS_FILE] / 1e6, 2) == 1.31
    assert round(sizes[ref.MODEL_FILE] / 1e3) == 21
    assert round(sum(sizes.values()) / 1e6, 2) == 3.11


def test_lifespan_sex_and_regional_effects_are_in_the_reported_table(raw) -> None:
    ei = raw["ei_ratio_q"].astype(float) * float(raw["ei_quantum"])
    age, female = raw["age_in_years"], raw["numeric_sex"] == 1
    mean = ei.mean(axis=1)

    def med(lo: float, hi: float) -> float:
        return float(np.median(mean[(age >= lo) & (age < hi)]))

    # childhood fall, plateau in the 20s, mid-life fall, rise in very old age (binned medians)
    assert med(4.5, 6) - med(20, 30) > 0.35
    assert abs(med(20, 25) - med(25, 30)) < 0.03
    assert med(40, 50) - med(65, 75) > 0.15
    assert med(85, 98.5) - med(70, 80) > 0.08
    # sensory > association for every person
    names = [r.split("_", 1)[1] for r in raw["regions"]]
    sens = np.array([n in SENSORY for n in names])
    assert sens.sum() == 18
    assert np.all(ei[:, sens].mean(axis=1) > ei[:, ~sens].mean(axis=1))
    # females +0.04 to +0.05 higher (truth +0.05) and more variable (about 1.07 in the report)
    cells = pd.DataFrame({"m": mean, "f": female, "bin": np.digitize(age, [10, 20, 40, 60, 80])})
    cells["site"] = raw["site_index"]
    resid = cells["m"] - cells.groupby(["bin", "site"])["m"].transform("mean")
    diff = cells.groupby(["bin", "site", "f"])["m"].mean().unstack().dropna()
    assert 0.035 < float((diff[True] - diff[False]).mean()) < 0.055
    assert 1.04 < resid[female].std() / resid[~female].std() < 1.11
    # docs/inputs.md: left and right differ by 1.0 % of the mean (right slightly higher)
    left = np.char.startswith(raw["regions"].astype(str), "lh_")
    step = (ei[:, left].mean() - ei[:, ~left].mean()) / ei.mean()
    assert -0.012 < step < -0.008


def test_ground_truth_numbers_of_the_generator_description(raw, raw_subjects) -> None:
    maps = load_default_maps()
    m = (maps.myelin - maps.myelin.mean()) / maps.myelin.std()
    g = maps.gradient
    pattern = -0.11 * m + 0.29 * g
    assert np.corrcoef(m, g)[0, 1] == pytest.approx(-0.62, abs=0.005)
    assert (pattern.min(), pattern.max()) == pytest.approx((-0.65, 0.65), abs=0.01)
    wei = raw["true_wei_intercept"][:, None] + raw["true_wei_slope"][:, None] * g + (-0.11) * m
    assert np.median(wei.std(axis=1, ddof=1)) == pytest.approx(0.37, abs=0.005)
    # "99.94 % of people qualify" for the fitter: 7 of 12,005 do not
    wc, mc, gc = wei - wei.mean(axis=1, keepdims=True), m - m.mean(), g - g.mean()
    ok = (wei.min(axis=1) >= 0.45) & (wei.max(axis=1) <= 3.15) & (wei.std(axis=1, ddof=1) >= 0.3)
    ok &= (wc @ mc <= 0) & (wc @ gc >= 0)
    assert (~ok).sum() == 7
    # FC means: controls 0.20-0.26 (median 0.24), patients 0.10-0.17
    fc_mean = raw_subjects["fc_triu"].astype(float).mean(axis=1)
    control = raw_subjects["kind"] == "control"
    assert (fc_mean[control].min(), fc_mean[control].max()) == pytest.approx((0.20, 0.26), abs=0.005)
    assert np.median(fc_mean[control]) == pytest.approx(0.24, abs=0.005)
    assert (fc_mean[~control].min(), fc_mean[~control].max()) == pytest.approx((0.10, 0.17), abs=0.005)
    # the three association -2 SD patients' truth exceeds the fitter's wEI bound of 3.2
    over = raw_subjects["subject_id"][raw_subjects["true_wEI"].max(axis=1) > 3.2]
    assert over.tolist() == ["patient-00002", "patient-00005", "patient-00008"]


def test_patients_carry_two_normative_sd_in_their_group(raw, raw_subjects) -> None:
    """The shift of each patient's true E/I, in SD of table neighbours (same site and sex, +-4 y)."""
    mapping = syn.load_ei_mapping()
    maps = load_default_maps()
    m = (maps.myelin - maps.myelin.mean()) / maps.myelin.std()
    ei = raw["ei_ratio_q"].astype(float) * float(raw["ei_quantum"])
    sens = np.array([r.split("_", 1)[1] in SENSORY for r in raw["regions"]])
    patients = load_patients().set_index("subject_id")
    for k in np.flatnonzero(raw_subjects["kind"] == "patient"):
        c = raw_subjects["true_coefficients"][k]
        before = mapping(c[3] + c[4] * m + c[5] * maps.gradient, 0.005)
        after = raw_subjects["sim_ei_ratio"][k]  # the simulation at the deviated truth
        near = (np.abs(raw["age_in_years"] - raw_subjects["age_in_years"][k]) < 4) & (
            raw["numeric_sex"] == raw_subjects["numeric_sex"][k]
        )
        near &= raw["site_index"] == raw_subjects["site_index"][k]
        z = (after - before) / ei[near].std(axis=0, ddof=1)
        row = patients.loc[raw_subjects["subject_id"][k]]
        group = {"sensory": sens, "association": ~sens, "all": np.ones(68, bool)}[row["deviation_group"]]
        assert np.median(z[group]) == pytest.approx(row["deviation_sd"], abs=0.5)
        if not group.all():
            assert np.abs(z[~group]).max() < 0.01


# --------------------------------------------------------------------------------------------------
# Loaders: labels, fresh or read-only arrays, clear errors
# --------------------------------------------------------------------------------------------------


def test_every_loaded_table_says_it_is_synthetic() -> None:
    subjects = load_reference_subjects()
    tables = [
        load_reference_table(),
        load_patients(),
        subjects.demographics,
        syn.load_reference_table(include_truth=True),
    ]
    for table in tables:
        assert table.attrs["synthetic"] is True
        assert table.attrs["label"].startswith("SYNTHETIC")
    assert subjects.label.startswith("SYNTHETIC")


def test_mutating_what_a_loader_returned_does_not_change_later_calls() -> None:
    table = load_reference_table()
    first = float(table["ei_ratio_roi_0"].iat[0])
    table.iloc[0, 7:] = -1.0
    assert float(load_reference_table()["ei_ratio_roi_0"].iat[0]) == first
    subjects = load_reference_subjects()
    subjects.fc[0] = 0.0
    subjects.true_params["wEI"][0] = 0.0
    again = load_reference_subjects()
    assert again.fc[0, 0, 1] != 0.0 and again.true_params["wEI"][0].min() > 0.4
    assert again.fc.shape == (68, 68, 68) and again.fcd_cdf.shape == (68, 10000)
    assert again.fc.dtype == np.float64 and again.fcd_cdf[:, -1] == pytest.approx(1.0)
    for arr in (ref.load_default_gradient(), ref.load_myelin_map(), syn.load_model_setup().gradient):
        _try_to_zero(arr)  # read-only (pandas copy-on-write) or a fresh copy: either is safe
    assert ref.load_default_gradient().std() == pytest.approx(1.0, abs=1e-6)
    assert ref.load_myelin_map().std() == pytest.approx(1.0, abs=1e-6)
    maps, template = load_default_maps(), load_default_template()
    for arr in (maps.myelin, maps.gradient, template.sc, template.weights, template.centroids):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 0.0
    _try_to_zero(syn.load_model_setup().sc)
    assert syn.load_model_setup().sc.max() > 0


def _try_to_zero(arr: np.ndarray) -> None:
    try:
        arr[...] = 0.0
    except ValueError as err:
        assert "read-only" in str(err)


def test_materialise_takes_one_id_as_a_string(tmp_path) -> None:
    path = materialise_subjects(tmp_path, subject_ids="patient-00003")
    assert pd.read_csv(path)["subject_id"].tolist() == ["patient-00003"]


def test_materialise_refuses_a_selection_that_leaves_nobody(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="no subject of kind 'patient'"):
        materialise_subjects(tmp_path, kind="patient", subject_ids=["synth-00187"])
    assert not (tmp_path / "manifest.csv").exists()


def test_region_classes_refuses_a_single_string() -> None:
    assert region_classes(["lh_cuneus", "lh_precuneus"]).tolist() == ["sensory", "association"]
    with pytest.raises(InvalidInputError, match="not one string"):
        region_classes("lh_cuneus")


# --------------------------------------------------------------------------------------------------
# Generator: small cohorts, reproducibility, argument checks
# --------------------------------------------------------------------------------------------------


def _small_spec(**kwargs) -> syn.CohortSpec:
    sites = (
        syn.SiteSpec("SiteA", "Siemens", 40, 4.5, 30.0),
        syn.SiteSpec("SiteB", "GE", 40, 20.0, 98.4),
        syn.SiteSpec("SiteC", "Philips", 40, 8.0, 85.0),
    )
    return syn.CohortSpec(n_people=120, sites=sites, **kwargs)


def test_small_cohort_is_reproducible_from_its_seed(tmp_path) -> None:
    setup, spec = syn.load_model_setup(), _small_spec()

    def make(seed: int) -> syn.ReferenceCohort:
        return syn.generate_reference_cohort(
            seed, spec=spec, setup=setup, n_patients=2, subjects_per_cell=1
        )

    one, two, other = make(7), make(7), make(8)
    pd.testing.assert_frame_equal(one.table, two.table)
    assert not one.table.equals(other.table)
    assert np.array_equal(one.subject_index, two.subject_index) and len(one.subject_index) == 20
    assert (one.table["age_in_years"].min(), one.table["age_in_years"].max()) == (4.5, 98.4)
    a = syn.write_reference_cohort(one, tmp_path / "a")
    b = syn.write_reference_cohort(two, tmp_path / "b")
    assert {n: a[n].read_bytes() == b[n].read_bytes() for n in a} == dict.fromkeys(a, True)
    back = ref.load_reference_table(tmp_path / "a")
    assert back.attrs["synthetic"] is True
    assert back["ei_ratio_roi_5"].to_numpy() == pytest.approx(one.table["ei_ratio_roi_5"], abs=1e-12)


def test_spec_refuses_an_age_range_its_sites_do_not_span() -> None:
    # age_min / age_max are placed exactly at the youngest / oldest site: a site of 20-60 y would
    # otherwise hold a person aged 98.4 (and one aged 4.5 went missing)
    site = syn.SiteSpec("S", "X", 40, 20.0, 60.0)
    with pytest.raises(ValueError, match="youngest site's age_min"):
        syn.CohortSpec(n_people=40, sites=(site,))
    with pytest.raises(ValueError, match="age_min < age_max"):
        syn.CohortSpec(n_people=40, age_min=20.0, sites=(dataclasses.replace(site, age_max=20.0),))
    spec = syn.CohortSpec(n_people=40, age_min=20.0, age_max=60.0, sites=(site,))
    age, _, _ = syn.sample_demographics(np.random.default_rng(0), spec)
    assert (age.min(), age.max()) == (20.0, 60.0)


def test_one_lifespan_site_holds_both_the_youngest_and_the_oldest() -> None:
    spec = syn.CohortSpec(n_people=30, sites=(syn.SiteSpec("S", "X", 30, 4.5, 98.4),))
    age, _, _ = syn.sample_demographics(np.random.default_rng(1), spec)
    assert (age.min(), age.max()) == (4.5, 98.4)
    with pytest.raises(ValueError, match="n >= 2"):
        syn.CohortSpec(n_people=1, sites=(syn.SiteSpec("S", "X", 1, 4.5, 98.4),))


def test_the_myelin_class_term_is_dk68_only() -> None:
    """It returned 68 values for any number of regions (a 100-region cohort would broadcast-fail
    far away, or, for n = 1, silently add the DK68 map)."""
    from delssome_norms.synthetic import demographics, load_reference_spec, myelin_map

    spec = load_reference_spec()
    assert spec.myelin_slope != 0
    np.testing.assert_array_equal(demographics.class_term(68, spec), spec.myelin_slope * myelin_map())
    with pytest.raises(ValueError, match="68 DK regions, got n = 1"):
        demographics.class_term(1, spec)
    flat = dataclasses.replace(spec, myelin_slope=0.0)
    np.testing.assert_array_equal(demographics.class_term(100, flat), np.zeros(100))
