"""The search query language: user text parsed into terms, never passed to SQL as syntax.

The same small language works on every backend (it is close to what web search engines and
PostgreSQL's ``websearch_to_tsquery`` accept):

```text
ocean temperature          both words (AND)
"sea surface"              the phrase
ocean OR marine            either
ocean -coral  /  ocean NOT coral
                           ocean, but not coral
temp*                      words starting with "temp"
```

``AND`` between words is accepted and changes nothing. Everything else - quotes in odd
places, ``:``, ``(``, ``^``, a lone ``*`` or ``-`` - is text: each term becomes a quoted
FTS5 string or a bound parameter of a PostgreSQL ``tsquery`` function, so no input can
reach the database as query syntax. A term without a letter or digit is dropped; a query left
with nothing to look for is a 422 naming ``q``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provena_like.server.errors import ServiceError, validation_error

__all__ = ["MAX_QUERY_LENGTH", "MAX_TERMS", "ParsedQuery", "Term", "parse_query"]

MAX_QUERY_LENGTH = 500
"""The longest ``q`` accepted, in characters."""

MAX_TERMS = 16
"""The most terms (words and phrases) a query may have."""

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD_CHAR = re.compile(r"[^\W_]")
_WORDS = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Term:
    """One word or quoted phrase of a query.

    Attributes:
        text: the words, without quotes or operators (may hold punctuation: it is data).
        prefix: the last word matches as a prefix (``temp*``).
        negated: the term must *not* occur (``-coral``).
    """

    text: str
    prefix: bool = False
    negated: bool = False

    @property
    def words(self) -> list[str]:
        """The runs of letters and digits in :attr:`text`."""
        return _WORDS.findall(self.text)


@dataclass(frozen=True)
class ParsedQuery:
    """A query as alternatives (OR) of conjunctions (AND) of terms.

    Every alternative has at least one term that is not negated.
    """

    alternatives: tuple[tuple[Term, ...], ...]

    @property
    def terms(self) -> list[Term]:
        """Every term, in order."""
        return [term for alternative in self.alternatives for term in alternative]


def _invalid(message: str) -> ServiceError:
    return validation_error(
        [{"field": "query.q", "message": message, "type": "search_query"}],
        message=f"Invalid request: check q ({message}).",
    )


def parse_query(q: str) -> ParsedQuery:
    """Parse the text of a search box.

    Args:
        q: what the user typed.

    Returns:
        The parsed query.

    Raises:
        ServiceError: 422 naming ``q`` when it is blank, too long, holds a NUL character,
            has too many terms, has nothing but punctuation, or has an alternative with only
            excluded terms.

    Example:
        ```python
        parse_query('"sea surface" temp* -coral')
        # alternatives=((Term("sea surface"), Term("temp", prefix=True),
        #                Term("coral", negated=True)),)
        ```
    """
    if len(q) > MAX_QUERY_LENGTH:
        raise _invalid(f"at most {MAX_QUERY_LENGTH} characters")
    if not q.strip():
        raise _invalid("the query is blank; type at least one word")
    if "\x00" in q:
        raise _invalid("the query contains a NUL character")
    alternatives: list[tuple[Term, ...]] = []
    current: list[Term] = []
    negate_next = False
    count = 0
    for match in _TOKEN.finditer(q):
        minus, phrase, bare = match.group(1), match.group(2), match.group(3)
        if bare is not None:
            if bare == "OR":
                if current:
                    alternatives.append(tuple(current))
                current, negate_next = [], False
                continue
            if bare == "AND":
                continue
            if bare == "NOT":
                negate_next = True
                continue
            text = bare.lstrip("-")
            negated = text != bare
            prefix = text.endswith("*")
            text = text.rstrip("*")
        else:
            text, negated, prefix = phrase, bool(minus), False
        if not _WORD_CHAR.search(text):
            continue
        count += 1
        if count > MAX_TERMS:
            raise _invalid(f"at most {MAX_TERMS} words or phrases")
        current.append(Term(" ".join(text.split()), prefix=prefix, negated=negated or negate_next))
        negate_next = False
    if current:
        alternatives.append(tuple(current))
    if not alternatives:
        raise _invalid("no letters or digits to search for")
    for alternative in alternatives:
        if all(term.negated for term in alternative):
            raise _invalid("every alternative needs a word that is not excluded with '-'")
    return ParsedQuery(tuple(alternatives))
