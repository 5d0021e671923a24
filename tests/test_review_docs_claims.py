"""Numbers and names that docs/science.md quotes, checked against the code that ships.

Each test reads the page and fails when a quoted constant, default, threshold, column list or
flag name no longer matches the code. No simulation runs; the whole file takes about a second.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "science.md"


@pytest.fixture(scope="module")
def doc() -> str:
    """The page with every run of whitespace (line wraps included) made one space."""
    return re.sub(r"\s+", " ", DOC.read_text(encoding="utf-8"))


def _number(doc: str, pattern: str) -> float:
    match = re.search(pattern, doc)
    assert match, f"docs/science.md no longer says {pattern!r}"
    return float(match.group(1))


def test_fixed_point_values(doc: str) -> None:
    from delssome_norms.model.constants import PFIC_CONSTANTS
    from delssome_norms.model.fic import fixed_point_i_e, fixed_point_s_e

    s_e = _number(doc, r"S_E\* ≈ (\d\.\d+)")
    i_e = _number(doc, r"I_E\* solves H_E\(I_E\*\) = 3 Hz \(≈ (\d\.\d+) nA")
    s_i0 = _number(doc, r"S_I = (0\.\d+)\. FIC fixes")
    assert s_e == pytest.approx(fixed_point_s_e(), abs=1e-7)
    assert i_e == pytest.approx(fixed_point_i_e(), abs=1e-7)
    assert s_i0 == pytest.approx(PFIC_CONSTANTS.s_i_init, abs=1e-7)
    assert _number(doc, r"fires at r_E = (\d+) Hz") == PFIC_CONSTANTS.target_rate


@pytest.mark.parametrize(
    ("name", "attribute"),
    [
        ("I0", "I0"),
        ("W_E", "W_E"),
        ("W_I", "W_I"),
        ("J_NMDA", "J_NMDA"),
        ("gamma_kin", "gamma_kin"),
        ("a_E", "a_E"),
        ("b_E", "b_E"),
        ("d_E", "d_E"),
        ("tau_E", "tau_E"),
        ("a_I", "a_I"),
        ("b_I", "b_I"),
        ("d_I", "d_I"),
        ("tau_I", "tau_I"),
    ],
)
def test_pfic_constants(doc: str, name: str, attribute: str) -> None:
    from delssome_norms.model.constants import PFIC_CONSTANTS

    assert _number(doc, rf"\b{name} = (\d+(?:\.\d+)?)") == getattr(PFIC_CONSTANTS, attribute)


@pytest.mark.parametrize(
    "name", ["V0", "kappa", "gamma_h", "tau_h", "alpha", "rho", "B0", "TE", "r0", "epsilon"]
)
def test_balloon_constants(doc: str, name: str) -> None:
    from delssome_norms.model.constants import BALLOON_CONSTANTS

    assert _number(doc, rf"\b{name} = (\d+(?:\.\d+)?)") == getattr(BALLOON_CONSTANTS, name)


def test_search_and_simulation_defaults(doc: str) -> None:
    from delssome_norms.fit.cmaes import CMAESSettings
    from delssome_norms.fit.settings import FitSettings
    from delssome_norms.model.summary import FCD_BINS

    cm, fs = CMAESSettings(), FitSettings()
    assert _number(doc, r"(\d+) candidates per generation") == cm.popsize
    assert _number(doc, r"candidates per generation, (\d+) selected") == cm.mu
    assert _number(doc, r"sigma0 = (\d+(?:\.\d+)?)") == cm.sigma0
    assert _number(doc, r"(\d+) generations, restarts on collapse") == cm.generations
    assert _number(doc, r"restarts on collapse \(up to (\d+)\)") == cm.max_restarts
    assert _number(doc, r"(\d+) unrecorded warm-up steps") == fs.warmup_steps
    assert _number(doc, r"dt is (\d\.\d+) s in search and validation") == fs.dt_train == fs.dt_val
    assert _number(doc, r"and (\d\.\d+) s in the final test simulation") == fs.dt_test
    assert _number(doc, r"simulated with (\d+) independent noise draws") == fs.n_dup
    assert _number(doc, r"the (\d+) best validated candidates") == fs.test_top_k
    assert _number(doc, r"histogrammed into (\d+) bins") == FCD_BINS


def test_default_timing_rules(doc: str) -> None:
    from delssome_norms.model.timing import MIN_FCD_WINDOW, SimulationTiming

    assert "burn-in of ceil(72 / TR) · TR seconds" in doc
    assert f"windows of round(60 / TR) frames (at least {MIN_FCD_WINDOW};" in doc
    hcp = SimulationTiming(tr=0.72, scan_length=864.0)
    assert _number(doc, r"\((\d+) for HCP: TR 0\.72 s, 864 s\)") == hcp.n_frames
    odd = SimulationTiming(tr=0.72, scan_length=61.0)
    assert _number(doc, r"a 61-s scan at TR 0\.72 s gives (\d+)") == odd.n_frames


def test_bounds_and_validity_rules(doc: str) -> None:
    from delssome_norms.fit import parameterisation as pz

    lo, hi = pz.WEE_BOUNDS
    assert f"wEE in [{lo:g}, {hi:g}]" in doc
    lo, hi = pz.G_BOUNDS
    assert f"G in [{lo:g}, {hi:g}]" in doc
    lo, hi = pz.SIGMA_BOUNDS
    assert f"sigma in [{lo:g}, {hi:g}]" in doc
    assert f"std(wEI) ≥ {pz.MIN_WEI_STD:g}" in doc
    assert "wEI_max = clip(11 · mean upper-tri FC_emp, 3.2, 5)" in doc
    assert pz.wei_range([[1.0, 0.4], [0.4, 1.0]]) == pytest.approx((2.8, 4.4))


def test_output_columns(doc: str, tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    from delssome_norms.io import ei_table as et
    from delssome_norms.io.writers import FIT_QUALITY_COLUMNS, write_parameters

    ei = re.search(r"`EI_ratio\.csv` \(([^;]*?), and the subject's fit_flagged / fit_flag_reasons", doc)
    assert ei, "the EI_ratio.csv column list moved"
    named = [c.split(" [")[0].strip() for c in ei.group(1).split(",")]
    # the columns of a file with every optional column, in the order the writer puts them
    v, names = np.ones(2), ["lh_a", "rh_a"]
    full = et.ei_ratio_frame(v, v, v, v, v, v, v, {"flagged": False, "reasons": []}, names)
    assert set(full.columns) == {*et.EI_RATIO_COLUMNS, *et.EI_RATIO_OPTIONAL}
    assert [*named, et.FIT_FLAGGED, et.FIT_FLAG_REASONS] == list(full.columns)
    params = pd.read_csv(write_parameters(tmp_path / "p.csv", v, v, 0.01 * v, 1.0, names))
    assert f"`best_parameters.csv` ({', '.join(params.columns)})" in doc
    stage, *losses = FIT_QUALITY_COLUMNS
    assert f"`fit_quality.csv` ({stage} = train, val, test; {', '.join(losses)})" in doc


def test_profile_and_interval(doc: str) -> None:
    from delssome_norms.fit import profile_points
    from delssome_norms.fit import uncertainty as un

    steps = ", ".join(f"{s:g}" for s in profile_points.PROFILE_AXIS_STEPS[:-1])
    assert f"±{steps} and {profile_points.PROFILE_AXIS_STEPS[-1]:g} search standard deviations" in doc
    a, b = profile_points.WEI_SCALE_STEPS
    assert f"scaled by 1 ± {a:.2f} and 1 ± {b:.2f}" in doc
    points = 1 + 2 * len(profile_points.PROFILE_AXIS_STEPS) + 2 * len(profile_points.WEI_SCALE_STEPS)
    assert f"the winner and {points - 1} parameter sets around it" in doc
    assert f"at most {points} x 3 = {points * 3}" in doc
    assert f"within {un.NEAR_OPTIMAL_Z:g} √2" in doc


def test_fit_quality_reasons(doc: str) -> None:
    from delssome_norms.fit import quality as q
    from delssome_norms.model.constants import FIC_RATE_BAND

    for reason in q.REASON_TEXT:
        assert f"`{reason}`" in doc, reason
    assert f"more than {q.COST_FLOOR_MARGIN:g} above the cost between two noise draws" in doc
    assert q.GATE_REJECTED_MAX == 0.5 and "rejected over half the candidates" in doc
    assert f"the last {q.GATE_LAST_FRACTION:.0%} of generations".replace("%", " %") in doc
    assert f"over {q.RATE_OUTSIDE_MAX:.0%} of the regions".replace("%", " %") in doc
    lo, hi = FIC_RATE_BAND
    assert f"outside {lo:g}–{hi:g} Hz" in doc


def test_chart_thresholds_and_flags(doc: str) -> None:
    from delssome_norms.norms import chart_adapt, chart_fit, chart_table

    assert f"above {chart_fit.TAIL_Z_MAX:g} the target is unreliable" in doc
    assert "three interquartile ranges beyond the quartiles" in doc and chart_fit.TAIL_IQR == 3.0
    assert f"Below {chart_adapt.MIN_ML_CONTROLS} controls maximum-likelihood offsets are refused" in doc
    default = inspect.signature(chart_adapt.ChartAdaptMixin.adapt).parameters["min_controls"].default
    assert f"warns below {default} controls per site" in doc
    for flag in (chart_table.FLAG_UNRELIABLE, chart_table.FLAG_UNCALIBRATED):
        assert f"`{flag}`" in doc, flag
    assert chart_fit.TARGET_SD_RANGE == (1e-6, 1e4) and "between 1e-6 and 1e4" in doc
    centiles = ", ".join(f"{c:g}" for c in chart_table.CENTILES[:-1])
    assert f"centiles {centiles} and {chart_table.CENTILES[-1]:g} per sex" in doc


def test_calibration_settings_quoted(doc: str) -> None:
    import json

    from delssome_norms.fit.uncertainty import CALIBRATION_FILE

    cal = json.loads(
        (Path(__file__).resolve().parents[1] / "delssome_norms" / "fit" / CALIBRATION_FILE).read_text()
    )["modes"]
    e = cal["euler"]["settings"]
    quoted = (
        f"Euler mode at {e['generations']} x {e['popsize']} ({e['n_dup']} duplicates, "
        f"{e['test_top_k']} tested, {e['val_per_generation']} validated per generation)"
    )
    assert quoted in doc
    quoted_floors = [(float(a), float(b)) for a, b in re.findall(r"floors (0\.\d+) / (0\.\d+)", doc)]
    assert len(quoted_floors) == 2, "the two modes' floors (mean / regions) moved"
    for (mean, region), mode in zip(quoted_floors, ("surrogate", "euler")):
        assert mean == pytest.approx(cal[mode]["floor_mean"], abs=6e-4), mode
        assert region == pytest.approx(cal[mode]["floor_region"], abs=6e-4), mode


PACKAGE_DIRS = ("model", "fit", "norms", "io", "surrogate", "stats", "synthetic", "datasets")
"""Sub-packages the page cites without the ``delssome_norms/`` prefix (``model/fic.py``)."""
CITED_PATH = re.compile(r"`((?:[\w.-]+/)+[\w.-]+)`")


def test_docs_cite_only_what_ships() -> None:
    """Files the pages cite are in the repository (``bench/results/`` is written by the
    benchmarks, which the page says); no path outside it."""
    root = DOC.parents[1]
    for page in sorted(DOC.parent.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        assert "../" not in text and "SCIENCE.md" not in text, page.name
        for path in CITED_PATH.findall(text):
            if path.startswith("bench/results") or path.startswith("/"):
                continue
            top = path.split("/")[0]
            if top in PACKAGE_DIRS:
                path = f"delssome_norms/{path}"
            elif top not in ("delssome_norms", "bench", "tests", "pretrained", "reference_data", "docs"):
                continue
            assert (root / path).exists(), f"{page.name} cites {path}, which is not in the repository"
