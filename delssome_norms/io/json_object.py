"""JSON files that must hold an object (checkpoint state, shard plans): one clear error each."""

from __future__ import annotations

import json
from pathlib import Path

from delssome_norms.errors import InvalidInputError


def read_json_object(path: str | Path, what: str, remedy: str) -> dict:
    """A JSON file that must hold an object; anything else is one error naming the file.

    Parameters
    ----------
    path : path
    what : str
        What the file is, for the message (e.g. ``"checkpoint metadata"``).
    remedy : str
        What the user can do about a damaged file.
    """
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8-sig"))  # a BOM (Windows tools) too
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"unreadable {what} ({exc}); {remedy}", str(path)) from None
    if not isinstance(obj, dict):
        raise InvalidInputError(f"{what} is not a JSON object; {remedy}", str(path))
    return obj
