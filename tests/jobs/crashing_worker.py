"""A job worker process for the crash test: runs ``test.crash`` jobs until it is killed.

``python -m tests.jobs.crashing_worker DATABASE_URL``: its handler saves one step of progress
per ``checkpoint`` and, after ``die_after`` steps, waits forever (for the ``SIGKILL``).
"""

from __future__ import annotations

import sys

import anyio

from provena_like.server.db.base import create_engine, create_sessionmaker
from provena_like.server.jobs import JobContext, JobRunner

LEASE_SECONDS = 2.0


async def crash_midway(ctx: JobContext) -> None:
    done = int(ctx.progress.get("done", 0))
    while done < int(ctx.payload["die_after"]):
        done += 1
        await ctx.checkpoint({"done": done, "by_attempt": ctx.attempt})
    await anyio.sleep_forever()


async def main(url: str) -> None:
    engine = create_engine(url)
    runner = JobRunner(workers=1, lease_seconds=LEASE_SECONDS, poll_seconds=0.1)
    runner.register("test.crash", crash_midway)
    async with runner.running(create_sessionmaker(engine)):
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
