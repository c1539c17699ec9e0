"""Settings of the reference server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from provena_like.models.auth import SystemRole
from provena_like.models.datastore import MAX_CREDENTIALS_SECONDS, MAX_PRESIGN_SECONDS

_HTTP_URL = r"^https?://[^\s/?#]+(/[^\s?#]*)?$"


class S3Settings(BaseModel):
    """Where the server keeps dataset objects, and how it mints scoped credentials (STS).

    Any S3 service with STS AssumeRole and inline session policies will do (AWS, SeaweedFS,
    the JuiceFS S3 gateway, MinIO): see the guide "Running on another S3 store". The server
    signs its own calls with ``access_key``/``secret_key`` (a user allowed to assume
    ``role_arn``: on MinIO-family stores an IAM user, not the root user) and hands clients
    session credentials of that role, limited to one dataset's prefix.
    """

    model_config = ConfigDict(frozen=True)

    endpoint_url: str | None = Field(
        default=None,
        pattern=_HTTP_URL,
        description="the S3 endpoint the server calls (http(s)://host:port); None → AWS S3 "
        "of the region",
    )
    access_key: str = Field(min_length=1, description="the server's access key id")
    secret_key: SecretStr = Field(description="the server's secret access key")
    bucket: str = Field(
        default="provena",
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        description="the bucket that holds every dataset (it must exist)",
    )
    region: str = Field(default="us-east-1", min_length=1, description="the S3 and STS region")
    role_arn: str = Field(
        default="arn:aws:iam::000000000000:role/DatasetAccess",
        pattern=r"^arn:[\w-]+:iam::\d*:role/",
        description="the role whose session credentials clients get (STS AssumeRole); "
        "MinIO-family stores ignore it and scope the calling IAM user instead",
    )
    sts_endpoint_url: str | None = Field(
        default=None,
        pattern=_HTTP_URL,
        description="where STS AssumeRole is sent; None → endpoint_url (SeaweedFS, MinIO, "
        "JuiceFS serve STS on the S3 port), or AWS STS of the region when that is None too",
    )
    public_endpoint_url: str | None = Field(
        default=None,
        pattern=_HTTP_URL,
        description="the S3 endpoint handed to clients with their credentials, when they "
        "reach the store by another address than the server does; None → endpoint_url",
    )
    addressing_style: Literal["path", "virtual", "auto"] = Field(
        default="path",
        description="how the server addresses the bucket: path (endpoint/bucket/key, what "
        "self-hosted stores need) or virtual (bucket.endpoint/key); auto → botocore's choice",
    )
    freeze_writes: bool = Field(
        default=True,
        description="stop write credentials minted before a lock or a release request at "
        "once, with a bucket policy that denies the datastore role's sessions on frozen "
        "prefixes; False for stores whose bucket policies don't govern STS sessions "
        "(MinIO-family stores, the JuiceFS gateway): then such credentials keep writing "
        "until they expire (write_credentials_max_seconds, 900 s by default)",
    )
    upload_listing: Literal["auto", "prefix", "none"] = Field(
        default="auto",
        description="whether write credentials may list the unfinished multipart uploads of "
        "their prefix: prefix → always (a session-policy statement with an s3:prefix "
        "condition), none → never, auto → unless the store refuses that statement "
        "(MinIO-family stores do); it is never granted bucket-wide",
    )
    credentials_default_seconds: int = Field(
        default=900,
        ge=1,
        le=MAX_CREDENTIALS_SECONDS,
        description="lifetime of scoped credentials when none is asked for (15 min): access "
        "taken away (a group membership, a grant) ends for credentials already issued only "
        "when they expire",
    )
    credentials_max_seconds: int = Field(
        default=MAX_CREDENTIALS_SECONDS,
        ge=900,
        le=MAX_CREDENTIALS_SECONDS,
        description="the longest lifetime a caller may ask for (900 s, the STS minimum, to "
        "1 h); longer → 422",
    )
    write_credentials_max_seconds: int = Field(
        default=900,
        ge=900,
        le=MAX_CREDENTIALS_SECONDS,
        description="the longest lifetime of write credentials, whatever was asked (900 s is "
        "the STS minimum); also how long, plus 300 s, the bucket policy keeps denying writes "
        "after a dataset is locked or goes into review: after lowering it, wait the old value "
        "before relying on the new one",
    )
    presign_default_seconds: int = Field(
        default=900,
        ge=1,
        le=MAX_PRESIGN_SECONDS,
        description="lifetime of a presigned URL when none is asked for (15 min)",
    )
    presign_max_seconds: int = Field(
        default=MAX_PRESIGN_SECONDS,
        ge=1,
        le=MAX_PRESIGN_SECONDS,
        description="the longest lifetime of a presigned URL a caller may ask for (at most "
        "1 h); longer → 422",
    )
    store_verifies_checksums: bool | None = Field(
        default=None,
        description="whether the store refuses an upload whose x-amz-checksum-sha256 doesn't "
        "match its bytes (SeaweedFS does; the JuiceFS gateway, rclone and moto don't); None → "
        "found out at start: a tiny object with a wrong checksum is put under "
        "'.provena-like/probe/' (and deleted)",
    )
    verify_uploads: Literal["auto", "store", "sample", "all"] = Field(
        default="auto",
        description="who checks that the bytes of registered files have the sha256 the "
        "uploader gave: 'store' → the store (the server compares the sha256 the store keeps, "
        "when it keeps one); 'sample' → the server also reads back verify_sample_size files "
        "of each registration, chosen at random, and hashes them; 'all' → every file; "
        "'auto' → 'store' if the store verifies checksums, else 'sample'",
    )
    verify_sample_size: int = Field(
        default=8,
        ge=1,
        description="files of one registration the server reads back in the 'sample' mode",
    )

    @model_validator(mode="after")
    def _defaults_within_bounds(self) -> S3Settings:
        if self.credentials_default_seconds > self.credentials_max_seconds:
            raise ValueError("credentials_default_seconds exceeds credentials_max_seconds")
        if self.presign_default_seconds > self.presign_max_seconds:
            raise ValueError("presign_default_seconds exceeds presign_max_seconds")
        return self

    @property
    def client_endpoint_url(self) -> str | None:
        """The S3 endpoint clients are given (None: AWS)."""
        return self.public_endpoint_url or self.endpoint_url

    @property
    def resolved_sts_endpoint_url(self) -> str | None:
        """Where STS calls go (None: AWS STS of the region)."""
        return self.sts_endpoint_url or self.endpoint_url


class PasswordHashing(BaseModel):
    """The argon2id cost of new password hashes.

    The defaults are RFC 9106's second recommended option (argon2-cffi's defaults: 3 passes
    over 64 MiB, 4 lanes). A hash keeps the cost it was made with, so a hash made under other
    settings still verifies. Lower the cost only for tests: it is what a guess costs an
    attacker who has the database.
    """

    model_config = ConfigDict(frozen=True)

    time_cost: int = Field(default=3, ge=1, description="passes over the memory")
    memory_kib: int = Field(default=65536, ge=8, description="memory of one hash, in KiB")
    parallelism: int = Field(default=4, ge=1, description="lanes (threads) of one hash")

    @model_validator(mode="after")
    def _enough_memory(self) -> PasswordHashing:
        if self.memory_kib < 8 * self.parallelism:
            raise ValueError("argon2 needs memory_kib >= 8 * parallelism")
        return self


class ThrottleSettings(BaseModel):
    """Throttling of failed sign-ins (device-page passwords, OAuth client secrets).

    See :mod:`provena_like.server.auth.throttle`. Counts are kept in the database, shared
    by every server process (``serve --workers N``) on it.
    """

    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    account_failures: int = Field(
        default=10,
        ge=1,
        description="failed attempts on one username or client_id (existing or not) before "
        "it is locked",
    )
    ip_failures: int = Field(
        default=50,
        ge=0,
        description="failed attempts from one address before it is locked; 0 turns the "
        "per-address lockout off (e.g. behind a proxy, where every caller has its address)",
    )
    lockout_seconds: float = Field(
        default=1.0, gt=0, description="the first lockout; it doubles with every further failure"
    )
    max_lockout_seconds: float = Field(default=900.0, gt=0, description="the longest lockout")
    forget_after_seconds: float = Field(
        default=900.0, gt=0, description="failures are forgotten after this long without one"
    )
    concurrent_checks_per_account: int = Field(
        default=2,
        ge=1,
        description="password checks in flight at once for one username; more → 429",
    )
    concurrent_checks_per_address: int = Field(
        default=3,
        ge=1,
        description="password checks in flight at once from one address; more → 429 (the "
        "server hashes 4 at a time, so one address can't take every slot)",
    )
    max_tracked: int = Field(
        default=100_000,
        ge=100,
        description="keys remembered at most (the database table is trimmed back to this, "
        "open keys first, least recently failed first)",
    )


class Introspection(BaseModel):
    """How the server asks a trusted issuer about its opaque access tokens (RFC 7662).

    The server is a confidential client of the provider, allowed to introspect its access
    tokens. Give its secret in exactly one of ``client_secret_env`` (the name of an
    environment variable), ``client_secret_file`` (a file that holds it) or ``client_secret``
    (inline; keep such a settings file private). The secret is never logged or shown.
    """

    model_config = ConfigDict(frozen=True)

    client_id: str = Field(
        min_length=1, description="the server's client at the provider, allowed to introspect"
    )
    client_secret: SecretStr | None = Field(
        default=None, description="its secret, inline (prefer client_secret_env or _file)"
    )
    client_secret_env: str | None = Field(
        default=None, min_length=1, description="the environment variable that holds its secret"
    )
    client_secret_file: Path | None = Field(
        default=None, description="a file that holds its secret (surrounding whitespace ignored)"
    )
    auth_method: Literal["client_secret_basic", "client_secret_post"] = Field(
        default="client_secret_basic",
        description="how the client authenticates at the introspection endpoint",
    )
    endpoint: str | None = Field(
        default=None,
        description="the introspection endpoint; None → the discovery document's "
        "'introspection_endpoint'",
    )
    cache_seconds: float = Field(
        default=60.0,
        ge=0,
        description="an 'active' answer is reused this long at most, and never past the "
        "token's 'exp' (a token revoked at the provider is still accepted that long); "
        "0 → the provider is asked on every request",
    )
    cache_size: int = Field(
        default=10_000, ge=1, description="answers kept at most (the least recently used go)"
    )

    @model_validator(mode="after")
    def _one_secret(self) -> Introspection:
        given = [
            name
            for name in ("client_secret", "client_secret_env", "client_secret_file")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give the introspection client's secret in exactly one of client_secret, "
                f"client_secret_env, client_secret_file (got {given or 'none'})"
            )
        return self

    def secret(self) -> SecretStr:
        """The client secret, read from the environment or the file now.

        Raises:
            ValueError: the variable is not set, or the file can't be read or is empty.
        """
        if self.client_secret is not None:
            return self.client_secret
        if self.client_secret_env is not None:
            value = os.environ.get(self.client_secret_env, "").strip()
            where = f"environment variable {self.client_secret_env}"
        else:
            assert self.client_secret_file is not None
            where = f"file {self.client_secret_file}"
            try:
                value = self.client_secret_file.expanduser().read_text().strip()
            except OSError as err:
                raise ValueError(
                    f"cannot read the introspection client's secret from {where}: {err.strerror}"
                ) from err
        if not value:
            raise ValueError(f"the introspection client's secret ({where}) is empty or not set")
        return SecretStr(value)


class TrustedIssuer(BaseModel):
    """An institution's OpenID provider whose access tokens the server accepts.

    See :mod:`provena_like.server.auth.external`: its tokens are verified with the keys of
    its JWKS (found through its discovery document), and each (issuer, subject) is linked
    to one user of this server.
    """

    model_config = ConfigDict(frozen=True)

    issuer: str = Field(
        min_length=1, description="the issuer URL, exactly as the tokens' 'iss' claim has it"
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="a short name users may sign in with instead of the URL "
        "(provena-like login --issuer NAME); published at /auth/issuers",
    )
    discovery_url: str | None = Field(
        default=None,
        description="where its discovery document is; None → issuer + "
        "'/.well-known/openid-configuration'",
    )
    audiences: list[str] = Field(
        min_length=1,
        description="the 'aud' values meant for this server: a token must name one of them",
    )
    username_claim: Literal["sub", "preferred_username", "email"] = Field(
        default="preferred_username",
        description="the claim a new user's name is made from (made unique if taken)",
    )
    groups_claim: str | None = Field(
        default="groups",
        description="the claim (a list of names, or one space-separated string) of the "
        "user's groups and roles at the provider; None → none",
    )
    group_map: dict[str, str] = Field(
        default_factory=dict,
        description="their group → our group: membership of the groups named here follows "
        "the token on each request (the group is created if it does not exist); other "
        "groups are left alone",
    )
    role_map: dict[str, SystemRole] = Field(
        default_factory=dict,
        description="their group or role → our system role: the roles named here follow the "
        "token on each request; other roles are left alone",
    )
    client_id: str | None = Field(
        default=None,
        description="the public client (device flow) a CLI signs in with at this provider; "
        "published at /auth/issuers",
    )
    provision: bool = Field(
        default=True,
        description="create a user on the first valid token of an unknown subject; False → "
        "such tokens are refused (401): only subjects linked already are accepted",
    )
    jwks_min_refresh_seconds: float = Field(
        default=30.0,
        ge=0,
        description="a token signed with an unknown key refetches the provider's JWKS (key "
        "rotation) at most this often",
    )
    introspection: Introspection | None = Field(
        default=None,
        description="accept this provider's opaque (non-JWT) access tokens by asking it about "
        "each one (RFC 7662 token introspection) as this client; None → only JWT access "
        "tokens of this provider are accepted",
    )

    @property
    def resolved_discovery_url(self) -> str:
        """The discovery document's URL."""
        if self.discovery_url:
            return self.discovery_url
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


#: The async driver of each database the server runs on, for URLs that name none.
_ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


def async_database_url(url: str) -> str:
    """The SQLAlchemy async URL of a PostgreSQL or SQLite database URL.

    A URL without a driver gets the server's async one: ``postgresql://`` (or
    ``postgres://``) becomes ``postgresql+asyncpg://``, with libpq's ``sslmode=`` passed on
    as asyncpg's ``ssl=``; ``sqlite:///`` becomes ``sqlite+aiosqlite:///``. A URL that names
    a driver is kept as it is.

    Example:
        ```python
        url = async_database_url("postgresql://provena:secret@db.example.org/provena")
        assert url == "postgresql+asyncpg://provena:secret@db.example.org/provena"
        ```

    Raises:
        ValueError: Not a URL, or a database other than PostgreSQL and SQLite (the server's
            SQL, its full-text search in particular, is written for those two).
    """
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise ValueError("the database URL must look like postgresql://user@host/db")
    dialect, _, driver = scheme.lower().partition("+")
    if dialect in _ASYNC_DRIVERS and not driver:
        scheme = _ASYNC_DRIVERS[dialect]
        if scheme == "postgresql+asyncpg":
            rest = _asyncpg_query(rest)
        return f"{scheme}://{rest}"
    if dialect in ("postgresql", "sqlite"):
        return url
    raise ValueError(
        f"unsupported database {dialect!r}: the server runs on PostgreSQL (postgresql://…) "
        "or SQLite (sqlite:///…)"
    )


def _asyncpg_query(rest: str) -> str:
    """A URL without its scheme, with libpq's ``sslmode=`` as asyncpg's ``ssl=`` (same modes)."""
    head, sep, query = rest.partition("?")
    if not sep:
        return rest
    pairs = parse_qsl(query, keep_blank_values=True)
    params = [("ssl" if key == "sslmode" else key, value) for key, value in pairs]
    return f"{head}?{urlencode(params)}"


class ServerSettings(BaseModel):
    """Everything the app factory needs. Secrets stay out of ``repr``.

    ``public_url`` is the externally visible base URL (``http://127.0.0.1:8000``): the OIDC
    issuer is ``public_url + "/auth"``.
    """

    model_config = ConfigDict(frozen=True)

    data_dir: Path
    public_url: str = "http://127.0.0.1:8000"
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL or SQLite URL (postgresql://…, sqlite:///…, or a SQLAlchemy "
        "async URL such as postgresql+asyncpg://…); None → SQLite (WAL) in data_dir",
    )
    handle_prefix: str = Field(default="10378.1", pattern=r"^[A-Za-z0-9.\-]+$")
    access_token_ttl: int = Field(default=900, ge=1, description="seconds")
    refresh_token_ttl: int = Field(default=30 * 24 * 3600, ge=60, description="seconds")
    device_code_ttl: int = Field(default=600, ge=1, description="seconds")
    device_poll_interval: int = Field(default=5, ge=0, description="seconds")
    initial_admin_password: SecretStr | None = Field(
        default=None,
        description="password of the 'admin' user created on first start; None → random, "
        "written once to data_dir/initial-admin.json (0600)",
    )
    s3: S3Settings | None = None
    trusted_issuers: list[TrustedIssuer] = Field(
        default_factory=list,
        description="institutions' OpenID providers whose access tokens are accepted too",
    )
    embedded_issuer_enabled: bool = Field(
        default=True,
        description="accept the access tokens of the embedded auth service (public_url + "
        "'/auth'); False → only those of trusted_issuers",
    )
    throttle: ThrottleSettings = Field(
        default_factory=ThrottleSettings,
        description="lockout and backoff of failed sign-ins (passwords, client secrets)",
    )
    password_hashing: PasswordHashing = Field(
        default_factory=PasswordHashing,
        description="argon2id cost of new password hashes (lower it for tests only)",
    )
    notifier: Literal["none", "log", "webhook"] = Field(
        default="log",
        description="who hears of release requests and decisions: nobody, the server log "
        "(logger provena_like.server.notifications) or a webhook (JSON POST)",
    )
    notifier_webhook_url: str | None = Field(
        default=None, description="where the webhook notifier posts (notifier='webhook')"
    )
    notifier_timeout: float = Field(
        default=5.0, gt=0, description="seconds the webhook notifier waits for an answer"
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="the largest request body of a route (413 beyond it), counted while it "
        "arrives; bodies of routes that need a token are read only with a valid token",
    )
    max_file_list_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="the largest body of registering or removing files (up to 1,000 paths) "
        "of registering a session's ALF files (up to 5,000) and of a patch (up to 1,000)",
    )
    gc_freeze: bool = Field(
        default=False,
        description="once started, move every object start-up built out of the cyclic "
        "garbage collector's sight (gc.freeze), so that a full collection walks only what "
        "requests build (0.2-1 s less per collection of a big request): for a server that "
        "owns its process (`provena-like serve` sets it); False in a process that hosts "
        "other work too (a test's LocalStack), whose objects it would freeze as well",
    )
    transfer_roots: list[Path] | None = Field(
        default=None,
        description="directories under which a local transfer collection's root may lie "
        "(system admins register collections with a root inside one); None → "
        "data_dir/collections",
    )

    job_workers: int = Field(
        default=2,
        ge=0,
        description="jobs (transfer tasks, crawls) this process runs at the same time; 0 runs "
        "none here (the jobs wait for another server process on the same database)",
    )
    job_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="how long a running job's claim holds without renewal (its heartbeat "
        "renews it every third of it): a job of a crashed process is taken over after at most "
        "this long",
    )
    job_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="how often idle job workers look for jobs enqueued by other processes, and "
        "the longest a running job takes to see a cancel made in another process",
    )

    @field_validator("database_url")
    @classmethod
    def _async_database_url(cls, url: str | None) -> str | None:
        return None if url is None else async_database_url(url)

    @model_validator(mode="after")
    def _webhook_needs_url(self) -> ServerSettings:
        if self.notifier == "webhook" and not self.notifier_webhook_url:
            raise ValueError("notifier='webhook' needs notifier_webhook_url")
        return self

    @model_validator(mode="after")
    def _issuers_distinct(self) -> ServerSettings:
        issuers = [t.issuer for t in self.trusted_issuers]
        if len(set(issuers)) != len(issuers):
            raise ValueError("trusted_issuers lists an issuer twice")
        names = [t.name.lower() for t in self.trusted_issuers if t.name]
        if len(set(names)) != len(names):
            raise ValueError("two trusted issuers have the same name")
        if self.issuer in issuers:
            raise ValueError("a trusted issuer cannot be the embedded issuer (public_url/auth)")
        introspecting = [t.issuer for t in self.trusted_issuers if t.introspection is not None]
        if len(introspecting) > 1:
            # An opaque token does not say who issued it: the server would have to show it to
            # each provider in turn, handing one institution's tokens to another.
            raise ValueError(
                "at most one trusted issuer may have 'introspection' (opaque tokens name no "
                f"issuer, so they would be shown to each of {introspecting})"
            )
        if not self.embedded_issuer_enabled and not issuers:
            raise ValueError("embedded_issuer_enabled=False needs at least one trusted issuer")
        return self

    @property
    def issuer(self) -> str:
        """The OIDC issuer URL of the embedded auth service."""
        return self.public_url.rstrip("/") + "/auth"

    @property
    def resolved_transfer_roots(self) -> list[Path]:
        """The directories a local transfer collection's root must lie under."""
        if self.transfer_roots is not None:
            return list(self.transfer_roots)
        return [self.data_dir / "collections"]

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'provena.db').as_posix()}"
