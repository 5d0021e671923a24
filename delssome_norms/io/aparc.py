"""FreeSurfer ``aparcstats2table`` tables: one regional measure per subject, in DK68 order.

``aparcstats2table --hemi lh --meas thickness --tablefile lh.tsv`` (and the same for ``rh``) writes a
tab-separated table whose first column is headed ``lh.aparc.<measure>`` and holds the subject
IDs, followed by one column per region named ``lh_<region>_<measure>`` and a few whole-hemisphere
columns (``lh_MeanThickness_thickness``, ``BrainSegVolNotVent``, ``eTIV``). Labs keep regional
maps this way (T1w/T2w myelin sampled with ``--meas`` of a custom stats run, thickness, ...). This
module reads one or more such tables (left and right hemisphere, or both in one), matches the 68
Desikan-Killiany regions by name and returns them in :data:`~delssome_norms.datasets.DK68_REGIONS`
order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from os import PathLike

import numpy as np
import pandas as pd

from delssome_norms.errors import InvalidInputError
from delssome_norms.io.readers import check_input_file
from delssome_norms.io.regions import canonical_region_key

_FIRST = re.compile(r"^(lh|rh)\.aparc\.(.+)$", re.IGNORECASE)


def _read_one(path: str | PathLike) -> tuple[pd.DataFrame, str]:
    """One table: subject IDs as the index, region columns named ``lh_<region>``; the measure."""
    name = str(path)
    p = check_input_file(path)
    try:
        table = pd.read_csv(p, sep=r"\s+", dtype=str, engine="python")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"is not a readable aparcstats2table table ({exc})", name) from None
    first = str(table.columns[0]) if len(table.columns) else ""
    m = _FIRST.match(first)
    if not m:
        raise InvalidInputError(
            f"first column is {first!r}; expected an aparcstats2table header like "
            "'lh.aparc.thickness' (subject IDs in the first column)",
            name,
        )
    measure = m.group(2)
    if "." in measure:  # lh.aparc.DKTatlas.thickness, lh.aparc.a2009s.area: another atlas
        raise InvalidInputError(
            f"first column is {first!r}: parcellation aparc.{measure.rsplit('.', 1)[0]}, not the "
            "Desikan-Killiany 'aparc' (run aparcstats2table with --parc aparc)",
            name,
        )
    table = table.set_index(first)
    table.index = table.index.astype(str)
    twice = sorted(set(table.index[table.index.duplicated()]))
    if twice:
        raise InvalidInputError(
            f"lists subject(s) more than once: {', '.join(twice[:8])} (one row per subject)", name
        )
    keep = {}
    for col in table.columns:
        stem = re.sub(rf"_{re.escape(measure)}$", "", str(col), flags=re.IGNORECASE)
        key = canonical_region_key(stem)
        if key is not None and "mean" not in key[1] and "surfarea" not in key[1]:
            keep[col] = f"{key[0]}_{key[1]}"
    if not keep:
        raise InvalidInputError(f"has no region columns named like 'lh_<region>_{measure}'", name)
    out = table[list(keep)].rename(columns=keep)
    try:
        out = out.astype(np.float64)
    except ValueError:
        raise InvalidInputError("holds non-numeric regional values", name) from None
    return out, measure


def read_aparc_stats(paths: Sequence[str | PathLike], regions: Sequence[str]) -> pd.DataFrame:
    """Regional values per subject from ``aparcstats2table`` output, in atlas order.

    Parameters
    ----------
    paths : sequence of path
        One table per hemisphere (or one holding both); same subjects in each.
    regions : sequence of str
        The atlas' region names in canonical order (e.g. ``DK68_REGIONS``).

    Returns
    -------
    DataFrame
        Index ``subject_id`` (str), one float column per region in ``regions`` order.

    Raises
    ------
    InvalidInputError
        Missing regions (listed), subjects that differ between the files, a measure that differs
        between files, non-finite values, or an unreadable table (the file is named).
    """
    parts = [_read_one(p) for p in paths]
    measures = {m for _, m in parts}
    if len(measures) > 1:
        raise InvalidInputError(f"the tables hold different measures {sorted(measures)}", str(paths[0]))
    ids = [set(t.index) for t, _ in parts]
    if any(s != ids[0] for s in ids[1:]):
        diff = sorted(set.symmetric_difference(*ids))[:8]
        raise InvalidInputError(f"the tables list different subjects (e.g. {diff})", str(paths[-1]))
    merged = pd.concat([t for t, _ in parts], axis=1)
    merged = merged.loc[:, ~merged.columns.duplicated()]
    wanted = {canonical_region_key(r): r for r in regions}
    have = {canonical_region_key(c): c for c in merged.columns}
    missing = [r for k, r in wanted.items() if k not in have]
    if missing:
        shown = ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
        raise InvalidInputError(
            f"{len(missing)} region(s) missing from the aparc tables: {shown} (give the lh and rh "
            "tables together)",
            str(paths[0]),
        )
    out = merged[[have[k] for k in wanted]]
    out.columns = list(regions)
    values = out.to_numpy()
    if not np.isfinite(values).all():
        bad = out.index[~np.isfinite(values).all(axis=1)].tolist()[:8]
        raise InvalidInputError(f"non-finite values for subject(s) {bad}", str(paths[0]))
    out.index.name = "subject_id"
    return out
