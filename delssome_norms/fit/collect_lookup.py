"""Where ``collect`` looks for a subject it did not find under its own folder name.

``collect`` takes each subject's results from ``<in_dir>/<subject_id>`` only (never from another
folder); these helpers find a finished fit of a missing subject in a folder of another name
(``estimate-ei --out-dir "A1 fit" --subject-id A1``) so that the warning can say where it is.
"""

from __future__ import annotations

from pathlib import Path

from delssome_norms.fit.outputs import read_run


def renamed_fits(
    missing: list[str], in_dir: Path, listed: set[str], explained: set[str] = frozenset()
) -> list[tuple[str, str]]:
    """(id, folder) for each missing id without a folder of its name (and not in ``explained``)
    whose finished fit lies in a sub-folder of ``in_dir`` of another name, one level down, that
    the demographics do not list: its ``run.json`` names the id (``subject_id``)."""
    wanted = {sid for sid in missing if sid not in explained and not (in_dir / sid).exists()}
    if not wanted or not in_dir.is_dir():
        return []
    found = []
    for d in sorted(in_dir.iterdir()):
        if d.name in listed or not d.is_dir():
            continue
        run = read_run(d)
        sid = None if run is None else str(run.get("subject_id"))
        if sid in wanted:
            found.append((sid, d.name))
    order = {sid: i for i, sid in enumerate(missing)}
    return sorted(found, key=lambda pair: order[pair[0]])


def renamed_hint(pairs: list[tuple[str, str]]) -> str:
    """'; A1 found in folder 'A1 fit' (its run.json names A1): ... rename the folder to A1' for
    the pairs of :func:`renamed_fits`, else ''."""
    if not pairs:
        return ""
    shown = ", ".join(
        f"{sid} found in folder {folder!r} (its run.json names {sid})" for sid, folder in pairs[:3]
    )
    more = f" (and {len(pairs) - 3} more)" if len(pairs) > 3 else ""
    if len(pairs) == 1:
        rename = f"rename the folder to {pairs[0][0]}"
    else:
        rename = "rename each folder to the subject id its run.json names"
    return f"; {shown}{more}: collect looks results up by folder name; {rename}"
