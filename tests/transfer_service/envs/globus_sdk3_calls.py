"""Every transfer route, called with globus-sdk 3.x: run in the environment of globus-sdk-3.txt.

Not a test module: ``tests/transfer_service/test_globus_sdk3.py`` runs it with the v3
environment's Python (``python globus_sdk3_calls.py < setup.json``) and checks what it prints.
It reads the setup as JSON on stdin (``base_url``, ``token``, ``src`` and ``dst`` collection
ids, a ``term`` naming the source collection, a ``label``) and prints one JSON object: for each
call, by name, the HTTP ``status`` and the ``json`` answered (an API error is an answer like
another), and the documents v3 sent (``sent_*``). It imports nothing of the project: only the
SDK under test and the standard library.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from typing import Any

import globus_sdk

if not globus_sdk.__version__.startswith("3."):
    raise SystemExit(f"this runs globus-sdk 3.x, not {globus_sdk.__version__}")


def answer(call: Callable[[], Any]) -> dict[str, Any]:
    """The status and JSON of one SDK call (a ``TransferAPIError`` is an answer too)."""
    try:
        response = call()
    except globus_sdk.TransferAPIError as err:
        return {"status": err.http_status, "json": err.raw_json}
    return {"status": response.http_status, "json": response.data}


def main() -> None:
    """Call every route in turn and print the answers."""
    setup = json.load(sys.stdin)
    src, dst, label = setup["src"], setup["dst"], setup["label"]
    tc = globus_sdk.TransferClient(
        base_url=setup["base_url"],
        authorizer=globus_sdk.AccessTokenAuthorizer(setup["token"]),
    )
    out: dict[str, Any] = {"sdk_version": globus_sdk.__version__}

    out["submission_id"] = answer(tc.get_submission_id)
    out["endpoint"] = answer(lambda: tc.get_endpoint(src))
    out["endpoint_missing"] = answer(lambda: tc.get_endpoint(str(uuid.uuid4())))
    out["endpoint_search"] = answer(lambda: tc.endpoint_search(setup["term"]))
    out["endpoint_search_items"] = [
        e["id"] for e in tc.paginated.endpoint_search(setup["term"]).items()
    ]

    out["ls"] = answer(lambda: tc.operation_ls(src, path="/~/share"))
    out["ls_visible"] = answer(lambda: tc.operation_ls(src, path="/share/", show_hidden=False))
    out["ls_page"] = answer(lambda: tc.operation_ls(src, path="/share/", limit=2, offset=1))
    out["ls_missing"] = answer(lambda: tc.operation_ls(src, path="/nope/"))
    out["stat"] = answer(lambda: tc.operation_stat(src, "/share/file1.txt"))
    out["stat_missing"] = answer(lambda: tc.operation_stat(src, "/share/nope"))
    out["mkdir"] = answer(lambda: tc.operation_mkdir(dst, "/made"))
    out["mkdir_exists"] = answer(lambda: tc.operation_mkdir(dst, "/made/"))
    out["rename"] = answer(lambda: tc.operation_rename(dst, "/made", "/renamed"))
    out["rename_missing"] = answer(lambda: tc.operation_rename(dst, "/made", "/again"))

    # v3 builds the full document (every boolean) and fetches its submission id right here
    doc = globus_sdk.TransferData(
        tc, src, dst, label=label, sync_level="checksum", verify_checksum=True
    )
    doc.add_item("/share/", "/copy/", recursive=True)
    doc.add_item("/share/file1.txt", "/single.txt")
    out["sent_transfer"] = dict(doc)
    out["transfer"] = answer(lambda: tc.submit_transfer(doc))
    out["transfer_again"] = answer(lambda: tc.submit_transfer(doc))
    out["transfer_empty"] = answer(
        lambda: tc.submit_transfer(globus_sdk.TransferData(tc, src, dst))
    )
    task_id = out["transfer"]["json"]["task_id"]
    out["transfer_waited"] = tc.task_wait(task_id, timeout=150, polling_interval=1)

    out["task"] = answer(lambda: tc.get_task(task_id))
    out["task_missing"] = answer(lambda: tc.get_task(str(uuid.uuid4())))
    out["update_task"] = answer(lambda: tc.update_task(task_id, {"label": f"{label} (renamed)"}))
    out["task_list"] = answer(lambda: tc.task_list(filter="type:TRANSFER/status:SUCCEEDED"))
    out["task_list_items"] = [t["task_id"] for t in tc.paginated.task_list().items()]
    out["successful_transfers"] = answer(lambda: tc.task_successful_transfers(task_id))
    out["successful_transfers_items"] = sorted(
        t["destination_path"] for t in tc.paginated.task_successful_transfers(task_id).items()
    )
    out["skipped_errors"] = answer(lambda: tc.task_skipped_errors(task_id))
    out["event_list"] = answer(lambda: tc.task_event_list(task_id))
    out["cancel_done"] = answer(lambda: tc.cancel_task(task_id))

    delete = globus_sdk.DeleteData(tc, dst, recursive=True, label=f"{label} delete")
    delete.add_item("/old")
    out["sent_delete"] = dict(delete)
    out["delete"] = answer(lambda: tc.submit_delete(delete))
    delete_id = out["delete"]["json"]["task_id"]
    out["delete_waited"] = tc.task_wait(delete_id, timeout=150, polling_interval=1)
    out["delete_task"] = answer(lambda: tc.get_task(delete_id))

    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
