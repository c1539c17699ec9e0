"""Paginator stopping rules: follow the cursor until the server says there is none."""

from __future__ import annotations

from typing import Any

import pytest

from provena_like import APIError, AsyncPaginator, Page, UsageError

pytestmark = pytest.mark.anyio


class FakeServer:
    """Serves pages from a table: cursor → (items, next_cursor); records every call."""

    def __init__(self, table: dict[str | None, tuple[list[int], str | None]]) -> None:
        self.table = table
        self.calls: list[dict[str, Any]] = []

    async def fetch(self, params: dict[str, Any]) -> Page[int]:
        self.calls.append(dict(params))
        items, next_cursor = self.table[params.get("cursor")]
        size = params["page_size"]
        return Page[int](items=items[:size], next_cursor=next_cursor)

    @property
    def cursors(self) -> list[str | None]:
        return [c.get("cursor") for c in self.calls]


# name, table, items expected, cursors requested
STOPPING_RULES = [
    pytest.param(
        {None: ([1, 2, 3], None)},
        [1, 2, 3],
        [None],
        id="single-page-no-cursor-stops",
    ),
    pytest.param(
        {None: ([1, 2, 3], "c1"), "c1": ([4, 5, 6], "c2"), "c2": ([7], None)},
        [1, 2, 3, 4, 5, 6, 7],
        [None, "c1", "c2"],
        id="full-pages-then-short-last-page",
    ),
    pytest.param(
        {None: ([1], "c1"), "c1": ([2, 3], "c2"), "c2": ([4, 5, 6], None)},
        [1, 2, 3, 4, 5, 6],
        [None, "c1", "c2"],
        id="short-page-with-cursor-continues",
    ),
    pytest.param(
        {None: ([], "c1"), "c1": ([], "c2"), "c2": ([1, 2], None)},
        [1, 2],
        [None, "c1", "c2"],
        id="empty-pages-with-cursor-continue",
    ),
    pytest.param(
        {None: ([1, 2, 3], "c1"), "c1": ([], None)},
        [1, 2, 3],
        [None, "c1"],
        id="empty-last-page-stops",
    ),
    pytest.param(
        {None: ([], None)},
        [],
        [None],
        id="empty-list",
    ),
]


@pytest.mark.parametrize(("table", "expected", "cursors"), STOPPING_RULES)
async def test_items_follow_cursor_until_none(
    table: dict[str | None, tuple[list[int], str | None]],
    expected: list[int],
    cursors: list[str | None],
) -> None:
    server = FakeServer(table)
    paginator = AsyncPaginator(server.fetch, page_size=3)
    assert [item async for item in paginator] == expected
    assert server.cursors == cursors
    assert paginator.next_cursor is None
    assert paginator.exhausted


@pytest.mark.parametrize(("table", "expected", "cursors"), STOPPING_RULES)
async def test_pages_follow_cursor_until_none(
    table: dict[str | None, tuple[list[int], str | None]],
    expected: list[int],
    cursors: list[str | None],
) -> None:
    server = FakeServer(table)
    pages = [page async for page in AsyncPaginator(server.fetch, page_size=3).pages()]
    assert [i for page in pages for i in page.items] == expected
    assert [page.next_cursor for page in pages][-1] is None
    assert server.cursors == cursors


THREE_PAGES: dict[str | None, tuple[list[int], str | None]] = {
    None: ([1, 2, 3], "c1"),
    "c1": ([4, 5, 6], "c2"),
    "c2": ([7, 8], None),
}


class OffsetServer:
    """A realistic server: the cursor is the offset of the next item, pages honour page_size."""

    def __init__(self, items: list[int]) -> None:
        self.items = items
        self.calls: list[dict[str, Any]] = []

    async def fetch(self, params: dict[str, Any]) -> Page[int]:
        self.calls.append(dict(params))
        start = int(params.get("cursor") or 0)
        end = start + params["page_size"]
        next_cursor = str(end) if end < len(self.items) else None
        return Page[int](items=self.items[start:end], next_cursor=next_cursor)


@pytest.mark.parametrize(
    ("max_items", "expected", "sizes", "next_cursor", "exhausted"),
    [
        pytest.param(0, [], [], None, False, id="zero-fetches-nothing"),
        pytest.param(2, [1, 2], [2], "2", False, id="inside-first-page"),
        pytest.param(3, [1, 2, 3], [3], "3", False, id="exactly-one-page"),
        pytest.param(4, [1, 2, 3, 4], [3, 1], "4", False, id="into-second-page"),
        pytest.param(8, [1, 2, 3, 4, 5, 6, 7, 8], [3, 3, 2], None, True, id="exactly-all"),
        pytest.param(50, [1, 2, 3, 4, 5, 6, 7, 8], [3, 3, 3], None, True, id="more-than-all"),
        pytest.param(None, [1, 2, 3, 4, 5, 6, 7, 8], [3, 3, 3], None, True, id="unlimited"),
    ],
)
async def test_max_items(
    max_items: int | None,
    expected: list[int],
    sizes: list[int],
    next_cursor: str | None,
    exhausted: bool,
) -> None:
    server = OffsetServer([1, 2, 3, 4, 5, 6, 7, 8])
    paginator = AsyncPaginator(server.fetch, page_size=3, max_items=max_items)
    assert [item async for item in paginator] == expected
    # the last request asks only for what is still wanted, so the cursor resumes exactly
    assert [call["page_size"] for call in server.calls] == sizes
    assert paginator.next_cursor == next_cursor
    assert paginator.exhausted is exhausted


@pytest.mark.parametrize("stop_after", [1, 2, 3, 4, 5, 7])
async def test_resume_from_cursor_after_max_items(stop_after: int) -> None:
    server = OffsetServer(list(range(10)))
    first = AsyncPaginator(server.fetch, page_size=3, max_items=stop_after)
    seen = [item async for item in first]
    rest = AsyncPaginator(server.fetch, page_size=3, cursor=first.next_cursor)
    seen += [item async for item in rest]
    assert seen == list(range(10))  # nothing lost, nothing repeated


async def test_max_items_truncates_an_oversized_page() -> None:
    async def greedy(params: dict[str, Any]) -> Page[int]:
        return Page[int](items=list(range(10)), next_cursor="more")

    assert [i async for i in AsyncPaginator(greedy, page_size=10, max_items=4)] == [0, 1, 2, 3]


async def test_break_mid_page_resumes_without_losing_items() -> None:
    server = FakeServer(THREE_PAGES)
    paginator = AsyncPaginator(server.fetch, page_size=3)
    seen: list[int] = []
    async for item in paginator:
        seen.append(item)
        if item == 5:
            break
    assert paginator.next_cursor == "c1"  # page c1 is not finished: resume there
    async for item in AsyncPaginator(server.fetch, page_size=3, cursor=paginator.next_cursor):
        if item not in seen:
            seen.append(item)
    assert seen == [1, 2, 3, 4, 5, 6, 7, 8]


async def test_break_after_page_end_points_to_next_page() -> None:
    server = FakeServer(THREE_PAGES)
    paginator = AsyncPaginator(server.fetch, page_size=3)
    async for item in paginator:
        if item == 6:
            break
    assert paginator.next_cursor == "c2"
    assert not paginator.exhausted


async def test_await_returns_first_page() -> None:
    server = FakeServer(THREE_PAGES)
    paginator = AsyncPaginator(server.fetch, {"subtype": "person"}, page_size=3)
    page = await paginator
    assert page.items == [1, 2, 3]
    assert page.next_cursor == "c1"
    assert paginator.next_cursor == "c1"
    assert server.calls == [{"subtype": "person", "page_size": 3}]


async def test_await_starts_at_given_cursor() -> None:
    server = FakeServer(THREE_PAGES)
    page = await AsyncPaginator(server.fetch, page_size=3, cursor="c2")
    assert page.items == [7, 8]
    assert page.next_cursor is None


async def test_does_not_mutate_callers_params() -> None:
    server = FakeServer(THREE_PAGES)
    params = {"subtype": "person", "sort": "name"}
    snapshot = dict(params)
    paginator = AsyncPaginator(server.fetch, params, page_size=3)
    params["sort"] = "created"  # later changes by the caller don't leak in either
    _ = [item async for item in paginator]
    assert params == {**snapshot, "sort": "created"}
    assert "cursor" not in params and "page_size" not in params
    assert all(call["sort"] == "name" for call in server.calls)
    assert [c.get("cursor") for c in server.calls] == [None, "c1", "c2"]
    assert paginator.params == snapshot


async def test_each_walk_starts_over() -> None:
    server = FakeServer(THREE_PAGES)
    paginator = AsyncPaginator(server.fetch, page_size=3)
    first = [item async for item in paginator]
    second = [item async for item in paginator]
    assert first == second == [1, 2, 3, 4, 5, 6, 7, 8]


@pytest.mark.parametrize(
    "table",
    [
        pytest.param({None: ([1], "c1"), "c1": ([2], "c1")}, id="same-cursor-returned"),
        pytest.param({None: ([1], "c1"), "c1": ([], "c1")}, id="empty-page-same-cursor"),
    ],
)
async def test_pagination_loop_is_detected(
    table: dict[str | None, tuple[list[int], str | None]],
) -> None:
    server = FakeServer(table)
    with pytest.raises(APIError, match="pagination loop"):
        _ = [item async for item in AsyncPaginator(server.fetch, page_size=3)]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"page_size": 0}, "page_size"), ({"max_items": -1}, "max_items")],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    async def fetch(params: dict[str, Any]) -> Page[int]:
        raise AssertionError("not called")

    with pytest.raises(UsageError, match=match):
        AsyncPaginator(fetch, **kwargs)
