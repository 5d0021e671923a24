"""Entry point of the ``delssome-norms`` command.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds a parser whose
default ``func`` runs the command. User errors (:class:`InvalidInputError`) are printed as one line,
``delssome-norms: error: <file>: <problem>``, with exit status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import warnings
from collections.abc import Sequence

from delssome_norms import __version__
from delssome_norms.cli.options import DeferredParser
from delssome_norms.errors import InvalidInputError, NotYetAvailableError, out_of_space

COMMAND_MODULES: tuple[str, ...] = (
    "delssome_norms.cli.demo_cmd",
    "delssome_norms.cli.validate_cmd",
    "delssome_norms.cli.simulate_cmd",
    "delssome_norms.cli.charts_cmd",
    "delssome_norms.cli.stats_cmd",
    "delssome_norms.cli.prepare_cmd",
    "delssome_norms.cli.estimate_cmd",
    "delssome_norms.cli.cohort_cmd",
    "delssome_norms.cli.surrogate_cmd",
    "delssome_norms.cli.info_cmd",
)
"""Modules that each register one subcommand, in the order ``--help`` lists them."""

EPILOG = """examples:
  delssome-norms demo --out demo_output       # end-to-end demo on the packaged data
  delssome-norms <command> --help             # options and an example for each command
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="delssome-norms",
        description="Regional cortical E/I ratio from resting-state fMRI (pFIC model, DELSSOME) "
        "and lifespan growth charts of E/I.",
        epilog=EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )
    # commands add their settings-derived options when used (no torch import for --help)
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=DeferredParser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def add_command(subparsers, name: str, help: str, example: str, description: str = ""):
    """Add a subcommand parser whose ``--help`` ends with ``example`` (shared by all commands)."""
    return subparsers.add_parser(
        name,
        help=help,
        description=description or help,
        epilog=f"example:\n  {example}",
        formatter_class=_HelpFormatter,
    )


def _user_path(first, second) -> str | None:
    """The path to name in an error: the output a hidden temporary file stood for (an atomic
    write fails on ``.name.<hex>.tmp`` or in renaming it onto ``name``), else the path given."""
    from delssome_norms.io.writers import atomic_target

    for name in (first, second):
        target = None if name is None else atomic_target(os.fsdecode(name))
        if target is not None:
            return str(target)
    return None if first is None else os.fsdecode(first)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch system's time limit, ``scancel``, ``kill``), handled like Ctrl-C."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status.

    Ctrl-C and SIGTERM end a command with one line (exit status 130 and 143): what was written
    is complete (outputs are written atomically) and rerunning the same command resumes. The
    command's one-line warnings apply while it runs: a caller's warning filters and format
    (a notebook, a test) are restored afterwards.
    """
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread (an embedding application): leave signals alone
        previous = None
    caller_format = warnings.formatwarning
    try:
        from delssome_norms.io.sidecar import warnings_once_per_run

        with warnings.catch_warnings(), warnings_once_per_run():  # a run's TR mismatch: once
            return _run(argv)
    except KeyboardInterrupt as err:  # also while the parser and the commands are loaded
        if isinstance(err, Terminated):
            print(
                "delssome-norms: terminated (SIGTERM); rerun the same command to resume", file=sys.stderr
            )
            return 143
        print("delssome-norms: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = caller_format
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


OWN_EMPTY_MESSAGE: frozenset[str] = frozenset({"--mu-dfs", "--families"})
"""Options whose command refuses an empty value with a more specific message of its own."""


def empty_value_option(argv: Sequence[str]) -> str | None:
    """The first option given an empty (or blank) value, e.g. ``--sc "$UNSET"``; None if none.

    An empty path would be read as the current folder, an empty number or name as nothing.
    """
    flag = None
    for token in argv:
        if token == "--":
            break
        if token.startswith("--"):
            flag, eq, value = token.partition("=")
            if eq and not value.strip() and flag not in OWN_EMPTY_MESSAGE:
                return flag
        elif not token.strip() and flag is not None and flag not in OWN_EMPTY_MESSAGE:
            return flag
    return None


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    empty = empty_value_option(sys.argv[1:] if argv is None else list(argv))
    if empty is not None:
        print(
            f"delssome-norms: error: {empty}: empty value (an unset shell variable?); give a value "
            "or leave the option out",
            file=sys.stderr,
        )
        return 2
    if not args.debug:
        warnings.simplefilter("default")
        warnings.formatwarning = _one_line_warning
    try:
        from delssome_norms.model.summary import fcd_products_choice

        if getattr(args, "check_environment", True):  # ``info`` reports it instead
            fcd_products_choice()  # a misspelt $DELSSOME_NORMS_FCD_PRODUCTS fails here, not per subject
        result = args.func(args)
    except (InvalidInputError, NotYetAvailableError) as err:
        if args.debug:
            raise
        err = getattr(err, "cli_error", err)  # raised through the Python API: the CLI's words
        print(f"delssome-norms: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a file or folder the checks could not foresee (disk full, /proc, ...)
        if args.debug:
            raise
        out = getattr(args, "out_dir", None) or getattr(args, "out", None)
        where = _user_path(err.filename, err.filename2) or (str(out) if out else args.command)
        text = str(err).strip()
        reason = err.strerror or (text.splitlines()[0] if text else type(err).__name__)
        if out_of_space(err):
            reason += (
                "; free some space (or write elsewhere) and rerun the same command: what is "
                "finished is kept"
            )
        if isinstance(err, (FileExistsError, NotADirectoryError)) and os.path.isfile(where):
            reason = "is a file, but a folder is needed here (for the output)"
        print(f"delssome-norms: error: {where}: {reason}", file=sys.stderr)
        return 2
    except MemoryError:
        if args.debug:
            raise
        print(
            f"delssome-norms: error: {args.command}: out of memory; use smaller inputs or "
            "settings (--popsize, --batch-subjects, --n-dup)",
            file=sys.stderr,
        )
        return 2
    except Exception as err:  # no raw traceback: one line, and how to get the traceback
        if args.debug:
            raise
        failed = getattr(err, "cli_message", None)  # a fit that failed (EIFitError): its words
        if failed:
            print(f"delssome-norms: error: {failed}", file=sys.stderr)
            return 1
        print(
            f"delssome-norms: error: {args.command} stopped on an unexpected "
            f"{type(err).__name__}: {err} (rerun with `delssome-norms --debug {args.command} "
            "...` for the traceback, and report it with the output of `delssome-norms info`)",
            file=sys.stderr,
        )
        return 1
    return int(result or 0)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"delssome-norms: warning: {message}\n"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
