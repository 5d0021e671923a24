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


def test_time_fcd_measures_both_precisions_and_names_the_setting(capsys, monkeypatch) -> None:
    """``--time-fcd``: bfloat16 products were about 1.5x slower than float32 on one AVX512-BF16
    host and 2.6-3x faster on another, which the CPU flags that ``auto`` reads cannot tell."""
    from delssome_norms.cli import info_cmd

    monkeypatch.delenv("DELSSOME_NORMS_FCD_PRODUCTS", raising=False)
    t = _info(capsys, "--time-fcd")["fcd_timing"]
    if not (_kernel.available() and _kernel.has_bf16_fcd()):
        assert t == {"timed": False, "reason": "no bfloat16 FCD kernel on this CPU: float32 is used"}
    else:
        assert t["timed"] and t["simulations"] == 8 and t["frames"] == 1200
        assert t["seconds_float32"] > 0 and t["seconds_bfloat16"] > 0
        slower, faster = sorted([t["seconds_float32"], t["seconds_bfloat16"]], reverse=True)
        assert t["faster"] == ("float32" if t["seconds_float32"] == faster else "bfloat16")
        assert abs(t["ratio"] - slower / faster) < 1e-12
    # the advice: only when the faster precision is not the one in use
    timed = {"timed": True, "simulations": 8, "frames": 1200, "seconds_float32": 0.2,
             "seconds_bfloat16": 0.3, "faster": "float32", "ratio": 1.5}  # fmt: skip
    monkeypatch.setattr(info_cmd, "time_fcd_products", lambda: timed)
    for env, advised in (("bfloat16", True), ("float32", False)):
        monkeypatch.setenv("DELSSOME_NORMS_FCD_PRODUCTS", env)
        assert main(["info", "--time-fcd"]) == 0
        text = capsys.readouterr().out
        assert "float32 products 0.20 s, bfloat16 0.30 s; float32 is 1.5x faster here" in text
        assert ("export DELSSOME_NORMS_FCD_PRODUCTS=float32" in text) == advised


def test_time_fcd_without_the_bfloat16_kernel_says_so(capsys, monkeypatch) -> None:
    monkeypatch.delenv("DELSSOME_NORMS_FCD_PRODUCTS", raising=False)
    monkeypatch.setattr(_kernel, "has_bf16_fcd", lambda: False)
    t = _info(capsys, "--time-fcd")["fcd_timing"]
    assert t == {"timed": False, "reason": "no bfloat16 FCD kernel on this CPU: float32 is used"}
