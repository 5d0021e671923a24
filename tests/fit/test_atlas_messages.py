"""Messages about another atlas's inputs (review of a 40-region Schaefer-like atlas).

F3: a cohort's group-average FC whose affinity graph falls apart is refused naming that FC (the
average of which subjects), its parts by region name and what to do; a subject's own FC names
the parts by FC row. F4: an input without region names beside a named one is taken to be in the
named one's order with one InputWarning (and ``validate`` says so, instead of "matched by
name"); no warning when every input is unnamed or the named ones list the DK68 regions in DK68
order. F7: 68 unnamed regional columns given DK68 names by position in the statistics get one
InputWarning; the packaged reference table (DK68 by construction) gets none.
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS, load_reference_table
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit.cohort_fc import cohort_gradient
from delssome_norms.fit.design import diffusion_gradient
from delssome_norms.io.named_regions import Named, match_inputs
from delssome_norms.pipeline.estimator import subject_from_arrays
from delssome_norms.stats._cohort import table_regions, target_regions

N = 12
VIS = [f"Vis_{k}" for k in range(1, 7)]
SOM = [f"SomMot_{k}" for k in range(1, 7)]
FILE_NAMES = [name for pair in zip(VIS, SOM) for name in pair]  # Vis_1, SomMot_1, Vis_2, ...
"""Region names in file order: the two networks interleaved, so that the parts of a graph that
falls apart are not runs of rows."""


def _two_networks_fc(seed: int = 0) -> np.ndarray:
    """FC of two networks (even rows: Vis, odd rows: SomMot) that do not correlate with each
    other: its affinity graph falls apart into the two."""
    rng = np.random.default_rng(seed)
    net = np.arange(N) % 2
    fc = np.where(net[:, None] == net[None, :], 0.6, -0.1) + 0.02 * rng.standard_normal((N, N))
    fc = 0.5 * (fc + fc.T)
    np.fill_diagonal(fc, 1.0)
    return fc


def _no_input_warnings(record: list[warnings.WarningMessage], text: str) -> list[str]:
    return [
        str(w.message) for w in record if issubclass(w.category, InputWarning) and text in str(w.message)
    ]


# --------------------------------------------------------------------------------------- F3


def test_cohort_gradient_refusal_names_the_group_average_its_parts_and_the_remedy(
    tmp_path: Path,
) -> None:
    rows = []
    for k in range(3):
        path = tmp_path / f"sub-0{k + 1}_FC.csv"
        pd.DataFrame(_two_networks_fc(k), index=FILE_NAMES, columns=FILE_NAMES).to_csv(path)
        rows.append({"subject_id": f"sub-0{k + 1}", "fc": str(path)})
    plan = SimpleNamespace(rows=rows, n_regions=N)
    with pytest.raises(InvalidInputError) as err:
        cohort_gradient(plan, "fc-gradient")
    msg = str(err.value)
    assert err.value.source == "cohort FC gradient"
    assert "group-average FC of 3 subject(s) (sub-01, sub-02, sub-03)" in msg
    assert "3 subject(s) without maps" in msg
    assert "falls apart into 2 disconnected parts" in msg
    # the parts by region name (file order), each network one part
    assert "6 regions: Vis_1, Vis_2, Vis_3, ...; 6 regions: SomMot_1, SomMot_2, SomMot_3, ..." in msg
    assert "two hemispheres" not in msg
    assert "manifest's myelin and gradient columns" in msg and "12-region atlas" in msg
    assert "cohort --help" in msg


def test_a_subjects_own_fc_refusal_names_the_parts_by_row_and_every_way_to_give_maps() -> None:
    fc = _two_networks_fc()
    with pytest.raises(InvalidInputError) as err:
        diffusion_gradient(fc)
    msg = str(err.value)
    assert msg.startswith("FC: ")
    assert "falls apart into 2 disconnected parts" in msg
    # rows 1-based: the even rows (0, 2, ...) are one part, the odd rows the other
    assert "6 regions: rows 1, 3, 5, 7, ...; 6 regions: rows 2, 4, 6, 8, ..." in msg
    assert "two hemispheres" not in msg
    assert "--myelin and --gradient" in msg and "myelin= and gradient= in Python" in msg
    assert [list(p) for p in getattr(err.value, "parts", None) or ()] == [
        list(range(0, N, 2)),
        list(range(1, N, 2)),
    ]
    with pytest.raises(InvalidInputError, match=re.escape("6 regions: Vis_1, Vis_2, Vis_3, ...")):
        diffusion_gradient(fc, regions=FILE_NAMES)
    back = pickle.loads(pickle.dumps(err.value))  # a Dask worker's error keeps its message
    assert str(back) == msg


# --------------------------------------------------------------------------------------- F4


def _subject_arrays(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = rng.standard_normal((40, N)) + 0.6 * rng.standard_normal((40, 1))
    fc = np.corrcoef(ts.T)
    cdf = np.cumsum(np.full(10000, 1.0))
    cdf /= cdf[-1]
    sc = np.random.default_rng(1).random((N, N)) ** 2
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0.0)
    return fc, cdf, sc


def test_python_numpy_fc_beside_a_labelled_sc_warns_once_that_it_takes_the_scs_order() -> None:
    fc, cdf, sc = _subject_arrays()
    perm = np.random.default_rng(3).permutation(N)
    names = [FILE_NAMES[k] for k in perm]
    labelled = pd.DataFrame(sc[np.ix_(perm, perm)], index=names, columns=names)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        s = subject_from_arrays("sub-x", fc, cdf, tr=0.72, scan_length=28.8, sc=labelled)
    said = _no_input_warnings(record, "names no regions")
    assert len(said) == 1
    assert said[0].startswith("fc names no regions")
    assert f"region order of sc ({N} regions: '{names[0]}'" in said[0]
    assert s.regions == tuple(names)  # the behaviour itself is unchanged: now it is said
    # every input unnamed: the atlas order by contract, nothing to say
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        subject_from_arrays("sub-x", fc, cdf, tr=0.72, scan_length=28.8, sc=sc)
    assert not _no_input_warnings(record, "names no regions")


def _dk68(named_order: list[int] | None = None) -> dict[str, Named]:
    """A plain FC and an SC naming all DK68 regions (put in DK68 order by name; ``moved`` when
    the file listed them in another order)."""
    values = np.eye(68)
    moved = named_order is not None and named_order != list(range(68))
    return {
        "fc.csv": Named(values),
        "sc.csv": Named(values, tuple(DK68_REGIONS), "dk", moved),
    }


def test_dk68_data_in_dk68_order_beside_unnamed_files_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        names, orders = match_inputs(_dk68())
    assert names == tuple(DK68_REGIONS) and orders == {}
    with pytest.warns(
        InputWarning, match=r"fc\.csv names no regions.*DK68 order.*not the order of sc\.csv"
    ):
        match_inputs(_dk68(list(range(67, -1, -1))))


def test_validate_says_an_unnamed_fc_is_taken_in_the_named_scs_order(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    fc, _, sc = _subject_arrays()
    perm = np.random.default_rng(3).permutation(N)
    names = [FILE_NAMES[k] for k in perm]
    np.savetxt(tmp_path / "fc.csv", fc, delimiter=",")
    pd.DataFrame(sc[np.ix_(perm, perm)], index=names, columns=names).to_csv(tmp_path / "sc.csv")
    fc_path, sc_path = str(tmp_path / "fc.csv"), str(tmp_path / "sc.csv")
    with pytest.warns(InputWarning, match=r"fc\.csv names no regions, so its regions are taken"):
        assert main(["validate", "--fc", fc_path, "--sc", sc_path]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "region names" in x)
    assert "matched by name" not in line
    assert line == (
        f"ok  region names: {N}, from {sc_path}; {fc_path} names none and is taken to be in the "
        f"region order of {sc_path}"
    )


# --------------------------------------------------------------------------------------- F7


def _table(n_regions: int = 68) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    data = {"subject_id": [f"s{k}" for k in range(4)], "age_in_years": [20, 30, 40, 50]}
    data |= {"site": ["a", "a", "b", "b"]}
    data |= {f"ei_ratio_roi_{k}": rng.random(4) for k in range(n_regions)}
    return pd.DataFrame(data)


def test_68_unnamed_columns_get_dk68_names_with_one_warning_but_the_reference_table_none() -> None:
    table = _table()
    with pytest.warns(InputWarning, match="68 regional columns name no regions.*regions=") as record:
        assert table_regions(table) == list(DK68_REGIONS)
    assert len([w for w in record if "68 regional" in str(w.message)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        assert table_regions(table, list(DK68_REGIONS)) == list(DK68_REGIONS)  # named: no word
        assert target_regions(table, ["ei_ratio_mean"]) == (None,)  # no regional target
        reference = load_reference_table()  # attrs["synthetic"]: the packaged DK68 cohort
        assert table_regions(reference) == list(DK68_REGIONS)
        assert table_regions(reference.head(20)) == list(DK68_REGIONS)
        assert table_regions(_table(34)) is None  # not DK68-sized: not named at all


def test_stats_cli_read_warns_for_68_unnamed_columns_once_and_not_with_a_regions_file(
    tmp_path: Path,
) -> None:
    from delssome_norms.cli.stats_cmd import _read

    path = tmp_path / "cohort_ei.csv"
    _table().to_csv(path, index=False)
    with pytest.warns(InputWarning, match=r"cohort_ei\.csv: its 68 regional.*cohort_ei\.regions\.csv"):
        table, names, _ = _read(str(path))
    assert names == list(DK68_REGIONS)
    with warnings.catch_warnings():  # said once: the statistics do not say it again
        warnings.simplefilter("error", InputWarning)
        assert table_regions(table) == list(DK68_REGIONS)
    other = [f"Other_{k}" for k in range(68)]
    pd.DataFrame(
        {"column": [f"ei_ratio_roi_{k}" for k in range(68)], "region_index": range(68), "region": other}
    ).to_csv(tmp_path / "cohort_ei.regions.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        _, names, _ = _read(str(path))
        assert names == other
    # the packaged SYNTHETIC cohort written to a file says nothing of its atlas any more: warned,
    # as any 68 unnamed columns (its subject ids do not make it DK68)
    packaged = tmp_path / "reference.csv"
    load_reference_table().head(30).to_csv(packaged, index=False)
    with pytest.warns(InputWarning, match="taken to be the DK68 regions"):
        assert _read(str(packaged))[1] == list(DK68_REGIONS)
