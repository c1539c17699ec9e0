"""Small helpers of the repository tests: a file's sha256, and writing a local file."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha(data: bytes) -> str:
    """The lowercase hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def write(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` (its folders created); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
