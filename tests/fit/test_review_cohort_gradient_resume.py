"""Review: one cohort FC gradient per output folder, and shard plans that agree across nodes.

* A cohort without maps stores its FC gradient (``cohort_gradient.json``); a rerun into the same
  folder reuses it, so a subject fixed or added later is fitted and the finished ones are skipped
  (it refused the whole resume: "another run ... design"), with one warning saying how the
  manifest's gradient differs now; ``--overwrite`` recomputes it.
* A shard that finds the record written by another shard uses it; a damaged, edited or
  other-atlas record is refused naming the file; a group is not fitted with a gradient the folder
  no longer holds.
* ``--shard k/n`` refuses rows whose TR (empty ``tr``, no readable sidecar) cannot be found.

Cohort fits use the analytic stand-in simulator (tests/fit/fit_helpers.py): seconds each.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_helpers import N_TINY, analytic_cohort_settings, tiny_sc, use_analytic_simulator, write_manifest

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import cohort_fc, run_cohort
from delssome_norms.fit.cohort import plan_cohort, run_group_task
from delssome_norms.fit.lockstep import default_gradient
from delssome_norms.io import fisher_z_mean, read_fc, read_manifest, write_matrix
from delssome_norms.io.digest import arrays_sha256

STORED = "cohort_gradient.json"


def _run(manifest: Path, out: Path, **kw):
    """run_cohort with the tiny settings; returns (summary, InputWarning messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = run_cohort(manifest, out, analytic_cohort_settings(), group_size=2, quiet=True, **kw)
    return summary, [str(w.message) for w in caught if issubclass(w.category, InputWarning)]


def _expected(manifest: Path, ids: list[str]) -> np.ndarray:
    """The gradient of the Fisher-z mean FC of ``ids`` (computed here, not by the package)."""
    table = read_manifest(manifest).set_index("subject_id")
    return default_gradient(fisher_z_mean(np.stack([read_fc(table.loc[s, "fc"]) for s in ids])))


def record_sha(out: Path) -> str:
    """The sha256 of the stored gradient, recomputed from its values."""
    return arrays_sha256(np.asarray(json.loads((out / STORED).read_text())["gradient"]))


def _maps_sha(out: Path, sid: str) -> str:
    return json.loads((out / sid / "run.json").read_text())["provenance"]["maps"]["sha256"]


def test_a_fixed_subject_is_fitted_with_the_stored_gradient_and_the_others_skipped(
    tmp_path: Path, monkeypatch
) -> None:
    """sub-01's FC was unreadable in the first run (the gradient averaged 2 of 3 subjects)."""
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 3)
    good = (tmp_path / "data" / "sub-01_FC.csv").read_text()
    (tmp_path / "data" / "sub-01_FC.csv").write_text("not,a,matrix\n")
    out = tmp_path / "out"
    first, _ = _run(manifest, out)
    assert (first.done, first.failed) == (2, 1)
    stored = _expected(manifest, ["sub-00", "sub-02"])
    record = json.loads((out / STORED).read_text())
    assert record["format_version"] == 1 and record["subjects"] == ["sub-00", "sub-02"]
    np.testing.assert_allclose(record["gradient"], stored, rtol=0, atol=1e-12)
    (tmp_path / "data" / "sub-01_FC.csv").write_text(good)  # fixed
    second, messages = _run(manifest, out)  # it refused: "... another run ... design"
    assert (second.done, second.skipped, second.failed) == (1, 2, 0)
    for sid in ("sub-00", "sub-01", "sub-02"):  # one design for the whole folder
        assert _maps_sha(out, sid) == record["sha256"]
    assert json.loads((out / STORED).read_text()) == record  # unchanged
    np.testing.assert_allclose(np.loadtxt(out / "cohort_gradient.csv", delimiter=","), stored)
    # one warning, saying how the gradient of the 3 readable subjects differs and what to do
    now = _expected(manifest, ["sub-00", "sub-01", "sub-02"])
    r = np.corrcoef(now, stored)[0, 1]
    told = [m for m in messages if STORED in m]
    assert len(told) == 1, messages
    assert f"correlation {r:.4f}" in told[0] and "averaged now: sub-01" in told[0]
    assert "--overwrite recomputes it" in told[0]
    assert not any("averages 3 of 3" in m or "could not be read" in m for m in messages)
    # a third run with nothing changed: all skipped, the same warning (the manifest still differs)
    third, _ = _run(manifest, out)
    assert (third.done, third.skipped) == (0, 3)
    # --overwrite recomputes it from every readable subject and refits every subject
    fourth, messages = _run(manifest, out, overwrite=True)
    assert (fourth.done, fourth.skipped) == (3, 0)
    np.testing.assert_allclose(json.loads((out / STORED).read_text())["gradient"], now, atol=1e-12)
    assert _maps_sha(out, "sub-02") == record_sha(out)
    assert not any(STORED in m for m in messages)


def test_an_added_subject_is_fitted_with_the_stored_gradient_in_its_region_order(
    tmp_path: Path, monkeypatch
) -> None:
    """The manifest gains a subject whose FC lists the regions in another (named) order."""
    use_analytic_simulator(monkeypatch)
    names = ["lV1", "lM1", "lPFC", "rV1", "rM1", "rPFC"]  # not "R0".."R5": read as numbering
    data = tmp_path / "data"
    manifest = write_manifest(tmp_path, 2)
    for sid in ("sub-00", "sub-01"):  # named, in the atlas order
        fc = read_fc(data / f"{sid}_FC.csv")
        pd.DataFrame(fc, columns=names).to_csv(data / f"{sid}_FC.csv", index=False)
    pd.DataFrame(tiny_sc(), columns=names).to_csv(data / "sc.csv", index=False)
    out = tmp_path / "out"
    assert _run(manifest, out)[0].done == 2
    stored = json.loads((out / STORED).read_text())
    assert stored["regions"] == names and stored["reference_subject"] == "sub-00"
    # sub-02: regions reversed in its FC file
    rng = np.random.default_rng(7)
    ts = rng.standard_normal((200, N_TINY)) + rng.standard_normal((200, 1))
    fc2 = np.corrcoef(ts.T)
    rev = names[::-1]
    pd.DataFrame(fc2[::-1, ::-1], columns=rev).to_csv(data / "sub-02_FC.csv", index=False)
    table = pd.read_csv(manifest)
    table.loc[2] = {**table.loc[1].to_dict(), "subject_id": "sub-02", "fc": "data/sub-02_FC.csv"}
    table.to_csv(manifest, index=False)
    summary, messages = _run(manifest, out)
    assert (summary.done, summary.skipped, summary.failed) == (1, 2, 0)
    assert _maps_sha(out, "sub-02") == stored["sha256"]
    run = json.loads((out / "sub-02" / "run.json").read_text())
    assert run["provenance"]["atlas"]["regions"] == names  # put in the stored gradient's order
    # the warning compares by name: the gradient of the 3 FCs in the atlas order
    fcs = [read_fc(data / f"sub-0{i}_FC.csv") for i in range(2)] + [fc2]
    r = np.corrcoef(default_gradient(fisher_z_mean(np.stack(fcs))), stored["gradient"])[0, 1]
    assert any(f"correlation {r:.4f}" in m and "averaged now: sub-02" in m for m in messages)


def test_a_shard_uses_the_gradient_another_shard_stored_first(tmp_path: Path, monkeypatch) -> None:
    """Two shards start together; the other one links its record first (between this one's
    check and its write): this shard uses the winner's gradient, never its own."""
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 4)
    out = tmp_path / "out"
    out.mkdir()
    plan = plan_cohort(read_manifest(manifest), analytic_cohort_settings(), group_size=2)
    theirs = cohort_fc.CohortGradient(_expected(manifest, ["sub-00", "sub-01"]), None, ("a", "b"))
    real = cohort_fc.write_json

    def race(record, path, exclusive=False):
        real(cohort_fc._record(theirs), path, exclusive=True)  # the other shard wins
        return real(record, path, exclusive=exclusive)

    monkeypatch.setattr(cohort_fc, "write_json", race)
    with pytest.warns(InputWarning, match=r"correlation .* 4 subject\(s\) averaged now"):
        got = cohort_fc.folder_gradient(plan, "fc-gradient", out, overwrite=False)
    np.testing.assert_array_equal(got, theirs.values)
    assert all(r[cohort_fc.ORDER_KEY] is None for r in plan.rows)  # the winner's (unnamed) order


def test_a_group_is_not_fitted_with_a_gradient_the_folder_no_longer_holds(
    tmp_path: Path, monkeypatch
) -> None:
    """Another shard started with --overwrite replaced the record with another gradient: this
    shard's next group fails (both gradients would be used in one folder)."""
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 2)
    out = tmp_path / "out"
    out.mkdir()
    settings = analytic_cohort_settings()
    plan = plan_cohort(read_manifest(manifest), settings, group_size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        mine = cohort_fc.folder_gradient(plan, "fc-gradient", out, overwrite=False)
    other = cohort_fc.CohortGradient(-mine, None, ("sub-00",))
    cohort_fc.write_json(cohort_fc._record(other), out / STORED)
    outcomes = run_group_task(plan.rows, str(out), settings, plan.n_regions, mine)
    assert [o["status"] for o in outcomes] == ["failed", "failed"]
    assert "was replaced" in outcomes[0]["message"] and "--overwrite" in outcomes[0]["message"]
    assert not (out / "sub-00" / "run.json").exists()
    assert cohort_fc.folder_gradient_now(out, other.values)[1] is None
    # another node's bits (1e-13 off) count as the same gradient, and the stored bits are used
    got, problem = cohort_fc.folder_gradient_now(out, other.values + 1e-13)
    assert problem is None and np.array_equal(got, other.values)


def test_a_damaged_or_foreign_record_is_refused_naming_it(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 2)
    out = tmp_path / "out"
    _run(manifest, out)
    path = out / STORED
    record = json.loads(path.read_text())
    cases = {
        "half": (path.read_text()[:40], "unreadable cohort FC gradient record"),
        "edited": (json.dumps({**record, "gradient": [0.0] * N_TINY}), "does not match its sha256"),
        "version": (json.dumps({**record, "format_version": 99}), "not a cohort FC gradient record"),
    }
    g7 = np.linspace(-1, 1, N_TINY + 1)
    other = {**record, "gradient": g7.tolist(), "sha256": arrays_sha256(g7), "regions": None}
    cases["atlas"] = (json.dumps(other), f"of {N_TINY + 1} regions, but this manifest's subjects have 6")
    for text, problem in cases.values():
        path.write_text(text)
        with pytest.raises(InvalidInputError, match=problem) as err:
            _run(manifest, out)
        assert err.value.source == str(path)
    summary, _ = _run(manifest, out, overwrite=True)  # --overwrite replaces it: the same gradient,
    assert (summary.done, summary.skipped) == (0, 2)  # so the finished subjects stay finished
    assert json.loads(path.read_text())["sha256"] == record["sha256"]


# --- shards and TRs from sidecars --------------------------------------------------------------


def _timeseries_manifest(tmp_path: Path) -> Path:
    """Four subjects' time series (TR 0.8 in their sidecars, no tr column); sub-02's sidecar is
    missing (on this node)."""
    for i in range(4):
        rng = np.random.default_rng(i)
        path = tmp_path / f"ts{i}.tsv"
        np.savetxt(
            path, rng.standard_normal((30, N_TINY)) + rng.standard_normal((30, 1)), delimiter="\t"
        )
        if i != 2:
            path.with_suffix(".json").write_text(json.dumps({"RepetitionTime": 0.8}))
    write_matrix(tiny_sc(), tmp_path / "sc.csv")
    rows = "".join(f"sub-0{i},ts{i}.tsv,sc.csv\n" for i in range(4))
    (tmp_path / "m.csv").write_text("subject_id,timeseries,sc\n" + rows)
    return tmp_path / "m.csv"


def test_a_shard_refuses_rows_whose_tr_this_node_cannot_find(tmp_path: Path, monkeypatch) -> None:
    """Planned under TR 'unknown', sub-02 made groups [[0, 1], [3], [2]]; a node reading its
    sidecar forms [[0, 1], [2, 3]]: shard 2/2 there would fit sub-02 and sub-03 twice."""
    use_analytic_simulator(monkeypatch)
    manifest = _timeseries_manifest(tmp_path)
    out = tmp_path / "out"
    for shard in ("1/2", "2/2"):
        with pytest.raises(InvalidInputError) as err:
            _run(manifest, out, shard=shard)
        assert err.value.source == "--shard"
        assert "row 3 (sub-02)" in err.value.problem and "ts2.tsv" in err.value.problem
        assert "fill the manifest's tr" in err.value.problem
    assert not (out / "sub-00").exists() and not (out / "shard_plan.json").exists()
    # without shards (one plan) the row fails alone, as before
    summary, _ = _run(manifest, out)
    assert (summary.done, summary.failed) == (3, 1)


def test_a_row_without_a_tr_fails_alone_when_k_follows_the_memory(tmp_path: Path, monkeypatch) -> None:
    """Without --batch-subjects, K is sized from every row's frames: the row without a TR
    stopped the cohort ("unexpected TypeError: float() argument ... 'NoneType'")."""
    use_analytic_simulator(monkeypatch)
    manifest = _timeseries_manifest(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        summary = run_cohort(manifest, tmp_path / "out", analytic_cohort_settings(), quiet=True)
    assert (summary.done, summary.failed) == (3, 1)
    failure = summary.failures.set_index("subject_id").loc["sub-02"]
    assert "no JSON sidecar with RepetitionTime" in failure["error"]


def test_a_shard_s_calibration_warning_counts_its_own_subjects(tmp_path: Path, monkeypatch) -> None:
    """The warning said "[4 of 4]" on each of two shards that fit 2 subjects each."""
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 4)
    out = tmp_path / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_cohort(manifest, out, analytic_cohort_settings(), group_size=2, quiet=True, shard="1/2")
    said = [str(w.message) for w in caught if "will not be calibrated" in str(w.message)]
    assert len(said) == 1 and "[2 of 2]" in said[0] and "of 4]" not in said[0]
