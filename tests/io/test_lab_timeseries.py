"""Time series as labs write them: headers of numbers, label IDs or plain words, gaps, dropouts."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io import read_timeseries, read_timeseries_runs
from delssome_norms.io.regions import FREESURFER_DK_IDS

N = len(DK68_REGIONS)


@pytest.fixture
def frames() -> np.ndarray:
    """200 frames x 68 regions in DK68 order, with a shared signal."""
    rng = np.random.default_rng(0)
    return rng.standard_normal((200, N)) + rng.standard_normal((200, 1))


def _write(path, values: np.ndarray, header) -> str:
    pd.DataFrame(values, columns=header).to_csv(path, sep="\t", index=False)
    return str(path)


def test_a_numbered_header_row_is_not_a_frame(tmp_path, frames) -> None:
    # pd.DataFrame(ts).to_csv(index=False) writes 0, 1, ..., 67 as the first row
    path = _write(tmp_path / "nl.tsv", frames, list(range(N)))
    np.testing.assert_array_equal(read_timeseries(path), frames)
    path = _write(tmp_path / "one.tsv", frames, [f"roi_{k + 1}" for k in range(N)])
    np.testing.assert_array_equal(read_timeseries(path), frames)


def test_freesurfer_label_ids_and_spelled_out_hemispheres_name_the_regions(tmp_path, frames) -> None:
    order = np.random.default_rng(1).permutation(N)
    id_of = {name: code for code, name in FREESURFER_DK_IDS.items()}
    ids = [id_of[DK68_REGIONS[k]] for k in order]
    path = _write(tmp_path / "ids.tsv", frames[:, order], ids)
    np.testing.assert_array_equal(read_timeseries(path), frames)
    assert FREESURFER_DK_IDS[1035] == "lh_insula" and FREESURFER_DK_IDS[2005] == "rh_cuneus"
    words = [("Left " if n.startswith("lh") else "Right ") + n[3:] for n in DK68_REGIONS]
    rh_first = list(range(34, N)) + list(range(34))
    path = _write(tmp_path / "words.tsv", frames[:, rh_first], [words[k] for k in rh_first])
    np.testing.assert_array_equal(read_timeseries(path), frames)


def test_an_unreadable_text_header_and_mixed_runs_are_refused(tmp_path, frames) -> None:
    names = [n[3:] for n in DK68_REGIONS]  # region names without a hemisphere
    path = _write(tmp_path / "nohemi.tsv", frames, names)
    with pytest.raises(InvalidInputError, match="not DK68 region names with a hemisphere"):
        read_timeseries(path)
    named = _write(tmp_path / "named.tsv", frames, list(DK68_REGIONS))
    plain = tmp_path / "plain.tsv"
    np.savetxt(plain, frames, delimiter="\t")
    with pytest.raises(InvalidInputError, match="names its regions but"):
        read_timeseries_runs([named, plain])
    assert len(read_timeseries_runs([named, named])) == 2


def test_dropped_frames_are_limited_and_gaps_named(tmp_path, frames) -> None:
    gaps = frames.copy()
    gaps[:3] = np.nan  # leading non-steady-state volumes
    gaps[100:104] = np.nan  # censored frames inside the run
    path = _write(tmp_path / "gaps.tsv", gaps, list(DK68_REGIONS))
    with pytest.warns(InputWarning, match=r"frames 1, 2, 3, 101, 102 and 2 more.*4 of them inside"):
        out = read_timeseries(path, drop_na_frames=True)
    np.testing.assert_array_equal(out, np.delete(frames, [0, 1, 2, 100, 101, 102, 103], axis=0))
    heavy = frames.copy()
    heavy[::2] = np.nan
    heavy[1] = np.nan
    path = _write(tmp_path / "heavy.tsv", heavy, list(DK68_REGIONS))
    with pytest.raises(InvalidInputError, match="101 of 200 frames have missing values"):
        read_timeseries(path, drop_na_frames=True)


def test_empty_or_constant_regions_are_named_by_their_file_column(tmp_path, frames) -> None:
    ctx = [n.replace("lh_", "ctx-lh-").replace("rh_", "ctx-rh-") for n in DK68_REGIONS]
    empty = frames.copy()
    empty[:, 5] = np.nan
    path = _write(tmp_path / "empty.tsv", empty, ctx)
    with pytest.raises(InvalidInputError, match=r"column 6 \(ctx-lh-fusiform\) has no value"):
        read_timeseries(path, drop_na_frames=True)
    flat = frames.copy()
    flat[:, 40] = 1.0
    path = _write(tmp_path / "flat.tsv", flat[:, ::-1], ctx[::-1])  # file column 28 = region 40
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InvalidInputError, match=rf"column 28 \({ctx[40]}\) is constant"):
            read_timeseries(path)


def test_pandas_index_label_id_prefixes_and_other_atlases(tmp_path, frames) -> None:
    # DataFrame.to_csv(path) with its index: ",0,1,...,67" then an index column
    path = tmp_path / "index.csv"
    pd.DataFrame(frames).to_csv(path)
    np.testing.assert_array_equal(read_timeseries(path), frames)
    # FreeSurfer label IDs behind a prefix, in another order: matched, not taken in file order
    order = np.random.default_rng(2).permutation(N)
    id_of = {name: code for code, name in FREESURFER_DK_IDS.items()}
    header = [f"Mean_{id_of[DK68_REGIONS[k]]}" for k in order]
    path = _write(tmp_path / "mean_ids.tsv", frames[:, order], header)
    np.testing.assert_array_equal(read_timeseries(path), frames)
    # another atlas (100 regions, its own names) is read in its own order, with a warning
    wide = np.random.default_rng(3).standard_normal((300, 100))
    names = [f"7Networks_{'LH' if k < 50 else 'RH'}_Vis_{k % 50}" for k in range(100)]
    path = _write(tmp_path / "schaefer.tsv", wide, names)
    with pytest.warns(InputWarning, match="not DK68 regions; the 100 columns are taken in file"):
        np.testing.assert_array_equal(read_timeseries(path), wide)
