"""The datastore service: dataset lifecycle, scoped S3 credentials, presigned URLs, manifest.

Modules: ``tables`` (schema), ``storage`` (the object store, with aioboto3), ``policy`` (STS
session policies), ``objects`` (``metadata.json``, copies and their undo), ``service``
(dataset logic on a database session, built on the registry service), ``manifest`` (the file
manifest) and ``routes`` (HTTP). Who may do what is decided in
:mod:`provena_like.server.access`.
"""

from provena_like.server.datastore.routes import router

__all__ = ["router"]
