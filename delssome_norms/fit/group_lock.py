"""Per-subject fit locks in the out-dir: one live process fits a lockstep group at a time.

The out-dir lock (:class:`delssome_norms.io.OutDirLock`, ``flock``) guards a *client*; it is
released when the client dies, while its groups may still be running on Dask workers (running
tasks survive the client), and ``flock`` is unreliable on NFS/Lustre. Before a group is fitted
(:func:`delssome_norms.fit.cohort.run_group_task`, on whichever process or worker runs it) every
member's lock is taken; if one is held by a live process the group is skipped (its subjects are
reported as ``busy``: "being fitted elsewhere") and nothing is written.

Lock files: ``<out-dir>/.delssome-norms.locks/<subject_id>.lock`` (outside the subject folders,
which ``--overwrite`` rearranges), created with ``os.open(O_CREAT | O_EXCL)``: atomic on local
file systems, NFSv3+ and Lustre. Content: one JSON object (padded to a fixed size, so a heartbeat
rewrites it in place) with ``host``, ``pid``, ``pidns`` (PID namespace), ``started`` and
``heartbeat`` (Unix times of the holder's clock), ``stale_after_s``, a random ``token`` and the
``group``. A thread of the holder rewrites ``heartbeat`` every :data:`HEARTBEAT_S` seconds.

A lock is **stale**, and taken over with a :class:`GroupLockWarning`, when its heartbeat is older
than :data:`STALE_AFTER_S` (the larger of the reader's and the holder's value), or at once when
its holder ran on this machine (same host name and PID namespace) and that PID is gone. An
unreadable (half-written) lock counts by its file time. Takeover is serialised by a second
``O_EXCL`` file (``<lock>.break``) and removes the lock only if it still is the one judged stale.
A holder whose lock was taken over (it was frozen longer than the timeout) notices at its next
heartbeat; :meth:`GroupLock.check` then raises :class:`GroupLockLost` between generations.

Why hand-written: no maintained library gives this on NFS with a non-blocking verdict.
``filelock`` (here only through torch, without a version floor) locks with ``flock`` except
``SoftFileLock``, which breaks only dead same-host holders; ``SoftFileLease`` (filelock >= 3.30,
2026) adds a heartbeat, but expires another node's lease only after the contender has *watched*
the marker unchanged for the whole lease (a non-blocking try never takes over a dead node's lock;
a blocking one waits the lease on every group still running elsewhere before skipping it), keeps
the heartbeat only as the file's mtime, and would need a floor newer than many cluster
environments. A Dask worker's lock also records the worker, so that
a worker which has left the cluster is known dead at once
(:func:`delssome_norms.fit.dask_executor.worker_lock_hooks`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCK_DIR = ".delssome-norms.locks"
"""Folder of the lock files, in the out-dir."""
HEARTBEAT_S = 60.0
"""Seconds between heartbeats of a holder."""
STALE_AFTER_S = 600.0
"""Seconds without a heartbeat after which a lock is stale: ten missed heartbeats, far above NFS
attribute caching (<= 60 s), clock differences between NTP-synchronised nodes and file-system
stalls (Lustre recovery can freeze I/O for minutes), yet short next to a group's fit (hours)."""
RECORD_BYTES = 1024
"""Size of a lock file (the JSON record, padded with spaces)."""


Gone = Callable[[dict[str, Any]], "str | None"]
"""A check of a lock record: why its holder is known to be dead, or None."""


class GroupLockWarning(UserWarning):
    """A stale lock (its holder is dead or silent) was taken over."""


class GroupLockLost(RuntimeError):
    """This process's lock was taken over by another one (it was silent past the timeout)."""


def lock_path(out_dir: str | Path, subject_id: str) -> Path:
    """The lock file of a subject."""
    return Path(out_dir) / LOCK_DIR / f"{subject_id}.lock"


def _pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


@dataclass(frozen=True)
class Holder:
    """The owner of a lock file, as recorded in it (``record`` None: unreadable)."""

    path: Path
    record: dict[str, Any] | None
    mtime: float

    def age(self, now: float) -> float:
        """Seconds since the last heartbeat (or, unreadable, since the file was written)."""
        beat = self.record.get("heartbeat") if self.record else None
        return now - (float(beat) if isinstance(beat, (int, float)) else self.mtime)

    def describe(self, now: float | None = None) -> str:
        """'host h, pid 12, since 2024-05-01 10:00:00, last heartbeat 5 s ago'."""
        now = time.time() if now is None else now
        if self.record is None:
            return f"unreadable lock file {self.path}, written {self.age(now):.0f} s ago"
        r = self.record
        started = r.get("started")
        since = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(started)))
            if isinstance(started, (int, float))
            else "an unknown time"  # a record edited or written by something else
        )
        return (
            f"host {r.get('host')}, pid {r.get('pid')}, since {since}, last heartbeat "
            f"{max(0.0, self.age(now)):.0f} s ago; lock {self.path}"
        )

    def stale_reason(
        self, stale_after_s: float, now: float | None = None, gone: Gone | None = None
    ) -> str | None:
        """Why the lock is stale, or None while its holder counts as alive (``gone``: a further
        check of the record, e.g. that its Dask worker has left the cluster)."""
        now = time.time() if now is None else now
        r = self.record or {}
        if self.record is not None and gone is not None and (why := gone(self.record)):
            return why
        limit = max(stale_after_s, float(r.get("stale_after_s") or 0))
        if self.record is not None and r.get("host") == socket.gethostname():
            if r.get("pidns") == _pid_namespace() and not _pid_alive(int(r.get("pid", 0))):
                return f"its process {r.get('pid')} on this machine is gone"
        if self.age(now) > limit:
            return f"no heartbeat for {self.age(now):.0f} s (> {limit:.0f} s)"
        return None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: another user's live process
        return True
    return True


def read_holder(path: Path) -> Holder | None:
    """The holder of lock file ``path`` (None: no lock)."""
    try:
        with open(path, "rb") as f:
            mtime = os.fstat(f.fileno()).st_mtime
            data = f.read(RECORD_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError:
        return Holder(path, None, time.time())  # cannot read: count it as fresh
    try:
        record = json.loads(data.decode("utf-8"))
        record = record if isinstance(record, dict) else None
    except (UnicodeDecodeError, ValueError):
        record = None
    return Holder(path, record, mtime)


def live_holder(
    out_dir: str | Path, subject_id: str, stale_after_s: float | None = None
) -> Holder | None:
    """The live holder of a subject's lock, or None (no lock, or a stale one): for ``collect``
    and the pre-run checks, which must leave a subject alone while it is being fitted."""
    holder = read_holder(lock_path(out_dir, subject_id))
    limit = STALE_AFTER_S if stale_after_s is None else stale_after_s
    return holder if holder is not None and holder.stale_reason(limit) is None else None


class GroupLock:
    """The locks of a group's subjects, taken all or none (context manager releases them).

    Parameters
    ----------
    out_dir : path
    subject_ids : sequence of str
        The group's members.
    heartbeat_s, stale_after_s : float, optional
        Default :data:`HEARTBEAT_S`, :data:`STALE_AFTER_S` (read at construction).
    extra : dict, optional
        More fields for the record (a Dask worker's address).
    gone : callable, optional
        Further staleness check of other holders' records (:meth:`Holder.stale_reason`).
    """

    def __init__(
        self,
        out_dir: str | Path,
        subject_ids: Sequence[str],
        heartbeat_s: float | None = None,
        stale_after_s: float | None = None,
        extra: dict[str, Any] | None = None,
        gone: Gone | None = None,
    ) -> None:
        self.extra, self.gone = dict(extra or {}), gone
        self.paths = [lock_path(out_dir, s) for s in sorted(set(map(str, subject_ids)))]
        self.group = [str(s) for s in subject_ids]
        self.heartbeat_s = HEARTBEAT_S if heartbeat_s is None else heartbeat_s
        self.stale_after_s = STALE_AFTER_S if stale_after_s is None else stale_after_s
        self.lost: str | None = None
        self._held: dict[Path, int] = {}
        self._record: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _bytes(self) -> bytes:
        data = json.dumps({**self._record, "heartbeat": time.time()}).encode()
        if len(data) > RECORD_BYTES:  # a huge group: keep the owner, drop the member list
            data = json.dumps({**self._record, "group": None, "heartbeat": time.time()}).encode()
        return data.ljust(RECORD_BYTES)

    def acquire(self) -> list[Holder]:
        """Take every member's lock; returns [] on success, else the live holders found (then
        nothing is held)."""
        self._record = {
            "format": 1,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pidns": _pid_namespace(),
            "started": time.time(),
            "stale_after_s": self.stale_after_s,
            "token": secrets.token_hex(8),
            "group": self.group,
            **self.extra,
        }
        busy: list[Holder] = []
        try:
            self.paths[0].parent.mkdir(parents=True, exist_ok=True)
            for path in self.paths:
                holder = self._take(path)
                if holder is not None:
                    busy.append(holder)
                    break  # the group is skipped: no need to probe the others
        except BaseException:
            self.release()
            raise
        if busy:
            self.release()
            return busy
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="delssome-group-lock", daemon=True)
        self._thread.start()
        return []

    def _take(self, path: Path) -> Holder | None:
        for _ in range(5):  # a lost takeover race or a lock released meanwhile: look again
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = read_holder(path)
                if holder is None:
                    continue
                if holder.record is None and holder.age(time.time()) < 1.0:
                    time.sleep(0.05)  # created an instant ago, its record not yet written: reread
                    holder = read_holder(path)
                    if holder is None:
                        continue
                why = holder.stale_reason(self.stale_after_s, gone=self.gone)
                if why is None:
                    return holder
                if self._break(path, holder):
                    warnings.warn(
                        f"took over the stale fit lock of {path.stem} ({why}; was "
                        f"{holder.describe()}): its fit resumes here from its checkpoints",
                        GroupLockWarning,
                        stacklevel=4,
                    )
                continue
            self._held[path] = fd
            os.write(fd, self._bytes())
            os.fsync(fd)
            return None
        return read_holder(path) or Holder(path, None, time.time())

    def _break(self, path: Path, judged: Holder) -> bool:
        """Remove a stale lock if it still is the one judged stale (one breaker at a time)."""
        guard = path.with_name(path.name + ".break")
        try:
            os.close(os.open(guard, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:  # another process is breaking it; a guard left by a crash expires
            with contextlib.suppress(OSError):
                if time.time() - guard.stat().st_mtime > self.stale_after_s:
                    guard.unlink()
            return False
        try:
            now = read_holder(path)
            if now is None or now.record != judged.record or now.mtime != judged.mtime:
                return False  # gone or changed (a new holder, or a heartbeat): look again
            if now.stale_reason(self.stale_after_s, gone=self.gone) is None:
                return False
            path.unlink()
            return True
        finally:
            with contextlib.suppress(OSError):
                guard.unlink()

    def _owns(self, path: Path, fd: int) -> bool:
        try:
            return os.stat(path).st_ino == os.fstat(fd).st_ino
        except OSError:
            return False

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            for path, fd in list(self._held.items()):
                if not self._owns(path, fd):
                    holder = read_holder(path)
                    self.lost = (
                        f"the fit lock of {path.stem} was taken over by another process "
                        f"({holder.describe() if holder else 'lock removed'}) while this one was "
                        "silent; it leaves the group to that process"
                    )
                    return
                with contextlib.suppress(OSError):  # an NFS hiccup: the next beat retries
                    os.pwrite(fd, self._bytes(), 0)
                    os.fsync(fd)

    def check(self) -> None:
        """Raise :class:`GroupLockLost` if the heartbeat found the lock taken over."""
        if self.lost is not None:
            raise GroupLockLost(self.lost)

    def release(self) -> None:
        """Stop the heartbeat and remove the locks still this process's (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self._thread = None
        for path, fd in list(self._held.items()):
            with contextlib.suppress(OSError):
                if self._owns(path, fd):
                    path.unlink()
            with contextlib.suppress(OSError):
                os.close(fd)
            del self._held[path]

    def __enter__(self) -> GroupLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def busy_outcomes(
    group_ids: Sequence[str], holders: Sequence[Holder], stale_after_s: float | None = None
) -> list[dict[str, str]]:
    """The outcomes of a group skipped because another live process is fitting it."""
    where = holders[0].describe() if holders else "unknown holder"
    limit = STALE_AFTER_S if stale_after_s is None else stale_after_s
    message = (
        f"being fitted elsewhere ({where}); skipped here: rerun the cohort when that process has "
        f"finished (or, if it died on another node, once its lock is {limit:.0f} s without a "
        "heartbeat)"
    )
    return [
        {"subject_id": str(s), "status": "busy", "stage": "locked", "message": message}
        for s in group_ids
    ]


def failed_outcomes(group_ids: Sequence[str], out_dir: Path, exc: OSError) -> list[dict[str, str]]:
    """Outcomes (and ``failure.json`` records, where they can be written) of a group whose fit
    locks could not be taken (a full or read-only file system, a stale NFS handle): the group
    fails alone, the others go on."""
    from delssome_norms.fit.outputs import write_failure

    message = (
        f"lock: cannot take the fit lock in {Path(out_dir) / LOCK_DIR} "
        f"({type(exc).__name__}: {exc}); rerun the cohort when the folder is writable"
    )
    for sid in map(str, group_ids):
        with contextlib.suppress(OSError):  # the same file system: the summary still counts it
            (Path(out_dir) / sid).mkdir(parents=True, exist_ok=True)
            write_failure(Path(out_dir) / sid, sid, "lock", message)
    return [
        {"subject_id": str(s), "status": "failed", "stage": "lock", "message": message}
        for s in group_ids
    ]
