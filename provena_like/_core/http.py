"""``HTTPCore``: the one pooled HTTP client behind every L2 client.

It owns one :class:`httpx.AsyncClient` and sends every call through :meth:`HTTPCore.request`,
which adds idempotency keys, retries (:mod:`provena_like._core.retry`), turns error responses
into the typed errors of :mod:`provena_like._core.errors` and validates successful bodies.

Lifecycle: ``UNOPENED → OPEN → CLOSED``. The first request (or ``async with``) opens it;
``aclose()`` closes it for good:

```python
async with HTTPCore(config) as core:
    item = await core.request("GET", "registry", "/items/10378.1/42", cast_to=Item)
```

Logging goes to ``logging.getLogger("provena_like._core.http")`` at DEBUG: method, URL, status,
request id and attempt number. Headers and bodies are never logged.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Mapping
from typing import Any, Self, TypeVar, overload

import httpx
from pydantic import TypeAdapter, ValidationError

from provena_like._core.config import ProvenaConfig, ServiceName
from provena_like._core.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ResponseValidationError,
    UsageError,
    error_class_for,
)
from provena_like._core.lifecycle import AsyncCloseable
from provena_like._core.retry import RetryPolicy
from provena_like._core.sentinels import NOT_GIVEN, NotGiven
from provena_like._version import __version__

__all__ = ["USER_AGENT", "ClientState", "HTTPCore", "status_error"]

log = logging.getLogger(__name__)

T = TypeVar("T")

USER_AGENT = f"provena-like/{__version__}"
"""The ``User-Agent`` sent with every request."""

_AUTO_IDEMPOTENCY_METHODS = frozenset({"POST", "PATCH"})
_MAX_TEXT_IN_MESSAGE = 300


class ClientState(enum.Enum):
    """The lifecycle of an :class:`HTTPCore`: it can't be reopened once closed."""

    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class _Pool:
    """The pooled httpx client and its state, shared by an HTTPCore and its copies."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.state = ClientState.UNOPENED


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter_for(tp: type[T]) -> TypeAdapter[T]:
    """A cached TypeAdapter per response type (building one compiles a schema)."""
    adapter = _ADAPTERS.get(tp)
    if adapter is None:
        adapter = _ADAPTERS[tp] = TypeAdapter(tp)
    return adapter


def _timeout(config: ProvenaConfig) -> httpx.Timeout:
    return httpx.Timeout(config.timeout, connect=config.connect_timeout)


class HTTPCore(AsyncCloseable):
    """One pooled, retrying, typed HTTP client shared by the L2 clients.

    Args:
        config: where the services are and how to time out and retry.
        auth: an :class:`httpx.Auth` that signs every request (e.g. the ``AuthManager``).
        transport: an httpx transport to use instead of the network (tests).
        retry_policy: replaces the policy built from ``config`` (e.g. with a fake sleep).

    Example:
        ```python
        core = HTTPCore(ProvenaConfig())
        # async with core:
        #     response = await core.request("GET", "auth", "/.well-known/openid-configuration")
        ```
    """

    def __init__(
        self,
        config: ProvenaConfig,
        *,
        auth: httpx.Auth | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        client = httpx.AsyncClient(
            auth=auth,
            transport=transport,
            verify=config.verify,
            timeout=_timeout(config),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
        )
        self._config = config
        self._policy = retry_policy if retry_policy is not None else RetryPolicy.from_config(config)
        self._pool = _Pool(client)
        self._owns_pool = True
        self._view_closed = False

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def config(self) -> ProvenaConfig:
        """The configuration this core was built with (or derived with)."""
        return self._config

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy applied to every request."""
        return self._policy

    @property
    def http_client(self) -> httpx.AsyncClient:
        """The pooled :class:`httpx.AsyncClient`, e.g. for token endpoint calls.

        It is owned by this core: don't close it yourself.

        Example:
            ```python
            core = HTTPCore(ProvenaConfig())
            assert type(core.http_client).__name__ == 'AsyncClient'
            ```
        """
        return self._pool.client

    @property
    def state(self) -> ClientState:
        """``UNOPENED``, ``OPEN`` or ``CLOSED``.

        Example:
            ```python
            HTTPCore(ProvenaConfig()).state
            # <ClientState.UNOPENED: 'unopened'>
            ```
        """
        return ClientState.CLOSED if self._view_closed else self._pool.state

    @property
    def is_closed(self) -> bool:
        """Whether this core was closed (it cannot be used or reopened)."""
        return self.state is ClientState.CLOSED

    def with_config(self, config: ProvenaConfig) -> HTTPCore:
        """Return a copy that uses ``config`` for timeouts and retries but shares the pool.

        Closing the copy does not close the pool; closing the original closes it for every
        copy. The service URLs, TLS and auth settings of the pool stay those of the original.

        Example:
            ```python
            core = HTTPCore(ProvenaConfig())
            patient = core.with_config(core.config.replace(timeout=300))
            assert patient.http_client is core.http_client
            ```
        """
        copy = object.__new__(HTTPCore)
        copy._config = config
        copy._policy = self._policy.with_config(config)
        copy._pool = self._pool
        copy._owns_pool = False
        copy._view_closed = False
        return copy

    def _ensure_usable(self) -> None:
        if self.state is ClientState.CLOSED:
            raise UsageError(
                f"{type(self).__name__} is closed and cannot be reused; create a new client"
            )
        if self._pool.state is ClientState.UNOPENED:
            self._pool.state = ClientState.OPEN

    async def __aenter__(self) -> Self:
        self._ensure_usable()
        return self

    async def aclose(self) -> None:
        """Close the connection pool (if this core owns it). Closing twice is harmless.

        Example:
            ```python
            await core.aclose()
            ```
        """
        if not self._owns_pool:
            self._view_closed = True
            return
        if self._pool.state is ClientState.CLOSED:
            return
        self._pool.state = ClientState.CLOSED
        await self._pool.client.aclose()

    def __repr__(self) -> str:
        return f"HTTPCore(base_url={self._config.base_url!r}, state={self.state.value})"

    # -- requests ------------------------------------------------------------------------

    @overload
    async def request(
        self,
        method: str,
        service: ServiceName,
        path: str,
        *,
        params: Mapping[str, Any] | None = ...,
        json: Any = ...,
        data: Mapping[str, Any] | None = ...,
        headers: Mapping[str, str] | None = ...,
        idempotency_key: str | None | NotGiven = ...,
        cast_to: type[T] | TypeAdapter[T],
        expected: tuple[int, ...] | None = ...,
    ) -> T: ...

    @overload
    async def request(
        self,
        method: str,
        service: ServiceName,
        path: str,
        *,
        params: Mapping[str, Any] | None = ...,
        json: Any = ...,
        data: Mapping[str, Any] | None = ...,
        headers: Mapping[str, str] | None = ...,
        idempotency_key: str | None | NotGiven = ...,
        cast_to: None = ...,
        expected: tuple[int, ...] | None = ...,
    ) -> httpx.Response: ...

    async def request(
        self,
        method: str,
        service: ServiceName,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
        cast_to: type[T] | TypeAdapter[T] | None = None,
        expected: tuple[int, ...] | None = None,
    ) -> T | httpx.Response:
        """Send one call, with retries, and return the typed body (or the response).

        Args:
            method: the HTTP method.
            service: which service's URL ``path`` is relative to.
            path: the path below the service URL, starting with ``/``.
            params: query parameters; ``None`` values are left out.
            json: a JSON body.
            data: a form body (``application/x-www-form-urlencoded``).
            headers: extra request headers.
            idempotency_key: the ``Idempotency-Key`` header. Left out, POST and PATCH get a
                fresh UUID, the same for every retry of this call; ``None`` sends none.
            cast_to: a type (or a :class:`~pydantic.TypeAdapter`) to validate the body with;
                ``None`` returns the :class:`httpx.Response` itself.
            expected: the statuses that count as success (default: any 2xx).

        Returns:
            The validated body, or the response when ``cast_to`` is ``None``.

        Raises:
            APIStatusError: (a subclass per status) when the final response is an error.
            APITimeoutError: the service did not answer in time, after every retry.
            APIConnectionError: the service could not be reached, after every retry.
            ResponseValidationError: a successful body did not match ``cast_to``.
            UsageError: the core is closed, or ``path`` is not a path.

        Example:
            ```python
            item = await core.request("GET", "registry", "/items/10378.1/42", cast_to=Item)
            ```
        """
        self._ensure_usable()
        if not path.startswith("/"):
            raise UsageError(f"path must start with '/', got {path!r}")
        method = method.upper()
        url = self._config.service_url(service) + path
        request_headers = dict(headers or {})
        has_key_header = any(name.lower() == "idempotency-key" for name in request_headers)
        if isinstance(idempotency_key, str):
            request_headers = {
                k: v for k, v in request_headers.items() if k.lower() != "idempotency-key"
            }
            request_headers["Idempotency-Key"] = idempotency_key
        elif (
            isinstance(idempotency_key, NotGiven)
            and method in _AUTO_IDEMPOTENCY_METHODS
            and not has_key_header
        ):
            request_headers["Idempotency-Key"] = str(uuid.uuid4())
        query = {k: v for k, v in params.items() if v is not None} if params else None
        timeout = _timeout(self._config)
        client = self._pool.client
        attempt = 0

        async def send_once() -> httpx.Response:
            nonlocal attempt
            attempt += 1
            request = client.build_request(
                method,
                url,
                params=query,
                json=json,
                data=data,
                headers=request_headers,
                timeout=timeout,
            )
            try:
                response = await client.send(request)
            except httpx.RequestError as err:
                log.debug("%s %s failed: %s (attempt %d)", method, url, type(err).__name__, attempt)
                raise
            log.debug(
                "%s %s -> %d (request id %s, attempt %d)",
                method,
                url,
                response.status_code,
                response.headers.get("x-request-id"),
                attempt,
            )
            return response

        retryable = self._policy.may_retry_method(method, request_headers)
        try:
            response = await self._policy.call(
                send_once, retryable_method=retryable, label=f"{method} {url}"
            )
        except httpx.TimeoutException as err:
            raise APITimeoutError(
                f"{method} {url} timed out ({type(err).__name__}) after {attempt} attempt(s)",
                service=service,
            ) from err
        except httpx.RequestError as err:  # transport errors, and bodies that can't be decoded
            raise APIConnectionError(
                f"{method} {url} failed after {attempt} attempt(s): {type(err).__name__}: {err}",
                service=service,
            ) from err
        return self._process(response, method, url, service, cast_to, expected)

    def _process(
        self,
        response: httpx.Response,
        method: str,
        url: str,
        service: ServiceName,
        cast_to: type[T] | TypeAdapter[T] | None,
        expected: tuple[int, ...] | None,
    ) -> T | httpx.Response:
        status = response.status_code
        ok = status in expected if expected is not None else 200 <= status < 300
        if not ok:
            raise status_error(response, service, method=method, url=url)
        if cast_to is None:
            return response
        adapter: TypeAdapter[T] = (
            cast_to if isinstance(cast_to, TypeAdapter) else _adapter_for(cast_to)
        )
        try:
            return adapter.validate_json(response.content)
        except ValidationError as err:
            # Summarise without the input values: a body may hold tokens or secrets.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '<body>'}: {e['msg']}"
                for e in err.errors(include_url=False, include_input=False)[:5]
            )
            raise ResponseValidationError(
                f"{method} {url} returned {status} with a body that is not a valid "
                f"{_type_name(cast_to)}: {problems}",
                request_id=response.headers.get("x-request-id"),
                service=service,
            ) from None


def _type_name(cast_to: object) -> str:
    tp = getattr(cast_to, "_type", "value") if isinstance(cast_to, TypeAdapter) else cast_to
    return tp.__name__ if isinstance(tp, type) else str(tp)


def status_error(
    response: httpx.Response,
    service: str | None,
    *,
    method: str | None = None,
    url: str | None = None,
) -> APIStatusError:
    """Build the typed error for an unsuccessful response (without raising it).

    The body may be the common envelope ``{"error": {"code", "message", "details",
    "request_id"}}``, an OAuth error ``{"error": "...", "error_description": "..."}``, a
    FastAPI ``{"detail": ...}`` or plain text.

    Args:
        response: the response (its body already read).
        service: the service that answered.
        method: the request method, for the message of a body-less error.
        url: the request URL, for the message of a body-less error.

    Returns:
        An instance of ``error_class_for(response.status_code, code)``.

    Example:
        ```python
        import httpx
        body = {"error": {"code": "not_found", "message": "Item 1/2 was not found."}}
        err = status_error(httpx.Response(404, json=body), "registry")
        assert (type(err).__name__, err.code) == ('NotFound', 'not_found')
        ```
    """
    status = response.status_code
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = response.text
    code: str | None = None
    message: str | None = None
    details: Any = None
    body_request_id: str | None = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            code = _opt_str(error.get("code"))
            message = _opt_str(error.get("message"))
            details = error.get("details")
            body_request_id = _opt_str(error.get("request_id"))
        elif isinstance(error, str):
            code = error
            message = _opt_str(body.get("error_description")) or error
        elif "detail" in body:
            detail = body["detail"]
            message = detail if isinstance(detail, str) else None
            details = None if isinstance(detail, str) else detail
    if not message:
        reason = response.reason_phrase or "error"
        where = f" from {method} {url}" if method and url else ""
        message = f"HTTP {status} {reason}{where}"
        text = response.text.strip() if isinstance(body, str) else ""
        if text:
            message += f": {text[:_MAX_TEXT_IN_MESSAGE]}"
    request_id = response.headers.get("x-request-id") or body_request_id
    return error_class_for(status, code)(
        message,
        status_code=status,
        code=code,
        details=details,
        body=body,
        request_id=request_id,
        service=service,
    )


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)
