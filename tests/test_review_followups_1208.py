"""Follow-ups of the 2026-12-08 review (db77407, cb35786, 360b06d): thousands separators are not
told to be decimal commas, the empirical FC's lower triangle is ignored again, the simulate
out-dir cleanup and its message, a cheap asymmetric-SC check that names no batch row, and the
collect sidecar's documented schema."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.index_column import read_value_column
from delssome_norms.model import cost
from delssome_norms.model.summary import Summary

ROOT = Path(__file__).resolve().parents[1]
VOLUMES = [24533, 12001, 3250, 18877, 999_999, 5000, 1024, 7300]


# ---------------------------------------------------------------- 1. thousands separators


def _error(path: Path) -> str:
    with pytest.raises(InvalidInputError) as info:
        read_value_column(path)
    return str(info.value)


@pytest.mark.parametrize("header", ["", "volume\n"])
def test_thousands_separators_are_not_called_decimal_commas(tmp_path, header) -> None:
    path = tmp_path / "vol.csv"
    path.write_text(header + "".join(f"{v:,}\n" for v in VOLUMES))
    assert _error(path) == (
        f"{path}: every line holds two numbers split by a comma (such as '24,533'), where one "
        "column of values is expected: the comma may be a thousands separator ('24533': remove "
        "the separators) or a decimal comma ('24.533': write decimal points); check which the "
        "values mean and save them without commas"
    )


def test_a_quoted_thousands_cell_is_named_as_one_cell(tmp_path) -> None:
    path = tmp_path / "vol.csv"
    path.write_text("volume\n" + "".join(f'"{v:,}"\n' for v in VOLUMES))
    text = _error(path)
    assert "one quoted cell with a comma (such as '\"24,533\"': one value, not two numbers)" in text
    assert "thousands separator ('24533'" in text and "decimal comma ('24.533'" in text
    assert "looks like decimal commas" not in text


def test_integer_pairs_are_not_called_decimal_commas_with_certainty(tmp_path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("".join(f"{1001 + 7 * i},{3 + i}\n" for i in range(10)))
    text = _error(path)
    assert "looks like decimal commas" not in text
    assert "decimal comma ('1001.3': write decimal points" in text
    assert "or two columns of integers (save only the column of values)" in text


def test_decimal_commas_are_still_named_where_only_they_fit(tmp_path) -> None:
    path = tmp_path / "myelin.csv"
    path.write_text("myelin\n" + "".join(f"{v},{d}\n" for v, d in [(1, "2072"), (1, "05"), (2, "5")]))
    assert "this looks like decimal commas; write decimal points ('1.2072'" in _error(path)
    quoted = tmp_path / "quoted.csv"
    quoted.write_text("".join(f'"1,{d}"\n' for d in (25, 5, 75, 125)))
    assert "this looks like decimal commas; write decimal points ('1.25'" in _error(quoted)


# ---------------------------------------------------------------- 2. the FC's lower triangle


def _summary_and_stats(n: int = 12):
    rng = np.random.default_rng(0)
    sim = np.corrcoef(rng.standard_normal((80, n)).T)
    emp = np.corrcoef(rng.standard_normal((80, n)).T)
    cdf = np.linspace(0.1, 1.0, 10)
    s = Summary(torch.tensor(sim[None]), torch.tensor(cdf[None] ** 2), torch.tensor([True]))
    return s, sim, emp, cdf


def test_cost_uses_only_the_upper_triangle_of_the_empirical_fc() -> None:
    s, sim, emp, cdf = _summary_and_stats()
    iu = np.triu_indices(12, 1)
    a, b = sim[iu], emp[iu]
    expected = {"corr_loss": 1 - np.corrcoef(a, b)[0, 1], "l1_loss": abs(a.mean() - b.mean())}
    lower_nan = emp.copy()
    lower_nan[np.tril_indices(12, -1)] = np.nan
    other_lower = emp.copy()
    other_lower[np.tril_indices(12, -1)] = 0.99  # differs from the upper triangle
    np.fill_diagonal(other_lower, 7.0)
    for fc in (emp, lower_nan, other_lower):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = cost(s, fc, cdf).as_dict(0)
        assert got["corr_loss"] == pytest.approx(expected["corr_loss"], abs=1e-12)
        assert got["l1_loss"] == pytest.approx(expected["l1_loss"], abs=1e-12)


def test_cost_still_refuses_bad_values_in_the_upper_triangle_and_bad_cdfs() -> None:
    s, _, emp, cdf = _summary_and_stats()
    big = emp.copy()
    big[2, 5] = 1.5
    with pytest.raises(InvalidInputError, match=r"^fc_emp: FC values must lie in \[-1, 1\]"):
        cost(s, big, cdf)
    nan = emp.copy()
    nan[0, 3] = np.nan
    with pytest.raises(InvalidInputError, match=r"^fc_emp: contains NaN or inf"):
        cost(s, nan, cdf)
    with pytest.raises(InvalidInputError, match=r"^fcd_cdf_emp: CDF must end at 1"):
        cost(s, emp, cdf * 1.5)


# ---------------------------------------------------------------- 3 and 8. simulate's folders


def test_new_folders_does_not_list_an_existing_folder_named_through_dotdot(tmp_path) -> None:
    from delssome_norms.cli.simulate_inputs import new_folders

    (tmp_path / "emptyuser").mkdir()
    assert new_folders(tmp_path / "ghost" / ".." / "emptyuser") == []
    assert new_folders(tmp_path / "ghost" / ".." / "fresh" / "run") == [
        (tmp_path / "fresh" / "run").resolve(),
        (tmp_path / "fresh").resolve(),
    ]


def test_a_stopped_simulate_says_it_removed_the_folder_it_created(tmp_path, capsys) -> None:
    from delssome_norms.cli.simulate_inputs import discard_if_failed, stopped_message
    from delssome_norms.io.guard import LOCK_FILE

    out = tmp_path / "newA" / "newB"
    out.mkdir(parents=True)
    (out / LOCK_FILE).touch()
    with pytest.raises(KeyboardInterrupt) as info:
        with discard_if_failed([out, out.parent]):
            raise KeyboardInterrupt
    assert not (tmp_path / "newA").exists()
    assert stopped_message(info.value, str(out), False) == 130
    err = capsys.readouterr().err
    assert (
        f"simulate was stopped before writing anything and removed the folder(s) it had created "
        f"for {out} ({out}, {out.parent})"
    ) in err
    assert "earlier run" not in err
    stopped_message(KeyboardInterrupt(), str(tmp_path / "never"), False)
    assert f"stopped before writing anything ({tmp_path / 'never'} was not created)" in (
        capsys.readouterr().err
    )
    stopped_message(KeyboardInterrupt(), str(tmp_path), False)
    assert "the outputs of an earlier run there are kept" in capsys.readouterr().err


# ---------------------------------------------------------------- 4 and 5. asymmetric SC


def _directed(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    sc = torch.rand(n, n, generator=g, dtype=torch.float64)
    sc.fill_diagonal_(0)
    return sc


def test_the_asymmetry_check_looks_at_each_distinct_sc_once(monkeypatch) -> None:
    from delssome_norms.model import batch

    calls = []
    real = batch._sc_asymmetry
    monkeypatch.setattr(batch, "_sc_asymmetry", lambda m: calls.append(1) or real(m))
    a, b = _directed(9, 11), _directed(9, 12)
    stacked = torch.stack([a, b, a, a, b, b, a])  # a fit's batch: each subject's SC repeated
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        batch.warn_asymmetric_sc(stacked)
        batch.warn_asymmetric_sc(stacked * 0.02)  # scaled: the same SCs
        batch.warn_asymmetric_sc(a.to(torch.float32))
    assert len(calls) == 2
    texts = [str(w.message) for w in record if w.category is InputWarning]
    assert len(texts) == 1
    assert texts[0].startswith(
        "an SC of the batch (and 1 more distinct SC(s) of the batch) is not symmetric"
    )
    assert "sc[" not in texts[0]


def test_the_asymmetry_check_copies_no_batch() -> None:
    """200 x 300 x 300 float32 (69 MiB as a view of one SC): the check used to make float64
    copies of the batch (hundreds of MiB); now it allocates a few N x N matrices."""
    code = textwrap.dedent(
        """
        import resource, torch
        from delssome_norms.model.batch import warn_asymmetric_sc
        sc = torch.rand(300, 300); sc = sc + sc.T
        batch = sc.expand(200, 300, 300)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        warn_asymmetric_sc(batch)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip()) < 16.0  # MiB


# ---------------------------------------------------------------- 6. collect sidecar docs


def test_the_collect_row_describes_the_sidecars_groups() -> None:
    row = next(
        ln for ln in (ROOT / "docs" / "cli.md").read_text().splitlines() if "collect --in-dir" in ln
    )
    for words in (
        "`sc` is the list of the distinct SCs",
        "`subject_ids_complete`",
        "`maps` and `design` are the subjects' common value where all agree and otherwise a list",
        "(the subjects in `subjects_without_provenance` are in no group)",
    ):
        assert words in row


# ---------------------------------------------------------------- 7. 68-frame runs


def test_a_68_frame_run_of_a_smaller_atlas_gets_no_transposition_warning(tmp_path) -> None:
    from delssome_norms.io.timeseries import read_timeseries

    rng = np.random.default_rng(1)
    path = tmp_path / "run.csv"
    np.savetxt(path, rng.standard_normal((68, 34)), delimiter=",")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert read_timeseries(path).shape == (68, 34)
    assert not [w for w in record if "regions x frames" in str(w.message)]
