"""``prepare --aparc-stats``: FreeSurfer aparcstats2table tables become per-subject DK68 maps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS, load_default_maps

SUBJECTS = ["sub-01", "sub-02", "001"]


def _write_tables(folder, values: np.ndarray, drop: str | None = None) -> list:
    """lh and rh tables in aparcstats2table layout, regions shuffled, with whole-brain extras."""
    rng = np.random.default_rng(3)
    paths = []
    for h, hemi in enumerate(("lh", "rh")):
        names = [r[3:] for r in DK68_REGIONS[34 * h : 34 * (h + 1)]]
        cols = {f"{hemi}.aparc.myelin": SUBJECTS}
        for k in rng.permutation(34):
            if f"{hemi}_{names[k]}" != drop:
                cols[f"{hemi}_{names[k]}_myelin"] = values[:, 34 * h + k]
        cols[f"{hemi}_MeanThickness_myelin"] = values.mean(axis=1)
        cols["BrainSegVolNotVent"] = 1.1e6
        cols["eTIV"] = 1.5e6
        path = folder / f"{hemi}.myelin.tsv"
        pd.DataFrame(cols).to_csv(path, sep="\t", index=False)
        paths.append(path)
    return paths


def test_aparc_tables_become_dk68_maps_and_a_maps_table(tmp_path, capsys) -> None:
    values = np.random.default_rng(0).uniform(1.0, 2.0, (len(SUBJECTS), 68))
    lh, rh = _write_tables(tmp_path, values)
    out = tmp_path / "maps"
    assert main(["prepare", "--aparc-stats", str(lh), str(rh), "--out-dir", str(out)]) == 0
    maps = pd.read_csv(out / "maps.csv", dtype=str)
    assert list(maps["subject_id"]) == SUBJECTS  # "001" stays "001"
    for k, sid in enumerate(SUBJECTS):
        assert maps.loc[k, "myelin"] == f"{sid}_myelin.csv"
        got = np.loadtxt(out / maps.loc[k, "myelin"], delimiter=",")
        np.testing.assert_allclose(got, values[k], rtol=0, atol=1e-12)  # DK68 order
    gradient = np.loadtxt(out / maps.loc[0, "gradient"], delimiter=",")
    np.testing.assert_allclose(gradient, load_default_maps().gradient)
    assert "3 subject(s)" in capsys.readouterr().out


@pytest.mark.parametrize("problem", ["missing_region", "rh_only", "other_subjects", "bad_header"])
def test_bad_aparc_tables_are_one_line(tmp_path, capsys, problem: str) -> None:
    values = np.ones((len(SUBJECTS), 68))
    lh, rh = _write_tables(tmp_path, values, drop="rh_insula" if problem == "missing_region" else None)
    paths = [rh] if problem == "rh_only" else [lh, rh]
    if problem == "other_subjects":
        t = pd.read_csv(rh, sep="\t", dtype=str)
        t.iloc[0, 0] = "sub-99"
        t.to_csv(rh, sep="\t", index=False)
    if problem == "bad_header":
        t = pd.read_csv(lh, sep="\t", dtype=str).rename(columns={"lh.aparc.myelin": "Subject"})
        t.to_csv(lh, sep="\t", index=False)
    out = tmp_path / "maps"
    code = main(["prepare", "--aparc-stats", *map(str, paths), "--out-dir", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    expected = {
        "missing_region": "rh_insula",
        "rh_only": "34 region(s) missing",
        "other_subjects": "different subjects",
        "bad_header": "lh.aparc.thickness",
    }[problem]
    assert expected in err[0] and ".tsv" in err[0]
    assert not out.exists()
