"""An async client used from a second event loop says why it can't, instead of a bare error."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Callable

import pytest

from provena_like import ProvenaClient, UsageError
from provena_like.testing.localstack import LocalStack
from tests.support.users import User


async def whoami(pv: ProvenaClient) -> str | None:
    return (await pv.auth_client.userinfo()).preferred_username


def test_a_second_event_loop_is_refused_with_the_cause(
    localstack: LocalStack, new_user: Callable[..., User]
) -> None:
    user = new_user("loops")
    pv = ProvenaClient(localstack.config(access_token=user.token))

    # the first loop opens the pool (a keep-alive connection stays in it) and ends
    assert asyncio.run(whoami(pv)) == user.name
    with pytest.raises(UsageError) as caught:
        asyncio.run(whoami(pv))  # a second loop, as a second notebook cell with asyncio.run
    message = str(caught.value)
    assert "another event loop" in message
    assert "closed" in message  # what happened to the loop that made it
    assert "BlockingClient" in message and "one event loop" in message  # what to do
    # Its kept-alive connection belongs to the closed loop and can't be closed from here:
    # dropping the client leaks it, as it would in a notebook (that is the user's mistake).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del pv, caught  # the traceback holds the client too
        gc.collect()


def test_the_first_loop_is_named_and_can_still_close_it(
    localstack: LocalStack, new_user: Callable[..., User]
) -> None:
    user = new_user("loops")
    pv = ProvenaClient(localstack.config(access_token=user.token))
    first = asyncio.new_event_loop()
    try:
        first.run_until_complete(pv.auth_client.userinfo())
        with pytest.raises(UsageError, match="not running now"):
            asyncio.run(pv.auth_client.userinfo())
        first.run_until_complete(pv.aclose())  # the first loop can still close it
    finally:
        first.close()


def test_one_client_in_one_loop_keeps_working(
    localstack: LocalStack, new_user: Callable[..., User]
) -> None:
    user = new_user("loops")

    async def twice() -> list[str | None]:
        async with ProvenaClient(localstack.config(access_token=user.token)) as pv:
            return [(await pv.auth_client.userinfo()).preferred_username for _ in range(2)]

    assert asyncio.run(twice()) == [user.name, user.name]
