"""``delssome-norms info``: the facts it reports follow the environment."""

from __future__ import annotations

import json

import torch

from delssome_norms import __version__
from delssome_norms.cli.main import main
from delssome_norms.model import _kernel


def _info(capsys, *extra: str) -> dict:
    assert main(["info", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_info_reports_versions_kernel_and_fcd_precision(capsys, monkeypatch) -> None:
    monkeypatch.delenv("DELSSOME_NORMS_FCD_PRODUCTS", raising=False)
    info = _info(capsys)
    assert info["versions"]["delssome_norms"] == __version__
    assert info["torch_threads"] == torch.get_num_threads()
    assert info["cpu_kernel"]["available"] == _kernel.available()
    bf16 = _kernel.available() and _kernel.has_bf16_fcd()
    assert info["fcd_products"]["float32_on_cpu"] == ("bfloat16" if bf16 else "float32")
    assert info["fcd_products"]["float32_on_cuda"] == "float32"
    assert info["cuda"]["available"] == torch.cuda.is_available()
    assert info["surrogate_weights"]["usable"] is True  # the shipped weights


def test_info_follows_the_environment(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DELSSOME_NORMS_NO_KERNEL", "1")
    monkeypatch.setenv("DELSSOME_NORMS_FCD_PRODUCTS", "bfloat16")
    monkeypatch.setenv("DELSSOME_NORMS_PRETRAINED", str(tmp_path / "nothing"))
    info = _info(capsys)
    assert info["cpu_kernel"] == {"available": False, "reason": "DELSSOME_NORMS_NO_KERNEL is set"}
    assert info["fcd_products"]["float32_on_cuda"] == "bfloat16"
    weights = info["surrogate_weights"]
    assert weights["usable"] is False and "nothing" in weights["reason"]
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "CPU kernel: not available" in text and "bfloat16 on CPU, bfloat16 on CUDA" in text
    assert "not usable" in text


def test_info_reports_a_misspelt_fcd_setting_that_stops_every_fit(capsys, monkeypatch) -> None:
    monkeypatch.setenv("DELSSOME_NORMS_FCD_PRODUCTS", "bf61")
    info = _info(capsys)  # the diagnostic command still runs (it stopped before its first line)
    f = info["fcd_products"]
    assert f["DELSSOME_NORMS_FCD_PRODUCTS"] == "bf61" and "float32_on_cpu" not in f
    assert "must be 'auto', 'float32' or 'bfloat16', got 'bf61'" in f["error"]
    assert main(["info"]) == 0
    assert "FCD products: INVALID SETTING, every fit will stop" in capsys.readouterr().out
    # another command still stops on it at once, with one line
    assert main(["charts", "fit", "--table", "missing.csv", "--out", "chart"]) == 2
    assert "$DELSSOME_NORMS_FCD_PRODUCTS: must be" in capsys.readouterr().err
