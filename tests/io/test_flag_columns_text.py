"""A collected table whose flag columns are blank for most people reads without pandas' mixed-type
warning (the columns are text), and its flags survive as written."""

from __future__ import annotations

import warnings

import pandas as pd

from delssome_norms.io import read_table


def test_mostly_blank_flag_reasons_read_as_text_without_a_warning(tmp_path) -> None:
    n = 150_000  # beyond pandas' low-memory chunk, where the mixed-type warning appeared
    table = pd.DataFrame({"subject_id": [f"s{i:06d}" for i in range(n)], "age_in_years": 30.0})
    table["fit_flagged"] = False
    table["fit_flag_reasons"] = ""
    table.loc[n - 5 :, ["fit_flagged", "fit_flag_reasons"]] = [True, "cost_above_floor"]
    table.to_csv(tmp_path / "t.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = read_table(tmp_path / "t.csv")
    assert back["fit_flag_reasons"].iloc[-1] == "cost_above_floor"
    assert back["fit_flag_reasons"].isna().sum() == n - 5
    assert back["subject_id"].iloc[0] == "s000000"
