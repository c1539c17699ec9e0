"""``write_private_file``: atomically replace a file with content only its owner may read.

For keys, credentials and configs written next to a running process: the content goes to a
fresh temporary file in the same directory (created ``0600`` with ``O_EXCL``), is flushed to
disk, then renamed over the target, so a reader sees the old file or the new one, never a part.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["write_private_file"]


def write_private_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, readable and writable by the owner only.

    Args:
        path: the file to write; its directory must exist.
        data: the whole content.

    Raises:
        OSError: the file could not be written (no temporary file is left behind).
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
