"""Where the executor cuts a task's rows into batches (no server needed).

A batch is one engine call and one checkpoint: its limit counts files, not the directories
among them, so a tree of 2,000 files in 10 folders is two batches of 1,000 files, not
three (1,000 rows, 1,000 rows and the 11 left by the directories).
"""

from __future__ import annotations

from provena_like.server.transfer.executor import BATCH_BYTES, BATCH_FILES, _batch, _Item


def _tree(files: int, per_folder: int, size: int = 4096) -> list[_Item]:
    """The rows an expansion makes: the root, its folders, then their files (breadth first)."""
    folders = -(-files // per_folder)
    rows = [_Item(0, "/src/", "/dst/", True, None)]
    rows += [_Item(1 + n, f"/src/d{n}/", f"/dst/d{n}/", True, None) for n in range(folders)]
    rows += [
        _Item(len(rows) + n, f"/src/d{n // per_folder}/f{n}", f"/dst/f{n}", False, size)
        for n in range(files)
    ]
    return rows


def test_directories_do_not_count_towards_a_batch() -> None:
    rows = _tree(2000, 200)
    batches = []
    while rows:
        batch = _batch(rows)
        batches.append(batch)
        rows = rows[len(batch) :]
    assert [sum(not r.is_directory for r in b) for b in batches] == [BATCH_FILES, 2000 - 1000]
    assert [len(b) for b in batches] == [1011, 1000]


def test_a_batch_stops_at_its_bytes_and_holds_at_least_one_file() -> None:
    big = _tree(3, 3, size=BATCH_BYTES // 2 + 1)
    assert [r.is_directory for r in _batch(big)] == [True, True, False]
    huge = [_Item(0, "/a", "/b", False, 4 * BATCH_BYTES)]
    assert _batch(huge) == huge


def test_a_batch_of_directories_only_takes_them_all() -> None:
    rows = [_Item(n, f"/d{n}/", f"/e{n}/", True, None) for n in range(BATCH_FILES + 5)]
    assert _batch(rows) == rows
