"""Fixtures of the tests against an independent OpenID provider (npm ``oidc-provider``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.institutions import Institution, running
from tests.support.oidc_support import (
    PROVIDER_CONFIG,
    Provider,
    ensure_installed,
    node_commands,
    start_provider,
)


@pytest.fixture(scope="session")
def oidc_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """The provider, installed (``npm ci``) if needed and started once for the session."""
    node, npm = node_commands()
    ensure_installed(node, npm)
    process = start_provider(node, PROVIDER_CONFIG, tmp_path_factory.mktemp("oidc-provider"))
    try:
        yield Provider(process.issuer, process)
    finally:
        process.stop()


@pytest.fixture
def oidc(oidc_session: Provider) -> Provider:
    """The session's provider with its record of calls cleared for this test."""
    oidc_session.reset()
    return oidc_session


@pytest.fixture(scope="module")
def uni_a(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Institution]:
    """An institution trusted by the tests of a module (started once per module)."""
    with running(tmp_path_factory, "uni-a-1") as inst:
        yield inst


@pytest.fixture(scope="module")
def uni_b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Institution]:
    """A second institution, with its own keys and subjects."""
    with running(tmp_path_factory, "uni-b-1") as inst:
        yield inst
