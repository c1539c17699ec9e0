"""OIDC discovery: fetch ``{issuer}/.well-known/openid-configuration`` once and keep it."""

from __future__ import annotations

import logging

import anyio
import httpx
from pydantic import ValidationError

from provena_like._core.errors import AuthError, ResponseValidationError
from provena_like.auth._endpoint import SERVICE, get_json
from provena_like.models.auth import OIDCConfiguration

__all__ = ["OIDCDiscovery", "fetch_oidc_configuration"]

log = logging.getLogger(__name__)


def same_issuer(a: str, b: str) -> bool:
    """Whether two issuer URLs are the same, ignoring a trailing slash."""
    return a.rstrip("/") == b.rstrip("/")


async def fetch_oidc_configuration(http: httpx.AsyncClient, issuer: str) -> OIDCConfiguration:
    """Fetch and validate the provider metadata of ``issuer`` (OIDC Discovery 1.0 §4).

    Args:
        http: the client to use.
        issuer: the issuer URL, e.g. ``https://provena.example.org/auth``.

    Raises:
        APIError: the document could not be fetched or parsed.
        AuthError: the document names a different issuer (§4.3).

    Example:
        ```python
        config = await fetch_oidc_configuration(http, "http://127.0.0.1:8000/auth")
        config.token_endpoint
        ```
    """
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    document = await get_json(http, url)
    try:
        config = OIDCConfiguration.model_validate(document)
    except ValidationError as err:
        raise ResponseValidationError(
            f"{url} is not an OpenID Provider configuration", service=SERVICE
        ) from err
    if not same_issuer(config.issuer, issuer):
        raise AuthError(
            f"the provider at {issuer} claims to be issuer {config.issuer}; check the issuer URL"
        )
    log.debug("discovered OIDC configuration of %s", issuer)
    return config


class OIDCDiscovery:
    """The cached provider metadata of one issuer; concurrent first calls fetch once.

    Example:
        ```python
        discovery = OIDCDiscovery("http://127.0.0.1:8000/auth")
        token_endpoint = (await discovery.get(http)).token_endpoint
        ```
    """

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer.rstrip("/")
        self._config: OIDCConfiguration | None = None
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"OIDCDiscovery(issuer={self.issuer!r})"

    async def get(self, http: httpx.AsyncClient) -> OIDCConfiguration:
        """The provider metadata, fetched on first use."""
        if self._config is not None:
            return self._config
        async with self._lock:
            if self._config is None:
                self._config = await fetch_oidc_configuration(http, self.issuer)
            return self._config

    def clear(self) -> None:
        """Forget the cached metadata (the next :meth:`get` fetches it again)."""
        self._config = None
