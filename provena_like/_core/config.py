"""``ProvenaConfig``: where the services are, how to authenticate and how hard to retry.

A config is immutable. Build one directly, or with :meth:`ProvenaConfig.load`, which layers
keyword arguments over ``PROVENA_*`` environment variables over a TOML file:

```python
config = ProvenaConfig(base_url="https://provena.example.org")
config = ProvenaConfig.load(timeout=60)  # env + ~/.config/provena-like/config.toml
```

The TOML file uses the field names as top-level keys:

```toml
base_url = "https://provena.example.org"
client_id = "my-pipeline"
scopes = ["openid", "offline_access"]
max_retries = 5
```
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from provena_like._core.errors import ProvenaError, UsageError
from provena_like._core.local_paths import EndpointPaths

__all__ = ["APP_NAME", "LocalEndpointEntry", "ProvenaConfig", "ServiceName"]

APP_NAME = "provena-like"
"""The application name used for the per-user config directory."""

ServiceName = Literal["auth", "registry", "datastore", "search", "transfer", "crawl"]

_SERVICE_PATHS: dict[str, str] = {
    "auth": "/auth",
    "registry": "/registry",
    "datastore": "/datastore",
    "search": "/search",
    "crawl": "/crawl",
    # The transfer service speaks the Globus Transfer API, root-mounted: globus-sdk is given
    # the bare root and adds /v0.10/ itself.
    "transfer": "",
}

_ENV_PREFIX = "PROVENA_"
_CONFIG_FILE_ENV = "PROVENA_CONFIG_FILE"


def _normalise_url(value: str, field: str) -> str:
    url = value.strip()
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{field} must be an http:// or https:// URL")
    return url.rstrip("/")


_ENDPOINT_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class LocalEndpointEntry(BaseModel):
    r"""One ``[local_endpoints.<name>]`` table: a collection that shows a local directory.

    Attributes:
        collection: The collection UUID.
        path: Where ``directory`` is on the collection: ``/`` (its root), ``/~/data`` (below
            the default directory), ``/C/data/raw`` (drive ``C:`` on Globus Connect Personal).
        directory: The local directory: POSIX, ``C:\data\raw`` or UNC ``\\server\share\x``
            (``~`` is expanded).

    Example:
        ```python
        entry = LocalEndpointEntry(
            collection="6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e",
            path="/C/data/raw",
            directory="C:\\data\\raw",
        )
        assert entry.paths.collection_path("C:\\data\\raw\\s1") == "/C/data/raw/s1"
        ```
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    collection: str
    path: str = "/"
    directory: str

    @field_validator("collection")
    @classmethod
    def _check_collection(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError(f"not a collection UUID: {value!r}") from None

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        try:
            return EndpointPaths(value, "/").path
        except ProvenaError as err:
            raise ValueError(str(err)) from None

    @field_validator("directory")
    @classmethod
    def _check_directory(cls, value: str) -> str:
        text = os.path.expanduser(value) if value.startswith("~") else value
        try:
            return EndpointPaths("/", text).directory
        except ProvenaError as err:
            raise ValueError(str(err)) from None

    @property
    def paths(self) -> EndpointPaths:
        """The mapping between this endpoint's collection paths and local paths."""
        return EndpointPaths(self.path, self.directory)


class ProvenaConfig(BaseModel):
    """Settings of a :class:`~provena_like.ProvenaClient` (immutable).

    Attributes:
        base_url: where every service lives unless overridden (``<base_url>/registry``, ...).
        auth_url: the auth service URL (default ``<base_url>/auth``).
        registry_url: the registry service URL (default ``<base_url>/registry``).
        datastore_url: the datastore service URL (default ``<base_url>/datastore``).
        search_url: the search service URL (default ``<base_url>/search``).
        transfer_url: the root of the Globus-compatible transfer service, under which
            globus-sdk adds ``/v0.10/`` (default ``<base_url>``).
        crawl_url: the server-side crawl jobs (default ``<base_url>/crawl``).
        issuer: the OIDC issuer (default: the auth service URL).
        client_id: the OAuth client id.
        client_secret: the OAuth client secret, for the client-credentials grant.
        access_token: a static bearer token (skips every OAuth flow).
        scopes: the OAuth scopes to ask for.
        timeout: seconds to wait for a response (read/write/pool).
        connect_timeout: seconds to wait for a connection.
        max_retries: retries after the first attempt (0 disables retrying).
        backoff_initial: the first backoff ceiling, in seconds (full jitter, doubling).
        backoff_max: the largest backoff ceiling, in seconds.
        max_retry_after: the longest ``Retry-After`` that is slept; longer ones are raised.
        token_dir: where tokens are stored (default: the per-user config dir + ``/tokens``).
        token_refresh_margin: renew an access token this many seconds before it expires;
            at most half the token's lifetime is used, so short-lived tokens are not
            renewed on every request.
        verify: verify TLS certificates.
        transfer_locations: labelled Globus collection roots for the transfer client,
            ``{"lab-server": ["<collection uuid>", "/data/"]}`` (a TOML table; as an
            environment variable, JSON).
        globus_client_id: the client id of a Globus native app (registered at
            app.globus.org), for ``provena-like transfer … --globus`` against real Globus.
        local_endpoints: named local endpoints, ``{"laptop": LocalEndpointEntry(...)}``
            (a TOML table per name; ``--local-endpoint NAME`` on the CLI).

    Example:
        ```python
        config = ProvenaConfig(base_url="https://provena.example.org/")
        assert config.service_url("registry") == 'https://provena.example.org/registry'
        ```
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    base_url: str = "http://127.0.0.1:8000"
    auth_url: str | None = None
    registry_url: str | None = None
    datastore_url: str | None = None
    search_url: str | None = None
    transfer_url: str | None = None
    crawl_url: str | None = None
    issuer: str | None = None
    client_id: str = Field(default="provena-like-cli", min_length=1)
    client_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    scopes: tuple[str, ...] = ("openid", "offline_access")
    timeout: float = Field(default=30.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    backoff_initial: float = Field(default=0.5, ge=0)
    backoff_max: float = Field(default=8.0, ge=0)
    max_retry_after: float = Field(default=60.0, ge=0)
    token_dir: Path | None = None
    token_refresh_margin: float = Field(default=60.0, ge=0)
    verify: bool = True
    transfer_locations: dict[str, tuple[str, str]] = Field(default_factory=dict)
    globus_client_id: str | None = None
    local_endpoints: dict[str, LocalEndpointEntry] = Field(default_factory=dict)

    @field_validator(
        "base_url",
        "auth_url",
        "registry_url",
        "datastore_url",
        "search_url",
        "transfer_url",
        "crawl_url",
        "issuer",
    )
    @classmethod
    def _check_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return _normalise_url(value, info.field_name or "url")

    @field_validator("scopes", mode="before")
    @classmethod
    def _split_scopes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(value.split())
        return value

    @field_validator("transfer_locations", mode="before")
    @classmethod
    def _parse_locations(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as err:
                raise ValueError(f"not JSON: {err.msg}") from None
        return value

    @field_validator("local_endpoints", mode="before")
    @classmethod
    def _parse_endpoints(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as err:
                raise ValueError(f"not JSON: {err.msg}") from None
        if isinstance(value, Mapping):
            for name in value:
                if not isinstance(name, str) or not _ENDPOINT_NAME.fullmatch(name):
                    raise ValueError(
                        f"local endpoint name {name!r}: use letters, digits, '_', '.', '-'"
                    )
        return value

    @field_validator("token_dir", mode="after")
    @classmethod
    def _expand_token_dir(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    def service_url(self, service: ServiceName) -> str:
        """Return the base URL of one service, without a trailing slash.

        Args:
            service: ``auth``, ``registry``, ``datastore``, ``search``, ``transfer`` or
                ``crawl``.

        Returns:
            The override for that service if set, else ``base_url`` plus the service prefix.

        Raises:
            UsageError: for an unknown service name.

        Example:
            ```python
            assert ProvenaConfig().service_url("transfer") == 'http://127.0.0.1:8000'
            ```
        """
        if service not in _SERVICE_PATHS:
            raise UsageError(
                f"unknown service {service!r}; expected one of {', '.join(_SERVICE_PATHS)}"
            )
        override: str | None = getattr(self, f"{service}_url")
        return override if override is not None else self.base_url + _SERVICE_PATHS[service]

    @property
    def resolved_issuer(self) -> str:
        """The OIDC issuer: ``issuer`` if set, else the auth service URL.

        Example:
            ```python
            assert ProvenaConfig().resolved_issuer == 'http://127.0.0.1:8000/auth'
            ```
        """
        return self.issuer if self.issuer is not None else self.service_url("auth")

    @property
    def resolved_token_dir(self) -> Path:
        """Where tokens are stored: ``token_dir`` if set, else ``<user config dir>/tokens``.

        Example:
            ```python
            ProvenaConfig(token_dir="/srv/provena/tokens").resolved_token_dir
            # PosixPath('/srv/provena/tokens')
            ```
        """
        if self.token_dir is not None:
            return self.token_dir
        return Path(platformdirs.user_config_dir(APP_NAME)) / "tokens"

    def replace(self, **changes: Any) -> ProvenaConfig:
        """Return a validated copy with some fields changed.

        Args:
            **changes: field names and their new values.

        Raises:
            UsageError: for an unknown field or a bad value.

        Example:
            ```python
            assert ProvenaConfig().replace(max_retries=0).max_retries == 0
            ```
        """
        data = {name: getattr(self, name) for name in type(self).model_fields}
        data.update(changes)
        return _validate(data, {name: "keyword argument" for name in changes})

    @classmethod
    def default_config_file(cls) -> Path:
        """The config file used when none is given: ``<user config dir>/config.toml``.

        Example:
            ```python
            assert ProvenaConfig.default_config_file().name == 'config.toml'
            ```
        """
        return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> ProvenaConfig:
        """Build a config from keyword arguments, the environment and a TOML file.

        Precedence, highest first: ``overrides`` > ``PROVENA_<FIELD>`` environment variables
        (e.g. ``PROVENA_BASE_URL``, ``PROVENA_SCOPES="openid email"``) > the TOML file.
        The file is ``config_file`` if given, else ``$PROVENA_CONFIG_FILE``, else
        :meth:`default_config_file` if it exists. Empty environment variables are ignored.

        Args:
            config_file: a TOML file whose top-level keys are field names.
            **overrides: field values that win over everything else.

        Returns:
            The validated config.

        Raises:
            UsageError: a missing or unreadable file, an unknown key or a bad value; the
                message names the source (file path, environment variable or keyword argument)
                and the field.

        Example:
            ```python
            config = ProvenaConfig.load(timeout=60)  # PROVENA_* and config.toml fill the rest
            assert config.timeout == 60.0
            ```
        """
        data: dict[str, Any] = {}
        sources: dict[str, str] = {}

        path, explicit = _config_file_path(config_file)
        if path is not None:
            for key, value in _read_toml(path, explicit=explicit).items():
                data[key] = value
                sources[key] = f"config file {path}"

        for name in cls.model_fields:
            var = _ENV_PREFIX + name.upper()
            raw = os.environ.get(var)
            if raw is None or raw.strip() == "":
                continue
            data[name] = raw
            sources[name] = f"environment variable {var}"

        for key, value in overrides.items():
            data[key] = value
            sources[key] = "keyword argument"

        return _validate(data, sources)

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in type(self).model_fields
            if getattr(self, name)
            != type(self).model_fields[name].get_default(call_default_factory=True)
        )
        return f"ProvenaConfig({fields})"

    def __str__(self) -> str:
        return repr(self)


def _config_file_path(config_file: str | Path | None) -> tuple[Path | None, bool]:
    if config_file is not None:
        return Path(config_file).expanduser(), True
    from_env = os.environ.get(_CONFIG_FILE_ENV)
    if from_env:
        return Path(from_env).expanduser(), True
    default = ProvenaConfig.default_config_file()
    return (default, False) if default.is_file() else (None, False)


def _read_toml(path: Path, *, explicit: bool) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            content = tomllib.load(fh)
    except FileNotFoundError:
        if not explicit:
            return {}
        raise UsageError(f"config file {path} does not exist") from None
    except OSError as err:
        raise UsageError(f"config file {path} cannot be read: {err.strerror}") from err
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"config file {path} is not valid TOML: {err}") from err
    return content


def _validate(data: Mapping[str, Any], sources: Mapping[str, str]) -> ProvenaConfig:
    known = ProvenaConfig.model_fields
    for key in data:
        if key not in known:
            source = sources.get(key, "keyword argument")
            raise UsageError(
                f"unknown setting {key!r} in {source}; known settings: {', '.join(known)}"
            )
    try:
        return ProvenaConfig.model_validate(dict(data))
    except ValidationError as err:
        problems = []
        for error in err.errors(include_url=False, include_input=False):
            loc = error.get("loc") or ("?",)
            field = str(loc[0])
            source = sources.get(field, "defaults")
            where = ".".join(str(part) for part in loc)
            problems.append(f"{where} (from {source}): {error['msg']}")
        raise UsageError("invalid configuration: " + "; ".join(problems)) from None
