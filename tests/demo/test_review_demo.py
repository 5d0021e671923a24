"""Review of ``delssome-norms demo``: reruns into the same folder, foreign folders, bad --out and
the report's Markdown, each checked on the function that does it (the demo itself is slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms import demo
from delssome_norms.cli.main import main
from delssome_norms.errors import InvalidInputError


class _Stop(Exception):
    """Raised in place of the fit, once the demo has decided what to do with old results."""


def _finished_result(folder: Path, subject: str) -> None:
    """A finished fit of ``subject`` written with other settings (another fingerprint)."""
    folder.mkdir(parents=True)
    for name in ("EI_ratio.csv", "best_parameters.csv", "fit_quality.csv"):
        (folder / name).write_text("old\n")
    run = {"status": "complete", "subject_id": subject, "fingerprint": {"seed": 12345}}
    (folder / "run.json").write_text(json.dumps(run))


def test_rerun_with_other_settings_refits_instead_of_naming_a_missing_option(
    tmp_path: Path, monkeypatch
) -> None:
    """A second demo with another --seed/--mode/budget into the same folder used to stop with
    "use --overwrite to refit", an option the demo does not have."""
    from delssome_norms.pipeline import EIEstimator

    subject_dir = tmp_path / "estimates" / "synth-00604"
    _finished_result(subject_dir, "synth-00604")

    def stop(*args, **kwargs):
        raise _Stop

    monkeypatch.setattr(EIEstimator, "_estimate", staticmethod(stop))
    with pytest.raises(_Stop):  # got past the check of the old result, to the fit
        demo.estimate_subjects(tmp_path, demo.DemoSettings(n_subjects=1, mode="euler"))
    # the old result is set aside (the refit replaces it), not read as this run's
    assert not (subject_dir / "run.json").exists()
    assert json.loads((subject_dir / "previous" / "run.json").read_text())["fingerprint"] == {
        "seed": 12345
    }


def test_fits_of_subjects_left_out_of_this_run_are_removed(tmp_path: Path) -> None:
    folder = tmp_path / "estimates"
    for name in ("synth-00604", "synth-01562", "my-notes"):
        (folder / name).mkdir(parents=True)
        (folder / name / "x.txt").write_text("x")
    removed = demo._remove_other_estimates(folder, {"synth-00604", "synth-01562"}, keep={"synth-00604"})
    assert removed == ["synth-01562"]
    assert sorted(p.name for p in folder.iterdir()) == ["my-notes", "synth-00604"]


def test_prepare_out_refuses_a_folder_of_other_files_and_leaves_it_alone(tmp_path: Path) -> None:
    user = tmp_path / "mine"
    user.mkdir()
    (user / "report.md").write_text("my own report")
    (user / "figures").mkdir()
    (user / "figures" / "01_plot.png").write_text("my figure")
    with pytest.raises(InvalidInputError, match=r"is not empty \(2 entries: figures, report.md\)"):
        demo.prepare_out(user)
    assert (user / "report.md").read_text() == "my own report"
    assert (user / "figures" / "01_plot.png").read_text() == "my figure"
    assert not (user / demo.DEMO_MARKER).exists()

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(InvalidInputError, match="exists and is not a folder"):
        demo.prepare_out(a_file)


def test_prepare_out_clears_the_run_summary_of_an_earlier_demo(tmp_path: Path) -> None:
    out = demo.prepare_out(tmp_path / "new" / "demo")  # a new folder: created and marked
    assert (out / demo.DEMO_MARKER).is_file()
    (out / "report.md").write_text("# delssome_norms demo report\nold run\n")
    (out / "summary.json").write_text(json.dumps({"synthetic": True}))
    (out / "figures").mkdir()
    for name in ("01_fit_vs_truth.png", "06_fit_vs_truth.png", "my_notes.png"):
        (out / "figures" / name).write_text("x")
    (out / "patient_scores.csv").write_text("a\n1\n")
    assert demo.prepare_out(out) == out
    # a rerun that fails half-way leaves no report of the earlier run next to new tables
    assert not (out / "report.md").exists() and not (out / "summary.json").exists()
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["my_notes.png"]
    assert (out / "patient_scores.csv").exists()  # rewritten by the run itself

    # a folder written by a version without the marker is recognised by its report
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "report.md").write_text("# delssome_norms demo report\n")
    (legacy / "summary.json").write_text(json.dumps({"synthetic": True}))
    demo.prepare_out(legacy)
    assert (legacy / demo.DEMO_MARKER).is_file() and not (legacy / "report.md").exists()


def test_cli_bad_out_and_subjects_fail_in_one_line_writing_nothing(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("keep me")
    # "" used to mean the current folder: the whole demo ran into it
    assert main(["demo", "--out", ""]) == 2
    err = capsys.readouterr().err
    assert "--out: empty value" in err and err.count("\n") == 1, err
    assert main(["demo", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds no earlier demo output" in err and err.count("\n") == 1, err
    assert main(["demo", "--out", "d", "--subjects", "61"]) == 2
    err = capsys.readouterr().err
    assert "--subjects: asks for 61 subjects, but the package has 60" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_markdown_table_renders_without_tabulate() -> None:
    """The estimation table was written with DataFrame.to_string when the optional tabulate was
    missing (the default install): not a Markdown table, it ran together into one paragraph."""
    table = pd.DataFrame(
        {"subject_id": ["s-1", "a|b"], "r": [0.99561, np.nan], "ok": [True, False], "n": [3, 4]}
    )
    assert demo._markdown_table(table).splitlines() == [
        "| subject_id | r | ok | n |",
        "|---|---|---|---|",
        "| s-1 | 0.9956 | True | 3 |",
        "| a\\|b |  | False | 4 |",
    ]


def _summary(per_patient: list[dict]) -> dict:
    figures = ["estimation", "lifespan", "groups", "brain", "gap", "patient"]
    return {
        "settings": demo.DemoSettings(mode="euler").__dict__.copy(),
        "estimation": {
            "mode": "euler",
            "n_subjects": 1,
            "median_pearson_r": 0.9,
            "per_subject_seconds": 10.0,
            "median_abs_mean_ei_error": 0.05,
            "truths_in_interval": 1,
            "flagged": 0,
            "intervals_uncalibrated": 0,
            "calibration_differences": "",
        },
        "charts": {"n_people": 100, "n_targets": 69, "all_converged": True},
        "patients": {
            "n_patients": 2,
            "mean_z_shifted_regions": 2.5,
            "true_shift_sd": 2.0,
            "mean_z_other_regions": 0.1,
            "corr_z_with_true_deviation": 0.9,
            "per_patient": per_patient,
        },
        "sex_differences": {
            "mu_lr": {
                "mean_target_p": 1e-5,
                "mean_target_direction": "female > male",
                "regions_fdr_significant": 60,
                "regions_tested": 68,
            },
        },
        "sex_gap": {"n_ages": 94, "n_above": 84, "youngest": 5.0, "oldest": 88.0},
        "timings_seconds": {"estimation": 1.0},
        "figures": {k: f"{i + 1:02d}_{k}.png" for i, k in enumerate(figures)},
    }


def test_report_numbers_its_figures_in_order_and_explains_the_patient_z() -> None:
    per_patient = [
        {"subject_id": "patient-1", "deviation": "sensory regions +2 SD",
         "mean_z_shifted": 1.46, "mean_z_other": -0.19},
        {"subject_id": "patient-2", "deviation": "all regions +2 SD",
         "mean_z_shifted": 3.84, "mean_z_other": None},
    ]  # fmt: skip
    estimates = pd.DataFrame({"subject_id": ["synth-1"], "pearson_r": [0.9]})
    text = demo._report(_summary(per_patient), estimates)
    assert "SYNTHETIC" in text
    assert "| subject_id | pearson_r |\n|---|---|\n| synth-1 | 0.9 |" in text
    numbers = [int(line.split("*Figure ")[1].split("*")[0]) for line in text.splitlines()
               if line.startswith("*Figure ")]  # fmt: skip
    assert numbers == [1, 2, 3, 4, 5, 6]
    assert "ranges from 1.46 to 3.84" in text
    assert "(patient-1, sensory regions +2 SD): mean z +1.46 in the shifted regions, -0.19" in text
    assert "above zero at 84 of the 94 ages (from age 5 to 88); at the other 10" in text


def test_gap_band_and_per_patient_summaries() -> None:
    gap = pd.DataFrame({"age_in_years": [5.0, 6.0, 7.0, 8.0], "ci_low": [0.01, 0.02, -0.01, 0.03]})
    band = demo._band_above_zero(gap)
    assert band == {"n_ages": 4, "n_above": 3, "youngest": 5.0, "oldest": 8.0}
    assert "includes zero at every age" in demo._gap_caption(
        demo._band_above_zero(gap.assign(ci_low=-1.0))
    )
    patients = pd.DataFrame({"subject_id": ["p1"], "deviation": ["association regions -2 SD"]})
    true_dev = np.array([[0.0, -2.0, -2.0]])
    z = np.array([[0.5, -1.0, -3.0]])
    (row,) = demo._per_patient_z(patients, z, true_dev)
    assert row["mean_z_shifted"] == pytest.approx(2.0)  # signed along the -2 SD shift
    assert row["mean_z_other"] == pytest.approx(0.5)


def test_reused_fits_report_their_recorded_time_not_the_reuse(tmp_path: Path) -> None:
    """A rerun reuses finished fits in ~0.03 s each; the report said "(0 s per subject)"."""
    (tmp_path / "run.json").write_text(
        json.dumps({"wall_time_s": {"per_subject_estimate": 38.25, "train_s": 2.1}})
    )
    assert demo._recorded_seconds(tmp_path, 0.03) == 38.25
    assert demo._recorded_seconds(tmp_path / "missing", 0.03) == 0.03
    summary = _summary([])
    summary["estimation"].update(per_subject_seconds=38.25, reused=1)
    text = demo._report(summary, pd.DataFrame({"subject_id": ["synth-1"], "reused": [True]}))
    assert "(38 s per subject; 1 of them reused from an earlier demo in this folder" in text
