"""Groupers: which files belong together (one extraction unit, one search entry).

A grouper is a function from a :class:`~provena_like.crawler.records.FileRecord` to a group
key (a string); ``None`` puts the file in a group of its own. The built-in ones, by name:

- ``file``: every file alone;
- ``directory``: the files of one directory;
- ``extension``: the files of one extension;
- ``alf_object``: the files of one ALF object in one folder (``alf/_ibl_trials.*``), by
  :mod:`provena_like.alf` naming; a file whose name is not an ALF dataset name is alone.

:func:`group` passes the records through and adds the :class:`Group` records. ``file``
groups come right after their file; other groups come once the crawl is over (the grouper
keeps each file's path and size until then, not its record).

Example:
    ```python
    from provena_like.crawler import crawl

    records = [r async for r in group(crawl("data"), "extension")]
    groups = [r for r in records if isinstance(r, Group)]
    ```
"""

from __future__ import annotations

import posixpath
from collections.abc import AsyncIterable, AsyncIterator, Callable

from provena_like._core.errors import UsageError
from provena_like.alf import AlfError, parse_dataset_name
from provena_like.crawler.records import CrawlError, FileRecord, Group

__all__ = ["GROUPERS", "Grouper", "alf_object_key", "group", "resolve_grouper"]

Grouper = Callable[[FileRecord], str | None]
"""A function from a file record to its group key (``None``: a group of its own)."""


def _directory_key(record: FileRecord) -> str:
    return posixpath.dirname(record.path)


def _extension_key(record: FileRecord) -> str:
    return record.extension


def alf_object_key(record: FileRecord) -> str | None:
    """``folder/[_namespace_]object`` of an ALF file name, ``None`` for other names.

    Example:
        ```python
        rec = FileRecord(source="local:/d", path="alf/_ibl_trials.goCue_times.npy")
        assert alf_object_key(rec) == "alf/_ibl_trials"
        ```
    """
    folder, _, name = record.path.rpartition("/")
    try:
        parsed = parse_dataset_name(name)
    except AlfError:
        return None
    namespace = f"_{parsed.namespace}_" if parsed.namespace else ""
    return posixpath.join(folder, namespace + parsed.object)


GROUPERS: dict[str, Grouper | None] = {
    "file": None,
    "directory": _directory_key,
    "extension": _extension_key,
    "alf_object": alf_object_key,
}
"""The built-in groupers by name (``file`` needs no key)."""


def resolve_grouper(by: str | Grouper) -> tuple[str, Grouper | None]:
    """The name and key function of a grouper given by name or as a callable.

    Raises:
        UsageError: An unknown name.
    """
    if callable(by):
        return getattr(by, "__name__", "custom"), by
    try:
        return by, GROUPERS[by]
    except KeyError:
        raise UsageError(
            f"unknown grouper {by!r} (choose from {', '.join(GROUPERS)} or pass a callable)"
        ) from None


async def group(
    records: AsyncIterable[FileRecord | CrawlError], by: str | Grouper = "file"
) -> AsyncIterator[FileRecord | CrawlError | Group]:
    """Pass ``records`` through and add a :class:`Group` record per group.

    Args:
        records: A crawl's records (errors pass through untouched).
        by: A grouper's name (``file``, ``directory``, ``extension``, ``alf_object``) or a
            callable from a :class:`FileRecord` to a key.

    Example:
        ```python
        from provena_like.crawler import crawl

        async for record in group(crawl("data"), "alf_object"):
            if isinstance(record, Group):
                print(record.key, record.files)
        ```
    """
    name, key_of = resolve_grouper(by)
    pending: dict[str, tuple[str, list[str], int]] = {}  # key -> (source, paths, bytes)
    for_alone: list[Group] = []
    async for record in records:
        yield record
        if not isinstance(record, FileRecord):
            continue
        key = None if key_of is None else key_of(record)
        if key is None:
            alone = Group(
                grouper=name,
                key=record.path,
                group_id=Group.make_id(record.source, name, "\x00" + record.path),
                source=record.source,
                files=[record.path],
                size=record.size or 0,
            )
            if key_of is None:
                yield alone
            else:
                for_alone.append(alone)
            continue
        entry = pending.get(key)
        if entry is None:
            pending[key] = (record.source, [record.path], record.size or 0)
        else:
            entry[1].append(record.path)
            pending[key] = (entry[0], entry[1], entry[2] + (record.size or 0))
    for key, (source, paths, size) in pending.items():
        yield Group(
            grouper=name,
            key=key,
            group_id=Group.make_id(source, name, key),
            source=source,
            files=paths,
            size=size,
        )
    for alone in for_alone:
        yield alone
