"""Archived-file records of storage locations (see :mod:`provena_like.server.archive.routes`)."""
