"""``--exclude-flagged`` keeps people whose ``fit_flagged`` cell is blank and says how many."""

from __future__ import annotations

import pandas as pd
import pytest

from delssome_norms.cli.charts_helpers import handle_flagged
from delssome_norms.errors import InputWarning


def _table(flags) -> pd.DataFrame:
    return pd.DataFrame({"subject_id": [f"s{i}" for i in range(len(flags))], "fit_flagged": flags})


def test_blank_verdicts_are_kept_with_a_warning_naming_their_count() -> None:
    table = _table([True, False, None, "", False])
    with pytest.warns(InputWarning, match=r"t\.csv: 2 of 5 people have a blank fit_flagged cell"):
        kept = handle_flagged(table, True, "t.csv")
    assert kept["subject_id"].tolist() == ["s1", "s2", "s3", "s4"]


def test_no_warning_without_blanks_or_without_exclusion(recwarn) -> None:
    assert handle_flagged(_table([True, False]), True, "t.csv")["subject_id"].tolist() == ["s1"]
    handle_flagged(_table([None, False]), False, "t.csv")  # kept anyway: the flag warning only
    assert not [w for w in recwarn if "blank fit_flagged" in str(w.message)]
