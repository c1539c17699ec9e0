"""The transfer service: a subset of the Globus Transfer API v0.10, under ``/v0.10/``.

Collections (datasets' storage in the object store, directories of the server) and the
routes that list and change them; see the guide "Transfers between sites". The modules:
:mod:`.errors` (Type-Zero errors), :mod:`.paths` (Globus paths that never leave a root),
:mod:`.collections` (opening a collection, access), :mod:`.posix` and :mod:`.s3` (the two
backends), :mod:`.index` and :mod:`.tables` (collection UUIDs).
"""
