"""The in-memory result of one subject's E/I estimation (docs/science.md §5)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit.collect import interval_and_flag
from delssome_norms.fit.outputs import (
    OUTPUT_FILES,
    PARAMETERS_FILE,
    check_region_names,
    read_run,
    recorded_regions,
    run_record,
    set_aside_previous,
    write_result_files,
)
from delssome_norms.fit.stages import STAGES, SubjectResult
from delssome_norms.io import OutDirLock, check_not_locked, read_parameters, read_table
from delssome_norms.io import ei_table as et
from delssome_norms.io.regions import match_region_order
from delssome_norms.io.writers import as_json_data, strict_json

DEFAULT_SUBJECT_ID = "subject"
"""``subject_id`` of a fit given none (``EIEstimator.fit``'s default)."""
LOSS_COLUMNS = ("corr_loss", "l1_loss", "ks_loss", "total_loss")
"""Columns of :attr:`EIResult.losses` (as in ``fit_quality.csv``)."""
_RECORD_KEYS = (
    "format_version", "status", "subject_id", "versions", "result", "ei_interval", "fit_quality",
)  # fmt: skip
"""Keys of ``run.json`` that :meth:`EIResult.save` writes from the result itself."""


def _as_json(value: Any) -> Any:
    """``value`` as ``run.json`` holds it (NumPy as Python, NaN/inf as None)."""
    return strict_json(as_json_data(value))


def region_names(n_regions: int, names: Sequence[str] | None = None) -> list[str]:
    """Region names of a fit: ``names`` when given, else ``region_0`` .. ``region_{N-1}``."""
    if names is not None:
        if len(names) != n_regions:
            raise InvalidInputError(f"expected {n_regions} region names, got {len(names)}", "regions")
        return [str(n) for n in names]
    return [f"region_{i}" for i in range(n_regions)]


@dataclass(frozen=True, eq=False)
class EIResult:
    """One subject's estimate, indexed by region name.

    Attributes
    ----------
    subject_id : str
    ei : pandas.Series
        E/I ratio per region: the winner's mean over valid noise duplicates of time-averaged
        S_E / S_I, times ``exp(interval["level_shift_log"])`` (its level centred in the set of
        fits the data cannot rank; ``s_e``, ``s_i`` and ``r_e`` stay the winner's own, so
        ``ei`` is not ``s_e / s_i`` when the shift is not 0).
    s_e, s_i : pandas.Series
        Time-averaged excitatory / inhibitory synaptic gating of the winning parameters.
    r_e : pandas.Series
        Time-averaged excitatory rate [Hz].
    ei_sd : pandas.Series or None
        Spread of the E/I ratio over the tested candidates' simulations, on ``ei``'s scale
        (``ei_sd / ei`` is their relative spread; docs/science.md §5; NaN in every region when
        fewer than 2 simulations; None for results that did not record it). Smaller than the
        real uncertainty: ``ei_lo`` .. ``ei_hi`` is the interval to report.
    ei_lo, ei_hi : pandas.Series or None
        90 % interval of the regional E/I ratio (``EI_ratio_lo``/``EI_ratio_hi``), when the fit
        computes one.
    parameters : pandas.DataFrame
        Winning regional parameters: columns ``wEE, wEI, sigma`` per region.
    G : float
        Winning global coupling.
    coefficients : ndarray of shape (n_coeffs,)
        Winning coefficients of the design (``[1, myelin, gradient]`` per parameter, and G).
    losses : pandas.DataFrame
        Rows ``train``, ``val``, ``test``; columns :data:`LOSS_COLUMNS`.
    provenance : dict
        What produced the estimate (atlas, SC, maps, design, timing, mode, settings, version).
    info : dict
        The rest of the run record, as ``run.json`` holds it whether the fit wrote files or not
        (``format_version``, versions, seeds, settings, timing, search summary, wall times,
        ``result``, ``fingerprint``).
    interval : dict or None
        The mean E/I's 90 % interval and how it was made (``run.json`` ``ei_interval``:
        ``mean``, ``mean_lo``, ``mean_hi``, ``k_region``, ``k_mean``, ``spread_log_*``, ...).
    quality : dict
        The fit-quality verdict (``run.json`` ``fit_quality``: ``flagged``, ``reasons``,
        ``metrics``); empty for results written before verdicts existed.
    """

    subject_id: str
    ei: pd.Series
    s_e: pd.Series
    s_i: pd.Series
    r_e: pd.Series
    ei_sd: pd.Series | None
    parameters: pd.DataFrame
    G: float
    coefficients: np.ndarray
    losses: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict, repr=False)
    ei_lo: pd.Series | None = None
    ei_hi: pd.Series | None = None
    interval: dict[str, Any] | None = None
    quality: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        """Whether the fit-quality verdict flags this fit (see :attr:`quality` for the reasons)."""
        return bool(self.quality.get("flagged", False))

    @property
    def mean_interval(self) -> tuple[float, float] | None:
        """The mean E/I's 90 % interval ``(lo, hi)``, or None when the fit computed none (or
        none could be computed: ``interval["missing_reason"]``)."""
        if not self.interval:
            return None
        lo, hi = self.interval.get("mean_lo"), self.interval.get("mean_hi")
        return None if lo is None or hi is None else (float(lo), float(hi))

    def __repr__(self) -> str:
        # one line (the dataclass repr printed every Series: ~5,000 characters)
        interval = self.mean_interval
        shown = f" [{interval[0]:.3f}, {interval[1]:.3f}] (90 %)" if interval else ""
        reasons = ", ".join(self.quality.get("reasons", []))
        flag = f"flagged: {reasons}" if self.flagged else "not flagged"
        return (
            f"EIResult(subject_id={self.subject_id!r}, regions={len(self.ei)}, "
            f"mean E/I {float(self.ei.mean()):.3f}{shown}, {flag})"
        )

    @property
    def interval_calibrated(self) -> bool | None:
        """Whether the interval's calibration covers this fit (budget, scan length, TR, atlas, maps,
        steps; False:
        :attr:`interval` ``calibration_differences`` says how the fit differs, and the
        interval may be too narrow; None: no interval, or a result that did not record it)."""
        if not self.interval or self.interval.get("calibration_applies") is None:
            return None
        return bool(self.interval["calibration_applies"])

    def quality_notes(self) -> list[str]:
        """What a user must know before using this estimate, one sentence each (empty for a fit
        that is not flagged, has a calibrated interval and had every check of its verdict):
        the flag's reasons, an interval not calibrated for this fit, a noise-floor check that
        could not be made."""
        from delssome_norms.fit.calibration_scope import fit_notes

        return fit_notes(self.interval, self.quality)  # the sentences fit.estimate_ei warns with

    @property
    def regions(self) -> list[str]:
        """Region names, in region order."""
        return [str(r) for r in self.ei.index]

    def to_frame(self) -> pd.DataFrame:
        """The ``EI_ratio.csv`` layout with its ``region`` column (one row per region; for a fit
        without region names ``region_0`` .. ``region_{N-1}``, which the file leaves out)."""
        return et.ei_ratio_frame(
            self.ei.to_numpy(),
            self.s_e.to_numpy(),
            self.s_i.to_numpy(),
            self.r_e.to_numpy(),
            *(None if s is None else s.to_numpy() for s in (self.ei_sd, self.ei_lo, self.ei_hi)),
            self.quality or None,
            self.regions,
        )

    def to_table(
        self, demographics: Mapping[str, Any] | pd.Series, regions: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """One row of the cohort E/I table (:mod:`delssome_norms.io.ei_table`), ready to score.

        For several people use :func:`~delssome_norms.pipeline.results_table`: ``pd.concat``
        keeps the rows' ``attrs`` (their region names) only when every row has the same, so rows
        of fits listing their regions in different orders would be scored by position.

        Parameters
        ----------
        demographics : mapping or pandas.Series
            The person's ``age_in_years`` [years], ``sex`` and site columns (extra keys ignored);
            ``subject_id`` defaults to this result's, and another one is refused unless this
            result was fitted without one (``"subject"``, then the demographics' id is used).
        regions : sequence of str, optional
            The regional columns' order (``ei_ratio_roi_<k>`` is ``regions[k]``): this fit's
            regions, in any order and in any spelling the file readers accept
            (``ctx-lh-precentral`` is ``lh_precentral``); default: the fit's own order.

        Returns
        -------
        pandas.DataFrame
            ``subject_id``, the demographic columns given, ``ei_ratio_mean``, ``ei_ratio_roi_<k>``,
            and, as in the table of ``collect``, the mean's 90 % interval ``ei_ratio_mean_lo`` /
            ``ei_ratio_mean_hi`` (NaN without one), ``ei_interval_calibrated`` (None when
            unknown) and ``fit_flagged`` / ``fit_flag_reasons``, so that a chart's ``score`` flags
            a poor fit or an uncalibrated interval and gives the centile's interval. Its
            ``attrs`` record the fit's pipeline and region names, so that ``score`` compares the
            pipeline and matches the regional columns to a chart's regions by name (a chart
            listing them in another order) or refuses other regions.
        """
        if not hasattr(demographics, "items"):
            raise InvalidInputError(
                "demographics must be a mapping or pandas Series with age_in_years, sex and site; "
                f"got {type(demographics).__name__}",
                "demographics",
            )
        person = dict(demographics.items())
        if self.demographics_id(person) is None:
            person[et.SUBJECT_ID] = self.subject_id
        names, values = self.regions, self.ei.to_numpy()
        if regions is not None:
            names = [str(r) for r in regions] if not isinstance(regions, str) else [regions]
            order = match_region_order(names, self.regions)
            if order is None:
                raise InvalidInputError(
                    f"regions must list this fit's {len(self.regions)} regions "
                    f"({self.regions[0]}, ...) in some order; got {len(names)} names "
                    f"({names[0] if names else 'none'}, ...) that are not the same regions",
                    "regions",
                )
            values = values[order]
        row = et.cohort_row(person, values)
        row.update(interval_and_flag({"ei_interval": self.interval, "fit_quality": self.quality}))
        table = pd.DataFrame([row])
        record = self._table_provenance(names)
        if record:
            table.attrs[et.PROVENANCE_ATTR] = record
        return table

    def demographics_id(self, person: Mapping[str, Any]) -> str | None:
        """The ``subject_id`` the demographics ``person`` give (stripped), None when they give
        none; refused when it is another person's than this result's (a result fitted without
        a subject_id, ``"subject"``, takes any)."""
        given = person.get(et.SUBJECT_ID)
        if given is None or (np.ndim(given) == 0 and pd.isna(given)):
            return None
        given = str(given).strip()
        if given != self.subject_id and self.subject_id != DEFAULT_SUBJECT_ID:
            raise InvalidInputError(
                f"demographics are of subject {given!r} but this result is of "
                f"{self.subject_id!r}: give this person's demographics (a result fitted without "
                f"a subject_id, {DEFAULT_SUBJECT_ID!r}, takes the demographics' id)",
                "demographics",
            )
        return given

    def _table_provenance(self, names: list[str]) -> dict[str, Any]:
        """What :meth:`to_table` records in its ``attrs``, as ``collect``'s sidecar records it: the
        pipeline a chart's ``score`` compares, and the region names (``ei_ratio_roi_<k>`` is
        ``names[k]``) by which it matches the columns to a chart of another region order; no
        names for a fit without them (``region_0`` ..), whose columns only position identifies."""
        from delssome_norms.io.regions import regions_sha256

        out: dict[str, Any] = {}
        pipeline = self.provenance.get("pipeline")
        if isinstance(pipeline, dict):
            out["pipeline"] = dict(pipeline)
        if self.regions == region_names(len(names)):
            return out
        atlas = self.provenance.get("atlas")
        out["atlas"] = {
            **(atlas if isinstance(atlas, dict) else {}),
            "n_regions": len(names),
            "regions": names,
            "regions_sha256": regions_sha256(names),
        }
        if out.get("pipeline", {}).get("regions_sha256") is not None:  # names given to from_dir
            out["pipeline"]["regions_sha256"] = regions_sha256(names)
        return out

    def equals(self, other: object) -> bool:
        """Whether ``other`` is the same result: subject, every regional value (exactly, with the
        same region names), parameters, G, coefficients, losses, interval, quality, provenance
        and the rest of the run record (:attr:`info`)."""
        if not isinstance(other, EIResult):
            return False
        for name in ("ei", "s_e", "s_i", "r_e", "ei_sd", "ei_lo", "ei_hi", "parameters", "losses"):
            a, b = getattr(self, name), getattr(other, name)
            if (a is None) != (b is None) or (a is not None and not a.equals(b)):
                return False
        return (
            self.subject_id == other.subject_id
            and self.regions == other.regions
            and self.G == other.G
            and np.array_equal(self.coefficients, other.coefficients)
            and (self.interval, self.quality) == (other.interval, other.quality)
            and (self.provenance, self.info) == (other.provenance, other.info)
        )

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write the subject's folder as ``estimate-ei`` writes it: ``EI_ratio.csv``,
        ``best_parameters.csv``, ``fit_quality.csv`` and ``run.json`` (with its
        ``format_version``; written last, marking the fit finished).

        The same writer as a fit's (:func:`~delssome_norms.fit.outputs.write_result_files`), file
        by file atomically: an interrupted save leaves no half-written file and no folder that
        reads as finished. :meth:`from_dir` reads back an equal result (:meth:`equals`), and a fit
        with the same inputs and settings (``estimate-ei``, ``EIEstimator(out_dir=...)``) reuses
        the folder instead of refitting.

        Parameters
        ----------
        directory : path
            The subject's folder (created when missing).
        overwrite : bool, default False
            Replace a fit already in ``directory`` (finished results, pieces of them or a
            checkpoint). Finished results are kept in ``directory/previous`` until the new ones
            are written, as with ``estimate-ei --overwrite``.

        Returns
        -------
        Path
            ``directory``.

        Raises
        ------
        InvalidInputError
            ``directory`` is not a folder path, or holds a fit and ``overwrite`` is not True.
        """
        if not isinstance(overwrite, (bool, np.bool_)):  # "no" would be truthy: discard
            raise InvalidInputError(f"overwrite must be True or False, got {overwrite!r}", "overwrite")
        if not isinstance(directory, (str, Path)):
            raise InvalidInputError(
                f"must be a folder path (str or pathlib.Path), got {type(directory).__name__}",
                "directory",
            )
        d = Path(directory)
        if d.exists() and not d.is_dir():
            raise InvalidInputError("exists and is not a folder", str(d))
        check_not_locked(d.resolve().parent, "directory")  # a running cohort owns its subjects
        d.mkdir(parents=True, exist_ok=True)
        with OutDirLock(d, "directory"):  # not while a fit (estimate-ei, EIEstimator) writes it
            return self._save_into(d, overwrite)

    def _save_into(self, d: Path, overwrite: bool) -> Path:
        present = [n for n in (*OUTPUT_FILES, "checkpoint") if (d / n).exists()]
        if present and not overwrite:
            run = read_run(d)
            what = (
                f"the finished fit of subject {run.get('subject_id')!r}"
                if run is not None
                else f"files of a fit ({', '.join(present)})"
            )
            raise InvalidInputError(
                f"holds {what}; pass overwrite=True to replace it, or save to another folder",
                str(d),
            )
        if present:
            set_aside_previous(d)
        record = self._run_record()
        if self.regions != region_names(len(self.ei), recorded_regions(record, len(self.ei))):
            warnings.warn(
                f"{d}: run.json records no region names or others than this result's "
                f"({self.regions[0]!r}, ...); read it back with "
                "EIResult.from_dir(directory, regions=result.regions)",
                stacklevel=2,
            )
        write_result_files(
            d,
            columns={
                name: None if values is None else values.to_numpy(dtype=np.float64)
                for name, values in (
                    (et.EI_RATIO, self.ei),
                    (et.S_E, self.s_e),
                    (et.S_I, self.s_i),
                    (et.R_E, self.r_e),
                    (et.EI_RATIO_SD, self.ei_sd),
                    (et.EI_RATIO_LO, self.ei_lo),
                    (et.EI_RATIO_HI, self.ei_hi),
                )
            },
            parameters={
                **{k: self.parameters[k].to_numpy(dtype=np.float64) for k in ("wEE", "wEI", "sigma")},
                "G": self.G,
            },
            losses={
                str(stage): {k: float(row[k]) for k in LOSS_COLUMNS[:3]}
                for stage, row in self.losses.iterrows()
            },
            run=record,
        )
        return d

    def _run_record(self) -> dict[str, Any]:
        """The ``run.json`` of this result (key order as a fit writes it)."""
        run_info: dict[str, Any] = {}
        for key, value in self.info.items():
            if key not in _RECORD_KEYS:
                run_info[key] = value
            if key == "design":  # where a fit records its provenance
                run_info["provenance"] = self.provenance
        run_info.setdefault("provenance", self.provenance)
        stored = self.info.get("result")
        extra = {
            k: v
            for k, v in (stored.items() if isinstance(stored, Mapping) else ())
            if k not in ("coefficients", et.MEAN_TARGET)
        }
        return run_record(
            self.subject_id,
            self.ei.to_numpy(dtype=np.float64),
            self.coefficients,
            run_info,
            extra,
            self.interval,
            self.quality or None,
            self.info.get("versions"),
        )

    @classmethod
    def from_subject_result(
        cls,
        result: SubjectResult,
        run_info: Mapping[str, Any] | None = None,
        regions: Sequence[str] | None = None,
    ) -> EIResult:
        """Wrap the fit's :class:`~delssome_norms.fit.stages.SubjectResult` (arrays) by region name."""
        names = region_names(len(result.ei_ratio), regions)
        # the record estimate-ei writes to run.json, as from_dir reads it back
        info = _as_json(
            run_record(
                result.subject_id,
                result.ei_ratio,
                result.coeffs,
                run_info or {},
                result.info,
                result.interval,
                result.quality,
            )
        )

        def series(values: np.ndarray | None, name: str) -> pd.Series | None:
            if values is None:
                return None
            return pd.Series(np.asarray(values, dtype=np.float64), index=names, name=name)

        p = result.params
        losses = pd.DataFrame(
            [
                {**result.losses[s], "total_loss": sum(result.losses[s].values())}
                for s in STAGES
                if s in result.losses
            ],
            index=pd.Index([s for s in STAGES if s in result.losses], name="stage"),
        )
        return cls(
            subject_id=result.subject_id,
            ei=series(result.ei_ratio, et.EI_RATIO),
            s_e=series(result.s_e, et.S_E),
            s_i=series(result.s_i, et.S_I),
            r_e=series(result.r_e, et.R_E),
            ei_sd=series(result.ei_ratio_sd, et.EI_RATIO_SD),
            ei_lo=series(result.ei_lo, et.EI_RATIO_LO),
            ei_hi=series(result.ei_hi, et.EI_RATIO_HI),
            parameters=pd.DataFrame(
                {"wEE": p.wEE[0], "wEI": p.wEI[0], "sigma": p.sigma[0]}, index=names
            ),
            G=float(p.G[0]),
            coefficients=np.asarray(result.coeffs, dtype=np.float64),
            losses=losses[list(LOSS_COLUMNS)],
            provenance=dict(info.pop("provenance", None) or {}),
            info=info,
            interval=info.get("ei_interval") or None,
            quality=dict(info.get("fit_quality") or {}),
        )

    @classmethod
    def from_dir(cls, subject_dir: str | Path, regions: Sequence[str] | None = None) -> EIResult:
        """Read a finished subject's folder (``EI_ratio.csv``, ``best_parameters.csv``,
        ``fit_quality.csv``, ``run.json``).

        Parameters
        ----------
        subject_dir : path
            The subject's folder (``EIEstimator(out_dir=...)`` or ``estimate-ei --out-dir``).
        regions : sequence of str, optional
            Region names; default the names ``run.json`` records for the fit's atlas (the DK68
            names for a DK68 fit), else ``region_0`` .. ``region_{N-1}``.

        Raises
        ------
        InvalidInputError
            The folder holds no finished fit, or its ``EI_ratio.csv`` / ``best_parameters.csv``
            has a ``region`` column naming other regions than ``run.json``
            (:func:`~delssome_norms.fit.outputs.check_region_names`; files without the column,
            written by earlier versions, are read as they are).
        """
        d = Path(subject_dir)
        run = read_run(d)
        if run is None:
            raise InvalidInputError("holds no finished fit (run.json with status complete)", str(d))
        check_region_names(d, run)
        ei = read_table(d / et.EI_RATIO_FILE, required=et.EI_RATIO_COLUMNS)
        ei = ei.sort_values(et.REGION_INDEX).reset_index(drop=True)
        if regions is None:
            regions = recorded_regions(run, len(ei))
        names = region_names(len(ei), regions)
        params = read_parameters(d / PARAMETERS_FILE, len(ei))
        quality = read_table(d / "fit_quality.csv", required=("stage", *LOSS_COLUMNS))

        def series(column: str) -> pd.Series | None:
            if column not in ei.columns:
                return None
            return pd.Series(ei[column].to_numpy(dtype=np.float64), index=names, name=column)

        info = json.loads(json.dumps(run))
        return cls(
            subject_id=str(run.get("subject_id")),
            ei=series(et.EI_RATIO),
            s_e=series(et.S_E),
            s_i=series(et.S_I),
            r_e=series(et.R_E),
            ei_sd=series(et.EI_RATIO_SD),
            ei_lo=series(et.EI_RATIO_LO),
            ei_hi=series(et.EI_RATIO_HI),
            parameters=pd.DataFrame({k: params[k] for k in ("wEE", "wEI", "sigma")}, index=names),
            G=float(params["G"]),
            coefficients=np.asarray(run.get("result", {}).get("coefficients", []), dtype=np.float64),
            losses=quality.set_index("stage")[list(LOSS_COLUMNS)].astype(np.float64),
            provenance=dict(info.pop("provenance", None) or {}),
            info=info,
            interval=info.get("ei_interval") or None,
            quality=dict(info.get("fit_quality") or {}),
        )
