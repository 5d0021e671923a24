"""Person-centred output: ``charts plot --subject``, ``charts brainmap``, ``charts report``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.datasets.reference import load_patients
from delssome_norms.plotting.person import centile_text


def _real_png(path: Path) -> None:
    with Image.open(path) as img:
        assert img.format == "PNG"
        w, h = img.size
        pixels = np.asarray(img.convert("L"), dtype=float)
    assert w > 300 and h > 200 and pixels.std() > 5, path  # a real, non-blank figure


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> dict:
    """The 8 SYNTHETIC patients scored against the shipped reference chart."""
    folder = tmp_path_factory.mktemp("person")
    people = folder / "people.csv"
    load_patients().drop(columns=["deviation", "deviation_group", "deviation_sd"]).to_csv(
        people, index=False
    )
    scores = folder / "scores.csv"
    code = main(
        ["charts", "score", "--chart", "reference", "--table", str(people), "--out", str(scores)]
    )
    assert code == 0
    table = pd.read_csv(scores, dtype={"subject_id": str}, keep_default_na=False)
    return {"folder": folder, "people": people, "scores": scores, "table": table}


def _expected_label(table: pd.DataFrame, subject: str, target: str = "ei_ratio_mean") -> str:
    row = table[table["subject_id"] == subject].iloc[0]
    return f"{subject}: {centile_text(float(row[f'{target}_centile']))}"


@pytest.mark.parametrize("source", ["scores", "table"])
def test_plot_marks_the_subject_with_their_centile(scored, source, capsys) -> None:
    subject = "patient-00001"
    out = scored["folder"] / f"fan_{source}.png"
    code = main(
        [
            "charts",
            "plot",
            "--chart",
            "reference",
            f"--{source}",
            str(scored[{"scores": "scores", "table": "people"}[source]]),
            "--subject",
            subject,
            "--out",
            str(out),
        ]
    )
    assert code == 0
    _real_png(out)
    label = _expected_label(scored["table"], subject)
    assert label == "patient-00001: 68th centile"  # the shipped chart and patients are fixed
    assert f"marked {label} " in capsys.readouterr().out


def test_plot_subject_label_is_in_the_figure(scored) -> None:
    from delssome_norms.cli.charts_cmd import _person_mark, _person_row
    from delssome_norms.norms import load_reference_chart
    from delssome_norms.plotting import plot_chart_centiles

    table = pd.read_csv(scored["scores"], dtype={"subject_id": str})
    mark = _person_mark(_person_row(table, "patient-00008", "s"), "ei_ratio_mean", "s")
    fig = plot_chart_centiles(load_reference_chart(), person=mark)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts == [_expected_label(scored["table"], "patient-00008")]
    male = fig.axes[1]  # patient-00008 is male: the star is in the right panel
    assert male.texts and not fig.axes[0].texts
    star = [c for c in male.collections if c.get_label() == "patient-00008"]
    np.testing.assert_allclose(
        star[0].get_offsets()[0], [mark["age_in_years"], mark["value"]], rtol=1e-12
    )


@pytest.mark.parametrize(
    "centile, text",
    [
        (0.931, "93rd centile"),
        (0.5, "50th centile"),
        (0.012, "1st centile"),
        (0.112, "11th centile"),
        (0.222, "22nd centile"),
        (0.004, "<1st centile"),
        (0.9995, ">99th centile"),
    ],
)
def test_centile_text(centile, text) -> None:
    assert centile_text(centile) == text


def test_brainmap_says_when_the_scores_come_from_the_synthetic_chart(scored, capsys) -> None:
    """Without --chart, the scores' provenance sidecar names the chart that made them."""
    out = scored["folder"] / "brain_synthetic.png"
    argv = ["charts", "brainmap", "--scores", str(scored["scores"]), "--subject", "patient-00003"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "scores made with the SYNTHETIC reference chart" in capsys.readouterr().out
    assert main([*argv, "--chart", "reference", "--out", str(out)]) == 0
    assert "using the SYNTHETIC reference chart" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["z", "centile", "ei"])
def test_brainmap_writes_a_png(scored, value) -> None:
    out = scored["folder"] / f"brain_{value}.png"
    code = main(
        [
            "charts",
            "brainmap",
            "--scores",
            str(scored["scores"]),
            "--subject",
            "patient-00003",
            "--value",
            value,
            "--out",
            str(out),
        ]
    )
    assert code == 0
    _real_png(out)


def test_report_lists_the_most_deviant_regions(scored, capsys) -> None:
    out = scored["folder"] / "report"
    subject = "patient-00002"
    code = main(
        [
            "charts",
            "report",
            "--chart",
            "reference",
            "--scores",
            str(scored["scores"]),
            "--subject",
            subject,
            "--out",
            str(out),
        ]
    )
    assert code == 0
    text = (out / "report.md").read_text()
    for name in ("fan_chart.png", "brain_map_z.png"):
        _real_png(out / name)
        assert f"]({name})" in text
    row = scored["table"][scored["table"]["subject_id"] == subject].iloc[0]
    z = np.array([float(row[f"ei_ratio_roi_{k}_z"]) for k in range(68)])
    worst = DK68_REGIONS[int(np.argmax(np.abs(z)))]
    assert f"| 1 | {worst} | {z[np.argmax(np.abs(z))]:+.2f} |" in text
    assert centile_text(float(row["ei_ratio_mean_centile"])) in text
    assert f"| age | {float(row['age_in_years']):.1f} years |" in text
    assert "SYNTHETIC" in text
    # the terminal says it too: a clinician reading only the console is not misled
    assert "using the SYNTHETIC reference chart" in capsys.readouterr().out


def test_person_commands_refuse_bad_inputs(scored, capsys) -> None:
    folder = scored["folder"]
    scores = str(scored["scores"])
    mean_only = folder / "mean_only.csv"
    scored["table"].drop(columns=[c for c in scored["table"] if "_roi_" in c]).to_csv(
        mean_only, index=False
    )
    cases = [
        (["charts", "brainmap", "--scores", scores, "--subject", "sub-nobody"], "no subject_id"),
        (["charts", "brainmap", "--scores", str(folder / "missing.csv"), "--subject", "x"], ""),
        (
            ["charts", "brainmap", "--scores", str(mean_only), "--subject", "patient-00001"],
            "lacks 68 of the 68 regional columns",
        ),
        (
            ["charts", "plot", "--chart", "reference", "--scores", scores, "--subject", "nobody"],
            "no subject_id 'nobody'",
        ),
        (
            ["charts", "plot", "--chart", "reference", "--subject", "patient-00001"],
            "--subject needs --scores or --table",
        ),
        (
            ["charts", "report", "--chart", "reference", "--scores", scores, "--subject", "nobody"],
            "no subject_id",
        ),
    ]
    for i, (argv, message) in enumerate(cases):
        out = folder / f"bad_{i}.png" if argv[1] != "report" else folder / f"bad_{i}"
        code = main([*argv, "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2, argv
        assert err.startswith("delssome-norms: error: ") and err.count("\n") == 1, err
        assert message in err, err
        assert not out.exists()


def test_report_refuses_scores_made_with_another_chart(scored, capsys) -> None:
    """The harmonised value is the chart's own quantile at the centile: scores from another chart
    (here: a centile that this chart does not give the harmonised value) are refused."""
    folder = scored["folder"]
    other = scored["table"].copy()
    other["ei_ratio_mean_centile"] = 1.0 - other["ei_ratio_mean_centile"]  # another chart's view
    path = folder / "other_scores.csv"
    other.to_csv(path, index=False)
    argv = ["charts", "report", "--chart", "reference", "--scores", str(path),
            "--subject", "patient-00002", "--out", str(folder / "report_other")]  # fmt: skip
    assert main(argv) == 2
    assert "were not made with this chart" in capsys.readouterr().err
    assert not (folder / "report_other" / "report.md").exists()


def test_plot_refuses_scores_made_with_another_chart(scored, capsys) -> None:
    folder = scored["folder"]
    other = scored["table"].copy()
    other["ei_ratio_roi_3_centile"] = 1.0 - other["ei_ratio_roi_3_centile"]
    path = folder / "other_scores_plot.csv"
    other.to_csv(path, index=False)
    argv = ["charts", "plot", "--chart", "reference", "--scores", str(path), "--subject",
            "patient-00002", "--target", "ei_ratio_roi_3",
            "--out", str(folder / "other.png")]  # fmt: skip
    assert main(argv) == 2
    assert "harmonised ei_ratio_roi_3" in capsys.readouterr().err
    assert not (folder / "other.png").exists()


def test_person_row_of_scores_with_an_empty_subject_id(scored, capsys) -> None:
    """An empty ID is NaN in pandas 3's str column (pandas 2: "nan"); naming the first IDs in the
    "no subject_id" message raised a TypeError instead of the input error."""
    folder = scored["folder"]
    table = scored["table"].copy()
    table.loc[0, "subject_id"] = ""
    path = folder / "empty_id.csv"
    table.to_csv(path, index=False)
    out = folder / "empty_id.png"
    argv = ["charts", "brainmap", "--scores", str(path), "--subject", "nobody", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no subject_id 'nobody'" in err and "e.g. nan, patient-" in err, err
    assert not out.exists()


def test_interval_and_fit_flag_reach_the_scores_and_the_report(scored, capsys) -> None:
    """A collected table's interval of the mean E/I becomes an interval of the centile (the
    chart's centile is monotone in the value), and a poor fit is flagged in scores and report."""
    from delssome_norms.norms import load_reference_chart

    folder = scored["folder"]
    people = pd.read_csv(scored["people"], dtype={"subject_id": str})
    mean = people["ei_ratio_mean"]
    people["ei_ratio_mean_lo"] = mean / 1.2
    people["ei_ratio_mean_hi"] = mean * 1.2
    people.loc[1, ["ei_ratio_mean_lo", "ei_ratio_mean_hi"]] = mean[1]  # a zero-width interval
    people["fit_flagged"] = [i == 2 for i in range(len(people))]
    people["fit_flag_reasons"] = ["cost_above_floor" if i == 2 else "" for i in range(len(people))]
    people["ei_interval_calibrated"] = [i != 2 for i in range(len(people))]
    table, scores = folder / "with_interval.csv", folder / "with_interval_scores.csv"
    people.to_csv(table, index=False)
    argv = ["charts", "score", "--chart", "reference", "--table", str(table), "--out", str(scores)]
    assert main(argv) == 0
    assert "1 from fits flagged as poor" in capsys.readouterr().out
    got = pd.read_csv(scores, dtype={"subject_id": str}, keep_default_na=False)
    c, lo, hi = (
        got[f"ei_ratio_mean_{k}"].astype(float) for k in ("centile", "centile_lo", "centile_hi")
    )
    assert (lo < c).drop(1).all() and (c < hi).drop(1).all()
    assert lo[1] == pytest.approx(c[1], abs=1e-12) and hi[1] == pytest.approx(c[1], abs=1e-12)
    # the bounds' centiles are the chart's centiles of the bound values
    chart = load_reference_chart()
    ref = chart.score(
        people.assign(ei_ratio_mean=people["ei_ratio_mean_hi"]).drop(
            columns=["ei_ratio_mean_lo", "ei_ratio_mean_hi", "fit_flagged"]
        ),
        targets=["ei_ratio_mean"],
    )
    np.testing.assert_allclose(hi, ref["ei_ratio_mean_centile"], rtol=1e-9)
    assert got["flag"][2] == "poor_fit;interval_uncalibrated"
    assert got["fit_flag_reasons"][2] == "cost_above_floor"
    assert (got["flag"].drop(2) == "").all()
    out = folder / "report_flagged"
    subject = people["subject_id"][2]
    argv = ["charts", "report", "--chart", "reference", "--scores", str(scores), "--subject"]
    assert main([*argv, subject, "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert f"| 90 % interval of the centile | {100 * lo[2]:.1f}-{100 * hi[2]:.1f} %" in text
    assert "**flagged as poor** (cost_above_floor)" in text
    assert "| interval calibration | **not covered**" in text


def test_a_table_edited_after_collect_is_named(tmp_path: Path) -> None:
    """The sidecar records which table it describes; another table under the name is warned."""
    import warnings

    from delssome_norms.errors import InputWarning
    from delssome_norms.io import file_sha256, read_table_provenance, write_json

    table = tmp_path / "t.csv"
    table.write_text("subject_id,ei_ratio_mean\na,3.1\n")
    sidecar = {"kind": "delssome_norms cohort table provenance", "pipeline": {"mode": "euler"}}
    write_json({**sidecar, "table_sha256": file_sha256(table)}, tmp_path / "t.provenance.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_table_provenance(table)["pipeline"] == {"mode": "euler"}
    table.write_text("subject_id,ei_ratio_mean\na,3.1\nb,2.9\n")
    with pytest.warns(InputWarning, match="written for another version of t.csv"):
        read_table_provenance(table)


def test_person_figures_with_missing_flagged_or_foreign_scores(scored, capsys) -> None:
    """A missing region is left out of the map and the report; an unreliable chart's scores and
    another atlas's are refused; other flags are drawn with a warning and named in the figure."""
    folder, table = scored["folder"], scored["table"]
    subject = "patient-00002"
    one_missing = table.copy()
    one_missing.loc[one_missing["subject_id"] == subject, "ei_ratio_roi_5_z"] = np.nan
    path = folder / "one_missing.csv"
    one_missing.to_csv(path, index=False)
    out = folder / "report_missing"
    argv = ["charts", "report", "--chart", "reference", "--scores", str(path), "--subject", subject]
    assert main([*argv, "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert f"| regions without a score | 1: {DK68_REGIONS[5]} |" in text
    assert "of 67 |" in text and f"| {DK68_REGIONS[5]} |" not in text.split("most deviant")[1]
    _real_png(out / "brain_map_z.png")
    capsys.readouterr()

    unreliable = table.assign(flag="chart_unreliable")
    extra = pd.DataFrame(0.0, index=table.index, columns=[f"ei_ratio_roi_{k}_z" for k in range(68, 100)])
    wide = pd.concat([table, extra], axis=1)
    flagged = table.assign(flag="unseen_site")
    for name, frame, message in (
        ("unreliable.csv", unreliable, "flagged chart_unreliable"),
        ("wide.csv", wide, "has 100 regional columns"),
    ):
        frame.to_csv(folder / name, index=False)
        target = folder / f"{name}.png"
        argv = ["charts", "brainmap", "--scores", str(folder / name), "--subject", subject]
        assert main([*argv, "--out", str(target)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not target.exists()
    flagged.to_csv(folder / "flagged.csv", index=False)
    target = folder / "flagged.png"
    argv = ["charts", "brainmap", "--scores", str(folder / "flagged.csv"), "--subject", subject]
    with pytest.warns(UserWarning, match="is flagged unseen_site"):
        assert main([*argv, "--out", str(target)]) == 0
    _real_png(target)


def test_person_brain_map_clips_wild_z_and_checks_centiles() -> None:
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.plotting.person import Z_COLOUR_LIMIT, plot_person_brain_map

    z = np.linspace(-2.0, 2.0, 68)
    z[7] = 118.7
    from matplotlib.text import Text

    fig = plot_person_brain_map(z, "p", value="z")
    texts = " ".join(t.get_text() for t in fig.findobj(Text))
    assert f"|z| > {Z_COLOUR_LIMIT:g} drawn at {Z_COLOUR_LIMIT:g}" in texts
    with pytest.raises(InvalidInputError, match="fractions in"):
        plot_person_brain_map(np.full(68, 50.0), "p", value="centile")
