"""The pool's TLS context: httpx's default one, with the CA bundle loaded at the first handshake.

A real TLS server on loopback (a fresh CA and certificate) answers the requests, so the
handshakes and the certificate checks are the real ones.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import ByteStream
from anyio.streams.tls import TLSListener

from provena_like import ProvenaClient, ProvenaConfig
from provena_like._core.http import HTTPCore
from provena_like._core.tls import _COPIED, verifying_context
from provena_like.testing._weed_security import _certificates

pytestmark = pytest.mark.anyio

SETTINGS = ("protocol", *_COPIED)


def test_same_settings_and_certificates_as_httpx_default() -> None:
    lazy, default = verifying_context(), httpx.create_ssl_context()
    assert {n: getattr(lazy, n) for n in SETTINGS} == {n: getattr(default, n) for n in SETTINGS}
    assert lazy.verify_mode == ssl.CERT_REQUIRED and lazy.check_hostname
    # nothing loaded until a connection is wrapped; then the same CA certificates as httpx's
    assert lazy.cert_store_stats()["x509_ca"] == 0
    lazy.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.org")
    assert lazy.cert_store_stats()["x509_ca"] == default.cert_store_stats()["x509_ca"] > 0
    assert lazy.get_ca_certs() == default.get_ca_certs()


@asynccontextmanager
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """An HTTPS server on loopback answering ``{}``; its URL and the CA file that signed it."""
    ca_pem, cert_pem, key_pem = _certificates("127.0.0.1")
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    async def answer(stream: ByteStream) -> None:
        async with stream:
            request = b""
            while b"\r\n\r\n" not in request:
                request += await stream.receive()
            await stream.send(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
            )

    async def handle(stream: ByteStream) -> None:
        try:
            await answer(stream)
        except (anyio.BrokenResourceError, anyio.EndOfStream, ssl.SSLError):
            pass  # a client that refused our certificate

    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = tcp.extra(anyio.abc.SocketAttribute.local_port)
    listener = TLSListener(tcp, server, standard_compatible=False)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield f"https://127.0.0.1:{port}", tmp_path / "ca.pem"
        tg.cancel_scope.cancel()


async def test_https_verifies_with_the_lazily_loaded_cas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with tls_server(tmp_path) as (url, ca_file):
        # the CA source is httpx's: SSL_CERT_FILE here (trusted), certifi otherwise
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        context = verifying_context()
        async with httpx.AsyncClient(verify=context) as http:
            assert context.cert_store_stats()["x509_ca"] == 0
            assert (await http.get(url + "/x")).json() == {}
            assert context.cert_store_stats()["x509_ca"] == 1
        # trust_env=False (the server's client of trusted issuers): certifi's bundle only
        untrusting = verifying_context(trust_env=False)
        async with httpx.AsyncClient(verify=untrusting, trust_env=False) as http:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.get(url + "/x")
        async with HTTPCore(ProvenaConfig(base_url=url, access_token="t")) as core:
            assert (await core.http_client.get(url + "/x")).json() == {}
        # certifi does not know our CA: the certificate check is on
        monkeypatch.delenv("SSL_CERT_FILE")
        async with HTTPCore(ProvenaConfig(base_url=url, access_token="t")) as core:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await core.http_client.get(url + "/x")
        # verify=False: no check
        config = ProvenaConfig(base_url=url, access_token="t", verify=False)
        async with HTTPCore(config) as core:
            assert (await core.http_client.get(url + "/x")).json() == {}


async def test_building_a_client_reads_no_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    # before, every client read certifi's bundle when it was built, for http:// too
    read: list[str] = []
    load = ssl.SSLContext.load_verify_locations

    def recording(self: ssl.SSLContext, cafile: Any = None, *args: Any, **kwargs: Any) -> None:
        if cafile is not None:
            read.append(str(cafile))
        load(self, cafile, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", recording)
    async with ProvenaClient(base_url="http://127.0.0.1:9", access_token="t") as pv:
        assert pv.registry_client is not None and pv.datastore is not None
    assert read == []
    verifying_context().wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="a.org")
    assert len(read) == 1  # the probe sees a load (so the check above can fail)
