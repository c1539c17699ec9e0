"""A process that deletes datasets and kills itself (SIGKILL) at a given step.

``python -m tests.support.deletion_child JSON`` where JSON holds the server's ``base_url``,
``token_dir``, the user's ``token``, the ``Replicated`` fields (``s3``, ``s3_root``,
``posix``, ``posix_root``, ``ids``, ``session``) and ``kill_at``: ``[dataset_id, step]`` of
the first :class:`~provena_like.modules.deletion.DeletionEvent` after which to die.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio

from provena_like import ProvenaClient
from provena_like._core.config import ProvenaConfig
from provena_like.modules.deletion import DeletionEvent, delete_datasets
from tests.support.deletion_helpers import Replicated, opened


async def main(args: dict[str, Any]) -> None:
    """Delete ``args["ids"]``; die by SIGKILL right after the step ``args["kill_at"]``."""
    config = ProvenaConfig(
        base_url=args["base_url"], token_dir=args["token_dir"], access_token=args["token"]
    )
    rep = Replicated(
        args["s3"],
        args["s3_root"],
        args["posix"],
        Path(args["posix_root"]),
        args["ids"],
        {},
        args["session"],
    )
    dataset_id, step = args["kill_at"]

    def die(event: DeletionEvent) -> None:
        if event.dataset_id == dataset_id and event.step == step:
            os.kill(os.getpid(), signal.SIGKILL)

    async with ProvenaClient(config) as pv, opened(pv, rep) as repositories:
        await delete_datasets(pv, rep.ids, repositories=repositories, on_progress=die)


if __name__ == "__main__":
    anyio.run(main, json.loads(sys.argv[1]))
