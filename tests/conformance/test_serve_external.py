"""``provena-like serve --s3 external``: no SeaweedFS, the store described by options,
variables or a file, and every wrong or missing setting named before anything starts."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import httpx

from provena_like.cli._errors import ExitCode
from provena_like.cli.main import app
from tests.conformance.conftest import BUCKET
from tests.support.cli_runner import CliRunner
from tests.support.processes import free_port, serve_process, wait_until_serving
from tests.support.s3_stores import StoreInfo

runner = CliRunner()


def serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    data_dir = tmp_path / "data"
    result = runner.invoke(app, ["serve", "--data-dir", str(data_dir), *args], env=env or {})
    assert not data_dir.exists(), "refused only after something started"
    return result.exit_code, " ".join(result.output.split())


def test_missing_and_wrong_settings_are_named(tmp_path: Path) -> None:
    code, out = serve(tmp_path, "--s3", "external")
    assert code == ExitCode.USAGE
    assert "needs access_key: give --s3-access-key, PROVENA_LIKE_S3_ACCESS_KEY" in out
    code, out = serve(tmp_path, "--s3", "external", "--s3-access-key", "server")
    assert code == ExitCode.USAGE and "needs secret_key: give PROVENA_LIKE_S3_SECRET_KEY" in out
    code, out = serve(
        tmp_path,
        "--s3",
        "external",
        "--s3-endpoint",
        "minio:9000",
        env={"PROVENA_LIKE_S3_ACCESS_KEY": "server", "PROVENA_LIKE_S3_SECRET_KEY": "s"},
    )
    assert code == ExitCode.USAGE and "S3 setting endpoint_url is not valid" in out
    assert "--s3-endpoint" in out
    code, out = serve(tmp_path, "--s3-endpoint", "http://127.0.0.1:9000")
    assert code == ExitCode.USAGE and "--s3-endpoint describe an external store" in out
    code, out = serve(tmp_path, "--s3", "cloud")
    assert code == ExitCode.USAGE and "'embedded' or 'external'" in out


def test_what_the_store_refuses_is_named(tmp_path: Path, juicefs_store: StoreInfo) -> None:
    assert juicefs_store.sts_user is not None
    user, secret = juicefs_store.sts_user
    config = tmp_path / "s3.toml"
    config.write_text(
        f'[s3]\nendpoint_url = "{juicefs_store.endpoint_url}"\naccess_key = "{user}"\n'
        'bucket = "no-such-bucket"\n'
    )
    args = ("--s3", "external", "--s3-config", str(config))
    code, out = serve(tmp_path, *args, env={"PROVENA_LIKE_S3_SECRET_KEY": secret})
    # (the gateway doesn't tell a missing bucket from one the key may not use)
    assert code == ExitCode.USAGE and "refused bucket 'no-such-bucket': AccessDenied" in out
    assert "check bucket: --s3-bucket, PROVENA_LIKE_S3_BUCKET, bucket in the --s3-config" in out
    code, out = serve(
        tmp_path, *args, "--s3-bucket", BUCKET, env={"PROVENA_LIKE_S3_SECRET_KEY": "wrong"}
    )
    assert code == ExitCode.USAGE and "check secret_key" in out, out
    closed = f"http://127.0.0.1:{free_port()}"
    code, out = serve(
        tmp_path, *args, "--s3-endpoint", closed, env={"PROVENA_LIKE_S3_SECRET_KEY": secret}
    )
    assert code == ExitCode.UNREACHABLE and "check endpoint_url" in out, out
    code, out = serve(
        tmp_path,
        *args,
        "--s3-bucket",
        BUCKET,
        "--s3-sts-endpoint",
        closed,
        env={"PROVENA_LIKE_S3_SECRET_KEY": secret},
    )
    assert code == ExitCode.UNREACHABLE and "did not issue scoped credentials" in out, out
    assert "check sts_endpoint_url" in out


def test_serve_runs_on_an_external_store_without_starting_seaweedfs(
    tmp_path: Path, juicefs_store: StoreInfo
) -> None:
    assert juicefs_store.sts_user is not None
    user, secret = juicefs_store.sts_user
    public = juicefs_store.endpoint_url.replace("127.0.0.1", "localhost")
    config = tmp_path / "s3.json"
    config.write_text(json.dumps({"endpoint_url": juicefs_store.endpoint_url, "bucket": BUCKET}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVENA_")}
    env |= {
        "PROVENA_CACHE_DIR": str(tmp_path / "cache"),
        "PROVENA_LIKE_S3_ACCESS_KEY": user,
        "PROVENA_LIKE_S3_SECRET_KEY": secret,
        "PROVENA_LIKE_S3_PUBLIC_ENDPOINT": public,
    }
    data_dir, port, log = tmp_path / "data", free_port(), tmp_path / "serve.log"
    args = ["--data-dir", str(data_dir), "--port", str(port), "--s3", "external",
            "--s3-config", str(config), "--json"]  # fmt: skip
    with serve_process(args, env, log) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, log.read_text()
        doc = json.loads(line)
        assert (doc["s3"], doc["bucket"]) == (public, BUCKET)
        wait_until_serving(proc, f"http://127.0.0.1:{port}/openapi.json", log, timeout=120)
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=30).status_code == 200
        assert not (data_dir / "s3").exists()  # no SeaweedFS
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
