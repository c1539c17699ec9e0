"""Short reprs and notebook tables for the results users look at.

A batch result of 300 files must not print 300 dataclasses: its ``repr`` is one line of
counts (``TransferResult: 304 ok, 0 failed, 944 MB``) and its ``_repr_html_`` (what Jupyter
shows) a small table with a bounded number of rows. The pieces are here, once, for every
result type.

Example:
    ```python
    from provena_like._display import human_bytes, html_table

    assert human_bytes(944_000_000) == "944 MB"
    html = html_table("2 files", ["path"], [["a.csv"], ["b.csv"]], total=2)
    assert html.count("<tr>") == 3
    ```
"""

from __future__ import annotations

import html
from collections.abc import Sequence

__all__ = ["MAX_HTML_ROWS", "clip", "human_bytes", "html_table"]

MAX_HTML_ROWS = 10
"""The most rows a notebook table shows (the rest is counted, not listed)."""

_UNITS = ("kB", "MB", "GB", "TB", "PB")


def human_bytes(n: int) -> str:
    """``n`` bytes in decimal units with three significant digits: ``944 MB``, ``1.5 kB``.

    Example:
        ```python
        assert [human_bytes(n) for n in (0, 999, 1_500, 12_345_678)] == [
            "0 B", "999 B", "1.5 kB", "12.3 MB"
        ]
        ```
    """
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in _UNITS:
        value /= 1000
        if value < 999.5 or unit == _UNITS[-1]:
            return f"{value:.3g} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def clip(text: str, limit: int = 60) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis.

    Example:
        ```python
        assert (clip("a  b  c"), clip("x" * 99, 5)) == ("a b c", "xxxx…")
        ```
    """
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def html_table(
    caption: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    total: int,
) -> str:
    """A small HTML table: ``caption``, then at most :data:`MAX_HTML_ROWS` of ``rows``.

    Args:
        caption: the one-line summary shown above the table.
        header: the column names.
        rows: the rows, most interesting first (only the first ones are shown).
        total: how many rows there are in all (the rest is counted below the table).

    Returns:
        HTML with every value escaped.
    """
    esc = html.escape
    shown = rows[:MAX_HTML_ROWS]
    parts = [f"<div><strong>{esc(caption)}</strong>"]
    if shown:
        parts.append("<table>")
        parts.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
        parts.extend(
            "<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in shown
        )
        parts.append("</table>")
    if total > len(shown):
        parts.append(f"<p>… and {total - len(shown)} more</p>")
    parts.append("</div>")
    return "".join(parts)
