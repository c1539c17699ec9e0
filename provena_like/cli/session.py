"""``provena-like login | whoami | logout``."""

from __future__ import annotations

from provena_like.auth import AuthManager, DevicePrompt
from provena_like.cli._common import UrlOption, console, load_config, run
from provena_like.client import ProvenaClient


def login(url: UrlOption = None) -> None:
    """Sign in with the device flow: open the link shown, approve, and come back."""
    config = load_config(url)

    def show(prompt: DevicePrompt) -> None:
        link = prompt.verification_uri_complete or prompt.verification_uri
        console.print(f"Open [bold link={link}]{link}[/] in a browser")
        console.print(f"and confirm the code [bold cyan]{prompt.user_code}[/]")
        console.print(f"(it expires in {prompt.expires_in // 60} min). Waiting ...")

    async def go() -> None:
        async with AuthManager.from_config(config) as manager:
            await manager.login_device(show)
        async with ProvenaClient(config) as pv:
            me = await pv.auth_client.userinfo()
        console.print(f"[green]Signed in[/] as [bold]{me.preferred_username or me.sub}[/]")

    run(go)


def whoami(url: UrlOption = None) -> None:
    """Show who you are signed in as, with your groups and system roles."""
    config = load_config(url)

    async def go() -> None:
        async with ProvenaClient(config) as pv:
            me = await pv.auth_client.userinfo()
        console.print(
            f"[bold]{me.preferred_username or me.sub}[/]" + (f" ({me.name})" if me.name else "")
        )
        if me.email:
            console.print(f"  email   {me.email}")
        console.print(f"  groups  {', '.join(me.groups) or '-'}")
        console.print(f"  roles   {', '.join(me.roles) or '-'}")
        console.print(f"  server  {config.base_url}")

    run(go)


def logout(url: UrlOption = None) -> None:
    """Revoke the stored refresh token and delete it from this machine."""
    config = load_config(url)

    async def go() -> None:
        async with AuthManager.from_config(config) as manager:
            await manager.logout()
        console.print("Signed out.")

    run(go)
