"""Saving and loading a :class:`~delssome_norms.norms.chart.GrowthChart` (docs/science.md §7).

A chart folder holds ``chart.json`` (readable: format version, family, formulas, knots, sites,
targets, ranges, convergence, coefficients) and ``arrays.npz`` (the numbers). No pickle.
"""

from __future__ import annotations

import json
import math
import os
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io import as_json_data, file_sha256, write_arrays, write_json
from delssome_norms.io.digest import content_sha256
from delssome_norms.io.ei_table import site_text
from delssome_norms.norms.design import ParameterDesign
from delssome_norms.norms.distributions import get_family

FORMAT_VERSION = 1
"""Schema version of a saved chart folder (``chart.json`` + ``arrays.npz``)."""

SITE_TAIL_ARRAY = "tail_z_by_site"
"""``arrays.npz`` entry of :meth:`~delssome_norms.norms.chart.GrowthChart.site_tail_z` of every
site the chart knows, shape (sites, targets). Charts saved without it (older versions) load as
before and compute it when first needed (scoring, :attr:`unreliable_sites_`): the values are a
function of the saved coefficients and site offsets."""

CHART_FILES = ("arrays.npz", "chart.json")
"""The files of a saved chart, in the order :meth:`~ChartPersistenceMixin.save` puts them."""

if TYPE_CHECKING:
    from delssome_norms.norms.chart import GrowthChart


def check_save_folder(folder: str | Path, overwrite: bool) -> None:
    """Refuse a file, a saved chart without ``overwrite`` and a subject's fit folder (a chart
    mixed into its results); other files a user keeps in the folder stay. Called by
    :meth:`~ChartPersistenceMixin.save`, and by ``charts fit``/``adapt`` before their work."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(
            "exists and is a file; a chart is saved as a folder (chart.json + arrays.npz)",
            str(folder),
        )
    if not folder.is_dir():
        return
    if (folder / "chart.json").exists():
        if not overwrite:
            raise InvalidInputError(
                "holds a saved chart; give overwrite=True to replace it, or save to another folder",
                str(folder),
            )
        return
    from delssome_norms.fit.outputs import FAILURE_FILE, OUTPUT_FILES

    fit = [name for name in (*OUTPUT_FILES, FAILURE_FILE) if (folder / name).is_file()]
    if fit:
        raise InvalidInputError(
            f"holds a subject's fit ({', '.join(fit[:3])}): save the chart into another folder, "
            "so that it is not mixed with the subject's results",
            str(folder),
        )


class ChartPersistenceMixin:
    """``save`` and ``load`` of :class:`~delssome_norms.norms.chart.GrowthChart`."""

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the chart to a folder: ``chart.json`` (readable) and ``arrays.npz`` (numbers).

        A saved chart is replaced only with ``overwrite=True`` (``charts fit`` replaces the
        chart of its ``--out``); a subject's fit folder is refused (:func:`check_save_folder`);
        other files in the folder stay. Both files are written in full before either replaces
        the old one.

        ``chart.json`` holds the format version, the package version, family, formulas, knots,
        sites, targets, ranges, convergence and a readable copy of the coefficients; ``arrays.npz``
        holds the coefficient and site-effect matrices and per-target diagnostics (read back with
        ``allow_pickle=False``). No pickle.

        Returns
        -------
        Path of the folder.
        """
        self._check_fitted()
        from delssome_norms import __version__

        folder = Path(path)
        check_save_folder(folder, overwrite)
        fam = self.family_
        arrays: dict[str, np.ndarray] = {}
        for p in fam.params:
            arrays[f"coef_{p}"] = self.coef_[p]
            if p in self.site_effects_:
                arrays[f"site_{p}"] = self.site_effects_[p]
                arrays[f"lambda_{p}"] = self.lambda_[p]
                arrays[f"edf_random_{p}"] = self.edf_random_[p]
        for name in ("loglik_", "edf_", "n_obs_", "converged_", "n_iter_", "decrement_"):
            arrays[name.rstrip("_")] = np.asarray(getattr(self, name))
        if self.site_effects_ and self.sites_:  # the sites' tail check (inf: undefined tail)
            arrays[SITE_TAIL_ARRAY] = self.site_tail_z(self.sites_)
        meta = {
            "format_version": FORMAT_VERSION,
            "delssome_norms_version": __version__,
            "kind": "GrowthChart",
            "family": fam.name,
            "links": dict(zip(fam.params, fam.links)),
            "formulas": self.formulas_,
            "parameters": {p: d.to_dict() for p, d in zip(fam.params, self.designs_)},
            "sex_coding": {"numeric_sex": {"female": 1, "male": 0}},
            "site_column": self.site_column_,
            "sites": list(self.sites_),
            "site_people": dict(getattr(self, "site_n_", None) or {}),
            "adapted_sites": self.adapted_sites_,
            "adaptations": list(getattr(self, "adaptations_", [])),
            "targets": list(self.targets_),
            "age_range": list(self.age_range_),
            "sexes": list(getattr(self, "sexes_", ["female", "male"])),
            "chart_range": list(self.chart_range_),
            # constructor arguments in their declared order (as written before sklearn)
            "options": {k: getattr(self, k) for k in self._parameter_constraints},
            "provenance": getattr(self, "provenance_", None),
            "convergence": {
                "all_converged": bool(self.converged_.all()),
                "unconverged_targets": [t for t, ok in zip(self.targets_, self.converged_) if not ok],
                "degenerate_tail_targets": [
                    t for t, ok, r in zip(self.targets_, self.converged_, self.reliable_) if ok and not r
                ],
                "unreliable_sites": self.unreliable_sites_,
            },
            "arrays": {k: list(np.shape(v)) for k, v in arrays.items()},
            "coefficients": {
                t: {
                    p: dict(zip(d.column_names(), self.coef_[p][i].tolist()))
                    for p, d in zip(fam.params, self.designs_)
                }
                for i, t in enumerate(self.targets_)
            },
        }
        meta["options"]["random_sites"] = list(self.random_sites)
        meta = as_json_data(meta)  # numpy option values as JSON numbers (before any file is written)
        folder.mkdir(parents=True, exist_ok=True)
        staged = {name: folder / f".{name}.saving" for name in CHART_FILES}
        try:
            write_arrays(arrays, staged["arrays.npz"])
            meta["arrays_sha256"] = file_sha256(staged["arrays.npz"])
            meta["content_sha256"] = content_sha256(meta, "content_sha256")
            write_json(meta, staged["chart.json"])
            for name in CHART_FILES:  # the numbers first: chart.json names their checksum
                os.replace(staged[name], folder / name)
        finally:
            for tmp in staged.values():
                tmp.unlink(missing_ok=True)
        # a chart adapted from this one names it by these
        self._saved_sha256 = {k: meta[k] for k in ("content_sha256", "arrays_sha256")}
        return folder

    @classmethod
    def load(cls, path: str | Path) -> GrowthChart:
        """Read a chart folder written by :meth:`save`.

        Refuses other format versions, incomplete folders, a ``chart.json`` edited after it was
        saved (its recorded ``content_sha256``), an ``arrays.npz`` that does not match the
        checksum in ``chart.json``, readable coefficients that disagree with ``arrays.npz``, and,
        with or without the checksums, fields of ``chart.json`` that disagree with each other
        (links and family, knots and ranges with the training ages, sites with their counts:
        :func:`_check_chart_fields`). A chart without a checksum (saved by an older version)
        loads with one :class:`~delssome_norms.errors.InputWarning`: edits to it cannot be
        detected; ``GrowthChart.load(folder).save(folder, overwrite=True)`` adds them.
        """
        folder = Path(path)
        meta_path = folder / "chart.json"
        if folder.is_file():
            raise InvalidInputError(
                "is a file; give the chart folder that holds chart.json and arrays.npz"
                + (f" ({folder.parent})" if folder.name in ("chart.json", "arrays.npz") else ""),
                str(folder),
            )
        if not folder.is_dir():
            raise InvalidInputError("chart folder does not exist", str(folder))
        if not meta_path.is_file():
            raise InvalidInputError("not a chart folder: chart.json is missing", str(folder))
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"cannot be read as JSON ({exc})", str(meta_path)) from None
        if not isinstance(meta, dict) or meta.get("kind") != "GrowthChart":
            raise InvalidInputError("is not a GrowthChart file", str(meta_path))
        version = meta.get("format_version")
        if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
            raise InvalidInputError(
                f"chart format_version {version} is newer than this delssome_norms reads "
                f"({FORMAT_VERSION}; the chart was written by delssome_norms "
                f"{meta.get('delssome_norms_version', 'unknown')}); upgrade delssome_norms",
                str(meta_path),
            )
        if not isinstance(version, int) or isinstance(version, bool):
            raise InvalidInputError(
                f"chart format_version must be an integer ({FORMAT_VERSION} for this "
                f"delssome_norms); got {version!r} ({type(version).__name__}): was chart.json "
                "edited? Refit or restore the chart",
                str(meta_path),
            )
        if version != FORMAT_VERSION:
            raise InvalidInputError(
                f"chart format_version {version!r} is not supported: this delssome_norms reads "
                f"format_version {FORMAT_VERSION} (the chart was written by delssome_norms "
                f"{meta.get('delssome_norms_version', 'unknown')}); refit the chart with this "
                f"version",
                str(meta_path),
            )
        arr_path = folder / "arrays.npz"
        expected = meta.get("arrays_sha256")  # charts saved before checksums were added lack it
        if expected is not None and arr_path.is_file() and file_sha256(arr_path) != expected:
            raise InvalidInputError(
                "does not match the sha256 recorded in chart.json (damaged or edited); refit or "
                "restore the chart",
                str(arr_path),
            )
        try:
            # the file opened here: numpy leaves the handle it opens unclosed when the archive
            # is damaged (a truncated .npz)
            with open(arr_path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            # numpy reads a file that is no .npz archive as a pickle and suggests unpickling it
            # (allow_pickle=True): never, so its message is not passed on
            why = "not an .npz archive of numbers" if "pickle" in str(exc) else str(exc)
            raise InvalidInputError(
                f"cannot be read ({why}); the chart is damaged or incomplete: refit or restore it",
                str(arr_path),
            ) from None
        try:
            opts = dict(meta["options"])
            chart = cls(**{k: v for k, v in opts.items() if k in cls._parameter_constraints})
            fam = get_family(meta["family"])
            chart.family_ = fam
            chart.targets_ = list(meta["targets"])
            chart.designs_ = [ParameterDesign.from_dict(meta["parameters"][p]) for p in fam.params]
            # site labels as fitting writes them now (charts of older versions stored "3.0"
            # for a float column's 3 and kept surrounding spaces)
            chart.sites_ = [site_text(v) for v in meta["sites"]]
            chart.site_column_ = meta["site_column"]
            chart.coef_ = {p: arrays[f"coef_{p}"] for p in fam.params}
            chart.site_effects_ = {p: arrays[f"site_{p}"] for p in fam.params if f"site_{p}" in arrays}
            chart.lambda_ = {p: arrays[f"lambda_{p}"] for p in chart.site_effects_}
            chart.edf_random_ = {p: arrays[f"edf_random_{p}"] for p in chart.site_effects_}
            chart.loglik_ = arrays["loglik"]
            chart.edf_ = arrays["edf"]
            chart.n_obs_ = arrays["n_obs"]
            chart.converged_ = arrays["converged"].astype(bool)
            chart.n_iter_ = arrays["n_iter"]
            chart.decrement_ = arrays["decrement"]
            chart.age_range_ = tuple(float(v) for v in meta["age_range"])
            chart.sexes_ = [str(v) for v in meta.get("sexes", ["female", "male"])]  # older: both
            chart.chart_range_ = tuple(float(v) for v in meta["chart_range"])
            chart.adapted_sites_ = {site_text(k): v for k, v in meta.get("adapted_sites", {}).items()}
            # older charts: not recorded
            chart.site_n_ = {site_text(k): int(v) for k, v in meta.get("site_people", {}).items()}
            chart.adaptations_ = list(meta.get("adaptations", []))  # older charts: none recorded
            prov = meta.get("provenance")
            chart.provenance_ = dict(prov) if isinstance(prov, dict) else None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise InvalidInputError(f"incomplete or inconsistent chart ({exc!r})", str(folder)) from None
        _refuse_merged_sites(meta["sites"], chart.sites_, meta_path)
        _check_finite_chart(meta, arrays, chart, folder, arr_path, meta_path)
        T = len(chart.targets_)
        for p, d in zip(fam.params, chart.designs_):
            if chart.coef_[p].shape != (T, d.n_fixed):
                raise InvalidInputError(
                    f"coef_{p} has shape {chart.coef_[p].shape}, expected {(T, d.n_fixed)}",
                    str(arr_path),
                )
        readable = meta.get("coefficients", {})
        for i, t in enumerate(chart.targets_):
            for p in fam.params:
                listed = readable.get(t, {}).get(p)
                if listed is None or list(listed.values()) != chart.coef_[p][i].tolist():
                    raise InvalidInputError(
                        f"the coefficients of {t} ({p}) in chart.json and arrays.npz disagree; "
                        f"was one of them edited? Refit or restore the chart",
                        str(folder),
                    )
        for p, eff in chart.site_effects_.items():
            if eff.shape != (T, len(chart.sites_)):
                raise InvalidInputError(
                    f"site_{p} has shape {eff.shape}, expected {(T, len(chart.sites_))}",
                    str(arr_path),
                )
        tails = arrays.get(SITE_TAIL_ARRAY)  # charts saved before it: computed when first needed
        if tails is not None:
            if tails.shape != (len(chart.sites_), T) or not np.issubdtype(tails.dtype, np.floating):
                raise InvalidInputError(
                    f"{SITE_TAIL_ARRAY} has shape {tails.shape}, expected "
                    f"{(len(chart.sites_), T)}; refit or restore the chart",
                    str(arr_path),
                )
            chart._site_tail_z = dict(zip(chart.sites_, np.array(tails, dtype=np.float64)))
        recorded = meta.get("content_sha256")  # charts saved before it was added lack it
        if recorded is not None and recorded != content_sha256(meta, "content_sha256"):
            raise InvalidInputError(
                "was edited after the chart was saved (its content no longer matches the "
                "sha256 recorded in it): sites, family, knots or ranges may have changed; refit "
                "or restore the chart",
                str(meta_path),
            )
        _check_chart_fields(meta, chart, meta_path)
        unchecked = [
            k for k, v in (("content_sha256", recorded), ("arrays_sha256", expected)) if v is None
        ]
        if unchecked:  # saved by an older delssome_norms, or the checksum line was deleted
            warnings.warn(
                f"{meta_path}: has no checksum ({', '.join(unchecked)}; charts saved by older "
                "versions of delssome_norms lack it), so edits to the chart cannot be detected; "
                "re-save it (GrowthChart.load(folder).save(folder, overwrite=True)) or refit it",
                InputWarning,
                stacklevel=2,
            )
        chart._saved_sha256 = {"content_sha256": recorded, "arrays_sha256": expected}
        return chart


def _non_finite_numbers(obj: Any, where: str = "") -> list[str]:
    """Dotted paths of every NaN/inf number inside a JSON-like structure."""
    if isinstance(obj, dict):
        return [
            x
            for k, v in obj.items()
            for x in _non_finite_numbers(v, f"{where}.{k}" if where else str(k))
        ]
    if isinstance(obj, (list, tuple)):
        return [x for i, v in enumerate(obj) for x in _non_finite_numbers(v, f"{where}[{i}]")]
    if isinstance(obj, float) and not np.isfinite(obj):
        return [where]
    return []


def _check_finite_chart(
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
    chart: GrowthChart,
    folder: Path,
    arr_path: Path,
    meta_path: Path,
) -> None:
    """Refuse a chart whose numbers (coefficients, site effects, knots, ranges) are not finite.

    A hand-edited or damaged chart would otherwise score silently: NaN offsets or knots give
    all-NaN scores, an infinite site sigma gives centile 0.5 for everyone, a NaN age range turns
    the age flags off.
    """
    for name, arr in arrays.items():
        if not (name.startswith(("coef_", "site_", "lambda_"))):
            continue
        a = np.asarray(arr)
        if not np.issubdtype(a.dtype, np.number):
            raise InvalidInputError(f"{name} is not numeric ({a.dtype})", str(arr_path))
        bad = ~np.isfinite(a)
        if bad.any():
            raise InvalidInputError(
                f"{name} contains {int(bad.sum())} non-finite value(s) (NaN/inf); the chart was "
                "damaged or edited: refit or restore it",
                str(arr_path),
            )
    bad_meta = _non_finite_numbers({k: meta.get(k) for k in ("parameters", "age_range", "chart_range")})
    if bad_meta:
        raise InvalidInputError(
            f"non-finite number(s) at {', '.join(bad_meta[:5])}; the chart was damaged or edited: "
            "refit or restore it",
            str(meta_path),
        )
    for name, (lo, hi) in (("age_range", chart.age_range_), ("chart_range", chart.chart_range_)):
        if not lo < hi:
            raise InvalidInputError(
                f"{name} [{lo:g}, {hi:g}] is empty or reversed; refit or restore the chart",
                str(meta_path),
            )


def _check_chart_fields(meta: dict[str, Any], chart: GrowthChart, meta_path: Path) -> None:
    """Refuse a ``chart.json`` whose fields disagree with each other (a hand edit), with or
    without its checksum: the link functions with the family's, the family with the one it was
    fitted with (``options``), ``age_range`` with the training ages of the age curves (their
    ``bs()`` boundary knots are the youngest and oldest training ages), ``chart_range`` with
    ``age_range`` (floor and ceil, as fitting sets it), the interior knots (increasing, inside
    the training ages), and the sites with the training sites' counts (``site_people``, in the
    chart's order) followed by the adapted sites."""

    def refuse(field: str, what: str) -> NoReturn:
        raise InvalidInputError(
            f"{field} {what}; chart.json was edited or damaged: refit or restore the chart",
            str(meta_path),
        )

    fam = chart.family_
    links, own = meta.get("links"), dict(zip(fam.params, fam.links))
    if links != own:
        refuse("links", f"{links!r} are not those of family {fam.name} ({own})")
    fitted_with = (meta.get("options") or {}).get("family")
    try:
        same = fitted_with is None or get_family(fitted_with).name == fam.name
    except ValueError:
        same = False
    if not same:
        refuse(
            "family", f"{fam.name} is not the one the chart was fitted with ({fitted_with!r} in options)"
        )
    young, old = chart.age_range_
    for p, design in zip(fam.params, chart.designs_):
        basis = design.basis
        if basis is None:
            continue
        where = f"parameters.{p}.basis"
        if not np.allclose(basis.boundary_knots, (young, old), rtol=1e-12, atol=0.0):
            refuse(
                "age_range",
                f"[{young:g}, {old:g}] is not the training ages of the age curves "
                f"({where}.boundary_knots {list(basis.boundary_knots)})",
            )
        knots = np.asarray(basis.interior_knots, dtype=np.float64)
        if knots.size and (np.any(np.diff(knots) < 0) or knots[0] < young or knots[-1] > old):
            refuse(
                f"{where}.interior_knots",
                f"{knots.tolist()} are not increasing inside the training ages [{young:g}, {old:g}]",
            )
    lo, hi = chart.chart_range_
    if (lo, hi) != (float(math.floor(young)), float(math.ceil(old))):
        refuse(
            "chart_range",
            f"[{lo:g}, {hi:g}] is not the training ages age_range [{young:g}, {old:g}] rounded "
            f"out to whole years ([{math.floor(young)}, {math.ceil(old)}])",
        )
    sites, adapted = chart.sites_, list(chart.adapted_sites_)
    trained = list(chart.site_n_)  # site_people; older charts: not recorded
    if trained and trained + adapted != sites:
        refuse(
            "sites",
            f"({len(sites)}: {', '.join(sites[:4])}{' ...' if len(sites) > 4 else ''}) are not "
            "the training sites of site_people followed by the adapted_sites, in their order "
            "(sites reordered or renamed)",
        )
    if adapted and sites[-len(adapted) :] != adapted:
        refuse("adapted_sites", f"({', '.join(adapted[:4])}) are not the last of the chart's sites")


def _refuse_merged_sites(stored: list, labels: list[str], path) -> None:
    """Refuse a chart whose stored site labels are one site written two ways ("01" and "1",
    saved by a version that compared labels as written): every comparison now reads them as one
    label (``site_text``), so their offsets could not be told apart."""
    seen: dict[str, str] = {}
    for raw, label in zip(stored, labels):
        if label in seen:
            raise InvalidInputError(
                f"lists sites that are one site written two ways ({seen[label]!s} and {raw!s}): "
                "site labels are now compared without leading zeros and surrounding spaces. If "
                "they are one site, refit the chart (it is then fitted as one); if they are two, "
                "give them labels that differ otherwise (e.g. a letter) and refit",
                str(path),
            )
        seen[label] = str(raw)
