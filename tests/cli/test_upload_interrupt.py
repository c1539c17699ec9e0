"""Ctrl-C during ``provena-like upload``: finished files are registered, a re-run sends the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from provena_like.storage import RESERVED_KEYS
from provena_like.testing.localstack import LocalStack
from tests.support.datastore_helpers import keys_under
from tests.support.l3_helpers import mint_dataset

pytestmark = pytest.mark.anyio

FILES = 300
SIZE = 2048


async def test_ctrl_c_registers_the_finished_files_and_a_rerun_sends_only_the_rest(
    localstack: LocalStack, tmp_path: Path
) -> None:
    store = localstack.s3
    assert store is not None
    async with localstack.client() as pv:
        ds = await mint_dataset(pv, "Interrupted upload")
    location = ds.dataset.storage
    src = tmp_path / "src"
    src.mkdir()
    for i in range(FILES):
        (src / f"f{i:04d}.bin").write_bytes(os.urandom(SIZE))
    env = {
        **os.environ,
        "PROVENA_BASE_URL": localstack.url,
        "PROVENA_TOKEN_DIR": str(localstack.data_dir / "tokens" / localstack.user.username),
    }
    cmd = [sys.executable, "-m", "provena_like.cli.main", "upload", ds.id, str(src), "--json"]

    def stored() -> set[str]:
        keys = keys_under(store, location.bucket, location.prefix)
        return {k[len(location.prefix) :] for k in keys} - set(RESERVED_KEYS)

    # one file at a time; once 20 files are in the store the upload is frozen (SIGSTOP), so
    # however loaded the machine, the Ctrl-C lands mid-upload, not after it has finished
    upload = subprocess.Popen(
        [*cmd, "--concurrency", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )

    def freeze_once_under_way() -> None:
        deadline = time.monotonic() + 180
        while len(stored()) < 20:
            assert upload.poll() is None, upload.communicate()
            assert time.monotonic() < deadline, "the upload did not start"
            time.sleep(0.01)  # polling with a deadline, in a worker thread
        upload.send_signal(signal.SIGSTOP)

    try:
        await anyio.to_thread.run_sync(freeze_once_under_way)
        frozen_at = len(stored())
        assert frozen_at < FILES
        upload.send_signal(signal.SIGINT)  # delivered as it resumes, before it sends more
        upload.send_signal(signal.SIGCONT)
        out, err = await anyio.to_thread.run_sync(lambda: upload.communicate(timeout=180))
    finally:
        if upload.poll() is None:
            upload.send_signal(signal.SIGCONT)
            upload.kill()
    assert upload.returncode == 130, (out, err)
    error = json.loads(out)["error"]
    kept = error["files_kept"]
    # every file stored when it froze finished, but the last one may not have been seen to
    assert frozen_at - 1 <= kept < FILES, (frozen_at, error)
    assert error["files_registered"] == kept
    assert f"{kept:,} files kept, {kept:,} of them registered" in error["message"]

    # the manifest holds exactly the files that finished (each is in the store)
    async with localstack.client() as pv:
        registered = {f.path for f in await (await pv.datastore.interactive(ds.id)).list_files()}
    in_store = stored()
    assert len(registered) == kept and registered <= in_store
    assert len(in_store - registered) <= 1  # at most the one in flight: in the store only

    # the same command again sends only the rest
    rerun = await anyio.to_thread.run_sync(
        lambda: subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    )
    assert rerun.returncode == 0, rerun.stderr
    doc = json.loads(rerun.stdout)
    sent = {f["path"] for f in doc["files"] if f["status"] == "ok"}
    assert sent == {f"f{i:04d}.bin" for i in range(FILES)} - in_store
    assert doc["bytes"] == len(sent) * SIZE
    assert doc["skipped"] == len(in_store) and doc["failed"] == 0
    async with localstack.client() as pv:
        files = await (await pv.datastore.interactive(ds.id)).list_files()
    assert len(files) == FILES
