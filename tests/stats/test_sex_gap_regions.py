"""The sex gap names its region as the tests do (the table's own names), and its figure labels the
line with that name: a 34-column right-hemisphere table is not drawn as the left hemisphere's
regions by column position."""

from __future__ import annotations

import warnings

import matplotlib
import matplotlib.pyplot as plt

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InvalidInputError
from delssome_norms.io.ei_table import PROVENANCE_ATTR
from delssome_norms.plotting import plot_sex_gap
from delssome_norms.stats import sex_gap

RH = list(DK68_REGIONS[34:])


def _table(n_rois: int, n: int = 160, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.uniform(5, 90, n)
    rois = 1.2 - 0.003 * age[:, None] + 0.05 * rng.standard_normal((n, n_rois))
    table = pd.DataFrame(
        {
            "subject_id": [f"sub-{i:03d}" for i in range(n)],
            "age_in_years": age,
            "sex": np.where(np.arange(n) % 2 == 0, "female", "male"),
        }
    )
    regional = pd.DataFrame(rois, columns=[f"ei_ratio_roi_{k}" for k in range(n_rois)])
    table = pd.concat([table, regional], axis=1)
    table["ei_ratio_mean"] = rois.mean(axis=1)
    return table


def _gap(table: pd.DataFrame, target: str, **kw) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sex_gap(table, target, site=None, n_boot=0, **kw)


def _label(gap: pd.DataFrame) -> tuple[str, str]:
    fig = plot_sex_gap(gap)
    ax = fig.axes[0]
    label = ax.get_legend().get_texts()[0].get_text()
    title = ax.get_title()
    plt.close(fig)
    return label, title


def test_the_gap_of_a_named_one_hemisphere_table_names_its_region() -> None:
    table = _table(34)
    table.attrs[PROVENANCE_ATTR] = {"atlas": {"regions": RH}}
    gap = _gap(table, "ei_ratio_roi_2")
    assert set(gap["region"]) == {RH[2]}  # rh_caudalanteriorcingulate, not lh_
    label, title = _label(gap)
    assert label == RH[2] and title == f"Sex gap in {RH[2]}"
    # the same names given as regions=, and other names given win
    bare = _table(34)
    assert set(_gap(bare, "ei_ratio_roi_2", regions=RH)["region"]) == {RH[2]}
    own = [f"parcel_{k}" for k in range(34)]
    assert set(_gap(table, "ei_ratio_roi_2", regions=own)["region"]) == {"parcel_2"}
    with pytest.raises(InvalidInputError, match="names 3 regions"):
        _gap(bare, "ei_ratio_roi_2", regions=own[:3])


def test_an_unnamed_table_that_is_not_dk68_gets_no_dk68_name() -> None:
    gap = _gap(_table(34), "ei_ratio_roi_2")
    assert gap["region"].isna().all()
    assert _label(gap)[0] == "ei_ratio_roi_2"  # was lh_caudalanteriorcingulate


def test_the_68_dk68_columns_and_the_mean_are_named() -> None:
    table = _table(68)
    assert set(_gap(table, "ei_ratio_roi_40")["region"]) == {DK68_REGIONS[40]}
    mean = _gap(table, "ei_ratio_mean")
    assert mean["region"].isna().all()
    assert _label(mean)[0] == "mean cortical E/I"


def test_a_gap_table_without_a_region_column_is_labelled_as_before() -> None:
    gap = _gap(_table(68), "ei_ratio_roi_40").drop(columns="region")
    assert _label(gap)[0] == DK68_REGIONS[40]
