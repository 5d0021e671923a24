"""Output folders of the commands that write a folder of their own (``surrogate generate``,
``surrogate train``, ``charts fit``/``adapt``): checked before the work starts.

A command writes into a new folder, an empty one, or one it wrote before (recognised by its own
files, which a rerun continues or replaces). Any other folder (a subjects folder, a fit's
folder) is refused, naming it: the command's files would be mixed into someone else's.
Hidden entries (``.DS_Store``, the package's own temporaries and locks) do not count.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from delssome_norms.errors import InvalidInputError

MAX_NAMED = 3
"""Entries of a refused folder named in the error."""


def visible_entries(folder: Path) -> list[str]:
    """Sorted names of the folder's entries that are not hidden (``.name``), leaving out
    sub-folders that hold nothing visible (a writer killed while staging leaves
    ``<target>/.staged-*`` files: not another command's outputs)."""
    try:
        return sorted(
            e.name
            for e in folder.iterdir()
            if not e.name.startswith(".") and not (e.is_dir() and not visible_entries(e))
        )
    except OSError:  # unreadable: the command's own write reports it
        return []


def check_out_folder(
    out: str | Path,
    option: str,
    own: Sequence[str],
    what: str,
    advice: str = "give a new or empty folder",
) -> bool:
    """Refuse ``out`` when it is a file, or a folder holding other things than ``what``.

    Parameters
    ----------
    out : path
        The folder the command writes.
    option : str
        The option naming it (``--out``), the error's source.
    own : sequence of str
        Entries of which one marks an earlier output of this command (``manifest.json``).
    what : str
        That output in words (``a surrogate data set``), for the error.
    advice : str
        What to do instead, ending the error.

    Returns
    -------
    bool
        True when ``out`` holds an earlier output of the command (one of ``own``).
    """
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(f"{folder} exists and is a file, not a folder; {advice}", option)
    if not folder.is_dir():
        return False
    if any(os.path.lexists(folder / name) for name in own):
        return True
    found = visible_entries(folder)
    if not found:
        return False
    more = len(found) - MAX_NAMED
    shown = ", ".join(found[:MAX_NAMED]) + (f" and {more} more" if more > 0 else "")
    raise InvalidInputError(
        f"{folder} already holds other files ({shown}) and not {what} (no "
        f"{' or '.join(own)}): writing there would mix them with {what}; {advice}",
        option,
    )


def check_weights_out(out: str | Path, overwrite: bool, option: str = "--out") -> None:
    """Refuse a ``surrogate train --out`` that would replace weights it should not: the shipped
    weights (always), other existing weights without ``overwrite``, a folder of other files.

    Checked before the training, so that a refusal costs nothing.
    """
    from delssome_norms.surrogate.pretrained import (
        ENV_VAR,
        METADATA_FILE,
        TRAINING_LOG_FILE,
        WEIGHTS_FILE,
        is_shipped_weights_folder,
    )

    folder = Path(out)
    if is_shipped_weights_folder(folder):
        raise InvalidInputError(
            f"{folder} is the folder of the shipped default weights, which every surrogate-mode "
            "fit without --weights uses: train into another folder (e.g. --out my_weights) and "
            f"use it with --weights my_weights or ${ENV_VAR} (to replace the shipped weights "
            "themselves, copy the new folder's files over them by hand)",
            option,
        )
    weights = check_out_folder(
        folder,
        option,
        (METADATA_FILE, WEIGHTS_FILE, TRAINING_LOG_FILE),
        "surrogate weights",
        "give a new or empty folder",
    )
    if weights and not overwrite:
        default = _is_default_location(folder)
        raise InvalidInputError(
            f"{folder} already holds trained weights"
            + (f" (the default weights, ${ENV_VAR}, that surrogate-mode fits use)" if default else "")
            + ": give --overwrite to replace them, or train into another folder",
            option,
        )


def _is_default_location(folder: Path) -> bool:
    """``folder`` is where surrogate-mode fits look for weights when none are given."""
    from delssome_norms.surrogate.pretrained import default_pretrained_path

    try:
        return folder.resolve() == default_pretrained_path().resolve()
    except OSError:  # pragma: no cover - a symlink loop
        return False


GENERATE_FILES = ("manifest.json", "work")
"""What marks a ``surrogate generate`` folder: its manifest, or the checkpoints of a first run
interrupted before its first shard was saved."""


def check_generate_out(out: str | Path, option: str = "--out") -> None:
    """Refuse a ``surrogate generate --out`` that is a file or a folder of other files (an
    existing data set is continued)."""
    check_out_folder(
        out,
        option,
        GENERATE_FILES,
        "a surrogate data set",
        "give a new or empty folder (or the folder of the data set to continue)",
    )


def check_chart_out_folder(out: str | Path, option: str = "--out") -> None:
    """Refuse a ``charts fit``/``adapt --out`` that is a folder of other files (a saved chart
    is replaced; files a user added to a chart folder stay)."""
    from delssome_norms.norms.chart_io import CHART_FILES

    check_out_folder(
        out,
        option,
        tuple(reversed(CHART_FILES)),
        "a saved chart",
        "give a new or empty folder (or the folder of a chart to replace)",
    )
