"""A header that numbers the columns (one prefix and 0..n-1 or 1..n) numbers the atlas's regions
in ANY order: columns (and an SC's rows) are put in numeric order, with a warning when they were
not in it; repeats are refused; numbers with gaps, and several prefixes, are an atlas's own
names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit.subject import load_subject
from delssome_norms.io.named_inputs import named_pandas
from delssome_norms.io.readers import read_map, read_sc
from delssome_norms.io.region_names import header_kind
from delssome_norms.io.timeseries import read_timeseries

TR = 0.72


def _ts(n: int, frames: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(n, n)) / np.sqrt(n)
    return rng.normal(size=(frames, n)) @ (np.eye(n) + mix)  # correlated regions


def _sc(n: int, seed: int = 1) -> np.ndarray:
    sc = np.random.default_rng(seed).uniform(0.1, 1.0, (n, n))
    sc = (sc + sc.T) / 2
    np.fill_diagonal(sc, 0.0)
    return sc


@pytest.mark.parametrize(("n", "label"), [(10, "roi_{}"), (68, "roi_{}"), (68, "R{}")])
def test_a_time_series_numbered_in_another_order_gives_the_fc_of_the_ordered_one(
    tmp_path: Path, n: int, label: str
) -> None:
    x = _ts(n)
    start = 1 if label == "roi_{}" else 0
    perm = np.random.default_rng(2).permutation(n)
    shuffled, ordered = tmp_path / "shuffled.tsv", tmp_path / "ordered.tsv"
    pd.DataFrame(x[:, perm], columns=[label.format(k + start) for k in perm]).to_csv(
        shuffled, sep="\t", index=False
    )
    pd.DataFrame(x, columns=[label.format(k + start) for k in range(n)]).to_csv(
        ordered, sep="\t", index=False
    )
    with pytest.warns(InputWarning, match="in another order .*; put in numeric order"):
        got = read_timeseries(shuffled)
    np.testing.assert_array_equal(got, x)
    sc = tmp_path / "sc.csv"
    np.savetxt(sc, _sc(n), delimiter=",")  # (the template SC is DK68's)
    with pytest.warns(InputWarning, match="another order"):
        s = load_subject("s", TR, None, timeseries=str(shuffled), sc=str(sc))
    ref = load_subject("s", TR, None, timeseries=str(ordered), sc=str(sc))
    np.testing.assert_allclose(s.fc, np.corrcoef(x.T), atol=1e-6)
    np.testing.assert_allclose(s.fc, ref.fc, atol=1e-12)
    assert s.regions == ref.regions  # no names either way (DK68 by size for 68)


def test_an_sc_numbered_in_another_order_is_reordered_on_both_axes(tmp_path: Path) -> None:
    n = 12
    sc = _sc(n)
    perm = np.random.default_rng(3).permutation(n)
    names = [f"roi_{k + 1}" for k in perm]
    moved = sc[np.ix_(perm, perm)]
    with_index, header_only, numeric = (tmp_path / f"{k}.csv" for k in ("a", "b", "c"))
    pd.DataFrame(moved, columns=names, index=names).to_csv(with_index)
    pd.DataFrame(moved, columns=names).to_csv(header_only, index=False)
    pd.DataFrame(moved, columns=perm, index=perm).to_csv(numeric)  # pandas' own numbering
    for path in (with_index, header_only, numeric):
        with pytest.warns(InputWarning, match="in another order.*; put in numeric order"):
            np.testing.assert_array_equal(read_sc(path), sc)
    # rows named in yet another order than the columns: each axis by its own names
    rows = np.random.default_rng(4).permutation(n)
    mixed = tmp_path / "mixed.csv"
    pd.DataFrame(sc[np.ix_(rows, perm)], columns=names, index=[f"roi_{k + 1}" for k in rows]).to_csv(
        mixed
    )
    with pytest.warns(InputWarning):
        np.testing.assert_array_equal(read_sc(mixed), sc)


def test_a_map_and_a_dataframe_numbered_in_another_order_are_reordered(tmp_path: Path) -> None:
    n = 10
    values = np.arange(n, dtype=float) * 1.5 + 2.0
    perm = np.random.default_rng(5).permutation(n)
    path = tmp_path / "myelin.csv"
    pd.DataFrame([values[perm]], columns=[f"parcel{k}" for k in perm]).to_csv(path, index=False)
    with pytest.warns(InputWarning, match="another order"):
        np.testing.assert_array_equal(read_map(path), values)
    sc = _sc(n)
    labels = [f"roi_{k + 1}" for k in perm]
    with pytest.warns(InputWarning, match="another order"):
        got = named_pandas(pd.DataFrame(sc[np.ix_(perm, perm)], index=labels, columns=labels), "sc")
    assert got is not None and got.kind == "numbered"
    np.testing.assert_array_equal(got.values, sc)
    assert got.names == tuple(f"roi_{k + 1}" for k in range(n))


def test_one_subject_numbered_in_order_or_not_gets_the_same_inputs(tmp_path: Path) -> None:
    # the FC numbered R00..R09 in order, the SC R09..R00: the same subject as with both in order
    n = 10
    x, sc = _ts(n), _sc(n)
    cols = [f"R{k:02d}" for k in range(n)]
    ts = tmp_path / "ts.tsv"
    pd.DataFrame(x, columns=cols).to_csv(ts, sep="\t", index=False)
    rev = np.arange(n)[::-1]
    ordered, reversed_ = tmp_path / "sc_ordered.csv", tmp_path / "sc_reversed.csv"
    pd.DataFrame(sc, columns=cols).to_csv(ordered, index=False)
    pd.DataFrame(sc[np.ix_(rev, rev)], columns=[cols[k] for k in rev]).to_csv(reversed_, index=False)
    a = load_subject("s", TR, None, timeseries=str(ts), sc=str(ordered))
    with pytest.warns(InputWarning, match="sc_reversed.csv: its column names number"):
        b = load_subject("s", TR, None, timeseries=str(ts), sc=str(reversed_))
    np.testing.assert_array_equal(b.sc, a.sc)
    assert b.regions == a.regions
    # and beside maps without a header (atlas order by contract) it is accepted: the same order
    myelin, gradient = tmp_path / "myelin.csv", tmp_path / "gradient.csv"
    np.savetxt(myelin, np.linspace(1.0, 2.0, n))
    np.savetxt(gradient, np.linspace(-1.0, 1.0, n))
    with pytest.warns(InputWarning, match="another order"):
        c = load_subject(
            "s", TR, None, timeseries=str(ts), sc=str(reversed_),
            myelin=str(myelin), gradient=str(gradient),
        )  # fmt: skip
    np.testing.assert_array_equal(c.sc, sc)
    np.testing.assert_array_equal(c.myelin, np.linspace(1.0, 2.0, n))


@pytest.mark.parametrize(
    ("tokens", "said"),
    [
        (["roi_1", "roi_2", "roi_2", "roi_3"], "repeated: 2"),
        (["R0", "R2", "R1", "R2"], "repeated: 2"),
    ],
)
def test_a_numbering_with_repeats_is_refused(tmp_path: Path, tokens: list[str], said: str) -> None:
    path = tmp_path / "ts.tsv"
    pd.DataFrame(_ts(len(tokens)), columns=tokens).to_csv(path, sep="\t", index=False)
    with pytest.raises(InvalidInputError, match="with repeats") as info:
        read_timeseries(path)
    assert info.value.source == str(path) and said in info.value.problem
    sc = tmp_path / "sc.csv"
    pd.DataFrame(_sc(len(tokens)), columns=tokens).to_csv(sc, index=False)
    with pytest.raises(InvalidInputError, match="with repeats"):
        read_sc(sc)
    with pytest.raises(InvalidInputError, match="with repeats"):
        named_pandas(pd.DataFrame(_sc(len(tokens)), columns=tokens), "sc")


@pytest.mark.parametrize(
    "tokens",
    [
        ["roi_1", "roi_2", "roi_4", "roi_5"],  # a region dropped: the others keep their names
        [f"Mean_{v}" for v in (2001, 2002, 2101, 2102, 2111, 2112)],  # AAL label values
    ],
)
def test_numbers_with_gaps_are_an_atlas_s_own_names(tokens: list[str]) -> None:
    arr = _ts(len(tokens))
    got, values, kind = header_kind(list(tokens), arr, "ts.csv", n_atlas=68)
    assert kind == "own" and got == tokens
    np.testing.assert_array_equal(values, arr)


def test_68_numbered_columns_with_a_gap_are_refused_as_unknown_names() -> None:
    tokens = [f"roi_{k}" for k in range(1, 68)] + ["roi_70"]
    with pytest.raises(InvalidInputError, match="unknown"):
        header_kind(tokens, _ts(68), "ts.csv")


def test_several_prefixes_stay_names_and_freesurfer_ids_stay_dk68() -> None:
    names = ["SomMot_2", "Vis_1", "Limbic_4", "DorsAttn_3", "Default_5"]  # shuffled, own names
    arr = _ts(5)
    got, values, kind = header_kind(list(names), arr, "ts.csv", n_atlas=68)
    assert (got, kind) == (names, "own")
    np.testing.assert_array_equal(values, arr)
    from delssome_norms.io.regions import DK68_REGIONS, FREESURFER_DK_IDS

    ids = list(FREESURFER_DK_IDS)[::-1]  # label IDs, with their gaps, in any order
    got, _, kind = header_kind([f"Mean_{k}" for k in ids], _ts(68), "ts.csv")
    assert kind == "dk" and sorted(got) == sorted(DK68_REGIONS)
    assert got[0] == FREESURFER_DK_IDS[ids[0]]
    aseg = [10, 11, 12, 49, 50]  # subcortical labels beside the 68: still label IDs, not gaps
    got, _, kind = header_kind([f"Mean_{k}" for k in aseg + ids], _ts(73), "ts.csv")
    assert kind == "dk" and got[:5] == [str(k) for k in aseg]
    lh = [k for k in ids if k < 2000]  # one hemisphere's IDs: not refused as a gappy numbering
    assert header_kind([f"Mean_{k}" for k in lh], _ts(len(lh)), "ts.csv")[2] in ("dk", "own")
