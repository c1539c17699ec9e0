"""The blocking facade is typed: its stub is generated from the async SDK and kept current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.blocking_stubs import STUB, generate

REPO = Path(__file__).resolve().parents[2]

USAGE = """
from provena_like.blocking import BlockingClient


def flow(pv: BlockingClient) -> None:
    ds = pv.datastore.mint({})
    reveal_type(ds)
    reveal_type(ds.upload("data"))
    reveal_type(ds.verify("copy"))
    for hit in pv.datastore.search("reef"):
        reveal_type(hit)
    for item in pv.registry_client.iter_items():
        reveal_type(item)
    reveal_type(pv.as_user("token").datastore.review)
    wrong: int = ds.download("copy")
    pv.datastore.mint({}, idempotency_kee="typo")
"""


def test_the_stub_is_what_the_generator_writes() -> None:
    assert STUB.read_text() == generate(), (
        "the async SDK changed: run 'python -m tests.support.blocking_stubs'"
    )


def test_a_type_checker_sees_the_blocking_return_types(tmp_path: Path) -> None:
    (tmp_path / "usage.py").write_text(USAGE)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            str(tmp_path / "usage.py"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    revealed = [
        line.split("Revealed type is ", 1)[1]
        for line in done.stdout.splitlines()
        if "Revealed type" in line
    ]
    assert revealed == [
        '"provena_like._blocking_types.BlockingInteractiveDataset"',
        '"provena_like.storage.results.TransferResult"',
        '"provena_like.storage.results.VerifyResult"',
        '"provena_like.models.search.SearchHit"',
        '"provena_like.models.registry.Item"',
        '"provena_like._blocking_types.BlockingReview"',
    ], done.stdout
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2, done.stdout
    assert "TransferResult" in errors[0] and '"idempotency_kee"' in errors[1]
