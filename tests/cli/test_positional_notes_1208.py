"""Inputs taken by position, said once (review of 2024-12-08).

1. A header-less 68-column time series is taken to be in DK68 order: prepare, validate and
   estimate-ei say so in one warning per command (listing every such run), as an unnamed SC is
   said to be taken in a named input's order.
2. A table naming no regions scored by position against a chart that names the DK68 regions (the
   reference chart) gets stats' warning, once.
3. estimate-ei warns, before the fit, when --subject-id is not the --out-dir folder's name
   (collect looks results up by folder name).
4. The time-series readers name a region by its header name and say how they count columns.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InvalidInputError
from delssome_norms.io.timeseries import read_timeseries

BY_POSITION = "are taken to be the DK68 regions in the packaged order (docs/inputs.md)"


def _frames(seed: int, frames: int = 150, regions: int = 68) -> np.ndarray:
    rng = np.random.default_rng(seed)
    common = rng.standard_normal((frames, 1))
    return rng.standard_normal((frames, regions)) + 0.5 * common


def _headerless(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, _frames(seed), delimiter="\t")
    return path


def _named(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(_frames(seed), columns=list(DK68_REGIONS)).to_csv(path, sep="\t", index=False)
    return path


def _run(argv: list[str], capsys) -> tuple[int, str, list[str]]:
    """Exit status, stderr and every warning the command issued (each once: as the CLI shows
    them, duplicates from one place are not repeated)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(argv)
    return code, capsys.readouterr().err, [str(w.message) for w in caught]


def _said(said: list[str], text: str) -> list[str]:
    return [w for w in said if text in w]


# ------------------------------------------------------------------ 1: DK68 by position


def test_prepare_says_once_that_headerless_runs_are_dk68_by_position(tmp_path, capsys) -> None:
    run1 = _headerless(tmp_path / "run1.tsv", 1)
    run2 = _headerless(tmp_path / "run2.tsv", 2)
    argv = ["prepare", "--timeseries", str(run1), str(run2), "--tr", "2", "--out-dir"]
    code, _, said = _run([*argv, str(tmp_path / "o")], capsys)
    assert code == 0
    lines = _said(said, BY_POSITION)
    assert lines == [
        f"{run1}, {run2} name no regions: their 68 columns {BY_POSITION}; give them a header row "
        "of region names (TSV or CSV) to have them matched by name"
    ]
    # the FC is written header-less all the same (the reference layout)
    fc = np.loadtxt(tmp_path / "o" / "FC.csv", delimiter=",")
    assert fc.shape == (68, 68)
    # runs with a header of DK68 names are matched by name: nothing to say
    named = _named(tmp_path / "named.tsv", 3)
    code, _, said = _run(
        ["prepare", "--timeseries", str(named), "--tr", "2", "--out-dir", str(tmp_path / "n")], capsys
    )
    assert code == 0 and not _said(said, "name no regions") and not _said(said, BY_POSITION)


def test_prepare_bids_lists_every_headerless_run_in_one_warning(tmp_path, capsys) -> None:
    bids = tmp_path / "bids"
    runs = [
        _headerless(bids / f"sub-0{k}" / "func" / f"sub-0{k}_task-rest_timeseries.tsv", k)
        for k in (1, 2)
    ]
    argv = ["prepare", "--bids-dir", str(bids), "--tr", "2", "--out-dir", str(tmp_path / "o")]
    code, _, said = _run(argv, capsys)
    assert code == 0
    lines = _said(said, BY_POSITION)
    assert len(lines) == 1 and lines[0].startswith(f"{runs[0]}, {runs[1]} name no regions")


def test_validate_says_headerless_68_columns_are_dk68(tmp_path, capsys) -> None:
    run = _headerless(tmp_path / "noheader.tsv", 1)
    code, _, said = _run(["validate", "--timeseries", str(run), "--tr", "2"], capsys)
    assert code == 0
    assert _said(said, BY_POSITION) == [
        f"{run} names no regions: its 68 columns {BY_POSITION}; give it a header row of region "
        "names (TSV or CSV) to have them matched by name"
    ]
    named = _named(tmp_path / "named.tsv", 2)
    code, _, said = _run(["validate", "--timeseries", str(named), "--tr", "2"], capsys)
    assert code == 0 and not _said(said, BY_POSITION)


def test_runs_taken_in_another_inputs_order_are_not_said_to_be_dk68() -> None:
    """An SC naming another atlas's regions: the unnamed runs are taken in its order, which
    warn_unnamed says; the DK68 note would be wrong there."""
    from delssome_norms.io.named_regions import Named
    from delssome_norms.io.timeseries import dk68_by_position

    run = Named(np.zeros((10, 68)))
    assert dk68_by_position({"r.tsv": run}, ["r.tsv"]) == ["r.tsv"]
    assert dk68_by_position({"r.tsv": Named(np.zeros((10, 20)))}, ["r.tsv"]) == []  # not 68
    own = Named(np.zeros((68, 68)), tuple(f"P{k}_x" for k in range(68)), "own")
    assert dk68_by_position({"r.tsv": run, "sc.csv": own}, ["r.tsv"]) == []
    dk = Named(np.zeros((68, 68)), tuple(DK68_REGIONS), "dk")  # a DK68 SC in DK68 order
    assert dk68_by_position({"r.tsv": run, "sc.csv": dk}, ["r.tsv"]) == ["r.tsv"]


class _Stop(Exception):
    """Raised instead of the fit: the warnings before it are what is checked."""


@pytest.fixture
def no_fit(monkeypatch):
    from delssome_norms.pipeline import EIEstimator

    def stop(self, *args, **kwargs):
        raise _Stop

    monkeypatch.setattr(EIEstimator, "fit_subject", stop)


def test_estimate_ei_says_headerless_runs_are_dk68(tmp_path, capsys, no_fit) -> None:
    run = _headerless(tmp_path / "noheader.tsv", 1)
    argv = ["--debug", "estimate-ei", "--timeseries", str(run), "--tr", "2", "--out-dir"]
    with warnings.catch_warnings(record=True) as caught, pytest.raises(_Stop):
        warnings.simplefilter("always")
        main([*argv, str(tmp_path / "sub-01")])
    lines = _said([str(w.message) for w in caught], BY_POSITION)
    assert lines == [
        f"{run} names no regions: its 68 columns {BY_POSITION}; give it a header row of region "
        "names (TSV or CSV) to have them matched by name"
    ]
    named = _named(tmp_path / "named.tsv", 2)
    argv = ["--debug", "estimate-ei", "--timeseries", str(named), "--tr", "2", "--out-dir"]
    with warnings.catch_warnings(record=True) as caught, pytest.raises(_Stop):
        warnings.simplefilter("always")
        main([*argv, str(tmp_path / "sub-02")])
    assert not _said([str(w.message) for w in caught], BY_POSITION)


# ------------------------------------------------------------------ 3: subject id vs folder


def test_estimate_ei_warns_when_the_subject_id_is_not_the_folder_name(tmp_path, capsys, no_fit) -> None:
    run = _named(tmp_path / "run.tsv", 1)
    out = tmp_path / "A1 fit"
    argv = ["--debug", "estimate-ei", "--timeseries", str(run), "--tr", "2", "--out-dir"]
    with warnings.catch_warnings(record=True) as caught, pytest.raises(_Stop):
        warnings.simplefilter("always")
        main([*argv, str(out), "--subject-id", "A1"])
    lines = _said([str(w.message) for w in caught], "--subject-id")
    assert lines == [
        "--subject-id A1 is not the name of the --out-dir folder ('A1 fit'): collect looks for "
        "each subject's results in the folder named like its subject id (A1), so it will not "
        f"find this fit; give --out-dir {tmp_path / 'A1'} to collect it"
    ]
    # the folder named like the subject: nothing to say
    with warnings.catch_warnings(record=True) as caught, pytest.raises(_Stop):
        warnings.simplefilter("always")
        main([*argv, str(tmp_path / "A1"), "--subject-id", "A1"])
    assert not _said([str(w.message) for w in caught], "--subject-id")


def test_a_refused_input_gives_no_subject_id_warning(tmp_path, capsys) -> None:
    """The warning comes before the fit, once the inputs pass: not beside a refusal."""
    missing = tmp_path / "none.tsv"
    argv = ["estimate-ei", "--timeseries", str(missing), "--tr", "2", "--out-dir"]
    code, err, said = _run([*argv, str(tmp_path / "x"), "--subject-id", "A1"], capsys)
    assert code == 2 and "none.tsv" in err and not _said(said, "--subject-id A1 is not")


# ------------------------------------------------------------------ 2: charts by position


def _unnamed_table(folder: Path, n: int = 40) -> Path:
    """A collected table copied without its side files: 68 unnamed regional columns."""
    from delssome_norms.datasets import load_reference_table

    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "cohort_ei.csv"
    load_reference_table().sample(n=n, random_state=2).to_csv(table, index=False)
    return table


STATS_TEXT = (
    "its 68 regional columns name no regions, so they are taken to be the DK68 regions in DK68 "
    f"order (ei_ratio_roi_0 = {DK68_REGIONS[0]}, ...)"
)


def test_charts_score_says_a_table_naming_no_regions_is_dk68_by_position(tmp_path, capsys) -> None:
    table = _unnamed_table(tmp_path / "lone")
    argv = ["charts", "score", "--chart", "reference", "--table", str(table), "--out"]
    code, _, said = _run([*argv, str(tmp_path / "s.csv")], capsys)
    assert code == 0
    lines = _said(said, STATS_TEXT)
    assert lines == [
        f"{table}: {STATS_TEXT}; if the table is of another 68-region atlas, give its region "
        "names (cohort_ei.regions.csv beside it, with the columns column, region_index, region)"
    ]
    # in stats' words, as stats reads such a table (cli/stats_cmd._read's hint)
    from delssome_norms.io import ei_table as et
    from delssome_norms.stats._cohort import warn_dk68_by_position

    how = "cohort_ei.regions.csv beside it, with the columns column, region_index, region"
    with pytest.warns(Warning) as stats_said:
        warn_dk68_by_position(str(table), how)
    assert [str(w.message) for w in stats_said] == lines
    # with its regions.csv the table names its regions: nothing to say

    et.regions_frame(list(DK68_REGIONS)).to_csv(tmp_path / "lone" / "cohort_ei.regions.csv", index=False)
    code, _, said = _run([*argv, str(tmp_path / "s2.csv")], capsys)
    assert code == 0 and not _said(said, "name no regions")


def test_charts_plot_says_it_once(tmp_path, capsys) -> None:
    table = _unnamed_table(tmp_path / "lone")
    subject = pd.read_csv(table)["subject_id"].iloc[0]
    argv = ["charts", "plot", "--chart", "reference", "--table", str(table), "--subject"]
    code, _, said = _run(
        [*argv, str(subject), "--target", "ei_ratio_roi_3", "--out", str(tmp_path / "p.png")],
        capsys,
    )
    lines = _said(said, STATS_TEXT)
    assert code == 0 and len(lines) == 1  # the points and the person: one table, said once
    assert lines[0].startswith(f"{table} (--table): {STATS_TEXT}")
    assert lines[0].endswith(
        "(cohort_ei.regions.csv beside it, with the columns column, region_index, region)"
    )


def test_chart_score_in_python_says_it_and_not_for_a_chart_without_names() -> None:
    from delssome_norms.datasets import load_reference_table
    from delssome_norms.norms.reference import load_reference_chart

    chart = load_reference_chart()
    table = load_reference_table().sample(n=30, random_state=3).reset_index(drop=True)
    table.attrs = {}  # as read from a file without side files: nothing says it is DK68
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chart.score(table, targets=["ei_ratio_roi_0"], source="t.csv")
        chart.score(table, targets=["ei_ratio_roi_0"], source="t.csv")  # the same table: once
    lines = _said([str(w.message) for w in caught], STATS_TEXT)
    assert lines == [
        f"t.csv: {STATS_TEXT}; if the table is of another 68-region atlas, give its region "
        "names (regions=, or the table's regions.csv)"
    ]
    # the packaged cohort says it is DK68: nothing to say
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chart.score(load_reference_table().head(20), targets=["ei_ratio_roi_0"], source="ref")
    assert not _said([str(w.message) for w in caught], STATS_TEXT)


# ------------------------------------------------------------------ 4: column wording


def test_nan_and_constant_columns_say_how_they_count_and_name_the_region(tmp_path) -> None:
    frames = _frames(4)
    nan, const = frames.copy(), frames.copy()
    nan[:, 5] = np.nan
    const[:, 10] = 1.0
    np.savetxt(tmp_path / "nan.tsv", nan, delimiter="\t")
    np.savetxt(tmp_path / "const.tsv", const, delimiter="\t")
    pd.DataFrame(nan, columns=list(DK68_REGIONS)).to_csv(tmp_path / "nann.tsv", sep="\t", index=False)
    pd.DataFrame(const, columns=list(DK68_REGIONS)).to_csv(
        tmp_path / "constn.tsv", sep="\t", index=False
    )
    expected = {
        "nan.tsv": "region column 6 has no value in any frame (all n/a; columns counted from 1)",
        "nann.tsv": f"region column 6 ({DK68_REGIONS[5]}) has no value in any frame (all n/a; "
        "columns counted from 1)",
        # header-less: counted from 1 as the n/a column is (was "10 (counted from 0 ...)")
        "const.tsv": "region column 11 is constant over every frame (columns counted from 1)",
        "constn.tsv": f"region column 11 ({DK68_REGIONS[10]}) is constant over every frame "
        "(columns counted from 1)",
    }
    for name, text in expected.items():
        with warnings.catch_warnings(), pytest.raises(InvalidInputError) as info:
            warnings.simplefilter("ignore")
            read_timeseries(tmp_path / name)
        assert text in str(info.value), (name, str(info.value))


def test_another_atlas_constant_column_is_named_by_its_header(tmp_path) -> None:
    data = _frames(5, regions=20)
    data[:, 3] = 2.0
    names = [f"{('Vis', 'SomMot', 'Limbic', 'Cont')[k % 4]}_{k}" for k in range(20)]
    pd.DataFrame(data, columns=names).to_csv(tmp_path / "own.tsv", sep="\t", index=False)
    with warnings.catch_warnings(), pytest.raises(InvalidInputError) as info:
        warnings.simplefilter("ignore")
        read_timeseries(tmp_path / "own.tsv")
    assert "region column 4 (Cont_3) is constant over every frame (columns counted from 1)" in str(
        info.value
    )
