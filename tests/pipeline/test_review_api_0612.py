"""Review of the Python API (2026-12-06): arrays given where ``load_subject`` reads files, and
time series held in memory (torch tensors, one 2-D run) for ``empirical_statistics``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import empirical_statistics, load_subject


def _run(frames: int = 90, regions: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(frames, regions))


@pytest.mark.parametrize(
    "value",
    [_run(), [_run(), _run(seed=1)], torch.tensor(_run()), pd.DataFrame(_run())],
    ids=["ndarray", "list", "tensor", "dataframe"],
)
def test_load_subject_refuses_time_series_arrays_naming_the_argument(value: object) -> None:
    """Before: an OSError ("File name too long") from the array's text used as a file name."""
    with pytest.raises(InvalidInputError, match="load_subject reads files") as info:
        load_subject("sub-01", 0.72, None, timeseries=value, fcd_window=10)
    assert info.value.source == "timeseries"
    assert "empirical_statistics" in info.value.problem


@pytest.mark.parametrize("name", ["fc", "fcd_cdf", "sc", "myelin", "gradient"])
def test_load_subject_refuses_arrays_for_files(tmp_path, name: str) -> None:
    """Before: "<the array printed>: file does not exist" (or an OSError) instead of the argument."""
    files = {"fc": tmp_path / "FC.csv", "fcd_cdf": tmp_path / "CDF.csv"}
    kwargs: dict[str, object] = dict(files)
    kwargs[name] = np.zeros((6, 6)) if name in ("fc", "sc") else np.zeros(6)
    if name in ("myelin", "gradient"):  # both or neither: the other as a (missing) path
        kwargs["gradient" if name == "myelin" else "myelin"] = tmp_path / "map.csv"
    with pytest.raises(InvalidInputError, match=r"give a path .*got ndarray") as info:
        load_subject("sub-01", 0.72, 100.0, **kwargs)
    assert info.value.source == name
    assert "subject_from_arrays" in info.value.problem


def test_empirical_statistics_takes_tensors_with_grad_and_one_2d_run() -> None:
    """A torch tensor that requires grad (before: RuntimeError from .numpy()) and one (frames,
    regions) array instead of a list of runs (before: each frame read as a run) give the
    statistics of the NumPy run; the FC is NumPy's Pearson correlation."""
    run = _run()
    fc, cdf = empirical_statistics([run], 0.72, 10)
    np.testing.assert_allclose(fc, np.corrcoef(run.T), atol=1e-10)
    for given in (
        [torch.tensor(run, requires_grad=True)],
        torch.tensor(run, dtype=torch.float32, requires_grad=True),
        run,
        pd.DataFrame(run),
    ):
        fc_g, cdf_g = empirical_statistics(given, 0.72, 10)
        atol = 1e-6 if isinstance(given, torch.Tensor) else 0.0
        np.testing.assert_allclose(fc_g, fc, atol=atol)
        assert fc_g.shape == (6, 6) and cdf_g.shape == cdf.shape
