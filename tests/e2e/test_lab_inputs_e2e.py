"""End to end from a lab's own files: name-headed BIDS time series -> prepare -> cohort -> collect ->
charts score --chart reference.

Three DK68 subjects as BIDS-derivatives ``*_timeseries.tsv`` with region-name headers in three
naming styles (``ctx-lh-x``, ``lh_x``, ``L_x``); sub-03 is sub-01's run with its columns shuffled
(and an ``n/a`` first frame). The shuffled subject must give sub-01's FC (to 1e-13) and, fitted under
the same subject name (same seed), sub-01's E/I (to 1e-6). The table's provenance sidecar and regions
file must name the DK68 regions, and the shipped SYNTHETIC chart must score the table.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS, load_reference_subjects
from delssome_norms.errors import InputWarning

FAST = [
    "--generations", "2", "--popsize", "6", "--mu", "2", "--n-dup", "1", "--dt-train", "0.005",
    "--dt-val", "0.005", "--dt-test", "0.005", "--burn-in", "0.72", "--fcd-window", "5",
    "--warmup-steps", "50", "--test-top-k", "2", "--batch-subjects", "1", "--quiet",
    "--no-stability-gate",  # 6-candidate searches on DK68: the gate would leave none
]  # fmt: skip
FRAMES = 80  # > 68 regions (frames x regions), 57.6 s at TR 0.72 s


def _styles(name: str) -> dict[str, str]:
    hemi, region = name.split("_", 1)
    return {
        "ctx": f"ctx-{hemi}-{region}",
        "lh_": name,
        "L_": f"{hemi[0].upper()}_{region}",
    }


def _run(seed: int) -> np.ndarray:
    """A slow (AR(1)) Gaussian run whose correlations are a synthetic reference subject's FC."""
    fc = load_reference_subjects().fc[seed]
    chol = np.linalg.cholesky(fc + 1e-3 * np.eye(68))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((FRAMES, 68))
    for t in range(1, FRAMES):
        x[t] = 0.7 * x[t - 1] + np.sqrt(1 - 0.7**2) * x[t]
    return x @ chol.T


def _write_tsv(path: Path, data: np.ndarray, names: list[str], na_first: bool = False) -> None:
    frame = pd.DataFrame(data, columns=names)
    text = frame.to_csv(sep="\t", index=False, float_format="%.17g")
    if na_first:  # a BIDS non-steady-state frame
        lines = text.splitlines()
        lines.insert(1, "\t".join(["n/a"] * len(names)))
        text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.timeout(600)
def test_name_headed_timeseries_to_reference_scores(tmp_path, capsys) -> None:
    bids = tmp_path / "derivatives"
    base = _run(1)
    style = {"sub-01": "ctx", "sub-02": "lh_", "sub-03": "L_"}
    names = {s: [_styles(r)[k] for r in DK68_REGIONS] for s, k in style.items()}
    _write_tsv(bids / "sub-01" / "func" / "sub-01_task-rest_timeseries.tsv", base, names["sub-01"])
    _write_tsv(bids / "sub-02" / "func" / "sub-02_task-rest_timeseries.tsv", _run(2), names["sub-02"])
    perm = np.random.default_rng(7).permutation(68)
    shuffled = [names["sub-03"][i] for i in perm]
    _write_tsv(
        bids / "sub-03" / "func" / "sub-03_task-rest_timeseries.tsv",
        base[:, perm],
        shuffled,
        na_first=True,
    )
    prep = tmp_path / "prepared"
    # the n/a frame is refused without the option, naming it
    argv = [
        "prepare",
        "--bids-dir",
        str(bids),
        "--tr",
        "0.72",
        "--out-dir",
        str(prep),
        "--fcd-window",
        "5",
    ]
    assert main(argv) == 2
    assert "--drop-na-frames" in capsys.readouterr().err
    with pytest.warns(InputWarning, match="dropped 1 of 81 frame"):
        code = main([*argv, "--drop-na-frames"])
    assert code == 0
    fc1 = np.loadtxt(prep / "sub-01_FC.csv", delimiter=",")
    fc3 = np.loadtxt(prep / "sub-03_FC.csv", delimiter=",")
    # reordered by name to DK68 order (equal up to the summation order of the correlations)
    np.testing.assert_allclose(fc1, fc3, rtol=0, atol=1e-13)
    manifest = pd.read_csv(prep / "manifest.csv")
    assert list(manifest["subject_id"]) == ["sub-01", "sub-02", "sub-03"]
    assert np.allclose(manifest["scan_length"], FRAMES * 0.72)  # frames x TR

    out = tmp_path / "cohort"
    assert main(["cohort", "--manifest", str(prep / "manifest.csv"), "--out-dir", str(out), *FAST]) == 0
    # the shuffled run under sub-01's name (same seed) gives sub-01's E/I exactly
    m2 = manifest[manifest["subject_id"] == "sub-03"].assign(subject_id="sub-01")
    for col in ("fc", "fcd_cdf"):  # Series.map: DataFrame.map needs pandas 2.1
        m2[col] = m2[col].map(lambda p: str(prep / p))
    m2.to_csv(tmp_path / "manifest_shuffled.csv", index=False)
    out2 = tmp_path / "cohort_shuffled"
    argv = ["cohort", "--manifest", str(tmp_path / "manifest_shuffled.csv"), "--out-dir", str(out2)]
    assert main([*argv, *FAST]) == 0
    ei1 = pd.read_csv(out / "sub-01" / "EI_ratio.csv")
    ei3 = pd.read_csv(out2 / "sub-01" / "EI_ratio.csv")
    pd.testing.assert_frame_equal(ei1, ei3, check_exact=False, rtol=1e-6)

    run = json.loads((out / "sub-01" / "run.json").read_text())
    prov = run["provenance"]
    assert prov["atlas"]["name"] == "DK68" and prov["atlas"]["regions"] == list(DK68_REGIONS)
    assert prov["sc"]["name"].startswith("tvb-data") and len(prov["sc"]["sha256"]) == 64
    assert prov["maps"]["name"] == "default DK68 maps" and prov["mode"] == "euler"
    assert prov["timing"] == {"tr": 0.72, "scan_length": pytest.approx(FRAMES * 0.72)}

    demo = tmp_path / "demographics.csv"
    demo.write_text(
        "subject_id,age_in_years,sex,site\nsub-01,25,f,LAB\nsub-02,40,m,LAB\nsub-03,61,f,LAB\n"
    )
    table = tmp_path / "cohort_ei.csv"
    assert main(["collect", "--in-dir", str(out), "--demographics", str(demo), "--out", str(table)]) == 0
    side = json.loads((tmp_path / "cohort_ei.provenance.json").read_text())
    assert side["pipeline"]["atlas"] == "DK68" and side["pipeline"]["n_regions"] == 68
    assert side["n_subjects"] == 3 and side["dropped_subjects"] == []
    regions = pd.read_csv(tmp_path / "cohort_ei.regions.csv")
    assert list(regions["region"]) == list(DK68_REGIONS)
    assert regions["column"].iloc[22] == "ei_ratio_roi_22"

    scores = tmp_path / "scores.csv"
    capsys.readouterr()
    with pytest.warns(InputWarning, match="unknown to the chart"):
        code = main(
            ["charts", "score", "--chart", "reference", "--table", str(table), "--out", str(scores)]
        )
    assert code == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    s = pd.read_csv(scores)
    assert len(s) == 3 and np.isfinite(s["ei_ratio_roi_67_z"]).all()
    # the lab's site is not in the chart; a 2 x 6 search without the stability gate ends outside
    # the FIC regime (poor_fit: rate_outside_fic); the tiny budget is below the interval calibration
    assert (s["flag"] == "unseen_site;poor_fit;interval_uncalibrated").all()
    assert s["fit_flag_reasons"].str.contains("rate_outside_fic").all()
    assert (~s["ei_interval_calibrated"]).all()

    # the person-centred figures of one scored person
    fan, brain = tmp_path / "sub-03_fan.png", tmp_path / "sub-03_brain.png"
    chart = ["--chart", "reference", "--scores", str(scores), "--subject", "sub-03"]
    assert main(["charts", "plot", *chart, "--out", str(fan)]) == 0
    centile = float(s.set_index("subject_id").loc["sub-03", "ei_ratio_mean_centile"])
    k = round(100 * centile)  # the label names the centile the table holds (whole percent)
    assert f"sub-03: {k}" in capsys.readouterr().out or not 1 <= 100 * centile <= 99
    assert (
        main(["charts", "brainmap", "--scores", str(scores), "--subject", "sub-03", "--out", str(brain)])
        == 0
    )
    for png in (fan, brain):
        with Image.open(png) as img:
            assert img.size[0] > 300 and np.asarray(img.convert("L"), dtype=float).std() > 5
