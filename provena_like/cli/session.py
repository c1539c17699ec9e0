"""``provena-like login | whoami | logout``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provena_like.cli._common import (
    JsonOption,
    UrlOption,
    console,
    emit,
    err_console,
    load_config,
    run,
)

if TYPE_CHECKING:
    from provena_like.auth import DevicePrompt


def login(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Sign in with the device flow: open the link shown, approve, and come back."""
    from provena_like.auth import AuthManager
    from provena_like.client import ProvenaClient

    config = load_config(url)

    def show(prompt: DevicePrompt) -> None:
        out = err_console if as_json else console  # keep stdout for the JSON document
        link = prompt.verification_uri_complete or prompt.verification_uri
        out.print(f"Open [bold link={link}]{link}[/] in a browser")
        out.print(f"and confirm the code [bold cyan]{prompt.user_code}[/]")
        out.print(f"(it expires in {prompt.expires_in // 60} min). Waiting ...")

    async def go() -> None:
        async with AuthManager.from_config(config) as manager:
            await manager.login_device(show)
        async with ProvenaClient(config) as pv:
            me = await pv.auth_client.userinfo()
        emit(
            as_json,
            {"username": me.preferred_username or me.sub, "server": config.base_url},
            lambda: console.print(
                f"[green]Signed in[/] as [bold]{me.preferred_username or me.sub}[/]"
            ),
        )

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

        emit(as_json, {**me.model_dump(mode="json"), "server": config.base_url}, human)

    run(go)


def logout(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Revoke the stored refresh token and delete it from this machine."""
    from provena_like.auth import AuthManager

    config = load_config(url)

    async def go() -> None:
        async with AuthManager.from_config(config) as manager:
            await manager.logout()
        emit(as_json, {"signed_out": True}, lambda: console.print("Signed out."))

    run(go)
