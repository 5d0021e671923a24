"""``prepare`` never leaves a new FC beside an old FCD-CDF (or an old manifest beside new files),
whatever step an interruption hits; and the surrogate workflow on a lab's own SC."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.io import writers


def _series(path: Path, frames: int, seed: int, n: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ts = rng.standard_normal((frames, n)) + rng.standard_normal((frames, 1))
    np.savetxt(path, ts, delimiter="\t")
    return ts


def _pair(out: Path, prefix: str = "") -> tuple[bytes | None, bytes | None]:
    """Bytes of FC.csv and FCD_CDF.csv (None: missing)."""
    fc, cdf = out / f"{prefix}FC.csv", out / f"{prefix}FCD_CDF.csv"
    return (
        fc.read_bytes() if fc.exists() else None,
        cdf.read_bytes() if cdf.exists() else None,
    )


def _prepare(ts: Path, out: Path) -> int:
    return main(["prepare", "--timeseries", str(ts), "--tr", "2", "--out-dir", str(out)])


def test_interrupted_cdf_write_keeps_the_earlier_pair(tmp_path: Path, monkeypatch) -> None:
    """Ctrl-C while the FCD-CDF is written: the folder still holds the earlier, matching pair
    (before, the new FC sat beside the earlier FCD-CDF and estimate-ei fitted them together)."""
    out = tmp_path / "out"
    _series(tmp_path / "old.tsv", 80, 1)
    _series(tmp_path / "new.tsv", 90, 2)
    assert _prepare(tmp_path / "old.tsv", out) == 0
    old = _pair(out)
    original = writers.write_matrix

    def stop_at_cdf(values, path, *names):
        if "FCD_CDF" in Path(path).name:
            raise KeyboardInterrupt
        return original(values, path, *names)

    monkeypatch.setattr("delssome_norms.io.write_matrix", stop_at_cdf)
    assert _prepare(tmp_path / "new.tsv", out) == 130
    assert _pair(out) == old
    assert {p.name for p in out.iterdir()} == {"FC.csv", "FCD_CDF.csv", "prepare.json"}  # no temporaries


def test_no_interruption_point_leaves_a_mixed_pair(tmp_path: Path, monkeypatch) -> None:
    """Stopped at every rename or removal in turn, the folder holds the old pair, the new pair,
    or an FC (old or new) without FCD-CDF (refused by estimate-ei as missing), never a new and
    an old file."""
    _series(tmp_path / "old.tsv", 80, 1)
    _series(tmp_path / "new.tsv", 90, 2)
    ref_old, ref_new = tmp_path / "ref_old", tmp_path / "ref_new"
    assert _prepare(tmp_path / "old.tsv", ref_old) == 0
    assert _prepare(tmp_path / "new.tsv", ref_new) == 0
    old, new = _pair(ref_old), _pair(ref_new)
    assert old[0] != new[0] and old[1] != new[1]
    replace, unlink = os.replace, Path.unlink
    outcomes = set()
    for stop_at in range(12):
        out = tmp_path / f"out{stop_at}"
        assert _prepare(tmp_path / "old.tsv", out) == 0
        calls: list = []

        def counted(fn, calls: list = calls, stop_at: int = stop_at):
            def wrapped(*a, **k):
                calls.append(a)
                if len(calls) == stop_at + 1:
                    raise KeyboardInterrupt
                return fn(*a, **k)

            return wrapped

        with monkeypatch.context() as m:
            m.setattr(writers.os, "replace", counted(replace))
            m.setattr(Path, "unlink", counted(unlink))
            rc = _prepare(tmp_path / "new.tsv", out)
        fc, cdf = _pair(out)
        if fc in (old[0], new[0]) and cdf is None:
            outcomes.add("fc alone")
        else:
            assert (fc, cdf) in (old, new), f"mixed pair when stopped at step {stop_at}"
            outcomes.add("old" if (fc, cdf) == old else "new")
        assert rc == (0 if (fc, cdf) == new else 130)
        if rc == 0:
            break
    assert outcomes == {"old", "fc alone", "new"}  # every kind of step was hit


def _bids(root: Path, seed: int) -> None:
    for k, sub in enumerate(("01", "02")):
        func = root / f"sub-{sub}" / "func"
        func.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed + k)
        frames = 70 + 10 * seed
        ts = rng.standard_normal((frames, 68)) + rng.standard_normal((frames, 1))
        pd.DataFrame(ts, columns=list(DK68_REGIONS)).to_csv(
            func / f"sub-{sub}_task-rest_timeseries.tsv", sep="\t", index=False
        )
        (func / f"sub-{sub}_task-rest_timeseries.json").write_text(json.dumps({"RepetitionTime": 2.0}))


def test_interrupted_bids_prepare_leaves_no_old_manifest(tmp_path: Path, monkeypatch) -> None:
    """A --bids-dir run stopped after its first subject: the earlier manifest (its scan lengths
    of the earlier runs) is gone, so cohort cannot fit new files with old timing."""
    old_dir, new_dir, out = tmp_path / "old", tmp_path / "new", tmp_path / "out"
    _bids(old_dir, 0)
    _bids(new_dir, 3)  # 100 frames instead of 70
    argv = ["prepare", "--out-dir", str(out), "--bids-dir"]
    assert main([*argv, str(old_dir)]) == 0
    assert pd.read_csv(out / "manifest.csv")["scan_length"].tolist() == [140.0, 140.0]
    original = writers.write_matrix

    def stop_at_second(values, path, *names):
        if "sub-02" in Path(path).name:
            raise KeyboardInterrupt
        return original(values, path, *names)

    monkeypatch.setattr("delssome_norms.io.write_matrix", stop_at_second)
    assert main([*argv, str(new_dir)]) == 130
    assert not (out / "manifest.csv").exists()
    monkeypatch.undo()
    assert main([*argv, str(new_dir)]) == 0  # rerun: complete again
    assert pd.read_csv(out / "manifest.csv")["scan_length"].tolist() == [200.0, 200.0]


@pytest.fixture
def lone_fc(tmp_path: Path) -> Path:
    out = tmp_path / "lone"
    out.mkdir()
    ts = _series(tmp_path / "a.tsv", 80, 1, n=68)
    np.savetxt(out / "FC.csv", np.corrcoef(ts.T), delimiter=",")
    return out


def test_estimate_ei_refuses_an_fc_without_its_cdf(lone_fc: Path, capsys) -> None:
    """What an interrupted prepare can leave (FC alone) is one clear error, not a fit."""
    rc = main(
        [
            "estimate-ei",
            "--fc",
            str(lone_fc / "FC.csv"),
            "--fcd-cdf",
            str(lone_fc / "FCD_CDF.csv"),
            "--tr",
            "2",
            "--scan-length",
            "160",
            "--out-dir",
            str(lone_fc / "fit"),
        ]
    )
    err = capsys.readouterr().err
    assert rc != 0 and "FCD_CDF.csv" in err and "Traceback" not in err


def test_prepare_prints_the_fit_command_with_its_scan_length(tmp_path: Path, capsys) -> None:
    """estimate-ei --fc needs --scan-length: prepare says which (frames x TR, the runs' mean)."""
    _series(tmp_path / "a.tsv", 70, 1)
    _series(tmp_path / "b.tsv", 91, 2)
    out = tmp_path / "out"
    argv = ["prepare", "--tr", "2", "--out-dir", str(out), "--subject-id", "s1", "--timeseries"]
    assert main([*argv, str(tmp_path / "a.tsv")]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("next: delssome-norms estimate-ei --fc ")
    want = "--tr 2 --scan-length 140 --sc YOUR_SC.csv --out-dir"  # 8 regions: not DK68
    assert f"--fcd-cdf {out / 's1_FCD_CDF.csv'} {want}" in line
    assert main([*argv, str(tmp_path / "a.tsv"), str(tmp_path / "b.tsv"), "--fcd-window", "12"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert "--scan-length 160 --fcd-window 12 " in line and "mean number of frames" in line


# ------------------------------------------------------------------ surrogate weights of a lab


def _tiny_data(n_subjects: int = 6, n: int = 5, seed: int = 0, valid_per_subject: int = 40):
    """A data set of known losses (no simulation): ``valid_per_subject`` finite ones each."""
    from dataclasses import replace

    from tests.cli.test_surrogate_cmd import _tiny_dataset

    data = _tiny_dataset(n_subjects=n_subjects, n=n, seed=seed)
    losses = data.losses.copy()
    losses[(np.arange(losses.shape[0]) % 40) >= valid_per_subject] = np.nan  # 40 per subject
    return replace(data, losses=losses)


TRAIN = ["--epochs", "1", "--d-model", "16", "--heads", "2", "--layers", "1", "--quiet"]


def _train(data_dir: Path, out: Path) -> int:
    return main(["surrogate", "train", "--data", str(data_dir), "--out", str(out), *TRAIN])


def test_too_few_valid_test_candidates_is_not_blamed_on_the_network(
    tmp_path: Path, capsys, one_thread
) -> None:
    """Two valid candidates per subject cannot be ranked: the error says so (it said the network
    predicted one cost for all and advised a lower --lr)."""
    from delssome_norms.surrogate.dataset import save_dataset

    save_dataset(_tiny_data(valid_per_subject=2), tmp_path / "data")
    assert _train(tmp_path / "data", tmp_path / "w") == 2
    err = capsys.readouterr().err
    assert "have 2 candidate(s) with finite losses, fewer than the 3" in err
    assert "--lr" not in err and err.count("\n") == 1
    assert not (tmp_path / "w").exists() and not (tmp_path / "w.checkpoint").exists()


def test_weights_folder_errors_say_what_is_wrong(tmp_path: Path, one_thread) -> None:
    """A weights folder copied without one file, or a file given as the folder, is named as such
    (all three read 'no pretrained surrogate weights found', with advice to train)."""
    import shutil

    from delssome_norms.errors import InvalidInputError
    from delssome_norms.surrogate.dataset import save_dataset
    from delssome_norms.surrogate.pretrained import load_pretrained

    save_dataset(_tiny_data(), tmp_path / "data")
    assert _train(tmp_path / "data", tmp_path / "w") == 0
    for name in ("model.safetensors", "metadata.json"):
        copy = tmp_path / f"without_{name}"
        shutil.copytree(tmp_path / "w", copy)
        (copy / name).unlink()
        with pytest.raises(InvalidInputError, match=f"has no {name}: the weights folder is incomplete"):
            load_pretrained(copy)
    with pytest.raises(InvalidInputError, match="is a file, not a weights folder"):
        load_pretrained(tmp_path / "w" / "metadata.json")
    with pytest.raises(InvalidInputError, match="does not exist: no pretrained surrogate weights"):
        load_pretrained(tmp_path / "nowhere")
    with pytest.raises(InvalidInputError, match="is a surrogate training data set"):
        load_pretrained(tmp_path / "data")  # the data folder given as weights


def test_sc_mismatch_advice_fits_the_weights(tmp_path: Path, one_thread) -> None:
    """A lab's weights refuse another SC telling to pass their SC with --sc; the shipped
    template's weights tell to drop --sc (both said 'use the default template SC')."""
    import torch

    from delssome_norms.datasets import load_default_template
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.surrogate.network import CostPredictor, SurrogateConfig
    from delssome_norms.surrogate.pretrained import load_pretrained, save_pretrained

    cfg = SurrogateConfig(n_regions=5, cdf_bins=10000, d_model=16, n_heads=2, n_layers=1, d_ff=32)
    torch.manual_seed(0)
    sc = np.full((5, 5), 0.02) - 0.02 * np.eye(5)
    other = sc * np.linspace(0.5, 1, 5)
    for source, wanted in (
        ("user SC (--sc my_sc.csv)", "Give the SC these weights were trained on (--sc"),
        (load_default_template().source, "need the default DK68 template SC (no --sc)"),
    ):
        folder = save_pretrained(
            CostPredictor(cfg), tmp_path / "w", {"template": {"source": source}}, template_sc=sc
        )
        weights = load_pretrained(folder)
        weights.check(5, 10000, sc=sc)  # its own SC passes
        with pytest.raises(InvalidInputError) as err:
            weights.check(5, 10000, sc=other)
        assert wanted in err.value.problem and source in err.value.problem


def test_evaluate_on_data_of_another_sc_speaks_of_data(tmp_path: Path, capsys, one_thread) -> None:
    """surrogate evaluate on a data set simulated on another SC: the error names the data set
    and the subject, and gives evaluate's remedy, not the fit's (--mode euler)."""
    from dataclasses import replace

    from delssome_norms.surrogate.dataset import save_dataset

    data = _tiny_data()
    save_dataset(data, tmp_path / "data")
    save_dataset(replace(data, sc=data.sc * 0.5), tmp_path / "other")
    assert _train(tmp_path / "data", tmp_path / "w") == 0
    capsys.readouterr()
    argv = ["surrogate", "evaluate", "--weights", str(tmp_path / "w"), "--data"]
    assert main([*argv, str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'other'}: subject s0 was simulated on another SC" in err
    assert "--mode euler" not in err and "with the same --sc" in err and err.count("\n") == 1


def test_generate_help_lists_the_default_scan_lengths(capsys) -> None:
    from delssome_norms.surrogate.generate import DEFAULT_SCAN_LENGTHS

    with pytest.raises(SystemExit):
        main(["surrogate", "generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default {' '.join(f'{s:g}' for s in DEFAULT_SCAN_LENGTHS)})" in text


def test_interrupted_aparc_prepare_leaves_no_old_maps_table(tmp_path: Path, monkeypatch) -> None:
    """prepare --aparc-stats stopped half-way through new tables: no maps.csv is left listing a
    set of maps that is half new, half from the earlier tables."""
    from test_prepare_aparc import _write_tables  # tests/cli helper: aparcstats2table layout

    out = tmp_path / "maps"
    argv = ["prepare", "--out-dir", str(out), "--aparc-stats"]
    rng = np.random.default_rng(0)
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = _write_tables(tmp_path / "old", rng.uniform(1.0, 2.0, (3, 68)))
    new = _write_tables(tmp_path / "new", rng.uniform(1.0, 2.0, (3, 68)))
    assert main([*argv, *map(str, old)]) == 0
    assert (out / "maps.csv").exists()
    original = writers.write_matrix

    def stop_at_second(values, path, *names):
        if Path(path).name.startswith("sub-02"):
            raise KeyboardInterrupt
        return original(values, path, *names)

    monkeypatch.setattr("delssome_norms.io.write_matrix", stop_at_second)
    assert main([*argv, *map(str, new)]) == 130
    assert not (out / "maps.csv").exists()


def test_generate_into_a_data_set_of_another_sc_names_both(tmp_path: Path, capsys) -> None:
    """Both SCs of a lab were recorded as 'user SC': the refusal now names the file the data set
    was generated on and this run's, and nothing is simulated."""
    from dataclasses import replace

    from delssome_norms.surrogate.dataset import save_dataset

    info = {"sc_sha256": "0" * 16, "template": "user SC", "sc_file": "--sc lab.csv", "settings": {}}
    save_dataset(replace(_tiny_data(), info=info), tmp_path / "data")
    sc = np.full((5, 5), 1.0) - np.eye(5)
    np.savetxt(tmp_path / "other.csv", sc, delimiter=",")
    argv = ["surrogate", "generate", "--out", str(tmp_path / "data"), "--quiet", "--sc"]
    assert main([*argv, str(tmp_path / "other.csv")]) == 2
    err = capsys.readouterr().err
    assert "another SC (--sc lab.csv) than this run's (--sc other.csv)" in err
    assert "SC it was generated on (--sc lab.csv;" in err and err.count("\n") == 1
    assert not (tmp_path / "data" / "work").exists()
