"""The argon2id cost of password hashes is a setting; its default is RFC 9106's second option.

The test servers hash at the lowest cost (``CHEAP_PASSWORD_HASHING``): every account they
create and every sign-in is then cheap. Production keeps the default, and a hash keeps the
cost it was made with, so changing the setting never locks anyone out.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from pydantic import SecretStr, ValidationError

from provena_like.models.auth import UserCreate
from provena_like.server.auth.passwords import Passwords
from provena_like.server.db.identity import UserRow
from provena_like.server.settings import PasswordHashing, ServerSettings
from provena_like.testing.localstack import LocalStack
from tests.support.auth_helpers import CHEAP_PASSWORD_HASHING

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery staple"


def test_the_default_is_rfc_9106_second_option() -> None:
    default = ServerSettings(data_dir=Path("unused")).password_hashing
    library = PasswordHasher()  # argon2-cffi's defaults: RFC 9106's low-memory option
    assert (
        (default.time_cost, default.memory_kib, default.parallelism)
        == (
            library.time_cost,
            library.memory_cost,
            library.parallelism,
        )
        == (3, 65536, 4)
    )


def test_argon2_needs_8_kib_per_lane() -> None:
    with pytest.raises(ValidationError, match="memory_kib >= 8"):
        PasswordHashing(memory_kib=8, parallelism=2)


async def test_new_hashes_have_the_configured_cost_and_old_ones_still_verify() -> None:
    default, cheap = Passwords(PasswordHashing()), Passwords(CHEAP_PASSWORD_HASHING)
    strong = await default.hash(PASSWORD)
    weak = await cheap.hash(PASSWORD)
    assert strong.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert weak.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    for passwords in (default, cheap):  # each hash carries its cost
        assert await passwords.verify(strong, PASSWORD)
        assert await passwords.verify(weak, PASSWORD)
        assert not await passwords.verify(strong, "wrong")
        assert not await passwords.verify(None, PASSWORD)


async def test_the_server_hashes_at_its_setting_and_signs_in_with_it(
    localstack: LocalStack,
) -> None:
    """The session's stack runs with the cheap setting: accounts get such hashes and work."""
    server = localstack.server
    assert localstack.settings is not None and server is not None
    assert localstack.settings.password_hashing == CHEAP_PASSWORD_HASHING
    name = f"hashing-{uuid.uuid4().hex[:8]}"
    async with localstack.client("admin") as admin:
        await admin.auth_client.create_user(UserCreate(username=name, password=SecretStr(PASSWORD)))
    await localstack.login(name, PASSWORD)  # the device page checks the password
    async with localstack.client(name) as pv:
        assert (await pv.auth_client.userinfo()).preferred_username == name

    async def stored_hash() -> str | None:
        async with server.app.state.sessions() as session:
            row = await session.get(UserRow, name)
            return None if row is None else row.password_hash

    stored = server.call(stored_hash)
    assert stored is not None and stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
