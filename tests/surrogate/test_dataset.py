"""Data-set folders: round trip, shards, refusal of bad folders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from delssome_norms.errors import InvalidInputError
from delssome_norms.surrogate.dataset import (
    DATASET_FORMAT_VERSION,
    append_shard,
    concatenate,
    list_shards,
    load_dataset,
    save_dataset,
)

ARRAYS = ("subject_id", "fc_triu", "fcd_density", "tr", "scan_length", "sc", "regional", "g")
ARRAYS += ("subject", "generation", "losses")


def _assert_same(a, b) -> None:
    for k in ARRAYS:
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype, k
        np.testing.assert_array_equal(x, y, err_msg=k)


def test_round_trip_is_exact(tmp_path, synthetic_data) -> None:
    save_dataset(synthetic_data, tmp_path / "d")
    back = load_dataset(tmp_path / "d")
    _assert_same(synthetic_data, back)
    assert back.info == {"generator": "tests"}
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["format_version"] == DATASET_FORMAT_VERSION
    assert manifest["summary"]["n_candidates"] == synthetic_data.n_candidates
    assert manifest["summary"]["n_valid_candidates"] == synthetic_data.n_candidates - 1
    assert np.isnan(back.losses[3]).all()


def test_shards_append_and_offset_subjects(tmp_path, data_factory) -> None:
    a, b = data_factory(n_subjects=3, seed=1), data_factory(n_subjects=4, seed=2)
    append_shard(a, tmp_path / "d")
    append_shard(b, tmp_path / "d")
    assert [s["n_subjects"] for s in list_shards(tmp_path / "d")] == [3, 4]
    back = load_dataset(tmp_path / "d")
    assert back.n_subjects == 7
    _assert_same(back, concatenate([a, b]))
    np.testing.assert_array_equal(back.subject[a.n_candidates :], b.subject + 3)
    # the subset of the second shard's subjects is the second shard again
    _assert_same(back.subset([3, 4, 5, 6]), b)


def test_refuses_wrong_version_and_missing_shard(tmp_path, synthetic_data) -> None:
    folder = save_dataset(synthetic_data, tmp_path / "d")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = 99
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InvalidInputError, match="format_version 99"):
        load_dataset(folder)
    manifest["format_version"] = DATASET_FORMAT_VERSION
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / manifest["shards"][0]["file"]).unlink()
    with pytest.raises(InvalidInputError, match="missing"):
        load_dataset(folder)
    with pytest.raises(InvalidInputError, match=r"no manifest\.json"):
        load_dataset(tmp_path / "nothing")
    with pytest.raises(InvalidInputError, match="already exists"):
        save_dataset(synthetic_data, folder)


def test_refuses_shard_of_other_size(tmp_path, data_factory) -> None:
    a = data_factory(n_subjects=3)
    append_shard(a, tmp_path / "d")
    b = data_factory(n_subjects=3)
    b.fcd_density = b.fcd_density[:, :50]
    with pytest.raises(InvalidInputError, match="bins=50"):
        append_shard(b, tmp_path / "d")


def test_inconsistent_arrays_are_refused(synthetic_data) -> None:
    arrays = synthetic_data.to_arrays()
    arrays["g"] = arrays["g"][:-1]
    with pytest.raises(InvalidInputError, match="g has shape"):
        type(synthetic_data).from_arrays(arrays)
