"""The Dask side of ``cohort --executor dask``: connect, check the workers, run the groups.

Each check fails with one line before (or, for a worker that joins later, at the start of) any
work:

- the scheduler answers *as a Dask scheduler* within the timeout (``distributed``'s own connect
  waits for ever on a port that accepts connections but does not speak Dask, and reports a port
  where something else answers as an out-of-memory error);
- every worker runs the client's ``delssome_norms`` and ``torch`` versions;
- every worker sees the output folder (a marker file the client writes there) and the group's input
  files, i.e. the nodes mount the same file system at the same paths (otherwise results would land
  on a node's local disk, or every subject would fail with "file not found").

The worker-side check runs on every worker present at the start and again at the start of every
task (SLURM jobs may join later). It is shipped *by value* (a closure), so that it runs even where
the workers' installed package differs from the client's.

A group whose workers keep dying (:class:`distributed.KilledWorker`: out of memory, a GPU fault)
fails alone, like a group whose fit raises: its subjects are listed in ``failures.csv`` and the
other groups go on; a rerun resumes it from its checkpoints.

Tasks that outlive a killed client keep running; a rerun's tasks then skip their groups, whose
subject locks those tasks hold (:mod:`delssome_norms.fit.group_lock`); the lock of a worker that
has left the cluster is taken over at once (:func:`worker_lock_hooks`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from delssome_norms.errors import InvalidInputError
from delssome_norms.io.readers import MANIFEST_PATH_COLUMNS

TIMEOUTS = (TimeoutError, asyncio.TimeoutError, concurrent.futures.TimeoutError)
"""A time limit that ran out, as Dask and asyncio raise it: three classes on Python 3.10 (one
since 3.11, where the other two became aliases of the built-in)."""

CHECK_FILE_PREFIX = ".delssome-norms.dask-check-"
"""Marker the client writes into the out-dir for the workers to find (removed at the end)."""
CLUSTER_HINT = "pip install 'delssome_norms[cluster]'"


def import_distributed() -> Any:
    """``dask.distributed``, or one line naming the extra to install."""
    try:
        import dask.distributed
    except ImportError:
        raise InvalidInputError(
            f"the dask executor needs dask.distributed ({CLUSTER_HINT})", "--executor"
        ) from None
    return dask.distributed


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


def _handshake_problem(address: str, timeout: float) -> str | None:
    """Connect and complete a Dask handshake with a hard time limit; the problem, or None."""
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect as comm_connect
    from distributed.security import Security

    async def handshake() -> None:
        args = Security().get_connection_args("client")
        # distributed's connect times out the TCP connection, not the handshake that follows
        comm = await asyncio.wait_for(comm_connect(address, timeout=timeout, **args), timeout + 2)
        await comm.close()

    pool = ThreadPoolExecutor(1)  # its own event loop: run_cohort may be called from a notebook
    try:
        pool.submit(asyncio.run, handshake()).result(timeout + 10)
    except TIMEOUTS:  # (an OSError: first)
        return (
            f"it accepted the connection but did not answer as a Dask scheduler within {timeout} s; "
            "give the scheduler's address (tcp://HOST:8786 by default, as `dask scheduler` or "
            "cluster.scheduler_address prints it; not the dashboard's port)"
        )
    except (OSError, ValueError, TypeError) as exc:  # refused, unknown host, malformed address
        return _reason(exc)
    except Exception as exc:  # MemoryError, unpack errors: another kind of server
        why = "its answer is no Dask message" if isinstance(exc, MemoryError) else _reason(exc)
        return (
            f"something other than a Dask scheduler answers there ({why}); give the "
            "scheduler's address (tcp://HOST:8786 by default; not the dashboard's port)"
        )
    finally:
        pool.shutdown(wait=False)
    return None


def connect(scheduler: Any, timeout: float) -> Any:
    """A connected ``dask.distributed.Client`` (errors: one line naming ``--scheduler``)."""
    dd = import_distributed()
    if isinstance(scheduler, dd.Client):
        return scheduler
    # the bare probe speaks plain TCP: tls:// (and other) schedulers go straight to the Client,
    # which takes the security settings from the Dask configuration
    plain = isinstance(scheduler, str) and ("://" not in scheduler or scheduler.startswith("tcp://"))
    problem = _handshake_problem(scheduler, timeout) if plain else None
    if problem is None:
        try:
            return dd.Client(scheduler, timeout=timeout)
        except Exception as exc:  # whatever the reason: one line naming --scheduler
            problem = _reason(exc)
            if isinstance(scheduler, str) and scheduler.startswith("inproc://"):
                problem += (
                    "; an in-process scheduler (inproc://) is reachable only from the process "
                    "that started it: start the cluster with processes=True or "
                    "protocol='tcp://', or pass its Client"
                )
    raise InvalidInputError(
        f"cannot connect to the Dask scheduler {scheduler!r}: {problem}; check that the cluster "
        "is still running and that this is the scheduler's address as the script that started "
        "it printed (tcp://host:port, not the dashboard's; docs/dask_slurm.md)",
        "--scheduler",
    )


def expected_versions() -> dict[str, str]:
    """The client's versions that every worker must run (torch without its local build label)."""
    import torch

    import delssome_norms

    return {"delssome_norms": delssome_norms.__version__, "torch": torch.__version__.split("+")[0]}


def _make_probe() -> Callable[..., tuple[str, str] | None]:
    """The worker-side check, as a closure (pickled by value: it runs on any worker version)."""

    def probe(expect, check_file, token, paths):
        import os

        try:
            import torch

            import delssome_norms

            found = {
                "delssome_norms": delssome_norms.__version__,
                "torch": torch.__version__.split("+")[0],
            }
        except Exception as exc:
            return "--scheduler", f"cannot import delssome_norms and torch ({exc})"
        differ = [
            f"{k} {found.get(k)} (the client: {v})" for k, v in expect.items() if found.get(k) != v
        ]
        if differ:
            return "--scheduler", (
                f"runs {', '.join(differ)}: install the client's versions into the workers' "
                "environment (results must not depend on the worker that ran them)"
            )
        if check_file is not None:
            folder = os.path.dirname(check_file)
            try:
                with open(check_file, encoding="utf-8") as f:
                    seen = f.read()
            except OSError:
                seen = None
            if seen != token or not os.access(folder, os.W_OK):
                why = "does not see" if seen != token else "cannot write to"
                return "--out-dir", (
                    f"{why} the output folder {folder} as the client does: put --out-dir on a "
                    "file system that every node mounts at the same path"
                )
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
            return "--manifest", (
                f"cannot see input file(s) the client sees: {', '.join(missing[:3])}{more}; put the "
                "inputs on a file system that every node mounts at the same path"
            )
        return None

    return probe


def _make_task(probe: Callable[..., tuple[str, str] | None]) -> Callable[..., Any]:
    """:func:`delssome_norms.fit.cohort.run_group_task` behind the worker check (by value too)."""

    def run_group_task(check, *args):
        problem = probe(*check)
        if problem is not None:
            from delssome_norms.errors import InvalidInputError

            try:
                from distributed import get_worker

                where = f"the Dask worker {get_worker().address}"
            except Exception:
                where = "a Dask worker"
            raise InvalidInputError(f"{where} {problem[1]}", problem[0])
        from delssome_norms.fit.cohort import run_group_task as run

        return run(*args)

    return run_group_task


def worker_lock_hooks() -> tuple[dict[str, str], Callable[[dict[str, Any]], str | None] | None]:
    """For the group locks (:mod:`delssome_norms.fit.group_lock`) of a task on a Dask worker:
    the worker's and scheduler's addresses for the lock record, and a check that a lock taken on
    *this* cluster belongs to a worker that has left it (died, preempted), whose group is then
    taken over at once instead of after the heartbeat timeout. ``({}, None)`` off a worker."""
    try:
        from distributed import get_client, get_worker

        worker = get_worker()
        scheduler = str(worker.scheduler.address)
    except Exception:  # no distributed, or not in a task on a worker
        return {}, None

    def gone(record: dict[str, Any]) -> str | None:
        other = record.get("dask_worker")
        if record.get("dask_scheduler") != scheduler or not other or other == worker.address:
            return None
        try:
            client = get_client()
            try:
                workers = client.scheduler_info(n_workers=-1)["workers"]  # all, not the first 5
            except TypeError:  # distributed before n_workers: all of them
                workers = client.scheduler_info()["workers"]
        except Exception:  # cannot ask: leave it to the heartbeat
            return None
        if worker.address not in workers:  # a stale or partial list (it lacks this very worker):
            return None  # trust only the heartbeat, never a false "left" (two fits of a group)
        return None if other in workers else f"its Dask worker {other} has left the cluster"

    return {"dask_worker": str(worker.address), "dask_scheduler": scheduler}, gone


def check_workers(client: Any, check: tuple = ()) -> None:
    """Run the worker check on every worker connected now (none yet: the tasks check)."""
    probe = _make_probe()
    check = check or (expected_versions(), None, None, [])
    try:
        found = client.run(probe, *check)
    except Exception as exc:  # a worker that cannot even run the check
        raise InvalidInputError(
            f"a Dask worker could not run the version check ({_reason(exc)}): the workers need "
            "the client's Python, delssome_norms and torch",
            "--scheduler",
        ) from None
    for address, problem in sorted(found.items()):
        if problem is not None:
            raise InvalidInputError(f"the Dask worker {address} {problem[1]}", problem[0])


def input_paths(rows: Sequence[dict[str, Any]], extra: Sequence[str] = ()) -> list[str]:
    """The absolute input paths of manifest rows (and ``extra``) that exist here."""
    import os

    paths = [str(p) for p in extra]
    for r in rows:
        for col in MANIFEST_PATH_COLUMNS:
            if r.get(col):
                paths += str(r[col]).split(";")
    return [p for p in dict.fromkeys(paths) if os.path.isabs(p) and os.path.exists(p)]


WAIT_POLL_S = 5.0
"""How often [s] the client, waiting for groups, checks that the scheduler still has workers."""


class NoWorkersWarning(UserWarning):
    """The Dask scheduler has no workers: the groups wait until some join."""


def no_workers(client: Any) -> bool:
    """Whether the scheduler has no workers now (False when it cannot be asked)."""
    try:
        return not client.nthreads()
    except Exception:
        return False


def warn_no_workers(client: Any, n_left: int | None = None) -> None:
    """Say that the scheduler has no workers and that the ``n_left`` groups (the run, when
    None) wait for them."""
    import warnings

    waiting = "the run waits" if n_left is None else f"the {n_left} group(s) left wait"
    warnings.warn(
        f"the Dask scheduler {client.scheduler.address} has no workers: {waiting} "
        "until workers join (start them, e.g. cluster.scale(jobs=N) in "
        "start_cluster.py, or check that their SLURM jobs run: squeue; docs/dask_slurm.md); "
        "Ctrl-C stops this client, and a rerun resumes",
        NoWorkersWarning,
        stacklevel=3,
    )


def _killed_outcomes(out: Path, rows: list[dict[str, Any]], exc: BaseException) -> list[dict]:
    """Outcomes of a group whose workers kept dying: its unfinished subjects fail (stage
    ``worker``); those with finished results (before the group ran, or written before the
    death) are ``skipped``, their folders left alone."""
    from delssome_norms.fit.outputs import is_complete, write_failure

    message = (
        f"the Dask workers running this group died ({_reason(exc)}); out of memory, a GPU fault "
        "or preemption? see the workers' logs; rerun the same command to resume it"
    )
    outcomes = []
    for r in rows:
        sid = str(r["subject_id"])
        if is_complete(out / sid):
            outcomes.append({"subject_id": sid, "status": "skipped", "stage": "", "message": ""})
            continue
        write_failure(out / sid, sid, "worker", message)
        outcomes.append({"subject_id": sid, "status": "failed", "stage": "worker", "message": message})
    return outcomes


def run_groups(
    client: Any,
    out: Path,
    jobs: Sequence[tuple[list[dict[str, Any]], tuple]],
    record: Callable[[dict[str, Any]], None],
    extra_paths: Sequence[str] = (),
) -> None:
    """Submit every group (``(rows, the other arguments of run_group_task)``) and record each
    subject's outcome as its group finishes.

    A group whose task finds one of its input files missing is submitted again without that
    file's check when the client does not see the file any more either (deleted or moved since
    the planning): its subject then fails alone at loading, as with the local executor. While
    the scheduler has no workers the client says so (:class:`NoWorkersWarning`) and waits.
    """
    from distributed import KilledWorker, wait

    token = secrets.token_hex(16)
    check_file = out / f"{CHECK_FILE_PREFIX}{token}"
    check_file.write_text(token, encoding="utf-8")
    expect = expected_versions()
    futures: dict[Any, tuple[list[dict[str, Any]], tuple, tuple]] = {}
    try:
        first = jobs[0][0] if jobs else []
        check_workers(client, (expect, str(check_file), token, input_paths(first, extra_paths)))
        task = _make_task(_make_probe())
        for rows, args in jobs:
            check = (expect, str(check_file), token, input_paths(rows, extra_paths))
            futures[client.submit(task, check, rows, *args, pure=False)] = (rows, args, check)
        pending = set(futures)
        idle = bool(pending) and no_workers(client)
        if idle:
            warn_no_workers(client, len(pending))
        while pending:
            try:
                done, pending = wait(pending, timeout=WAIT_POLL_S, return_when="FIRST_COMPLETED")
            except TIMEOUTS:
                now_idle = no_workers(client)
                if now_idle and not idle:  # the workers left (e.g. their SLURM jobs ended)
                    warn_no_workers(client, len(pending))
                idle = now_idle
                continue
            for fut in done:
                rows, args, check = futures.pop(fut)
                try:
                    outcomes = fut.result()
                except KilledWorker as exc:  # the group alone fails; a rerun resumes it
                    outcomes = _killed_outcomes(out, rows, exc)
                except InvalidInputError as exc:
                    paths = input_paths(rows, extra_paths)
                    if exc.source != "--manifest" or set(paths) == set(check[3]):
                        raise  # the worker's mounts, not the files: stop before more work
                    check = (*check[:3], paths)  # files gone here too: they fail at loading
                    again = client.submit(task, check, rows, *args, pure=False)
                    futures[again] = (rows, args, check)
                    pending.add(again)
                    continue
                for o in outcomes:
                    record(o)
    finally:
        left = [f for f in futures if not f.done()]
        if left:  # queued groups must not start after the client stopped
            with contextlib.suppress(Exception):
                client.cancel(left)
        check_file.unlink(missing_ok=True)
