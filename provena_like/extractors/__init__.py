"""Metadata extractors: entry points in the group ``provena_like.extractors``.

Each extractor reads one local file and returns JSON-serialisable metadata (see
:class:`~provena_like.extractors.base.Extractor`); :func:`available_extractors` loads every
registered one. ``basic`` (stat + checksums) ships with the SDK; the others (``tabular``,
``json``, ``image``, ``hdf5``, ``netcdf``, ``archive``) need optional extras, and a file
whose extractor is missing its library is reported as skipped.

Example:
    ```python
    from provena_like.extractors import available_extractors

    for name, extractor in available_extractors().items():
        print(name, sorted(extractor.extensions))
    ```
"""

from provena_like.extractors.base import (
    ENTRY_POINT_GROUP,
    Extractor,
    JSONValue,
    available_extractors,
    handles,
    missing_requirements,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Extractor",
    "JSONValue",
    "available_extractors",
    "handles",
    "missing_requirements",
]
