"""The client credentials grant against an independent, certified OpenID provider.

A confidential client configured the way a pipeline would be (``ProvenaConfig`` with a client
secret → ``AuthManager.from_config``), with the SDK's defaults otherwise.
"""

from __future__ import annotations

import httpx
import pytest

from provena_like._core.config import ProvenaConfig
from provena_like._core.errors import AuthError
from provena_like.auth import AuthManager, ClientCredentials, OIDCDiscovery
from tests.support.oidc_support import (
    API_SCOPE,
    PIPELINE,
    PIPELINE_SECRET,
    PIPELINE_SHORT,
    Provider,
)
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio

GRANT = "client_credentials"


def pipeline_config(
    oidc: Provider, client_id: str = PIPELINE, secret: str = PIPELINE_SECRET
) -> ProvenaConfig:
    return ProvenaConfig(
        issuer=oidc.issuer, client_id=client_id, client_secret=secret, scopes=[API_SCOPE]
    )


async def test_client_credentials(oidc: Provider) -> None:
    auth = AuthManager.from_config(pipeline_config(oidc))
    assert isinstance(auth.source, ClientCredentials)
    async with httpx.AsyncClient(verify=SHARED_TLS, auth=auth) as http:
        auth.bind(http)
        first = await http.get(oidc.resource_url)
        second = await http.get(oidc.resource_url)

    assert first.status_code == second.status_code == 200
    assert first.json() == {"sub": None, "client_id": PIPELINE, "scope": API_SCOPE}
    grants = await oidc.token_calls(GRANT)
    assert [(c["status"], c["client_id"]) for c in grants] == [(200, PIPELINE)]  # reused
    served = [e for e in await oidc.events() if e["endpoint"] == "resource"]
    assert len({e["token_id"] for e in served}) == 1


async def test_a_wrong_client_secret_is_refused(oidc: Provider) -> None:
    auth = AuthManager.from_config(pipeline_config(oidc, secret="not-the-secret"))
    async with httpx.AsyncClient(verify=SHARED_TLS, auth=auth) as http:
        auth.bind(http)
        with pytest.raises(AuthError, match="invalid_client") as caught:
            await http.get(oidc.resource_url)
    assert "not-the-secret" not in str(caught.value)
    assert [c.get("error") for c in await oidc.token_calls(GRANT)] == ["invalid_client"]
    assert await oidc.resource_statuses() == []  # never sent a request without a token


async def test_invalid_client_carries_the_oauth_error_code(oidc: Provider) -> None:
    source = ClientCredentials(PIPELINE, "not-the-secret", [API_SCOPE])
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        with pytest.raises(AuthError) as caught:
            await source.fetch_token(http, OIDCDiscovery(oidc.issuer))
    assert getattr(caught.value, "error", None) == "invalid_client"


async def test_a_short_lived_token_is_not_fetched_for_every_request(oidc: Provider) -> None:
    """Tokens living less than the default 60 s margin are used until close to expiry."""
    auth = AuthManager.from_config(pipeline_config(oidc, PIPELINE_SHORT))
    async with httpx.AsyncClient(verify=SHARED_TLS, auth=auth) as http:
        auth.bind(http)
        statuses = [(await http.get(oidc.resource_url)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert len(await oidc.token_calls(GRANT)) == 1
