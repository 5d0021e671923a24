"""The committed SYNTHETIC reference cohort: structure, determinism, ground truth and the model.

Independent expectations: the table is regenerated from the seed and compared with the committed
file; the E/I mapping behind every E/I value is compared with a fresh run of the simulator; the
stored simulations with the model's own E/I at the ground truth; materialised CSVs with the io
readers; the sizes of the noise with the documented specification.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms import synthetic as syn
from delssome_norms.datasets import DK68_REGIONS, SENSORY_REGIONS, load_default_maps, region_classes
from delssome_norms.datasets import reference as ref
from delssome_norms.io import check_fc, check_fcd_cdf, read_fc, read_fcd_cdf, read_manifest, read_map


@pytest.fixture(scope="module")
def manifest() -> dict:
    return ref.load_manifest()


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return syn.load_reference_table(include_truth=True)


@pytest.fixture(scope="module")
def setup() -> syn.ModelSetup:
    return syn.load_model_setup()


@pytest.fixture(scope="module")
def regenerated(manifest, setup) -> syn.ReferenceCohort:
    return syn.generate_reference_cohort(manifest["seed"], spec=syn.load_reference_spec(), setup=setup)


@pytest.fixture(scope="module")
def subjects() -> ref.ReferenceSubjects:
    return ref.load_reference_subjects()


def test_manifest_labels_synthetic_and_matches_the_files(manifest) -> None:
    assert manifest["synthetic"] is True and "SYNTHETIC" in manifest["label"]
    assert manifest["format_version"] == syn.FORMAT_VERSION
    total = 0
    for name, info in manifest["files"].items():
        raw = (ref.data_dir() / name).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == info["sha256"], name
        total += len(raw)
    assert set(manifest["files"]) == set(ref.DATA_FILES)
    assert total < 5e6  # a few MB at most
    assert manifest["region_classes"]["sensory"] == sorted(SENSORY_REGIONS)
    with np.load(ref.data_dir() / ref.TABLE_FILE) as d:
        assert "SYNTHETIC" in str(d["label"])
    readme = Path(__file__).resolve().parents[2] / "reference_data" / "README.md"
    assert "SYNTHETIC" in readme.read_text(encoding="utf-8")[:400]


def test_table_has_the_promised_structure(table, manifest) -> None:
    spec = syn.load_reference_spec()
    assert len(table) == 12005 and table["subject_id"].is_unique
    fixed = ["subject_id", "age_in_years", "sex", "site", "scanner", "site_scanner", "numeric_sex"]
    rois = [f"ei_ratio_roi_{i}" for i in range(68)]
    assert list(table.columns[: 8 + 68]) == [*fixed, "ei_ratio_mean", *rois]
    assert table["age_in_years"].min() == 4.5 and table["age_in_years"].max() == 98.4
    assert table["site_scanner"].nunique() == 14
    assert table["site_scanner"].str.fullmatch(r"Site[A-N]_(Siemens|GE|Philips)").all()
    counts = table["site_scanner"].value_counts()
    assert all(counts[s.site_scanner] == s.n for s in spec.sites)
    n = len(table)
    assert abs(table["numeric_sex"].sum() - n / 2) < 4 * math.sqrt(n / 4)
    assert ((table["sex"] == "female") == (table["numeric_sex"] == 1)).all()
    ei = table[rois].to_numpy()
    assert np.isfinite(ei).all() and (ei > 1.0).all() and (ei < 7.0).all()
    assert table["ei_ratio_mean"].to_numpy() == pytest.approx(ei.mean(axis=1), abs=1e-12)
    # stored at the documented resolution
    assert np.abs(ei / manifest["ei_quantum"] - np.round(ei / manifest["ei_quantum"])).max() < 1e-6
    # realistic lifespan sampling: more children and young adults than very old people
    assert (table["age_in_years"] < 30).sum() > 4 * (table["age_in_years"] >= 80).sum()


def test_regenerating_with_the_seed_reproduces_the_committed_files(regenerated, table, tmp_path) -> None:
    assert regenerated.table["subject_id"].equals(table["subject_id"])
    assert np.array_equal(regenerated.table["age_in_years"], table["age_in_years"])
    assert regenerated.table["site_scanner"].equals(table["site_scanner"])
    rois = [f"ei_ratio_roi_{i}" for i in range(68)]
    diff = np.abs(regenerated.table[rois].to_numpy() - table[rois].to_numpy())
    assert diff.max() <= 2.0001e-4  # identical up to a rounding tie at the 2e-4 quantum
    assert (diff > 0).mean() < 1e-4
    written = syn.write_reference_cohort(regenerated, tmp_path)
    for name in (ref.TABLE_FILE, ref.PATIENTS_FILE, ref.GRADIENT_FILE, ref.MODEL_FILE):
        if written[name].read_bytes() != (ref.data_dir() / name).read_bytes():
            # another numpy build (e.g. numpy 1.24) may round exp/log differently in the last bit
            # (relative differences of 4e-15 seen): the numbers must still agree to 1e-12
            _assert_same_numbers(written[name], ref.data_dir() / name)


def _assert_same_numbers(new, old) -> None:
    """The arrays (npz) or columns (csv) of two files agree: same names, dtypes and shapes,
    floats to a relative 1e-12, everything else exactly."""
    if str(new).endswith(".npz"):
        with np.load(new, allow_pickle=False) as a, np.load(old, allow_pickle=False) as b:
            assert sorted(a.files) == sorted(b.files), new.name
            pairs = [(k, a[k], b[k]) for k in b.files]
    else:
        a, b = pd.read_csv(new), pd.read_csv(old)
        assert list(a.columns) == list(b.columns), new.name
        pairs = [(c, a[c].to_numpy(), b[c].to_numpy()) for c in b.columns]
    for key, x, y in pairs:
        assert x.dtype == y.dtype and x.shape == y.shape, (new.name, key)
        if np.issubdtype(y.dtype, np.floating):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=0.0, err_msg=f"{new.name}: {key}")
        else:
            assert np.array_equal(x, y), (new.name, key)


def test_reported_ei_is_the_model_at_the_truth_plus_documented_noise(table, setup) -> None:
    spec = syn.load_reference_spec()
    m, g = ref.load_myelin_map(), ref.load_default_gradient()
    wei = table["true_wEI_1"].to_numpy()[:, None] + table["true_wEI_m"].to_numpy()[:, None] * m
    wei = wei + table["true_wEI_g"].to_numpy()[:, None] * g
    true = setup.mapping(wei, spec.sigma)
    rois = [f"ei_ratio_roi_{i}" for i in range(68)]
    log_err = np.log(table[rois].to_numpy() / true)
    shared = log_err.mean(axis=1)
    expected_shared = math.hypot(spec.noise_global_cv, spec.noise_regional_cv / math.sqrt(68))
    assert abs(shared.mean()) < 0.002
    assert shared.std() == pytest.approx(expected_shared, rel=0.05)
    assert (log_err - shared[:, None]).std() == pytest.approx(
        spec.noise_regional_cv * math.sqrt(67 / 68), rel=0.02
    )
    # truth is the [1, myelin map, gradient] design: wEE from the rule, G and sigma shared
    assert table["true_G"].eq(spec.G).all() and table["true_sigma_1"].eq(spec.sigma).all()
    assert table["true_wEE_1"].to_numpy() == pytest.approx(
        setup.wee_rule(table["true_wEI_1"].to_numpy())
    )


def test_ground_truth_contains_the_papers_effects(table, setup) -> None:
    spec = syn.load_reference_spec()
    m, g = ref.load_myelin_map(), ref.load_default_gradient()
    sensory = region_classes() == "sensory"
    pattern = spec.myelin_slope * m + spec.gradient_slope * g
    ages = np.arange(4.5, 98.41, 0.5)
    curves = {}
    for sex in (0, 1):
        a = syn.intercept_curve(ages, np.full(ages.shape, sex), g, spec, setup.mapping)
        curves[sex] = setup.mapping(a[:, None] + pattern[None, :], spec.sigma)
    rate = np.gradient(curves[0].mean(axis=1), ages)
    bounds = {"child": (5, 15), "20s": (20, 30), "mid": (40, 65), "old": (80, 98.4)}
    window = {k: rate[(ages >= lo) & (ages <= hi)].mean() for k, (lo, hi) in bounds.items()}
    assert window["child"] < 0 and window["mid"] < 0 and window["old"] > 0
    assert abs(window["20s"]) < 0.2 * abs(window["mid"])
    for sex in (0, 1):  # sensory above association at every age
        assert np.all(curves[sex][:, sensory].mean(axis=1) > curves[sex][:, ~sensory].mean(axis=1) + 0.2)
    assert np.all(curves[1].mean(axis=1) > curves[0].mean(axis=1))  # women slightly higher
    assert spec.female_sd_ratio > 1  # and more variable


def test_truth_maps_are_the_shipped_default_maps(manifest) -> None:
    g, m = ref.load_default_gradient(), ref.load_myelin_map()
    sensory = region_classes() == "sensory"
    assert g.shape == m.shape == (68,)
    assert g.mean() == pytest.approx(0, abs=1e-6) and g.std() == pytest.approx(1, abs=1e-5)
    assert g[sensory].mean() < g[~sensory].mean()  # oriented: sensory at the low end
    assert m == pytest.approx(syn.myelin_map())
    maps = load_default_maps()
    assert g == pytest.approx(maps.gradient, abs=1e-12)
    assert m == pytest.approx((maps.myelin - maps.myelin.mean()) / maps.myelin.std(), abs=1e-12)
    frame = pd.read_csv(ref.data_dir() / ref.GRADIENT_FILE)
    assert tuple(frame["region"]) == DK68_REGIONS
    assert (frame["region_class"] == region_classes()).all()


def test_ei_mapping_matches_a_fresh_simulation(setup, table) -> None:
    """The mapping behind every E/I value agrees with the simulator at two people's truth."""
    import torch

    from delssome_norms.model import PFICParams, SimulationTiming, scale_sc, simulate

    spec = syn.load_reference_spec()
    m, g = ref.load_myelin_map(), ref.load_default_gradient()
    rows = table.iloc[[10, 9000]]
    a = rows["true_wEI_1"].to_numpy()
    wei = (
        a[:, None]
        + rows["true_wEI_m"].to_numpy()[:, None] * m
        + rows["true_wEI_g"].to_numpy()[:, None] * g
    )
    wee = setup.wee_rule.regional(a, wei)
    timing = SimulationTiming(tr=0.72, scan_length=57.6, dt=0.005, burn_in=7.2, fcd_window=10)
    params = PFICParams(
        torch.tensor(wee, dtype=torch.float32), torch.tensor(wei, dtype=torch.float32),
        torch.full(wei.shape, spec.sigma), torch.full((2,), spec.G),
    )  # fmt: skip
    res = simulate(
        params, scale_sc(torch.tensor(setup.sc)).float(), timing, n_dup=3, seed=5, engine="torch"
    )
    assert bool(res.valid.all())
    sim = res.ei_ratio.double().numpy()
    rel = sim / setup.mapping(wei, spec.sigma) - 1
    assert np.abs(rel).max() < 0.005
    assert abs(rel.mean()) < 0.001
    assert res.r_e.mean().item() == pytest.approx(3.0, abs=0.05)  # the FIC fixed-point regime


def test_end_to_end_subjects(subjects, table, setup) -> None:
    from delssome_norms.fit.parameterisation import wei_range

    demo = subjects.demographics
    controls = (demo["kind"] == "control").to_numpy()
    assert controls.sum() >= 50 and (~controls).sum() >= 5
    assert demo["subject_id"].is_unique
    assert (demo["TR"] == 0.72).all() and (demo["scan_length"] == syn.SUBJECT_SCAN_LENGTH).all()
    idx = demo["table_index"].to_numpy()[controls]
    assert (table["subject_id"].to_numpy()[idx] == demo["subject_id"].to_numpy()[controls]).all()
    assert np.array_equal(
        table["age_in_years"].to_numpy()[idx], demo["age_in_years"].to_numpy()[controls]
    )
    for k in range(len(demo)):
        check_fc(subjects.fc[k], n_regions=68, input_name=demo["subject_id"].iat[k])
        check_fcd_cdf(subjects.fcd_cdf[k], input_name=demo["subject_id"].iat[k])
    assert subjects.sim_valid.all()
    p = subjects.true_params
    # the stored simulation agrees with the mapping at the truth
    rel = subjects.sim_ei_ratio / setup.mapping(p["wEI"], p["sigma"]) - 1
    assert np.abs(rel).max() < 0.005
    # the truth of every control is a valid, in-bounds candidate for the fitter given its own FC
    iu = np.triu_indices(68, 1)
    for k in np.flatnonzero(controls):
        lo, hi = wei_range(subjects.fc[k])
        assert lo <= p["wEI"][k].min() and p["wEI"][k].max() <= hi
        assert 1.0 <= p["wEE"][k].min() and p["wEE"][k].max() <= 10.0
        assert 0.15 < subjects.fc[k][iu].mean() < 0.35  # realistic FC strength
    assert syn.fitter_valid(p["wEI"][controls], ref.load_default_gradient()).all()
    # coefficients reproduce the regional truth of the controls
    x = np.column_stack([np.ones(68), ref.load_myelin_map(), ref.load_default_gradient()])
    assert (
        np.linalg.matrix_rank(np.column_stack([x, load_default_maps().myelin])) == 3
    )  # the fitter's default design (raw myelin) spans the same space
    c = p["coefficients"][controls]
    assert c[:, 3:6] @ x.T == pytest.approx(p["wEI"][controls], abs=1e-12)
    assert c[:, 0:3] @ x.T == pytest.approx(p["wEE"][controls], abs=1e-12)


def test_patients_record_their_deviation(subjects) -> None:
    patients = ref.load_patients()
    assert len(patients) >= 5 and patients["subject_id"].str.startswith("patient-").all()
    assert set(patients["deviation_group"]) == {"sensory", "association", "all"}
    z = ref.patient_deviation_z(patients)
    assert z.shape == (len(patients), 68)
    sensory = region_classes() == "sensory"
    for k, group in enumerate(patients["deviation_group"]):
        mask = {"sensory": sensory, "association": ~sensory, "all": np.ones(68, bool)}[group]
        assert np.all(z[k, mask] == patients["deviation_sd"].iat[k]) and np.all(z[k, ~mask] == 0)
    demo = subjects.demographics
    assert list(demo.loc[demo["kind"] == "patient", "subject_id"]) == list(patients["subject_id"])


def test_materialised_subjects_read_back_with_the_io_readers(subjects, tmp_path) -> None:
    ids = list(subjects.demographics["subject_id"].iloc[[0, -1]])
    path = ref.materialise_subjects(tmp_path, subject_ids=ids)
    man = read_manifest(path)
    assert list(man["subject_id"]) == ids
    for k, sid in zip([0, len(subjects.demographics) - 1], ids):
        row = man.set_index("subject_id").loc[sid]
        assert read_fc(row["fc"]) == pytest.approx(subjects.fc[k], abs=1e-12)
        assert read_fcd_cdf(row["fcd_cdf"]) == pytest.approx(subjects.fcd_cdf[k], abs=1e-12)
        assert (tmp_path / "truth" / f"{sid}_best_parameters.csv").is_file()
    assert read_map(tmp_path / "gradient.csv") == pytest.approx(ref.load_default_gradient())
    assert read_map(tmp_path / "myelin.csv") == pytest.approx(load_default_maps().myelin)
    assert np.loadtxt(tmp_path / "sc.csv", delimiter=",") == pytest.approx(ref.load_simulation_sc())


def test_materialise_by_kind_and_subject_ids(subjects, tmp_path) -> None:
    demo = subjects.demographics
    controls = list(demo.loc[demo["kind"] == "control", "subject_id"].iloc[:2])
    patient = demo.loc[demo["kind"] == "patient", "subject_id"].iloc[0]
    man = read_manifest(
        ref.materialise_subjects(tmp_path, kind="control", subject_ids=[*controls, patient])
    )
    assert list(man["subject_id"]) == controls  # the patient is filtered out by kind
