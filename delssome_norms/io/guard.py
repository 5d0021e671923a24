"""Output guards: writable out-dirs checked before the work, and an exclusive lock per out-dir.

:func:`check_out_dir` and :func:`check_out_file` turn the ways an output location can be unusable
(a file where a folder is expected, a read-only folder, ``/proc``) into one
:class:`~delssome_norms.errors.InvalidInputError` naming the option, before any work starts.

:class:`OutDirLock` holds an exclusive, non-blocking ``fcntl.flock`` on a lock file in the out-dir,
so two runs cannot write into the same folder at once. The lock file records the holder's PID,
host and start time, which the second run's message names. The kernel releases the lock when the
holder exits or is killed, so a stale lock file never blocks a later run.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from delssome_norms.errors import InvalidInputError
from delssome_norms.io.checks import PARQUET_SUFFIXES

try:  # pragma: no cover - POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock
    fcntl = None

PathLike = str | Path
LOCK_FILE = ".delssome-norms.lock"
"""Name of the lock file in a locked out-dir."""


def _probe_writable(folder: Path, option: str) -> None:
    probe = folder / f".write-test.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            os.write(fd, b"x")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise InvalidInputError(f"{folder} is not writable ({exc.strerror or exc})", option) from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def check_out_dir(path: PathLike, option: str = "--out-dir", create: bool = True) -> Path:
    """Check (and create) an output folder before the work starts.

    Parameters
    ----------
    path : path
    option : str
        Option named in the error message.
    create : bool
        Create the folder (and its parents) when missing; otherwise only check that its nearest
        existing parent is a writable folder (nothing is left behind).

    Returns
    -------
    Path

    Raises
    ------
    InvalidInputError
        The path is a file, cannot be created, or is not writable.
    """
    folder = Path(path)
    if str(path).strip() == "":
        raise InvalidInputError("is empty", option)
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(f"{folder} exists and is not a folder", option)
    if not folder.exists():
        # refuse a missing folder under an unwritable parent without creating anything
        parent = next((p for p in folder.absolute().parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise InvalidInputError(f"{parent} is a file, not a folder", option)
        if not create:
            if parent is not None:
                _probe_writable(parent, option)
            return folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(f"cannot create {folder} ({exc.strerror or exc})", option) from None
    _probe_writable(folder, option)
    return folder


TABLE_SUFFIXES = (".csv", *PARQUET_SUFFIXES)
"""Endings of the table files the toolkit writes (CSV text, or Parquet)."""


def check_out_file(
    path: PathLike,
    option: str = "--out",
    inputs: Mapping[str, PathLike | None] | None = None,
    suffixes: Sequence[str] | None = None,
) -> Path:
    """Check that an output file can be written (its folder exists or can be made, and is writable).

    ``inputs`` (option -> path) are files this command reads: writing over one of them would
    destroy it, so that is refused. ``suffixes`` lists the endings the writer supports (e.g.
    :data:`TABLE_SUFFIXES`); another ending is refused rather than written in the wrong format.
    Nothing is created except missing parent folders.
    """
    target = Path(path)
    for name, source in (inputs or {}).items():
        if source is not None and Path(source).exists() and target.exists():
            if os.path.samefile(source, target):
                raise InvalidInputError(
                    f"{target} is the input given as {name}; writing the output there would "
                    "destroy it. Choose another output file",
                    option,
                )
    if str(path).strip() == "" or target.name in ("", ".", ".."):
        raise InvalidInputError(f"{path!r} is not a file name", option)
    if target.is_dir():
        raise InvalidInputError(f"{target} is a folder, expected a file name", option)
    if target.exists() and not target.is_file():
        raise InvalidInputError(f"{target} exists and is not a regular file", option)
    if suffixes is not None and target.suffix.lower() not in suffixes:
        raise InvalidInputError(
            f"{target.name}: unsupported file type {target.suffix or '(none)'}; use one of "
            f"{', '.join(suffixes)}",
            option,
        )
    check_out_dir(target.parent if str(target.parent) else Path("."), option, create=False)
    return target


def _record(lock_path: Path) -> dict | None:
    """The holder record of a lock file (pid, host, started), or None when unreadable."""
    try:
        info = json.loads(lock_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _holder(lock_path: Path) -> str:
    info = _record(lock_path)
    if info is None:
        return "another process"
    return f"PID {info.get('pid', '?')} on {info.get('host', '?')}, started {info.get('started', '?')}"


def held_by_this_process(folder: PathLike) -> bool:
    """Whether the out-dir lock of ``folder`` names this process (this host's PID) as holder."""
    info = _record(Path(folder) / LOCK_FILE)
    return (
        info is not None and info.get("pid") == os.getpid() and info.get("host") == socket.gethostname()
    )


def _holders(fd: int, lock_path: Path) -> str:
    """Who holds a lock that refused an exclusive probe on ``fd``: cohort shards (a shared lock
    is still granted: they share it, and the file's record is an earlier exclusive holder's),
    else the exclusive holder the file names."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _holder(lock_path)
    fcntl.flock(fd, fcntl.LOCK_UN)
    return "one or more cohort --shard runs, which share the folder"


def check_not_locked(folder: PathLike, option: str = "--out-dir") -> None:
    """Refuse ``folder`` while another delssome-norms run holds its lock (a probe: takes nothing).

    Used for folders nested in or above an out-dir: a subject folder of a running cohort, or a
    cohort folder around a running ``estimate-ei``.

    Raises
    ------
    InvalidInputError
        When a live process holds the lock; the message names it.
    """
    path = Path(folder) / LOCK_FILE
    if fcntl is None or not path.is_file():
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:  # exclusive probe: fails while anyone holds the lock, shared (a cohort shard) or not
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise InvalidInputError(
            f"{path.parent} is in use by another delssome-norms run ({_holders(fd, path)}); wait "
            "for it to finish or use another folder",
            option,
        ) from None
    finally:
        os.close(fd)


class OutDirLock:
    """Exclusive lock on an out-dir (context manager; non-blocking).

    Parameters
    ----------
    folder : path
        The out-dir (must exist).
    option : str
        Option named in the error message.
    name : str
        Lock file name (``LOCK_FILE``; cohort shards also take one per shard).
    shared : bool
        Take a shared lock (several cohort shards at once) instead of an exclusive one; a shared
        lock still excludes every exclusive holder.

    Raises
    ------
    InvalidInputError
        When another process holds the lock; the message names its PID and host.
    """

    def __init__(
        self,
        folder: PathLike,
        option: str = "--out-dir",
        name: str = LOCK_FILE,
        shared: bool = False,
    ) -> None:
        self.path = Path(folder) / name
        self.option = option
        self.shared = shared
        self._fd: int | None = None

    def acquire(self) -> OutDirLock:
        """Take the lock or raise at once."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise InvalidInputError(
                f"cannot create the lock file {self.path} ({exc.strerror or exc})", self.option
            ) from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except OSError:
                who = _holder(self.path) if self.shared else _holders(fd, self.path)
                os.close(fd)
                raise InvalidInputError(
                    f"{self.path.parent} is in use by another delssome-norms run ({who}); wait "
                    "for it to finish or use another folder",
                    self.option,
                ) from None
        if not self.shared:  # shared holders leave the record of the last exclusive one alone
            info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%c")}
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(info).encode())
            os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Release the lock (the lock file stays; it is harmless once unlocked)."""
        if self._fd is not None:
            if not self.shared:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> OutDirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
