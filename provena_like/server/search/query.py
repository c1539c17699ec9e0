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
extracted:temperature      the word in the extracted metadata only (column names,
                           attribute names and values... of a dataset's files)
extracted:"sea surface"  extracted:temp*  -extracted:kelvin
                           a phrase, a prefix, an exclusion: in the extracted metadata
column:temperature         the word in a table column's name only; likewise
attribute:units            an attribute's name (or a JSON key),
dataset:frames             an HDF5 dataset's name,
variable:sst               a netCDF variable's name (or its standard_name)
```

``AND`` between words is accepted and changes nothing. A scope of :data:`SCOPES`
followed by ``:`` (case ignored) limits the word, phrase or prefix right after it to that
field (``extracted``) or kind of extracted name (``column``...); nothing after it
(``extracted:`` alone, or ``extracted: temperature``) is a 422.
Everything else - quotes in odd places, other ``word:`` prefixes (``doi:10.1/x`` is text),
``(``, ``^``, a lone ``*`` or ``-`` - is text: each term becomes a quoted
FTS5 string or a bound parameter of a PostgreSQL ``tsquery`` function, so no input can
reach the database as query syntax. A term without a letter or digit is dropped; a query left
with nothing to look for is a 422 naming ``q``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provena_like.models.extracted import SEARCH_KINDS
from provena_like.server.errors import ServiceError, validation_error

__all__ = [
    "MAX_QUERY_LENGTH",
    "MAX_TERMS",
    "SCOPES",
    "ParsedQuery",
    "Term",
    "highlight_field",
    "parse_query",
]

MAX_QUERY_LENGTH = 500
"""The longest ``q`` accepted, in characters."""

MAX_TERMS = 16
"""The most terms (words and phrases) a query may have."""

SCOPES: tuple[str, ...] = ("extracted", *SEARCH_KINDS)
"""What a term can be limited to with ``<scope>:``: the ``extracted`` field, or one kind of
extracted name (:data:`~provena_like.models.extracted.SearchKind`: ``column``...)."""


def highlight_field(scope: str) -> str:
    """The field whose highlight marks a term of ``scope``: a kind's in ``extracted``."""
    return "extracted" if scope in SEARCH_KINDS else scope


_SCOPE = "|".join(SCOPES)
_TOKEN = re.compile(rf'(-?)(?:({_SCOPE}):)?"([^"]*)"?|(\S+)', re.IGNORECASE)
_SCOPED = re.compile(rf"(-?)({_SCOPE}):(.*)", re.IGNORECASE | re.DOTALL)
_WORD_CHAR = re.compile(r"[^\W_]")
_WORDS = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Term:
    """One word or quoted phrase of a query.

    Attributes:
        text: the words, without quotes or operators (may hold punctuation: it is data).
        prefix: the last word matches as a prefix (``temp*``).
        negated: the term must *not* occur (``-coral``).
        field: the scope the term must occur in (``extracted``, or a kind such as
            ``column``), None for any.
    """

    text: str
    prefix: bool = False
    negated: bool = False
    field: str | None = None

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

    @property
    def scoped(self) -> bool:
        """Whether a term is limited to a field."""
        return any(term.field is not None for term in self.terms)

    def in_field(self, field: str) -> ParsedQuery:
        """The terms that may match in ``field``: unscoped ones and those scoped to it.

        For highlighting a field (a term of a kind, ``column:x``, is marked in
        ``extracted``); an alternative left without terms is dropped.
        """
        alternatives = (
            tuple(t for t in alternative if t.field is None or highlight_field(t.field) == field)
            for alternative in self.alternatives
        )
        return ParsedQuery(tuple(a for a in alternatives if a))

    def unscoped(self) -> ParsedQuery:
        """A query every match of this one also matches, with no term limited to a field.

        Scoped terms become plain ones; excluded scoped terms are dropped (a word excluded
        from one field may occur in another). Every alternative keeps a wanted term.
        """
        return ParsedQuery(
            tuple(
                tuple(
                    Term(t.text, prefix=t.prefix, negated=t.negated)
                    for t in alternative
                    if not (t.negated and t.field is not None)
                )
                for alternative in self.alternatives
            )
        )


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
        minus, scope, phrase, bare = match.groups()
        if bare is not None and (scoped := _SCOPED.fullmatch(bare)) is not None:
            minus, scope, phrase, bare = scoped.group(1), scoped.group(2), scoped.group(3), None
        if scope is not None:  # a scoped word, phrase or prefix: never an operator
            assert phrase is not None
            text, negated = phrase, bool(minus)
            prefix = match.group(3) is None and text.endswith("*")
            text = text.rstrip("*") if prefix else text
            if not _WORD_CHAR.search(text):
                raise _invalid(
                    f"'{scope}:' needs a word, \"a phrase\" or a prefix* with letters or digits "
                    f"right after it (no space), e.g. {scope.lower()}:temperature"
                )
        elif bare is not None:
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
        field = scope.lower() if scope is not None else None
        negated = negated or negate_next
        current.append(Term(" ".join(text.split()), prefix=prefix, negated=negated, field=field))
        negate_next = False
    if current:
        alternatives.append(tuple(current))
    if not alternatives:
        raise _invalid("no letters or digits to search for")
    for alternative in alternatives:
        if all(term.negated for term in alternative):
            raise _invalid("every alternative needs a word that is not excluded with '-'")
    return ParsedQuery(tuple(alternatives))
