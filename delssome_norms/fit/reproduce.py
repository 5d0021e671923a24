"""Reproduce a fit's test-stage simulation of its winner (``delssome-norms simulate --from-run``).

The test stage simulates the best validated candidates of every subject of a lockstep group in
one call (:func:`~delssome_norms.fit.stages.run_test`); ``run.json`` records the call's noise
seed ``seeds.test``, the winner's row ``test_batch_row`` and the call's ``test_batch_size`` rows
(:func:`~delssome_norms.fit.stages._noise_record`). Duplicate ``d`` of row ``r`` is simulation
``r * n_dup + d`` of the batch, and its noise depends on the seed and that index only (the
Philox engines, "kernel" on CPU and "triton" on CUDA) or on the whole batch (the "torch" engine,
whose noise blocks span every simulation). No simulation of a batch reads another's state, so
:func:`simulate_batch_row` reproduces row ``r`` by simulating a batch whose rows ``0 .. r`` (the
torch engine: all ``test_batch_size`` rows) all hold the winner's parameters and keeping row
``r``; the cost grows with the rows simulated (about ``ceil((r + 1) n_dup / L)`` SIMD groups of
L = 16 to 32 simulations on CPU).

:func:`duplicate_means` averages the duplicates with the fit's own arithmetic (float64 copies of
the single-precision time averages, summed over the valid duplicates), so S_E, S_I, r_E and the
E/I of ``EI_ratio.csv`` come out bit for bit.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from delssome_norms.errors import InvalidInputError

RUN_JSON_FIELDS = ("result.seeds.test", "result.test_batch_row", "result.test_batch_size")
"""What ``run.json`` must record for its test stage to be reproduced (fits since they were added)."""


@dataclass(frozen=True)
class WinnerRecord:
    """What a fit's ``run.json`` says about its winner's test-stage simulation.

    Attributes
    ----------
    path : Path
        The ``run.json``.
    seed, row, batch_size : int
        ``seeds.test``, ``test_batch_row`` and ``test_batch_size``.
    n_dup : int
    dtype, device, engine : str
        The fit's settings (``engine`` as given, e.g. "auto").
    timing : dict
        ``tr``, ``scan_length``, ``dt`` (the test step), ``burn_in``, ``fcd_window``,
        ``warmup_steps``: the keywords of :class:`~delssome_norms.model.SimulationTiming`.
    sc : str or None
        The SC file the fit read (``inputs.sc``; a label, not a file, for the template).
    sc_sha256 : str or None
        Digest of the unscaled SC (``provenance.sc.sha256``;
        :func:`~delssome_norms.io.digest.arrays_sha256`).
    sc_template : bool
        The fit used the packaged DK68 template SC.
    combined : bool
        The fit's E/I combines several searches' best candidates (``--combine mean``): its
        ``EI_ratio.csv`` is not the winner's simulation alone.
    regions : tuple of str or None
        The fit's region names in its order (``provenance.atlas.regions``), None when unnamed.
    level_shift_log : float
        ``EI_ratio.csv``'s E/I is the winner's times ``exp(level_shift_log)`` (the level centred
        in the near-optimal set, :mod:`delssome_norms.fit.uncertainty`); S_E, S_I and r_E are the
        winner's own.
    engine_used : str or None
        The engine the fit's simulations ran on (``settings.engine_used``: "kernel", "triton" or
        "torch"; None for fits stored before it was recorded).
    """

    path: Path
    seed: int
    row: int
    batch_size: int
    n_dup: int
    dtype: str
    device: str
    engine: str
    timing: dict[str, Any]
    sc: str | None
    sc_sha256: str | None
    sc_template: bool
    combined: bool
    engine_used: str | None = None
    level_shift_log: float = 0.0
    regions: tuple[str, ...] | None = None

    @property
    def folder(self) -> Path:
        """The fit's output folder (``best_parameters.csv``, ``EI_ratio.csv``)."""
        return self.path.parent


def _get(doc: dict, dotted: str) -> Any:
    node: Any = doc
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def read_winner_record(path: str | Path, option: str = "--from-run") -> WinnerRecord:
    """Read what reproduces a fit's test-stage simulation of its winner from its ``run.json``.

    Parameters
    ----------
    path : path
        A fit's ``run.json``, or the fit's folder holding it.
    option : str
        Named in errors.

    Raises
    ------
    InvalidInputError
        No readable ``run.json``, a fit that did not finish, or a record without the test seed,
        row and batch size (written before they were recorded) or without the fit's settings.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "run.json"
    if not p.is_file():
        raise InvalidInputError(f"{p} is not a fit's run.json (no such file)", option)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InvalidInputError(f"{p} cannot be read as JSON ({err})", option) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("result"), dict):
        status = doc.get("status") if isinstance(doc, dict) else None
        raise InvalidInputError(
            f"{p} holds no fit result (status {status!r}); only a finished fit's run.json can be "
            "reproduced",
            option,
        )
    missing = [f for f in RUN_JSON_FIELDS if _get(doc, f) is None]
    if missing:
        raise InvalidInputError(
            f"{p} does not record {', '.join(missing)} (a fit stored before they were recorded): "
            "its test noise cannot be located; rerun the fit, or give --seed, --batch-row and "
            "--batch-size yourself",
            option,
        )
    settings = doc.get("settings") or {}
    timing = doc.get("timing") or {}
    need = {
        "settings.n_dup": settings.get("n_dup"),
        "settings.dtype": settings.get("dtype"),
        "timing.tr": timing.get("tr"),
        "timing.scan_length": timing.get("scan_length"),
        "timing.dt.test": _get(timing, "dt.test"),
        "timing.warmup_steps": timing.get("warmup_steps"),
    }
    absent = [k for k, v in need.items() if v is None]
    if absent:
        raise InvalidInputError(f"{p} does not record {', '.join(absent)}", option)
    result = doc["result"]
    ints = {}
    for key, value in (
        ("seeds.test", result["seeds"]["test"]),
        ("test_batch_row", result["test_batch_row"]),
        ("test_batch_size", result["test_batch_size"]),
        ("settings.n_dup", need["settings.n_dup"]),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInputError(f"{p}: {key} must be a whole number >= 0, got {value!r}", option)
        ints[key] = value
    if not ints["test_batch_row"] < ints["test_batch_size"] or ints["settings.n_dup"] < 1:
        raise InvalidInputError(
            f"{p}: test_batch_row {ints['test_batch_row']} is not a row of a batch of "
            f"{ints['test_batch_size']} rows (or n_dup is 0): the record is damaged",
            option,
        )
    provenance = doc.get("provenance") or {}
    pipeline_sc = str(_get(provenance, "pipeline.sc") or "")
    return WinnerRecord(
        path=p,
        seed=ints["seeds.test"],
        row=ints["test_batch_row"],
        batch_size=ints["test_batch_size"],
        n_dup=ints["settings.n_dup"],
        dtype=str(need["settings.dtype"]),
        device=str(settings.get("device") or "cpu"),
        engine=str(settings.get("engine") or "auto"),
        timing={
            "tr": float(need["timing.tr"]),
            "scan_length": float(need["timing.scan_length"]),
            "dt": float(need["timing.dt.test"]),
            "burn_in": None if timing.get("burn_in") is None else float(timing["burn_in"]),
            "fcd_window": timing.get("fcd_window"),
            "warmup_steps": int(need["timing.warmup_steps"]),
        },
        sc=_get(doc, "inputs.sc"),
        sc_sha256=_get(provenance, "sc.sha256"),
        sc_template=pipeline_sc.startswith("template"),
        combined=len(result.get("ensemble_test_batch_rows") or []) >= 2,
        engine_used=_engine_used(settings.get("engine_used"), p, option),
        level_shift_log=_level_shift(doc, p, option),
        regions=_regions(_get(provenance, "atlas.regions")),
    )


def _regions(value: Any) -> tuple[str, ...] | None:
    """``provenance.atlas.regions`` as a tuple of names (None when absent or not a name list)."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        return None
    return tuple(value)


def _level_shift(doc: dict, path: Path, option: str) -> float:
    """``ei_interval.level_shift_log``: the log factor between the winner's simulated E/I and the
    level-centred E/I of ``EI_ratio.csv`` (0 for fits without it: written before the centring,
    or without an interval)."""
    value = _get(doc, "ei_interval.level_shift_log")
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInputError(
            f"{path}: ei_interval.level_shift_log must be a finite number, got {value!r}", option
        )
    return float(value)


def _engine_used(value: Any, path: Path, option: str) -> str | None:
    if value is None:
        return None
    if value not in ("kernel", "triton", "torch"):
        raise InvalidInputError(
            f"{path}: settings.engine_used must be 'kernel', 'triton' or 'torch', got {value!r}: "
            "the record is damaged",
            option,
        )
    return str(value)


def engine_unavailable(engine: str, device: Any, n_regions: int, dtype: Any = "float32") -> str | None:
    """Why ``engine`` ("kernel", "triton" or "torch") cannot run on ``device`` here for
    ``n_regions`` regions in ``dtype``, or None."""
    from delssome_norms.model.devices import check_device

    dev = check_device(device)
    if engine == "kernel":
        if dev.type != "cpu":
            return f"the 'kernel' engine runs on the CPU only, not on {dev}"
        from delssome_norms.model import _kernel

        if not _kernel.available():
            return (
                "the C++ kernel cannot be used on this machine (no C++ compiler or OpenMP, or "
                "DELSSOME_NORMS_NO_KERNEL is set)"
            )
    elif engine == "triton":
        from delssome_norms.model import _triton

        if dev.type != "cuda":
            return f"the 'triton' engine runs on CUDA only, not on {dev}"
        if n_regions > _triton.MAX_REGIONS:
            return f"the 'triton' engine holds at most {_triton.MAX_REGIONS} regions"
        from delssome_norms.model.integrate import _simulation_dtype

        dt = _simulation_dtype(dtype)
        if not _triton.available(dev, dt, max(1, n_regions)):
            return (
                f"the Triton kernel cannot run on {dev} here in {dt} (Triton not installed, the "
                "GPU or this kernel variant not supported, or DELSSOME_NORMS_NO_TRITON is set)"
            )
    return None


def find_fit_sc(record: WinnerRecord, option: str = "--sc") -> Path:
    """The SC file a fit read (``inputs.sc`` of its ``run.json``), found from here.

    ``inputs.sc`` is the path as it was given to the fit, possibly relative to the folder the
    fit ran in. A relative path is looked for, in this order, from the working directory, from
    the folder of ``run.json`` and from each folder above it (where a fit writing to
    ``out/sub-01`` was usually run); with the fit's SC digest recorded
    (``provenance.sc.sha256``), the first file whose matrix has that digest is taken, in the
    file's order or put in the fit's region order by name (``provenance.atlas.regions``: the
    fit digests its SC in its FC's order); else the first file found (the digest check then
    names it).

    Raises
    ------
    InvalidInputError
        Named ``option``: no such file in any of those places.
    """
    if not record.sc:
        raise InvalidInputError(
            f"{record.path} records no SC file (run.json inputs.sc); give the fit's SC", option
        )
    given = Path(record.sc).expanduser()
    if given.is_absolute():
        places = [given]
    else:
        here = record.path.parent.resolve()
        places = [Path.cwd() / given, *(d / given for d in (here, *here.parents))]
    found = [p for p in dict.fromkeys(places) if p.is_file()]
    if not found:
        where = (
            "" if given.is_absolute() else
            f" (looked for it from the working directory {Path.cwd()}, from {record.path.parent} "
            "and from the folders above it)"
        )  # fmt: skip
        raise InvalidInputError(
            f"the fit's SC {record.sc!r} (run.json inputs.sc) is not a file here{where}; give "
            "the fit's SC",
            option,
        )
    if record.sc_sha256 and len(found) > 1:
        for candidate in found:
            try:
                with warnings.catch_warnings():  # warned about once, when the chosen SC is read
                    warnings.simplefilter("ignore")
                    if record.sc_sha256 in _sc_digests(candidate, record.regions):
                        return candidate
            except InvalidInputError:
                continue
    return found[0]


def _sc_digests(path: Path, regions: tuple[str, ...] | None) -> set[str]:
    """Digests of the SC at ``path`` as read (DK68 names put in DK68 order) and, when it names
    the same regions as ``regions`` in another order, put in that order."""
    from delssome_norms.io import named_regions
    from delssome_norms.io.checks import check_sc
    from delssome_norms.io.digest import arrays_sha256

    named = named_regions.read_square(path, None, "SC")
    values = check_sc(named.values, input_name=str(path))
    digests = {arrays_sha256(values)}
    if regions is not None and named.names is not None and sorted(named.names) == sorted(regions):
        _, _, orders = named_regions.align_names({"fit": regions, str(path): named.names}, "file")
        order = orders[str(path)]
        if order is not None:
            digests.add(arrays_sha256(named_regions.take_regions(values, order)))
    return digests


def chosen_engine(engine: str, device: Any, n_regions: int, dtype: Any = "float32") -> str:
    """The engine ``engine`` ("auto" included) runs on ``device`` for ``n_regions`` regions in
    ``dtype`` ("float32", "float64" or a torch dtype)."""
    from delssome_norms.model.devices import check_device
    from delssome_norms.model.integrate import _choose_engine, _simulation_dtype

    return _choose_engine(engine, check_device(device), n_regions, _simulation_dtype(dtype))


def rows_to_simulate(
    row: int, batch_size: int | None, engine: str, device: Any, n_regions: int, dtype: Any = "float32"
) -> int:
    """Rows a batch must have for its row ``row`` to get the noise it had in the fit's batch.

    ``row + 1`` with the Philox engines, ``batch_size`` with the torch engine (it draws noise
    blocks for the whole batch).

    Raises
    ------
    InvalidInputError
        The torch engine without a ``batch_size`` (named ``--batch-size``).
    """
    if chosen_engine(engine, device, n_regions, dtype) != "torch":
        return row + 1
    if batch_size is None:
        raise InvalidInputError(
            "the torch engine draws the noise of the whole batch at once: row "
            f"{row}'s noise depends on the batch size too; give it",
            "--batch-size",
        )
    return batch_size


def simulate_batch_row(
    params,
    sc,
    timing,
    row: int,
    batch_size: int | None = None,
    *,
    n_dup: int,
    seed: int,
    device: Any = None,
    dtype: torch.dtype = torch.float32,
    engine: str = "auto",
    progress=None,
):
    """Simulate one parameter set as row ``row`` of a batch (see the module docstring).

    Parameters
    ----------
    params : PFICParams
        One parameter set: ``wEE, wEI, sigma`` of shape (1, N) or (N,), ``G`` of shape (1,) or a
        scalar; taken as float64 arrays, as the fit passes its candidates (float32 tensors
        would round the float32 coefficients differently).
    sc : array of shape (N, N)
        Scaled structural connectivity.
    timing : SimulationTiming
    row : int
        The row (0-based); its duplicate ``d`` is simulation ``row * n_dup + d``.
    batch_size : int, optional
        Rows of the batch being reproduced (needed by the torch engine; otherwise checked only).
    n_dup, seed, device, dtype, engine, progress
        As for :func:`~delssome_norms.model.simulate`.

    Returns
    -------
    SimulationResult
        Of the one parameter set (B = 1), with the noise of row ``row``.

    Raises
    ------
    InvalidInputError
        ``row`` outside the batch, or a batch that does not fit in the device's memory.
    """
    from delssome_norms.model import PFICParams, simulate
    from delssome_norms.model.devices import check_device
    from delssome_norms.model.integrate import SimulationResult, _simulation_dtype

    check_batch_row(row, batch_size)
    wEE, wEI, sigma = (np.asarray(x, dtype=np.float64).reshape(1, -1) for x in params[:3])
    n = wEE.shape[1]
    rows = rows_to_simulate(row, batch_size, engine, device, n, dtype)
    dev = check_device(device)
    dt = _simulation_dtype(dtype)
    check_rows_memory(rows, row, n_dup, n, timing.n_frames, dt, dev)
    batch = PFICParams(
        np.repeat(wEE, rows, axis=0),
        np.repeat(wEI, rows, axis=0),
        np.repeat(sigma, rows, axis=0),
        np.full(rows, float(np.asarray(params[3], dtype=np.float64).reshape(-1)[0])),
    )
    res = simulate(
        batch, sc, timing, n_dup=n_dup, seed=seed, device=dev, dtype=dt, engine=engine,
        progress=progress,
    )  # fmt: skip
    keep = slice(row, row + 1)
    return SimulationResult(
        **{k: getattr(res, k)[keep].clone() for k in ("bold", "s_e", "s_i", "r_e", "valid")},
        w_ie=res.w_ie[keep].clone(),
        ei_ratio=res.ei_ratio[keep].clone(),
    )


def check_rows_memory(
    rows: int, row: int, n_dup: int, n_regions: int, n_frames: int, dtype, device
) -> None:
    """Refuse, before anything is allocated, a batch of ``rows`` rows whose outputs exceed the
    device's memory (:func:`~delssome_norms.model.batch.check_simulation_memory`).

    Raises
    ------
    InvalidInputError
        Named ``--batch-row``: the rows before ``row`` are what makes the batch large.
    """
    from delssome_norms.model.batch import check_simulation_memory
    from delssome_norms.model.devices import check_device
    from delssome_norms.model.integrate import _simulation_dtype

    try:
        check_simulation_memory(
            rows, n_dup, n_regions, n_frames, _simulation_dtype(dtype), check_device(device)
        )
    except InvalidInputError as err:
        raise InvalidInputError(
            f"reproducing row {row} means simulating {rows} rows x {n_dup} duplicates in one "
            f"batch, and {err.problem.split('; ')[0]}; reproduce it on a device with more memory",
            "--batch-row",
        ) from None


def check_batch_row(row: int, batch_size: int | None) -> None:
    """Refuse a row that is not a whole number >= 0, or not below ``batch_size``.

    Raises
    ------
    InvalidInputError
        Named ``--batch-row`` (or ``--batch-size`` for a batch size below 1).
    """
    if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or row < 0:
        raise InvalidInputError(f"must be a whole number >= 0, got {row!r}", "--batch-row")
    if batch_size is None:
        return
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InvalidInputError(f"must be a whole number >= 1, got {batch_size!r}", "--batch-size")
    if row >= batch_size:
        raise InvalidInputError(
            f"row {row} is outside a batch of {batch_size} rows (rows 0 .. {batch_size - 1})",
            "--batch-row",
        )


def duplicate_means(res, row: int = 0) -> dict[str, np.ndarray]:
    """``EI_ratio``, ``S_E``, ``S_I``, ``r_E`` (N,) of one row: means over its valid duplicates
    with the fit's arithmetic (:func:`~delssome_norms.fit.stages.subject_result`): float64
    copies of the time averages, ``S_E / S_I`` per duplicate, summed in duplicate order."""
    s_e, s_i, r_e = (
        t[row].detach().cpu().to(torch.float64).numpy() for t in (res.s_e, res.s_i, res.r_e)
    )
    mask = res.valid[row].detach().cpu().numpy().astype(bool)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = s_e / s_i

    def mean_valid(x: np.ndarray) -> np.ndarray:
        return np.where(mask, x, 0.0).sum(axis=0) / mask.sum()

    return {
        "EI_ratio": mean_valid(ratio),
        "S_E": mean_valid(s_e),
        "S_I": mean_valid(s_i),
        "r_E": mean_valid(r_e),
    }


def largest_relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest ``|a / b - 1|`` (inf where only one is finite or ``b`` is 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return math.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs(a / b - 1.0)
    d = np.where(a == b, 0.0, d)
    return float(np.nanmax(np.where(np.isnan(d), np.inf, d))) if d.size else 0.0
