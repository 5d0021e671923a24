"""Refusal of a curve fit that did not converge, with its cause, instead of NaN or wild curves.

The age curves of :func:`~delssome_norms.stats.sex_gap` and
:func:`~delssome_norms.stats.region_group_trajectories` are the whole output of one fit; when that
fit does not converge (typically too few people of one sex, or too unevenly spread over age, for
that sex's own spline curve: the curve then fits some people exactly and their sd runs to 0) the
curves are NaN or meaningless, so the table is refused with one message saying what to change.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence

import numpy as np

from delssome_norms.errors import ConvergenceWarning, InvalidInputError
from delssome_norms.stats.location_scale import LocationScaleFit


@contextlib.contextmanager
def quiet_fit() -> Iterator[None]:
    """Silence the generic non-convergence warning and the float overflow of a diverging fit
    (the caller checks ``converged`` and refuses with the cause)."""
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def require_converged(
    fit: LocationScaleFit,
    names: Sequence[str],
    *,
    what: str,
    cause: str,
    input_name: str = "table",
) -> None:
    """Raise :class:`InvalidInputError` if a column of ``fit`` did not converge.

    Parameters
    ----------
    fit : LocationScaleFit
        The fit, one column per entry of ``names``.
    names : sequence of str
        What each fitted column is (target or group name).
    what : str
        The model, for the message (e.g. ``"sex_gap: the model with its own age curves per sex"``).
    cause : str
        The likely cause and the ways out, for the message.
    input_name : str
        Name of the input in the message.
    """
    converged = np.asarray(fit.converged, dtype=bool)
    usable = converged & np.isfinite(fit.loglik)
    bad = [str(n) for n, ok in zip(names, usable) if not ok]
    if bad:
        raise InvalidInputError(
            f"{what} did not converge for {', '.join(bad)}, so its curves cannot be given; {cause}",
            input_name,
        )
