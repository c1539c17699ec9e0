"""The server's own check of registered files where the store doesn't verify checksums.

SeaweedFS refuses a wrong ``x-amz-checksum-sha256``; the other stores don't. These tests run
on SeaweedFS: the start-up probe must find that it verifies (mode ``store``), and a server
told that its store does not (``store_verifies_checksums=False``) and to check everything
(``verify_uploads="all"``) must read objects back and refuse a registration whose bytes are
not the ones described: an object overwritten through the dataset's own credentials with
other bytes of the same size, without a sha256 the store could check.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from provena_like.models.datastore import FileRegistration
from provena_like.server.datastore.verification import (
    PROBE_PREFIX,
    UploadVerification,
    probe_checksum_verification,
    upload_verification,
)
from provena_like.testing.localstack import LocalStack
from provena_like.testing.seaweed import SeaweedS3
from provena_like.testing.server_thread import ServerThread
from tests.datastore.conftest import make_refs
from tests.support.auth_helpers import running_server
from tests.support.datastore_helpers import User, error, keys_under, mint, path, record, s3_client
from tests.support.fixtures import service_client
from tests.support.users import issue_token

pytestmark = pytest.mark.anyio

STRICT_BUCKET = "verify-all"


@pytest.fixture(scope="module")
def strict_server(
    localstack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A second server on the session's SeaweedFS (its own bucket), checking every file."""
    assert localstack.s3 is not None and localstack.settings is not None
    assert localstack.settings.s3 is not None
    localstack.s3.create_bucket(STRICT_BUCKET)
    s3 = localstack.settings.s3.model_copy(
        update={
            "bucket": STRICT_BUCKET,
            "store_verifies_checksums": False,
            "verify_uploads": "all",
        }
    )
    with running_server(tmp_path_factory.mktemp("strict-server"), s3=s3) as srv:
        yield srv


async def test_probe_finds_that_seaweedfs_verifies(
    server: ServerThread, store: SeaweedS3, bucket: str
) -> None:
    async with service_client(server) as http:
        r = await http.get("/healthz")
    assert r.status_code == 200 and r.json()["verify_uploads"] == "store"
    state: UploadVerification = server.app.state.upload_verification
    assert state.store_verifies and state.probed

    assert server.call(lambda: probe_checksum_verification(server.app.state.object_store))
    assert keys_under(store, bucket, PROBE_PREFIX) == []  # refused: nothing was left


async def test_mode_follows_the_settings(server: ServerThread) -> None:
    s3 = server.settings.s3
    assert s3 is not None
    cases = [
        ({"store_verifies_checksums": False}, ("sample", False, False)),
        ({"store_verifies_checksums": True}, ("store", True, False)),
        ({"verify_uploads": "all"}, ("all", True, True)),
        ({"store_verifies_checksums": True, "verify_uploads": "sample"}, ("sample", True, False)),
        ({"store_verifies_checksums": False, "verify_uploads": "store"}, ("store", False, False)),
    ]
    store = server.app.state.object_store
    for update, expected in cases:
        settings = s3.model_copy(update=update)
        got = server.call(lambda settings=settings: upload_verification(store, settings))
        assert (got.mode, got.store_verifies, got.probed) == expected, update


def test_sample_is_a_random_subset() -> None:
    files = [FileRegistration(path=f"f{i}.csv", size=1, sha256="a" * 64) for i in range(20)]
    sample = UploadVerification(mode="sample", store_verifies=False, probed=False, sample_size=3)
    seen: set[str] = set()
    for _ in range(20):
        chosen = sample.chosen(files)
        assert len({f.path for f in chosen}) == 3 and all(f in files for f in chosen)
        seen.update(f.path for f in chosen)
    assert len(seen) > 3  # not always the same three
    assert sample.chosen(files[:2]) == files[:2]
    every = UploadVerification(mode="all", store_verifies=False, probed=False, sample_size=3)
    assert every.chosen(files) == files
    trusting = UploadVerification(mode="store", store_verifies=True, probed=True, sample_size=3)
    assert trusting.chosen(files) == []


@pytest.fixture
async def strict(strict_server: ServerThread) -> AsyncIterator[tuple[httpx.AsyncClient, User]]:
    name = f"owner-{uuid.uuid4().hex[:10]}"
    owner = User(name, issue_token(strict_server, name))
    async with service_client(strict_server) as http:
        yield http, owner


async def test_forced_all_refuses_an_object_overwritten_with_other_bytes(
    strict: tuple[httpx.AsyncClient, User], strict_server: ServerThread, store: SeaweedS3
) -> None:
    http, owner = strict
    r = await http.get("/healthz")
    assert r.json()["verify_uploads"] == "all"
    async with service_client(strict_server, "registry") as registry:
        refs = await make_refs(registry, owner)
    async with service_client(strict_server, "datastore") as datastore:
        ds = await mint(datastore, owner, record(refs))
        r = await datastore.post(
            path(ds["id"], "/credentials"), json={"access": "write"}, headers=owner.headers
        )
        assert r.status_code == 200, r.text
        creds = r.json()
        good, other = b"a,b\n1,2\n" * 100, b"a,b\n6,6\n" * 100
        prefix = ds["storage"]["prefix"]
        with s3_client(store, creds) as raw:  # the dataset's own write credentials
            raw.put_object(Bucket=STRICT_BUCKET, Key=prefix + "raw/ok.csv", Body=good)
            raw.put_object(Bucket=STRICT_BUCKET, Key=prefix + "raw/swapped.csv", Body=good)
            raw.put_object(Bucket=STRICT_BUCKET, Key=prefix + "raw/swapped.csv", Body=other)
        claimed = hashlib.sha256(good).hexdigest()
        files = [
            {"path": "raw/ok.csv", "size": len(good), "sha256": claimed},
            {"path": "raw/swapped.csv", "size": len(good), "sha256": claimed},
        ]
        url = path(ds["id"], "/files")
        r = await datastore.post(url, json={"files": files}, headers=owner.headers)
        assert r.status_code == 422, r.text
        body = error(r)
        assert "raw/swapped.csv" in body["message"] and "raw/ok.csv" not in body["message"]
        [detail] = body["details"]
        assert detail["field"] == "files.1.path" and detail["type"] == "checksum_mismatch"
        assert hashlib.sha256(other).hexdigest() in detail["message"]
        listed = await datastore.get(url, headers=owner.headers)
        assert listed.json()["items"] == []  # nothing was registered

        r = await datastore.post(url, json={"files": files[:1]}, headers=owner.headers)
        assert r.status_code == 200, r.text
        assert [e["path"] for e in r.json()["registered"]] == ["raw/ok.csv"]
