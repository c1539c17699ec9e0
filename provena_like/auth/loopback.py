"""The authorization code flow with PKCE on a loopback redirect: a sign-in in the browser.

For a provider that has no device flow (or a user who prefers the browser). The steps are
those of RFC 8252 (OAuth 2.0 for native apps):

1. a one-shot HTTP listener starts on ``127.0.0.1`` on a free port (§7.3: the provider
   accepts any port for a loopback redirect of a native client registered as
   ``http://127.0.0.1/callback``);
2. the ``open_browser`` callback is given the provider's authorization URL, with a fresh
   ``state`` and a PKCE S256 code challenge (RFC 7636); the library itself never opens a
   browser or prints (the CLI does, with :mod:`webbrowser`, or shows the link);
3. the browser comes back to ``http://127.0.0.1:<port>/callback?code=…&state=…``; an answer
   whose ``state`` differs (or, RFC 9207, whose ``iss`` names another issuer) is refused;
4. the code is exchanged at the token endpoint with the code verifier.

A sign-in that doesn't come back within ``timeout`` seconds raises
:class:`AuthorizationTimeout`; ``error=access_denied`` raises :class:`AccessDenied`; any
other error of the provider, or a mismatched ``state``, :class:`AuthorizationFlowError`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import inspect
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

import anyio
import anyio.abc
import httpx
from pydantic import SecretStr

from provena_like._core.errors import (
    AccessDenied,
    AuthError,
    AuthorizationFlowError,
    AuthorizationTimeout,
    UsageError,
)
from provena_like.auth._endpoint import ClientAuth, oauth_failure, parse_token_response, post_form
from provena_like.auth.flows import TokenSource
from provena_like.auth.oidc import OIDCDiscovery, same_issuer
from provena_like.auth.token_set import TokenSet
from provena_like.models.auth import OAuthError

__all__ = ["AuthorizationCodeFlow", "BrowserCallback", "BrowserPrompt", "pkce_pair"]

log = logging.getLogger(__name__)

LOOPBACK_HOST = "127.0.0.1"
"""RFC 8252 §8.3: the loopback IP literal, not ``localhost`` (which may resolve elsewhere)."""

_MAX_REQUEST = 16 * 1024
"""The most of a browser's request the listener reads (request line and headers)."""

_READ_TIMEOUT = 30.0
"""A connection that sends no complete request in this long is dropped (browsers preconnect)."""


def pkce_pair() -> tuple[str, str]:
    """A new PKCE code verifier and its S256 challenge (RFC 7636 §4.1, §4.2).

    Returns:
        ``(verifier, challenge)``: 64 characters of the unreserved set, and
        ``BASE64URL(SHA256(verifier))`` without padding.

    Example:
        ```python
        verifier, challenge = pkce_pair()
        assert 43 <= len(verifier) <= 128
        ```
    """
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class BrowserPrompt:
    """What the user must open to sign in with the browser.

    Attributes:
        authorization_url: the provider's sign-in page for this request (open it).
        redirect_uri: where the browser comes back to (the loopback listener).
        expires_in: seconds the listener waits for the browser.
    """

    authorization_url: str
    redirect_uri: str
    expires_in: float


BrowserCallback = Callable[[BrowserPrompt], Awaitable[None] | None]
"""Called once with the :class:`BrowserPrompt` (opens a browser, or shows the link)."""


@dataclass(frozen=True)
class _Callback:
    """The query of the request that came back to the redirect URI."""

    params: dict[str, str]


class _Listener:
    """A loopback HTTP listener that takes the first request to ``path`` and answers it.

    Other paths (``/favicon.ico``) get a 404, and connections that send nothing (browsers
    open spare ones) are dropped after a while; each connection is served in its own task,
    so none of them holds up the real answer.
    """

    def __init__(
        self,
        listener: anyio.abc.SocketListener,
        path: str,
        judge: Callable[[dict[str, str]], str | None],
    ) -> None:
        self._listener = listener
        self._path = path
        self._judge = judge
        self._result: _Callback | None = None
        self._done = anyio.Event()

    @property
    def port(self) -> int:
        port: int = self._listener.extra(anyio.abc.SocketAttribute.local_port)
        return port

    async def wait(self, open_browser: Callable[[], Awaitable[None]], timeout: float) -> _Callback:
        """Serve, call ``open_browser``, and return the first answer (``TimeoutError``: none)."""
        failed: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._listener.serve, self._handle)
            with anyio.move_on_after(timeout):
                try:
                    await open_browser()  # the browser may come back before this returns
                except Exception as err:  # the caller's callback: raised as is, below
                    failed = err
                else:
                    await self._done.wait()
            tg.cancel_scope.cancel()
        if failed is not None:
            raise failed
        if not self._done.is_set() or self._result is None:
            raise TimeoutError
        return self._result

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            target = None
            with anyio.move_on_after(_READ_TIMEOUT):
                target = await _read_request_target(stream)
            if target is None:
                return
            url = urlsplit(target)
            if url.path != self._path or self._result is not None:
                await _respond(stream, 404, "Not found", "Nothing to see here.")
                return
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            if not params.keys() & {"code", "error", "state"}:
                await _respond(stream, 400, "Not a sign-in", "This is no answer to a sign-in.")
                return
            self._result = _Callback(params)  # claimed before any await: one answer only
            problem = self._judge(params)
            try:
                with anyio.move_on_after(_READ_TIMEOUT, shield=True):
                    if problem is None:
                        await _respond(
                            stream,
                            200,
                            "Signed in",
                            "You are signed in. You can close this window and return to "
                            "the terminal.",
                        )
                    else:
                        await _respond(
                            stream, 400, "Sign-in failed", f"{problem} Return to the terminal."
                        )
            finally:
                self._done.set()


async def _read_request_target(stream: anyio.abc.SocketStream) -> str | None:
    """The request target of a ``GET`` (``/callback?…``), or ``None`` for anything else."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            return None
        data += chunk
        if len(data) > _MAX_REQUEST:
            return None
    request_line = data.split(b"\r\n", 1)[0].decode("latin-1")
    parts = request_line.split(" ")
    if len(parts) != 3 or parts[0] != "GET" or not parts[1].startswith("/"):
        return None
    return parts[1]


async def _respond(stream: anyio.abc.SocketStream, status: int, title: str, text: str) -> None:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
    body = (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Referrer-Policy: no-referrer\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    try:
        await stream.send(head + body)
    except (anyio.BrokenResourceError, OSError):
        log.debug("the browser closed the connection before the answer")


class AuthorizationCodeFlow(TokenSource):
    """The authorization code grant with PKCE on a loopback redirect (RFC 6749 §4.1, 8252, 7636).

    The user signs in in a browser; the ``open_browser`` callback shows them the way (the
    library never opens a browser or prints by itself).

    Args:
        client_id: a public client registered as a native app with the redirect URI
            ``http://127.0.0.1/callback`` (any port is then accepted, RFC 8252 §7.3).
        scopes: the scopes to ask for; include ``offline_access`` for a refresh token.
        open_browser: called with a :class:`BrowserPrompt` once the listener runs.
        client_secret: the secret, if the client is confidential.
        timeout: seconds to wait for the browser to come back.
        redirect_path: the path of the redirect URI.
        prompt: the OIDC ``prompt`` parameter; by default ``consent`` when
            ``offline_access`` is asked for (OIDC Core §11 requires it for a refresh token),
            else none.

    Example:
        ```python
        def show(p: BrowserPrompt) -> None:
            webbrowser.open(p.authorization_url)

        flow = AuthorizationCodeFlow("provena-like-cli", ["openid", "offline_access"], show)
        tokens = await flow.fetch_token(http, OIDCDiscovery(issuer))
        ```
    """

    persistent = True
    interactive = True

    def __init__(
        self,
        client_id: str,
        scopes: Sequence[str],
        open_browser: BrowserCallback,
        *,
        client_secret: str | SecretStr | None = None,
        timeout: float = 300.0,
        redirect_path: str = "/callback",
        prompt: str | None = None,
    ) -> None:
        if timeout <= 0:
            raise UsageError("timeout must be > 0 seconds")
        if not redirect_path.startswith("/"):
            raise UsageError("redirect_path must start with '/'")
        secret = SecretStr(client_secret) if isinstance(client_secret, str) else client_secret
        self._client = ClientAuth(client_id, secret)
        self.client_id = client_id
        self.scopes = tuple(scopes)
        self.timeout = timeout
        self.redirect_path = redirect_path
        if prompt is None and "offline_access" in self.scopes:
            prompt = "consent"
        self.prompt = prompt
        self._open_browser = open_browser

    def __repr__(self) -> str:
        secret = ", client_secret='**********'" if self._client.client_secret else ""
        return (
            f"AuthorizationCodeFlow(client_id={self.client_id!r}, scopes={self.scopes!r}{secret})"
        )

    def _client_auth(self) -> ClientAuth:
        return self._client

    async def fetch_token(self, http: httpx.AsyncClient, discovery: OIDCDiscovery) -> TokenSet:
        """Run the flow: listen, send the user to the provider, take the code, exchange it.

        Raises:
            AuthorizationTimeout: the browser did not come back within ``timeout``.
            AccessDenied: the user (or the provider) denied the request.
            AuthorizationFlowError: the provider answered with another error, the answer's
                ``state`` (or ``iss``) did not match the request, or the code exchange failed.
            AuthError: the provider has no authorization endpoint, or no S256 PKCE.
            APIError: the provider could not be reached or answered unexpectedly.
        """
        config = await discovery.get(http)
        if not config.authorization_endpoint:
            raise AuthError(
                f"the provider {discovery.issuer} has no authorization endpoint "
                "(no browser sign-in); use the device flow"
            )
        methods = config.code_challenge_methods_supported
        if methods is not None and "S256" not in methods:
            raise AuthError(
                f"the provider {discovery.issuer} does not support PKCE with S256 "
                f"(it offers {', '.join(methods) or 'none'}); refusing a weaker sign-in"
            )
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(32)
        issuer = config.issuer

        def judge(params: dict[str, str]) -> str | None:
            return _problem(params, state, issuer)

        listener = await anyio.create_tcp_listener(local_host=LOOPBACK_HOST, local_port=0)
        async with listener:
            (socket_listener,) = listener.listeners
            assert isinstance(socket_listener, anyio.abc.SocketListener)
            waiter = _Listener(socket_listener, self.redirect_path, judge)
            redirect_uri = f"http://{LOOPBACK_HOST}:{waiter.port}{self.redirect_path}"
            query = {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
            if self.scopes:
                query["scope"] = " ".join(dict.fromkeys(self.scopes))
            if self.prompt:
                query["prompt"] = self.prompt
            endpoint = config.authorization_endpoint
            url = endpoint + ("&" if "?" in endpoint else "?") + urlencode(query)
            log.debug("browser sign-in: listening on %s", redirect_uri)
            prompt = BrowserPrompt(url, redirect_uri, self.timeout)

            async def open_browser() -> None:
                shown = self._open_browser(prompt)
                if inspect.isawaitable(shown):
                    await shown

            try:
                answer = await waiter.wait(open_browser, self.timeout)
            except TimeoutError:
                raise AuthorizationTimeout(
                    f"nobody came back from the sign-in page within {self.timeout:g} s"
                ) from None
        params = answer.params
        mismatch = _mismatch(params, state, issuer)
        if mismatch is not None:
            raise AuthorizationFlowError(mismatch)
        error = params.get("error")
        if error is not None:
            failure = OAuthError(
                error=error,
                error_description=params.get("error_description"),
                error_uri=params.get("error_uri"),
            )
            if error == "access_denied":
                raise oauth_failure(AccessDenied, "the sign-in request was denied", failure)
            raise oauth_failure(AuthorizationFlowError, "the sign-in failed", failure)
        code = params.get("code")
        if not code:
            raise AuthorizationFlowError("the provider's answer holds no authorization code")
        return await self._exchange(http, config.token_endpoint, code, redirect_uri, verifier)

    async def _exchange(
        self, http: httpx.AsyncClient, endpoint: str, code: str, redirect_uri: str, verifier: str
    ) -> TokenSet:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        headers = self._client.apply(data)
        outcome = parse_token_response(await post_form(http, endpoint, data, headers))
        if isinstance(outcome, OAuthError):
            raise oauth_failure(
                AuthorizationFlowError, "the provider refused the authorization code", outcome
            )
        log.debug("browser sign-in of client %s completed", self.client_id)
        return TokenSet.from_response(outcome)


def _mismatch(params: dict[str, str], state: str, issuer: str) -> str | None:
    """Why the answer is not this sign-in's (``state``, RFC 9207 ``iss``), or ``None``."""
    if not secrets.compare_digest(params.get("state", "").encode(), state.encode()):
        return (
            "the answer does not belong to this sign-in (its state does not match the "
            "request's): refused"
        )
    iss = params.get("iss")
    if iss is not None and not same_issuer(iss, issuer):
        return f"the answer came from another issuer ({iss}, not {issuer}): refused"
    return None


def _problem(params: dict[str, str], state: str, issuer: str) -> str | None:
    """What the browser's page says went wrong, or ``None`` when it carries a good code."""
    mismatch = _mismatch(params, state, issuer)
    if mismatch is not None:
        return f"The sign-in failed: {mismatch}."
    if "error" in params:
        return f"The provider answered: {params['error']}."
    if not params.get("code"):
        return "The answer holds no authorization code."
    return None
