"""Review 12-08 (provenance of charts): a table scored without its provenance sidecar is named
in a warning and recorded as such; a settings mismatch names the differing settings, not only
their digests; a chart records the table file it was fitted on (real SHA-256 and row count,
not a stale sidecar's) and ``--exclude-flagged``."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io import ei_table as et

KIND = "delssome_norms cohort table provenance"
SETTINGS = {
    "cmaes": {"generations": 3, "popsize": 16, "sigma0": 0.2},
    "seed": 2,
    "mode": "surrogate",
    "n_dup": 2,
    "device": "cpu",
}
FIT = ["--targets", "ei_ratio_mean", "--random-sites", "mu", "--centile-tables", "none"]


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _settings_digest(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def _collected(
    folder: Path,
    n: int,
    seed: int,
    settings: dict = SETTINGS,
    name: str = "cohort_ei.csv",
    sites: slice = slice(0, 3),
) -> Path:
    """A table as collect leaves it (table, regions sidecar, provenance sidecar recording its
    fit pipeline and settings)."""
    from delssome_norms.datasets import load_reference_table

    folder.mkdir(parents=True, exist_ok=True)
    table = folder / name
    rows = load_reference_table()
    rows = rows[rows["site"].isin(sorted(rows["site"].unique())[sites])]
    rows.sample(n=n, random_state=seed).to_csv(table, index=False)
    et.regions_frame(list(DK68_REGIONS)).to_csv(folder / f"{table.stem}.regions.csv", index=False)
    meta = {
        "kind": KIND,
        "table": table.name,
        "format_version": 1,
        "pipeline": {
            "atlas": "DK68",
            "n_regions": 68,
            "sc": "template abc",
            "maps": "default DK68 maps def",
            "mode": "surrogate",
            "design": "[1, myelin, gradient]",
            "settings_sha256": _settings_digest(settings),
        },
        "atlas": {"name": "DK68", "n_regions": 68, "regions": list(DK68_REGIONS)},
        "settings": settings,
        "n_subjects": n,
        "table_sha256": _sha(table),
    }
    (folder / f"{table.stem}.provenance.json").write_text(json.dumps(meta))
    return table


def _chart_json(folder: Path) -> dict:
    return json.loads((folder / "chart.json").read_text())


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path]:
    """A small chart of ei_ratio_mean fitted on a collected table, and that table."""
    root = tmp_path_factory.mktemp("fit")
    table = _collected(root / "train", 300, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        assert main(["charts", "fit", "--table", str(table), "--out", str(root / "chart"), *FIT]) in (
            0,
            1,
        )
    return root / "chart", table


# --- 1. a table without its provenance sidecar -------------------------------------------------


def test_score_without_sidecar_warns_and_records_it(fitted, tmp_path: Path, capsys) -> None:
    chart, _ = fitted
    table = _collected(tmp_path / "t", 40, seed=5)
    table.with_suffix(".provenance.json").unlink()  # copied without it
    out = tmp_path / "s" / "scores.csv"
    argv = ["charts", "score", "--chart", str(chart), "--table", str(table), "--out", str(out)]
    with pytest.warns(InputWarning) as caught:
        assert main(argv) == 0
    said = [str(w.message) for w in caught if "provenance sidecar" in str(w.message)]
    assert len(said) == 1  # once
    msg = said[0]
    assert msg.startswith(f"{table}: ")
    assert "cohort_ei.provenance.json" in msg and "cannot be compared with the chart's" in msg
    assert "settings" in msg and "SC" in msg and "maps" in msg and "weights" in msg
    assert "keep the cohort_ei.provenance.json that collect writes next to the table" in msg
    meta = json.loads(out.with_name("scores.provenance.json").read_text())
    assert meta["table_provenance"] == "missing"
    assert out.is_file() and len(out.read_text().splitlines()) == 41  # scored all the same


def test_score_with_sidecar_says_nothing_and_records_it(fitted, tmp_path: Path) -> None:
    chart, _ = fitted
    table = _collected(tmp_path / "t", 40, seed=6)
    out = tmp_path / "scores.csv"
    argv = ["charts", "score", "--chart", str(chart), "--table", str(table), "--out", str(out)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(argv) == 0
    assert not [w for w in caught if "no provenance sidecar" in str(w.message)]
    assert (
        json.loads(out.with_name("scores.provenance.json").read_text())["table_provenance"] == "sidecar"
    )


def test_reference_chart_records_no_fit_pipeline_so_no_warning(tmp_path: Path) -> None:
    """The shipped chart records only its atlas: a user's own table is scored without a word."""
    table = _collected(tmp_path / "t", 30, seed=7)
    table.with_suffix(".provenance.json").unlink()
    out = tmp_path / "scores.csv"
    argv = ["charts", "score", "--chart", "reference", "--table", str(table), "--out", str(out)]
    argv += ["--targets", "ei_ratio_mean"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(argv) == 0
    assert not [w for w in caught if "no provenance sidecar" in str(w.message)]
    assert (
        json.loads(out.with_name("scores.provenance.json").read_text())["table_provenance"] == "missing"
    )


def test_plot_without_sidecar_warns_once(fitted, tmp_path: Path) -> None:
    chart, _ = fitted
    table = _collected(tmp_path / "t", 40, seed=8)
    table.with_suffix(".provenance.json").unlink()
    argv = ["charts", "plot", "--chart", str(chart), "--table", str(table), "--subject"]
    subject = str(pd.read_csv(table)["subject_id"].iloc[0])
    argv += [subject, "--out", str(tmp_path / "fan.png")]
    with pytest.warns(InputWarning) as caught:
        assert main(argv) == 0
    assert len([w for w in caught if "no provenance sidecar" in str(w.message)]) == 1


def test_adapt_without_sidecar_warns_and_records_it(fitted, tmp_path: Path) -> None:
    chart, _ = fitted
    controls = _collected(tmp_path / "c", 30, seed=3, name="controls.csv", sites=slice(3, 4))
    controls.with_suffix(".provenance.json").unlink()
    out = tmp_path / "adapted"
    argv = ["charts", "adapt", "--chart", str(chart), "--controls", str(controls), "--out", str(out)]
    with pytest.warns(InputWarning) as caught:
        assert main(argv) == 0
    said = [str(w.message) for w in caught if "no provenance sidecar" in str(w.message)]
    assert len(said) == 1 and said[0].startswith(f"{controls}: ")
    assert "controls.provenance.json" in said[0] and "used without that check" in said[0]
    assert _chart_json(out)["adaptations"][-1]["controls_provenance"] == "missing"


# --- 2. settings named, not only their digests ------------------------------------------------


def test_settings_mismatch_names_the_settings(fitted, tmp_path: Path, capsys) -> None:
    chart, _ = fitted
    other = json.loads(json.dumps(SETTINGS))
    other["cmaes"]["generations"] = 100
    other["n_dup"] = 4
    other["seed"] = 9  # outside the pipeline (its digest): not named
    table = _collected(tmp_path / "t", 40, seed=9, settings=other)
    out = tmp_path / "scores.csv"
    argv = ["charts", "score", "--chart", str(chart), "--table", str(table), "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "the table's settings differ from the chart's: cmaes.generations is 100 in the table " in err
    assert "but 3 in the chart, n_dup is 4 in the table but 2 in the chart;" in err
    assert "seed" not in err and "settings_sha256 is" not in err
    assert not out.exists()


def test_settings_message_lists_a_few_then_dots_and_falls_back_to_digest(fitted) -> None:
    from delssome_norms.io import read_ei_table
    from delssome_norms.norms import GrowthChart

    chart = GrowthChart.load(fitted[0])
    table = read_ei_table(fitted[1])
    table.attrs.clear()
    many = json.loads(json.dumps(SETTINGS))
    many["cmaes"] = {"generations": 1, "popsize": 2, "sigma0": 0.5}
    many["n_dup"] = 7
    prov = {
        "pipeline": {**chart.provenance_["pipeline"], "settings_sha256": _settings_digest(many)},
        "settings": many,
    }
    with pytest.raises(InvalidInputError) as err:
        chart.check_pipeline(table, prov, source="t.csv")
    msg = str(err.value)
    assert "cmaes.generations is 1 in the table but 3 in the chart" in msg
    assert "cmaes.popsize is 2 in the table but 16 in the chart" in msg
    assert "cmaes.sigma0 is 0.5 in the table but 0.2 in the chart, ..." in msg
    assert "n_dup" not in msg  # the fourth: cut
    # no full settings in the table's provenance: the digests, as before
    del prov["settings"]
    with pytest.raises(InvalidInputError) as err:
        chart.check_pipeline(table, prov, source="t.csv")
    digest = _settings_digest(many)[:12]
    assert f"settings_sha256 is '{digest}...' in the table" in str(err.value)


# --- 3. the chart records the table it was fitted on -----------------------------------------


def test_chart_records_the_edited_table_not_the_stale_sidecar(tmp_path: Path) -> None:
    table = _collected(tmp_path / "t", 300, seed=1)
    recorded_sha = _sha(table)
    edited = pd.read_csv(table).iloc[:250]  # rows removed after collect: the sidecar is stale
    edited.to_csv(table, index=False)
    out = tmp_path / "chart"
    with pytest.warns(InputWarning, match="was written for another version"):
        assert main(["charts", "fit", "--table", str(table), "--out", str(out), *FIT]) in (0, 1)
    prov = _chart_json(out)["provenance"]
    assert prov["table"] == "cohort_ei.csv"
    assert prov["table_sha256"] == _sha(table) != recorded_sha
    assert prov["n_subjects"] == 250
    assert prov["sidecar_table_sha256"] == recorded_sha
    assert prov["sidecar_n_subjects"] == 300
    assert prov["exclude_flagged"] is False and prov["n_excluded_flagged"] == 0


def test_chart_of_a_table_without_sidecar_records_file_and_flag_exclusion(tmp_path: Path) -> None:
    from delssome_norms.norms import GrowthChart

    table = _collected(tmp_path / "t", 200, seed=2)
    table.with_suffix(".provenance.json").unlink()
    rows = pd.read_csv(table)
    flagged = np.zeros(len(rows), dtype=bool)
    flagged[:7] = True
    rows["fit_flagged"] = flagged
    rows.to_csv(table, index=False)
    out = tmp_path / "chart"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        argv = ["charts", "fit", "--table", str(table), "--out", str(out), "--exclude-flagged"]
        assert main([*argv, *FIT]) in (0, 1)
    prov = _chart_json(out)["provenance"]
    assert prov["table"] == "cohort_ei.csv" and prov["table_sha256"] == _sha(table)
    assert prov["n_subjects"] == 200
    assert prov["exclude_flagged"] is True and prov["n_excluded_flagged"] == 7
    assert not any(k.startswith("sidecar_") for k in prov)
    assert GrowthChart.load(out).n_obs_.tolist() == [193]  # the flagged 7 left out


def test_the_api_records_the_flag_exclusion_but_not_a_file_it_cannot_vouch_for(
    tmp_path: Path,
) -> None:
    """``GrowthChart.fit(source=...)``: ``source`` names the frame in messages only (the frame may
    be a subset, or another file's rows), so the chart keeps the sidecar's table record and adds
    only ``exclude_flagged``; ``charts fit`` records the table file itself."""
    from delssome_norms.io import read_ei_table
    from delssome_norms.norms import GrowthChart

    table = _collected(tmp_path / "t", 200, seed=4)
    other = _collected(tmp_path / "o", 50, seed=9)
    sidecar_sha = json.loads(table.with_suffix(".provenance.json").read_text())["table_sha256"]
    frame = read_ei_table(table)
    frame["fit_flagged"] = np.arange(len(frame)) < 5
    kw = {"mu_df": 3, "random_sites": ["mu"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        chart = GrowthChart("SHASHo2", **kw).fit(
            frame, targets=["ei_ratio_mean"], source=str(other), exclude_flagged=True
        )
    prov = chart.provenance_
    assert prov["table_sha256"] == sidecar_sha != _sha(other)  # not the file `source` names
    assert prov["exclude_flagged"] is True and prov["n_excluded_flagged"] == 5
    assert not any(k.startswith("sidecar_") for k in prov)
    assert chart.n_obs_.tolist() == [195]
