"""A lab to register sessions in, on a :class:`~provena_like.testing.LocalStack`.

For examples and benchmarks: the administrator creates the lab's group with the seeded
``researcher`` in it and the shared vocabulary (dataset types, a data format: only registry
admins write those), then the researcher, signed in again so that their token carries the
group, registers the lab and a subject.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from provena_like.models.registry import Item
from provena_like.testing.localstack import BUCKET, LocalStack

__all__ = ["RegistrationSetup", "seed_repositories", "seed_registration"]


@dataclass(frozen=True)
class RegistrationSetup:
    """What :func:`seed_registration` created.

    Attributes:
        lab: The lab item (its ``record["name"]`` is the lab in ALF paths).
        subject: The subject item (``record["nickname"]``).
        dataset_types: The dataset type items, in the order given.
        data_format: The data format item.
        tags: The tag items, in the order given.
    """

    lab: Item
    subject: Item
    dataset_types: list[Item]
    data_format: Item
    tags: list[Item]


async def seed_registration(
    stack: LocalStack,
    *,
    lab: str,
    subject: str,
    dataset_types: Sequence[tuple[str, str]],
    data_format: tuple[str, str],
    tags: Sequence[tuple[str, bool]] = (),
) -> RegistrationSetup:
    """Create a lab with the researcher as member, a subject and the vocabulary.

    Args:
        stack: A started stack (with its seeded ``admin`` and ``researcher``).
        lab: The lab's name (its group is ``<lab>_members``).
        subject: The subject's nickname.
        dataset_types: ``(name, filename_pattern)`` of each dataset type.
        data_format: ``(name, file_extension)`` of the data format.
        tags: ``(name, protected)`` of tags to create.

    Returns:
        The items created.
    """
    group = f"{lab}_members"
    async with stack.client(stack.admin.username) as admin:
        await admin.auth_client.create_group({"name": group, "description": f"{lab}'s members"})
        await admin.auth_client.add_group_member(group, stack.user.username)
        types = [
            await admin.registry_client.create_item(
                {
                    "subtype": "dataset_type",
                    "record": {"name": name, "filename_pattern": pattern},
                    "general": ["metadata-read"],
                }
            )
            for name, pattern in dataset_types
        ]
        fmt = await admin.registry_client.create_item(
            {
                "subtype": "data_format",
                "record": {"name": data_format[0], "file_extension": data_format[1]},
                "general": ["metadata-read"],
            }
        )
        tag_items = [
            await admin.registry_client.create_item(
                {
                    "subtype": "tag",
                    "record": {"name": name, "protected": protected},
                    "general": ["metadata-read"],
                }
            )
            for name, protected in tags
        ]
    await stack.login(stack.user.username, stack.user.password)  # a token with the group
    async with stack.client() as pv:
        lab_item = await pv.registry_client.create_item(
            {"subtype": "lab", "record": {"name": lab, "group": group}}
        )
        subject_item = await pv.registry_client.create_item(
            {"subtype": "subject", "record": {"nickname": subject, "lab": lab_item.id}}
        )
    return RegistrationSetup(lab_item, subject_item, types, fmt, tag_items)


async def seed_repositories(stack: LocalStack, group: str) -> tuple[str, str]:
    """Create an S3 and a POSIX repository that ``group``'s members may patch into.

    The S3 one is in the stack's own bucket (a fresh prefix), with ``data-write`` for the
    group (the server mints its credentials); the POSIX one (root ``/data`` on its server)
    is readable by the group, which mounts it wherever it likes.

    Args:
        stack: A started stack with an object store.
        group: The group (e.g. ``<lab>_members`` of :func:`seed_registration`).

    Returns:
        The S3 repository's handle and the POSIX one's.
    """
    async with stack.client(stack.admin.username) as admin:
        s3 = await admin.registry_client.create_item(
            {
                "subtype": "repository",
                "record": {
                    "name": f"s3_{uuid.uuid4().hex[:8]}",
                    "kind": "s3",
                    "root": f"s3://{BUCKET}/repo-{uuid.uuid4().hex[:8]}/",
                },
            }
        )
        posix = await admin.registry_client.create_item(
            {
                "subtype": "repository",
                "record": {
                    "name": f"lab_server_{uuid.uuid4().hex[:8]}",
                    "kind": "posix",
                    "root": "/data",
                },
            }
        )
        for item, roles in ((s3, ["data-write"]), (posix, ["metadata-read"])):
            settings = (await admin.registry_client.get_access(item.id)).model_dump(mode="json")
            settings["groups"] = {group: roles}
            await admin.registry_client.update_access(item.id, settings)
    return s3.id, posix.id
