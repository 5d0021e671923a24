"""Bad-input table of the command line: every entry point, every ordinary mistake.

Each case runs ``delssome-norms`` in-process and asserts: exit status 2, exactly one line on
stderr, the offending file or option named, and nothing written or lost (the whole temporary tree,
names and contents, is the same before and after). Inputs are a 6-region toy subject, and every
mistake is caught before any simulation, so the whole table runs in seconds.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from delssome_norms.cli.main import main

N = 6
FAST = ["--generations", "2", "--popsize", "6", "--mu", "2", "--n-dup", "1", "--dt-train", "0.005",
        "--dt-val", "0.005", "--dt-test", "0.005", "--burn-in", "0.72", "--fcd-window", "5",
        "--warmup-steps", "50", "--test-top-k", "2", "--quiet"]  # fmt: skip
TIMING = ["--tr", "0.72", "--scan-length", "28.8"]


def _make_inputs(d: Path) -> dict[str, Path]:
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ts = rng.standard_normal((40, N)) + 0.5 * rng.standard_normal((40, 1))
    fc = np.corrcoef(ts.T)
    cdf = np.linspace(0, 1, 10001)[1:]
    sc = rng.random((N, N))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0)
    x = np.linspace(-1, 1, N)
    p = {k: d / f"{k}.csv" for k in ("fc", "cdf", "sc", "myelin", "gradient", "params")}
    np.savetxt(p["fc"], fc, delimiter=",")
    np.savetxt(p["cdf"], cdf[:, None], delimiter=",")
    np.savetxt(p["sc"], sc, delimiter=",")
    np.savetxt(p["myelin"], (1.4 - 0.2 * x)[:, None], delimiter=",")
    np.savetxt(p["gradient"], x[:, None], delimiter=",")
    pd.DataFrame({"region_index": range(N), "wEE": 3.0, "wEI": 2.5, "sigma": 0.005, "G": 1.0}).to_csv(
        p["params"], index=False
    )
    p["ts"] = d / "run1.tsv"
    np.savetxt(p["ts"], ts, delimiter="\t")
    p["demo"] = d / "demogr.csv"
    p["demo"].write_text("subject_id,age_in_years,sex\ns01,30,f\ns02,40,m\n")
    p["manifest"] = d / "manifest.csv"
    p["manifest"].write_text(
        f"subject_id,tr,scan_length,fc,fcd_cdf,sc\ns01,0.72,28.8,{p['fc']},{p['cdf']},{p['sc']}\n"
    )
    p["table"] = d / "table.csv"
    p["table"].write_text("subject_id,age_in_years,sex,site,ei_ratio_mean\ns01,30,f,A,1.0\n")
    return p


# ---- ways a file can be unusable (each returns the path to give) ----------------------------
def _missing(d: Path, p: Path) -> Path:
    return d / "no_such_file.csv"


def _directory(d: Path, p: Path) -> Path:
    (d / "a_folder").mkdir(exist_ok=True)
    return d / "a_folder"


def _empty(d: Path, p: Path) -> Path:
    (d / "empty.csv").write_text("")
    return d / "empty.csv"


def _binary(d: Path, p: Path) -> Path:
    (d / "image.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    return d / "image.csv"


def _fifo(d: Path, p: Path) -> Path:
    path = d / "pipe.csv"
    os.mkfifo(path)

    def unblock() -> None:  # without the fix, a reader blocked in open() gets EOF after 3 s
        time.sleep(3)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass

    threading.Thread(target=unblock, daemon=True).start()
    return path


def _dev_zero(d: Path, p: Path) -> Path:
    return Path("/dev/zero")


def _non_utf8(d: Path, p: Path) -> Path:
    (d / "latin1.csv").write_bytes(b"1.0\n\xff\xfe2.0\n")
    return d / "latin1.csv"


GENERIC = {
    "missing": (_missing, "does not exist", "no_such_file.csv"),
    "directory": (_directory, "is a directory", "a_folder"),
    "empty": (_empty, "empty", "empty.csv"),
    "binary": (_binary, "binary", "image.csv"),
    "fifo": (_fifo, "not a regular file", "pipe.csv"),
    "dev_zero": (_dev_zero, "not a regular file", "/dev/zero"),
    "non_utf8": (_non_utf8, "UTF-8", "latin1.csv"),
}


def _estimate(p: dict[str, Path], out: Path) -> list[str]:
    return ["estimate-ei", "--fc", str(p["fc"]), "--fcd-cdf", str(p["cdf"]), "--sc", str(p["sc"]),
            "--myelin", str(p["myelin"]), "--gradient", str(p["gradient"]), *TIMING,
            "--out-dir", str(out), *FAST]  # fmt: skip


def _simulate(p: dict[str, Path], out: Path) -> list[str]:
    return ["simulate", "--params", str(p["params"]), "--sc", str(p["sc"]), "--fc", str(p["fc"]),
            "--fcd-cdf", str(p["cdf"]), "--tr", "0.72", "--scan-length", "28.8", "--dt", "0.005",
            "--burn-in", "0.72", "--fcd-window", "5", "--warmup-steps", "50", "--n-dup", "1",
            "--out-dir", str(out)]  # fmt: skip


def _validate(p: dict[str, Path], out: Path) -> list[str]:
    return ["validate", "--fc", str(p["fc"]), "--fcd-cdf", str(p["cdf"]), "--sc", str(p["sc"]),
            "--myelin", str(p["myelin"]), "--gradient", str(p["gradient"]), "--timeseries",
            str(p["ts"]), "--demographics", str(p["demo"]), "--manifest", str(p["manifest"])]  # fmt: skip


def _prepare(p: dict[str, Path], out: Path) -> list[str]:
    return ["prepare", "--timeseries", str(p["ts"]), "--tr", "0.72", "--fcd-window", "5",
            "--out-dir", str(out)]  # fmt: skip


def _cohort(p: dict[str, Path], out: Path) -> list[str]:
    return ["cohort", "--manifest", str(p["manifest"]), "--out-dir", str(out), "--batch-subjects",
            "1", *FAST]  # fmt: skip


def _collect(p: dict[str, Path], out: Path) -> list[str]:
    return ["collect", "--in-dir", str(p["fc"].parent), "--demographics", str(p["demo"]),
            "--out", str(out / "cohort.csv")]  # fmt: skip


def _estimate_ts(p: dict[str, Path], out: Path) -> list[str]:
    return ["estimate-ei", "--timeseries", str(p["ts"]), "--sc", str(p["sc"]), "--tr", "0.72",
            "--out-dir", str(out), *FAST]  # fmt: skip


def _charts_fit(p: dict[str, Path], out: Path) -> list[str]:
    return ["charts", "fit", "--table", str(p["table"]), "--out", str(out / "chart")]


# (command builder, the option whose value is replaced, key of the input it names)
FILE_OPTIONS = [
    ("estimate", _estimate, "--fc", "fc"),
    ("estimate", _estimate, "--fcd-cdf", "cdf"),
    ("estimate", _estimate, "--sc", "sc"),
    ("estimate", _estimate, "--myelin", "myelin"),
    ("estimate", _estimate, "--gradient", "gradient"),
    ("estimate_ts", _estimate_ts, "--timeseries", "ts"),
    ("simulate", _simulate, "--params", "params"),
    ("simulate", _simulate, "--sc", "sc"),
    ("simulate", _simulate, "--fc", "fc"),
    ("simulate", _simulate, "--fcd-cdf", "cdf"),
    ("validate", _validate, "--demographics", "demo"),
    ("validate", _validate, "--manifest", "manifest"),
    ("prepare", _prepare, "--timeseries", "ts"),
    ("cohort", _cohort, "--manifest", "manifest"),
    ("collect", _collect, "--demographics", "demo"),
    ("charts_fit", _charts_fit, "--table", "table"),
]


def _replace(argv: list[str], option: str, value: str) -> list[str]:
    i = argv.index(option)
    return [*argv[: i + 1], value, *argv[i + 2 :]]


Case = tuple[str, Callable[[dict[str, Path], Path, Path], list[str]], str, str]
CASES: list[Case] = []
for cmd, build, option, key in FILE_OPTIONS:
    for kind, (make, fragment, named) in GENERIC.items():
        if kind == "non_utf8" and key == "ts":
            continue

        def argv(p, d, out, build=build, option=option, make=make, key=key):
            return _replace(build(p, out), option, str(make(d, p[key])))

        CASES.append((f"{cmd}{option}-{kind}", argv, fragment, named))


def _write(d: Path, name: str, text: str) -> Path:
    (d / name).write_text(text)
    return d / name


def _ts_file(d: Path, arr: np.ndarray, name: str = "bad_run.tsv") -> Path:
    np.savetxt(d / name, arr, delimiter="\t")
    return d / name


def _params(d: Path, name: str = "bad_params.csv", n: int = N, **values) -> Path:
    cols = {"region_index": range(n), "wEE": 3.0, "wEI": 2.5, "sigma": 0.005, "G": 1.0, **values}
    pd.DataFrame(cols).to_csv(d / name, index=False)
    return d / name


def _manifest(d: Path, p: dict[str, Path], ids: list[str]) -> Path:
    rows = "".join(f"{i},0.72,28.8,{p['fc']},{p['cdf']},{p['sc']}\n" for i in ids)
    return _write(d, "bad_manifest.csv", "subject_id,tr,scan_length,fc,fcd_cdf,sc\n" + rows)


def _file_in_place_of_dir(d: Path) -> Path:
    return _write(d, "not_a_dir", "x")


def _wide_table(d: Path, n_regions: int) -> Path:
    cols = {"subject_id": ["p1"], "age_in_years": [30.0], "sex": ["f"], "ei_ratio_mean": [1.2]}
    cols.update({f"ei_ratio_roi_{i}": [1.2] for i in range(n_regions)})
    pd.DataFrame(cols).to_csv(d / "bad_table100.csv", index=False)
    return d / "bad_table100.csv"


def _two_pipelines(d: Path) -> Path:
    """A cohort folder with two finished subjects fitted in different modes (euler, surrogate)."""
    from delssome_norms import io

    root = d / "pipelines_in"
    for sid, mode in (("s01", "euler"), ("s02", "surrogate")):
        f = root / sid
        io.write_ei_ratio(f / "EI_ratio.csv", *(np.full(N, v) for v in (1.1, 0.2, 0.18, 3.0, 0.01)))
        io.write_parameters(
            f / "best_parameters.csv", np.full(N, 3.0), np.full(N, 2.5), np.full(N, 0.005), 1.0
        )
        io.write_fit_quality(
            f / "fit_quality.csv", {"test": {"corr_loss": 0, "l1_loss": 0, "ks_loss": 0}}
        )
        pipeline = {"atlas": "custom-6", "n_regions": N, "mode": mode, "design": "[1, gradient]"}
        run = {
            "status": "complete",
            "subject_id": sid,
            "fingerprint": {"settings": {"seed": 0}},
            "provenance": {
                "pipeline": pipeline,
                "atlas": {"name": "custom-6", "n_regions": N, "regions": None},
            },
        }
        io.write_json(run, f / "run.json")
    return root


def _named_ts(
    d: Path, names: list[str], frames: int = 40, name: str = "bad_run.tsv", na: bool = False
) -> Path:
    data = pd.DataFrame(RNG.random((frames, len(names))), columns=names)
    text = data.to_csv(sep="\t", index=False)
    if na:
        lines = text.splitlines()
        lines.insert(2, "\t".join(["n/a"] * len(names)))
        text = "\n".join(lines) + "\n"
    (d / name).write_text(text)
    return d / name


def _regions_by_frames(d: Path) -> Path:
    from delssome_norms.datasets import DK68_REGIONS

    rows = [f"{r}\t" + "\t".join(f"{v:.4f}" for v in RNG.random(40)) for r in DK68_REGIONS]
    (d / "bad_run.tsv").write_text("\n".join(rows) + "\n")
    return d / "bad_run.tsv"


def _score_reference(p: dict[str, Path], out: Path) -> list[str]:
    return [
        "charts",
        "score",
        "--chart",
        "reference",
        "--table",
        str(p["table"]),
        "--out",
        str(out / "scores.csv"),
    ]


RNG = np.random.default_rng(3)
SPECIFIC: list[Case] = [
    # #23: atlas / pipeline / lab-format inputs
    ("score_100_regions_vs_68_chart", lambda p, d, o: _replace(_score_reference(p, o), "--table", str(_wide_table(d, 100))), "n_regions is 100 in the table but 68 in the chart", "bad_table100.csv"),
    ("score_100_regions_vs_68_chart_override", lambda p, d, o: [*_replace(_score_reference(p, o), "--table", str(_wide_table(d, 100))), "--allow-pipeline-mismatch"], "cannot be used even with --allow-pipeline-mismatch", "bad_table100.csv"),
    ("adapt_100_regions_vs_68_chart", lambda p, d, o: ["charts", "adapt", "--chart", "reference", "--controls", str(_wide_table(d, 100)), "--out", str(o / "chart")], "n_regions is 100 in the table but 68 in the chart", "bad_table100.csv"),
    ("collect_two_pipelines", lambda p, d, o: _replace(_collect(p, o), "--in-dir", str(_two_pipelines(d))), "different pipelines: mode is 'euler'", "pipelines_in"),
    ("prepare_ts_regions_by_frames", lambda p, d, o: _replace(_prepare(p, o), "--timeseries", str(_regions_by_frames(d))), "regions x frames", "bad_run.tsv"),
    ("prepare_ts_unknown_region_names", lambda p, d, o: _replace(_prepare(p, o), "--timeseries", str(_named_ts(d, ["lh_precentral", "lh_cuneus", "lh_V1", "rh_precentral", "rh_cuneus", "rh_V1"]))), "'lh_V1', 'rh_V1'", "bad_run.tsv"),
    ("estimate_ts_unknown_region_names", lambda p, d, o: _replace(_estimate_ts(p, o), "--timeseries", str(_named_ts(d, ["ctx-lh-precentral", "ctx-lh-foo", "L_cuneus", "R_cuneus", "rh.insula", "lh.insula"]))), "'ctx-lh-foo'", "bad_run.tsv"),
    ("prepare_ts_na_frame", lambda p, d, o: _replace(_prepare(p, o), "--timeseries", str(_named_ts(d, ["c0", "c1", "c2", "c3", "c4", "c5"], na=True))), "--drop-na-frames", "bad_run.tsv"),
    ("cohort_manifest_no_scan_length_fc", lambda p, d, o: _replace(_cohort(p, o), "--manifest", str(_write(d, "bad_manifest.csv", f"subject_id,tr,fc,fcd_cdf\ns1,0.72,{p['fc']},{p['cdf']}\n"))), "'scan_length'", "bad_manifest.csv"),
    ("prepare_bids_dir_empty", lambda p, d, o: ["prepare", "--bids-dir", str(d), "--tr", "0.72", "--out-dir", str(o)], "no sub-<label>", "case"),
    # 2: subject IDs that would write outside or on top of the out-dir
    ("manifest_id_parent", lambda p, d, o: _replace(_cohort(p, o), "--manifest", str(_manifest(d, p, ["../../x"]))), "not safe folder names", "bad_manifest.csv"),
    ("manifest_id_absolute", lambda p, d, o: _replace(_cohort(p, o), "--manifest", str(_manifest(d, p, ["/tmp/abs"]))), "'/tmp/abs'", "bad_manifest.csv"),
    ("manifest_id_dot", lambda p, d, o: _replace(_cohort(p, o), "--manifest", str(_manifest(d, p, ["."]))), "'.'", "bad_manifest.csv"),
    ("manifest_id_space", lambda p, d, o: _replace(_cohort(p, o), "--manifest", str(_manifest(d, p, ["s 1"]))), "'s 1'", "bad_manifest.csv"),
    ("manifest_ids_listed", lambda p, d, o: _replace(_cohort(p, o), "--manifest", str(_manifest(d, p, ["ok1", "../a", "b/c"]))), "'b/c' (row 3)", "bad_manifest.csv"),
    ("manifest_id_dup_001", lambda p, d, o: _replace(_cohort(p, o), "--manifest", str(_manifest(d, p, ["001", "001"]))), "duplicate subject_id(s): 001", "bad_manifest.csv"),
    ("validate_manifest_id", lambda p, d, o: _replace(_validate(p, o), "--manifest", str(_manifest(d, p, [".."]))), "not safe folder names", "bad_manifest.csv"),
    ("estimate_subject_id", lambda p, d, o: [*_estimate(p, o), "--subject-id", "../x"], "not a safe folder name", "--subject-id"),
    ("collect_id_unsafe", lambda p, d, o: _replace(_collect(p, o), "--demographics", str(_write(d, "bad_demo.csv", "subject_id,age_in_years,sex\n../s,30,f\n"))), "not safe folder names", "bad_demo.csv"),
    # 4: out-dir / --out unusable, devices, scheduler
    ("estimate_outdir_is_file", lambda p, d, o: _replace(_estimate(p, o), "--out-dir", str(_file_in_place_of_dir(d))), "not a folder", "--out-dir"),
    ("estimate_outdir_under_file", lambda p, d, o: _replace(_estimate(p, o), "--out-dir", str(_file_in_place_of_dir(d) / "sub")), "not a folder", "--out-dir"),
    ("estimate_outdir_proc", lambda p, d, o: _replace(_estimate(p, o), "--out-dir", "/proc/delssome_test"), "/proc", "--out-dir"),
    ("cohort_outdir_is_file", lambda p, d, o: _replace(_cohort(p, o), "--out-dir", str(_file_in_place_of_dir(d))), "not a folder", "--out-dir"),
    ("cohort_outdir_proc", lambda p, d, o: _replace(_cohort(p, o), "--out-dir", "/proc/delssome_test"), "/proc", "--out-dir"),
    ("simulate_outdir_is_file", lambda p, d, o: _replace(_simulate(p, o), "--out-dir", str(_file_in_place_of_dir(d))), "not a folder", "--out-dir"),
    ("simulate_outdir_proc", lambda p, d, o: _replace(_simulate(p, o), "--out-dir", "/proc/delssome_test"), "/proc", "--out-dir"),
    ("collect_out_is_dir", lambda p, d, o: _replace(_collect(p, o), "--out", str(d)), "is a folder", "--out"),
    ("collect_out_under_file", lambda p, d, o: _replace(_collect(p, o), "--out", str(_file_in_place_of_dir(d) / "t.csv")), "not a folder", "--out"),
    ("collect_out_proc", lambda p, d, o: _replace(_collect(p, o), "--out", "/proc/delssome.csv"), "/proc", "--out"),
    ("collect_out_is_the_demographics", lambda p, d, o: _replace(_collect(p, o), "--out", str(p["demo"])), "is the input given as --demographics", "--out"),
    ("collect_out_xlsx", lambda p, d, o: _replace(_collect(p, o), "--out", str(o / "t.xlsx")), "unsupported file type .xlsx", "--out"),
    ("score_out_is_the_table", lambda p, d, o: _replace(_score_reference(p, o), "--out", str(p["table"])), "is the input given as --table", "--out"),
    ("compare_empty_mu_dfs", lambda p, d, o: ["charts", "compare", "--table", str(p["table"]), "--mu-dfs", "", "--out", str(o / "c.csv")], "at least one integer", "--mu-dfs"),
    ("compare_empty_families", lambda p, d, o: ["charts", "compare", "--table", str(p["table"]), "--families", ",", "--out", str(o / "c.csv")], "comma-separated list", "--families"),
    ("prepare_subject_id_path", lambda p, d, o: [*_prepare(p, o), "--subject-id", "../../escaped"], "subject", "--subject-id"),
    ("surrogate_evaluate_device", lambda p, d, o: ["surrogate", "evaluate", "--data", str(d), "--device", "quantum"], "unknown device", "--device"),
    ("surrogate_train_device", lambda p, d, o: ["surrogate", "train", "--data", str(d), "--out", str(o), "--device", "quantum"], "unknown device", "--device"),
    ("estimate_ts_scan_length_contradicts", lambda p, d, o: [*_estimate_ts(p, o), "--scan-length", "1000"], "does not match the time series", "ts"),
    ("estimate_engine_triton_on_cpu", lambda p, d, o: [*_estimate(p, o), "--engine", "triton", "--device", "cpu"], "runs on cuda only", "engine"),
    ("collect_in_dir_missing", lambda p, d, o: _replace(_collect(p, o), "--in-dir", str(d / "nowhere")), "not a folder", "--in-dir"),
    ("estimate_device_unknown", lambda p, d, o: [*_estimate(p, o), "--device", "quantum"], "unknown device", "--device"),
    ("estimate_device_tpu", lambda p, d, o: [*_estimate(p, o), "--device", "meta"], "not supported", "--device"),
    ("cohort_device_unknown", lambda p, d, o: [*_cohort(p, o), "--device", "gpu0"], "unknown device", "--device"),
    ("cohort_scheduler_local", lambda p, d, o: [*_cohort(p, o), "--scheduler", "tcp://127.0.0.1:1"], "only applies", "--scheduler"),
    ("cohort_dask_no_scheduler", lambda p, d, o: [*_cohort(p, o), "--executor", "dask"], "scheduler", "--scheduler"),
    ("estimate_generations_zero", lambda p, d, o: [*_estimate(p, o), "--generations", "0"], "positive integer", "--generations"),
    ("cohort_batch_zero", lambda p, d, o: [*_cohort(p, o), "--batch-subjects", "0"], "positive integer", "--batch-subjects"),
    ("cohort_bad_shard", lambda p, d, o: [*_cohort(p, o), "--shard", "3/2"], "1 <= k <= n", "--shard"),
    ("estimate_dt_over_tr", lambda p, d, o: [*_estimate(p, o), "--dt-test", "2.0"], "too coarse", "test stage"),
    ("estimate_window_too_long", lambda p, d, o: [*_estimate(p, o), "--fcd-window", "500"], "window", "--tr/--scan-length"),
    ("cohort_dt_over_tr", lambda p, d, o: [*_cohort(p, o), "--dt-val", "2.0"], "too coarse", "subject s01"),
    ("simulate_sc_max", lambda p, d, o: [*_simulate(p, o), "--sc-max", "-1"], "positive", "--sc-max"),
    ("estimate_weights_not_surrogate", lambda p, d, o: [*_estimate(p, o), "--weights", str(d)], "only applies", "--weights"),
    ("estimate_weights_missing", lambda p, d, o: [*_estimate(p, o), "--mode", "surrogate", "--weights", str(d / "none")], "no pretrained", "none"),
    # 6: silent wrong input
    ("ts_transposed", lambda p, d, o: _replace(_estimate_ts(p, o), "--timeseries", str(_ts_file(d, RNG.random((N, 40)))) ), "transposed", "bad_run.tsv"),
    ("prepare_ts_transposed", lambda p, d, o: _replace(_prepare(p, o), "--timeseries", str(_ts_file(d, RNG.random((8, 20)) ))), "transposed", "bad_run.tsv"),
    ("simulate_wei_negative", lambda p, d, o: _replace(_simulate(p, o), "--params", str(_params(d, wEI=-1.0))), "wEI must lie in", "bad_params.csv"),
    ("simulate_g_absurd", lambda p, d, o: _replace(_simulate(p, o), "--params", str(_params(d, G=1e6))), "G must lie in", "bad_params.csv"),
    ("simulate_g_negative", lambda p, d, o: _replace(_simulate(p, o), "--params", str(_params(d, G=-0.5))), "G must lie in", "bad_params.csv"),
    ("simulate_wee_negative", lambda p, d, o: _replace(_simulate(p, o), "--params", str(_params(d, wEE=-3.0))), "wEE must lie in", "bad_params.csv"),
    ("simulate_sigma_zero", lambda p, d, o: _replace(_simulate(p, o), "--params", str(_params(d, sigma=0.0))), "sigma", "bad_params.csv"),
    ("simulate_params_rows", lambda p, d, o: _replace(_simulate(p, o), "--params", str(_params(d, n=N - 1))), "5 region rows but the SC", "bad_params.csv"),
    ("simulate_params_nan", lambda p, d, o: _replace(_simulate(p, o), "--params", str(_params(d, wEE=np.nan))), "NaN", "bad_params.csv"),
    ("simulate_params_index", lambda p, d, o: _replace(_simulate(p, o), "--params", str(_write(d, "bad_params.csv", "region_index,wEE,wEI,sigma,G\n" + "".join(f"{i * 2},3,2.5,0.005,1\n" for i in range(N))))), "region_index", "bad_params.csv"),
    ("simulate_dt_negative", lambda p, d, o: _replace(_simulate(p, o), "--dt", "-0.1"), "positive", "--dt"),
    ("simulate_ndup_zero", lambda p, d, o: [*_simulate(p, o), "--n-dup", "0"], "at least 1", "--n-dup"),
    ("estimate_fc_asym", lambda p, d, o: _replace(_estimate(p, o), "--fc", str(_write(d, "asym_FC.csv", "\n".join(",".join("1" if i == j else ("0.5" if i < j else "0.1") for j in range(N)) for i in range(N))))), "symmetric", "asym_FC.csv"),
    ("estimate_cdf_short", lambda p, d, o: _replace(_estimate(p, o), "--fcd-cdf", str(_write(d, "short_CDF.csv", "0.5\n1\n"))), "expected 10000 rows", "short_CDF.csv"),
    ("estimate_fc_and_ts", lambda p, d, o: [*_estimate(p, o), "--timeseries", str(p["ts"])], "either --timeseries", "estimate-ei"),
    ("estimate_only_myelin", lambda p, d, o: [a for a in _estimate(p, o) if a not in ("--gradient", str(p["gradient"]))], "only myelin", "--gradient"),
    ("validate_timing", lambda p, d, o: [*_validate(p, o), "--tr", "0.72", "--scan-length", "10.4"], "whole number of frames", "--tr/--scan-length"),
    ("cohort_manifest_timing", lambda p, d, o: _replace(_cohort(p, o), "--manifest", str(_write(d, "bad_manifest.csv", f"subject_id,tr,scan_length,fc,fcd_cdf\ns1,0.72,-5,{p['fc']},{p['cdf']}\n"))), "scan length", "bad_manifest.csv"),
    ("collect_demo_no_age", lambda p, d, o: _replace(_collect(p, o), "--demographics", str(_write(d, "bad_demo.csv", "subject_id,sex\ns01,f\n"))), "age_in_years", "bad_demo.csv"),
    ("collect_nothing_finished", lambda p, d, o: _collect(p, o), "no finished subject results", "demogr.csv"),
]  # fmt: skip
CASES += SPECIFIC


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("bad_cli")
    return root, _make_inputs(root / "data")


def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            out[os.path.relpath(os.path.join(dirpath, name), root)] = "dir"
        for name in filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if not os.path.isfile(path):
                out[rel] = "special"
                continue
            with open(path, "rb") as fh:
                out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("make_argv", "fragment", "named"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_cli_input(inputs, tmp_path, capsys, make_argv, fragment: str, named: str) -> None:
    _, p = inputs
    work = tmp_path / "case"
    work.mkdir()
    out = tmp_path / "out"
    argv = make_argv(p, work, out)
    before = _snapshot(tmp_path)
    before_inputs = _snapshot(p["fc"].parent)
    code = main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if not ln.startswith("delssome-norms: warning:")]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("delssome-norms: error: "), err
    assert fragment in lines[0], lines[0]
    assert named in lines[0], lines[0]
    assert _snapshot(tmp_path) == before, "something was written"
    assert _snapshot(p["fc"].parent) == before_inputs, "an input was changed"
    assert not out.exists()


def test_table_has_at_least_100_cases() -> None:
    assert len(CASES) >= 100
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("cmd", ["estimate", "cohort", "simulate"])
def test_cuda_without_cuda_is_one_line(inputs, tmp_path, capsys, cmd: str) -> None:
    _, p = inputs
    build = {"estimate": _estimate, "cohort": _cohort, "simulate": _simulate}[cmd]
    before = _snapshot(tmp_path)
    assert main([*build(p, tmp_path / "out"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "CUDA is not available" in err and "--device" in err
    assert _snapshot(tmp_path) == before
