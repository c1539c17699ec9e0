"""Archives: zip and tar member lists, bounded, without extracting anything.

- **zip**: the central directory is read (its size is checked first, from the end record, so a
  directory of millions of entries is counted, not loaded); members are never decompressed,
  so a zip bomb costs nothing. Members whose stored data overlap (the trick of
  non-recursive zip bombs) or a compression ratio over 1000 set ``bomb_suspected``.
- **tar** (plain, gzip, bzip2, xz): headers are read in order, at most ``max_scan_members``,
  and for a compressed tar at most ``max_scan_bytes`` of decompressed stream (memory grows
  with the headers read, a few hundred bytes each). A truncated archive raises.
- A ``.gz``/``.bz2``/``.xz`` file that is not a tar is one compressed file: its first block is
  decompressed to check it, and the gzip header's original file name is reported.

Members are listed up to ``max_members`` (name, size, type, modification time); counts and
total sizes cover every member scanned. Names that are absolute or climb out with ``..`` are
counted in ``unsafe_paths``. ``terms`` are the members' file names.
"""

from __future__ import annotations

import struct
import tarfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from provena_like.extractors._common import (
    MAX_ITEMS,
    JSONValue,
    Terms,
    clean_text,
    compression_of,
    open_binary,
)

__all__ = ["ArchiveExtractor", "zip_directory"]

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_TAR_TYPES = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.DIRTYPE: "directory",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
}


def _unsafe(name: str) -> bool:
    """Whether extracting ``name`` would write outside the destination."""
    posix = name.replace("\\", "/")
    return posix.startswith("/") or ".." in PurePosixPath(posix).parts or posix[1:3] == ":/"


def zip_directory(f: BinaryIO, size: int) -> tuple[int, int]:
    """The entry count and central directory size from a zip's end record (zip64 too).

    Raises:
        zipfile.BadZipFile: No end of central directory record (not a zip, or truncated).
    """
    tail_len = min(size, _EOCD.size + 0xFFFF)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        raise zipfile.BadZipFile("no end of central directory record: not a zip, or truncated")
    *_, entries, cd_size, _cd_offset, _comment = _EOCD.unpack_from(tail, at)
    locator = at - _ZIP64_LOCATOR.size
    if locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        _, _, offset, _ = _ZIP64_LOCATOR.unpack_from(tail, locator)
        f.seek(offset)
        record = f.read(_ZIP64_EOCD.size)
        if len(record) != _ZIP64_EOCD.size or record[:4] != b"PK\x06\x06":
            raise zipfile.BadZipFile("damaged zip64 end of central directory record")
        *_, entries, cd_size, _cd_offset = _ZIP64_EOCD.unpack(record)
    return int(entries), int(cd_size)


class ArchiveExtractor:
    r"""Zip and tar member lists (also a lone gzip/bzip2/xz file), bounded; nothing extracted.

    Args:
        max_members: Members listed at most.
        max_scan_members: Tar headers read at most (counts stop there).
        max_scan_bytes: Bytes of a compressed tar's stream decompressed at most.
        max_central_directory: A zip's central directory larger than this is not loaded
            (only its entry count is reported).

    Example:
        ```python
        import zipfile
        from pathlib import Path

        from provena_like.extractors.archive import ArchiveExtractor

        with zipfile.ZipFile("survey.zip", "w") as z:
            z.writestr("raw/site_a.csv", "t,temp\n0,21.5\n")
        meta = ArchiveExtractor().extract(Path("survey.zip"))
        assert meta["member_count"] == 1
        assert meta["members"][0]["name"] == "raw/site_a.csv"
        ```
    """

    name = "archive"
    extensions = frozenset({".zip", ".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".gz", ".bz2", ".xz"})
    mime_types = frozenset(
        {
            "application/zip",
            "application/x-zip-compressed",
            "application/x-tar",
            "application/x-gtar",
            "application/gzip",
            "application/x-gzip",
            "application/x-bzip2",
            "application/x-xz",
        }
    )
    requires: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        max_members: int = MAX_ITEMS,
        max_scan_members: int = 20_000,
        max_scan_bytes: int = 1024**3,
        max_central_directory: int = 8 * 1024 * 1024,
    ) -> None:
        self.max_members = max_members
        self.max_scan_members = max_scan_members
        self.max_scan_bytes = max_scan_bytes
        self.max_central_directory = max_central_directory

    def extract(self, path: Path) -> dict[str, JSONValue]:
        """List the archive at ``path`` (see the module)."""
        with path.open("rb") as f:
            head = f.read(4)
        if head[:2] == b"PK" or path.suffix.lower() == ".zip":
            return self._zip(path)
        compression = compression_of(path)
        try:
            return self._tar(path, compression)
        except tarfile.ReadError:
            if compression is None:
                raise
        return self._compressed_file(path, compression)

    def _zip(self, path: Path) -> dict[str, JSONValue]:
        size = path.stat().st_size
        with path.open("rb") as f:
            entries, cd_size = zip_directory(f, size)
        result: dict[str, JSONValue] = {"format": "zip", "member_count": entries}
        if cd_size > self.max_central_directory:
            result.update(members=[], truncated=True, terms=[])
            return result
        terms = Terms()
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
        members: list[JSONValue] = []
        for info in infos[: self.max_members]:
            terms.add(PurePosixPath(info.filename).name)
            members.append(
                {
                    "name": clean_text(info.filename, 500),
                    "size": info.file_size,
                    "compressed_size": info.compress_size,
                    "type": "directory" if info.is_dir() else "file",
                    "modified": "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}".format(*info.date_time),
                    "encrypted": bool(info.flag_bits & 0x1),
                }
            )
        total = sum(i.file_size for i in infos)
        packed = sum(i.compress_size for i in infos)
        ordered = sorted(infos, key=lambda i: i.header_offset)
        overlapping = any(
            a.header_offset + 30 + a.compress_size > b.header_offset
            for a, b in zip(ordered, ordered[1:], strict=False)
        )
        ratio = total / packed if packed else 0.0
        result.update(
            member_count=len(infos),
            total_size=total,
            compressed_size=packed,
            compression_ratio=round(ratio, 2),
            bomb_suspected=overlapping or ratio > 1000,
            unsafe_paths=sum(_unsafe(i.filename) for i in infos),
            members=members,
            truncated=len(infos) > self.max_members or terms.truncated,
            terms=terms.as_json(),
        )
        return result

    def _tar(self, path: Path, compression: str | None) -> dict[str, JSONValue]:
        terms = Terms()
        members: list[JSONValue] = []
        count = total = unsafe = 0
        truncated = False
        with tarfile.open(path, "r:*") as tf:
            while True:
                member = tf.next()
                if member is None:
                    break
                if count >= self.max_scan_members:
                    truncated = True
                    break
                count += 1
                total += member.size if member.isfile() else 0
                unsafe += _unsafe(member.name)
                end = member.offset_data + (member.size if member.isfile() else 0)
                if len(members) < self.max_members:
                    members.append(self._tar_member(member, terms))
                if compression and end > self.max_scan_bytes:
                    # the next header lies past the budget: reaching it means decompressing
                    # everything before it
                    truncated = True
                    break
        result: dict[str, JSONValue] = {"format": "tar"}
        if compression:
            result["compression"] = compression
        result.update(
            member_count=count,
            total_size=total,
            unsafe_paths=unsafe,
            members=members,
            truncated=truncated or count > self.max_members or terms.truncated,
            terms=terms.as_json(),
        )
        return result

    @staticmethod
    def _tar_member(member: tarfile.TarInfo, terms: Terms) -> dict[str, JSONValue]:
        terms.add(PurePosixPath(member.name).name)
        info: dict[str, JSONValue] = {
            "name": clean_text(member.name, 500),
            "size": member.size,
            "type": _TAR_TYPES.get(member.type, "other"),
            "modified": _timestamp(member.mtime),
        }
        if member.issym() or member.islnk():
            info["target"] = clean_text(member.linkname, 500)
        return info

    @staticmethod
    def _compressed_file(path: Path, compression: str) -> dict[str, JSONValue]:
        with open_binary(path, compression) as f:
            f.read(64 * 1024)  # raises on a damaged stream
        name: str | None = None
        if compression == "gzip":
            name = _gzip_original_name(path)
        if name is None:
            name = path.with_suffix("").name
        terms = Terms()
        terms.add(name)
        return {
            "format": compression,
            "member_count": 1,
            "members": [{"name": clean_text(name, 500), "type": "file"}],
            "truncated": False,
            "terms": terms.as_json(),
        }


def _timestamp(mtime: float) -> str | None:
    try:
        return datetime.fromtimestamp(mtime, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return None  # a header with a time no calendar holds


def _gzip_original_name(path: Path) -> str | None:
    """The FNAME field of a gzip header (RFC 1952), if the file has one."""
    with path.open("rb") as f:
        header = f.read(10)
        flags = header[3] if len(header) == 10 else 0
        if flags & 0x04:  # FEXTRA
            (extra,) = struct.unpack("<H", f.read(2))
            f.seek(extra, 1)
        if not flags & 0x08:  # FNAME
            return None
        raw = f.read(1024).split(b"\0", 1)[0]
    return raw.decode("latin-1") or None
