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

import asyncio
import enum
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, NoReturn, Self, TypeVar, overload

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
from provena_like._core.tls import verifying_context
from provena_like._version import __version__

__all__ = ["USER_AGENT", "ClientState", "HTTPCore", "PinnedHeaders", "signed_with", "status_error"]

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


def _refuse_change(what: str) -> NoReturn:
    raise UsageError(
        f"the {what} of a ProvenaClient's HTTP client can't be changed: it serves every user "
        "of the pool; to act for one user per request, use a view, pv.as_user(token) "
        "(see the 'Web backends' guide)"
    )


class _FrozenHeaders(httpx.Headers):
    """Default headers that can't be changed in place (they go on every user's requests)."""

    def __setitem__(self, key: str, value: str) -> None:
        _refuse_change("headers")

    def __delitem__(self, key: str) -> None:
        _refuse_change("headers")

    def update(self, headers: Any = None) -> None:  # type: ignore[override]  # noqa: ARG002
        """Refuse: see :class:`_SharedHTTPClient`."""
        _refuse_change("headers")


def _fixed(name: str, doc: str, *, read_only: Callable[[Any], Any] | None = None) -> Any:
    """``httpx.AsyncClient``'s property ``name``, refusing changes once the client is built."""
    base: property = getattr(httpx.AsyncClient, name)

    def get(self: _SharedHTTPClient) -> Any:
        value = base.__get__(self)
        return read_only(value) if read_only is not None and self._built else value

    def set_(self: _SharedHTTPClient, value: Any) -> None:
        if self._built:
            _refuse_change(name)
        base.__set__(self, value)

    return property(get, set_, doc=doc)


class _SharedHTTPClient(httpx.AsyncClient):
    """The pooled client: its auth, default headers and cookies can't change once built.

    One pool may serve many users at once (a web backend), so nothing that says who is
    calling may live on it: changing its ``auth``, ``headers`` or ``cookies`` raises
    :class:`~provena_like.UsageError` (it was how a shared client used to be switched
    between users, which sent one user's requests with another's token when requests
    overlapped), and cookies the server sets are not kept (they would go out with every
    user's requests). A per-request identity is a view with its own auth
    (:meth:`HTTPCore.with_auth`).
    """

    _built = False

    def __init__(self, **kwargs: Any) -> None:
        jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))  # keeps no cookie
        super().__init__(cookies=jar, **kwargs)
        self._built = True

    auth = _fixed("auth", "The auth of the pool's own requests (fixed once built).")
    headers = _fixed(
        "headers",
        "A read-only copy of the default headers of every request (fixed once built).",
        read_only=_FrozenHeaders,
    )
    cookies = _fixed("cookies", "The cookie jar, which keeps nothing (see the class docstring).")


_NO_AUTH = httpx.Auth()
"""Signs nothing: overrides the pool's auth for an anonymous call."""

_PINNED_AUTH: ContextVar[httpx.Auth | None] = ContextVar("provena_pinned_auth", default=None)


@contextmanager
def signed_with(auth: httpx.Auth | None) -> Iterator[None]:
    """Sign the requests :class:`HTTPCore` sends in this task with ``auth`` (``None``: as usual).

    For a call whose answer is cached per caller: the cache works out who the caller is from
    headers signed once, and the call must carry exactly those headers, whatever the
    client's auth would put on a request a moment later (see
    :class:`~provena_like.modules.credentials.CredentialsCache`). Only the current task
    (and tasks it starts inside the block) is affected.

    Example:
        ```python
        token = (await pv.auth_manager.get_access_token()).get_secret_value()
        with signed_with(PinnedHeaders([("authorization", f"Bearer {token}")])):
            creds = await pv.datastore_client.get_credentials(dataset_id)
        ```
    """
    reset = _PINNED_AUTH.set(auth)
    try:
        yield
    finally:
        _PINNED_AUTH.reset(reset)


class PinnedHeaders(httpx.Auth):
    """An auth that puts exactly these headers on a request (signed earlier, kept as they were).

    Args:
        headers: ``(name, value)`` pairs, as another auth put them on a request.

    Example:
        ```python
        auth = PinnedHeaders([("authorization", "Bearer abc")])
        ```
    """

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self._headers = list(headers)

    def __repr__(self) -> str:
        return f"PinnedHeaders({[name for name, _ in self._headers]})"  # never the values

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Set the headers and send the request once."""
        for name, value in self._headers:
            request.headers[name] = value
        yield request


def _running_asyncio_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # not under asyncio (trio): nothing to compare
        return None


def _describe_loop(loop: asyncio.AbstractEventLoop) -> str:
    return f"{type(loop).__name__} at {id(loop):#x}"


class _Pool:
    """The pooled httpx client and its state, shared by an HTTPCore and its copies.

    It also remembers the event loop it was first used in: its connections belong to that
    loop, and using them from another one fails deep inside asyncio ("Event loop is
    closed", or a hang when the first loop still runs in another thread).
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.state = ClientState.UNOPENED
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._loop_text = ""

    def check_loop(self) -> None:
        """Remember the running loop on first use; refuse any other loop afterwards.

        Raises:
            UsageError: naming both loops, what became of the first and what to do.
        """
        loop = _running_asyncio_loop()
        if loop is None:
            return
        if self._loop is None:
            self._loop = weakref.ref(loop)
            self._loop_text = (
                f"{_describe_loop(loop)} in thread {threading.current_thread().name!r}"
            )
            return
        first = self._loop()
        if first is loop:
            return
        if first is None or first.is_closed():
            fate = "that loop is closed now"
        elif first.is_running():
            fate = "that loop is still running, in another thread"
        else:
            fate = "that loop is not running now"
        raise UsageError(
            "this ProvenaClient is used from another event loop "
            f"({_describe_loop(loop)} in thread {threading.current_thread().name!r}) than "
            f"the one it was first used in ({self._loop_text}; {fate}); its connection pool "
            "belongs to that first loop. Use one event loop for the client's whole life "
            "(one asyncio.run or anyio.run around all of its work), or the blocking client, "
            "provena_like.blocking.BlockingClient, in scripts and notebooks (it keeps its own "
            "loop), or a new ProvenaClient in each event loop"
        )


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
        client = _SharedHTTPClient(
            auth=auth,
            transport=transport,
            # httpx's own context for verify=True, with the CA bundle loaded at the first
            # TLS handshake (never, for a client that only speaks http:// or sends nothing)
            verify=verifying_context() if config.verify else False,
            timeout=_timeout(config),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
        )
        self._config = config
        self._policy = retry_policy if retry_policy is not None else RetryPolicy.from_config(config)
        self._pool = _Pool(client)
        self._owns_pool = True
        self._view_closed = False
        self._auth: httpx.Auth | None = None  # None: the pool's own auth

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
            assert isinstance(core.http_client, httpx.AsyncClient)
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
        return self._copy(config, self._auth)

    def with_auth(self, auth: httpx.Auth) -> HTTPCore:
        """Return a view that signs its requests with ``auth`` but shares this core's pool.

        This is how one pool serves many users: each request of a web backend gets a view
        with its user's auth (cheap: no connection, no HTTP client is made). A view owns
        nothing, so closing it does nothing; it works until this core is closed. Views of
        views replace the auth.

        Example:
            ```python
            core = HTTPCore(ProvenaConfig())
            alice = core.with_auth(PinnedHeaders([("authorization", "Bearer abc")]))
            assert alice.http_client is core.http_client and alice.auth is not core.auth
            ```
        """
        return self._copy(self._config, auth)

    def _copy(self, config: ProvenaConfig, auth: httpx.Auth | None) -> HTTPCore:
        copy = object.__new__(HTTPCore)
        copy._config = config
        copy._policy = self._policy.with_config(config)
        copy._pool = self._pool
        copy._owns_pool = False
        copy._view_closed = False
        copy._auth = auth
        return copy

    @property
    def auth(self) -> httpx.Auth | None:
        """The auth that signs this core's requests (a view's own, or the pool's)."""
        return self._auth if self._auth is not None else self._pool.client.auth

    @property
    def is_view(self) -> bool:
        """Whether this core is a view with an auth of its own (see :meth:`with_auth`)."""
        return self._auth is not None

    def _ensure_usable(self) -> None:
        if self.state is ClientState.CLOSED:
            raise UsageError(
                f"{type(self).__name__} is closed and cannot be reused; create a new client"
            )
        self._pool.check_loop()
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
            if self._auth is None:  # a copy with other settings is closed; a user view owns nothing
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
        anonymous: bool = ...,
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
        anonymous: bool = ...,
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
        anonymous: bool = False,
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
            anonymous: send no credentials (a public route, e.g. before signing in: the
                configured auth is not asked for a token).
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
            UsageError: the core is closed, used from another event loop than its first, or
                ``path`` is not a path.

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
        auth = _NO_AUTH if anonymous else (_PINNED_AUTH.get() or self._auth)
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
                if auth is None:
                    response = await client.send(request)
                else:
                    response = await client.send(request, auth=auth)
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
