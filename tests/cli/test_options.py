"""Command-line options come from the settings fields: same defaults, one source."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys

import pytest

from delssome_norms.cli import options
from delssome_norms.cli.main import build_parser

ESTIMATE = ["estimate-ei", "--fc", "f.csv", "--fcd-cdf", "c.csv", "--tr", "0.72", "--out-dir", "o"]


def test_estimate_and_cohort_defaults_are_the_settings_defaults() -> None:
    from delssome_norms.fit import FitSettings

    parser = build_parser()
    for argv in (ESTIMATE, ["cohort", "--manifest", "m.csv", "--out-dir", "o"]):
        assert options.fit_settings_from_args(parser.parse_args(argv)) == FitSettings()


def test_every_option_reaches_its_settings_field() -> None:
    from delssome_norms.fit import CMAESSettings, FitSettings

    argv = [*ESTIMATE, "--generations", "7", "--popsize", "9", "--mu", "3", "--seed", "4"]
    argv += ["--searches", "2", "--mode", "surrogate", "--weights", "w", "--device", "cuda:1"]
    argv += ["--dtype", "float64", "--n-dup", "2", "--dt-train", "0.01", "--dt-val", "0.02"]
    argv += ["--dt-test", "0.001", "--burn-in", "30", "--fcd-window", "50", "--warmup-steps", "10"]
    argv += ["--test-top-k", "2", "--val-per-generation", "4", "--engine", "torch"]
    argv += ["--rate-gate", "2.7", "3.3", "--no-stability-gate", "--maps", "fc-gradient"]
    argv += ["--no-interval"]
    settings = options.fit_settings_from_args(build_parser().parse_args(argv))
    assert settings == FitSettings(
        cmaes=CMAESSettings(generations=7, popsize=9, mu=3),
        seed=4,
        searches=2,
        mode="surrogate",
        surrogate_weights="w",
        device="cuda:1",
        dtype="float64",
        n_dup=2,
        dt_train=0.01,
        dt_val=0.02,
        dt_test=0.001,
        burn_in=30.0,
        fcd_window=50,
        warmup_steps=10,
        test_top_k=2,
        val_per_generation=4,
        engine="torch",
        rate_gate=(2.7, 3.3),
        stability_gate=False,
        interval=False,
        maps="fc-gradient",
    )


def test_surrogate_defaults_are_the_settings_defaults() -> None:
    from delssome_norms.cli import surrogate_cmd
    from delssome_norms.surrogate.generate import GenerateSettings
    from delssome_norms.surrogate.network import SurrogateConfig
    from delssome_norms.surrogate.train import TrainSettings

    parser = build_parser()
    args = parser.parse_args(["surrogate", "generate", "--out", "d"])
    assert (
        options.settings_from_args(
            GenerateSettings, args, surrogate_cmd.GENERATE_OPTIONS, surrogate_cmd.GENERATE_HELP
        )
        == GenerateSettings()
    )
    args = parser.parse_args(["surrogate", "train", "--data", "d", "--out", "w"])
    assert (
        options.settings_from_args(
            TrainSettings, args, surrogate_cmd.TRAIN_OPTIONS, surrogate_cmd.TRAIN_HELP
        )
        == TrainSettings()
    )
    config = options.settings_from_args(
        SurrogateConfig, args, surrogate_cmd.NETWORK_OPTIONS, surrogate_cmd.NETWORK_HELP
    )
    assert config == SurrogateConfig()
    assert (args.heads, args.layers) == (SurrogateConfig().n_heads, SurrogateConfig().n_layers)


def test_overrides_change_default_flag_and_help_not_the_rest() -> None:
    from delssome_norms.fit import FitSettings

    p = argparse.ArgumentParser()
    options.add_fit_options(
        p,
        ("cmaes.generations", "dt_train", "stability_gate"),
        {"cmaes.generations": {"default": 20}, "dt_train": {"flag": "--dt", "default": 0.006}},
    )
    args = p.parse_args([])
    assert (args.generations, args.dt, args.no_stability_gate) == (20, 0.006, False)
    text = p.format_help()
    assert "CMA-ES generations (default 20)" in text and "(default 0.006)" in text
    settings = options.fit_settings_from_args(args, dt_train=args.dt)
    assert settings.cmaes.generations == 20 and settings.dt_train == 0.006
    assert settings.dt_val == FitSettings().dt_val and settings.stability_gate is True
    with pytest.raises(KeyError, match="no field"):
        options.add_fit_options(p, ("not_a_field",))


def test_every_settings_option_has_help() -> None:
    from delssome_norms.fit import FitSettings

    for name in (*options.FIT_OPTIONS, *options.SIMULATION_OPTIONS):
        flag, kwargs = options.option_spec(FitSettings, name)
        assert flag.startswith("--") and kwargs.get("help"), name
    cli_fields = {f.name for f in dataclasses.fields(FitSettings) if "cli" in f.metadata}
    assert cli_fields == {n for n in (*options.FIT_OPTIONS, *options.SIMULATION_OPTIONS) if "." not in n}


def test_building_the_cli_imports_no_torch() -> None:
    code = (
        "import sys; from delssome_norms.cli.main import build_parser; "
        "build_parser().format_help(); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_chart_options_default_to_the_growth_chart_parameters() -> None:
    from delssome_norms.norms import GrowthChart

    args = build_parser().parse_args(["charts", "fit", "--table", "t.csv", "--out", "c"])
    params = GrowthChart().get_params()
    for name in ("family", "mu_df", "sigma_df", "site_column", "algorithm", "max_iter"):
        assert getattr(args, name) == params[name], name
    assert (args.no_mu_sex, args.no_sigma_sex) == (False, False)
    args = build_parser().parse_args(
        ["charts", "compare", "--table", "t.csv", "--out", "b.csv", "--sigma-df", "5"]
    )
    assert (args.sigma_df, args.site_column) == (5, params["site_column"])


@pytest.mark.parametrize(
    ("argv", "field", "flag"),
    [(["--seed", "-1"], "seed", "--seed"), (["--popsize", "1"], "popsize", "--popsize"),
     (["--n-dup", "0"], "n_dup", "--n-dup"), (["--rate-gate", "3", "2"], "rate_gate", "--rate-gate")],
)  # fmt: skip
def test_settings_errors_name_the_field_in_python_and_the_option_in_the_cli(argv, field, flag) -> None:
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit import CMAESSettings, FitSettings

    args = build_parser().parse_args([*ESTIMATE, *argv])
    with pytest.raises(InvalidInputError) as cli:
        options.fit_settings_from_args(args)
    assert cli.value.source == flag
    with pytest.raises(InvalidInputError) as py:
        if field == "popsize":
            CMAESSettings(popsize=1)
        else:
            FitSettings(**{field: {"seed": -1, "n_dup": 0, "rate_gate": (3.0, 2.0)}[field]})
    assert py.value.source == field
