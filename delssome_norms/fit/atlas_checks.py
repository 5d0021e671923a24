"""Checks and messages of fits on atlases other than DK68 (cohort and lockstep groups).

* :func:`check_surrogate_run`: before any work of a surrogate-mode cohort, refuse weights trained
  for another number of regions (once, naming ``--mode``/``--weights``), then compare the timing
  with the weights' cover (:func:`~delssome_norms.fit.evaluate.check_surrogate_cover`).
* :func:`no_maps_message`: the warning of a fit without myelin/gradient maps, which says that the
  shipped maps are DK68-only when the atlas is another.
* :func:`infeasible_maps`: why no candidate of a subject's search space can be valid (the
  message of :meth:`~delssome_norms.fit.parameterisation.Parameterisation.check_feasible`), so
  that such a subject fails alone in its lockstep group.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

from delssome_norms.datasets import DK68_REGIONS, load_default_template
from delssome_norms.errors import InvalidInputError
from delssome_norms.fit.evaluate import check_surrogate_cover

if TYPE_CHECKING:
    from delssome_norms.fit.evaluate import SurrogateBackend
    from delssome_norms.fit.parameterisation import Parameterisation
    from delssome_norms.fit.settings import FitSettings

N_DK68 = len(DK68_REGIONS)

MAPS_SOURCE = {
    "given": "gradient map",
    "cohort FC": "gradient of the cohort's group-average FC",
    "subject FC": "gradient of the subject's FC",
}
"""How a failure names the gradient of each design source of
:func:`~delssome_norms.fit.lockstep.build_space`."""


def surrogate_weights_regions(
    settings: FitSettings, surrogate: SurrogateBackend | None
) -> tuple[int, str, str] | None:
    """``(N, atlas, where)`` of the weights a surrogate-mode fit would use, or None (Euler mode,
    no backend, or a backend without ``weights_regions``; the DELSSOME one has it)."""
    if settings.mode != "surrogate" or surrogate is None:
        return None
    regions = getattr(surrogate, "weights_regions", None)  # optional in the backend protocol
    if not callable(regions):
        return None
    n, atlas, where = regions(settings.surrogate_weights)
    return int(n), str(atlas), str(where)


def check_surrogate_run(
    settings: FitSettings,
    n_regions: int,
    tr: Sequence[float],
    scan_length: Sequence[float],
    surrogate: SurrogateBackend | None,
    subject_ids: Sequence[str] | None = None,
    sc_files: Sequence[str | None] = (),
) -> None:
    """Before any work of a surrogate-mode cohort: refuse weights trained for another N (every
    subject would fail with the same message) or another SC than the subjects' (``sc_files``:
    each row's SC file, None for the default template; checked with the backend's optional
    ``check_sc(weights, sc, any_order=)``, each file read once), then check the timing cover
    (a warning naming a few of the ``subject_ids`` of each TR and scan length outside it).

    Raises
    ------
    InvalidInputError
        The weights' N differs from the cohort's (``n_regions``, from its SC), naming
        ``--mode`` and ``--weights``.
    """
    found = surrogate_weights_regions(settings, surrogate)
    if found is not None and found[0] != int(n_regions):
        n_weights, atlas, where = found
        raise InvalidInputError(
            f"the surrogate weights ({where}) were trained for N={n_weights} regions ({atlas}), "
            f"but this cohort's SC has N={int(n_regions)} regions, so no subject could be "
            "fitted; fit with --mode euler, or pass --weights trained for this atlas "
            "(delssome-norms surrogate generate --sc YOUR_SC, then surrogate train)",
            "--mode surrogate",
        )
    check_sc = getattr(surrogate, "check_sc", None)  # optional in the backend protocol
    if settings.mode == "surrogate" and check_sc is not None:
        for path in dict.fromkeys(sc_files):  # a file's values alone: any region order passes
            sc = load_default_template().sc if path is None else _read_sc_or_none(path)
            if sc is None:
                continue  # its subjects fail alone, listed in failures.csv, as in Euler mode
            try:
                check_sc(settings.surrogate_weights, sc, any_order=path is not None)
            except InvalidInputError as err:  # name the cohort's SC, not "the subject's"
                which = "the default template SC (rows without sc)" if path is None else str(path)
                text = err.problem if err.source == which else f"cohort SC {which}: {err.problem}"
                text += "; in a manifest: leave its sc cells empty, or name the template SC"
                raise InvalidInputError(text, err.source) from None
    check_surrogate_cover(settings, tr, scan_length, surrogate, subject_ids)


def _read_sc_or_none(path: str):
    """The SC at ``path``, or None when it does not read (a bad file is its subjects' failure,
    not the cohort's)."""
    from delssome_norms.io import read_sc

    try:
        with warnings.catch_warnings():  # the subjects' own reads warn
            warnings.simplefilter("ignore")
            return read_sc(path)
    except (InvalidInputError, OSError, ValueError):
        return None


def no_maps_message(n_regions: int, whose: str, count: int | None = None) -> str:
    """The warning of fits without myelin/gradient maps (``whose``: where the gradient comes
    from, e.g. "the subject's FC"); for another atlas it says the shipped maps are DK68-only."""
    who = "no myelin/gradient maps given"
    if count is not None:  # a cohort's warning counts its subjects without maps
        who = f"{count} subject(s) have no myelin/gradient maps"
    text = f"{who}: using the [1, gradient] parameterisation with the principal gradient of {whose}"
    if int(n_regions) != N_DK68:
        text += (
            f" (the shipped myelin and gradient maps are DK68-only, {N_DK68} regions, and this "
            f"atlas has {int(n_regions)}; give maps of this atlas, --myelin/--gradient or the "
            "manifest's myelin/gradient columns, for the [1, myelin, gradient] design)"
        )
    return text


def check_maps_feasible(
    space: Parameterisation, design: str, names: dict[str, str] | None = None
) -> None:
    """Raise when no candidate of ``space`` can be valid, naming the gradient's source.

    ``design`` is :func:`~delssome_norms.fit.lockstep.build_space`'s description; its gradient
    source is named by ``names`` (default :data:`MAPS_SOURCE`; the CLI names options instead).

    Raises
    ------
    InvalidInputError
        From :meth:`~delssome_norms.fit.parameterisation.Parameterisation.check_feasible`.
    """
    source = design.split("gradient: ", 1)[-1]
    spelled = {**MAPS_SOURCE, **(names or {})}
    space.check_feasible(spelled.get(source, source))


def infeasible_maps(space: Parameterisation, design: str) -> str | None:
    """Why no candidate of ``space`` can be valid (``"<maps>: <reason>"``), or None when some can
    (:func:`check_maps_feasible` as a message, so that a lockstep subject fails alone)."""
    try:
        check_maps_feasible(space, design)
    except InvalidInputError as exc:
        return str(exc)
    return None


__all__ = [
    "check_maps_feasible",
    "check_surrogate_run",
    "infeasible_maps",
    "no_maps_message",
    "surrogate_weights_regions",
]
