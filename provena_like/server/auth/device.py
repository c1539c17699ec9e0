"""Device authorization (RFC 8628): ``/device_authorization`` and the approval page.

A signed-in user approves or denies a user code on the ``/device`` page.

The approval form uses a *signed double-submit* token: the page sets an ``HttpOnly``,
``SameSite=Strict`` cookie holding a random nonce, and the form carries
``HMAC(key, nonce, user_code)``. A cross-site POST has neither the cookie nor a way to
compute the token, and the token can't be moved to another user code. Pages forbid framing
(clickjacking) and caching, and send no referrer (the URL holds the user code). Credentials are
checked with argon2 off the event loop; the status change is one conditional update, so a code
is approved or denied at most once.

Failed sign-ins are throttled per username (existing or not) and per address
(:mod:`~provena_like.server.auth.throttle`): a locked key, or one with too many checks in
flight, gets the form again with 429 and ``Retry-After`` *before* any password is hashed, so
a flood of guesses neither gets through nor slows down other people's approvals.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import CursorResult, delete, select, update

from provena_like.models.auth import DEVICE_CODE_GRANT, DeviceAuthorization
from provena_like.server.auth.bootstrap import forget_initial_password
from provena_like.server.auth.device_page import (
    ApprovalForm,
    approval_page,
    code_entry_page,
    format_user_code,
    result_page,
)
from provena_like.server.auth.keys import AuthKeys
from provena_like.server.auth.openapi import (
    DEVICE_AUTHORIZATION_FORM,
    DEVICE_PAGE_RESPONSES,
    DEVICE_SUBMIT_FORM,
    DEVICE_SUBMIT_RESPONSES,
    OAUTH_ERRORS,
)
from provena_like.server.auth.protocol import (
    NO_STORE,
    OAuthFailure,
    authenticate_client,
    new_secret,
    oauth_error_response,
    parse_scope,
    read_form,
    sha256_hex,
)
from provena_like.server.auth.tables import DeviceCodeRow, OAuthClientRow
from provena_like.server.auth.throttle import LoginThrottle, Throttled, account_key, address_key
from provena_like.server.db.base import utcnow
from provena_like.server.db.identity import UserRow
from provena_like.server.security import sessions
from provena_like.server.settings import ServerSettings

log = logging.getLogger(__name__)

router = APIRouter()

USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
"""32 symbols without 0/O or 1/I: 8 of them carry 40 bits."""

COOKIE = "pl_device_form"
_NONCE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
_PAGE_HEADERS = {
    **NO_STORE,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def new_user_code() -> str:
    """Eight random symbols of :data:`USER_CODE_ALPHABET`, normalised (no dash)."""
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))


def normalise_user_code(value: str) -> str:
    """Upper-case and drop dashes and spaces: ``abcd-efgh`` → ``ABCDEFGH``."""
    return re.sub(r"[\s-]", "", value).upper()


def _settings(request: Request) -> ServerSettings:
    settings: ServerSettings = request.app.state.settings
    return settings


def _device_path(request: Request) -> str:
    return urlsplit(_settings(request).issuer).path + "/device"


@router.post(
    "/device_authorization",
    summary="Device authorization (RFC 8628 §3.1)",
    response_model=DeviceAuthorization,
    responses=OAUTH_ERRORS,
    openapi_extra=DEVICE_AUTHORIZATION_FORM,
)
async def device_authorization(request: Request) -> Response:
    """Start a device flow: returns a device code to poll with and a user code to show."""
    settings = _settings(request)
    try:
        form = await read_form(request)
        scope = parse_scope(form.get("scope"))
        async with sessions(request)() as session, session.begin():
            client = await authenticate_client(session, request, form)
            if DEVICE_CODE_GRANT not in (client.grant_types or ()):
                raise OAuthFailure("unauthorized_client", "This client may not use device flow.")
            now = utcnow()
            await session.execute(
                delete(DeviceCodeRow).where(DeviceCodeRow.expires_at < now - timedelta(hours=1))
            )
            user_code = new_user_code()
            while await session.scalar(
                select(DeviceCodeRow.code_hash).where(DeviceCodeRow.user_code == user_code)
            ):
                user_code = new_user_code()
            device_code = new_secret()
            session.add(
                DeviceCodeRow(
                    code_hash=sha256_hex(device_code),
                    user_code=user_code,
                    client_id=client.client_id,
                    scope=scope,
                    interval=settings.device_poll_interval,
                    expires_at=now + timedelta(seconds=settings.device_code_ttl),
                    created_at=now,
                )
            )
    except OAuthFailure as exc:
        return oauth_error_response(exc)
    uri = settings.issuer + "/device"
    shown = format_user_code(user_code)
    body = {
        "device_code": device_code,
        "user_code": shown,
        "verification_uri": uri,
        "verification_uri_complete": f"{uri}?{urlencode({'user_code': shown})}",
        "expires_in": settings.device_code_ttl,
        "interval": settings.device_poll_interval,
    }
    log.debug("device authorization started for client %s", client.client_id)
    return JSONResponse(body, headers=NO_STORE)


def _html(request: Request, page: str, status: int, nonce: str | None = None) -> HTMLResponse:
    response = HTMLResponse(page, status_code=status, headers=_PAGE_HEADERS)
    if nonce is not None:
        settings = _settings(request)
        response.set_cookie(
            COOKIE,
            nonce,
            max_age=max(settings.device_code_ttl, 600),
            path=_device_path(request),
            secure=settings.public_url.startswith("https://"),
            httponly=True,
            samesite="strict",
        )
    return response


def _nonce(request: Request) -> str:
    current = request.cookies.get(COOKIE, "")
    return current if _NONCE.match(current) else secrets.token_urlsafe(32)


async def _pending(request: Request, user_code: str) -> tuple[DeviceCodeRow, OAuthClientRow] | str:
    """The pending code and its client, or why there is none."""
    async with sessions(request)() as session:
        row = await session.scalar(
            select(DeviceCodeRow).where(DeviceCodeRow.user_code == user_code)
        )
        if row is None:
            return "This code is not known. Check it and try again."
        if row.expires_at <= utcnow():
            return "This code has expired. Start the sign-in on your device again."
        if row.status != "pending":
            return "This code was already used."
        client = await session.get(OAuthClientRow, row.client_id)
    if client is None:
        return "This code is not known. Check it and try again."
    return row, client


def _form(
    request: Request, row: DeviceCodeRow, client: OAuthClientRow, nonce: str, username: str = ""
) -> ApprovalForm:
    keys: AuthKeys = request.app.state.auth_keys
    return ApprovalForm(
        action=_device_path(request),
        user_code=row.user_code,
        form_token=keys.form_token(nonce, row.user_code),
        client_name=client.name or client.client_id,
        scopes=tuple(row.scope.split()),
        username=username,
    )


@router.get(
    "/device",
    summary="Device approval page (HTML)",
    response_class=HTMLResponse,
    responses=DEVICE_PAGE_RESPONSES,
)
async def device_page(request: Request, user_code: str | None = Query(None)) -> HTMLResponse:
    """Show the sign-in form for ``user_code`` (or ask for the code)."""
    action = _device_path(request)
    if not user_code or not user_code.strip():
        return _html(request, code_entry_page(action), 200)
    nonce = _nonce(request)
    found = await _pending(request, normalise_user_code(user_code))
    if isinstance(found, str):
        return _html(request, code_entry_page(action, found), 404)
    return _html(request, approval_page(_form(request, *found, nonce)), 200, nonce)


async def _read_page_form(request: Request) -> dict[str, str] | None:
    try:
        return await read_form(request)
    except OAuthFailure:
        return None


@router.post(
    "/device",
    summary="Approve or deny a user code (HTML form)",
    response_class=HTMLResponse,
    responses=DEVICE_SUBMIT_RESPONSES,
    openapi_extra=DEVICE_SUBMIT_FORM,
)
async def device_submit(request: Request) -> HTMLResponse:
    """Check the credentials and approve or deny the pending code."""
    retry = _device_path(request)
    form = await _read_page_form(request)
    if form is None:
        return _html(request, result_page("Bad request", "Send the form.", error=True), 400)
    code = normalise_user_code(form.get("user_code", ""))
    nonce = request.cookies.get(COOKIE, "")
    keys: AuthKeys = request.app.state.auth_keys
    if not _NONCE.match(nonce) or not keys.check_form_token(
        form.get("form_token", ""), nonce, code
    ):
        message = "This form has expired or did not come from this page. Open the link again."
        return _html(request, result_page("Form expired", message, error=True, retry=retry), 403)
    action = form.get("action")
    if action not in ("approve", "deny"):
        return _html(
            request, result_page("Bad request", "Choose approve or deny.", error=True), 400
        )
    found = await _pending(request, code)
    if isinstance(found, str):
        return _html(request, result_page("Code not valid", found, error=True, retry=retry), 400)
    row, client = found
    username = form.get("username", "")
    throttle: LoginThrottle = request.app.state.login_throttle
    attempt = [account_key(username), address_key(request)]
    try:
        async with throttle.checking(attempt):  # refused before hashing when locked or too busy
            user = await _check_credentials(request, username, form.get("password", ""))
    except Throttled as exc:
        page_form = _form(request, row, client, nonce, username)
        message = (
            "Too many sign-in attempts for this account or from your address. "
            f"Try again in {exc.retry_after} s."
        )
        response = _html(request, approval_page(page_form, message), 429, nonce)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    await throttle.record(attempt, success=user is not None)
    if user is None:
        page_form = _form(request, row, client, nonce, username)
        page = approval_page(page_form, "Wrong username or password.")
        return _html(request, page, 401, nonce)
    await forget_initial_password(request.app.state.settings, user.username)
    status = "approved" if action == "approve" else "denied"
    async with sessions(request)() as session, session.begin():
        result = await session.execute(
            update(DeviceCodeRow)
            .where(
                DeviceCodeRow.code_hash == row.code_hash,
                DeviceCodeRow.status == "pending",
                DeviceCodeRow.expires_at > utcnow(),
            )
            .values(status=status, username=user.username)
        )
    if int(cast(CursorResult[Any], result).rowcount) != 1:
        message = "This code was already used or has expired."
        return _html(request, result_page("Code not valid", message, error=True, retry=retry), 400)
    log.info("device code %s by %s for client %s", status, user.username, row.client_id)
    if status == "approved":
        message = "Your device is signed in. You can close this window and return to it."
        return _html(request, result_page("Device approved", message), 200)
    return _html(request, result_page("Request denied", "The device was not signed in."), 200)


async def _check_credentials(request: Request, username: str, password: str) -> UserRow | None:
    async with sessions(request)() as session:
        user = await session.get(UserRow, username) if username else None
    passwords = request.app.state.passwords
    ok = await passwords.verify(user.password_hash if user else None, password)
    if not ok or user is None or user.disabled:
        return None
    return user
