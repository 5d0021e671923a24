"""Time series as common pipelines write them: pandas TSV with its index, gzip, atlas-prefixed
names (XCP-D), np.savetxt headers, aparc's non-cortical labels, time columns, NPZ, too few regions."""

from __future__ import annotations

import gzip
import warnings

import numpy as np
import pandas as pd
import pytest

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io import read_timeseries
from delssome_norms.io.regions import FREESURFER_DK_IDS

N = len(DK68_REGIONS)
CTX = [f"ctx-{n[:2]}-{n[3:]}" for n in DK68_REGIONS]


@pytest.fixture
def frames() -> np.ndarray:
    """150 frames x 68 regions in DK68 order, raw-BOLD-like (mean 1000)."""
    rng = np.random.default_rng(0)
    return 1000 + rng.standard_normal((150, N)) + rng.standard_normal((150, 1))


def _quiet_read(path, **kw) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none expected
        return read_timeseries(path, **kw)


def test_pandas_tsv_with_its_index_and_gzip(tmp_path, frames) -> None:
    # DataFrame.to_csv(sep="\t") writes "\tctx-lh-bankssts\t..." then an index column: the
    # leading tab is an empty first cell, not whitespace to strip (was: "68 names, 69 values")
    order = np.random.default_rng(1).permutation(N)
    table = pd.DataFrame(frames[:, order], columns=[CTX[k] for k in order])
    table.to_csv(tmp_path / "idx.tsv", sep="\t")
    np.testing.assert_array_equal(_quiet_read(tmp_path / "idx.tsv"), frames)
    pd.DataFrame(frames).to_csv(tmp_path / "idx_plain.tsv", sep="\t")  # "\t0\t1 ..."
    np.testing.assert_array_equal(_quiet_read(tmp_path / "idx_plain.tsv"), frames)
    # gzipped BIDS TSV with n/a rows (was: "is a binary file, expected CSV text")
    text = (
        "\t".join(CTX)
        + "\n"
        + "\n".join(
            "\t".join("n/a" if t < 2 else repr(float(v)) for v in row) for t, row in enumerate(frames)
        )
    )
    with gzip.open(tmp_path / "run.tsv.gz", "wt") as f:
        f.write(text + "\n")
    with pytest.warns(InputWarning, match="dropped 2 of 150 frame"):
        got = read_timeseries(tmp_path / "run.tsv.gz", drop_na_frames=True)
    np.testing.assert_array_equal(got, frames[2:])
    (tmp_path / "bad.tsv.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    with pytest.raises(InvalidInputError, match=r"bad\.tsv\.gz: is not a readable gzip file"):
        read_timeseries(tmp_path / "bad.tsv.gz")


def test_atlas_prefixed_names_and_savetxt_headers(tmp_path, frames) -> None:
    order = np.random.default_rng(2).permutation(N)
    for prefix, suffix in (("Desikan_", ""), ("4S156Parcels_", ""), ("aparc.", ""), ("", "_mean")):
        names = [f"{prefix}{CTX[k]}{suffix}" for k in order]
        path = tmp_path / "xcpd.tsv"
        pd.DataFrame(frames[:, order], columns=names).to_csv(path, sep="\t", index=False)
        np.testing.assert_array_equal(_quiet_read(path), frames)
    # np.savetxt(header=...) starts the header with "# " (tab- and space-separated)
    np.savetxt(
        tmp_path / "st.tsv", frames[:, order], delimiter="\t", header="\t".join(CTX[k] for k in order)
    )
    np.testing.assert_array_equal(_quiet_read(tmp_path / "st.tsv"), frames)
    np.savetxt(tmp_path / "st.txt", frames[:, order], header=" ".join(CTX[k] for k in order))
    np.testing.assert_allclose(_quiet_read(tmp_path / "st.txt"), frames, rtol=1e-15)
    # a first column of frame times (not numbering) is no region
    table = pd.DataFrame(frames, columns=CTX, index=np.arange(150) * 0.72)
    table.to_csv(tmp_path / "time.csv", index_label="time")
    np.testing.assert_array_equal(_quiet_read(tmp_path / "time.csv"), frames)


def test_aparc_non_cortical_columns_are_dropped(tmp_path, frames) -> None:
    rng = np.random.default_rng(3)
    # 70 columns: ctx-lh-unknown (all n/a, as XCP-D writes uncovered labels) and corpus callosum
    names = ["ctx-lh-unknown", *CTX[:34], "ctx-rh-corpuscallosum", *CTX[34:]]
    data = np.column_stack([np.full(150, np.nan), frames[:, :34], np.zeros(150), frames[:, 34:]])
    path = tmp_path / "aparc70.tsv"
    pd.DataFrame(data, columns=names).to_csv(path, sep="\t", index=False, na_rep="n/a")
    with pytest.warns(InputWarning, match=r"dropped 2 column.*'ctx-lh-unknown', 'ctx-rh-corpus"):
        np.testing.assert_array_equal(read_timeseries(path), frames)
    data[:, 6] = 1.0  # lh_fusiform, the file's 7th column: named by its place in the file
    pd.DataFrame(data, columns=names).to_csv(path, sep="\t", index=False, na_rep="n/a")
    with pytest.warns(InputWarning), pytest.raises(InvalidInputError, match=r"column 7 \(ctx-lh-fus"):
        read_timeseries(path)
    # HCP-style medial wall
    names = [*(f"L_{n[3:]}" for n in DK68_REGIONS[:34]), "L_Medial_wall"]
    names += [*(f"R_{n[3:]}" for n in DK68_REGIONS[34:]), "R_Medial_wall"]
    data = np.column_stack(
        [frames[:, :34], rng.standard_normal(150), frames[:, 34:], rng.standard_normal(150)]
    )
    pd.DataFrame(data, columns=names).to_csv(path, sep="\t", index=False)
    with pytest.warns(InputWarning, match="'L_Medial_wall', 'R_Medial_wall'"):
        np.testing.assert_array_equal(read_timeseries(path), frames)
    # FreeSurfer label IDs of the same (1000/2000 unknown, 1004/2004 corpus callosum)
    id_of = {n: c for c, n in FREESURFER_DK_IDS.items()}
    ids = [1000, 1004, *(id_of[n] for n in DK68_REGIONS), 2004]
    data = np.column_stack([np.zeros((150, 2)), frames, np.zeros(150)])
    pd.DataFrame(data, columns=ids).to_csv(path, sep="\t", index=False)
    with pytest.warns(InputWarning, match="'1000', '1004', '2004'"):
        np.testing.assert_array_equal(read_timeseries(path), frames)


def test_npz_few_regions_and_all_frames_missing(tmp_path, frames) -> None:
    np.savez(tmp_path / "one.npz", ts=frames)
    np.testing.assert_array_equal(_quiet_read(tmp_path / "one.npz"), frames)
    np.savez(tmp_path / "two.npz", a=frames, b=frames)
    with pytest.raises(InvalidInputError, match=r"two.npz: holds 2 arrays \(a, b\)"):
        read_timeseries(tmp_path / "two.npz")
    np.savetxt(tmp_path / "text.npy", frames)
    with pytest.raises(InvalidInputError, match=r"text\.npy: is not a numpy \.npy file"):
        read_timeseries(tmp_path / "text.npy")
    # regions x frames as pandas writes it (header ",0,1,...", region names as the index)
    pd.DataFrame(frames.T, index=CTX).to_csv(tmp_path / "rows.csv")
    with pytest.raises(InvalidInputError, match=r"rows.csv: has region names down its first col"):
        read_timeseries(tmp_path / "rows.csv")
    # one or two columns: no FCD (was: a 1 x 1 FC and a step CDF written without a word)
    for k in (1, 2):
        np.savetxt(tmp_path / f"c{k}.tsv", frames[:, :k], delimiter="\t")
        with pytest.raises(InvalidInputError, match=f"c{k}.tsv: has {k} region column"):
            read_timeseries(tmp_path / f"c{k}.tsv")
    # every frame misses a value somewhere: refused by the limit, not told to drop frames
    gappy = frames.copy()
    gappy[np.arange(150), np.arange(150) % N] = np.nan
    np.save(tmp_path / "gappy.npy", gappy)
    with pytest.raises(InvalidInputError, match="150 of 150 frames have missing values"):
        read_timeseries(tmp_path / "gappy.npy", drop_na_frames=True)
