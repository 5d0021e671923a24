"""SHA-256 digests of files (the checksums written beside saved charts, weights and caches)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

CHUNK_BYTES = 1 << 20
"""Bytes read at a time, so large files are hashed in constant memory."""


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in :data:`CHUNK_BYTES` chunks.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> _ = p.write_bytes(b"abc")
    >>> file_sha256(p)[:16]
    'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()


def arrays_sha256(*arrays: np.ndarray | None) -> str | None:
    """Hex SHA-256 of arrays' shapes and float64 bytes (``None`` entries hashed as a marker);
    None when every array is None. Identifies numeric inputs independently of their files."""
    if all(a is None for a in arrays):
        return None
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        arr = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def content_sha256(document: Mapping[str, Any], own_key: str) -> str:
    """Hex SHA-256 of a JSON document's content without its own checksum entry ``own_key``.

    Canonical JSON (sorted keys, no spaces, ASCII) of what :func:`json.loads` gives back, so the
    checksum written into a file matches the one computed from the file when it is read again:
    an edit of any other field is seen.
    """
    body = {k: v for k, v in document.items() if k != own_key}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
