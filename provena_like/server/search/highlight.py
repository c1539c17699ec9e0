"""Word-level text handling shared by the backends: normalising text, highlighting matches.

A *word* is a run of letters and digits (what SQLite's ``unicode61`` tokenizer calls a
token); words are compared case- and accent-insensitively. PostgreSQL's own parser knows
URLs, e-mail addresses, file paths and XML tags and keeps them whole (``example.org/reef``
is one lexeme, text between ``<b>`` tags is dropped), so the PostgreSQL backend indexes
:func:`words_only` text and highlights with :func:`mark_matches` rather than ``ts_headline``:
a word is found, and marked, wherever it is, on both backends.
"""

from __future__ import annotations

import re
import unicodedata

from provena_like.server.search.documents import MARK_END, MARK_START
from provena_like.server.search.query import ParsedQuery

__all__ = ["fold", "mark_matches", "words_only"]

_WORD = re.compile(r"[^\W_]+")


def words_only(text: str) -> str:
    """``text`` reduced to its words, separated by single spaces."""
    return " ".join(_WORD.findall(text))


def fold(word: str) -> str:
    """A word without case or accents (``Café`` → ``cafe``)."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _phrases(query: ParsedQuery) -> list[tuple[list[str], bool]]:
    """The folded words of every term that must occur, and whether the last is a prefix."""
    out = []
    for term in query.terms:
        words = [fold(w) for w in term.words]
        if words and not term.negated:
            out.append((words, term.prefix))
    return out


def _matches_at(tokens: list[str], i: int, words: list[str], prefix: bool) -> bool:
    if i + len(words) > len(tokens):
        return False
    for k, word in enumerate(words):
        token = tokens[i + k]
        last = k == len(words) - 1
        if not (token.startswith(word) if last and prefix else token == word):
            return False
    return True


def mark_matches(text: str, query: ParsedQuery, *, window: int | None = None) -> str:
    """``text`` with every match of ``query`` between ``MARK_START`` and ``MARK_END``.

    Args:
        text: the field's text.
        query: the parsed query; its excluded terms are never marked.
        window: show only this many words around the first match (``…`` marks a cut);
            None shows the whole text.

    Returns:
        The marked text, or ``""`` when nothing matched.

    Example:
        ```python
        mark_matches("Café Océan", parse_query("cafe"))
        # MARK_START + "Café" + MARK_END + " Océan"
        ```
    """
    spans = [m.span() for m in _WORD.finditer(text)]
    tokens = [fold(text[a:b]) for a, b in spans]
    marked: list[tuple[int, int]] = []  # token index ranges, end exclusive
    phrases = _phrases(query)
    i = 0
    while i < len(tokens):
        hit = next((len(w) for w, p in phrases if _matches_at(tokens, i, w, p)), 0)
        if hit:
            marked.append((i, i + hit))
            i += hit
        else:
            i += 1
    if not marked:
        return ""
    first, last = 0, len(tokens)
    if window is not None and len(tokens) > window:
        first = max(0, marked[0][0] - window // 4)
        last = min(len(tokens), first + window)
        first = max(0, last - window)
    start = 0 if first == 0 else spans[first][0]
    end = len(text) if last == len(tokens) else spans[last - 1][1]
    out = ["…" if start > 0 else ""]
    position = start
    for a, b in marked:
        if a < first or b > last:
            continue
        out += [text[position : spans[a][0]], MARK_START, text[spans[a][0] : spans[b - 1][1]]]
        out.append(MARK_END)
        position = spans[b - 1][1]
    out += [text[position:end], "…" if end < len(text) else ""]
    return "".join(out)
