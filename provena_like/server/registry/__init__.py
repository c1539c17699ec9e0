"""The registry service: typed items with handles, history, revert, locks and access settings.

Modules: ``tables`` (schema), ``handles`` (handle minting), ``subtypes`` (record validation and
display names), ``service`` (the logic, on a database session) and ``routes`` (HTTP). Who may
do what is decided in :mod:`provena_like.server.access`.
"""

from provena_like.server.registry.routes import router

__all__ = ["router"]
