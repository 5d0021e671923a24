"""``delssome-norms surrogate generate|train|evaluate``: the DELSSOME surrogate's data and weights."""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from delssome_norms.cli.main import add_command


def _threads(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("--threads must be >= 1")
    return n


def register(subparsers) -> None:
    """Add the ``surrogate`` command and its ``generate``, ``train`` and ``evaluate`` actions."""
    p = add_command(
        subparsers,
        "surrogate",
        help="DELSSOME surrogate: generate training data, train weights, evaluate them",
        example="delssome-norms surrogate train --data surrogate_data --out pretrained/my_weights",
        description="Training data, training and evaluation of the DELSSOME cost predictor used "
        "by `estimate-ei --mode surrogate` (docs/science.md §6).",
    )
    actions = p.add_subparsers(dest="action", metavar="<action>")
    p.set_defaults(func=lambda args: p.print_help() or 0)

    g = add_command(
        actions,
        "generate",
        help="run Euler CMA-ES on synthetic subjects and record every candidate",
        example="delssome-norms surrogate generate --out surrogate_data --subjects 32 "
        "--generations 16 --device cpu",
        description="Create (or continue) a training data set: synthetic subjects simulated on "
        "the default template, the fitter's Euler train stage on each lockstep group, every "
        "(candidate, losses) pair stored as npz shards with a manifest.json. Rerunning the same "
        "command continues an interrupted data set.",
    )
    g.add_argument("--out", required=True, help="data-set folder")
    g.add_argument("--subjects", type=int, default=32, help="synthetic subjects (default 32)")
    g.add_argument("--group-size", type=int, default=4, help="subjects in lockstep (default 4)")
    g.add_argument("--generations", type=int, default=20, help="CMA-ES generations (default 20)")
    g.add_argument("--popsize", type=int, default=100, help="candidates per generation (default 100)")
    g.add_argument("--tr", type=float, default=0.72, help="repetition time, s (default 0.72)")
    g.add_argument(
        "--scan-lengths",
        type=float,
        nargs="+",
        default=None,
        metavar="S",
        help="scan lengths in seconds, cycled over groups (default 172.8 259.2)",
    )
    g.add_argument("--dt", type=float, default=0.005, help="integration step, s (default 0.005)")
    g.add_argument("--burn-in", type=float, default=None, help="burn-in, s (default ceil(72/TR) TR)")
    g.add_argument("--warmup-steps", type=int, default=5000, help="warm-up steps (default 5000)")
    g.add_argument("--fcd-window", type=int, default=None, help="FCD window, frames (default 60 s)")
    g.add_argument("--n-dup", type=int, default=3, help="noise duplicates per candidate (default 3)")
    g.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    g.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    g.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    g.add_argument("--threads", type=_threads, default=None, help="torch CPU threads")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=run_generate)

    t = add_command(
        actions,
        "train",
        help="train the cost predictor on a data set and save weights",
        example="delssome-norms surrogate train --data surrogate_data --out pretrained/delssome_dk68",
        description="Split the data set by subject (train/validation/test), train with MSE, Adam, "
        "exponential learning-rate decay and early stopping, and write model.safetensors, "
        "metadata.json (with the held-out metrics) and training_log.json to --out.",
    )
    t.add_argument("--data", required=True, help="data-set folder (from `surrogate generate`)")
    t.add_argument("--out", required=True, help="output folder for the weights")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch-size", type=int, default=256)
    t.add_argument("--lr", type=float, default=1e-3, help="initial learning rate (default 1e-3)")
    t.add_argument("--lr-decay", type=float, default=0.9, help="learning-rate decay per epoch")
    t.add_argument("--patience", type=int, default=5, help="early-stopping patience in epochs")
    t.add_argument("--val-fraction", type=float, default=0.15)
    t.add_argument("--test-fraction", type=float, default=0.15)
    t.add_argument("--candidates-per-epoch", type=int, default=None)
    t.add_argument(
        "--cross-fraction",
        type=float,
        default=0.5,
        help="share of each batch made of cross pairs (candidate x another candidate's simulated "
        "scan) when the data hold candidate summaries (default 0.5; 0 disables)",
    )
    t.add_argument("--dropout", type=float, default=0.0, help="dropout (default 0)")
    t.add_argument("--weight-decay", type=float, default=0.0, help="Adam weight decay (default 0)")
    t.add_argument("--d-model", type=int, default=32, help="token width (default 32)")
    t.add_argument("--heads", type=int, default=2, help="attention heads (default 2)")
    t.add_argument("--layers", type=int, default=2, help="encoder layers (default 2)")
    t.add_argument("--fcd-bins", type=int, default=100, help="FCD density groups (default 100)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="cpu")
    t.add_argument("--threads", type=_threads, default=None, help="torch CPU threads")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=run_train)

    e = add_command(
        actions,
        "evaluate",
        help="metrics of trained weights on a data set (Pearson, Spearman, top-10 overlap)",
        example="delssome-norms surrogate evaluate --weights pretrained/delssome_dk68 --data held_out",
        description="Predict every candidate of a data set with trained weights and print the "
        "metrics report as JSON (also written to --out if given).",
    )
    e.add_argument("--data", required=True, help="data-set folder")
    e.add_argument("--weights", default=None, help="pretrained folder (default: shipped weights)")
    e.add_argument("--out", default=None, help="write the metrics JSON here")
    e.add_argument("--device", default="cpu")
    e.add_argument("--threads", type=_threads, default=None, help="torch CPU threads")
    e.set_defaults(func=run_evaluate)


def _set_threads(n: int | None) -> None:
    if n is not None:
        import torch

        torch.set_num_threads(n)


def run_generate(args: argparse.Namespace) -> int:
    """Generate or continue a training data set."""
    from delssome_norms.surrogate.generate import (
        DEFAULT_SCAN_LENGTHS,
        GenerateSettings,
        generate_dataset,
    )

    _set_threads(args.threads)
    settings = GenerateSettings(
        n_subjects=args.subjects,
        group_size=args.group_size,
        generations=args.generations,
        popsize=args.popsize,
        tr=args.tr,
        scan_lengths=tuple(args.scan_lengths or DEFAULT_SCAN_LENGTHS),
        dt=args.dt,
        burn_in=args.burn_in,
        warmup_steps=args.warmup_steps,
        fcd_window=args.fcd_window,
        n_dup=args.n_dup,
        seed=args.seed,
        device=args.device,
        dtype=args.dtype,
    )
    report = generate_dataset(args.out, settings, progress=not args.quiet, log=print)
    print(
        f"{len(report.groups_done)} group(s) generated, {len(report.groups_skipped)} already present; "
        f"{report.candidates} new candidates in {report.seconds:.0f} s -> {args.out}"
    )
    return 0


def _training_metadata(data, result, settings, config, seconds: float) -> tuple[dict, object]:
    """Metadata of trained weights (atlas, timing covered, data summary, training, metrics)."""
    import numpy as np
    import torch

    from delssome_norms.datasets import DK68_REGIONS, load_default_template
    from delssome_norms.model import scale_sc

    train_rows = result.split["train"]
    summary = data.summary()
    template_sc = None
    template = {"source": "subject-specific SC (no single template)"}
    if np.allclose(data.sc, data.sc[0], atol=0, rtol=0):
        template_sc = data.sc[0]
        default = np.asarray(scale_sc(load_default_template().sc), dtype=np.float32)
        is_default = default.shape == template_sc.shape and np.allclose(default, template_sc, atol=1e-7)
        template = {
            "source": load_default_template().source if is_default else data.info.get("template", "?"),
            "scaled_max": float(template_sc.max()),
        }
    n = data.n_regions
    gen_settings = data.info.get("settings", {})
    meta = {
        "atlas": "DK68" if n == 68 else f"N{n}",
        "regions": list(DK68_REGIONS) if n == 68 else None,
        "template": template,
        "timing": {
            "tr_range": [float(data.tr.min()), float(data.tr.max())],
            "scan_length_range": [float(data.scan_length.min()), float(data.scan_length.max())],
            "dt": gen_settings.get("dt"),
            "burn_in": gen_settings.get("burn_in"),
            "warmup_steps": gen_settings.get("warmup_steps"),
            "n_dup": gen_settings.get("n_dup"),
        },
        "training_data": {
            **summary,
            "generator": data.info.get("generator"),
            "generation_settings": gen_settings,
            "truth_maps": data.info.get("truth_maps", data.info.get("truth_gradient")),
            "split_subject_ids": {k: data.subject_id[v].tolist() for k, v in result.split.items()},
            "n_train_subjects": len(train_rows),
        },
        "training": {
            "settings": settings.to_dict(),
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "seconds": round(seconds, 3),
            "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "loss": "MSE on (corr, l1, ks) clipped to [0, output_scale]; invalid candidates skipped",
            "pairs": (
                "recorded (candidate, subject) pairs"
                + (
                    f" plus cross pairs (share {settings.cross_fraction:g} of each batch)"
                    if data.has_summaries and settings.cross_fraction > 0
                    else ""
                )
            ),
        },
        "metrics": result.metrics,
    }
    return meta, template_sc


def run_train(args: argparse.Namespace) -> int:
    """Train weights on a data set and save them."""
    from delssome_norms import io
    from delssome_norms.surrogate.dataset import load_dataset
    from delssome_norms.surrogate.network import SurrogateConfig
    from delssome_norms.surrogate.pretrained import save_pretrained
    from delssome_norms.surrogate.train import TrainSettings, train_surrogate

    _set_threads(args.threads)
    data = load_dataset(args.data)
    config = SurrogateConfig(
        n_regions=data.n_regions,
        cdf_bins=data.bins,
        fcd_bins=args.fcd_bins,
        d_model=args.d_model,
        n_heads=args.heads,
        n_layers=args.layers,
        d_ff=2 * args.d_model,
        dropout=args.dropout,
    )
    settings = TrainSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_decay=args.lr_decay,
        patience=args.patience,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        candidates_per_epoch=args.candidates_per_epoch,
        cross_fraction=args.cross_fraction,
        weight_decay=args.weight_decay,
        seed=args.seed,
        device=args.device,
    )
    print(
        f"{data.n_subjects} subjects, {data.n_candidates} candidates "
        f"({int(data.valid().sum())} valid), N={data.n_regions}"
    )
    t0 = time.perf_counter()
    result = train_surrogate(data, config, settings, progress=not args.quiet, log=print)
    seconds = time.perf_counter() - t0
    meta, template_sc = _training_metadata(data, result, settings, config, seconds)
    out = save_pretrained(result.model, args.out, meta, template_sc=template_sc)
    io.write_json({"history": result.history}, Path(out) / "training_log.json")
    test = result.metrics["test"]
    print(
        f"trained in {seconds / 60:.1f} min (best epoch {result.best_epoch}); held-out subjects "
        f"({test['n_subjects']}): Spearman(total) {test['pooled']['total']['spearman']:.3f}, "
        f"top-10 overlap {test['top10_overlap']:.2f} -> {out}"
    )
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """Print the metrics of weights on a data set."""
    from delssome_norms import io
    from delssome_norms.surrogate.dataset import load_dataset
    from delssome_norms.surrogate.pretrained import load_pretrained
    from delssome_norms.surrogate.train import evaluate_model

    _set_threads(args.threads)
    surrogate = load_pretrained(args.weights)
    data = load_dataset(args.data)
    surrogate.check(data.n_regions, data.bins)
    if surrogate.template_sc is not None:
        for i in range(data.n_subjects):
            surrogate.check(data.n_regions, data.bins, sc=data.sc[i])
    metrics = evaluate_model(surrogate.model, data, device=args.device)
    text = json.dumps(metrics, indent=2)
    print(text)
    if args.out:
        io.write_json(metrics, args.out)
    return 0
