"""`charts brainmap`/`score`/`plot` with a table of another atlas that has no regions sidecar.

* F1: scores of a chart of another atlas (10 Schaefer-like regions, or 68 custom regions) whose
  score table has no ``<stem>.regions.csv`` were drawn at the DK68 centroids by ``charts
  brainmap``; ``charts report`` said "No brain map". Brainmap now reads the atlas as report does
  (the sidecar, else the chart's provenance: ``--chart``, or the chart the scores' provenance
  names) and ``charts score`` writes the chart's region names beside scores of a table that
  names none. A legacy chart without region names keeps the DK68 map.
* F2: ``charts plot --table`` scored its points without the table's provenance and regions and
  warned that the table "names none of its regions" although both sidecars were there.

Charts: NO family, mu and sigma df 3, 300 people, at most 11 targets (seconds each).
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.io.ei_table import region_column, regions_frame
from delssome_norms.norms import GrowthChart

NAMES10 = [f"7Networks_{h}_Vis_{k}" for h in ("LH", "RH") for k in range(1, 6)]
CUSTOM68 = [f"Custom_{h}_{k}" for h in ("LH", "RH") for k in range(1, 35)]
FIT = ["--family", "NO", "--mu-df", "3", "--sigma-df", "3"]
NAMES_NONE = "names none of its"


def _cohort(n: int, n_regions: int, seed: int) -> pd.DataFrame:
    """Normal E/I with an age trend and a sex effect at two sites; the mean and ``n_regions``
    regions, each region shifted by its own offset (so a region's points tell which it is)."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(10, 80, n)
    female = rng.integers(0, 2, n)
    mu = 1.0 + 0.004 * age + 0.05 * female
    table = pd.DataFrame(
        {
            "subject_id": [f"sub-{i:03d}" for i in range(n)],
            "age_in_years": age,
            "sex": np.where(female == 1, "female", "male"),
            "site_scanner": rng.choice(["A", "B"], n),
        }
    )
    regions = {region_column(k): rng.normal(mu + 0.02 * k, 0.1) for k in range(n_regions)}
    table = pd.concat([table, pd.DataFrame(regions)], axis=1)
    table["ei_ratio_mean"] = table[list(regions)].mean(axis=1)
    return table


def _fit(folder: Path, table: pd.DataFrame, names: list[str] | None, targets: str | None) -> Path:
    """``charts fit`` on ``table`` (with a regions sidecar of ``names`` when given)."""
    path = folder / f"train{len(names or [])}_ei.csv"
    table.to_csv(path, index=False)
    if names is not None:
        regions_frame(names).to_csv(path.with_suffix(".regions.csv"), index=False)
    chart = folder / f"chart_{path.stem}"
    argv = ["charts", "fit", "--table", str(path), "--out", str(chart), *FIT]
    with warnings.catch_warnings(record=True):  # main() shows them otherwise
        warnings.simplefilter("always")
        assert main([*argv, *(["--targets", targets] if targets else [])]) == 0
    return chart


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """Three charts: a 10-region atlas (all 11 targets), a 68-region custom atlas and a legacy
    68-region chart without region names (the mean and two regions each)."""
    folder = tmp_path_factory.mktemp("brainmap_atlas")
    few = "ei_ratio_mean,ei_ratio_roi_0,ei_ratio_roi_1"
    return {
        "folder": folder,
        "chart10": _fit(folder, _cohort(300, 10, 1), NAMES10, None),
        "custom68": _fit(folder, _cohort(300, 68, 2), CUSTOM68, few),
        "legacy68": _fit(folder, _cohort(300, 68, 3), None, few),
        "people10": _cohort(6, 10, 4),
        "people68": _cohort(6, 68, 5),
    }


def _score(chart: Path, people: pd.DataFrame, folder: Path, stem: str) -> Path:
    """``charts score`` of ``people`` written as a bare table (no sidecars beside it)."""
    table = folder / f"{stem}_ei.csv"
    people.to_csv(table, index=False)
    scores = folder / f"{stem}_scores.csv"
    with warnings.catch_warnings(record=True):  # main() shows them otherwise
        warnings.simplefilter("always")
        argv = ["charts", "score", "--chart", str(chart), "--table", str(table)]
        assert main([*argv, "--out", str(scores)]) == 0
    return scores


def _brainmap(scores: Path, out: Path, chart: Path | None = None) -> int:
    argv = ["charts", "brainmap", "--scores", str(scores), "--subject", "sub-000"]
    return main([*argv, *(["--chart", str(chart)] if chart else []), "--out", str(out)])


# ------------------------------------------------------------------------------------------- #
# F1: charts score writes the chart's region names; brainmap reads the atlas as report does
# ------------------------------------------------------------------------------------------- #
def test_score_of_an_unnamed_table_writes_the_charts_region_names(made, tmp_path: Path) -> None:
    scores = _score(made["chart10"], made["people10"], tmp_path, "copy")
    sidecar = scores.with_suffix(".regions.csv")
    assert sidecar.is_file()  # none was written before
    frame = pd.read_csv(sidecar)
    assert list(frame["region"]) == NAMES10
    assert list(frame["column"]) == [region_column(k) for k in range(10)]
    # and brainmap reads it: the 10-region atlas is refused, no figure
    out = tmp_path / "map.png"
    assert _brainmap(scores, out, made["chart10"]) == 2
    assert not out.exists()


def test_brainmap_without_the_sidecar_takes_the_atlas_from_the_chart(
    made, tmp_path: Path, capsys
) -> None:
    scores = _score(made["chart10"], made["people10"], tmp_path, "copy")
    scores.with_suffix(".regions.csv").unlink()  # e.g. scores of an older charts score
    out = tmp_path / "map.png"
    capsys.readouterr()
    assert _brainmap(scores, out, made["chart10"]) == 2  # was drawn at 10 DK68 centroids
    err = capsys.readouterr().err
    assert "an atlas of 10 regions, not DK68 (region names from the chart's provenance)" in err
    assert "no centroids" in err and not out.exists()
    # the same message as report's "No brain map"
    report = tmp_path / "report"
    argv = ["charts", "report", "--chart", str(made["chart10"]), "--scores", str(scores)]
    with warnings.catch_warnings(record=True):  # main() shows them otherwise
        warnings.simplefilter("always")
        assert main([*argv, "--subject", "sub-000", "--out", str(report)]) == 0
    text = (report / "report.md").read_text()
    assert "No brain map: the scores are of an atlas of 10 regions, not DK68" in text
    # without --chart: the chart the scores' provenance sidecar names
    assert _brainmap(scores, out) == 2
    err = capsys.readouterr().err
    assert "10 regions, not DK68 (region names from the chart's provenance)" in err
    assert not out.exists()


def test_brainmap_of_a_chart_gone_since_reads_the_size_the_scores_recorded(
    made, tmp_path: Path, capsys
) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(made["chart10"], chart)
    scores = _score(chart, made["people10"], tmp_path, "gone")
    scores.with_suffix(".regions.csv").unlink()
    shutil.rmtree(chart)
    assert json.loads(scores.with_suffix(".provenance.json").read_text())["chart"]["pipeline"]
    out = tmp_path / "map.png"
    capsys.readouterr()
    assert _brainmap(scores, out) == 2
    err = capsys.readouterr().err
    assert "an atlas of 10 regions, not DK68 (size from the scores' provenance sidecar)" in err
    assert not out.exists()


def test_brainmap_of_a_custom_68_region_atlas_is_refused(made, tmp_path: Path, capsys) -> None:
    scores = _score(made["custom68"], made["people68"], tmp_path, "c68")
    assert list(pd.read_csv(scores.with_suffix(".regions.csv"))["region"]) == CUSTOM68
    out = tmp_path / "map.png"
    capsys.readouterr()
    assert _brainmap(scores, out) == 2  # was drawn at the DK68 centroids, without a word
    assert "68 regions, not DK68 (region names from " in capsys.readouterr().err
    scores.with_suffix(".regions.csv").unlink()
    assert _brainmap(scores, out, made["custom68"]) == 2
    assert "68 regions, not DK68 (region names from the chart's provenance)" in (capsys.readouterr().err)
    assert not out.exists()


def test_legacy_68_region_chart_keeps_the_dk68_map(made, tmp_path: Path) -> None:
    scores = _score(made["legacy68"], made["people68"], tmp_path, "legacy")
    assert not scores.with_suffix(".regions.csv").exists()  # the chart names no regions
    out = tmp_path / "map.png"
    with warnings.catch_warnings(record=True):  # main() shows them otherwise
        warnings.simplefilter("always")
        assert _brainmap(scores, out, made["legacy68"]) == 0
        assert out.stat().st_size > 10_000
        assert _brainmap(scores, tmp_path / "map2.png") == 0


# ------------------------------------------------------------------------------------------- #
# F2: charts plot scores its points with the table's provenance and regions
# ------------------------------------------------------------------------------------------- #
def _points(fig) -> np.ndarray:
    """The y values of the figure's points, panel by panel, sorted."""
    from matplotlib.collections import PathCollection  # the scatter; the bands are polygons

    ys = [
        np.asarray(c.get_offsets())[:, 1]
        for ax in fig.axes
        for c in ax.collections
        if isinstance(c, PathCollection)
    ]
    return np.sort(np.concatenate(ys))


def _plot(made, table: Path, target: str, monkeypatch, capsys) -> tuple[np.ndarray, str]:
    import delssome_norms.cli.charts_cmd as cmd

    figures = []
    monkeypatch.setattr(cmd, "_save_figure", lambda fig, out: figures.append(fig))
    capsys.readouterr()
    argv = ["charts", "plot", "--chart", str(made["chart10"]), "--table", str(table)]
    with warnings.catch_warnings(record=True) as seen:  # printed to stderr outside pytest
        warnings.simplefilter("always")
        assert main([*argv, "--target", target, "--out", str(table.with_suffix(".png"))]) == 0
    said = [str(w.message) for w in seen] + [capsys.readouterr().err]
    return _points(figures[0]), "\n".join(said)


def _expected(made, people: pd.DataFrame, target: str) -> np.ndarray:
    """The harmonised values of ``target`` of the table in the chart's own order."""
    chart = GrowthChart.load(made["chart10"])
    with warnings.catch_warnings(record=True):  # main() shows them otherwise
        warnings.simplefilter("always")
        scored = chart.score(people, targets=[target], regions=NAMES10)
    return np.sort(scored[f"{target}_harmonised"].to_numpy())


def test_plot_of_a_named_table_does_not_warn_it_names_none(made, tmp_path, monkeypatch, capsys):
    people = _cohort(40, 10, 6)
    table = tmp_path / "cohort_ei.csv"
    people.to_csv(table, index=False)
    regions_frame(NAMES10).to_csv(tmp_path / "cohort_ei.regions.csv", index=False)
    points, err = _plot(made, table, "ei_ratio_roi_5", monkeypatch, capsys)
    assert NAMES_NONE not in err and "another order" not in err
    np.testing.assert_allclose(points, _expected(made, people, "ei_ratio_roi_5"), rtol=1e-12)


def test_plot_of_a_reordered_table_matches_by_name_once(made, tmp_path, monkeypatch, capsys):
    people = _cohort(40, 10, 7)
    order = [3, 7, 0, 9, 5, 1, 8, 2, 6, 4]  # table column j holds the chart's region order[j]
    shuffled = people.rename(columns={region_column(k): f"x{j}" for j, k in enumerate(order)})
    shuffled = shuffled.rename(columns={f"x{j}": region_column(j) for j in range(10)})
    table = tmp_path / "shuffled_ei.csv"
    shuffled.to_csv(table, index=False)
    regions_frame([NAMES10[k] for k in order]).to_csv(table.with_suffix(".regions.csv"), index=False)
    points, err = _plot(made, table, "ei_ratio_roi_5", monkeypatch, capsys)
    assert err.count("matched to the chart's regions by name") == 1
    assert NAMES_NONE not in err
    # the chart's region 5 (the table's column 4), not the table's column 5 (region 1)
    np.testing.assert_allclose(points, _expected(made, people, "ei_ratio_roi_5"), rtol=1e-12)


def test_plot_chart_centiles_takes_the_tables_regions(made) -> None:
    from delssome_norms.plotting.charts import plot_chart_centiles

    chart = GrowthChart.load(made["chart10"])
    people = _cohort(40, 10, 8)
    reversed_ = people.rename(columns={region_column(k): region_column(9 - k) for k in range(10)})
    with pytest.warns(UserWarning, match="matched to the chart's regions by name") as seen:
        fig = plot_chart_centiles(chart, "ei_ratio_roi_2", reversed_, regions=NAMES10[::-1])
    assert not any(NAMES_NONE in str(w.message) for w in seen)
    np.testing.assert_allclose(_points(fig), _expected(made, people, "ei_ratio_roi_2"), rtol=1e-12)
