"""Registry quick start: register, change, audit, revert, share and list items.

Runs anywhere, with nothing else started: it brings up its own ``LocalStack`` (the reference
server and an S3 object store on free loopback ports, in a temporary directory), signs in the
seeded ``researcher`` account and works as that user::

    uv run python examples/registry_quickstart.py

Against a real server, replace the ``LocalStack`` block with
``async with ProvenaClient.from_env() as pv:`` and keep the rest.
"""

from __future__ import annotations

import anyio

from provena_like import PreconditionFailed, ProvenaClient
from provena_like.testing import LocalStack


async def registry_tour(pv: ProvenaClient) -> None:
    # 1. Create an organisation. The idempotency key makes the POST safe to retry, and
    #    sending the same key again replays the first result instead of creating a twin.
    org = await pv.registry_client.create_item(
        {
            "subtype": "organisation",
            "record": {"name": "Marine Institute", "ror": "https://ror.org/03qn8fb07"},
        },
        idempotency_key="quickstart-org-1",
    )
    again = await pv.registry_client.create_item(
        {
            "subtype": "organisation",
            "record": {"name": "Marine Institute", "ror": "https://ror.org/03qn8fb07"},
        },
        idempotency_key="quickstart-org-1",
    )
    assert again.id == org.id
    print(f"organisation {org.id}: {org.display_name} (revision {org.revision})")

    # 2. Create a person who belongs to it (the record refers to the organisation's handle).
    person = await pv.registry_client.create_item(
        {
            "subtype": "person",
            "record": {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "email": "ada@example.org",
                "organisation": org.id,
            },
        }
    )
    print(f"person       {person.id}: {person.display_name}, my roles: {person.roles}")

    # 3. Update with a reason. `if_match` sends the revision we read as `If-Match`: if someone
    #    else changed the item meanwhile, the server answers 412 instead of losing their change.
    record = dict(person.record, email="ada.lovelace@example.org")
    updated = await pv.registry_client.update_item(
        person.id, {"record": record, "reason": "new email address"}, if_match=person.revision
    )
    print(f"updated      {updated.id} to revision {updated.revision}")

    # A second write based on the old revision is refused with PreconditionFailed (412).
    try:
        await pv.registry_client.update_item(
            person.id,
            {"record": dict(person.record, last_name="King"), "reason": "stale edit"},
            if_match=person.revision,
        )
    except PreconditionFailed as err:
        print(f"stale write refused: {err.code}, details={err.details}")

    # 4. The history, newest first: who changed what, when and why.
    async for entry in pv.registry_client.iter_history(person.id):
        print(f"  history #{entry.id} rev {entry.revision} by {entry.user}: {entry.reason}")

    # 5. Revert to the first entry ("created"); the revert is itself a new history entry.
    first = (await pv.registry_client.get_history(person.id)).items[-1]
    reverted = await pv.registry_client.revert_item(
        person.id, {"history_id": first.id, "reason": "the old address still works"}
    )
    print(f"reverted     email is {reverted.record['email']!r} again (rev {reverted.revision})")

    # 6. Let everyone who is signed in read the organisation. The owner keeps every role.
    access = await pv.registry_client.get_access(org.id)
    access = await pv.registry_client.update_access(
        org.id, {"owner": access.owner, "general": ["metadata-read"], "groups": access.groups}
    )
    print(f"access       owner={access.owner} general={access.general}")

    # 7. List. `await` gives the first page; `async for` walks every page.
    page = await pv.registry_client.iter_items(subtype="person", page_size=10)
    print(f"first page of persons: {len(page.items)} item(s), next_cursor={page.next_cursor}")
    async for item in pv.registry_client.iter_items(sort="name", order="asc"):
        print(f"  {item.id:<12} {item.subtype:<13} {item.display_name}")


async def main() -> None:
    # No object store is needed for the registry, so skip starting one (s3=False).
    async with LocalStack(s3=False) as stack:
        print(f"local stack running at {stack.url}")
        async with stack.client() as pv:  # signed in as the seeded user "researcher"
            me = await pv.auth_client.userinfo()
            print(f"signed in as {me.preferred_username}")
            await registry_tour(pv)


if __name__ == "__main__":
    anyio.run(main)
