"""The index without HTTP: documents, the query language, the migration, record filters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from provena_like.server.db.schema import alembic_config
from provena_like.server.errors import ServiceError
from provena_like.server.registry.tables import ItemRow
from provena_like.server.search.backend import backend_for, is_index_table
from provena_like.server.search.documents import (
    MARK_END,
    MARK_START,
    document_for,
    render_highlight,
)
from provena_like.server.search.highlight import fold, mark_matches, words_only
from provena_like.server.search.query import Term, parse_query
from provena_like.server.search.sqlite_fts import match_expression

DATASET = {
    "dataset_info": {
        "name": "Reef survey 2024",
        "description": "Transects of the <outer> reef.",
        "keywords": ["coral", "bleaching"],
        "purpose": "Monitoring",
        "user_metadata": {"site": "Heron Island", "depth_m": 12.5, "ok": True},
    },
    "associations": {"organisation_id": "10378.1/1"},
}


def test_documents_flatten_every_text_leaf_and_boost_names_and_keywords() -> None:
    doc = document_for(7, "Reef survey 2024", "dataset", "alice", DATASET)
    assert doc.seq == 7 and doc.subtype == "dataset" and doc.owner == "alice"
    assert doc.keywords == "Reef survey 2024 · coral · bleaching"
    for text in ["Transects of the <outer> reef.", "Monitoring", "Heron Island", "12.5"]:
        assert text in doc.record
    assert "True" not in doc.record and "10378.1/1" in doc.record
    noisy = document_for(1, "a\x00b\ue000c", "x", "y", {"k": "\x07bell"})
    assert noisy.display_name == "a b c" and noisy.record == "bell"


def test_highlights_escape_everything_but_mark() -> None:
    assert render_highlight(None) is None
    assert render_highlight("no match here") is None
    assert render_highlight("<b>\ue000x\ue001</b>&") == "&lt;b&gt;<mark>x</mark>&lt;/b&gt;&amp;"


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("ocean", '("ocean")'),
        ('ocean "sea ice"', '("ocean" AND "sea ice")'),
        ("a OR b", '("a") OR ("b")'),
        ("temp* -coral", '(("temp"*) NOT ("coral"))'),
        ('x NOT "y z"', '(("x") NOT ("y z"))'),
        ('say "hi', '("say" AND "hi")'),
        ('a"b', '("a""b")'),
        ("col:val AND (x)", '("col:val" AND "(x)")'),
        ("OR a OR OR b OR", '("a") OR ("b")'),
        (
            "extracted:temp* -Extracted:kelvin",
            '(({extracted} : "temp"*) NOT ({extracted} : "kelvin"))',
        ),
        ('a OR NOT extracted:"x y" b', '("a") OR (("b") NOT ({extracted} : "x y"))'),
        ('extracted:OR extracted:a"b', '({extracted} : "OR" AND {extracted} : "a""b")'),
        ("doi:10.1/x tag:t", '("doi:10.1/x" AND "tag:t")'),
        ('"dataset:reef"', '("dataset:reef")'),  # quoted: text, not a kind
        (
            "doi:10.1/x Column:t",
            '("doi:10.1/x" AND ({extracted_column} : "t" AND {extracted} : "t"))',
        ),
        (
            'attribute:unit* -variable:"sea ice" OR dataset:a"b',
            '((({extracted_attribute} : "unit"* AND {extracted} : "unit"*)) '
            'NOT ({extracted_variable} : "sea ice")) OR '
            '(({extracted_dataset} : "a""b" AND {extracted} : "a""b"))',
        ),
    ],
)
def test_fts5_query_strings_quote_every_term(q: str, expected: str) -> None:
    assert match_expression(parse_query(q)) == expected


def test_query_terms() -> None:
    parsed = parse_query('"Sea  ice" temp* -coral')
    assert parsed.terms == [
        Term("Sea ice"),
        Term("temp", prefix=True),
        Term("coral", negated=True),
    ]
    assert Term("marine-bio").words == ["marine", "bio"]


@pytest.mark.parametrize(
    "q",
    [
        "",
        "  ",
        '"',
        "* - :",
        "-a",
        "a OR -b",
        "x" * 501,
        "extracted:",
        "extracted: a",
        "a extracted:*",
        "column:",
        "a -attribute:*",
        'variable:"-"',
        "dataset: a",
    ],
)
def test_unusable_queries_are_422(q: str) -> None:
    with pytest.raises(ServiceError) as err:
        parse_query(q)
    assert err.value.status == 422
    assert err.value.details[0]["field"] == "query.q"


def test_index_tables_are_recognised() -> None:
    for name in ["search_fts", "search_fts_data", "search_fts_idx", "search_documents"]:
        assert is_index_table(name)
    for name in [None, "registry_items", "search", "datastore_files"]:
        assert not is_index_table(name)


def _item(seq: int, record: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": f"10378.1/{seq}",
        "seq": seq,
        "subtype": "dataset",
        "display_name": f"Item {seq}",
        "name_key": f"item {seq}",
        "owner": "alice",
        "created_at": now,
        "updated_at": now,
        "revision": 1,
        "record": record,
        "general_roles": [],
        "group_roles": {},
        "locked": False,
        "version": 1,
    }


def test_migration_indexes_existing_items_and_field_filters(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'search.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0001")
    engine = sa.create_engine(url)
    other = {"dataset_info": {"name": "Other", "keywords": "coral reef", "depth": 3}}
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(ItemRow), [_item(1, DATASET), _item(2, other)])
        command.upgrade(cfg, "0003_search")
        backend = backend_for("sqlite")
        with engine.connect() as conn:
            matches = backend.ranked(parse_query("bleaching"))
            assert conn.execute(sa.select(matches.c.seq)).scalars().all() == [1]

            def found(*path: str, value: str) -> list[int]:
                stmt = sa.select(ItemRow.seq).where(
                    backend.field_filter(ItemRow.record, path, value)
                )
                return list(conn.execute(stmt.order_by(ItemRow.seq)).scalars())

            assert found("dataset_info", "keywords", value="coral") == [1]  # array element
            assert found("dataset_info", "keywords", value="coral reef") == [2]  # scalar
            assert found("dataset_info", "name", value="Other") == [2]
            assert found("dataset_info", "depth", value="3") == [2]  # numbers as text
            assert found("dataset_info", "user_metadata", "site", value="Heron Island") == [1]
            assert found("dataset_info", value="Other") == []  # an object never matches
            assert found("nothing", value="x") == []
        command.downgrade(cfg, "0001")
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
        assert not [t for t in tables if is_index_table(t)]
    finally:
        engine.dispose()


def _marks(text: str) -> str:
    return text.replace(MARK_START, "[").replace(MARK_END, "]")


def test_python_highlighter_marks_words_phrases_and_prefixes() -> None:
    assert words_only("https://example.org/reef_2024 <b>Café</b>") == (
        "https example org reef 2024 b Café b"
    )
    assert fold("ÉCOLE") == "ecole"
    text = "Sea ice and the SEA: ice-free seas, by Café Océan"
    q = parse_query('"sea ice" cafe* -by')
    assert _marks(mark_matches(text, q)) == (
        "[Sea ice] and the [SEA: ice]-free seas, by [Café] Océan"
    )
    assert mark_matches(text, parse_query("nothing")) == ""
    long = " ".join(f"w{i}" for i in range(100))
    cut = _marks(mark_matches(long, parse_query("w50"), window=8))
    assert cut == "…w48 w49 [w50] w51 w52 w53 w54 w55…"
    assert _marks(mark_matches(long, parse_query("w0"), window=3)) == "[w0] w1 w2…"
    assert _marks(mark_matches(long, parse_query("w99"), window=3)) == "…w97 w98 [w99]"
