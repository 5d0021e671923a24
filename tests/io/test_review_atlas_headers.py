"""Review (other atlases on the command line): region-name headers of the files of one subject.

1. Another atlas's names in FC, SC, map and time-series headers name the subject's regions
   (run.json, EI_ratio.csv), instead of ``region_k``.
2. The files' names are matched: an SC (or map, or run) listing them in another order is put in
   the first file's order, one naming other regions is refused (naming both files and names).
3. A header of some DK68 names only (one hemisphere) is an atlas of those regions, in DK order.
4. Without an SC, another N's message names ``--sc``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms import io
from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import load_subject
from delssome_norms.io.regions import DK68_REGIONS
from delssome_norms.pipeline import EIResult

N = 10
NAMES = [f"Net{chr(65 + i)}" for i in range(N)]
LH = [r for r in DK68_REGIONS if r.startswith("lh_")]
FAST_CLI = [
    "--popsize", "12", "--mu", "3", "--n-dup", "1", "--dt-train", "0.005", "--dt-val", "0.005",
    "--dt-test", "0.005", "--burn-in", "0.72", "--fcd-window", "5", "--warmup-steps", "50",
    "--test-top-k", "2", "--quiet", "--generations", "3", "--no-interval", "--seed", "3",
]  # fmt: skip


def _data(n: int = N, frames: int = 60, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = rng.standard_normal((frames, n)) + 0.6 * rng.standard_normal((frames, 1))
    sc = rng.random((n, n)) ** 2
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0.0)
    x = np.linspace(-1, 1, n)
    return {
        "ts": ts,
        "fc": np.corrcoef(ts.T),
        "sc": sc,
        "myelin": 1.6 - 0.2 * x + 0.05 * np.sin(5 * x),
        "gradient": (x - x.mean()) / x.std(),
    }


def _square(path: Path, m: np.ndarray, names: list[str], perm: np.ndarray | None = None) -> str:
    """``m`` with a header row (and index) of ``names``, listed in the order ``perm``."""
    perm = np.arange(len(names)) if perm is None else perm
    cols = [names[i] for i in perm]
    pd.DataFrame(m[np.ix_(perm, perm)], index=cols, columns=cols).to_csv(path)
    return str(path)


def _cdf(path: Path) -> str:
    np.savetxt(path, np.linspace(0, 1, 10001)[1:, None])
    return str(path)


# --- 1 + 2: another atlas's names are matched across files and name the subject ---------------


def test_sc_and_maps_listed_in_another_order_come_back_in_the_fc_order(tmp_path: Path) -> None:
    a = _data()
    perm = np.random.default_rng(3).permutation(N)
    fc = _square(tmp_path / "fc.csv", a["fc"], NAMES)
    sc = _square(tmp_path / "sc.csv", a["sc"], NAMES, perm)
    names = [NAMES[i] for i in perm]
    myelin = tmp_path / "myelin.csv"  # a column of names beside the values
    pd.DataFrame({"region": names, "myelin": a["myelin"][perm]}).to_csv(myelin, index=False)
    gradient = tmp_path / "gradient.csv"  # a header row of names above one row of values
    pd.DataFrame([a["gradient"][perm]], columns=names).to_csv(gradient, index=False)
    with pytest.warns(InputWarning, match="sc.csv: lists the regions of .*fc.csv in another order"):
        s = load_subject(
            "s", 0.72, 43.2, fc=fc, fcd_cdf=_cdf(tmp_path / "cdf.csv"), sc=sc,
            myelin=str(myelin), gradient=str(gradient),
        )  # fmt: skip
    assert s.regions == tuple(NAMES)
    np.testing.assert_allclose(s.fc, a["fc"])
    np.testing.assert_allclose(s.sc, a["sc"])
    np.testing.assert_allclose(s.myelin, a["myelin"])
    np.testing.assert_allclose(s.gradient, a["gradient"])


def test_numbered_fc_and_a_reversed_sc_are_matched_by_name(tmp_path: Path) -> None:
    # the review's case: FC headed R00..R09, SC headed R09..R00 (used to pass misaligned)
    a = _data()
    rnames = [f"R{i:02d}" for i in range(N)]
    fc = tmp_path / "fc.csv"
    pd.DataFrame(a["fc"], columns=rnames).to_csv(fc, index=False)
    rev = np.arange(N)[::-1]
    sc = tmp_path / "sc.csv"
    pd.DataFrame(a["sc"][np.ix_(rev, rev)], columns=[rnames[i] for i in rev]).to_csv(sc, index=False)
    with pytest.warns(InputWarning, match="put in"):
        s = load_subject("s", 0.72, 43.2, fc=str(fc), fcd_cdf=_cdf(tmp_path / "c.csv"), sc=str(sc))
    np.testing.assert_allclose(s.sc, a["sc"])
    assert s.regions is None  # a numbering (in any order) is the atlas order, not names


def test_files_naming_other_regions_are_refused_naming_both(tmp_path: Path, capsys) -> None:
    a = _data()
    fc = _square(tmp_path / "fc.csv", a["fc"], NAMES)
    other = [*NAMES[:-2], "NetY", "NetZ"]
    sc = _square(tmp_path / "sc.csv", a["sc"], other)
    cdf = _cdf(tmp_path / "cdf.csv")
    with pytest.raises(InvalidInputError) as info:
        load_subject("s", 0.72, 43.2, fc=fc, fcd_cdf=cdf, sc=sc)
    err = info.value
    assert err.source == sc and f"other regions than {fc}" in err.problem
    assert "'NetY', 'NetZ'" in err.problem and "'NetI', 'NetJ'" in err.problem
    # validate says so too (exit status 2), where it used to print "ok"
    argv = [
        "validate",
        "--fc",
        fc,
        "--fcd-cdf",
        cdf,
        "--sc",
        sc,
        "--tr",
        "0.72",
        "--scan-length",
        "144",
    ]
    assert main(argv) == 2
    assert "other regions than" in capsys.readouterr().err


def test_timeseries_runs_and_sc_of_another_atlas_are_matched_by_name(tmp_path: Path) -> None:
    a, b = _data(seed=0), _data(seed=1)
    perm = np.random.default_rng(4).permutation(N)
    run1, run2 = tmp_path / "run1.tsv", tmp_path / "run2.tsv"
    pd.DataFrame(a["ts"], columns=NAMES).to_csv(run1, sep="\t", index=False)
    pd.DataFrame(b["ts"][:, perm], columns=[NAMES[i] for i in perm]).to_csv(run2, sep="\t", index=False)
    sc = _square(tmp_path / "sc.csv", a["sc"], NAMES, perm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        s = load_subject("s", 0.72, None, timeseries=[str(run1), str(run2)], sc=sc, fcd_window=5)
    assert s.regions == tuple(NAMES)
    np.testing.assert_allclose(s.sc, a["sc"])
    z = (
        np.arctanh(np.clip(a["fc"], -0.999999, 0.999999))
        + np.arctanh(np.clip(b["fc"], -0.999999, 0.999999))
    ) / 2
    off = ~np.eye(N, dtype=bool)
    np.testing.assert_allclose(s.fc[off], np.tanh(z)[off], atol=1e-6)


def test_a_reordered_sc_next_to_a_map_without_names_is_refused(tmp_path: Path) -> None:
    a = _data()
    fc = _square(tmp_path / "fc.csv", a["fc"], NAMES)
    sc = _square(tmp_path / "sc.csv", a["sc"], NAMES, np.arange(N)[::-1])
    np.savetxt(tmp_path / "m.csv", a["myelin"])
    np.savetxt(tmp_path / "g.csv", a["gradient"])
    with pytest.raises(InvalidInputError, match=r"m.csv, .*g.csv have no region-name header"):
        load_subject(
            "s", 0.72, 43.2, fc=fc, fcd_cdf=_cdf(tmp_path / "c.csv"), sc=sc,
            myelin=str(tmp_path / "m.csv"), gradient=str(tmp_path / "g.csv"),
        )  # fmt: skip


def test_estimate_ei_labels_its_outputs_with_the_files_region_names(tmp_path: Path) -> None:
    a = _data(frames=60)
    perm = np.random.default_rng(5).permutation(N)
    fc = _square(tmp_path / "fc.csv", a["fc"], NAMES)
    sc = _square(tmp_path / "sc.csv", a["sc"], NAMES, perm)
    maps = []
    for key in ("myelin", "gradient"):
        path = tmp_path / f"{key}.csv"
        pd.DataFrame({"region": NAMES, key: a[key]}).to_csv(path, index=False)
        maps.append(str(path))
    out = tmp_path / "out"
    argv = [
        "estimate-ei", "--fc", fc, "--fcd-cdf", _cdf(tmp_path / "cdf.csv"), "--tr", "0.72",
        "--scan-length", "28.8", "--sc", sc, "--myelin", maps[0], "--gradient", maps[1],
        "--out-dir", str(out), *FAST_CLI,
    ]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(argv) == 0
    atlas = json.loads((out / "run.json").read_text())["provenance"]["atlas"]
    assert atlas["regions"] == NAMES and atlas["name"] == f"custom-{N}"
    result = EIResult.from_dir(out)  # the names run.json records, not region_0 ...
    assert result.regions == NAMES and list(result.to_frame()["region"]) == NAMES


# --- 3: one hemisphere of DK68 ----------------------------------------------------------------


def test_one_hemisphere_dk_files_are_a_34_region_atlas_in_dk_order(tmp_path: Path) -> None:
    a = _data(34, frames=80)
    perm = np.random.default_rng(6).permutation(34)
    spelled = [f"ctx-{n.replace('_', '-')}" for n in LH]  # another spelling of the same regions
    fc = _square(tmp_path / "fc.csv", a["fc"], LH)
    sc = _square(tmp_path / "sc.csv", a["sc"], spelled, perm)
    np.testing.assert_allclose(io.read_sc(sc), a["sc"])  # used to be "lacks 34 of 68"
    with pytest.warns(InputWarning, match="names 34 of the 68 DK68 regions"):
        s = load_subject("s", 0.72, 57.6, fc=fc, fcd_cdf=_cdf(tmp_path / "c.csv"), sc=sc)
    assert s.regions == tuple(LH)
    np.testing.assert_allclose(s.sc, a["sc"])
    # time series with the same names in another order: the same 34 regions, in DK order
    ts = tmp_path / "run.tsv"
    pd.DataFrame(a["ts"][:, perm], columns=[LH[i] for i in perm]).to_csv(ts, sep="\t", index=False)
    np.testing.assert_allclose(io.read_timeseries(ts), a["ts"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        s = load_subject("s", 0.72, None, timeseries=str(ts), sc=sc, fcd_window=5)
    assert s.regions == tuple(LH)
    np.testing.assert_allclose(s.fc, a["fc"], atol=1e-6)


def test_left_fc_and_right_sc_are_refused(tmp_path: Path) -> None:
    a = _data(34)
    rh = [r for r in DK68_REGIONS if r.startswith("rh_")]
    fc = _square(tmp_path / "fc.csv", a["fc"], LH)
    sc = _square(tmp_path / "sc.csv", a["sc"], rh)
    with pytest.raises(InvalidInputError, match=r"other regions than .*fc.csv.*'rh_bankssts'"):
        load_subject("s", 0.72, 43.2, fc=fc, fcd_cdf=_cdf(tmp_path / "c.csv"), sc=sc)


def test_dk68_headers_keep_their_behaviour(tmp_path: Path) -> None:
    # 68 DK names in another order next to a plain SC: DK68 order, as before (no refusal)
    a = _data(68, frames=120)
    perm = np.random.default_rng(7).permutation(68)
    fc = _square(tmp_path / "fc.csv", a["fc"], list(DK68_REGIONS), perm)
    np.savetxt(tmp_path / "sc.csv", a["sc"], delimiter=",")
    s = load_subject(
        "s", 0.72, 86.4, fc=fc, fcd_cdf=_cdf(tmp_path / "c.csv"), sc=str(tmp_path / "sc.csv")
    )
    assert s.regions == DK68_REGIONS
    np.testing.assert_allclose(s.fc, a["fc"])


# --- 4: without an SC ---------------------------------------------------------------------------


def test_another_n_without_sc_names_the_option(tmp_path: Path, capsys) -> None:
    a = _data()
    fc = _square(tmp_path / "fc.csv", a["fc"], NAMES)
    argv = [
        "validate",
        "--fc",
        fc,
        "--fcd-cdf",
        _cdf(tmp_path / "c.csv"),
        "--tr",
        "0.72",
        "--scan-length",
        "144",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "10 regions but the default SC template has 68" in err and "(--sc " in err
