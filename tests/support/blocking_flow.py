"""The getting-started flow through the blocking API (run in-process and as a plain script).

As a script (``python -m tests.support.blocking_flow WORKDIR`` from the repository root),
it builds ``BlockingClient.from_env()`` (``PROVENA_BASE_URL`` and ``PROVENA_ACCESS_TOKEN``
say where and who) and prints the outcome as one JSON line.
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from provena_like.blocking import BlockingClient
from tests.support.l3_helpers import make_record


def write_folder(root: Path) -> dict[str, str]:
    """A small dataset folder: relative path → sha256."""
    digests: dict[str, str] = {}
    for i in range(12):
        relative = f"raw/site-{i % 3}/day-{i:03d}.csv"
        data = f"hour,temp_c\n{i},{20 + i / 10:.1f}\n".encode()
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        digests[relative] = hashlib.sha256(data).hexdigest()
    (root / "README.md").write_bytes(b"# Reef loggers\n")
    digests["README.md"] = hashlib.sha256(b"# Reef loggers\n").hexdigest()
    return digests


def make_refs(pv: BlockingClient) -> dict[str, str]:
    """The organisation and person a dataset record refers to."""
    org = pv.registry_client.create_item(
        {"subtype": "organisation", "record": {"name": "Blocking Reef Institute"}}
    )
    person = pv.registry_client.create_item(
        {
            "subtype": "person",
            "record": {"first_name": "Ada", "last_name": "Ocean", "email": "ada@example.org"},
        }
    )
    return {"organisation": org.id, "person": person.id}


def getting_started(pv: BlockingClient, workdir: Path) -> dict[str, Any]:
    """Who am I, mint, upload, list, search, download, verify: without one ``await``."""
    me = pv.auth_client.userinfo()
    name = f"Blocking reef {uuid.uuid4().hex[:8]}"
    ds = pv.datastore.mint(make_record(make_refs(pv), name=name))
    src = workdir / "src"
    digests = write_folder(src)
    uploaded = ds.upload(src)
    listed = sorted(entry.path for entry in ds.list_files())
    walked = sorted(entry.path for entry in ds.iter_files())  # an async generator, blocking
    hits = [hit.item.id for hit in pv.datastore.search(f'"{name}"', max_items=5)]
    mine = [item.id for item in pv.registry_client.iter_items(owner=me.preferred_username)]
    downloaded = ds.download(workdir / "copy")
    checked = ds.verify(workdir / "copy")
    copied = {
        relative: hashlib.sha256((workdir / "copy" / relative).read_bytes()).hexdigest()
        for relative in digests
    }
    return {
        "user": me.preferred_username,
        "dataset": ds.id,
        "uploaded": repr(uploaded),
        "uploaded_ok": len(uploaded.ok),
        "listed": listed,
        "walked": walked,
        "expected": sorted(digests),
        "hits": hits,
        "mine": ds.id in mine,
        "downloaded": repr(downloaded),
        "downloaded_ok": len(downloaded.ok),
        "verified": repr(checked),
        "matches": checked.matches,
        "same_bytes": copied == digests,
    }


def main() -> None:
    workdir = Path(sys.argv[1])
    with BlockingClient.from_env() as pv:
        outcome = getting_started(pv, workdir)
    sys.stdout.write(json.dumps(outcome) + "\n")


if __name__ == "__main__":
    main()
