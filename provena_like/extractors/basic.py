"""``basic``: what the file system says about any file, plus its checksums.

Example:
    ```python
    meta = BasicExtractor().extract(Path("data.bin"))  # a file holding b"test"
    assert meta["size"] == 4 and meta["sha256"].startswith("9f86d081884c")
    ```
"""

from __future__ import annotations

import os
import stat

from provena_like.extractors.base import JSONValue
from provena_like.storage.hashing import Digests, hash_file, read_file

__all__ = ["SMALL_FILE", "BasicExtractor", "checksums"]

SMALL_FILE = 1024 * 1024
"""Files up to this size are read in one call (no 8 MiB hashing buffer per small file)."""


def checksums(
    path: str | os.PathLike[str], size: int, *, sha256: bool = True, md5: bool = False
) -> Digests:
    """The checksums of a file whose size is known: one read when small, streamed when large.

    Example:
        ```python
        assert checksums(Path("data.bin"), 4).sha256.startswith("9f86d081884c")
        ```
    """
    if size <= SMALL_FILE:
        return read_file(path, sha256=sha256, md5=md5)[1]
    return hash_file(path, sha256=sha256, md5=md5)


class BasicExtractor:
    """Size, modification time, permissions and checksums of any file.

    Args:
        sha256: Compute the sha256 (reads the whole file).
        md5: Compute the md5 too.

    Example:
        ```python
        stat_only = BasicExtractor(sha256=False)
        assert "sha256" not in stat_only.extract(Path("data.bin"))
        ```
    """

    name = "basic"
    extensions: frozenset[str] = frozenset()
    mime_types: frozenset[str] = frozenset()
    requires: tuple[str, ...] = ()

    def __init__(self, *, sha256: bool = True, md5: bool = False) -> None:
        self.sha256 = sha256
        self.md5 = md5

    def __repr__(self) -> str:
        return f"BasicExtractor(sha256={self.sha256}, md5={self.md5})"

    def extract(self, path: str | os.PathLike[str]) -> dict[str, JSONValue]:
        """Stat ``path`` (and hash it when asked); text is taken as is (no :class:`Path`)."""
        return self.extract_stat(path, os.stat(path))

    def extract_stat(
        self, path: str | os.PathLike[str], st: os.stat_result
    ) -> dict[str, JSONValue]:
        """What :meth:`extract` says, from a ``stat`` already made (a crawl's).

        Args:
            path: The file (read only for checksums).
            st: Its :func:`os.stat` (symlinks followed).

        Raises:
            ValueError: ``st`` is not a regular file's.

        Example:
            ```python
            meta = BasicExtractor(sha256=False).extract_stat("data.bin", os.stat("data.bin"))
            assert meta["size"] == 4
            ```
        """
        mode = st.st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"not a regular file: {path}")
        meta: dict[str, JSONValue] = {
            "size": st.st_size,
            "mtime": st.st_mtime,
            "mode": stat.filemode(mode),
        }
        if self.sha256 or self.md5:
            digests = checksums(path, st.st_size, sha256=self.sha256, md5=self.md5)
            if digests.sha256 is not None:
                meta["sha256"] = digests.sha256
            if digests.md5 is not None:
                meta["md5"] = digests.md5
        return meta
