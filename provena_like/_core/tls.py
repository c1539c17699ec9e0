"""The TLS context of the HTTP pool: httpx's default one, with its CA bundle loaded on first use.

httpx builds its TLS context when a client is made, and loading the CA bundle (certifi's
~150 certificates) is most of that: 10-40 ms of every ``ProvenaClient``, paid even when the
client only ever speaks plain HTTP (a server on loopback) or is made for a command that
stops before its first request. :func:`verifying_context` returns the same context as
httpx's ``verify=True`` (same settings, same CA source: ``SSL_CERT_FILE``, else
``SSL_CERT_DIR``, else certifi), except that the CA certificates are loaded just before its
first TLS handshake.
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import Any

__all__ = ["LazyCAContext", "verifying_context"]

_COPIED = (
    "verify_mode",
    "check_hostname",
    "options",
    "verify_flags",
    "minimum_version",
    "maximum_version",
    "post_handshake_auth",
    "keylog_filename",
)
"""The settings :func:`ssl.create_default_context` may give a context, copied from one."""


class LazyCAContext(ssl.SSLContext):
    """A client TLS context that loads its CA certificates when it first wraps a connection.

    Build one with :func:`verifying_context`. Before the first handshake its store is
    empty (``cert_store_stats()`` counts no CA); every handshake (``wrap_socket`` or
    ``wrap_bio``, which httpx's transports use) first loads the certificates once.
    """

    def __new__(cls, where: dict[str, str]) -> LazyCAContext:
        """A client context (``PROTOCOL_TLS_CLIENT``); ``where`` is for :meth:`__init__`."""
        del where
        return super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)

    def __init__(self, where: dict[str, str]) -> None:
        """Take the settings of :func:`ssl.create_default_context`; load nothing yet.

        Args:
            where: the keyword arguments of :meth:`~ssl.SSLContext.load_verify_locations`
                that load the CA certificates (``cafile`` or ``capath``).
        """
        super().__init__()
        # a directory lookup is resolved per handshake: pointing at none loads nothing now
        defaults = ssl.create_default_context(capath=os.devnull)
        for name in _COPIED:
            setattr(self, name, getattr(defaults, name))
        self._where = dict(where)
        self._loaded = False
        self._lock = threading.Lock()

    def _load_cas(self) -> None:
        """Load the CA certificates, once (thread-safe)."""
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self.load_verify_locations(**self._where)
                self._loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        """As :meth:`ssl.SSLContext.wrap_socket`, after loading the CA certificates."""
        self._load_cas()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        """As :meth:`ssl.SSLContext.wrap_bio`, after loading the CA certificates."""
        self._load_cas()
        return super().wrap_bio(*args, **kwargs)


def _ca_source(trust_env: bool = True) -> dict[str, str]:
    """Where httpx's ``verify=True`` takes the CA certificates from (env, if trusted)."""
    if trust_env and os.environ.get("SSL_CERT_FILE"):
        return {"cafile": os.environ["SSL_CERT_FILE"]}
    if trust_env and os.environ.get("SSL_CERT_DIR"):
        return {"capath": os.environ["SSL_CERT_DIR"]}
    import certifi

    return {"cafile": certifi.where()}


def verifying_context(*, trust_env: bool = True) -> LazyCAContext:
    """The default (verifying) TLS context of httpx, loading its CA certificates on first use.

    The settings are those :func:`ssl.create_default_context` gives (copied from a context
    it builds without certificates, so they follow the Python version); the CA source is
    httpx's for ``verify=True``, read now.

    Args:
        trust_env: As httpx's ``trust_env``: take ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` into
            account; ``False``: certifi's bundle only.

    Returns:
        The context, for ``httpx.AsyncClient(verify=...)``.

    Example:
        ```python
        import httpx

        from provena_like._core.tls import verifying_context

        context = verifying_context()
        assert context.cert_store_stats()["x509_ca"] == 0  # nothing loaded yet
        client = httpx.AsyncClient(verify=context)
        ```
    """
    return LazyCAContext(_ca_source(trust_env))
