"""Review and release: a researcher asks, a reviewer rejects, then approves; the data freezes.

Runs anywhere, with nothing else started: it brings up its own ``LocalStack`` (the reference
server and an S3 object store on free loopback ports, in a temporary directory). The seeded
administrator creates a second user, ``rob``, and makes him a reviewer; the seeded
``researcher`` mints a dataset, uploads a file and asks rob to release it::

    uv run python examples/review_release.py

Against a real server, sign in as each person (``provena-like login``) and use
``ProvenaClient.from_env()`` for each; the calls are the same.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

import anyio

from provena_like import ProvenaClient, ReleaseStateConflict
from provena_like.models.auth import UserCreate
from provena_like.testing import LocalStack

REVIEWER = "rob"


async def add_reviewer(stack: LocalStack) -> None:
    """As the administrator: create rob's account and let him review release requests."""
    password = secrets.token_urlsafe(16)
    async with stack.client("admin") as admin:
        await admin.auth_client.create_user(
            UserCreate(username=REVIEWER, password=password, display_name="Rob Reviewer")
        )
        await admin.datastore.review.add_reviewer(REVIEWER)
        names = [r.username for r in await admin.datastore.review.list_reviewers()]
    print(f"admin: created {REVIEWER!r} and made him a reviewer; reviewers: {names}")
    await stack.login(REVIEWER, password)  # rob signs in (the device flow, approved for him)


async def mint_and_upload(pv: ProvenaClient, folder: Path) -> str:
    """As the researcher: register the references, mint a dataset and upload one file."""
    org = await pv.registry_client.create_item(
        {"subtype": "organisation", "record": {"name": "Reef Institute"}}
    )
    person = await pv.registry_client.create_item(
        {
            "subtype": "person",
            "record": {"first_name": "Ada", "last_name": "Reef", "email": "ada@example.org"},
        }
    )
    record = {
        "associations": {"organisation_id": org.id, "point_of_contact": person.id},
        "approvals": {
            name: {"relevant": False, "obtained": False}
            for name in (
                "ethics_registration",
                "ethics_access",
                "indigenous_knowledge",
                "export_controls",
            )
        },
        "dataset_info": {
            "name": "Outer reef temperatures 2023",
            "description": "Hourly logger readings.",
            "access_info": {"reposited": True},
            "publisher_id": org.id,
            "created_date": "2024-01-01",
            "published_date": "2024-06-30",
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "keywords": ["reef"],
        },
    }
    # rob must be able to read the references his review shows him
    for ref in (org.id, person.id):
        await pv.registry_client.update_access(
            ref, {"owner": org.owner, "general": ["metadata-read"]}
        )
    ds = await pv.datastore.mint(record)
    (folder / "temperatures.csv").write_text("hour,temp\n0,21.5\n1,21.4\n")
    result = await ds.upload(folder / "temperatures.csv")
    result.raise_for_failures()
    print(f"researcher: minted {ds.id} and uploaded {[f.path for f in result.ok]}")
    return ds.id


async def walk_through(stack: LocalStack, folder: Path) -> None:
    await add_reviewer(stack)
    async with stack.client() as researcher, stack.client(REVIEWER) as rob:
        dataset_id = await mint_and_upload(researcher, folder)
        ds = await researcher.datastore.interactive(dataset_id)

        # 1. Ask rob to release it. From now on it is PENDING: frozen, and readable by rob.
        await ds.request_release(REVIEWER, notes="Ready: one CSV of hourly readings.")
        print(f"researcher: asked {REVIEWER} to release it -> {ds.release_status}")
        try:
            await ds.upload(folder / "temperatures.csv")
        except ReleaseStateConflict as err:
            print(f"researcher: upload refused ({err.state}): {err.message}")

        # 2. rob finds it in his queue, reads it, and rejects it with notes.
        waiting = [d async for d in rob.datastore.review.awaiting_my_review()]
        print(f"{REVIEWER}: awaiting my review: {[(d.id, d.display_name) for d in waiting]}")
        seen = await rob.datastore.fetch(dataset_id)
        print(f"{REVIEWER}: I may {seen.roles} it; keywords {seen.record.dataset_info.keywords}")
        rejected = await rob.datastore.review.reject(
            dataset_id, "Please add keywords for the site and the instrument."
        )
        print(f"{REVIEWER}: rejected -> {rejected.release_status}")

        # 3. The researcher fixes the metadata (refresh first: the steps made a new revision)
        #    and asks again.
        await ds.refresh()
        info = ds.record.dataset_info.model_copy(
            update={"keywords": ["reef", "Heron Island", "HOBO logger"]}
        )
        await ds.update_metadata(
            ds.record.model_copy(update={"dataset_info": info}), reason="keywords for review"
        )
        await ds.request_release(REVIEWER, notes="Keywords added.")
        print(f"researcher: fixed the keywords and asked again -> {ds.release_status}")

        # 4. rob approves.
        released = await rob.datastore.review.approve(dataset_id, "Metadata and file checked.")
        print(f"{REVIEWER}: approved -> {released.release_status} at {released.release_time}")

        # 5. The dataset is released: no more write credentials, from the SDK or the server.
        await ds.refresh()
        try:
            await ds.credentials("write")
        except ReleaseStateConflict as err:
            print(f"researcher: write credentials refused ({err.state}): {err.message}")
        else:
            raise AssertionError("write credentials of a released dataset were issued")
        try:
            await researcher.datastore_client.get_credentials(dataset_id, "write")
        except ReleaseStateConflict as err:
            print(f"server: {err.status_code} {err.code}: {err.message}")

        print("release history:")
        for event in await ds.release_history():
            print(f"  {event.time:%H:%M:%S} {event.user:<10} {event.action:<8} {event.notes}")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with LocalStack() as stack:
            await walk_through(stack, Path(tmp))


if __name__ == "__main__":
    anyio.run(main)
