"""Late review of the statistics: the sex tests warn when the sexes' ages do not overlap (sex is
then confounded with age), and the heavy-tail warning counts the targets whose fits converged
among all tested; a charts fit folder left by a writer killed while staging can be rerun."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from test_review_stats_validity_1207c import _table

from delssome_norms.cli.out_folders import visible_entries
from delssome_norms.stats import sex_difference_tests
from delssome_norms.stats._residual_shape import HeavyTailWarning, warn_heavy_tails


def test_sex_tests_warn_when_the_sexes_ages_do_not_overlap() -> None:
    apart = _table(2, n=200, n_regions=1, female_age=(5, 30), male_age=(40, 90))
    with pytest.warns(UserWarning, match=r"do not overlap.*sex is confounded with age"):
        sex_difference_tests(apart)
    together = _table(3, n=200, n_regions=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sex_difference_tests(together)
    assert not [c for c in caught if "confounded with age" in str(c.message)]


def test_heavy_tail_warning_counts_converged_among_tested() -> None:
    skew, kurt = np.array([0.0, 0.0]), np.array([5.0, 0.1])
    with pytest.warns(HeavyTailWarning, match=r"1 of 2 target\(s\) whose fits converged \(of 5\)"):
        warn_heavy_tails(["a", "b"], skew, kurt, "sigma_lr", of_total=5)
    with pytest.warns(HeavyTailWarning, match=r"1 of 2 target\(s\) \(a\)"):
        warn_heavy_tails(["a", "b"], skew, kurt, "sigma_lr", of_total=2)


def test_a_folder_holding_only_staged_files_counts_as_empty(tmp_path: Path) -> None:
    (tmp_path / "ei_ratio_mean").mkdir()
    (tmp_path / "ei_ratio_mean" / ".staged-abc-female_population_centiles.csv").write_text("x")
    assert visible_entries(tmp_path) == []
    (tmp_path / "ei_ratio_mean" / "female_population_centiles.csv").write_text("x")
    assert visible_entries(tmp_path) == ["ei_ratio_mean"]
