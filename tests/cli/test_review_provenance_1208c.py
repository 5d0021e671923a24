"""Review of provenance (2026-12-08, third pass): what ``simulate`` and ``collect`` record and say.

* ``simulate --params DIR/best_parameters.csv`` without ``--from-run`` warns when the fit's
  ``run.json`` beside the parameters records another SC (by digest) than the one simulated (the
  template when ``--sc`` is left out), naming the run.json and ``--from-run DIR`` / ``--sc``;
* ``simulate --from-run`` with another fit's parameters says first that the parameters file is
  not that fit's (not "another device, engine or CPU");
* ``collect``'s sidecar says which subjects used which SC, maps and design: ``maps`` and
  ``design`` were the first subject's, and ``sc`` named no subjects.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from delssome_norms.cli.main import main
from delssome_norms.cli.simulate_cmd import _compare_with_fit
from delssome_norms.datasets import DK68_REGIONS, load_default_template
from delssome_norms.errors import InputWarning
from delssome_norms.fit import collect
from delssome_norms.fit.outputs import (
    run_fingerprint,
    run_record,
    subject_provenance,
    write_result_files,
)
from delssome_norms.fit.settings import FitSettings
from delssome_norms.fit.subject import SubjectInputs
from delssome_norms.io import read_table_provenance, write_matrix
from delssome_norms.io.digest import arrays_sha256
from delssome_norms.io.provenance import pipeline_differences

# -- simulate: the SC of the fit beside --params --------------------------------------------------

FAST = [
    "--tr", "0.72", "--scan-length", "14.4", "--dt", "0.005", "--burn-in", "0.72",
    "--fcd-window", "5", "--warmup-steps", "50", "--n-dup", "1",
]  # fmt: skip


def _parameters(path: Path, scale: float = 1.0) -> Path:
    n = len(DK68_REGIONS)
    pd.DataFrame(
        {
            "region_index": range(n),
            "region": list(DK68_REGIONS),
            "wEE": 2.9 * scale * np.ones(n),
            "wEI": 1.35 * np.ones(n),
            "sigma": 0.0055 * np.ones(n),
            "G": 1.85 * np.ones(n),
        }
    ).to_csv(path, index=False, float_format="%.17g")
    return path


def _fit_folder(tmp: Path, sc: np.ndarray, name: str, template: bool) -> Path:
    """A fit's folder: its best_parameters.csv and a run.json recording its SC (as a fit does:
    ``provenance.sc``, ``provenance.pipeline.sc``, ``inputs.sc``)."""
    fit = tmp / "fit"
    fit.mkdir()
    _parameters(fit / "best_parameters.csv")
    sha = arrays_sha256(sc)
    run = {
        "status": "finished",
        "inputs": {"sc": name},
        "provenance": {
            "sc": {"name": name, "sha256": sha},
            "pipeline": {"sc": f"template {sha}" if template else "subject SC"},
        },
    }
    (fit / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return fit


def _simulate(argv: list[str]) -> list[str]:
    """``simulate``'s warnings about the fit's SC (others, e.g. the regime, are left out)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["simulate", *argv, *FAST]) == 0
    return [str(w.message) for w in caught if "beside --params" in str(w.message)]


def test_simulate_warns_when_the_fit_beside_the_parameters_used_another_sc(tmp_path: Path) -> None:
    template = np.asarray(load_default_template().sc, dtype=np.float64)
    subject_sc = template * (1.0 + 0.05 * np.add.outer(np.arange(68), np.arange(68)) / 68)
    write_matrix(subject_sc, tmp_path / "sub_sc.csv")
    fit = _fit_folder(tmp_path, subject_sc, "sub_sc.csv", template=False)
    params = str(fit / "best_parameters.csv")
    # --sc left out: the template is simulated, not the fit's subject SC
    warned = _simulate(["--params", params, "--out-dir", str(tmp_path / "a")])
    assert len(warned) == 1, warned
    assert str(fit / "run.json") in warned[0] and "the default DK68 template SC" in warned[0]
    assert "no --sc given" in warned[0] and f"--from-run {fit}" in warned[0]
    assert "--sc with the fit's SC (run.json inputs.sc: sub_sc.csv)" in warned[0]
    record = json.loads((tmp_path / "a" / "simulate.json").read_text())
    assert record["sc"]["sha256"] == arrays_sha256(template)  # the template, recorded honestly
    # the fit's SC given: nothing to say
    assert _simulate(["--params", params, "--sc", str(tmp_path / "sub_sc.csv"), "--out-dir",
                      str(tmp_path / "b")]) == []  # fmt: skip
    # parameters without a run.json beside them: nothing to compare with
    alone = _parameters(tmp_path / "alone.csv")
    assert _simulate(["--params", str(alone), "--out-dir", str(tmp_path / "c")]) == []


def test_simulate_warns_when_a_template_fit_gets_another_sc(tmp_path: Path) -> None:
    template = np.asarray(load_default_template().sc, dtype=np.float64)
    fit = _fit_folder(tmp_path, template, "tvb-data:connectivity_68.zip", template=True)
    params = str(fit / "best_parameters.csv")
    assert _simulate(["--params", params, "--out-dir", str(tmp_path / "a")]) == []
    write_matrix(template * 1.5, tmp_path / "other_sc.csv")
    warned = _simulate(
        ["--params", params, "--sc", str(tmp_path / "other_sc.csv"), "--out-dir", str(tmp_path / "b")]
    )
    assert len(warned) == 1 and f"the SC {tmp_path / 'other_sc.csv'}" in warned[0]
    assert "leave out --sc (the fit used the default DK68 template SC)" in warned[0]


# -- simulate --from-run: parameters of another fit -----------------------------------------------


@dataclass
class _Record:
    folder: Path
    path: Path
    level_shift_log: float = 0.0
    combined: bool = False


def _compared(record: _Record, means: dict, params: str | None) -> tuple[str, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        said = _compare_with_fit(record, means, params)
    return said, [str(w.message) for w in caught]


def test_from_run_with_another_fits_parameters_says_so_first(tmp_path: Path) -> None:
    fit = tmp_path / "fitE"
    fit.mkdir()
    s_e, s_i = np.array([0.16, 0.17, 0.15]), np.array([0.05, 0.04, 0.06])
    pd.DataFrame({"region_index": range(3), "EI_ratio": s_e / s_i, "S_E": s_e, "S_I": s_i}).to_csv(
        fit / "EI_ratio.csv", index=False, float_format="%.17g"
    )
    n = 3
    own = pd.DataFrame({"region_index": range(n), "wEE": [2.9] * n, "wEI": [1.35] * n,
                        "sigma": [0.0055] * n, "G": [1.85] * n})  # fmt: skip
    own.to_csv(fit / "best_parameters.csv", index=False)
    record = _Record(fit, fit / "run.json")
    other = {"S_E": s_e * 1.2, "S_I": s_i, "EI_ratio": s_e * 1.2 / s_i}  # another simulation
    # fitA's parameters against fitE's run
    (tmp_path / "fitA").mkdir()
    own.assign(wEE=[3.1] * n).to_csv(tmp_path / "fitA" / "best_parameters.csv", index=False)
    said, warned = _compared(record, other, str(tmp_path / "fitA" / "best_parameters.csv"))
    assert len(warned) == 1
    reason = warned[0].split("(largest relative difference 0.2): ", 1)[1]
    assert reason.startswith(
        f"--params {tmp_path / 'fitA' / 'best_parameters.csv'} is not this fit's parameters file "
        f"(its values differ from {fit / 'best_parameters.csv'}"
    )
    assert "device" not in warned[0] and said.endswith("--params is not this fit's parameters file")
    # the fit's own parameters (also a copy written otherwise): the other reasons, as before
    own.to_csv(tmp_path / "copy.csv", index=False, float_format="%.6f")
    for params in (str(fit / "best_parameters.csv"), str(tmp_path / "copy.csv"), None):
        said, warned = _compared(record, other, params)
        assert len(warned) == 1 and "another device, engine or CPU" in warned[0], params
        assert "not this fit's" not in warned[0] + said


# -- collect: which subjects used which SC, maps and design ---------------------------------------

NAMES = [f"{h}_{r}" for h in ("L", "R") for r in ("alpha", "beta", "gamma")]
N = len(NAMES)
RNG = np.random.default_rng(11)
SC_A = RNG.random((N, N))
SC_A = (SC_A + SC_A.T) / 2
SC_B = SC_A * 1.3
MAPS_1 = RNG.normal(size=(2, N))
MAPS_2 = MAPS_1 + 0.5


def _finish(root: Path, sid: str, sc: np.ndarray, maps: np.ndarray, gradient_from: str) -> None:
    """A finished subject fitted with ``sc`` and given ``maps`` (the fit's own writers)."""
    settings = FitSettings()
    subject = SubjectInputs(
        subject_id=sid, fc=np.corrcoef(RNG.normal(size=(N, 40))), fcd_cdf=np.linspace(0, 1, 10000),
        tr=0.72, scan_length=180.0, sc=sc, myelin=maps[0], gradient=maps[1],
        sources={"sc": f"{sid}_sc.csv"}, regions=tuple(NAMES),
    )  # fmt: skip
    design = f"[1, myelin, gradient]; gradient: {gradient_from}"
    ei, ones = RNG.uniform(0.5, 2.0, N), np.ones(N)
    info = {
        "fingerprint": run_fingerprint(subject, settings),
        "provenance": subject_provenance(subject, settings, design, maps[1]),
    }
    write_result_files(
        root / sid,
        columns={"EI_ratio": ei, "S_E": ei, "S_I": ones, "r_E": 3 * ones},
        parameters={"wEE": ones, "wEI": ones, "sigma": ones, "G": 1.0},
        losses={"test": {"corr_loss": 0.1, "l1_loss": 0.1, "ks_loss": 0.1}},
        run=run_record(sid, ei, np.zeros(3), info),
    )


def _collect(tmp: Path, ids: list[str]) -> dict:
    pd.DataFrame(
        {"subject_id": ids, "age_in_years": 20.0 + np.arange(len(ids)), "sex": "female"}
    ).to_csv(tmp / "demo.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)  # uncalibrated intervals of these fits
        collect(tmp / "fits", tmp / "demo.csv", tmp / "table.csv")
    return read_table_provenance(tmp / "table.csv")


def _maps(maps: np.ndarray) -> dict:
    return {"name": "given", "sha256": arrays_sha256(maps[0], maps[1])}


def test_collect_sidecar_says_which_subjects_used_which_sc_maps_and_design(tmp_path: Path) -> None:
    fits = tmp_path / "fits"
    _finish(fits, "s1", SC_A, MAPS_1, "given")
    _finish(fits, "s2", SC_A, MAPS_2, "given")
    _finish(fits, "s3", SC_B, MAPS_2, "a file of its own")
    side = _collect(tmp_path, ["s1", "s2", "s3"])
    a, b = arrays_sha256(SC_A), arrays_sha256(SC_B)
    assert side["sc"] == [
        {"name": "s1_sc.csv", "sha256": a, "subjects": 2, "subject_ids": ["s1", "s2"],
         "subject_ids_complete": True},
        {"name": "s3_sc.csv", "sha256": b, "subjects": 1, "subject_ids": ["s3"],
         "subject_ids_complete": True},
    ]  # fmt: skip
    # was the first subject's maps and design
    assert side["maps"] == [
        {**_maps(MAPS_1), "subjects": 1, "subject_ids": ["s1"], "subject_ids_complete": True},
        {**_maps(MAPS_2), "subjects": 2, "subject_ids": ["s2", "s3"], "subject_ids_complete": True},
    ]
    assert side["design"] == [
        {"design": "[1, myelin, gradient]; gradient: given", "subjects": 2,
         "subject_ids": ["s1", "s2"], "subject_ids_complete": True},
        {"design": "[1, myelin, gradient]; gradient: a file of its own", "subjects": 1,
         "subject_ids": ["s3"], "subject_ids_complete": True},
    ]  # fmt: skip
    # one pipeline all the same (a subject SC, given maps): what charts compare is unchanged
    assert side["pipeline"]["sc"] == "subject SC" and side["pipeline"]["maps"] == "given"
    assert side["pipeline"]["design"] == "[1, myelin, gradient]"
    assert pipeline_differences(side["pipeline"], side["pipeline"]) == []


def test_collect_sidecar_of_agreeing_subjects_keeps_one_value_and_a_few_ids(tmp_path: Path) -> None:
    ids = [f"s{k}" for k in range(1, 8)]
    for sid in ids:
        _finish(tmp_path / "fits", sid, SC_A, MAPS_1, "given")
    side = _collect(tmp_path, ids)
    assert side["maps"] == _maps(MAPS_1)  # the old meaning where all subjects agree
    assert side["design"] == "[1, myelin, gradient]; gradient: given"
    assert side["sc"] == [
        {"name": "s1_sc.csv", "sha256": arrays_sha256(SC_A), "subjects": 7,
         "subject_ids": ids[:5], "subject_ids_complete": False},
    ]  # fmt: skip
    # a table of many subjects, most with one SC: only the few others are listed in full
    shutil.rmtree(tmp_path / "fits")
    for k, sid in enumerate(ids):
        _finish(tmp_path / "fits", sid, SC_B if k == 6 else SC_A, MAPS_1, "given")
    side = _collect(tmp_path, ids)
    assert [(e["subjects"], e["subject_ids"], e["subject_ids_complete"]) for e in side["sc"]] == [
        (6, ids[:5], False),
        (1, ["s7"], True),
    ]
