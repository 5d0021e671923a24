"""``delssome-norms surrogate generate|train|evaluate``: the DELSSOME surrogate's data and weights."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from delssome_norms.cli import options
from delssome_norms.cli.estimate_cmd import check_device
from delssome_norms.cli.main import Terminated, add_command
from delssome_norms.cli.out_folders import check_generate_out, check_weights_out

if TYPE_CHECKING:  # torch is loaded when a command runs, not when the parser is built
    from delssome_norms.surrogate.dataset import SurrogateDataset
    from delssome_norms.surrogate.pretrained import PretrainedSurrogate

GENERATE_OPTIONS = (
    "n_subjects",
    "group_size",
    "generations",
    "popsize",
    "tr",
    "scan_lengths",
    "dt",
    "burn_in",
    "warmup_steps",
    "fcd_window",
    "n_dup",
    "seed",
    "device",
    "dtype",
)
"""GenerateSettings fields that are ``surrogate generate`` options (defaults: the fields)."""
GENERATE_HELP = {
    "n_subjects": {"flag": "--subjects", "help": "synthetic subjects"},
    "group_size": {"help": "subjects in lockstep"},
    "generations": {"help": "CMA-ES generations"},
    "popsize": {"help": "candidates per generation"},
    "tr": {"help": "repetition time, s"},
    "scan_lengths": {
        "type": float,
        "nargs": "+",
        "metavar": "S",
        "help": "scan lengths in seconds, cycled over groups (default 172.8 259.2)",
    },
    "dt": {"help": "integration step, s"},
    "seed": {"help": "seed of the truths, scans and searches"},
}
TRAIN_OPTIONS = (
    "epochs",
    "batch_size",
    "lr",
    "lr_decay",
    "patience",
    "val_fraction",
    "test_fraction",
    "candidates_per_epoch",
    "cross_fraction",
    "weight_decay",
    "seed",
    "device",
)
"""TrainSettings fields that are ``surrogate train`` options (defaults: the fields)."""
TRAIN_HELP = {
    "epochs": {"help": "training epochs"},
    "batch_size": {"help": "candidates per batch"},
    "lr": {"help": "initial learning rate"},
    "lr_decay": {"help": "learning-rate decay per epoch"},
    "patience": {"help": "early-stopping patience in epochs"},
    "val_fraction": {"help": "share of subjects held out for validation"},
    "test_fraction": {"help": "share of subjects held out for the test metrics"},
    "candidates_per_epoch": {"type": int, "help": "candidates drawn per epoch (default: all)"},
    "cross_fraction": {
        "help": "share of each batch made of cross pairs (candidate x another candidate's "
        "simulated scan) when the data hold candidate summaries (default %(default)s; 0 disables)"
    },
    "weight_decay": {"help": "Adam weight decay"},
    "seed": {"help": "seed of the split, initialisation and batches"},
    "device": {"help": "torch device"},
}
NETWORK_OPTIONS = ("dropout", "d_model", "n_heads", "n_layers", "fcd_bins")
"""SurrogateConfig fields that are ``surrogate train`` options (defaults: the fields)."""
NETWORK_HELP = {
    "dropout": {"help": "dropout"},
    "d_model": {"help": "token width"},
    "n_heads": {"flag": "--heads", "help": "attention heads"},
    "n_layers": {"flag": "--layers", "help": "encoder layers"},
    "fcd_bins": {"help": "FCD density groups"},
}


EVALUATE_TIMING_ADVICE = (
    "these metrics measure the weights outside the timing they were trained for (what to know "
    "before using them there); to measure them within it, evaluate on held-out data generated "
    "with their timing (delssome-norms surrogate generate --tr ... --scan-lengths ... "
    "[--fcd-window ...] with a --seed other than their training data's)"
)
"""What ``surrogate evaluate``'s timing warning advises (a fit's --mode euler does not apply)."""

LOW_SPEARMAN = 0.5
"""Held-out Spearman (total cost) below which ``surrogate train`` warns that the weights rank
candidates little better than chance (the shipped weights: 0.88, pretrained/README.md)."""


def _add_generate_options(g: argparse.ArgumentParser) -> None:
    """``surrogate generate`` options from GenerateSettings (help: FitSettings' where shared)."""
    from delssome_norms.fit import FitSettings
    from delssome_norms.surrogate.generate import GenerateSettings

    options.add_settings_options(g, GenerateSettings, GENERATE_OPTIONS, GENERATE_HELP, FitSettings)
    _add_run_options(g)


def _add_train_options(t: argparse.ArgumentParser) -> None:
    """``surrogate train`` options from TrainSettings and SurrogateConfig."""
    from delssome_norms.surrogate.network import SurrogateConfig
    from delssome_norms.surrogate.train import TrainSettings

    train = (TrainSettings, TRAIN_OPTIONS, TRAIN_HELP)
    network = (SurrogateConfig, NETWORK_OPTIONS, NETWORK_HELP)
    # listed as before: training, dropout, weight decay, network shape, seed and device
    for (cls, names, helps), part in (
        (train, slice(0, 9)),
        (network, slice(0, 1)),
        (train, slice(9, 10)),
        (network, slice(1, None)),
        (train, slice(10, None)),
    ):
        options.add_settings_options(t, cls, names[part], helps)
    _add_run_options(t)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """``--threads`` and ``--quiet`` of a long-running action."""
    options.add_threads_option(parser, "torch CPU threads")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


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
        "the default template (or --sc, for another atlas), the fitter's Euler train stage on "
        "each lockstep group, every "
        "(candidate, losses) pair stored as npz shards with a manifest.json. Rerunning the same "
        "command continues an interrupted data set.",
    )
    g.add_argument(
        "--out", required=True, help="data-set folder (new, empty, or a data set to continue)"
    )
    g.add_argument(
        "--sc",
        default=None,
        help="structural connectivity (N x N, unscaled) to simulate on instead of the default "
        "DK68 template, for weights of another atlas (truth maps: the leading eigenvector of "
        "the correlation between its rows)",
    )
    options.defer(g, _add_generate_options)
    g.set_defaults(func=run_generate)

    t = add_command(
        actions,
        "train",
        help="train the cost predictor on a data set and save weights",
        example="delssome-norms surrogate train --data surrogate_data --out pretrained/my_weights",
        description="Split the data set by subject (train/validation/test), train with MSE, Adam, "
        "exponential learning-rate decay and early stopping, and write model.safetensors, "
        "metadata.json (with the held-out metrics) and training_log.json to --out (weights "
        "already there are replaced only with --overwrite, which keeps the folder's other "
        "files; a folder holding other files but no weights is refused, and the shipped "
        "weights' folder is never replaced). Every "
        "finished epoch is checkpointed in OUT.checkpoint (removed once the weights are saved): "
        "rerunning the same command after an interruption continues from there (with as many "
        "--epochs or more; remove OUT.checkpoint to start again).",
    )
    t.add_argument("--data", required=True, help="data-set folder (from `surrogate generate`)")
    t.add_argument(
        "--out",
        required=True,
        help="output folder for the weights (new, empty, or holding weights to replace with "
        "--overwrite; not the shipped weights' folder)",
    )
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the weights already in --out (refused without it); other files in the "
        "folder are kept",
    )
    options.defer(t, _add_train_options)
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
    e.add_argument("--device", default="cpu", help="device of the network (default cpu)")
    options.add_threads_option(e, "torch CPU threads")
    e.set_defaults(func=run_evaluate)


def run_generate(args: argparse.Namespace) -> int:
    """Generate or continue a training data set."""
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.surrogate.generate import GenerateSettings, generate_dataset

    options.set_threads(args.threads)
    check_device(args.device)  # before any work, in the option's name
    check_generate_out(args.out)  # not a folder of other files
    settings = options.settings_from_args(GenerateSettings, args, GENERATE_OPTIONS, GENERATE_HELP)
    sc = sc_source = None
    if args.sc is not None:
        from delssome_norms.io import read_sc

        sc, sc_source = read_sc(args.sc), f"--sc {Path(args.sc).name}"
    try:
        report = generate_dataset(
            args.out, settings, sc=sc, progress=not args.quiet, log=print, sc_source=sc_source
        )
    except InvalidInputError as err:  # the fitter's checkpoints speak of estimate-ei's options
        if "--overwrite" not in err.problem:
            raise
        problem = err.problem.split("; use --overwrite")[0]
        raise InvalidInputError(
            f"{problem}; rerun with the data set's original settings, or delete "
            f"{Path(args.out) / 'work'} to generate those subjects again",
            err.source,
        ) from None
    empty = report.without_candidates
    print(
        f"{len(report.groups_done)} group(s) generated, {len(report.groups_skipped)} already present; "
        f"{report.candidates} new candidates in {report.seconds:.0f} s -> {args.out}"
        + (
            f"; {len(empty)} new subject(s) without a valid candidate (left out by surrogate "
            f"train): {', '.join(empty[:6])}{' ...' if len(empty) > 6 else ''}"
            if empty
            else ""
        )
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
    default_source = load_default_template().source
    # DK68 names only for data simulated on the DK68 template: another 68-region atlas's
    # weights must not be labelled with them
    is_default = data.info.get("template") == default_source
    if np.allclose(data.sc, data.sc[0], atol=0, rtol=0):
        template_sc = data.sc[0]
        default = np.asarray(scale_sc(load_default_template().sc), dtype=np.float32)
        is_default = default.shape == template_sc.shape and np.allclose(default, template_sc, atol=1e-7)
        source = data.info.get("template", "?")
        if data.info.get("sc_file"):  # `surrogate generate --sc FILE`
            source = f"{source} ({data.info['sc_file']})"
        template = {
            "source": default_source if is_default else source,
            "scaled_max": float(template_sc.max()),
        }
    n = data.n_regions
    gen_settings = data.info.get("settings", {})
    meta = {
        "atlas": "DK68" if n == 68 and is_default else f"N{n}",
        "regions": list(DK68_REGIONS) if n == 68 and is_default else None,
        "template": template,
        "timing": {
            "tr_range": [float(data.tr.min()), float(data.tr.max())],
            "scan_length_range": [float(data.scan_length.min()), float(data.scan_length.max())],
            "dt": gen_settings.get("dt"),
            "burn_in": gen_settings.get("burn_in"),
            "warmup_steps": gen_settings.get("warmup_steps"),
            "n_dup": gen_settings.get("n_dup"),
            # absent (not None, the default rule) when the data set does not say
            **({"fcd_window": gen_settings["fcd_window"]} if "fcd_window" in gen_settings else {}),
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


def checkpoint_path(out: Path) -> Path:
    """Where ``surrogate train --out OUT`` keeps its per-epoch checkpoint: ``OUT.checkpoint``
    beside the weights' folder (removed once the weights are saved)."""
    return out.parent / f"{out.name}.checkpoint"


def _undefined_spearman(test: dict) -> str:
    """Why the held-out Spearman correlation is undefined: too few valid test candidates to rank
    (the data set's fault: more subjects or candidates), or one predicted cost for all of them
    (the network's: another learning rate or more data)."""
    from delssome_norms.surrogate.train import MIN_RANKED

    n_valid, n_subjects = int(test.get("n_valid", 0)), int(test.get("n_subjects", 0))
    if n_valid < MIN_RANKED:
        return (
            f"the held-out test subjects ({n_subjects}) have {n_valid} candidate(s) with finite "
            f"losses, fewer than the {MIN_RANKED} a rank correlation needs, so the weights cannot "
            "be checked; nothing was saved: add subjects to the data set (the same surrogate "
            "generate command with a larger --subjects) or hold out more with --test-fraction"
        )
    return (
        "the trained network predicts the same costs for every held-out candidate (its "
        "Spearman correlation is undefined), so it cannot rank a search; nothing was saved: "
        "lower --lr or train on more data"
    )


def _shipped_spearman() -> float | None:
    """Held-out Spearman (total) recorded in the shipped weights' metadata, or None."""
    from delssome_norms.surrogate.pretrained import METADATA_FILE, default_pretrained_path

    try:
        meta = json.loads((default_pretrained_path() / METADATA_FILE).read_text(encoding="utf-8"))
        value = float(meta["metrics"]["test"]["pooled"]["total"]["spearman"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value


def _warn_low_spearman(spearman: float, test: dict, out_dir: Path) -> None:
    """Warn that weights about to be saved rank held-out candidates poorly (they are still
    saved: the researcher decides, and may train on more data into the same folder)."""
    import warnings

    from delssome_norms.errors import InputWarning

    shipped = _shipped_spearman()
    reference = f" (the shipped weights: {shipped:.2f})" if shipped is not None else ""
    warnings.warn(
        f"{out_dir}: held-out Spearman(total) {spearman:.3f} on {test['n_subjects']} subject(s) "
        f"is below {LOW_SPEARMAN:g}{reference}: these weights order candidates little better "
        "than chance (0), so a surrogate-mode fit with them searches almost blindly (validation "
        "and test stay simulated). Generate more data (larger --subjects and --generations with "
        "`surrogate generate`), train longer (--epochs), or fit with --mode euler",
        InputWarning,
        stacklevel=2,
    )


def run_train(args: argparse.Namespace) -> int:
    """Train weights on a data set and save them."""
    import math

    from delssome_norms.errors import InvalidInputError
    from delssome_norms.surrogate.dataset import load_dataset
    from delssome_norms.surrogate.network import SurrogateConfig
    from delssome_norms.surrogate.pretrained import save_pretrained
    from delssome_norms.surrogate.train import TrainSettings, train_surrogate
    from delssome_norms.surrogate.train_checkpoint import saved_epochs
    from delssome_norms.surrogate.train_resume import CheckpointAheadError

    options.set_threads(args.threads)
    check_device(args.device)
    out_dir = Path(args.out)
    # before the work, not after it: a file, a folder of other files, the shipped weights, and
    # other weights without --overwrite are refused
    check_weights_out(out_dir, args.overwrite)
    parent = out_dir.absolute().parent  # the weights are saved beside --out, then renamed
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInputError(
            f"cannot be written: {parent} is not a writable folder (checked before training)",
            "--out",
        )
    data = load_dataset(args.data)
    config = options.settings_from_args(
        SurrogateConfig,
        args,
        NETWORK_OPTIONS,
        NETWORK_HELP,
        n_regions=data.n_regions,
        cdf_bins=data.bins,
        d_ff=2 * args.d_model,
    )
    settings = options.settings_from_args(TrainSettings, args, TRAIN_OPTIONS, TRAIN_HELP)
    print(
        f"{data.n_subjects} subjects, {data.n_candidates} candidates "
        f"({int(data.valid().sum())} valid), N={data.n_regions}"
    )
    checkpoint = checkpoint_path(out_dir)
    t0 = time.perf_counter()
    try:
        result = train_surrogate(
            data, config, settings, progress=not args.quiet, log=print, checkpoint=checkpoint
        )
    except KeyboardInterrupt as err:
        what = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"
        done = saved_epochs(checkpoint)
        if done:
            message = (
                f"the {done} finished epoch(s) are kept in {checkpoint}: rerun the same command "
                "to continue (the weights are the same as those of an uninterrupted run)"
            )
        else:
            message = (
                f"nothing was saved to {out_dir} (training does not resume before its first "
                "epoch has finished: rerun the same command to train again from the start; "
                "the same --seed gives the same weights)"
            )
        print(f"delssome-norms: {what}; {message}", file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130
    except CheckpointAheadError:  # the checkpoint is kept: a run with more --epochs continues it
        raise
    except InvalidInputError as err:  # e.g. diverged: these settings give no weights, nothing to resume
        shutil.rmtree(checkpoint, ignore_errors=True)
        if err.source == "surrogate dataset":  # too few subjects...: name the folder given
            raise InvalidInputError(err.problem, str(args.data)) from None
        raise
    # all runs of a resumed training (the checkpoint's earlier ones too), as training_log.json's
    seconds = time.perf_counter() - t0 + result.seconds_before
    spearman = result.metrics["test"]["pooled"]["total"]["spearman"]
    if spearman is None or not math.isfinite(spearman):
        shutil.rmtree(checkpoint, ignore_errors=True)
        raise InvalidInputError(_undefined_spearman(result.metrics["test"]), "surrogate train")
    if spearman < LOW_SPEARMAN:
        _warn_low_spearman(spearman, result.metrics["test"], out_dir)
    meta, template_sc = _training_metadata(data, result, settings, config, seconds)
    # the training log goes in the same atomic step as the weights (never new weights beside
    # the previous training's log)
    out = save_pretrained(
        result.model, args.out, meta, template_sc=template_sc, training_log={"history": result.history}
    )
    shutil.rmtree(checkpoint, ignore_errors=True)  # the weights are saved: nothing to resume
    test = result.metrics["test"]
    overlap = test["top10_overlap"]
    overlap = (
        f"{overlap:.2f} (chance {test['top10_chance']:.2f})"
        if math.isfinite(overlap)
        else "n/a (needs generations of more than 10 candidates)"
    )
    runs = (
        f", {(seconds - result.seconds_before) / 60:.1f} min of it in this run"
        if result.seconds_before
        else ""
    )
    print(
        f"trained in {seconds / 60:.1f} min (best epoch {result.best_epoch}{runs}); held-out subjects "
        f"({test['n_subjects']}): Spearman(total) {test['pooled']['total']['spearman']:.3f}, "
        f"top-10 overlap {overlap} -> {out}"
    )
    return 0


def _check_data_fits_weights(
    surrogate: PretrainedSurrogate, data: SurrogateDataset, source: str
) -> None:
    """Refuse a data set of another atlas size, FCD bins or SC than the weights' training data,
    in evaluate's words (the fit's advice, --mode euler or --sc, does not apply here)."""
    from delssome_norms.errors import InvalidInputError

    c = surrogate.config
    same = "evaluate them on a data set generated like their training data (surrogate generate"
    if (data.n_regions, data.bins) != (c.n_regions, c.cdf_bins):
        raise InvalidInputError(
            f"holds subjects of N={data.n_regions} regions and {data.bins} FCD bins; the weights "
            f"{surrogate.path} were trained for N={c.n_regions} regions "
            f"({surrogate.metadata.get('atlas', '?')}) and {c.cdf_bins} bins: {same} --sc of "
            "the same atlas)",
            str(source),
        )
    if surrogate.template_sc is None:
        return
    for i in range(data.n_subjects):
        try:
            surrogate.check(data.n_regions, data.bins, sc=data.sc[i])
        except InvalidInputError:
            raise InvalidInputError(
                f"subject {data.subject_id[i]} was simulated on another SC than the one the "
                f"weights {surrogate.path} were trained on ({surrogate.template_source()}): "
                f"{same} with the same --sc, or none for the default template's weights)",
                str(source),
            ) from None


def run_evaluate(args: argparse.Namespace) -> int:
    """Print the metrics of weights on a data set."""
    import warnings

    from delssome_norms import io
    from delssome_norms.errors import InputWarning, InvalidInputError
    from delssome_norms.model.timing import fcd_window_frames
    from delssome_norms.surrogate.dataset import load_dataset
    from delssome_norms.surrogate.pretrained import load_pretrained
    from delssome_norms.surrogate.train import evaluate_model

    options.set_threads(args.threads)
    check_device(args.device)
    if args.out:
        io.check_out_file(args.out, "--out")  # before the work, not after it
    surrogate = load_pretrained(args.weights)
    data = load_dataset(args.data)
    # the data's timing against what the weights cover (a warning, as in a fit)
    generated = (data.info or {}).get("settings") or {}
    window = None
    if "fcd_window" in generated:  # the data set's FCD window, resolved per subject's TR
        window = [fcd_window_frames(t, generated["fcd_window"]) for t in data.tr]
    _check_data_fits_weights(surrogate, data, args.data)
    surrogate.check(
        data.n_regions,
        data.bins,
        tr=data.tr,
        scan_length=data.scan_length,
        fcd_window=window,
        advice=EVALUATE_TIMING_ADVICE,
    )
    if not data.valid().any():
        raise InvalidInputError(
            f"no candidate with finite losses ({data.n_candidates} candidates, all invalid "
            "simulations or none): nothing to compare the predictions with",
            str(args.data),
        )
    record = surrogate.metadata.get("training_data") or {}
    split = record.get("split_subject_ids") or {}
    trained_on = {str(v) for v in split.get("train") or []}
    seen = sorted(set(map(str, data.subject_id)) & trained_on)
    # generated subjects are named syn-00000, ... whatever the seed: the same names from another
    # --seed are other subjects (held-out data are generated that way)
    seeds = (
        (record.get("generation_settings") or {}).get("seed"),
        ((data.info or {}).get("settings") or {}).get("seed"),
    )
    if seen and not (None not in seeds and seeds[0] != seeds[1]):
        warnings.warn(
            f"{len(seen)} of {data.n_subjects} subject(s) of --data have the ids of subjects these "
            f"weights were trained on ({', '.join(seen[:4])}{' ...' if len(seen) > 4 else ''}): "
            "metrics on training data overstate accuracy; evaluate on held-out subjects",
            InputWarning,
            stacklevel=2,
        )
    metrics = evaluate_model(surrogate.model, data, device=args.device)
    # which weights on which data: a metrics file must say what it measured
    identity = {
        "weights": str(Path(surrogate.path).resolve()),
        "weights_sha256": surrogate.metadata.get("weights_sha256"),
        "data": str(Path(args.data).resolve()),
    }
    metrics = io.strict_json({**identity, **metrics})
    text = json.dumps(metrics, indent=2, allow_nan=False)  # NaN (undefined metric) is null
    print(text)
    if args.out:
        io.write_json(metrics, args.out)
    print(_metrics_summary(metrics), file=sys.stderr)  # stdout stays one JSON document
    return 0


def _fmt(value: float | None, digits: int = 3) -> str:
    """A metric for the summary: fixed digits, ``n/a`` where undefined (null)."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def _metrics_summary(m: dict) -> str:
    """The metrics of ``surrogate evaluate`` in words (printed after the JSON)."""
    per = m["per_subject"]
    overlap = m["top10_overlap"]
    overlap = (
        f"top-10 overlap {overlap:.2f} per generation (chance {m['top10_chance']:.2f})"
        if overlap is not None
        else "top-10 overlap n/a (needs generations of more than 10 candidates)"
    )
    shipped = _shipped_spearman()
    reference = (
        f"; the shipped weights: {shipped:.2f} on their held-out subjects" if shipped is not None else ""
    )
    return (
        f"{m['n_subjects']} subject(s), {m['n_valid']} of {m['n_candidates']} candidates valid: "
        f"Spearman of the total cost {_fmt(m['pooled']['total']['spearman'])} pooled, per subject "
        f"median {_fmt(per['median_spearman_total'])} (lowest {_fmt(per['min_spearman_total'])}); "
        f"{overlap}. Spearman 1 = the simulated order, 0 = chance{reference}"
    )
