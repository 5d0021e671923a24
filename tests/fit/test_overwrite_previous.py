"""``--overwrite`` sets finished results aside in ``previous/`` and never loses a complete one."""

from __future__ import annotations

import json
from pathlib import Path

from delssome_norms.fit.outputs import OUTPUT_FILES, PREVIOUS_DIR, previous_note, set_aside_previous


def _write(folder: Path, tag: str, complete: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_FILES[:-1]:
        (folder / name).write_text(tag)
    if complete:
        (folder / "run.json").write_text(json.dumps({"status": "complete", "tag": tag}))


def test_a_complete_result_is_kept_and_partial_pieces_never_replace_it(tmp_path: Path) -> None:
    d = tmp_path / "s1"
    _write(d, "old", complete=True)
    set_aside_previous(d)
    assert not any((d / n).exists() for n in OUTPUT_FILES)
    assert (d / PREVIOUS_DIR / "EI_ratio.csv").read_text() == "old"
    assert "kept in" in previous_note(d)
    # a refit killed before its run.json: its pieces are dropped, the complete old result stays
    _write(d, "partial", complete=False)
    set_aside_previous(d)
    assert not any((d / n).exists() for n in OUTPUT_FILES)
    assert (d / PREVIOUS_DIR / "EI_ratio.csv").read_text() == "old"
    assert json.loads((d / PREVIOUS_DIR / "run.json").read_text())["tag"] == "old"
    # a later complete result replaces it in turn
    _write(d, "newer", complete=True)
    set_aside_previous(d)
    assert (d / PREVIOUS_DIR / "EI_ratio.csv").read_text() == "newer"
