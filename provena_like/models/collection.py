"""The metadata record of a dataset, modelled on Provena's collection format.

A :class:`DatasetRecord` has three parts:

- ``associations``: who the dataset belongs to (registry handles of an organisation and,
  optionally, of people);
- ``approvals``: the declarations a data steward checks (ethics, Indigenous knowledge, export
  controls), each ``{relevant, obtained}``;
- ``dataset_info``: what the dataset is (name, description, licence, dates, keywords, spatial
  and temporal coverage, free-form ``user_metadata``) and where its data lives (``access_info``).

The models are strict (unknown fields are refused) so that a typo in a field name is an error,
not silently dropped metadata. This module depends on pydantic only, so that both
:mod:`provena_like.models.registry` (which registers the ``dataset`` subtype) and
:mod:`provena_like.models.datastore` can import it.

Example:
    ```python
    record = DatasetRecord.model_validate({
        "associations": {"organisation_id": "10378.1/1"},
        "approvals": {name: {"relevant": False, "obtained": False} for name in APPROVAL_NAMES},
        "dataset_info": {
            "name": "Reef temperatures 2024",
            "description": "Hourly logger readings.",
            "access_info": {"reposited": True},
            "publisher_id": "10378.1/1",
            "created_date": "2024-01-01",
            "published_date": "2024-06-30",
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "keywords": ["reef", "temperature"],
        },
    })
    ```
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StrictBool,
    StringConstraints,
    model_validator,
)

__all__ = [
    "APPROVAL_NAMES",
    "AccessInfo",
    "Approval",
    "DatasetApprovals",
    "DatasetAssociations",
    "DatasetInfo",
    "DatasetRecord",
    "Handle",
    "SpatialInfo",
    "TemporalInfo",
]

Handle = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=255, pattern=r"^[^/\s]+/[^/\s]+$"
    ),
]
"""A registry handle such as ``10378.1/42`` (exactly one ``/``)."""

Keyword = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"\S")
]
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000, pattern=r"\S")
]
LongText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20000, pattern=r"\S")
]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=200)]

APPROVAL_NAMES: tuple[str, ...] = (
    "ethics_registration",
    "ethics_access",
    "indigenous_knowledge",
    "export_controls",
)
"""The approvals every dataset record declares."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DatasetAssociations(_Strict):
    """Who the dataset belongs to; every value is the handle of a registry item."""

    organisation_id: Handle = Field(description="handle of the owning organisation")
    data_custodian_id: Handle | None = Field(
        default=None, description="handle of the person who is the data custodian"
    )
    point_of_contact: Handle | None = Field(
        default=None, description="handle of the person to contact about the dataset"
    )


class Approval(_Strict):
    """One declaration: does it apply to this dataset, and was it obtained?"""

    relevant: StrictBool = Field(description="whether this approval applies to the dataset")
    obtained: StrictBool = Field(description="whether the approval was obtained")

    @model_validator(mode="after")
    def _obtained_needs_relevant(self) -> Approval:
        if self.obtained and not self.relevant:
            raise ValueError(
                "obtained is true but relevant is false: an approval can only be obtained when "
                "it is relevant; set relevant to true or obtained to false"
            )
        return self


class DatasetApprovals(_Strict):
    """The approvals a data steward checks; each must be declared explicitly."""

    ethics_registration: Approval = Field(
        description="human ethics approval to register (collect) the data"
    )
    ethics_access: Approval = Field(description="human ethics approval to access the data")
    indigenous_knowledge: Approval = Field(
        description="consent to use Indigenous knowledge or data"
    )
    export_controls: Approval = Field(description="export control approval")


class AccessInfo(_Strict):
    """Where the data lives: in this system's storage (``reposited``) or elsewhere.

    When the data is not reposited, ``uri`` (where to find it) and ``description`` (how to get
    access) are required.
    """

    reposited: StrictBool = Field(description="whether the data is stored in this system")
    uri: HttpUrl | None = Field(default=None, description="where the data is, if not reposited")
    description: ShortText | None = Field(
        default=None, description="how to get access to data that is not reposited"
    )

    @model_validator(mode="after")
    def _external_needs_location(self) -> AccessInfo:
        if not self.reposited:
            missing = [name for name in ("uri", "description") if getattr(self, name) is None]
            if missing:
                raise ValueError(
                    f"data that is not reposited needs {' and '.join(missing)}: say where the "
                    "data is and how to get access to it (or set reposited to true)"
                )
        return self


class SpatialInfo(_Strict):
    """Spatial coverage: a WKT or GeoJSON-like geometry, an extent and a resolution."""

    coverage: ShortText | None = Field(
        default=None, description='the area covered, as WKT or GeoJSON ("POLYGON ((...))")'
    )
    extent: ShortText | None = Field(default=None, description="bounding box, as WKT")
    resolution: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None, description='spatial resolution, e.g. "1 km"'
    )

    @model_validator(mode="after")
    def _not_empty(self) -> SpatialInfo:
        if self.coverage is None and self.extent is None and self.resolution is None:
            raise ValueError(
                "spatial_info is empty: give coverage, extent or resolution, or leave it out"
            )
        return self


class TemporalInfo(_Strict):
    """The period the data covers; ``begin_date`` must not be after ``end_date``."""

    begin_date: date | None = None
    end_date: date | None = None
    resolution: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None, description='temporal resolution, e.g. "hourly" or an ISO 8601 duration'
    )

    @model_validator(mode="after")
    def _ordered(self) -> TemporalInfo:
        if (
            self.begin_date is not None
            and self.end_date is not None
            and self.begin_date > self.end_date
        ):
            raise ValueError(
                f"begin_date ({self.begin_date}) is after end_date ({self.end_date}): "
                "swap them or fix one"
            )
        if self.begin_date is None and self.end_date is None and self.resolution is None:
            raise ValueError(
                "temporal_info is empty: give begin_date, end_date or resolution, or leave it out"
            )
        return self


class DatasetInfo(_Strict):
    """What the dataset is."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    description: LongText
    access_info: AccessInfo
    publisher_id: Handle = Field(description="handle of the publishing organisation")
    created_date: date = Field(description="when the data was created")
    published_date: date = Field(description="when the data was (or will be) published")
    license: HttpUrl = Field(description="URL of the licence, e.g. a Creative Commons deed")
    purpose: ShortText | None = None
    rights_holder: ShortText | None = None
    usage_limitations: ShortText | None = None
    preferred_citation: ShortText | None = None
    spatial_info: SpatialInfo | None = None
    temporal_info: TemporalInfo | None = None
    formats: list[Keyword] = Field(default_factory=list, max_length=100)
    keywords: list[Keyword] = Field(
        default_factory=list, max_length=100, description="exact-match filter of the listing"
    )
    user_metadata: dict[MetadataKey, Annotated[str, StringConstraints(max_length=5000)]] = Field(
        default_factory=dict, max_length=200, description="free-form string pairs"
    )

    @model_validator(mode="after")
    def _unique_keywords(self) -> DatasetInfo:
        duplicates = sorted(k for k, n in Counter(self.keywords).items() if n > 1)
        if duplicates:
            raise ValueError(f"keywords repeat {duplicates}: list each keyword once")
        return self


class DatasetRecord(_Strict):
    """The metadata record of a dataset (the registry ``record`` of subtype ``dataset``)."""

    associations: DatasetAssociations
    approvals: DatasetApprovals
    dataset_info: DatasetInfo
