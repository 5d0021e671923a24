"""``delssome-norms demo``: the end-to-end demo on the packaged synthetic data."""

from __future__ import annotations

import argparse
from pathlib import Path

from delssome_norms.cli.main import add_command


def register(subparsers) -> None:
    """Add the ``demo`` subcommand."""
    p = add_command(
        subparsers,
        "demo",
        help="end-to-end demo: estimate E/I, fit growth charts, score patients, compare sexes",
        example="delssome-norms demo --out demo_output",
        description="Run the whole pipeline on the packaged SYNTHETIC reference data and write "
        "figures and report.md into --out (about 1.5-3 minutes on 2 CPU cores).",
    )
    p.add_argument(
        "--out",
        default="demo_output",
        help="output folder: new, empty, or written by an earlier demo (rewritten; a changed "
        "--seed, --mode or budget refits); other folders are refused (default: demo_output)",
    )
    p.add_argument("--subjects", type=int, default=2, help="subjects to fit in step 1 (default 2)")
    p.add_argument(
        "--generations",
        type=int,
        default=10,
        help="CMA-ES generations of the reduced Euler fit (default 10; a surrogate-mode demo runs "
        "the paper's 100 x 100 search)",
    )
    p.add_argument(
        "--popsize",
        type=int,
        default=20,
        help="CMA-ES candidates per generation of the reduced Euler fit (default 20)",
    )
    p.add_argument(
        "--mode",
        choices=("auto", "euler", "surrogate"),
        default="auto",
        help="train-stage evaluator; auto = surrogate when pretrained weights exist",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the fits (default 0)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print where the report is."""
    from delssome_norms.demo import DemoSettings, run_demo
    from delssome_norms.errors import InvalidInputError

    if not str(args.out).strip():
        raise InvalidInputError("is empty; name the folder to write the demo into", "--out")
    for name in ("subjects", "generations", "popsize"):
        if getattr(args, name) < 1:
            raise InvalidInputError(
                f"must be a positive integer, got {getattr(args, name)}", f"--{name}"
            )
    if args.seed < 0:
        raise InvalidInputError(f"must be a non-negative integer, got {args.seed}", "--seed")
    from delssome_norms.cli.estimate_cmd import check_device

    check_device(args.device)
    settings = DemoSettings(
        n_subjects=args.subjects, generations=args.generations, popsize=args.popsize,
        mode=args.mode, seed=args.seed, device=args.device,
    )  # fmt: skip
    summary = run_demo(args.out, settings)
    est = summary["estimation"]
    print(
        f"demo done: E/I of {est['n_subjects']} subject(s) in {est['mode']} mode "
        f"(median r vs truth {est['median_pearson_r']:.3f}); charts of {summary['charts']['n_targets']} "
        f"targets; report: {Path(args.out) / 'report.md'}"
    )
    return 0
