"""Person figures of a chart with one unreliable regional target (review of 2026-12-07).

A wide score row has one ``flag`` column, the union over all its targets: one region whose chart
did not converge flagged every person ``chart_unreliable``, and ``charts plot --scores``,
``charts report`` and ``charts brainmap`` refused everyone, even for ``ei_ratio_mean`` whose chart
is fine (the same plot from ``--table`` worked); the figure also printed other targets' flags.
And ``stats sex`` named an unknown sex label's input "table:" instead of the file.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import ConvergenceWarning, InputWarning
from delssome_norms.norms import GrowthChart

BAD = "ei_ratio_roi_1"
"""The regional target whose chart is made unreliable."""
TARGETS = ["ei_ratio_mean", "ei_ratio_roi_0", "ei_ratio_roi_1", "ei_ratio_roi_2"]
"""Of a 68-region (DK68-sized, unnamed) table: the brain maps draw at the DK68 centroids."""


def _cohort(n: int, seed: int, n_regions: int = 3) -> pd.DataFrame:
    """Normal E/I with an age trend and a sex effect, at two sites; the mean and 3 regions."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(10, 80, n)
    female = rng.integers(0, 2, n)
    mu = 1.0 + 0.004 * age + 0.05 * female
    table = pd.DataFrame(
        {
            "subject_id": [f"p{i}" for i in range(n)],
            "age_in_years": age,
            "sex": np.where(female == 1, "female", "male"),
            "site_scanner": rng.choice(["A", "B"], n),
            "ei_ratio_mean": rng.normal(mu, 0.1),
        }
    )
    for k in range(n_regions):
        table[f"ei_ratio_roi_{k}"] = rng.normal(mu, 0.1)
    return table


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """A 4-target chart of 300 people whose ei_ratio_roi_1 did not converge (reliable_ False),
    and 3 people scored with it (p0 without an ei_ratio_roi_2 value)."""
    folder = tmp_path_factory.mktemp("drawing")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chart = GrowthChart(family="NO").fit(_cohort(300, 5, 68), targets=TARGETS)
    assert chart.reliable_.all()
    chart.converged_[chart.targets_.index(BAD)] = False  # as a fit that ran out of iterations
    assert chart.reliable_.tolist() == [True, True, False, True]
    chart.save(folder / "chart")
    people = _cohort(3, 99, 68)
    people.loc[0, "ei_ratio_roi_2"] = np.nan
    people.to_csv(folder / "people.csv", index=False)
    scores = folder / "scores.csv"
    argv = ["charts", "score", "--chart", str(folder / "chart"), "--table", str(folder / "people.csv")]
    with pytest.warns(ConvergenceWarning, match=f"target\\(s\\) {BAD} did not converge"):
        assert main([*argv, "--out", str(scores)]) == 0
    table = pd.read_csv(scores, dtype={"subject_id": str}, keep_default_na=False)
    # the wide layout has one flag per person: the union over the targets
    assert table["flag"].tolist() == ["missing_value;chart_unreliable", *["chart_unreliable"] * 2]
    return {"folder": folder, "chart": folder / "chart", "people": folder / "people.csv",
            "scores": scores, "table": table}  # fmt: skip


def _captured(monkeypatch, module, name: str) -> list[dict]:
    """Record the keyword arguments (and ``person``) of ``module.name`` as the CLI calls it."""
    calls: list[dict] = []
    original = getattr(module, name)

    def spy(*args, **kwargs):
        fig = original(*args, **kwargs)
        calls.append({"args": args, **kwargs, "figure": fig})
        return fig

    monkeypatch.setattr(module, name, spy)
    return calls


def _plot(made, source: str, subject: str, target: str, out: Path) -> int:
    path = made["scores"] if source == "scores" else made["people"]
    argv = ["charts", "plot", "--chart", str(made["chart"]), f"--{source}", str(path)]
    return main([*argv, "--subject", subject, "--target", target, "--out", str(out)])


@pytest.mark.parametrize("subject", ["p0", "p1"])
def test_plot_from_scores_judges_the_drawn_target_by_its_own_flags(
    made, subject, tmp_path, monkeypatch
) -> None:
    """The mean's chart is reliable: drawn from --scores as from --table, with the mean's own
    flags (none), not the row's chart_unreliable and another region's missing_value."""
    import delssome_norms.plotting.charts as charts

    calls = _captured(monkeypatch, charts, "plot_chart_centiles")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _plot(made, "scores", subject, "ei_ratio_mean", tmp_path / "s.png") == 0
        assert _plot(made, "table", subject, "ei_ratio_mean", tmp_path / "t.png") == 0
    from_scores, from_table = (c["person"] for c in calls)
    # --table scores the one target drawn: its flag is that target's own
    assert from_table["flag"] == ""
    assert from_scores["flag"] == from_table["flag"]
    assert from_scores["centile"] == pytest.approx(from_table["centile"], abs=1e-6)
    assert not [w for w in caught if "is flagged" in str(w.message)]
    assert (tmp_path / "s.png").stat().st_size > 10_000

    # a reliable region of p1, who has every value: no flag either
    if subject == "p1":
        calls.clear()
        assert _plot(made, "scores", subject, "ei_ratio_roi_0", tmp_path / "r.png") == 0
        assert calls[0]["person"]["flag"] == ""


def test_plot_of_the_unreliable_target_is_refused_naming_it(made, tmp_path, capsys) -> None:
    out = tmp_path / "bad.png"
    assert _plot(made, "scores", "p1", BAD, out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"(--scores): the {BAD} score of p1 is flagged chart_unreliable: the chart of {BAD}" in err
    assert "draw another target" in err
    assert not out.exists()


def test_check_drawable_keeps_the_targets_own_flags(made) -> None:
    """missing_value of ei_ratio_roi_2 and chart_unreliable of ei_ratio_roi_1 are not the
    mean's; each target keeps its own."""
    from delssome_norms.cli.person_report import check_drawable, unreliable_targets
    from delssome_norms.errors import InvalidInputError

    chart = GrowthChart.load(made["chart"])
    row = made["table"].iloc[0]
    bad = unreliable_targets(chart, row)
    assert bad == {BAD}
    assert check_drawable(row, "s.csv", "ei_ratio_mean", bad) == ""
    assert check_drawable(row, "s.csv", "ei_ratio_roi_0", bad) == ""
    with pytest.warns(InputWarning, match="p0 is flagged missing_value; the figure says so"):
        assert check_drawable(row, "s.csv", "ei_ratio_roi_2", bad) == "missing_value"
    with pytest.raises(InvalidInputError, match=f"the {BAD} score of p0 is flagged"):
        check_drawable(row, "s.csv", BAD, bad)
    # the regions drawn together: the row's flags
    with pytest.warns(InputWarning, match="missing_value;chart_unreliable"):
        assert check_drawable(row, "s.csv", None, bad) == "missing_value;chart_unreliable"
    # no chart to tell the targets apart, or a chart that finds none unreliable: refused
    with pytest.raises(InvalidInputError, match="give --chart the chart that scored them"):
        check_drawable(row, "s.csv")
    with pytest.raises(InvalidInputError, match="scored with another chart"):
        check_drawable(row, "s.csv", "ei_ratio_mean", set())


def test_report_lists_the_unreliable_region_apart(made, tmp_path, capsys) -> None:
    """The report is written; the unreliable region is listed on its own row and left out of
    the count of deviant regions and of the ranking, even with a wild z (as a degenerate tail
    gives)."""
    table = made["table"].copy()
    table.loc[table["subject_id"] == "p1", f"{BAD}_z"] = 50.0
    scores = tmp_path / "wild.csv"
    table.to_csv(scores, index=False)
    out = tmp_path / "report"
    argv = ["charts", "report", "--chart", str(made["chart"]), "--scores", str(scores)]
    assert main([*argv, "--subject", "p1", "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    row = table[table["subject_id"] == "p1"].iloc[0]
    reliable_z = np.array([float(row[f"ei_ratio_roi_{k}_z"]) for k in (0, 2)])
    n_deviant = int((np.abs(reliable_z) > 1.96).sum())
    assert f"| regions with abs(z) > 1.96 | {n_deviant} of 2 |" in text
    assert f"| regions with an unreliable chart | 1: {DK68_REGIONS[1]} (their chart" in text
    assert "| regions without a score |" not in text
    ranking = text.split("most deviant")[1].split("## Figures")[0]
    assert BAD not in ranking and "+50.00" not in ranking
    first = int(np.argmax(np.abs(reliable_z)))
    assert f"| 1 | {DK68_REGIONS[(0, 2)[first]]} | {reliable_z[first]:+.2f} |" in ranking
    assert "| flags | chart_unreliable |" in text
    assert (out / "fan_chart.png").stat().st_size > 10_000
    assert "wrote" in capsys.readouterr().out


def test_report_of_an_unreliable_mean_is_refused(made, tmp_path, capsys) -> None:
    chart = GrowthChart.load(made["chart"])
    chart.converged_[chart.targets_.index("ei_ratio_mean")] = False
    chart.save(tmp_path / "chart")
    out = tmp_path / "report"
    argv = ["charts", "report", "--chart", str(tmp_path / "chart"), "--scores", str(made["scores"])]
    assert main([*argv, "--subject", "p1", "--out", str(out)]) == 2
    assert "the ei_ratio_mean score of p1 is flagged chart_unreliable" in capsys.readouterr().err
    assert not out.exists()


def _brainmap(scores: Path, out: Path, *extra: str) -> int:
    argv = ["charts", "brainmap", "--scores", str(scores), "--subject", "p1", *extra]
    return main([*argv, "--out", str(out)])


def _hatched(fig) -> int:
    from matplotlib.collections import PathCollection

    return sum(1 for c in fig.findobj(PathCollection) if c.get_hatch() == "////")


def test_brainmap_draws_the_unreliable_region_grey(made, tmp_path, monkeypatch) -> None:
    """Judged by the chart the scores' provenance sidecar names (charts score wrote it), or by
    --chart: the reliable regions are coloured, the unreliable one grey and hatched."""
    import delssome_norms.plotting.person as person

    calls = _captured(monkeypatch, person, "plot_person_brain_map")
    with pytest.warns(InputWarning, match="p1 is flagged chart_unreliable; the figure says so"):
        assert _brainmap(made["scores"], tmp_path / "side.png") == 0
    (call,) = calls
    grey = np.asarray(call["unreliable"])
    assert grey.shape == (68,) and np.flatnonzero(grey).tolist() == [1]
    texts = " ".join(t.get_text() for t in call["figure"].findobj(Text))
    assert "(2 of 68 regions; 1 with an unreliable chart in grey, without a score)" in texts
    assert "[flag: chart_unreliable]" in texts
    assert _hatched(call["figure"]) >= 1
    assert (tmp_path / "side.png").stat().st_size > 10_000

    # a copy without the sidecar: --chart tells the regions apart; without it, refused
    bare = tmp_path / "bare.csv"
    shutil.copy(made["scores"], bare)
    with pytest.warns(InputWarning, match="p1 is flagged chart_unreliable"):
        assert _brainmap(bare, tmp_path / "bare.png", "--chart", str(made["chart"])) == 0
    assert np.flatnonzero(calls[-1]["unreliable"]).tolist() == [1]
    assert _brainmap(bare, tmp_path / "none.png") == 2
    assert not (tmp_path / "none.png").exists()


def test_brainmap_does_not_trust_a_sidecar_whose_chart_changed(made, tmp_path, capsys) -> None:
    folder = tmp_path / "chart"
    shutil.copytree(made["chart"], folder)
    scores = tmp_path / "scores.csv"
    argv = ["charts", "score", "--chart", str(folder), "--table", str(made["people"])]
    with pytest.warns(ConvergenceWarning, match=f"target\\(s\\) {BAD} did not converge"):
        assert main([*argv, "--out", str(scores)]) == 0
    with pytest.warns(InputWarning, match="p1 is flagged chart_unreliable"):
        assert _brainmap(scores, tmp_path / "ok.png") == 0
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = GrowthChart(family="NO").fit(_cohort(300, 6, 68), targets=TARGETS)
    refit.save(folder, overwrite=True)  # the folder now holds another chart, all reliable
    assert _brainmap(scores, tmp_path / "changed.png") == 2
    err = capsys.readouterr().err
    assert "flagged chart_unreliable" in err and "give --chart the chart that scored them" in err
    assert not (tmp_path / "changed.png").exists()


def test_person_brain_map_greys_regions_without_letting_them_scale_the_colours() -> None:
    from delssome_norms.plotting.person import plot_person_brain_map

    z = np.linspace(-2.0, 2.0, 68)
    z[10] = 1e20  # a degenerate tail's z
    grey = np.zeros(68, dtype=bool)
    grey[10] = True
    fig = plot_person_brain_map(z, "p", value="z", unreliable=grey)
    texts = " ".join(t.get_text() for t in fig.findobj(Text))
    assert "(67 of 68 regions; 1 with an unreliable chart in grey, without a score)" in texts
    assert "drawn at" not in texts  # the 1e20 neither clipped nor scaled the colours
    (bar,) = [a for a in fig.axes if a.get_ylabel().startswith("z-score")]
    assert bar.get_ylim() == pytest.approx((-2.5, 2.5))  # max(2.5, largest reliable |z| = 2)
    assert _hatched(fig) >= 1


def test_stats_sex_names_the_file_for_an_unknown_sex_label(tmp_path, capsys) -> None:
    table = _cohort(60, 3)
    table.loc[3, "sex"] = "other"
    path = tmp_path / "x.csv"
    table.to_csv(path, index=False)
    argv = ["stats", "sex", "--table", str(path), "--out-dir", str(tmp_path / "out")]
    assert main([*argv, "--n-boot", "0", "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"delssome-norms: error: {path} (--table): column sex: unknown sex label")
    assert "'other'" in err and "table:" not in err


def test_unreliable_targets_adds_those_of_the_persons_adapted_site() -> None:
    """A site adapted with extreme offsets makes its people's scores of some targets unreliable
    (charts score flags them): those count for that site's people only."""
    from types import SimpleNamespace

    from delssome_norms.cli.person_report import unreliable_targets

    asked = []

    def site_fails(sites):
        asked.append(list(sites))
        return {"C": ["ei_ratio_roi_0"]}

    chart = SimpleNamespace(
        targets_=["ei_ratio_mean", "ei_ratio_roi_0", BAD],
        reliable_=np.array([True, True, False]),
        site_column_="site_scanner",
        adapted_sites_={"C": {}},
        _unreliable_sites=site_fails,
    )
    row = pd.Series({"subject_id": "q", "site_scanner": "C"})
    assert unreliable_targets(chart, row) == {BAD, "ei_ratio_roi_0"} and asked == [["C"]]
    assert unreliable_targets(chart, row.copy().replace({"C": "A"})) == {BAD}
    assert unreliable_targets(chart, row.drop("site_scanner")) == {BAD}
    assert asked == [["C"]]  # a training site, or none: the chart's own reliability only
