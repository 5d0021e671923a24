"""Review: fitting an atlas other than DK68 (a 10-region toy atlas, a 100-region atlas).

Checks that inputs labelled with another atlas's region names are aligned by name and name the
results, that a search space in which no candidate can be valid is refused before any work (with
the option that gave the maps), and that surrogate weights of another atlas are refused before
the output folder is made. Fits use the real simulator with tiny settings (a few seconds each).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.errors import InvalidInputError
from delssome_norms.fit.design import design_matrix
from delssome_norms.fit.parameterisation import Bounds, Parameterisation
from delssome_norms.io import write_matrix
from delssome_norms.pipeline import EIEstimator
from delssome_norms.pipeline.estimator import subject_from_arrays

N = 10
NAMES = [
    f"7Networks_{h}_{net}"
    for h in ("LH", "RH")
    for net in ("Vis", "SomMot", "DorsAttn", "Limbic", "Default")
]
FAST = dict(
    generations=3, popsize=12, mu=3, n_dup=1, dt_train=0.005, dt_val=0.005, dt_test=0.005,
    burn_in=1.44, fcd_window=5, warmup_steps=50, test_top_k=2, seed=3, interval=False,
)  # fmt: skip
FAST_CLI = [
    "--popsize", "6", "--mu", "2", "--n-dup", "1", "--dt-train", "0.005", "--dt-val", "0.005",
    "--dt-test", "0.005", "--burn-in", "0.72", "--fcd-window", "5", "--warmup-steps", "50",
    "--test-top-k", "2", "--quiet", "--generations", "1",
]  # fmt: skip


def _inputs(seed: int = 0) -> dict[str, np.ndarray]:
    """FC, FCD-CDF (of a 40-frame random time series), SC and maps of the toy atlas, in NAMES order."""
    rng = np.random.default_rng(seed)
    ts = rng.standard_normal((40, N)) + 0.6 * rng.standard_normal((40, 1)) * np.linspace(0.5, 1.5, N)
    fc = np.corrcoef(ts.T)
    cdf = np.cumsum(np.full(10000, 1.0))
    cdf /= cdf[-1]
    sc = np.random.default_rng(1).random((N, N)) ** 2
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0.0)
    x = np.linspace(-1, 1, N)
    myelin = 1.6 - 0.2 * x + 0.05 * np.sin(5 * x)
    gradient = (x - x.mean()) / x.std()
    return {"fc": fc, "cdf": cdf, "sc": sc, "myelin": myelin, "gradient": gradient}


def _labelled(a: dict[str, np.ndarray], perm: np.ndarray) -> dict[str, object]:
    """FC labelled in NAMES order; SC and maps labelled and listed in the order ``perm``."""
    names = np.array(NAMES)[perm]
    return {
        "fc": pd.DataFrame(a["fc"], index=NAMES, columns=NAMES),
        "sc": pd.DataFrame(a["sc"][np.ix_(perm, perm)], index=names, columns=names),
        "myelin": pd.Series(a["myelin"][perm], index=names),
        "gradient": pd.Series(a["gradient"][perm], index=names),
    }


def test_labelled_inputs_of_another_atlas_are_matched_by_name() -> None:
    a = _inputs()
    perm = np.random.default_rng(5).permutation(N)
    lab = _labelled(a, perm)
    s = subject_from_arrays(
        "sub-x", lab["fc"], a["cdf"], tr=0.72, scan_length=28.8,
        sc=lab["sc"], myelin=lab["myelin"], gradient=lab["gradient"],
    )  # fmt: skip
    assert s.regions == tuple(NAMES)
    np.testing.assert_allclose(s.sc, a["sc"])  # back in the FC's order, as built
    np.testing.assert_allclose(s.myelin, a["myelin"])
    np.testing.assert_allclose(s.gradient, a["gradient"])


def test_labels_naming_other_regions_are_refused() -> None:
    a = _inputs()
    other = [*NAMES[:-1], "7Networks_RH_Cont"]
    with pytest.raises(InvalidInputError, match=r"^sc: .*other regions than fc.*Cont"):
        subject_from_arrays(
            "sub-x", pd.DataFrame(a["fc"], index=NAMES, columns=NAMES), a["cdf"], tr=0.72,
            scan_length=28.8, sc=pd.DataFrame(a["sc"], index=other, columns=other),
        )  # fmt: skip


def test_fit_and_collect_of_another_atlas_use_its_region_names(tmp_path: Path) -> None:
    from delssome_norms.fit import collect

    perm = np.arange(N)[::-1]
    for sid, seed in (("sub-a", 0), ("sub-b", 2)):
        a = _inputs(seed)
        lab = _labelled(a, perm)
        est = EIEstimator(**FAST, out_dir=tmp_path / "fits" / sid)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(
                lab["fc"], a["cdf"], tr=0.72, scan_length=28.8, sc=lab["sc"],
                myelin=lab["myelin"], gradient=lab["gradient"], subject_id=sid,
            )  # fmt: skip
        assert est.result_.regions == NAMES
        frame = est.result_.to_frame()
        assert list(frame["region"]) == NAMES and np.all(frame["EI_ratio"] > 0)
        run = json.loads((tmp_path / "fits" / sid / "run.json").read_text())
        assert run["provenance"]["atlas"]["regions"] == NAMES
        assert run["provenance"]["atlas"]["name"] == f"custom-{N}"
    demo = tmp_path / "demo.csv"
    pd.DataFrame({"subject_id": ["sub-a", "sub-b"], "age_in_years": [30, 40], "sex": ["F", "M"]}).to_csv(
        demo, index=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        collect(tmp_path / "fits", demo, tmp_path / "table.csv")
    regions = pd.read_csv(tmp_path / "table.regions.csv")
    assert list(regions["region"]) == NAMES


def _spiky(n: int = 100) -> np.ndarray:
    """A map dominated by one region (z about +9.9), the others spread evenly around 0."""
    g = np.linspace(-0.05, 0.05, n)
    g[n // 2] = 1.0
    return (g - g.mean()) / g.std()


def test_infeasible_maps_are_refused_and_feasible_ones_accepted() -> None:
    g = _spiky()
    bounds = Bounds(wEI=(0.4, 3.2))
    space = Parameterisation(design_matrix(g, warn=False), g, bounds)
    # [1, gradient]: wEI = a + b g with b >= 0 and b sd(g) >= 0.3, so its range is at least
    # 0.3 range(g) / sd(g) (ddof 1), here above the allowed 2.8
    need = 0.3 * np.ptp(g) / g.std(ddof=1)
    assert need > 2.8 * 1.05
    a_min = bounds.wEI[0] - (0.3 / g.std(ddof=1)) * g.min()  # the narrowest valid pattern
    narrowest = np.array([[2.0, 0.0, a_min, 0.3 / g.std(ddof=1), 1.0, 0.004, 0.0]])
    assert not space.is_valid(narrowest)[0]
    with pytest.raises(InvalidInputError, match=r"^gradient: no candidate can pass.*index 50"):
        space.check_feasible("gradient")
    # a smooth map of 100 regions with myelin: an explicit candidate is valid, so no refusal
    x = np.linspace(-1, 1, 100)
    smooth, myelin = (x - x.mean()) / x.std(), 1.6 - 0.2 * x + 0.05 * np.sin(7 * x)
    space = Parameterisation(design_matrix(smooth, myelin), smooth, bounds, myelin=myelin)
    candidate = np.array([[3.0, 0.0, 0.0, 1.8, 0.0, 0.4, 1.0, 0.004, 0.0, 0.0]])
    assert space.is_valid(candidate)[0]
    space.check_feasible()


def _write_cli_inputs(tmp: Path, n: int, gradient: np.ndarray, myelin: np.ndarray) -> list[str]:
    rng = np.random.default_rng(0)
    ts = rng.standard_normal((40, n)) + 0.6 * rng.standard_normal((40, 1))
    fc = np.corrcoef(ts.T)
    cdf = np.cumsum(np.ones(10000))
    sc = rng.random((n, n)) ** 2
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0.0)
    files = {"fc": fc, "cdf": cdf / cdf[-1], "sc": sc, "myelin": myelin, "gradient": gradient}
    for name, value in files.items():
        write_matrix(value, tmp / f"{name}.csv")
    return [
        "estimate-ei", "--fc", str(tmp / "fc.csv"), "--fcd-cdf", str(tmp / "cdf.csv"), "--tr", "0.72",
        "--scan-length", "28.8", "--sc", str(tmp / "sc.csv"), "--myelin", str(tmp / "myelin.csv"),
        "--gradient", str(tmp / "gradient.csv"), *FAST_CLI,
    ]  # fmt: skip


def test_cli_refuses_maps_no_candidate_can_satisfy_before_making_the_folder(
    tmp_path: Path, capsys
) -> None:
    g = _spiky(150)
    x = np.linspace(-1, 1, 150)
    argv = _write_cli_inputs(tmp_path, 150, g, 1.5 - 0.1 * g + 0.001 * np.sin(7 * x))
    out = tmp_path / "out"
    assert main([*argv, "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--gradient" in err and "no candidate can pass" in err
    assert not out.exists()


def test_cli_refuses_dk68_surrogate_weights_before_making_the_folder(tmp_path: Path, capsys) -> None:
    x = np.linspace(-1, 1, N)
    argv = _write_cli_inputs(tmp_path, N, (x - x.mean()) / x.std(), 1.6 - 0.2 * x)
    out = tmp_path / "out"
    assert main([*argv, "--mode", "surrogate", "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "N=68" in err and f"N={N}" in err and "--mode euler" in err
    assert not out.exists()
