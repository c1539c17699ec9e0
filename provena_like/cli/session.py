"""``provena-like login | whoami | logout``.

``login`` signs in at the server's own issuer, or with ``--issuer`` at an institution's
OpenID provider the server trusts (its URL or short name, from ``GET /auth/issuers``; see
``--list-issuers``). The sign-in is the device flow when the provider offers it, else a
browser sign-in (authorization code + PKCE on a loopback redirect); ``--flow`` chooses.
Tokens are kept per (server, issuer) in the token store, and the issuer is remembered, so
later commands use that sign-in; ``logout`` ends it (``--all``: every issuer's).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provena_like.cli._common import (
    JsonOption,
    UrlOption,
    console,
    emit,
    err_console,
    load_config,
    run,
)
from provena_like.cli._errors import CliFailure, ExitCode

if TYPE_CHECKING:
    from provena_like._core.config import ProvenaConfig
    from provena_like.auth import AuthManager, BrowserPrompt, DevicePrompt
    from provena_like.models.auth import TrustedIssuers


class Flow(enum.StrEnum):
    """How ``login`` signs in."""

    AUTO = "auto"
    DEVICE = "device"
    BROWSER = "browser"


IssuerOption = Annotated[
    str | None,
    typer.Option(
        "--issuer",
        help="Sign in at this OpenID provider: its URL or short name, one the server trusts "
        "(see --list-issuers). Later commands use it until you log out.",
    ),
]
FlowOption = Annotated[
    Flow,
    typer.Option(
        "--flow",
        help="device: approve a code on any device; browser: sign in in a browser on this "
        "machine; auto: the device flow if the provider offers it, else the browser.",
        case_sensitive=False,
    ),
]
NoBrowserOption = Annotated[
    bool,
    typer.Option(
        "--no-browser",
        help="Browser sign-in: print the link instead of opening a browser.",
    ),
]
ListIssuersOption = Annotated[
    bool,
    typer.Option("--list-issuers", help="List where you may sign in for this server, and exit."),
]
BrowserTimeoutOption = Annotated[
    float,
    typer.Option("--timeout", min=1, help="Browser sign-in: seconds to wait for the browser."),
]
AllOption = Annotated[
    bool,
    typer.Option("--all", help="Sign out of every issuer you signed in at for this server."),
]


def _graphical_browser_likely() -> bool:
    """Whether opening a browser can show a window (on Linux: a display is set).

    Without one, :mod:`webbrowser` falls back to a console browser (lynx, w3m) that would take
    over the terminal the CLI prints to: the link is printed instead.
    """
    import os
    import sys

    if sys.platform.startswith("linux") or sys.platform.startswith("freebsd"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


async def _published(config: ProvenaConfig) -> TrustedIssuers:
    """The server's ``GET /auth/issuers`` (no sign-in needed)."""
    from provena_like.client import ProvenaClient

    async with ProvenaClient(config) as pv:
        return await pv.auth_client.list_trusted_issuers()


def _at_issuer(config: ProvenaConfig, published: TrustedIssuers, wanted: str) -> dict[str, Any]:
    """The config overrides to sign in at ``wanted`` (a URL or a name), if the server trusts it."""
    url = wanted.rstrip("/")
    if published.embedded is not None and published.embedded.rstrip("/") == url:
        return {"issuer": published.embedded}
    for trusted in published.issuers:
        named = trusted.name is not None and trusted.name.lower() == wanted.lower()
        if named or trusted.issuer.rstrip("/") == url:
            return {"issuer": trusted.issuer} | (
                {"client_id": trusted.client_id} if trusted.client_id else {}
            )
    known = [published.embedded] if published.embedded else []
    known += [f"{t.name} ({t.issuer})" if t.name else t.issuer for t in published.issuers]
    raise CliFailure(
        ExitCode.USAGE,
        f"the server at {config.base_url} does not accept tokens of {wanted}; it accepts: "
        + (", ".join(known) or "none"),
    )


async def _choose(manager: AuthManager, flow: Flow) -> Flow:
    """The flow to use: ``flow``, or for ``auto`` what the provider's discovery offers."""
    metadata = await manager.provider_metadata()
    device, browser = metadata.device_authorization_endpoint, metadata.authorization_endpoint
    if flow is Flow.AUTO:
        if device:
            return Flow.DEVICE
        if browser:
            return Flow.BROWSER
        raise CliFailure(
            ExitCode.FAILED,
            f"the provider {metadata.issuer} offers neither the device flow nor a browser "
            "sign-in; configure a client secret or an access token instead",
        )
    if (flow is Flow.DEVICE and not device) or (flow is Flow.BROWSER and not browser):
        raise CliFailure(
            ExitCode.USAGE,
            f"the provider {metadata.issuer} does not offer the {flow.value} sign-in; "
            f"try --flow {Flow.BROWSER.value if device is None else Flow.DEVICE.value}",
        )
    return flow


def login(
    url: UrlOption = None,
    issuer: IssuerOption = None,
    flow: FlowOption = Flow.AUTO,
    no_browser: NoBrowserOption = False,
    timeout: BrowserTimeoutOption = 300.0,
    list_issuers: ListIssuersOption = False,
    as_json: JsonOption = False,
) -> None:
    """Sign in: approve a code (device flow) or sign in in your browser, then come back.

    With ``--issuer``, the sign-in is at an institution's provider the server trusts (its
    URL or short name: see ``--list-issuers``); later commands use it until you log out or
    sign in elsewhere. ``PROVENA_ISSUER`` (or ``issuer`` in the config file) overrides that.
    """
    if list_issuers:
        _list_issuers(url, as_json)
        return
    from provena_like.auth import AuthManager, SignIn, TokenStore
    from provena_like.client import ProvenaClient

    out = err_console if as_json else console  # keep stdout for the JSON document

    def show_code(prompt: DevicePrompt) -> None:
        link = prompt.verification_uri_complete or prompt.verification_uri
        out.print(f"Open [bold link={link}]{link}[/] in a browser", soft_wrap=True)
        out.print(f"and confirm the code [bold cyan]{prompt.user_code}[/]")
        out.print(f"(it expires in {prompt.expires_in // 60} min). Waiting ...")

    async def open_browser(prompt: BrowserPrompt) -> None:
        import webbrowser

        import anyio

        link = prompt.authorization_url
        opened = False
        if not no_browser and _graphical_browser_likely():
            opened = await anyio.to_thread.run_sync(webbrowser.open, link)
        if opened:
            out.print("Your browser was opened to sign in. If it was not, open this link:")
        else:
            out.print("Open this link in a browser on this machine to sign in:")
        out.print(link, soft_wrap=True, markup=False, highlight=False)
        out.print(f"Waiting for the browser (at most {prompt.expires_in:g} s) ...")

    if issuer:
        base = load_config(url, remembered=False)
        published = run(lambda: _published(base))
        config = load_config(url, remembered=False, **_at_issuer(base, published, issuer))
    else:
        config = load_config(url)

    async def go() -> None:
        async with AuthManager.from_config(config) as manager:
            chosen = await _choose(manager, flow)
            if chosen is Flow.DEVICE:
                await manager.login_device(show_code)
            else:
                await manager.login_browser(open_browser, timeout=timeout)
        store, server = TokenStore(config.resolved_token_dir), config.service_url("auth")
        if config.resolved_issuer != server:
            await store.remember_sign_in(server, SignIn(config.resolved_issuer, config.client_id))
        else:
            await store.forget_sign_in(server)  # back to the server's own sign-in
        async with ProvenaClient(config) as pv:
            me = await pv.auth_client.userinfo()
        emit(
            as_json,
            {
                "username": me.preferred_username or me.sub,
                "server": config.base_url,
                "issuer": config.resolved_issuer,
                "flow": chosen.value,
            },
            lambda: console.print(
                f"[green]Signed in[/] as [bold]{me.preferred_username or me.sub}[/]"
                + (f" at {config.resolved_issuer}" if config.resolved_issuer != server else "")
            ),
        )

    run(go)


def _list_issuers(url: str | None, as_json: bool) -> None:
    """Print the server's issuers (``login --list-issuers``), marking the one in use."""
    base = load_config(url, remembered=False)
    current = load_config(url).resolved_issuer

    async def go() -> None:
        published = await _published(base)
        rows: list[dict[str, Any]] = []
        if published.embedded is not None:
            rows.append({"name": None, "issuer": published.embedded, "client_id": None})
        rows += [
            {"name": t.name, "issuer": t.issuer, "client_id": t.client_id}
            for t in published.issuers
        ]
        for row in rows:
            row["current"] = row["issuer"].rstrip("/") == current.rstrip("/")
            row["embedded"] = row["issuer"] == published.embedded

        def human() -> None:
            from rich.table import Table

            table = Table("", "name", "issuer", "client", box=None, pad_edge=False)
            for row in rows:
                name = row["name"] or ("(this server)" if row["embedded"] else "-")
                table.add_row(
                    "*" if row["current"] else "", name, row["issuer"], row["client_id"] or "-"
                )
            console.print(table)
            if not rows:
                console.print("The server accepts no sign-in.")

        emit(as_json, {"server": base.base_url, "issuers": rows}, human)

    run(go)


def whoami(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Show who you are signed in as, with your groups and system roles."""
    from provena_like.client import ProvenaClient

    config = load_config(url)

    async def go() -> None:
        async with ProvenaClient(config) as pv:
            me = await pv.auth_client.userinfo()

        def human() -> None:
            name = f"[bold]{me.preferred_username or me.sub}[/]"
            console.print(name + (f" ({me.name})" if me.name else ""))
            if me.email:
                console.print(f"  email   {me.email}")
            console.print(f"  groups  {', '.join(me.groups) or '-'}")
            console.print(f"  roles   {', '.join(me.roles) or '-'}")
            console.print(f"  server  {config.base_url}")
            if config.resolved_issuer != config.service_url("auth"):
                console.print(f"  issuer  {config.resolved_issuer}")

        doc = {**me.model_dump(mode="json"), "server": config.base_url}
        emit(as_json, doc | {"issuer": config.resolved_issuer}, human)

    run(go)


def logout(
    url: UrlOption = None, all_issuers: AllOption = False, as_json: JsonOption = False
) -> None:
    """Revoke the stored refresh token and delete it from this machine.

    Signs out of the issuer in use (the one ``login --issuer`` remembered, if any); later
    commands then use the server's own sign-in. ``--all`` signs out of every issuer.
    """
    from provena_like.auth import AuthManager, TokenStore

    config = load_config(url)

    async def go() -> None:
        store, server = TokenStore(config.resolved_token_dir), config.service_url("auth")
        remembered = await store.sign_in_for(server)
        if all_issuers:
            mine = {server} | ({remembered.issuer} if remembered else set())
            keys = [
                k
                for k in await store.keys()
                if k.server == server or (k.server is None and k.issuer in mine)
            ]
            for key in keys:
                manager = AuthManager(
                    issuer=key.issuer,
                    client_id=key.client_id,
                    scopes=key.scopes,
                    store=store,
                    server=key.server,
                )
                async with manager:
                    await manager.logout()
            issuers = sorted({k.issuer for k in keys})
            await store.forget_sign_in(server)
        else:
            async with AuthManager.from_config(config) as manager:
                await manager.logout()
            issuers = [config.resolved_issuer]
            if remembered is not None and remembered.issuer == config.resolved_issuer:
                await store.forget_sign_in(server)
        of = f" of {', '.join(issuers)}" if issuers else ""
        emit(
            as_json,
            {"signed_out": True, "issuers": issuers},
            lambda: console.print(f"Signed out{of}."),
        )

    run(go)
