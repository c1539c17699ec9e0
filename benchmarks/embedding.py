"""Benchmark: a view of one shared client per request vs a new client per request.

A web backend serving many users can give each request ``pv.as_user(token)`` (a view of
one client: its pool, its connections, its cached S3 credentials) or build a
``ProvenaClient(access_token=token)`` per request (new pool, new connections, nothing
cached). One ``LocalStack`` (reference server and SeaweedFS, on loopback, in this process);
the same user and token on both sides. Per request, sequentially:

* ``userinfo``: make the view or client, ``GET /userinfo``, drop it;
* ``credentials``: make it, fetch the dataset and its read credentials (what a download
  endpoint does), drop it.

Prints the mean time per request of each way and the ratio. Not a test: the numbers depend
on the machine (client and server share its cores).

    uv run python benchmarks/embedding.py              # 200 requests per way and workload
    uv run python benchmarks/embedding.py --requests 50
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Awaitable, Callable

import anyio

from provena_like import ProvenaClient
from provena_like.auth import AuthManager
from provena_like.testing import LocalStack

APPROVALS = ("ethics_registration", "ethics_access", "indigenous_knowledge", "export_controls")

Call = Callable[[ProvenaClient], Awaitable[object]]


async def _dataset(pv: ProvenaClient) -> str:
    registry = pv.registry_client
    org = await registry.create_item(
        {"subtype": "organisation", "record": {"name": f"Bench lab {uuid.uuid4().hex[:6]}"}}
    )
    person = await registry.create_item(
        {"subtype": "person", "record": {"first_name": "A", "last_name": "B", "email": "a@b.org"}}
    )
    ds = await pv.datastore.mint(
        {
            "associations": {"organisation_id": org.id, "point_of_contact": person.id},
            "approvals": {a: {"relevant": False, "obtained": False} for a in APPROVALS},
            "dataset_info": {
                "name": "Embedding benchmark",
                "description": "Timing views against clients.",
                "access_info": {"reposited": True},
                "publisher_id": org.id,
                "created_date": "2024-01-01",
                "published_date": "2024-06-30",
                "license": "https://creativecommons.org/licenses/by/4.0/",
                "keywords": ["bench"],
            },
        }
    )
    return ds.id


async def _per_request(n: int, call: Call, make: Callable[[], ProvenaClient]) -> float:
    """Mean seconds per request of: make a client (or view), ``call`` it, close it."""
    start = time.perf_counter()
    for _ in range(n):
        async with make() as pv:
            await call(pv)
    return (time.perf_counter() - start) / n


async def main(requests: int) -> None:
    async with LocalStack() as stack, stack.client() as shared:
        assert isinstance(shared.auth_manager, AuthManager)
        token = (await shared.auth_manager.get_access_token()).get_secret_value()
        dataset_id = await _dataset(shared)

        async def userinfo(pv: ProvenaClient) -> object:
            return await pv.auth_client.userinfo()

        async def credentials(pv: ProvenaClient) -> object:
            await pv.datastore.fetch(dataset_id)
            return await pv.datastore.credentials(dataset_id, "read")

        config = stack.config(access_token=token)
        print(f"{requests} requests per way, one after the other (ms per request)")
        print(f"{'workload':<12} {'view':>9} {'client':>9} {'client/view':>12}")
        for name, call in (("userinfo", userinfo), ("credentials", credentials)):
            await _per_request(5, call, lambda: shared.as_user(token))  # warm up both
            await _per_request(5, call, lambda: ProvenaClient(config))
            view = await _per_request(requests, call, lambda: shared.as_user(token))
            client = await _per_request(requests, call, lambda: ProvenaClient(config))
            print(f"{name:<12} {view * 1e3:>9.2f} {client * 1e3:>9.2f} {client / view:>11.1f}x")

        start = time.perf_counter()
        for _ in range(10_000):
            shared.as_user(token)
        made = (time.perf_counter() - start) / 10_000
        print(f"making a view alone: {made * 1e6:.1f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    anyio.run(main, parser.parse_args().requests)
