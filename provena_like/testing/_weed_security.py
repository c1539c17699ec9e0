"""Locking down the internal ports of a ``weed mini`` process (used by :mod:`.seaweed`).

``weed mini`` runs a master, a volume server, a filer and an S3 gateway that talk to each
other over HTTP and gRPC on loopback. Out of the box none of those internal ports asks for
credentials, so any local user could read, write or delete every object by talking to the
filer or the volume server directly (``curl``, ``weed shell``), bypassing the S3 gateway's
identities and session policies. :func:`write_security_config` writes the
``security.toml`` that closes them:

* JWT signing keys for volume writes and reads (``jwt.signing``, ``jwt.signing.read``) and
  for filer writes and reads (``jwt.filer_signing``, ``jwt.filer_signing.read``): the HTTP
  APIs of the volume server and the filer answer 401 to anything not signed by a component;
* mutual TLS on every gRPC port, with a certificate authority created for this start only:
  a gRPC client without the private key (readable by the owner only) can't connect;
* the volume server UI off and no directory metadata exposed by the filer.

The master's HTTP API (which could grow volumes, delete collections or store blobs) is
turned off by :mod:`.seaweed` with ``-disableHttp``; the S3 gateway only speaks gRPC to it.

Everything is regenerated on every start: the keys only protect traffic between the
components of one process, so nothing needs to survive a restart. SeaweedFS reads
``security.toml`` from its working directory first, and :mod:`.seaweed` starts ``weed`` in
the data directory, after dropping every ``WEED_*`` environment variable (they would
override the file).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provena_like._private_files import write_private_file

SECURITY_FILE = "security.toml"
"""The file SeaweedFS looks up in its working directory."""
TLS_DIR = "tls"
"""Directory (0700) holding the per-start CA and the components' certificate and key."""

_JWT_SECTIONS = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
# Every [grpc.<component>] section SeaweedFS 4.48 reads, plus the client side.
_GRPC_COMPONENTS = (
    "master",
    "volume",
    "filer",
    "s3",
    "admin",
    "worker",
    "msg_broker",
    "msg_agent",
    "mq",
)
_JWT_LIFETIME_SECONDS = 10
_CERT_LIFETIME = datetime.timedelta(days=3650)
_CLOCK_SKEW = datetime.timedelta(minutes=5)


def _toml_string(value: str) -> str:
    """A TOML basic string (paths may hold backslashes on Windows)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _certificates(host: str) -> tuple[bytes, bytes, bytes]:
    """A fresh CA and one certificate (server and client use) signed by it.

    Args:
        host: The address the components bind; put in the certificate's names.

    Returns:
        ``(ca_pem, cert_pem, key_pem)``.
    """
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "provena-like SeaweedFS internal CA")]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + _CERT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "seaweedfs")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + _CERT_LIFETIME)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca.public_bytes(pem), cert.public_bytes(pem), key_pem


def write_security_config(data_dir: Path, host: str) -> Path:
    """Write ``security.toml`` and the TLS material into ``data_dir`` (all owner-only).

    Args:
        data_dir: The instance's data directory (``weed``'s working directory).
        host: The loopback address the components bind.

    Returns:
        The path of ``security.toml``.
    """
    tls = data_dir / TLS_DIR
    tls.mkdir(mode=0o700, exist_ok=True)
    os.chmod(tls, 0o700)
    ca_pem, cert_pem, key_pem = _certificates(host)
    ca_path, cert_path, key_path = tls / "ca.crt", tls / "node.crt", tls / "node.key"
    write_private_file(ca_path, ca_pem)
    write_private_file(cert_path, cert_pem)
    write_private_file(key_path, key_pem)

    lines = [
        "# Generated by provena_like on every start of the object store; do not edit.",
        "[access]",
        "ui = false",
        "",
        "[filer.expose_directory_metadata]",
        "enabled = false",
        "",
    ]
    for section in _JWT_SECTIONS:
        lines += [
            f"[{section}]",
            f"key = {_toml_string(secrets.token_urlsafe(48))}",
            f"expires_after_seconds = {_JWT_LIFETIME_SECONDS}",
            "",
        ]
    lines += ["[grpc]", f"ca = {_toml_string(str(ca_path))}", ""]
    for component in _GRPC_COMPONENTS:
        lines += [
            f"[grpc.{component}]",
            f"cert = {_toml_string(str(cert_path))}",
            f"key = {_toml_string(str(key_path))}",
            "",
        ]
    lines += [
        "[grpc.client]",
        f"cert = {_toml_string(str(cert_path))}",
        f"key = {_toml_string(str(key_path))}",
        "",
    ]
    path = data_dir / SECURITY_FILE
    write_private_file(path, "\n".join(lines).encode("utf-8"))
    return path
