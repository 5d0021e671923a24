"""One subject's inputs: empirical FC and FCD-CDF, SC, regional maps and timing (docs/science.md §1).

:func:`load_subject` is the edge where a subject's files are read and checked (through the
:mod:`delssome_norms.io` readers), so everything downstream trusts a :class:`SubjectInputs`.
Subjects given as regional BOLD time series get their FC and FCD-CDF from
:func:`empirical_statistics`, which uses the simulator's own :func:`~delssome_norms.model.bold_fc`
and :func:`~delssome_norms.model.bold_fcd_cdf` (Fisher-z average of FC over runs, mean of CDFs).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from delssome_norms.datasets import DK68_REGIONS, load_default_template
from delssome_norms.errors import InvalidInputError
from delssome_norms.fit.fc_regime import warn_fc_regime
from delssome_norms.fit.settings import FitSettings, check_fit_settings
from delssome_norms.io import (
    check_fc,
    check_map,
    check_map_pair,
    check_sc,
    check_subject_id,
    check_timeseries,
    check_timing,
    fisher_z_mean,
    mean_cdf,
    read_fcd_cdf_runs,
)
from delssome_norms.io.label_checks import refuse_white_matter
from delssome_norms.io.named_inputs import not_dk68
from delssome_norms.io.named_regions import (
    Named,
    dk_order,
    match_inputs,
    read_map_named,
    read_square,
    take_regions,
)
from delssome_norms.io.prepare_record import check_prepared_timing
from delssome_norms.io.region_names import header_kind, is_numbering, names_regions, numbering_order
from delssome_norms.io.regions import match_region_order
from delssome_norms.io.sidecar import given_or_sidecar_tr, warn_other_sidecar_tr
from delssome_norms.io.timeseries import read_timeseries_named
from delssome_norms.io.timeseries_shape import refuse_connectivity_matrix
from delssome_norms.model import FCD_BINS, bold_fc, bold_fcd_cdf
from delssome_norms.model.timing import check_tr, fcd_window_frames

PathLike = str | Path


@dataclass(frozen=True)
class SubjectInputs:
    """Checked inputs of one subject.

    Attributes
    ----------
    subject_id : str
    fc : ndarray of shape (N, N)
        Empirical FC (Fisher-z average over runs).
    fcd_cdf : ndarray of shape (bins,)
        Empirical FCD-CDF (mean over runs).
    tr, scan_length : float
        Repetition time and scan length [s].
    sc : ndarray of shape (N, N)
        Structural connectivity, unscaled (scaled to max 0.02 before simulating).
    myelin, gradient : ndarray of shape (N,) or None
        Regional maps; both None means "use the FC gradient and the [1, gradient] design".
    sources : dict of str
        Where each input came from (file names or "default template"), for ``run.json``.
    regions : tuple of str or None
        Region names in the order of the arrays: the DK68 names for 68-region inputs (given in
        DK68 order, or reordered to it from a name header); for other atlases the names the
        files' headers give (another atlas's, or the DK68 regions a file names, e.g. one
        hemisphere's), else None.
    """

    subject_id: str
    fc: np.ndarray
    fcd_cdf: np.ndarray
    tr: float
    scan_length: float
    sc: np.ndarray
    myelin: np.ndarray | None = None
    gradient: np.ndarray | None = None
    sources: dict[str, str] = field(default_factory=dict)
    regions: tuple[str, ...] | None = None

    @property
    def n_regions(self) -> int:
        """Number of regions N."""
        return int(self.fc.shape[0])

    def uses_default_maps(self, maps: str = "default") -> bool:
        """Whether the fit uses the shipped DK68 maps (``FitSettings.maps``; 68 regions, no own maps)."""
        return (
            maps == "default"
            and self.n_regions == len(DK68_REGIONS)
            and self.gradient is None
            and self.myelin is None
        )


def min_frames(tr: float, fcd_window: int | None = None) -> int:
    """Fewest frames a run needs: two FCD windows (``window + 1`` frames with step 1)."""
    window = fcd_window_frames(tr, fcd_window)
    return window + 1


def empirical_statistics(
    runs: Sequence[np.ndarray] | Sequence[pd.DataFrame],
    tr: float,
    fcd_window: int | None = None,
    bins: int = FCD_BINS,
    sources: Sequence[PathLike] | None = None,
    regions: Sequence[str] | None = None,
) -> tuple[np.ndarray | pd.DataFrame, np.ndarray]:
    """FC and FCD-CDF of regional BOLD time series, with the simulator's own code.

    Parameters
    ----------
    runs : sequence of ndarray or DataFrame of shape (frames, N)
        One array per run (one 2-D array, tensor or DataFrame is one run). Each run is checked
        as the file readers check one (:func:`~delssome_norms.io.checks.check_timeseries`:
        finite, no constant region, enough frames for two FCD windows; an unlabelled run with
        fewer frames than regions is refused as likely transposed, regions x frames). A pandas
        DataFrame whose columns name the regions is read by its labels as
        :func:`~delssome_norms.io.read_timeseries` reads a header row
        (:func:`~delssome_norms.io.region_names.header_kind`): DK68 names in any spelling
        (``lh_bankssts``, ``ctx-lh-bankssts``, ``L_bankssts``) put the columns in DK68 order
        (some DK68 regions only, e.g. one hemisphere: those regions, in DK68 order), another
        atlas's names are kept in column order, columns that only number the regions
        (``roi_1 ...``, in any order) are put in numeric order (the atlas order by contract),
        and 68 labels that are not all DK68 names are refused. Runs naming the first run's
        regions in another order are put in its order; runs with and without labels are not
        mixed. Unlabelled runs (arrays, tensors, DataFrames with numbered columns
        ``0 ... N-1``) are taken in atlas order.
    tr : float
        Repetition time [s]; sets the default FCD window ``round(60 / tr)`` frames.
    fcd_window : int, optional
        FCD window [frames].
    bins : int, default 10000
    sources : sequence of path, optional
        The runs' files, named in errors (default: ``run 1``, ``run 2`` ...).
    regions : sequence of str, optional
        The regions' names (columns) of unlabelled runs, for errors (default: DK68's for 68
        regions); given with labelled DataFrames, they must name the same regions.

    Returns
    -------
    fc : ndarray of shape (N, N), or DataFrame
        Fisher-z average of the runs' FCs. For runs whose labels name their regions a
        DataFrame indexed (rows and columns) by the region names in the order of the FC (DK68
        order for DK68 names), so the order is visible, and
        :meth:`EIEstimator.fit <delssome_norms.pipeline.EIEstimator.fit>` reads it by those
        names; an ndarray otherwise.
    fcd_cdf : ndarray of shape (bins,)
        Mean of the runs' FCD-CDFs.

    Raises
    ------
    InvalidInputError
        Naming the run (its file, or ``run k``) and the problem.
    """
    window = fcd_window_frames(tr, fcd_window)
    given = _run_list(runs)
    where = [str(sources[k]) if sources is not None else f"run {k + 1}" for k in range(len(given))]
    read = [
        _labelled_run(r, w) if isinstance(r, pd.DataFrame) else Named(_host(r))
        for r, w in zip(given, where)
    ]
    arrays, labelled = _matched_runs(read, where)
    names = labelled if labelled is not None else regions
    if labelled is not None and regions is not None:
        if match_region_order([str(v) for v in regions], list(labelled)) is None:
            raise InvalidInputError(
                f"names other regions than the runs' column labels ({', '.join(labelled[:3])}, "
                "...); leave regions out for labelled DataFrames: their labels name the regions",
                "regions",
            )
    runs = []
    for r, w in zip(arrays, where):
        named = names is not None and np.ndim(r) == 2 and len(names) == np.shape(r)[1]
        # the orientation is known when the columns are named (a short run of a fine atlas)
        runs.append(check_timeseries(r, input_name=w, min_frames=window + 1, named=named))
    fcs = np.stack([bold_fc(r).numpy() for r in runs])
    cdfs = []
    for k, r in enumerate(runs):
        try:
            cols = names
            if cols is None and r.shape[1] == len(DK68_REGIONS):
                cols = DK68_REGIONS
            cdfs.append(bold_fcd_cdf(r, window, bins, cols).numpy())
        except InvalidInputError as err:  # name the run's file
            raise err.with_source(where[k]) from None
    fc = fisher_z_mean(fcs)
    if labelled is not None:  # the region order the caller sees, and EIEstimator.fit reads
        fc = pd.DataFrame(fc, index=list(labelled), columns=list(labelled))
    return fc, mean_cdf(np.stack(cdfs))


def _run_list(runs: object) -> list[object]:
    """The runs as a list: one 2-D array, tensor or DataFrame is one run."""
    if _is_array(runs) and np.ndim(runs) == 2:  # type: ignore[arg-type]
        return [runs]
    return list(runs)  # type: ignore[call-overload]


def _host(run: object) -> np.ndarray:
    """A run as a float64 NumPy array: torch tensors (any device, with or without grad) too."""
    if isinstance(run, torch.Tensor):
        run = run.detach().to("cpu", torch.float64)
    return np.asarray(run, dtype=np.float64)


def _labelled_run(run: pd.DataFrame, where: str) -> Named:
    """A DataFrame run read by its column labels as :func:`~delssome_norms.io.read_timeseries`
    reads a header row (:func:`~delssome_norms.io.region_names.header_kind`, then
    :func:`~delssome_norms.io.named_regions.dk_order` for DK68 names): see
    :func:`empirical_statistics`. Columns numbered ``0 ... N-1`` (a ``RangeIndex``) are no
    labels.

    Raises
    ------
    InvalidInputError
        Region names down the index (regions x frames), a numbering that repeats a number,
        white-matter labels, 68 labels that are not all DK68 names, DK68 names unknown,
        repeated or missing.
    """
    text = [str(c) for c, dt in run.dtypes.items() if not pd.api.types.is_numeric_dtype(dt)]
    if text:
        raise InvalidInputError(
            f"has non-numeric column(s) {', '.join(text[:3])}{' ...' if len(text) > 3 else ''}; "
            "give the regions' signals only (one numeric column per region)",
            where,
        )
    values = _host(run)
    refuse_connectivity_matrix(values, where)  # an FC frame, whatever its labels
    rows = [str(v) for v in run.index]
    if not isinstance(run.index, pd.RangeIndex) and names_regions(rows):
        raise InvalidInputError(
            f"has region names down its index ({rows[0]!r}, ...): regions x frames layout; "
            "transpose it so that rows are frames and columns are regions (DataFrame.T)",
            where,
        )
    if isinstance(run.columns, pd.RangeIndex):
        return Named(values)
    labels = [str(v) for v in run.columns]
    numbering_order(labels, where)  # a repeated number: refused as such, not as not-DK68
    refuse_white_matter(labels, where)
    try:
        names, values, kind = header_kind(labels, values, where)
    except InvalidInputError:  # the atlas's width with other names
        raise not_dk68(labels, where, "columns") from None
    if kind != "dk":  # numbering (put in numeric order), or another atlas's names
        return Named(values, tuple(names), kind)
    order, dk_names = dk_order(names, DK68_REGIONS, where)
    return Named(values[:, order], dk_names, "dk", not is_numbering(order))


def _matched_runs(
    read: list[Named], where: list[str]
) -> tuple[list[np.ndarray], tuple[str, ...] | None]:
    """The runs' values matched by their region names as the file readers match the runs of
    one subject (:func:`~delssome_norms.io.named_regions.match_inputs`: runs listing the first
    named run's regions in another order are put in its order, with a warning), and the names
    (None where no run names its regions).

    Raises
    ------
    InvalidInputError
        Some runs name their regions and others do not, runs name other regions than the first,
        or runs with different numbers of regions.
    """
    named = [w for w, r in zip(where, read) if r.kind in ("dk", "own")]
    if named and len(named) < len(read):
        plain = next(w for w, r in zip(where, read) if r.kind not in ("dk", "own"))
        raise InvalidInputError(
            f"{named[0]} names its regions but {plain} does not, so the columns of the second "
            "cannot be matched to the first: give every run column labels of region names "
            "(a DataFrame), or none",
            plain,
        )
    widths = sorted({np.shape(r.values)[1] for r in read if np.ndim(r.values) == 2})
    if len(widths) > 1:
        raise InvalidInputError(f"runs have different numbers of regions {widths}", where[0])
    if not named:
        return [r.values for r in read], None
    keys = [w if where.count(w) == 1 else f"{w} (run {k + 1})" for k, w in enumerate(where)]
    names, orders = match_inputs(dict(zip(keys, read)))
    values = [
        take_regions(r.values, orders[k], 1) if k in orders else r.values for k, r in zip(keys, read)
    ]
    return values, names


def _is_array(value: object) -> bool:
    """Whether ``value`` is array data (NumPy, torch, pandas) rather than a path."""
    return isinstance(value, (np.ndarray, torch.Tensor, pd.DataFrame, pd.Series))


def _check_paths(value: object, name: str) -> None:
    """Refuse array data given to :func:`load_subject` where it reads files (``name``: the
    argument), pointing to the functions that take arrays.

    Raises
    ------
    InvalidInputError
        ``value`` is, or holds, an array, tensor or pandas object, or is not a path.
    """
    if value is None:
        return
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not any(_is_array(v) for v in items) and all(isinstance(v, (str, os.PathLike)) for v in items):
        return
    if name == "timeseries":
        use = (
            "for time series held in memory compute FC and FCD-CDF with "
            "delssome_norms.fit.empirical_statistics([run, ...], tr, fcd_window) and fit those "
            "with delssome_norms.pipeline.EIEstimator().fit(fc, fcd_cdf, tr=..., scan_length=...)"
        )
    else:
        use = (
            "for arrays use delssome_norms.pipeline.subject_from_arrays or "
            "EIEstimator().fit(fc, fcd_cdf, tr=..., scan_length=..., sc=..., myelin=..., "
            "gradient=...)"
        )
    got = next((type(v).__name__ for v in items if not isinstance(v, (str, os.PathLike))), "?")
    raise InvalidInputError(
        f"load_subject reads files: give a path (or a list of paths), got {got}; {use}", name
    )


def split_paths(paths: str | PathLike | Sequence[PathLike]) -> list[str]:
    """Run files given as one ``;``-separated string or path, or as a list."""
    if isinstance(paths, (str, Path)):
        return [p.strip() for p in str(paths).split(";") if p.strip()]
    return [str(p) for p in paths]


def template_sc(n_regions: int, source: str, option: str = "the sc argument") -> tuple[np.ndarray, str]:
    """The packaged DK68 template SC and its source label, for a subject with ``n_regions``.
    ``option`` names where an SC is given, for the message.

    Raises
    ------
    InvalidInputError
        The template has another number of regions (``source`` names the input).
    """
    template = load_default_template()
    if template.sc.shape[0] != n_regions:
        raise InvalidInputError(
            f"FC has {n_regions} regions but the default SC template has {template.sc.shape[0]}; "
            f"give an SC matrix for this atlas ({option})",
            source,
        )
    return np.array(template.sc), template.source


def check_subject_inputs(subject: object, argument: str = "subject") -> SubjectInputs:
    """``subject`` if it is a :class:`SubjectInputs`, else an
    :class:`~delssome_norms.errors.InvalidInputError` naming ``argument`` and how to make one
    (a subject ID or a dict failed later with "'str' object has no attribute 'myelin'")."""
    if isinstance(subject, SubjectInputs):
        return subject
    hint = (
        f": {subject!r} is only an ID; read its files with load_subject({subject!r}, tr=..., "
        "scan_length=..., fc=..., fcd_cdf=...)"
        if isinstance(subject, str)
        else ""
    )
    raise InvalidInputError(
        "must be a SubjectInputs (delssome_norms.fit.load_subject(...) or "
        f"delssome_norms.pipeline.subject_from_arrays(...)), not {type(subject).__name__}{hint}",
        argument,
    )


def check_fit_arguments(subject: object, settings: object) -> FitSettings:
    """Refuse a ``subject`` that is not a :class:`SubjectInputs` (:func:`check_subject_inputs`)
    and ``settings`` that are not a :class:`~delssome_norms.fit.settings.FitSettings`
    (:func:`~delssome_norms.fit.settings.check_fit_settings`), naming the argument, before any
    work; returns the settings (None: the defaults)."""
    check_subject_inputs(subject, "subject")
    return check_fit_settings(settings, "settings")


def _holds_arrays(timeseries: object) -> bool:
    """Whether time series were given as arrays (which have no sidecars), not file names."""
    if isinstance(timeseries, np.ndarray):
        return True
    return isinstance(timeseries, (list, tuple)) and any(isinstance(t, np.ndarray) for t in timeseries)


def load_subject(
    subject_id: str,
    tr: float | None = None,
    scan_length: float | None = None,
    *,
    fc: PathLike | Sequence[PathLike] | None = None,
    fcd_cdf: PathLike | Sequence[PathLike] | None = None,
    timeseries: PathLike | Sequence[PathLike] | None = None,
    sc: PathLike | None = None,
    myelin: PathLike | None = None,
    gradient: PathLike | None = None,
    n_regions: int | None = None,
    fcd_window: int | None = None,
    drop_na_frames: bool = False,
) -> SubjectInputs:
    """Read and check one subject's files.

    Parameters
    ----------
    subject_id : str
        A safe folder name (:func:`~delssome_norms.io.checks.check_subject_id`: letters,
        digits, '.', '_' and '-'), as the CLI and ``EIEstimator`` require: fits write
        ``<out>/<subject_id>``.
    tr : float or None
        Repetition time [s]. May be None with ``timeseries`` files: then the RepetitionTime of
        the runs' JSON sidecars (BIDS; :func:`delssome_norms.io.sidecar.find_sidecar_tr`),
        recorded as ``sources["tr"]``. A given ``tr`` is used, with an
        :class:`~delssome_norms.errors.InputWarning` naming the sidecar where one differs.
    scan_length : float or None
        Scan length [s]. May be None (the default, as ``tr``'s) with ``timeseries``: then
        frames x TR of the runs (which must all have the same length); FC and FCD-CDF files
        need both.
    fc, fcd_cdf : path or list of paths, optional
        Precomputed FC and FCD-CDF (several runs: ``;``-separated or a list).
    timeseries : path or list of paths, optional
        Regional BOLD runs (frames x regions; TSV, CSV or NPY), used instead of ``fc``/``fcd_cdf``.
    sc : path, optional
        Structural connectivity; default: the packaged DK68 template (tvb-data).
    myelin, gradient : path, optional
        Regional maps; give both or neither.
    n_regions : int, optional
        Required N (a cohort's N); checked for every file.
    fcd_window : int, optional
        FCD window [frames]; default ``round(60 / tr)``: the window of the time series' FCD,
        and the one an FC's ``prepare.json`` record is checked against
        (:func:`~delssome_norms.io.prepare_record.check_prepared_timing`: an FC prepared with
        another TR, scan length or window is refused).
    drop_na_frames : bool
        Drop time-series frames with missing values (BIDS ``n/a``) instead of refusing them.

    Returns
    -------
    SubjectInputs

    Raises
    ------
    InvalidInputError
        Naming the file and the problem; a ``subject_id`` that is not a safe folder name.

    Notes
    -----
    Region-name headers are matched across the files
    (:func:`delssome_norms.io.named_regions.match_inputs`): DK68 names are put in DK68 order; a
    file naming only some DK68 regions (one hemisphere) makes an atlas of those regions, in DK68
    order; another atlas's names set the order of the first file that has them, files listing
    them in another order are put in it (with an :class:`~delssome_norms.errors.InputWarning`)
    and files naming other regions are refused. The names become ``regions``.

    An FC whose mean lies outside the model's range (global signal regression, heavy
    smoothing: :func:`~delssome_norms.fit.fc_regime.check_fc_regime`) is fitted, with an
    :class:`~delssome_norms.errors.InputWarning` naming the subject and its files.
    """
    subject_id = check_subject_id(subject_id, "subject_id")
    sources: dict[str, str] = {}
    if timeseries is not None and (fc is not None or fcd_cdf is not None):
        raise InvalidInputError("give either time series or FC + FCD-CDF, not both", subject_id)
    if tr is None and (timeseries is None or _holds_arrays(timeseries)):
        what = "FC + FCD-CDF" if timeseries is None else "time series given as arrays"
        raise InvalidInputError(
            f"the repetition time tr (seconds) is required with {what}: only time-series files "
            "have JSON sidecars to take it from",
            subject_id,
        )
    for name, value in (
        ("timeseries", timeseries),
        ("fc", fc),
        ("fcd_cdf", fcd_cdf),
        ("sc", sc),
        ("myelin", myelin),
        ("gradient", gradient),
    ):
        _check_paths(value, name)
    paths = [] if timeseries is None else split_paths(timeseries)
    if timeseries is not None and not paths:
        raise InvalidInputError("no time-series file given", subject_id)
    # checked before the FCD window round(60 / TR) is derived from it
    if tr is None:  # the runs' JSON sidecars (BIDS RepetitionTime)
        value, sidecar = given_or_sidecar_tr(paths, None, "tr", str(subject_id))
        tr = check_tr(value, f"{subject_id} (RepetitionTime in {sidecar})")
        sources["tr"] = str(sidecar)
    else:
        tr = check_tr(tr, str(subject_id))
        if paths:
            warn_other_sidecar_tr(paths, tr, "tr", str(subject_id))
    entries: dict[str, Named] = {}  # every region file, FC or time series first
    if timeseries is not None:
        need = min_frames(float(tr), fcd_window)
        read = read_timeseries_named(paths, min_frames=need, drop_na_frames=drop_na_frames)
        entries.update(zip(paths, read))
        runs = [r.values for r in read]
        if n_regions is not None and runs[0].shape[1] != n_regions:
            raise InvalidInputError(
                f"has {runs[0].shape[1]} region columns, expected {n_regions}", paths[0]
            )
        if scan_length is None:
            frames = {r.shape[0] for r in runs}
            if len(frames) > 1:
                raise InvalidInputError(
                    f"runs have different lengths {sorted(frames)} frames; give the scan length",
                    paths[0],
                )
            scan_length = frames.pop() * float(tr)
        else:
            # the simulation must be as long as the data its FC/FCD are compared with
            # (10 % slack: frames dropped as n/a, or scrubbed, leave a run a little short)
            durations = [r.shape[0] * float(tr) for r in runs]
            lo = min(durations) - max(float(tr), 0.1 * min(durations))
            hi = max(durations) + max(float(tr), 0.1 * max(durations))
            if not lo <= float(scan_length) <= hi:
                lengths = ", ".join(f"{r.shape[0]}" for r in runs)
                raise InvalidInputError(
                    f"scan length {float(scan_length):g} s does not match the time series "
                    f"({lengths} frames x TR {float(tr):g} s = "
                    f"{', '.join(f'{d:g}' for d in durations)} s); leave the scan length out to "
                    "use the runs' own",
                    paths[0],
                )
        sources["timeseries"] = ";".join(paths)
        data_paths = paths
    else:
        if fc is None or fcd_cdf is None:
            raise InvalidInputError("needs FC and FCD-CDF files, or time series", subject_id)
        data_paths = split_paths(fc)
        for p in data_paths:
            run = read_square(p, None, "FC")
            entries[p] = run._replace(values=check_fc(run.values, n_regions, input_name=p))
        cdf_paths = split_paths(fcd_cdf)
        cdf_arr = read_fcd_cdf_runs(cdf_paths)
        sources["fc"], sources["fcd_cdf"] = ";".join(data_paths), ";".join(cdf_paths)
    if scan_length is None:
        raise InvalidInputError("the scan length (seconds) is required", subject_id)
    tr_f, scan_f = check_timing(tr, scan_length, subject_id)
    if timeseries is None:  # FC files written by prepare: the timing they were computed with
        window = fcd_window_frames(tr_f, fcd_window)
        check_prepared_timing(data_paths, tr_f, scan_f, window, subject_id, fcd_cdf=cdf_paths)
    # SC and maps by their names: matched with the FC's or time series' (another atlas's names)
    check_map_pair(myelin, gradient)
    for path, what in ((sc, "SC"), (myelin, "myelin"), (gradient, "gradient")):
        if path is not None and str(path) not in entries:
            entries[str(path)] = read_square(path, None, "SC") if what == "SC" else read_map_named(path)
    names, orders = match_inputs(entries)
    values = {
        k: take_regions(e.values, orders[k], 1 if k in paths else None) if k in orders else e.values
        for k, e in entries.items()
    }
    if timeseries is not None:
        runs = [values[p] for p in paths]
        fc_arr, cdf_arr = empirical_statistics(runs, float(tr), fcd_window, sources=paths, regions=names)
    else:
        fcs = [values[p] for p in data_paths]
        if len({f.shape for f in fcs}) > 1:
            listing = ", ".join(f"{p}: {f.shape}" for p, f in zip(data_paths, fcs))
            raise InvalidInputError(f"runs have different shapes ({listing})", data_paths[0])
        fc_arr = fisher_z_mean(np.stack(fcs))
    n = fc_arr.shape[0]
    data = sources.get("timeseries") or sources.get("fc")  # name the files with the FC
    # GSR (mean FC ~0) or heavy smoothing: the fit runs, but its E/I is not interpretable
    warn_fc_regime(fc_arr, f"{subject_id} ({data})", stacklevel=2)
    if n == len(DK68_REGIONS):
        regions = DK68_REGIONS
    else:
        regions = tuple(names) if names is not None and len(names) == n else None
    if sc is None:
        sc_arr, sources["sc"] = template_sc(
            n,
            f"{subject_id} ({data})" if data else subject_id,
            "--sc on the command line, the sc column of a cohort manifest",
        )
    else:
        sc_arr = check_sc(values[str(sc)], n, input_name=str(sc), regions=regions)
        sources["sc"] = str(sc)
    myelin_arr = None if myelin is None else check_map(values[str(myelin)], n, str(myelin))
    gradient_arr = None if gradient is None else check_map(values[str(gradient)], n, str(gradient))
    if myelin is not None:
        sources["myelin"], sources["gradient"] = str(myelin), str(gradient)
    return SubjectInputs(
        subject_id=str(subject_id),
        fc=fc_arr,
        fcd_cdf=cdf_arr,
        tr=tr_f,
        scan_length=scan_f,
        sc=sc_arr,
        myelin=myelin_arr,
        gradient=gradient_arr,
        sources=sources,
        regions=regions,
    )
