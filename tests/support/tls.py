"""One TLS context for the tests' own HTTP clients.

httpx builds a TLS context for every client it makes, loading the CA bundle each time:
30-70 ms of CPU per client on these machines, for clients that speak plain HTTP to servers
on loopback. They share this one instead (:func:`~provena_like._core.tls.verifying_context`:
httpx's verifying defaults, the CA certificates loaded only before a first TLS handshake).
"""

from __future__ import annotations

from provena_like._core.tls import verifying_context

__all__ = ["SHARED_TLS"]

SHARED_TLS = verifying_context()
"""Pass as ``verify=`` to ``httpx.AsyncClient`` / ``httpx.Client`` in tests."""
