"""Without the shipped weights, the error advises a command that runs: train into another folder
and point $DELSSOME_NORMS_PRETRAINED (or --weights) at it; `surrogate train` refuses the shipped
folder itself (it advised exactly that refused command)."""

from __future__ import annotations

from pathlib import Path

import pytest

from delssome_norms.errors import NotYetAvailableError
from delssome_norms.surrogate import pretrained


def test_missing_shipped_weights_advise_another_folder(tmp_path: Path, monkeypatch) -> None:
    empty = tmp_path / "pretrained" / "delssome_dk68"  # where the weights would be shipped
    monkeypatch.setattr(pretrained, "shipped_weights_folders", lambda: (empty, empty))
    with pytest.raises(NotYetAvailableError) as err:
        pretrained._refuse_missing(empty, is_default=True)
    text = str(err.value)
    assert "surrogate train --data D --out W`" in text
    assert f"--out {empty}" not in text
    assert f"set {pretrained.ENV_VAR}=W (or pass --weights W)" in text
    assert pretrained.is_shipped_weights_folder(empty)  # what save_pretrained refuses
    # a folder of the user's own (e.g. $DELSSOME_NORMS_PRETRAINED) is named as the --out
    own = tmp_path / "mine"
    with pytest.raises(NotYetAvailableError, match=rf"--out {own}`, or set {pretrained.ENV_VAR}"):
        pretrained._refuse_missing(own, is_default=True)
