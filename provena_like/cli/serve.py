"""``provena-like serve``: the reference server and its object store, on this machine.

The object store is SeaweedFS, started in the data dir (``--s3 embedded``), or an external
S3 service with STS (``--s3 external``: AWS, MinIO, the JuiceFS gateway, a SeaweedFS
cluster), checked before anything starts.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import platformdirs
import typer
from rich.console import Console

from provena_like.cli._errors import CliFailure, ExitCode

if TYPE_CHECKING:
    from provena_like.server.settings import S3Settings, TrustedIssuer

console = Console()

BUCKET = "provena"


def default_data_dir() -> Path:
    """Where ``serve`` keeps its database, keys and objects unless told otherwise."""
    return Path(platformdirs.user_data_dir("provena-like")) / "server"


def serve(
    data_dir: Annotated[
        Path | None, typer.Option(help="Persistent data dir (database, keys, objects).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port.")] = 8000,
    s3_port: Annotated[int, typer.Option(help="Object store (S3) port; 0 picks a free one.")] = 0,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database",
            "--database-url",
            envvar="PROVENA_LIKE_DATABASE_URL",
            help="PostgreSQL database URL, postgresql://USER:PASSWORD@HOST:PORT/DB "
            "(default: SQLite in the data dir).",
        ),
    ] = None,
    public_url: Annotated[
        str | None, typer.Option(help="Externally visible base URL (default http://HOST:PORT).")
    ] = None,
    notify_webhook: Annotated[
        str | None,
        typer.Option(
            help="POST release requests and decisions as JSON to this URL "
            "(default: write them to the server log)."
        ),
    ] = None,
    trusted_issuers: Annotated[
        Path | None,
        typer.Option(
            envvar="PROVENA_LIKE_TRUSTED_ISSUERS",
            help="JSON file: a list of institutions' OpenID providers whose access tokens "
            "are accepted too (see the guide 'Using your institution's login').",
        ),
    ] = None,
    embedded_issuer: Annotated[
        bool,
        typer.Option(
            envvar="PROVENA_LIKE_EMBEDDED_ISSUER",
            help="Accept the tokens of the server's own sign-in (--no-embedded-issuer: only "
            "those of the trusted issuers).",
        ),
    ] = True,
    s3: Annotated[
        str,
        typer.Option(
            "--s3",
            envvar="PROVENA_LIKE_S3",
            help="embedded: start SeaweedFS in the data dir; external: use the S3 service "
            "the --s3-* options, their PROVENA_LIKE_S3_* variables or --s3-config describe "
            "(its secret key only from PROVENA_LIKE_S3_SECRET_KEY or the file).",
        ),
    ] = "embedded",
    s3_config: Annotated[
        Path | None,
        typer.Option(
            envvar="PROVENA_LIKE_S3_CONFIG",
            help="TOML or JSON file of the external store's settings (the fields of "
            "S3Settings: endpoint_url, sts_endpoint_url, public_endpoint_url, region, bucket, "
            "role_arn, access_key, secret_key, addressing_style, ...); options override it.",
        ),
    ] = None,
    s3_endpoint: Annotated[
        str | None,
        typer.Option(envvar="PROVENA_LIKE_S3_ENDPOINT", help="External S3 endpoint (none: AWS)."),
    ] = None,
    s3_sts_endpoint: Annotated[
        str | None,
        typer.Option(
            envvar="PROVENA_LIKE_S3_STS_ENDPOINT", help="STS endpoint (default: the S3 one)."
        ),
    ] = None,
    s3_public_endpoint: Annotated[
        str | None,
        typer.Option(
            envvar="PROVENA_LIKE_S3_PUBLIC_ENDPOINT",
            help="The S3 endpoint handed to clients (default: the S3 one).",
        ),
    ] = None,
    s3_region: Annotated[
        str | None, typer.Option(envvar="PROVENA_LIKE_S3_REGION", help="S3 and STS region.")
    ] = None,
    s3_bucket: Annotated[
        str | None,
        typer.Option(envvar="PROVENA_LIKE_S3_BUCKET", help="The datasets' bucket (must exist)."),
    ] = None,
    s3_role_arn: Annotated[
        str | None,
        typer.Option(
            envvar="PROVENA_LIKE_S3_ROLE_ARN", help="The role clients' credentials are of."
        ),
    ] = None,
    s3_access_key: Annotated[
        str | None,
        typer.Option(
            envvar="PROVENA_LIKE_S3_ACCESS_KEY",
            help="The server's access key (on MinIO-family stores an IAM user, not root).",
        ),
    ] = None,
    s3_addressing: Annotated[
        str | None,
        typer.Option(
            envvar="PROVENA_LIKE_S3_ADDRESSING", help="path, virtual or auto (default path)."
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="PROVENA_LIKE_WORKERS",
            help="API worker processes sharing the port (more than 1: see the guide "
            "'Running the server'; use PostgreSQL for production).",
        ),
    ] = 1,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the addresses (or the error) as one JSON line."),
    ] = False,
) -> None:
    """Run the API (auth, registry, ...) and an S3 object store until interrupted."""
    auth = _auth_settings(trusted_issuers, embedded_issuer)
    options = {
        "endpoint_url": s3_endpoint,
        "sts_endpoint_url": s3_sts_endpoint,
        "public_endpoint_url": s3_public_endpoint,
        "region": s3_region,
        "bucket": s3_bucket,
        "role_arn": s3_role_arn,
        "access_key": s3_access_key,
        "addressing_style": s3_addressing,
    }
    external = _external_s3(s3, s3_config, options)
    database_url = _database_url(database_url)
    # Everything the server and the object store create is for this user only: keys, the
    # database (with its -wal/-shm files), objects, logs.
    os.umask(0o077)
    data_dir = (data_dir or default_data_dir()).expanduser().resolve()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    with _data_dir_lock(data_dir):
        sock = _bind_api_port(host, port)
        # The server's modules (FastAPI, SQLAlchemy, uvicorn) load only for this command.
        _serve(
            data_dir,
            sock,
            s3_port,
            external,
            database_url,
            public_url,
            notify_webhook,
            auth,
            as_json,
            workers,
        )


_S3_OPTIONS = {
    "endpoint_url": ("--s3-endpoint", "PROVENA_LIKE_S3_ENDPOINT"),
    "sts_endpoint_url": ("--s3-sts-endpoint", "PROVENA_LIKE_S3_STS_ENDPOINT"),
    "public_endpoint_url": ("--s3-public-endpoint", "PROVENA_LIKE_S3_PUBLIC_ENDPOINT"),
    "region": ("--s3-region", "PROVENA_LIKE_S3_REGION"),
    "bucket": ("--s3-bucket", "PROVENA_LIKE_S3_BUCKET"),
    "role_arn": ("--s3-role-arn", "PROVENA_LIKE_S3_ROLE_ARN"),
    "access_key": ("--s3-access-key", "PROVENA_LIKE_S3_ACCESS_KEY"),
    "secret_key": (None, "PROVENA_LIKE_S3_SECRET_KEY"),
    "addressing_style": ("--s3-addressing", "PROVENA_LIKE_S3_ADDRESSING"),
}


def _where_to_set(field: str) -> str:
    flag, variable = _S3_OPTIONS.get(field, (None, None))
    places = [p for p in (flag, variable) if p]
    places.append(f"{field} in the --s3-config file")
    return ", ".join(places)


def load_s3_config(path: Path) -> dict[str, Any]:
    """The fields of an external store's settings file (TOML, or JSON when it ends .json).

    Raises:
        CliFailure: usage (exit 2) when the file can't be read or parsed.
    """
    import tomllib

    try:
        text = path.expanduser().read_text()
    except OSError as err:
        raise CliFailure(ExitCode.USAGE, f"cannot read {path}: {err.strerror}") from err
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as err:
        raise CliFailure(
            ExitCode.USAGE, f"{path}: not valid {path.suffix or 'TOML'}: {err}"
        ) from err
    if not isinstance(data, dict):
        raise CliFailure(ExitCode.USAGE, f"{path}: expected a table of S3 settings")
    return dict(data.get("s3", data))


def _external_s3(
    mode: str, config: Path | None, options: dict[str, str | None]
) -> S3Settings | None:
    """The external store's checked settings; None for the embedded one.

    A setting that is missing or wrong is a usage error (exit 2) that names it; then the
    store itself is asked (exit 5 when it can't be reached, 2 when it refuses a setting).
    """
    given = [_S3_OPTIONS[k][0] for k, v in options.items() if v is not None]
    if mode not in ("embedded", "external"):
        raise CliFailure(ExitCode.USAGE, f"--s3 is 'embedded' or 'external', not {mode!r}")
    if mode == "embedded":
        if given or config is not None:
            named = ", ".join(str(g) for g in given) or "--s3-config"
            raise CliFailure(
                ExitCode.USAGE, f"{named} describe an external store: add --s3 external"
            )
        return None
    import anyio
    from pydantic import ValidationError

    from provena_like.server.datastore.storage import StoreSettingError, check_object_store
    from provena_like.server.settings import S3Settings

    values: dict[str, Any] = load_s3_config(config) if config is not None else {}
    values.update({k: v for k, v in options.items() if v is not None})
    secret = os.environ.get("PROVENA_LIKE_S3_SECRET_KEY")
    if secret:
        values["secret_key"] = secret
    try:
        settings = S3Settings.model_validate(values)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(settings)"
        if first["type"] == "missing":
            message = f"the external S3 store needs {field}: give {_where_to_set(field)}"
        else:
            message = (
                f"S3 setting {field} is not valid ({_where_to_set(field)}): "
                f"{str(first['msg']).removeprefix('Value error, ')}"
            )
        raise CliFailure(ExitCode.USAGE, message) from err
    try:
        anyio.run(check_object_store, settings)
    except StoreSettingError as err:
        unreachable = err.setting in ("endpoint_url", "sts_endpoint_url")
        raise CliFailure(
            ExitCode.UNREACHABLE if unreachable else ExitCode.USAGE,
            f"{err} (check {err.setting}: {_where_to_set(err.setting)})",
        ) from err
    return settings


def load_trusted_issuers(path: Path) -> list[TrustedIssuer]:
    """The trusted issuers of a JSON file.

    The file holds a list of objects with the fields of
    :class:`~provena_like.server.settings.TrustedIssuer`.

    Raises:
        CliFailure: usage (exit 2) when the file can't be read or is not valid.
    """
    from pydantic import TypeAdapter, ValidationError

    from provena_like.server.settings import TrustedIssuer

    try:
        text = path.expanduser().read_text()
    except OSError as err:
        raise CliFailure(ExitCode.USAGE, f"cannot read {path}: {err.strerror}") from err
    try:
        return TypeAdapter(list[TrustedIssuer]).validate_json(text)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise CliFailure(
            ExitCode.USAGE, f"{path}: not a valid list of trusted issuers: {where}: {first['msg']}"
        ) from err


def _auth_settings(path: Path | None, embedded: bool) -> dict[str, Any]:
    """The settings of who may sign in, checked before anything starts."""
    from pydantic import ValidationError

    from provena_like.server.settings import ServerSettings

    issuers = load_trusted_issuers(path) if path is not None else []
    for trusted in issuers:
        if trusted.introspection is not None:
            try:  # the secret's variable or file, checked now rather than at the first token
                trusted.introspection.secret()
            except ValueError as err:
                raise CliFailure(ExitCode.USAGE, f"trusted issuer {trusted.issuer}: {err}") from err
    auth: dict[str, Any] = {"trusted_issuers": issuers, "embedded_issuer_enabled": embedded}
    try:  # the checks across settings (an issuer listed twice, nobody able to sign in)
        ServerSettings(data_dir=Path(), **auth)
    except ValidationError as err:
        message = str(err.errors()[0]["msg"]).removeprefix("Value error, ")
        raise CliFailure(ExitCode.USAGE, message) from err
    return auth


def _database_url(url: str | None) -> str | None:
    """The server's async URL of ``--database``, checked before anything starts."""
    if url is None:
        return None
    from provena_like.server.settings import async_database_url

    try:
        return async_database_url(url)
    except ValueError as err:
        raise CliFailure(ExitCode.USAGE, f"--database: {err}") from err


@contextlib.contextmanager
def _data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold ``serve.lock`` in the data dir, or fail: another ``serve`` is using it."""
    import fcntl

    lock_file = data_dir / "serve.lock"
    with lock_file.open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            fh.seek(0)
            pid = fh.read().strip() or "?"
            raise CliFailure(
                ExitCode.FAILED,
                f"data dir {data_dir} is in use by another provena-like serve (pid {pid}): "
                "it is already running; stop it, or pass another --data-dir",
                kind="in_use",
            ) from err
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield


def _bind_api_port(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound before anything starts, or a clear failure."""
    from provena_like.testing.server_thread import bind_socket

    try:
        return bind_socket(host, port)
    except OSError as err:
        if err.errno != errno.EADDRINUSE:
            raise CliFailure(
                ExitCode.USAGE, f"cannot listen on {host}:{port}: {err.strerror}"
            ) from err
        raise CliFailure(
            ExitCode.FAILED,
            f"port {port} is in use (is provena-like serve already running?); "
            "stop it or pass another --port",
            kind="in_use",
        ) from err


def _serve(
    data_dir: Path,
    sock: socket.socket,
    s3_port: int,
    external: S3Settings | None,
    database_url: str | None,
    public_url: str | None,
    notify_webhook: str | None,
    auth: dict[str, Any],
    as_json: bool,
    workers: int = 1,
) -> None:
    from provena_like.server.app import create_app
    from provena_like.server.settings import S3Settings, ServerSettings
    from provena_like.testing.seaweed import SeaweedS3
    from provena_like.testing.server_thread import ServerThread
    from provena_like.testing.server_workers import ServerWorkers

    host, port = sock.getsockname()[:2]
    admin_file = data_dir / "initial-admin.json"
    first_start = not admin_file.exists()

    if as_json:
        console.quiet = True
    if database_url is not None:
        _check_database(database_url, sock)
    s3 = None if external is not None else SeaweedS3(data_dir / "s3", s3_port=s3_port or None)
    if s3 is not None:
        console.print(f"starting the object store in {data_dir / 's3'} ...")
        try:
            s3.start()
        except RuntimeError as exc:  # e.g. a weed left by a crash that can't be stopped here
            sock.close()
            raise CliFailure(ExitCode.FAILED, f"cannot start the object store: {exc}") from exc
    try:
        if s3 is not None:
            s3.create_bucket(BUCKET)
            external = S3Settings(
                endpoint_url=s3.endpoint_url,
                access_key=s3.admin_access_key,
                secret_key=s3.admin_secret_key,
                bucket=BUCKET,
                role_arn=s3.role_arn,
                region=s3.region,
            )
        s3_settings = external
        assert s3_settings is not None
        store_url = s3_settings.client_endpoint_url or f"AWS S3 ({s3_settings.region})"
        settings = ServerSettings(
            data_dir=data_dir,
            public_url=public_url or f"http://{host}:{port}",
            database_url=database_url,
            notifier="webhook" if notify_webhook else "log",
            notifier_webhook_url=notify_webhook,
            **auth,
            s3=s3_settings,
            gc_freeze=True,  # the server owns this process (and its workers theirs)
        )
        # the object store above is started once, here; the workers share it
        server: ServerThread | ServerWorkers = (
            ServerThread(create_app(settings), sock=sock)
            if workers == 1
            else ServerWorkers(settings, workers=workers, sock=sock)
        )
        try:
            server.start()
        except RuntimeError as exc:
            raise CliFailure(ExitCode.FAILED, f"cannot start the server: {exc}") from exc
        try:
            if as_json:
                shown = first_start and admin_file.exists()
                initial = json.loads(admin_file.read_text()) if shown else None
                doc = {
                    "url": settings.public_url,
                    "issuer": settings.issuer,
                    "trusted_issuers": [t.issuer for t in settings.trusted_issuers],
                    "s3": store_url,
                    "bucket": s3_settings.bucket,
                    "data_dir": str(data_dir),
                    "initial_admin": initial,
                    "workers": workers,
                }
                typer.echo(json.dumps(doc))
            console.print(f"[bold green]provena_like is running[/] at {settings.public_url}")
            console.print(f"  API docs      {settings.public_url}/docs")
            console.print(f"  OIDC issuer   {settings.issuer}")
            for trusted in settings.trusted_issuers:
                console.print(f"  trusted       {trusted.issuer}")
            console.print(f"  object store  {store_url} (bucket {s3_settings.bucket})")
            console.print(f"  data dir      {data_dir}")
            if workers > 1:
                console.print(f"  workers       {workers} processes")
            if first_start and admin_file.exists():
                # Shown this once; the file (0600) goes when the administrator signs in.
                creds = json.loads(admin_file.read_text())
                console.print(
                    "[bold yellow]First start:[/] the administrator account is "
                    f"[bold]{creds['username']}[/] with password [bold]{creds['password']}[/]"
                    f"\n  (this is the only time it is shown; it stays in {admin_file}, "
                    "readable only by you, until the administrator first signs in, then "
                    "that file is deleted)"
                )
            console.print("Press Ctrl+C to stop.")
            _wait_for_signal()
        finally:
            console.print("stopping ...")
            server.stop()
    finally:
        if s3 is not None:
            s3.stop()


def _check_database(url: str, sock: socket.socket) -> None:
    """Connect to the database once: one that can't be reached fails clearly (exit 5)."""
    import asyncio

    from sqlalchemy import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    async def connect() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.connect():
                pass
        finally:
            await engine.dispose()

    try:
        asyncio.run(asyncio.wait_for(connect(), timeout=30))
    except Exception as err:  # the driver's errors: refused, unknown host, bad password, ...
        sock.close()
        where = make_url(url).render_as_string(hide_password=True)
        reason = str(err) or type(err).__name__
        raise CliFailure(
            ExitCode.UNREACHABLE, f"cannot connect to the database {where}: {reason}"
        ) from err


def _wait_for_signal() -> None:
    stop = threading.Event()

    def handler(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
