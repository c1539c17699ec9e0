"""Results print as one short line, and as a small bounded table in a notebook."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from provena_like import ProvenaClient
from provena_like.storage import FileCheck, FileResult, TransferResult, VerifyResult
from provena_like.testing.localstack import LocalStack
from tests.support.users import User

SHA = "ab" * 32


def three_hundred_files() -> TransferResult:
    files = [
        FileResult(
            f"raw/site-{i % 3}/day-{i:03d}.csv",
            "ok",
            size=3_104_000,
            sha256=SHA,
            md5="cd" * 16,
            etag="ef" * 16,
            local=Path("data") / f"day-{i:03d}.csv",
        )
        for i in range(300)
    ]
    files += [FileResult("notes.tmp", "skipped", reason="excluded")] * 4
    return TransferResult(files)


def test_a_300_file_transfer_result_is_one_short_line() -> None:
    result = three_hundred_files()
    text = repr(result)
    assert text == "TransferResult: 300 ok, 0 failed, 4 skipped, 931 MB"
    assert len(text) < 200


def test_a_failure_is_named_in_the_line_but_kept_short() -> None:
    result = three_hundred_files()
    reason = "AccessDenied: " + "the credentials do not allow this key " * 20
    result.files.append(FileResult("raw/x.csv", "failed", reason=reason, error=OSError(reason)))
    text = repr(result)
    assert text.startswith("TransferResult: 300 ok, 1 failed, 4 skipped, 931 MB; first failure")
    assert "raw/x.csv: AccessDenied" in text and len(text) < 200


def test_the_notebook_table_is_bounded_and_shows_failures_first() -> None:
    result = three_hundred_files()
    result.files.append(FileResult("raw/<x>.csv", "failed", reason="boom"))
    html = result._repr_html_()
    assert html.count("<tr>") == 1 + 10  # header + at most ten rows
    assert html.index("raw/&lt;x&gt;.csv") < html.index("notes.tmp") < html.index("day-000")
    assert "and 295 more" in html
    assert len(html) < 3000


def test_verify_results_say_whether_the_copy_matches() -> None:
    ok = [FileCheck(f"f{i}", "ok", size=1) for i in range(300)]
    assert repr(VerifyResult(ok)) == "VerifyResult: matches, 300 ok"
    differs = VerifyResult(
        [*ok, FileCheck("a", "mismatch", "sha256"), FileCheck("b", "missing-local")]
    )
    assert repr(differs) == "VerifyResult: differs, 300 ok, 1 mismatch, 1 missing-local"
    html = differs._repr_html_()
    assert html.count("<tr>") == 11 and html.index(">a<") < html.index(">f0<")


async def test_a_search_page_is_one_line_and_a_table_of_ids_and_names(
    localstack: LocalStack, new_user: Callable[..., User]
) -> None:
    user = new_user("pages")
    word = f"pagerepr{uuid.uuid4().hex[:8]}"
    async with ProvenaClient(localstack.config(access_token=user.token)) as pv:
        for i in range(12):
            await pv.registry_client.create_item(
                {"subtype": "organisation", "record": {"name": f"{word} <lab> {i}"}}
            )
        page = await pv.search_client.search_items(word, page_size=11)
    assert repr(page) == "Page[SearchHit]: 11 items, more after this page"
    html = page._repr_html_()
    assert html.count("<tr>") == 1 + 10 and "and 1 more" in html
    assert page.items[0].item.id in html and "&lt;lab&gt;" in html
