"""Checks of ``simulate``'s inputs against the fit they came from (its ``run.json``).

``simulate --params DIR/best_parameters.csv`` without ``--from-run`` takes the SC from ``--sc``
or the default template; a fit's ``run.json`` beside the parameters says which SC the fit used
(:func:`warn_sc_not_the_fits`). With ``--from-run``, parameters of another fit are named as the
first reason why the simulation differs from that fit's ``EI_ratio.csv``
(:func:`other_fits_parameters`).

Also simulate's ends other than success: an out-dir the run created is removed again when the
run fails and leaves it empty (:func:`discard_if_failed`), and Ctrl-C / SIGTERM get a line of
their own (:func:`stopped_message`): simulate has no checkpoint, so a rerun starts over.
"""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RUN_FILE = "run.json"
"""A fit's record, beside its ``best_parameters.csv``."""
PARAMETERS_FILE = "best_parameters.csv"
"""A fit's parameters, beside its ``run.json``."""


def _fit_sc(run_path: Path) -> dict[str, Any] | None:
    """The SC a fit's ``run.json`` records: ``sha256`` (``provenance.sc.sha256``), ``name``,
    ``template`` (``provenance.pipeline.sc`` "template ...") and ``file`` (``inputs.sc``); None
    when the file is unreadable or records no SC digest (an older version's fit)."""
    try:
        doc = json.loads(run_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    prov = doc.get("provenance") if isinstance(doc, dict) else None
    sc = prov.get("sc") if isinstance(prov, dict) else None
    if not isinstance(sc, dict) or not isinstance(sc.get("sha256"), str):
        return None
    pipeline = prov.get("pipeline") if isinstance(prov.get("pipeline"), dict) else {}
    inputs = doc.get("inputs") if isinstance(doc.get("inputs"), dict) else {}
    return {
        "sha256": sc["sha256"],
        "name": str(sc.get("name") or "?"),
        "template": str(pipeline.get("sc") or "").startswith("template"),
        "file": inputs.get("sc") if isinstance(inputs.get("sc"), str) else None,
    }


def warn_sc_not_the_fits(params: str, sc_raw, sc_name: str, sc_given: bool) -> None:
    """Warn (once, an :class:`~delssome_norms.errors.InputWarning`) when a fit's ``run.json``
    lies beside ``params`` and records another SC (by digest) than the one this simulation uses
    (``sc_raw``, unscaled, in the parameters' order): its E/I is then not the fit's. For
    ``simulate`` without ``--from-run``; ``simulate`` takes no maps (the parameters are
    regional), so the SC is the one input to compare."""
    from delssome_norms.errors import InputWarning
    from delssome_norms.io.digest import arrays_sha256

    run_path = Path(params).parent / RUN_FILE
    fit = _fit_sc(run_path) if run_path.is_file() else None
    if fit is None or arrays_sha256(sc_raw) == fit["sha256"]:
        return
    folder = run_path.parent
    if fit["template"]:
        use = "leave out --sc (the fit used the default DK68 template SC)"
    else:
        use = f"give --sc with the fit's SC ({RUN_FILE} inputs.sc: {fit['file'] or fit['name']})"
    warnings.warn(
        f"{run_path} beside --params records that this fit used the SC {fit['name']} "
        f"(provenance.sc.sha256 {fit['sha256'][:12]}...), but this simulation uses {sc_name}, "
        f"whose digest differs{'' if sc_given else ' (no --sc given)'}: its E/I is not the "
        f"fit's; give --from-run {folder} to simulate as the fit did (its SC, timing and noise), "
        f"or {use}",
        InputWarning,
        stacklevel=3,
    )


def other_fits_parameters(params: str | None, record) -> str | None:
    """Why the parameters ``params`` are not the fit's of ``record`` (``--from-run``): their
    values differ from those of the ``best_parameters.csv`` beside its ``run.json`` (the fit
    records no digest of its parameters; the file is what it wrote); None when they are the same
    parameters (``params`` is that file, or a copy) or there is no such file to compare with."""
    import numpy as np

    from delssome_norms.errors import InvalidInputError
    from delssome_norms.io import file_sha256, read_parameters

    if params is None:
        return None
    own = Path(record.folder) / PARAMETERS_FILE
    if not own.is_file():
        return None  # nothing to compare with: the general reasons stand
    if Path(params).resolve() == own.resolve() or file_sha256(params) == file_sha256(own):
        return None
    try:
        mine, theirs = read_parameters(params), read_parameters(own)
    except InvalidInputError:
        theirs = None
    if theirs is not None and all(
        np.shape(mine[k]) == np.shape(theirs[k]) and np.array_equal(mine[k], theirs[k])
        for k in ("wEE", "wEI", "sigma", "G")
    ):
        return None  # the same values (a copy written otherwise)
    return (
        f"--params {params} is not this fit's parameters file (its values differ from "
        f"{own}, which the fit wrote beside its {RUN_FILE}): the fit's EI_ratio.csv describes "
        f"other parameters; leave out --params to simulate the fit's own"
    )


def new_folders(path) -> list[Path]:
    """The folders of the out-dir ``path`` that do not exist yet, deepest first: those that
    :func:`~delssome_norms.io.check_out_dir` will create. The path is resolved first (``..``
    and links taken as the system takes them): ``ghost/../folder`` names ``folder``, which is
    not new when it exists, so an existing folder is never listed (nor removed on a failure)."""
    folder = Path(path).resolve()
    missing = []
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


@contextlib.contextmanager
def discard_if_failed(created: list[Path]) -> Iterator[None]:
    """On any failure (an error, Ctrl-C) inside, remove the folders ``created`` by this run
    (:func:`new_folders`, deepest first) while they hold nothing but the out-dir lock file.

    Entered inside the :class:`~delssome_norms.io.OutDirLock` of ``created[0]``: its lock file
    is unlinked while the lock is held. A second run that opened the file just before cannot
    write there: its lock is refused while this one holds it, and if it takes the lock of the
    unlinked file after this one ends, the folder is gone and its writes fail with an error.
    The lock file of a folder that stays is left as it is (:mod:`delssome_norms.io.guard`: the
    lock is taken on a file that outlives its holders).
    The folders removed are recorded on the exception (``removed_folders``) for
    :func:`stopped_message`."""
    try:
        yield
    except BaseException as err:
        if created:
            from delssome_norms.io.guard import LOCK_FILE

            removed: list[Path] = []
            with contextlib.suppress(OSError):  # the folder is left as it is
                if [p.name for p in created[0].iterdir()] == [LOCK_FILE]:
                    (created[0] / LOCK_FILE).unlink()
                    for folder in created:
                        folder.rmdir()  # fails (and stops) where something else was put
                        removed.append(folder)
            with contextlib.suppress(AttributeError, TypeError):
                err.removed_folders = removed  # type: ignore[attr-defined]
        raise


def stopped_message(err: KeyboardInterrupt, out_dir, writing: bool) -> int:
    """Print the line of a ``simulate`` stopped by Ctrl-C or SIGTERM (``err``) and return the
    exit status (130, 143). ``writing``: stopped while writing its outputs (``write_together``:
    the folder holds the earlier run's files or some of the new ones, never a mixture)."""
    from delssome_norms.cli.main import Terminated

    how = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"
    if writing:
        what = (
            f"simulate was stopped while writing its outputs: {out_dir} holds either the outputs "
            "of an earlier run or some of the new ones (never a mixture)"
        )
    elif getattr(err, "removed_folders", None):
        removed = ", ".join(str(p) for p in err.removed_folders)  # type: ignore[attr-defined]
        what = (
            f"simulate was stopped before writing anything and removed the folder(s) it had "
            f"created for {out_dir} ({removed})"
        )
    elif not Path(out_dir).exists():
        what = f"simulate was stopped before writing anything ({out_dir} was not created)"
    else:
        what = (
            f"simulate was stopped and nothing was written to {out_dir} (the outputs of an "
            "earlier run there are kept)"
        )
    print(
        f"delssome-norms: {how}; {what}; simulate has no checkpoint: rerun the same command to "
        "simulate again from the start",
        file=sys.stderr,
    )
    return 143 if isinstance(err, Terminated) else 130
