"""An out-dir lock that leaves no trace of a run refused before it wrote anything.

``estimate-ei`` and ``cohort`` create their ``--out-dir`` and lock it
(:class:`~delssome_norms.io.guard.OutDirLock`) before the work; the lock file stays after the
lock is released (harmless once unlocked). When the run is refused inside the lock before it
wrote anything, :class:`TidyOutDirLock` removes the lock file (while still holding the lock) and
the folders the command created, so a refused command leaves no empty folder holding a lock file
behind.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from delssome_norms.io.guard import LOCK_FILE, OutDirLock

PathLike = str | Path


def missing_folders(path: PathLike) -> list[Path]:
    """The folders of ``path`` that do not exist yet (``path`` first, then its missing
    parents): those that creating it makes."""
    out: list[Path] = []
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        out.append(folder)
        folder = folder.parent
    return out


class TidyOutDirLock(OutDirLock):
    """Exclusive :class:`~delssome_norms.io.guard.OutDirLock` that, left by an exception while
    the folder holds nothing but its lock file, removes the lock file and then ``created`` (the
    folders the command created for the run, :func:`missing_folders` before it created them),
    each only while it is empty.

    Parameters
    ----------
    folder : path
        The out-dir (must exist).
    created : list of Path
        Folders the command created, the out-dir first. Empty when the out-dir existed before
        the command: then nothing is removed (its lock file stays, as after any run).
    option : str
        Option named in the error message.
    """

    def __init__(
        self,
        folder: PathLike,
        created: list[Path],
        option: str = "--out-dir",
        name: str = LOCK_FILE,
    ) -> None:
        super().__init__(folder, option, name=name)
        self.created = list(created)

    def _left_empty(self) -> bool:
        try:
            return [p.name for p in self.path.parent.iterdir()] == [self.path.name]
        except OSError:
            return False

    def __exit__(self, exc_type, *exc) -> None:
        tidy = exc_type is not None and bool(self.created) and self._fd is not None
        tidy = tidy and self._left_empty()
        if tidy:  # while still held: no other run can have taken it meanwhile
            with contextlib.suppress(OSError):
                self.path.unlink()
            for folder in self.created:  # the out-dir, then the parents made for it
                try:
                    folder.rmdir()  # only an empty one
                except OSError:
                    break
        self.release()  # a run that opened the old lock file meanwhile finds its folder gone
