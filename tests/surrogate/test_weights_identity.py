"""Surrogate-mode results record their weights by content (SHA-256), not by folder name."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from delssome_norms.datasets import load_reference_subjects
from delssome_norms.errors import InvalidInputError
from delssome_norms.pipeline import EIEstimator
from delssome_norms.surrogate.pretrained import load_pretrained, save_pretrained

TINY = dict(generations=3, popsize=16, mu=4, n_dup=1, test_top_k=1,
            dt_train=0.006, dt_val=0.006, dt_test=0.006)  # fmt: skip


def _copy_weights(folder: Path, shift: float = 0.0) -> Path:
    """The shipped weights saved anew into ``folder`` (``shift`` added to one bias: "retrained")."""
    pre = load_pretrained()
    if shift:
        with torch.no_grad():
            next(p for n, p in pre.model.named_parameters() if n.endswith("bias")).add_(shift)
    meta = {k: v for k, v in pre.metadata.items() if k not in ("weights_sha256", "weights_file")}
    return save_pretrained(pre.model, folder, meta, template_sc=pre.template_sc)


def test_weights_retrained_in_place_are_not_mistaken_for_the_old(tmp_path: Path) -> None:
    subjects = load_reference_subjects()
    person = subjects.demographics.iloc[0]
    weights = _copy_weights(tmp_path / "w")
    assert load_pretrained(weights).metadata["weights_sha256"] is not None
    mode = stat.S_IMODE((weights / "model.safetensors").stat().st_mode)
    assert mode == stat.S_IMODE((weights / "metadata.json").stat().st_mode)  # not 0600
    est = EIEstimator(mode="surrogate", surrogate_weights=str(weights), out_dir=tmp_path / "fit", **TINY)
    args = (subjects.fc[0], subjects.fcd_cdf[0])
    kw = dict(tr=person.TR, scan_length=person.scan_length)
    est.fit(*args, **kw)
    sha = est.result_.provenance["settings"]["surrogate_weights_sha256"]
    assert sha == load_pretrained(weights).metadata["weights_sha256"]
    assert est.fit(*args, **kw).outcome_.status == "skipped"  # same weights: reused
    _copy_weights(weights, shift=1e-3)  # retrained into the same folder
    with pytest.raises(InvalidInputError, match="surrogate_weights_sha256"):
        est.fit(*args, **kw)
    est.set_params(overwrite=True)
    again = est.fit(*args, **kw).result_
    assert again.provenance["settings"]["surrogate_weights_sha256"] != sha
    assert np.isfinite(again.ei.to_numpy()).all()
