"""Command-line options built from the settings dataclasses (one source of every default).

A settings field becomes an option ``--<field-name>`` whose default is the field's default. Fields
of :class:`~delssome_norms.fit.FitSettings` and :class:`~delssome_norms.fit.cmaes.CMAESSettings`
carry ``"cli"`` metadata (help, and where needed flag, choices, ``nargs`` ...); fields of other
settings classes (surrogate generation and training) take their help from the caller. Commands
and benchmarks that need another default, help or flag pass ``overrides``; they never restate an
option.

Examples
--------
>>> import argparse
>>> from delssome_norms.fit import FitSettings
>>> p = argparse.ArgumentParser()
>>> add_settings_options(p, FitSettings, ["n_dup", "cmaes.generations"], {"n_dup": {"default": 2}})
>>> args = p.parse_args([])
>>> (args.n_dup, args.generations)
(2, 100)
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from delssome_norms.errors import InvalidInputError

FIT_OPTIONS: tuple[str, ...] = (
    "cmaes.generations",
    "cmaes.popsize",
    "cmaes.mu",
    "seed",
    "searches",
    "combine",
    "mode",
    "surrogate_weights",
    "device",
    "dtype",
)
"""FitSettings fields shown in the ``fit`` group of ``estimate-ei``/``cohort``, in help order."""

SIMULATION_OPTIONS: tuple[str, ...] = (
    "n_dup",
    "dt_train",
    "dt_val",
    "dt_test",
    "burn_in",
    "fcd_window",
    "warmup_steps",
    "test_top_k",
    "val_per_generation",
    "engine",
    "rate_gate",
    "stability_gate",
    "interval",
    "maps",
)
"""FitSettings fields of the advanced ``simulation`` group, in help order."""

NEGATED_FLAGS: tuple[str, ...] = ("stability_gate", "interval")
"""Boolean fields (default True) whose option is a ``--no-...`` flag that turns them off."""

TIMING_OPTIONS: tuple[str, ...] = ("burn_in", "fcd_window", "warmup_steps")
"""FitSettings fields that are also :class:`~delssome_norms.model.SimulationTiming` fields."""


def _field(cls: type, name: str) -> dataclasses.Field:
    """The dataclass field ``name`` of ``cls``; ``"a.b"`` is field ``b`` of field ``a``'s class."""
    head, _, rest = name.partition(".")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if head not in fields:
        raise KeyError(f"{cls.__name__} has no field {head!r}")
    f = fields[head]
    if not rest:
        return f
    return _field(f.default_factory, rest)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def option_spec(
    cls: type,
    name: str,
    override: Mapping[str, Any] | None = None,
    help_from: type | None = None,
) -> tuple[str, dict[str, Any]]:
    """The flag and ``add_argument`` keywords of settings field ``name`` of ``cls``.

    Parameters
    ----------
    cls : dataclass type
        Settings class, e.g. :class:`~delssome_norms.fit.FitSettings`.
    name : str
        Field name (``"cmaes.popsize"`` for a field of a nested settings field).
    override : mapping, optional
        Replaces any of ``flag``, ``default``, ``help`` and the argparse keywords.
    help_from : dataclass type, optional
        Where a field of ``cls`` has no ``"cli"`` metadata, the metadata of the same-named field
        of this class (e.g. FitSettings' for the surrogate generator's ``n_dup``); the default
        still comes from ``cls``.

    Returns
    -------
    flag : str
    kwargs : dict
        ``default`` is the field's default (``False`` for a ``store_true`` flag); ``help`` ends
        with ``(default <value>)`` unless it already speaks of its default or has none.
    """
    f = _field(cls, name)
    meta = f.metadata.get("cli")
    if meta is None and help_from is not None:
        try:
            meta = _field(help_from, name).metadata.get("cli")
        except KeyError:
            meta = None
    spec = {k: v for k, v in (meta or {}).items() if k != "group"}
    spec.update(override or {})
    flag = spec.pop("flag", None) or "--" + name.rpartition(".")[2].replace("_", "-")
    if spec.get("action") == "store_true":
        spec.setdefault("default", False)
    else:
        spec.setdefault("default", _default(f))
        default = spec["default"]
        if "type" not in spec and default is not None and not isinstance(default, bool):
            spec["type"] = type(default)
    text = spec.get("help")
    shown = spec["default"] is not None and spec.get("action") != "store_true"
    if text and shown and "default" not in text:
        spec["help"] = text + " (default %(default)s)"
    return flag, spec


def add_settings_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    names: Iterable[str],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    help_from: type | None = None,
) -> None:
    """Add one option per settings field (see :func:`option_spec`) to ``parser``.

    Parameters
    ----------
    parser : ArgumentParser or argument group
    cls : dataclass type
    names : iterable of str
        Fields, in the order the options are listed.
    overrides : mapping of str to mapping, optional
        Per field: another flag, default, help or argparse keyword (e.g. a benchmark's smaller
        budget, ``{"cmaes.generations": {"default": 20}}``).
    help_from : dataclass type, optional
        See :func:`option_spec`.
    """
    overrides = overrides or {}
    for name in names:
        flag, kwargs = option_spec(cls, name, overrides.get(name), help_from)
        parser.add_argument(flag, **kwargs)


def add_fit_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    include: Iterable[str] = (*FIT_OPTIONS, *SIMULATION_OPTIONS),
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Add :class:`~delssome_norms.fit.FitSettings` options to ``parser``.

    Parameters
    ----------
    parser : ArgumentParser or argument group
    include : iterable of str
        FitSettings fields to add, in this order (default: :data:`FIT_OPTIONS` and
        :data:`SIMULATION_OPTIONS`, the groups of ``estimate-ei`` and ``cohort``).
    overrides : mapping, optional
        See :func:`add_settings_options` (e.g. a benchmark's smaller budget).
    """
    from delssome_norms.fit import FitSettings

    add_settings_options(parser, FitSettings, include, overrides)


def _dest(cls: type, name: str, override: Mapping[str, Any] | None = None) -> str:
    flag, kwargs = option_spec(cls, name, override)
    return kwargs.get("dest") or flag.lstrip("-").replace("-", "_")


def settings_from_args(
    cls: type,
    args: argparse.Namespace,
    names: Iterable[str],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    **fixed: Any,
):
    """Build settings ``cls`` from the options :func:`add_settings_options` added for ``names``.

    ``overrides`` must be those given to :func:`add_settings_options` (they may rename a flag);
    ``fixed`` sets fields directly. An option given ``nargs`` is passed on as a tuple.

    Returns
    -------
    An instance of ``cls``.
    """
    overrides = overrides or {}
    values: dict[str, Any] = {}
    for name in names:
        override = overrides.get(name)
        value = getattr(args, _dest(cls, name, override))
        if isinstance(value, list):
            value = tuple(value)
        values[name] = value
    values.update(fixed)
    try:
        return cls(**values)
    except InvalidInputError as err:  # name the option, not the field
        # the field is the error's source, or the first word of a check that names its field
        # ("n_heads (3) must divide d_model (16)")
        first = re.match(r"\w+", err.problem or "")
        field = err.source if err.source in names else (first.group(0) if first else None)
        if field in values and field in names:
            flag = option_spec(cls, field, overrides.get(field))[0]
            raise InvalidInputError(err.problem, flag) from None
        raise


def fit_settings_from_args(args: argparse.Namespace, **fixed: Any):
    """Build :class:`~delssome_norms.fit.FitSettings` from the parsed FitSettings options.

    Options not on the parser keep the field defaults; ``fixed`` sets fields directly (e.g. a
    benchmark's ``dt_val=args.dt``). Only the dataclass checks run here; callers check devices
    and weights. ``--no-stability-gate``/``--no-interval`` give ``False``; ``--rate-gate`` a tuple.

    Returns
    -------
    FitSettings
    """
    from delssome_norms.fit import CMAESSettings, FitSettings

    values: dict[str, Any] = {}
    cmaes: dict[str, Any] = {}
    for name in (*FIT_OPTIONS, *SIMULATION_OPTIONS):
        dest = _dest(FitSettings, name)
        if not hasattr(args, dest):
            continue
        value = getattr(args, dest)
        if name in NEGATED_FLAGS:
            value = not value
        elif name == "rate_gate" and value is not None:
            value = tuple(value)
        if name.startswith("cmaes."):
            cmaes[name.partition(".")[2]] = value
        else:
            values[name] = value
    values.update(fixed)
    try:
        if cmaes and "cmaes" not in fixed:
            values["cmaes"] = CMAESSettings(**cmaes)
        return FitSettings(**values)
    except InvalidInputError as err:
        # the settings name their fields (right for Python callers); here, name the option
        field = f"cmaes.{err.source}" if err.source in cmaes else err.source
        if field in (*FIT_OPTIONS, *SIMULATION_OPTIONS):
            raise InvalidInputError(err.problem, option_spec(FitSettings, field)[0]) from None
        raise


def check_seconds(value: float | None, option: str) -> float | None:
    """``value`` [s] unless it is not a positive finite number (refused naming ``option``)."""
    import math

    if value is not None and not (math.isfinite(value) and value > 0):
        raise InvalidInputError(f"must be a positive number of seconds, got {value:g}", option)
    return value


class DeferredParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that adds deferred options only when it parses or prints help.

    The settings classes live in packages that import torch; a command whose options come from
    them defers adding those options (:func:`defer`), so that building the whole CLI (``--help``,
    ``validate``, ``charts``) imports none of them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deferred: list[Callable[[argparse.ArgumentParser], None]] = []

    def _add_deferred(self) -> None:
        while self._deferred:
            self._deferred.pop(0)(self)

    def parse_known_args(self, args=None, namespace=None):
        self._add_deferred()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._add_deferred()
        return super().format_usage()

    def format_help(self) -> str:
        self._add_deferred()
        return super().format_help()


def defer(parser: argparse.ArgumentParser, add: Callable[[argparse.ArgumentParser], None]) -> None:
    """Call ``add(parser)`` when ``parser`` is first used (at once unless it is deferred).

    ``add`` must add the parser's last options: they are listed after those added before.
    """
    if isinstance(parser, DeferredParser):
        parser._deferred.append(add)
    else:
        add(parser)


def _threads(value: str) -> int:
    """``--threads``: a number of CPU threads, at least 1."""
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of CPU threads, at least 1; got {value!r}"
        )
    return n


def add_threads_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, help: str) -> None:
    """``--threads N`` (validated by :func:`_threads`; default None: torch's own count)."""
    parser.add_argument("--threads", type=_threads, default=None, metavar="N", help=help)


def set_threads(n: int | None) -> None:
    """Use ``n`` CPU threads in torch and the simulator's kernels (None: leave the default)."""
    if n is not None:
        import torch

        torch.set_num_threads(n)
