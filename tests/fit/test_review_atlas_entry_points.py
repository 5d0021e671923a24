"""Review (other atlases, every entry point): region-name headers are matched by name in
``validate``, in the Python API given file paths, and in the cohort's group-average FC gradient,
as ``load_subject`` (the fit on the command line) matches them.

1. ``validate`` compares the names of the subject's files without --tr/--scan-length: a file
   naming other regions is refused naming both files; one listing them in another order is put
   in the first file's order, without a contradictory "taken in file order" warning.
2. ``subject_from_arrays`` with paths: an SC or map in another order comes back in the FC's
   order, other names are refused, and the result equals ``load_subject``'s.
3. The cohort FC gradient averages the subjects' FCs in the first subject's region order; a
   subject naming other regions is left out (named), and fails alone if it has no maps.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import load_subject
from delssome_norms.fit.cohort import _load_row, cohort_gradient, plan_cohort
from delssome_norms.fit.lockstep import default_gradient
from delssome_norms.fit.settings import FitSettings
from delssome_norms.io import fisher_z_mean
from delssome_norms.pipeline.estimator import subject_from_arrays

N = 10
NAMES = [f"Net{chr(65 + i)}" for i in range(N)]


def _data(seed: int = 0, frames: int = 60) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = rng.standard_normal((frames, N)) + 0.6 * rng.standard_normal((frames, 1))
    sc = rng.random((N, N)) ** 2
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0.0)
    x = np.linspace(-1, 1, N)
    return {
        "ts": ts,
        "fc": np.corrcoef(ts.T),
        "sc": sc,
        "myelin": 1.6 - 0.2 * x + 0.05 * np.sin(5 * x),
        "gradient": (x - x.mean()) / x.std(),
    }


def _square(path: Path, m: np.ndarray, names: list[str], perm=None) -> str:
    """``m`` (rows/columns in ``names`` order) written with its regions listed in order ``perm``."""
    perm = np.arange(len(names)) if perm is None else np.asarray(perm)
    cols = [names[i] for i in perm]
    pd.DataFrame(m[np.ix_(perm, perm)], index=cols, columns=cols).to_csv(path)
    return str(path)


def _map(path: Path, values: np.ndarray, names: list[str], perm) -> str:
    pd.DataFrame({"region": [names[i] for i in perm], "value": values[perm]}).to_csv(path, index=False)
    return str(path)


def _cdf(path: Path) -> str:
    np.savetxt(path, np.linspace(0, 1, 10001)[1:, None])
    return str(path)


PERM = np.random.default_rng(7).permutation(N)
OTHER = [*NAMES[:-2], "NetY", "NetZ"]


# --- 1: validate -------------------------------------------------------------------------------


def test_validate_refuses_other_names_without_tr(tmp_path: Path, capsys) -> None:
    a = _data()
    fc = _square(tmp_path / "fc.csv", a["fc"], NAMES)
    sc = _square(tmp_path / "sc.csv", a["sc"], OTHER)
    assert main(["validate", "--fc", fc, "--fcd-cdf", _cdf(tmp_path / "c.csv"), "--sc", sc]) == 2
    err = capsys.readouterr().err
    assert sc in err and f"other regions than {fc}" in err and "'NetY', 'NetZ'" in err


def test_validate_refuses_a_map_naming_other_regions(tmp_path: Path, capsys) -> None:
    a = _data()
    fc = _square(tmp_path / "fc.csv", a["fc"], NAMES)
    m = _map(tmp_path / "m.csv", a["myelin"], NAMES, np.arange(N))
    g = tmp_path / "g.csv"
    pd.DataFrame({"region": OTHER, "value": a["gradient"]}).to_csv(g, index=False)
    argv = ["validate", "--fc", fc, "--myelin", m, "--gradient", str(g)]
    assert main(argv) == 2
    assert f"{g}: is labelled with other regions than {fc}" in capsys.readouterr().err


def test_validate_reorders_without_contradictory_warnings(tmp_path: Path, capsys) -> None:
    a = _data()
    fc = _square(tmp_path / "fc.csv", a["fc"], NAMES)
    sc = _square(tmp_path / "sc.csv", a["sc"], NAMES, PERM)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main(["validate", "--fc", fc, "--sc", sc]) == 0
    texts = [str(w.message) for w in seen]
    assert not [t for t in texts if "file order" in t], texts
    assert any(t.startswith(f"{sc}: lists the regions of {fc} in another order") for t in texts)
    out = capsys.readouterr().out
    assert "ok  SC" in out and f"put in its order: {sc}" in out


def test_validate_matches_timeseries_runs_by_name(tmp_path: Path, capsys) -> None:
    a, b = _data(0), _data(1)
    run1, run2 = tmp_path / "r1.tsv", tmp_path / "r2.tsv"
    pd.DataFrame(a["ts"], columns=NAMES).to_csv(run1, sep="\t", index=False)
    cols = [NAMES[i] for i in PERM]
    pd.DataFrame(b["ts"][:, PERM], columns=cols).to_csv(run2, sep="\t", index=False)
    sc = _square(tmp_path / "sc.csv", a["sc"], OTHER)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main(["validate", "--timeseries", str(run1), str(run2)]) == 0
        assert main(["validate", "--timeseries", str(run1), str(run2), "--sc", sc]) == 2
    assert not [w for w in seen if "file order" in str(w.message)]
    assert f"other regions than {run1}" in capsys.readouterr().err


# --- 2: the Python API with paths --------------------------------------------------------------


def test_api_paths_come_back_in_the_fc_order(tmp_path: Path) -> None:
    a = _data()
    fc = _square(tmp_path / "fc.csv", a["fc"], NAMES)
    sc = _square(tmp_path / "sc.csv", a["sc"], NAMES, PERM)
    m = _map(tmp_path / "m.csv", a["myelin"], NAMES, PERM)
    g = _map(tmp_path / "g.csv", a["gradient"], NAMES, PERM[::-1])
    cdf = _cdf(tmp_path / "c.csv")
    with pytest.warns(InputWarning, match="another order"):
        s = subject_from_arrays("s", fc, cdf, tr=0.72, scan_length=43.2, sc=sc, myelin=m, gradient=g)
    assert s.regions == tuple(NAMES)
    np.testing.assert_allclose(s.sc, a["sc"])  # the SC permuted above, back in FC order
    np.testing.assert_allclose(s.myelin, a["myelin"])
    np.testing.assert_allclose(s.gradient, a["gradient"])
    assert s.sources["sc"] == sc and s.sources["fc"] == fc
    # the CLI's reading of the same files gives the same subject
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        cli = load_subject("s", 0.72, 43.2, fc=fc, fcd_cdf=cdf, sc=sc, myelin=m, gradient=g)
    for field in ("fc", "sc", "myelin", "gradient"):
        np.testing.assert_allclose(getattr(s, field), getattr(cli, field))
    assert s.regions == cli.regions


def test_api_fc_runs_and_a_labelled_sc_are_matched(tmp_path: Path) -> None:
    a, b = _data(0), _data(1)
    run1 = _square(tmp_path / "fc1.csv", a["fc"], NAMES)
    run2 = _square(tmp_path / "fc2.csv", b["fc"], NAMES, PERM)
    cols = [NAMES[i] for i in PERM]
    sc = pd.DataFrame(a["sc"][np.ix_(PERM, PERM)], index=cols, columns=cols)
    with pytest.warns(InputWarning):
        s = subject_from_arrays(
            "s", [run1, run2], _cdf(tmp_path / "c.csv"), tr=0.72, scan_length=43.2, sc=sc
        )
    np.testing.assert_allclose(s.fc, fisher_z_mean(np.stack([a["fc"], b["fc"]])), atol=1e-12)
    np.testing.assert_allclose(s.sc, a["sc"])


def test_api_refuses_files_naming_other_regions(tmp_path: Path) -> None:
    a = _data()
    fc = _square(tmp_path / "fc.csv", a["fc"], NAMES)
    sc = _square(tmp_path / "sc.csv", a["sc"], OTHER)
    with pytest.raises(InvalidInputError, match=r"other regions than fc .*'NetY', 'NetZ'"):
        subject_from_arrays("s", fc, _cdf(tmp_path / "c.csv"), tr=0.72, scan_length=43.2, sc=sc)


def test_api_refuses_a_plain_array_next_to_a_reordered_file(tmp_path: Path) -> None:
    a = _data()
    fc = _square(tmp_path / "fc.csv", a["fc"], NAMES)
    sc = _square(tmp_path / "sc.csv", a["sc"], NAMES, PERM)
    with pytest.raises(InvalidInputError, match="order cannot be checked"):
        subject_from_arrays(
            "s", fc, _cdf(tmp_path / "c.csv"), tr=0.72, scan_length=43.2, sc=sc,
            myelin=a["myelin"], gradient=a["gradient"],
        )  # fmt: skip


# --- 3: the cohort FC gradient -----------------------------------------------------------------


def _manifest(tmp_path: Path, fcs: list[tuple[np.ndarray, list[str], np.ndarray]]) -> pd.DataFrame:
    cdf = _cdf(tmp_path / "cdf.csv")
    rows = []
    for k, (fc, names, perm) in enumerate(fcs):
        path = _square(tmp_path / f"sub-{k:02d}_fc.csv", fc, names, perm)
        sc = _square(tmp_path / f"sub-{k:02d}_sc.csv", _data()["sc"], names)  # in its names' order
        rows.append(
            {"subject_id": f"sub-{k:02d}", "tr": 0.72, "scan_length": 43.2, "fc": path,
             "fcd_cdf": cdf, "sc": sc}
        )  # fmt: skip
    return pd.DataFrame(rows)


def _plan(table: pd.DataFrame):
    from delssome_norms.fit.cohort import CohortPlan

    rows = [dict(r) for _, r in table.iterrows()]
    return CohortPlan(rows=rows, groups=[list(range(len(rows)))], group_size=len(rows), n_regions=N)


def test_cohort_gradient_averages_fcs_in_the_first_subjects_order(tmp_path: Path) -> None:
    fcs = [_data(k)["fc"] for k in range(3)]
    perms = [np.arange(N), PERM, np.arange(N)[::-1]]
    plan = _plan(_manifest(tmp_path, [(f, NAMES, p) for f, p in zip(fcs, perms)]))
    with pytest.warns(InputWarning, match="puts the FC of sub-01, sub-02 in sub-00's region order"):
        got = cohort_gradient(plan)
    np.testing.assert_allclose(got, default_gradient(fisher_z_mean(np.stack(fcs))), atol=1e-10)
    # a subject fitted with it is put in its order (its FC and SC), named
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        s = _load_row(plan.rows[1], N, FitSettings())
    assert s.regions == tuple(NAMES)
    np.testing.assert_allclose(s.fc, fcs[1])
    np.testing.assert_allclose(s.sc, _data()["sc"])


def test_a_subject_naming_other_regions_is_left_out_and_fails_alone(tmp_path: Path) -> None:
    fcs = [_data(k)["fc"] for k in range(3)]
    table = _manifest(tmp_path, [(fcs[0], NAMES, np.arange(N)), (fcs[1], OTHER, np.arange(N)),
                                 (fcs[2], NAMES, PERM)])  # fmt: skip
    plan = _plan(table)
    with pytest.warns(InputWarning, match=r"averages 2 of 3 subjects: 1 subject\(s\) .*sub-01"):
        got = cohort_gradient(plan)
    np.testing.assert_allclose(
        got, default_gradient(fisher_z_mean(np.stack([fcs[0], fcs[2]]))), atol=1e-10
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        with pytest.raises(InvalidInputError, match=r"cohort FC gradient .* sub-00's regions"):
            _load_row(plan.rows[1], N, FitSettings())
        # with maps of its own it does not use the gradient: fitted in its own order
        m = _map(tmp_path / "m.csv", _data()["myelin"], OTHER, np.arange(N))
        g = _map(tmp_path / "g.csv", _data()["gradient"], OTHER, np.arange(N))
        sc = _square(tmp_path / "sc_other.csv", _data()["sc"], OTHER)
        row = {**plan.rows[1], "myelin": m, "gradient": g, "sc": sc}
        assert _load_row(row, N, FitSettings()).regions == tuple(OTHER)


def test_plan_cohort_keeps_its_rows_for_the_gradient(tmp_path: Path) -> None:
    """Through the manifest reader and plan_cohort, as run_cohort does."""
    from delssome_norms.io import read_manifest

    fcs = [_data(k)["fc"] for k in range(2)]
    table = _manifest(tmp_path, [(fcs[0], NAMES, np.arange(N)), (fcs[1], NAMES, PERM)])
    table.to_csv(tmp_path / "manifest.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        plan = plan_cohort(read_manifest(tmp_path / "manifest.csv"), FitSettings(), group_size=2)
        got = cohort_gradient(plan)
    np.testing.assert_allclose(got, default_gradient(fisher_z_mean(np.stack(fcs))), atol=1e-10)


def test_validate_manifest_names_a_subject_the_cohort_gradient_cannot_serve(
    tmp_path: Path, capsys
) -> None:
    fcs = [_data(k)["fc"] for k in range(3)]
    table = _manifest(tmp_path, [(fcs[0], NAMES, np.arange(N)), (fcs[1], NAMES, PERM),
                                 (fcs[2], OTHER, np.arange(N))])  # fmt: skip
    table["scan_length"] = 864.0
    table.to_csv(tmp_path / "manifest.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        assert main(["validate", "--manifest", str(tmp_path / "manifest.csv")]) == 2
    err = capsys.readouterr().err
    assert "1 of 3 subject(s) cannot be fitted: sub-02" in err and "sub-00's regions" in err
