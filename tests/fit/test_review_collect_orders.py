"""Review: ``collect`` over subjects whose results list the same regions in different orders.

Subjects of a custom atlas fitted from files whose headers list the regions in other orders
keep their file order (``run.json``'s ``provenance.atlas.regions``, the rows of
``EI_ratio.csv``). ``collect`` puts every subject's regional columns in one order (the one most
subjects list; ties: the first listed in the demographics), warns once, records that order, and
still refuses other region sets and true pipeline differences. The finished subjects are written
with the fit's own writers (``run_record``, ``subject_provenance``, ``write_result_files``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import collect
from delssome_norms.fit.outputs import (
    run_fingerprint,
    run_record,
    subject_provenance,
    write_result_files,
)
from delssome_norms.fit.settings import FitSettings
from delssome_norms.fit.subject import SubjectInputs
from delssome_norms.io.regions import regions_sha256

NAMES = [f"{h}_{r}" for h in ("L", "R") for r in ("alpha", "beta", "gamma", "delta", "eps")]
N = len(NAMES)
RNG = np.random.default_rng(7)
SC = RNG.random((N, N))
SC = (SC + SC.T) / 2
MAPS = RNG.normal(size=(2, N))


def _finish(
    root: Path,
    sid: str,
    order: list[str],
    ei_by_name: dict[str, float],
    settings: FitSettings | None = None,
    maps: bool = True,
    atlas: list[str] = NAMES,
) -> None:
    """A finished subject whose inputs listed the regions of ``atlas`` in ``order`` (its
    results too); ``ei_by_name``: its E/I of each region."""
    settings = settings or FitSettings()
    idx = [atlas.index(n) for n in order]
    subject = SubjectInputs(
        subject_id=sid, fc=np.corrcoef(RNG.normal(size=(N, 40)))[np.ix_(idx, idx)],
        fcd_cdf=np.linspace(0, 1, 10000), tr=0.72, scan_length=180.0, sc=SC[np.ix_(idx, idx)],
        myelin=MAPS[0][idx] if maps else None, gradient=MAPS[1][idx] if maps else None,
        sources={"sc": f"{sid}_sc.csv"}, regions=tuple(order),
    )  # fmt: skip
    design = "[1, myelin, gradient]; given maps" if maps else "[1, gradient]; gradient: FC"
    ei = np.array([ei_by_name[n] for n in order])
    info = {
        "fingerprint": run_fingerprint(subject, settings),
        "provenance": subject_provenance(subject, settings, design, MAPS[1][idx]),
    }
    ones = np.ones(N)
    write_result_files(
        root / sid,
        columns={"EI_ratio": ei, "S_E": ei, "S_I": ones, "r_E": 3 * ones},
        parameters={"wEE": ones, "wEI": ones, "sigma": ones, "G": 1.0},
        losses={"test": {"corr_loss": 0.1, "l1_loss": 0.1, "ks_loss": 0.1}},
        run=run_record(sid, ei, np.zeros(3), info),
    )


def _demo(path: Path, ids: list[str]) -> Path:
    pd.DataFrame(
        {"subject_id": ids, "age_in_years": 20.0 + np.arange(len(ids)), "sex": "female"}
    ).to_csv(path, index=False)
    return path


def _ei(seed: int) -> dict[str, float]:
    return dict(zip(NAMES, np.random.default_rng(seed).uniform(0.5, 2.0, N)))


def _collect(tmp: Path, ids: list[str]) -> tuple[pd.DataFrame, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = collect(tmp / "fits", _demo(tmp / "demo.csv", ids), tmp / "table.csv")
    mine = [str(w.message) for w in caught if "another order" in str(w.message)]
    assert all(issubclass(w.category, InputWarning) for w in caught)
    return table, mine


def test_subjects_in_other_orders_are_put_in_the_majority_order(tmp_path: Path) -> None:
    shuffled = [NAMES[k] for k in RNG.permutation(N)]
    reversed_ = NAMES[::-1]
    orders = {"s1": shuffled, "s2": NAMES, "s3": NAMES, "s4": reversed_}  # majority: s2's
    values = {sid: _ei(k) for k, sid in enumerate(orders)}
    for sid, order in orders.items():
        _finish(tmp_path / "fits", sid, order, values[sid])
    table, warned = _collect(tmp_path, list(orders))
    assert len(warned) == 1 and "2 of 4" in warned[0] and "s1, s4" in warned[0]
    assert "s2" in warned[0] and "table.regions.csv" in warned[0]
    regions = pd.read_csv(tmp_path / "table.regions.csv")
    assert regions["region"].tolist() == NAMES
    for _, row in table.iterrows():
        expected = [values[row["subject_id"]][n] for n in NAMES]
        got = [row[c] for c in regions["column"]]
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        assert row["ei_ratio_mean"] == pytest.approx(np.mean(expected), rel=1e-12)
    side = json.loads((tmp_path / "table.provenance.json").read_text())
    assert side["atlas"]["regions"] == NAMES
    assert side["atlas"]["regions_sha256"] == regions_sha256(NAMES)
    assert side["pipeline"]["regions_sha256"] == regions_sha256(NAMES)
    assert side["reordered_subjects"] == ["s1", "s4"]


def test_a_tie_takes_the_order_of_the_first_subject_listed(tmp_path: Path) -> None:
    _finish(tmp_path / "fits", "a", NAMES, _ei(1))
    _finish(tmp_path / "fits", "b", NAMES[::-1], _ei(2))
    _collect(tmp_path, ["b", "a"])
    assert pd.read_csv(tmp_path / "table.regions.csv")["region"].tolist() == NAMES[::-1]
    table, warned = _collect(tmp_path, ["a", "b"])
    assert pd.read_csv(tmp_path / "table.regions.csv")["region"].tolist() == NAMES
    assert len(warned) == 1 and "1 of 2" in warned[0] and ": b;" in warned[0]
    b = table.set_index("subject_id").loc["b"]
    np.testing.assert_allclose([b[f"ei_ratio_roi_{k}"] for k in range(N)], list(_ei(2).values()))


def test_other_region_sets_are_refused_naming_subjects_and_a_region(tmp_path: Path) -> None:
    _finish(tmp_path / "fits", "s1", NAMES, _ei(1))
    _finish(tmp_path / "fits", "s2", NAMES, _ei(2))
    atlas = [n if n != "R_eps" else "R_zeta" for n in NAMES]  # s3 names R_zeta, not R_eps
    ei = dict(zip(atlas, _ei(3).values()))
    _finish(tmp_path / "fits", "s3", atlas[::-1], ei, atlas=atlas)
    with pytest.raises(InvalidInputError) as err:
        _collect(tmp_path, ["s1", "s2", "s3"])
    text = str(err.value)
    assert "different regions" in text and "s3" in text and "s1" in text
    assert "'R_zeta'" in text
    assert not (tmp_path / "table.csv").exists()


def test_true_pipeline_differences_are_still_refused(tmp_path: Path) -> None:
    _finish(tmp_path / "fits", "s1", NAMES, _ei(1))
    _finish(tmp_path / "fits", "s2", NAMES, _ei(2))
    _finish(tmp_path / "fits", "s3", NAMES[::-1], _ei(3), maps=False)  # own FC gradient
    with pytest.raises(InvalidInputError, match="different pipelines: maps is 'given'"):
        _collect(tmp_path, ["s1", "s2", "s3"])
    _finish(tmp_path / "fits", "s4", NAMES[::-1], _ei(4), settings=FitSettings(n_dup=2))
    with pytest.raises(InvalidInputError, match=r"2 different settings .*differing: n_dup\)"):
        _collect(tmp_path, ["s1", "s2", "s4"])
    table, _ = _collect(tmp_path, ["s1", "s2"])  # the same pipeline: one table
    assert table["subject_id"].tolist() == ["s1", "s2"]
    # a reordered subject whose recorded digest is not of its own names is not forgiven
    _finish(tmp_path / "fits", "s5", NAMES[::-1], _ei(5))
    run_json = tmp_path / "fits" / "s5" / "run.json"
    run = json.loads(run_json.read_text())
    run["provenance"]["pipeline"]["regions_sha256"] = "0" * 64
    run_json.write_text(json.dumps(run))
    with pytest.raises(InvalidInputError, match="different pipelines: regions_sha256"):
        _collect(tmp_path, ["s1", "s2", "s5"])


def test_cli_collect_of_reordered_subjects(tmp_path: Path, capsys) -> None:
    _finish(tmp_path / "fits", "s1", NAMES, _ei(1))
    _finish(tmp_path / "fits", "s2", NAMES[::-1], _ei(2))
    demo = _demo(tmp_path / "demo.csv", ["s1", "s2"])
    argv = ["collect", "--in-dir", str(tmp_path / "fits"), "--demographics", str(demo)]
    with pytest.warns(InputWarning, match="1 of 2 subject.* another order than s1.*: s2;"):
        assert main([*argv, "--out", str(tmp_path / "t.csv")]) == 0
    assert "2 subjects x 10 regions" in capsys.readouterr().out
    atlas = [n if n != "L_beta" else "L_b" for n in NAMES]  # another set: one clear error line
    _finish(tmp_path / "fits", "s3", atlas, dict(zip(atlas, _ei(3).values())), atlas=atlas)
    demo = _demo(tmp_path / "demo.csv", ["s1", "s2", "s3"])
    assert main([*argv, "--out", str(tmp_path / "t3.csv")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "warning" not in ln]
    assert len(err) == 1 and err[0].startswith("delssome-norms: error: ") and "'L_b'" in err[0]
    assert not (tmp_path / "t3.csv").exists()


def test_subjects_without_names_beside_reordered_ones_are_named(tmp_path: Path) -> None:
    orders = {"s1": NAMES, "s2": NAMES, "s3": NAMES[::-1]}
    for k, (sid, order) in enumerate(orders.items()):
        _finish(tmp_path / "fits", sid, order, _ei(k))
    run_path = tmp_path / "fits" / "s2" / "run.json"
    run = json.loads(run_path.read_text())
    del run["provenance"]["atlas"]["regions"]  # as an older version wrote it
    run_path.write_text(json.dumps(run))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        collect(tmp_path / "fits", _demo(tmp_path / "demo.csv", list(orders)), tmp_path / "t.csv")
    unnamed = [str(w.message) for w in caught if "record no region names" in str(w.message)]
    assert len(unnamed) == 1 and "s2" in unnamed[0] and "s1" not in unnamed[0]
