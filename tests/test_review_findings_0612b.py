"""Findings of the 2026-12-06 (second) API review: step sizes as torch scalars, and an atlas's
own labels that end in running digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit.settings import FitSettings
from delssome_norms.io.region_names import header_kind, numbering_order


def test_step_sizes_and_seed_given_as_torch_scalars_are_plain_numbers() -> None:
    s = FitSettings(dt_train=torch.tensor(0.006), dt_val=np.float32(0.005), seed=torch.tensor(7))
    assert s.dt_train == 0.006 and type(s.dt_train) is float  # not float32's 0.006000000052
    assert s.dt_val == 0.005 and s.seed == 7 and type(s.seed) is int


def test_a_tensor_of_several_step_sizes_is_still_refused() -> None:
    with pytest.raises(InvalidInputError, match="dt_train"):
        FitSettings(dt_train=torch.tensor([0.005, 0.006]))


@pytest.mark.parametrize(
    ("tokens", "numbered"),
    [
        (["roi_1", "roi_2", "roi_3"], True),
        (["ROI_01", "roi_02", "Roi_03"], True),  # leading zeros, any case
        (["0", "1", "2"], True),
        (["netA0", "netB1", "netC2"], False),  # an atlas's own labels
        (["Vis_1", "SomMot_2", "DorsAttn_3"], False),
    ],
)
def test_only_one_shared_prefix_with_running_numbers_is_numbering(
    tokens: list[str], numbered: bool
) -> None:
    assert (numbering_order(tokens, "ts.csv") is not None) is numbered


def test_own_labels_with_running_digits_keep_their_names() -> None:
    names = ["Vis_1", "SomMot_2", "DorsAttn_3", "Limbic_4", "Default_5"]
    arr = np.random.default_rng(0).normal(size=(20, 5))
    got, values, kind = header_kind(list(names), arr, "ts.csv", n_atlas=68)
    assert (got, kind) == (names, "own")
    np.testing.assert_array_equal(values, arr)


def test_planning_a_cohort_of_an_own_atlas_does_not_warn_that_its_sc_is_not_dk68(tmp_path) -> None:
    import warnings

    from delssome_norms.fit.cohort import _cohort_n_regions

    names = [f"L_net{c}" for c in "abcde"] + [f"R_net{c}" for c in "abcde"]
    sc = np.random.default_rng(1).uniform(0.1, 1.0, (10, 10))
    sc = (sc + sc.T) / 2
    np.fill_diagonal(sc, 0.0)
    path = tmp_path / "sc.csv"
    rows = [",".join(["", *names])] + [
        ",".join([n, *(f"{v:.6f}" for v in r)]) for n, r in zip(names, sc)
    ]
    path.write_text("\n".join(rows) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _cohort_n_regions([{"sc": str(path)}, {"sc": str(path)}]) == 10


def test_validate_loads_no_plotting_library(tmp_path) -> None:
    """pycma imports matplotlib.pyplot; only a search needs pycma (only plotting may load
    matplotlib: with an unwritable home it printed cache warnings on validate)."""
    import subprocess
    import sys

    ts = tmp_path / "ts.csv"
    np.savetxt(ts, np.random.default_rng(0).normal(size=(300, 68)), delimiter=",")
    code = (
        "import sys\n"
        "from delssome_norms.cli.main import main\n"
        f"main(['validate', '--timeseries', {str(ts)!r}, '--tr', '0.72'])\n"
        "loaded = [m for m in ('matplotlib', 'cma') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("bad", [True, np.bool_(True)])
def test_a_truth_value_is_not_a_tr_or_scan_length(bad) -> None:
    from delssome_norms.io.checks import check_timing
    from delssome_norms.model.timing import check_scan_length, check_tr

    with pytest.raises(InvalidInputError, match="number"):
        check_timing(bad, 432.0, "tr")
    with pytest.raises(InvalidInputError, match="number"):
        check_timing(0.72, bad, "scan_length")
    with pytest.raises(InvalidInputError, match="number of seconds"):
        check_tr(bad)
    with pytest.raises(InvalidInputError, match="number of seconds"):
        check_scan_length(bad)
    with pytest.raises(InvalidInputError, match="number of seconds"):
        check_scan_length("ten minutes")


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_complex_matrices_and_time_series_are_refused(kind) -> None:
    from delssome_norms.io.checks import check_fc, check_sc, check_timeseries

    rng = np.random.default_rng(0)
    ts = rng.normal(size=(200, 6))
    fc = np.corrcoef(ts.T)
    sc = np.abs(fc)
    np.fill_diagonal(sc, 0.0)

    def cx(a):
        a = a + 0j
        return torch.from_numpy(a) if kind == "torch" else a

    for check, value in ((check_fc, fc), (check_sc, sc), (check_timeseries, ts)):
        with pytest.raises(InvalidInputError, match="real numbers"):
            check(cx(value), input_name="x")


@pytest.mark.parametrize("blank", [np.nan, None, "", "  "])
def test_an_empty_sex_cell_is_named_empty_not_an_unknown_label(blank) -> None:
    import pandas as pd

    from delssome_norms.io.checks import normalise_sex, table_sex_labels

    with pytest.raises(InvalidInputError, match=r"is empty in row\(s\) 3") as err:
        normalise_sex(["female", "m", blank, "F"], "sex")
    assert "unknown" not in err.value.problem
    table = pd.DataFrame({"sex": ["female", "male", blank, "male"]})
    with pytest.raises(InvalidInputError, match=r"column sex: is empty in row\(s\) 3"):
        table_sex_labels(table, "demogr.csv")
    coded = pd.DataFrame({"numeric_sex": [1.0, 0.0, np.nan, 1.0]})
    with pytest.raises(InvalidInputError, match=r"column numeric_sex: is empty in row\(s\) 3"):
        table_sex_labels(coded, "demogr.csv")


def test_an_inproc_scheduler_of_another_process_is_explained() -> None:
    pytest.importorskip("distributed")
    from delssome_norms.fit.dask_executor import connect

    with pytest.raises(InvalidInputError, match=r"inproc://\) is reachable only from the process"):
        connect("inproc://192.0.2.2/1/1", 2.0)


def test_simulate_stopped_while_writing_keeps_the_earlier_run_whole(tmp_path, monkeypatch) -> None:
    """A Ctrl-C between simulate's writes left a new EI_ratio.csv and FC.csv beside the earlier
    run's FCD_CDF.csv (read together as one simulation, or as a fit's inputs)."""
    from pathlib import Path

    from delssome_norms.cli.main import main
    from delssome_norms.io import writers
    from tests.cli.test_simulate_cmd import _write_params

    rng = np.random.default_rng(0)
    sc = rng.random((4, 4))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0)
    np.savetxt(tmp_path / "sc.csv", sc, delimiter=",")
    _write_params(tmp_path / "p.csv")
    out = tmp_path / "o"
    argv = ["simulate", "--params", str(tmp_path / "p.csv"), "--sc", str(tmp_path / "sc.csv")]
    argv += ["--tr", "0.72", "--scan-length", "14.4", "--dt", "0.005", "--burn-in", "1.44"]
    argv += ["--fcd-window", "5", "--warmup-steps", "100", "--out-dir", str(out)]
    assert main([*argv, "--seed", "1"]) == 0
    names = ("EI_ratio.csv", "FC.csv", "FCD_CDF.csv")
    before = {n: (out / n).read_bytes() for n in names}
    original = writers.write_matrix

    def stop_at_cdf(values, path, **kw):
        if "FCD_CDF" in Path(path).name:
            raise KeyboardInterrupt
        return original(values, path, **kw)

    monkeypatch.setattr(writers, "write_matrix", stop_at_cdf)
    monkeypatch.setattr("delssome_norms.io.write_matrix", stop_at_cdf)
    assert main([*argv, "--seed", "2"]) == 130
    assert {n: (out / n).read_bytes() for n in names} == before
    assert not [p.name for p in out.iterdir() if ".staged-" in p.name or p.suffix == ".tmp"]
    monkeypatch.undo()
    assert main([*argv, "--seed", "2"]) == 0
    assert (out / "FC.csv").read_bytes() != before["FC.csv"]


@pytest.mark.parametrize("index", [False, True])
def test_a_bare_numbered_header_in_another_order_puts_the_columns_in_order(tmp_path, index) -> None:
    """pandas' to_csv of a frame whose integer columns were permuted: the header row was read
    as a 201st frame (or, with the index column, refused as a NaN frame)."""
    import pandas as pd

    from delssome_norms.errors import InputWarning
    from delssome_norms.io import read_timeseries

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 10))
    perm = rng.permutation(10)
    path = tmp_path / "ts.csv"
    pd.DataFrame(x[:, perm], columns=perm).to_csv(path, index=index)
    with pytest.warns(InputWarning, match="number the regions in another order"):
        ts = read_timeseries(path)
    np.testing.assert_allclose(ts, x, rtol=0, atol=1e-12)


def test_write_together_removes_earlier_partners_and_its_orphans_are_cleaned(tmp_path) -> None:
    import os

    from delssome_norms.io.writers import remove_orphan_temporaries, write_together

    for name in ("a.csv", "b.csv", "c.csv"):
        (tmp_path / name).write_text("old")
    write_together(
        [
            (tmp_path / "a.csv", lambda p: p.write_text("new a")),
            (tmp_path / "b.csv", lambda p: p.write_text("new b")),
            (tmp_path / "c.csv", None),  # not written this time: the earlier one must go
        ]
    )
    assert (tmp_path / "a.csv").read_text() == "new a" and (tmp_path / "b.csv").read_text() == "new b"
    assert not (tmp_path / "c.csv").exists()
    orphan = tmp_path / "sub" / ".staged-0123456789ab-FC.csv"  # left by a kill -9
    orphan.parent.mkdir()
    orphan.write_text("x")
    os.utime(orphan, (0, 0))
    assert remove_orphan_temporaries(tmp_path) == 1 and not orphan.exists()


def test_chart_region_names_of_another_count_are_refused_before_fitting(monkeypatch) -> None:
    from delssome_norms.datasets import load_reference_table
    from delssome_norms.norms import GrowthChart, chart_fit

    table = load_reference_table().iloc[:300, :].copy()
    n_roi = sum(str(c).startswith("ei_ratio_roi_") for c in table.columns)

    def no_fit(*a, **k):
        raise AssertionError("the fit ran before the names were checked")

    monkeypatch.setattr(chart_fit, "fit_gamlss", no_fit)
    with pytest.raises(InvalidInputError, match=f"names 3 regions but the table has {n_roi}"):
        GrowthChart(family="NO").fit(table, regions=["a", "b", "c"])


def test_generate_on_an_sc_array_names_it_as_such(tmp_path) -> None:
    """From Python, an SC array given without a name was called "no --sc: the default template"
    and the advice said to continue with no --sc."""
    import json

    from delssome_norms.surrogate import dataset
    from delssome_norms.surrogate.generate import GenerateSettings, _check_same_generation

    manifest = {
        "kind": dataset.DATASET_KIND,
        "format_version": dataset.DATASET_FORMAT_VERSION,
        "shards": [],
        "n_regions": 4,
        "bins": 10,
        "info": {"sc_sha256": "aaa", "template": "user SC", "settings": {}},
    }
    (tmp_path / dataset.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(InvalidInputError, match="the same SC array") as err:
        _check_same_generation(tmp_path, GenerateSettings(), "bbb", "an SC array given without a name")
    assert "no --sc" not in err.value.problem


def test_chart_region_matching_mixes_spellings_and_names_what_differs() -> None:
    import pandas as pd

    from delssome_norms.norms.chart_regions import align_table_regions

    class Chart:
        def __init__(self) -> None:
            self.provenance_ = {"atlas": {"regions": ["L_alpha", "netX", "R_beta"]}}

    table = pd.DataFrame({"ei_ratio_roi_0": [1.0], "ei_ratio_roi_1": [2.0], "ei_ratio_roi_2": [3.0]})
    # the same regions, spelled otherwise and in another order: matched by name
    with pytest.warns(Warning, match="another order"):
        got, _ = align_table_regions(Chart(), table, None, ["netX", "rh_beta", "lh_alpha"])
    assert [got[f"ei_ratio_roi_{k}"].iloc[0] for k in range(3)] == [3.0, 1.0, 2.0]
    with pytest.raises(InvalidInputError, match=r"netY \(ei_ratio_roi_0\) is not among") as err:
        align_table_regions(Chart(), table, None, ["netY", "rh_beta", "ctx-lh-alpha"])
    assert "ctx-lh-alpha" not in err.value.problem  # present, only spelled otherwise
    with pytest.raises(InvalidInputError, match="more than once"):
        align_table_regions(Chart(), table, None, ["netX", "netX", "lh_alpha"])


def test_sex_tests_report_a_diverged_target_instead_of_crashing() -> None:
    """A target constant at one site makes its fit diverge (NaN residuals): the row must say
    converged False with p NaN, as documented, not raise about an argument 'a'."""
    import warnings

    import pandas as pd

    from delssome_norms.stats import sex_difference_tests

    rng = np.random.default_rng(3)
    n = 60
    sex = np.array(["F", "M"] * (n // 2))
    site = np.repeat(["a", "b", "c"], n // 3)
    y = rng.normal(1, 0.1, n)
    y[site == "c"] = 1.0
    table = pd.DataFrame(
        {
            "age_in_years": rng.uniform(10, 80, n),
            "sex": sex,
            "site": site,
            "ei_ratio_mean": rng.normal(1, 0.1, n),
            "ei_ratio_roi_1": y,
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = sex_difference_tests(table, site="site")
    good = rows[rows["target"] == "ei_ratio_mean"]
    assert good["converged"].all() and good["p"].notna().all()
    bad = rows[rows["target"] == "ei_ratio_roi_1"]
    assert not bad["converged"].all() and bad.loc[~bad["converged"], "p"].isna().all()


def test_second_review_of_the_sweeps_keeps_valid_inputs_working() -> None:
    """Inputs the API sweeps refused or changed although they were valid."""
    from delssome_norms.model import scale_sc
    from delssome_norms.surrogate.generate import GenerateSettings
    from delssome_norms.surrogate.train import TrainSettings

    binary = torch.tensor([[0, 1, 1], [1, 0, 0], [1, 0, 0]]) > 0  # a binarised SC
    np.testing.assert_allclose(scale_sc(binary).numpy(), 0.02 * binary.numpy())
    counts = torch.tensor([[0, 3, 1], [3, 0, 2], [1, 2, 0]])
    assert scale_sc(counts).dtype == torch.float32  # the tensor's own arithmetic, as before
    np.testing.assert_allclose(scale_sc(counts).numpy(), counts.numpy() / 3 * 0.02, rtol=1e-6)
    with pytest.raises(InvalidInputError, match=r"scan length 10 s is too short") as err:
        GenerateSettings(scan_lengths=(300, 10))
    assert err.value.source == "scan_lengths"
    with pytest.raises(InvalidInputError, match="lr must be a number"):
        TrainSettings(lr="x")


def test_max_points_zero_draws_the_curves_alone() -> None:
    from delssome_norms.plotting._style import check_max_points

    assert check_max_points(0) == 0
    with pytest.raises(InvalidInputError, match="max_points"):
        check_max_points(-1)


def test_prepare_bids_select_picks_one_atlas_of_xcpd_output(tmp_path, capsys) -> None:
    """XCP-D writes one time series per atlas (seg-Desikan, seg-Glasser, ...) for every run:
    prepare --bids-dir refused the folder with no way to pick one but a folder of symlinks."""
    import json

    import pandas as pd

    from delssome_norms.cli.main import main
    from delssome_norms.datasets import DK68_REGIONS

    root = tmp_path / "bids"
    for k, sub in enumerate(("01", "02")):
        func = root / f"sub-{sub}" / "func"
        func.mkdir(parents=True)
        rng = np.random.default_rng(k)
        for seg, n in (("Desikan", 68), ("Glasser", 360)):
            ts = rng.standard_normal((120, n)) + rng.standard_normal((120, 1))
            cols = list(DK68_REGIONS) if n == 68 else [f"p{j}" for j in range(n)]
            name = f"sub-{sub}_task-rest_space-fsLR_seg-{seg}_stat-mean_timeseries"
            pd.DataFrame(ts, columns=cols).to_csv(func / f"{name}.tsv", sep="\t", index=False)
            (func / f"{name}.json").write_text(json.dumps({"RepetitionTime": 0.8}))
    out = tmp_path / "prep"
    argv = ["prepare", "--bids-dir", str(root), "--out-dir", str(out)]
    assert main(argv) == 2
    assert "--select seg-Desikan" in capsys.readouterr().err
    assert main([*argv, "--select", "seg-Nope"]) == 2
    assert "found: seg-Desikan, seg-Glasser" in capsys.readouterr().err
    assert main([*argv, "--select", "seg-Desikan"]) == 0
    manifest = pd.read_csv(out / "manifest.csv")
    assert manifest["subject_id"].tolist() == ["sub-01", "sub-02"]
    assert np.loadtxt(out / "sub-01_FC.csv", delimiter=",").shape == (68, 68)


def test_too_few_people_for_a_chart_counts_every_target() -> None:
    import pandas as pd

    from delssome_norms.datasets import load_reference_table
    from delssome_norms.norms import GrowthChart

    full = load_reference_table()
    table = pd.concat([full[full["sex"] == s].iloc[:3] for s in ("female", "male")])
    n_targets = 1 + sum(str(c).startswith("ei_ratio_roi_") for c in table.columns)
    with pytest.raises(InvalidInputError, match=rf"and {n_targets - 5} more \(fewest 6 values"):
        GrowthChart().fit(table)


def test_a_flagged_person_s_label_stays_inside_their_panel() -> None:
    """The label of a person with three flags was wider than a panel and covered the y axis."""
    from delssome_norms.norms import load_reference_chart
    from delssome_norms.plotting import plot_chart_centiles

    person = {"subject_id": "sub-05", "sex": "female", "age_in_years": 80.0, "value": 5.4}
    person |= {"centile": 0.999, "flag": "unseen_site;poor_fit;interval_uncalibrated"}
    fig = plot_chart_centiles(load_reference_chart(), person=person)
    fig.draw_without_rendering()
    ax = fig.axes[0]
    (note,) = [t for t in ax.texts if "sub-05" in t.get_text()]
    box, panel = note.get_window_extent(), ax.get_window_extent()
    assert panel.x0 <= box.x0 and box.x1 <= panel.x1
