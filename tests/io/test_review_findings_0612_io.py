"""Review findings of 2026-12-06 in the readers: a decimal-comma run whose first frame is n/a,
and a triangular SC whose named rows and columns are not in atlas order."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.errors import InputWarning
from delssome_norms.io.timeseries import read_timeseries


@pytest.mark.parametrize("n_regions", [68, 100])
def test_a_decimal_comma_run_starting_with_an_na_frame_keeps_it_as_data(
    tmp_path: Path, n_regions: int
) -> None:
    """The n/a of the first frame made its line a header: frame 1's numbers became region names
    (100 regions) or the run was refused as a header of unknown names (68)."""
    rng = np.random.default_rng(3)
    series = rng.standard_normal((200, n_regions)) + rng.standard_normal((200, n_regions)).cumsum(0)
    frame = pd.DataFrame(series)
    frame.iloc[0, 0] = np.nan
    path = tmp_path / "ts.tsv"
    path.write_text(frame.to_csv(sep=";", index=False, header=False, decimal=",", na_rep="n/a"))
    assert path.read_text().startswith("n/a;")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)  # the dropped frame is warned about
        got = read_timeseries(path, drop_na_frames=True)
    np.testing.assert_allclose(got, series[1:], rtol=1e-12)


def _bids_run(tmp_path: Path, sidecars: dict[str, float]) -> Path:
    func = tmp_path / "sub-01" / "func"
    func.mkdir(parents=True)
    run = func / "sub-01_task-rest_run-1_timeseries.tsv"
    run.write_text("1\t2\n3\t4\n")
    for name, tr in sidecars.items():
        (func / name).write_text(f'{{"RepetitionTime": {tr}}}')
    return run


def test_a_given_tr_decides_when_the_runs_sidecars_disagree(tmp_path: Path) -> None:
    """Sidecars that tie and disagree refused the run even with --tr / a manifest tr given."""
    from delssome_norms.io.sidecar import given_or_sidecar_tr

    run = _bids_run(
        tmp_path, {"sub-01_task-rest_bold.json": 0.8, "sub-01_task-rest_timeseries.json": 2.0}
    )
    with pytest.warns(InputWarning, match=r"disagree.*--tr 0\.8 s is used"):
        assert given_or_sidecar_tr([run], 0.8) == (0.8, None)


def test_a_sidecar_mismatch_is_warned_on_every_call_outside_a_command(tmp_path: Path) -> None:
    """A process-wide record silenced the second call of a notebook; a command warns once."""
    from delssome_norms.io.sidecar import warn_other_sidecar_tr, warnings_once_per_run

    run = _bids_run(tmp_path, {"sub-01_task-rest_run-1_timeseries.json": 2.0})
    for _ in range(2):
        with pytest.warns(InputWarning, match="gives RepetitionTime 2 s"):
            warn_other_sidecar_tr([run], 0.72)
    with warnings.catch_warnings(record=True) as seen, warnings_once_per_run():
        warnings.simplefilter("always")
        warn_other_sidecar_tr([run], 0.72)
        warn_other_sidecar_tr([run], 0.72, "tr", "sub-01")
    assert len([w for w in seen if issubclass(w.category, InputWarning)]) == 1


def test_a_manifest_of_a_symlinked_dataset_finds_the_runs_sidecars(tmp_path: Path) -> None:
    """DataLad/git-annex runs are symlinks into .git/annex/objects: resolving the manifest's paths
    lost the BIDS folders and the sidecar (tr NaN, "no JSON sidecar next to .../annex/...")."""
    from delssome_norms.io.readers import read_manifest

    rng = np.random.default_rng(5)
    store = tmp_path / ".git" / "annex" / "objects" / "ab" / "KEY"
    store.mkdir(parents=True)
    target = store / "KEY"
    np.savetxt(target, rng.standard_normal((150, 68)), delimiter="\t")
    func = tmp_path / "sub-01" / "func"
    func.mkdir(parents=True)
    run = func / "sub-01_task-rest_timeseries.tsv"
    run.symlink_to(target)
    (func / "sub-01_task-rest_bold.json").write_text('{"RepetitionTime": 0.8}')
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"subject_id,timeseries\nsub-01,{run.relative_to(tmp_path)}\n")
    table = read_manifest(manifest)
    assert table.loc[0, "tr"] == pytest.approx(0.8)
    assert table.loc[0, "scan_length"] == pytest.approx(150 * 0.8)
    assert table.loc[0, "timeseries"] == str(run)


def test_a_named_triangular_sc_in_another_region_order_is_mirrored(tmp_path: Path) -> None:
    """Rows and columns put in DK68 order before the triangle check: the permuted triangle was
    no longer seen, and half of the connections were silently missing from the fit's SC."""
    from delssome_norms.datasets import DK68_REGIONS
    from delssome_norms.io.readers import read_sc

    rng = np.random.default_rng(11)
    full = rng.random((68, 68))
    full = full + full.T
    np.fill_diagonal(full, 0.0)
    perm = rng.permutation(68)
    stored = np.tril(full[np.ix_(perm, perm)])  # the file's order, lower triangle only
    names = [DK68_REGIONS[i] for i in perm]
    path = tmp_path / "sc.csv"
    pd.DataFrame(stored, columns=names).to_csv(path, index=False)
    with pytest.warns(InputWarning, match="one direction only"):
        got = read_sc(path)
    np.testing.assert_allclose(got, full, rtol=1e-12)
