"""Wire models of extracted metadata: what a crawl's extractors found in a dataset's files.

A dataset's extracted metadata is the result of its latest **extraction run**: one row per
file (its path in the dataset, the extractors that read it, the search ``terms`` they found
— column names, attribute names and values, HDF5 dataset names, archive members... — and
a compact copy of their metadata). A run is uploaded in batches and replaces the previous
one only when it is committed, in one transaction, so readers and search see either the
old run or the new one, never a mix:

```text
POST /datastore/datasets/{id}/extracted-metadata/runs                  -> ExtractionRun (open)
POST /datastore/datasets/{id}/extracted-metadata/runs/{run_id}/files   ExtractedFilesBatch
POST /datastore/datasets/{id}/extracted-metadata/runs/{run_id}/commit  -> ExtractionRun
GET  /datastore/datasets/{id}/extracted-metadata                       -> Page[ExtractedFile]
```

Writing needs ``metadata-write`` on the dataset, reading ``metadata-read``. The committed
terms are indexed by search with the dataset, so ``temperature`` finds a dataset with a
table column named ``temperature``.

Example:
    ```python
    f = ExtractedFile(path="raw/a.csv", extractors=["tabular"], terms=["temperature"])
    assert ExtractedFilesBatch(files=[f]).files[0].terms == ["temperature"]
    ```
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, StringConstraints, field_validator, model_validator
from pydantic_core import PydanticCustomError

from provena_like.models.datastore import ObjectPath, check_object_path
from provena_like.models.shared import MAX_WIRE_INT, WireModel

__all__ = [
    "MAX_EXTRACTED_BATCH",
    "MAX_EXTRACTED_METADATA_BYTES",
    "MAX_EXTRACTED_TERMS",
    "MAX_TERM_CHARS",
    "SEARCH_KINDS",
    "ExtractedFile",
    "ExtractedFilesAdded",
    "ExtractedFilesBatch",
    "ExtractionRun",
    "ExtractionRunRequest",
    "ExtractionRunState",
    "SearchKind",
]

MAX_EXTRACTED_BATCH = 1000
"""The most files one batch of a run may carry (the body limit also applies)."""

MAX_EXTRACTED_TERMS = 1000
"""The most search terms one file may carry."""

MAX_TERM_CHARS = 200
"""The longest search term, in characters."""

MAX_EXTRACTED_METADATA_BYTES = 16 * 1024
"""The largest ``metadata`` of one file, as compact JSON (UTF-8 bytes)."""

SearchKind = Literal["column", "attribute", "dataset", "variable"]
"""What a search term names in a file, for ``column:``, ``attribute:``, ``dataset:`` and
``variable:`` queries: a table column, an attribute (or JSON key), an HDF5 dataset, a
netCDF variable (see :func:`provena_like.extractors.kinds.term_kinds`)."""

SEARCH_KINDS: tuple[SearchKind, ...] = get_args(SearchKind)
"""Every :data:`SearchKind`, in order."""

ExtractionRunState = Literal["open", "committed"]
"""``open``: batches may be added; ``committed``: the dataset's current extracted metadata."""

Term = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_TERM_CHARS, pattern=r"^[^\x00]+$")
]
ExtractorName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ExtractedFile(WireModel):
    """What the extractors found in one file of a dataset.

    Attributes:
        path: The file's path in the dataset (``raw/a.csv``).
        size: Its size in bytes, when known.
        extractors: The extractors that read it (``["basic", "tabular"]``).
        terms: Words worth searching for (column names, attribute names and values,
            HDF5 dataset names, image mode, archive member names...).
        kinds: What some of the ``terms`` name, by kind: ``{"column": ["temperature"]}``
            (each one must be one of ``terms``); ``column:temperature`` finds the file's
            dataset, ``attribute:temperature`` doesn't.
        metadata: A compact copy of the extractors' metadata, by extractor name (at most
            16 KiB as JSON).
        errors: Extractor name → why it failed or was skipped on this file.
    """

    path: ObjectPath
    size: int | None = Field(default=None, ge=0, le=MAX_WIRE_INT)
    extractors: list[ExtractorName] = Field(default_factory=list, max_length=32)
    terms: list[Term] = Field(default_factory=list, max_length=MAX_EXTRACTED_TERMS)
    kinds: dict[SearchKind, list[Term]] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    errors: dict[str, Annotated[str, StringConstraints(max_length=1000)]] = Field(
        default_factory=dict, max_length=32
    )

    @field_validator("path")
    @classmethod
    def _safe_path(cls, value: str) -> str:
        return check_object_path(value)

    @field_validator("metadata")
    @classmethod
    def _compact(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_EXTRACTED_METADATA_BYTES:
            raise ValueError(
                f"metadata is {size} bytes as JSON; at most {MAX_EXTRACTED_METADATA_BYTES}"
            )
        return value

    @model_validator(mode="after")
    def _kinds_are_terms(self) -> ExtractedFile:
        terms = set(self.terms)
        for kind, names in self.kinds.items():
            stray = [n for n in names if n not in terms]
            if stray:
                raise PydanticCustomError(
                    "kind_not_a_term",
                    "kinds.{kind} holds '{name}', which is not one of terms",
                    {"kind": kind, "name": stray[0][:100]},
                )
        return self


class ExtractedFilesBatch(WireModel):
    """One batch of a run's files (each path at most once per batch)."""

    files: list[ExtractedFile] = Field(min_length=1, max_length=MAX_EXTRACTED_BATCH)


class ExtractionRunRequest(WireModel):
    """Start an extraction run of a dataset.

    Attributes:
        source: Where the crawl ran (``dataset:<handle>``), for the record.
    """

    source: str | None = Field(default=None, max_length=2048)


class ExtractionRun(WireModel):
    """An extraction run of a dataset.

    Attributes:
        run_id: The run's id.
        dataset: The dataset's handle.
        state: ``open`` (taking batches) or ``committed`` (the dataset's current metadata).
        files: Files in the run so far.
        terms: Distinct search terms of the run (counted at commit).
        source: Where the crawl ran, as given.
        created_by: Who started it.
        created_at: When.
        committed_at: When it was committed.
    """

    run_id: str
    dataset: str
    state: ExtractionRunState
    files: int = 0
    terms: int = 0
    source: str | None = None
    created_by: str
    created_at: datetime
    committed_at: datetime | None = None


class ExtractedFilesAdded(WireModel):
    """The answer to a batch: how many files it held and how many the run has now."""

    run_id: str
    received: int
    files: int
