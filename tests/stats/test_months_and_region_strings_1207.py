"""Two refusals that point the way: ages in months reaching the statistics, and a single string
given as a chart's region names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from delssome_norms.datasets import load_reference_table
from delssome_norms.errors import InvalidInputError
from delssome_norms.norms import GrowthChart
from delssome_norms.stats._cohort import prepare_cohort


def test_statistics_ask_whether_ages_out_of_range_are_months() -> None:
    table = load_reference_table().head(60).copy()
    table["age_in_years"] = table["age_in_years"] * 12.0  # months, up to 12 x 120
    with pytest.raises(InvalidInputError, match=r"ages in months.*divide months by 12"):
        prepare_cohort(table, ["ei_ratio_mean"], input_name="cohort.csv")


def test_chart_fit_refuses_one_string_as_region_names() -> None:
    table = pd.DataFrame(
        {
            "subject_id": [f"s{i}" for i in range(40)],
            "age_in_years": np.linspace(10, 80, 40),
            "sex": ["F", "M"] * 20,
            "site": "a",
            **{f"ei_ratio_roi_{j}": np.linspace(2.5, 3.5, 40) for j in range(3)},
        }
    )
    with pytest.raises(InvalidInputError, match="not the single string 'abc'"):
        GrowthChart().fit(table, regions="abc")  # three characters for three columns
