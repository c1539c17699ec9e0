"""ALF naming conventions: session paths, collections, revisions and dataset names.

Pure functions and frozen dataclasses, no I/O, shared by the SDK and the server. Parsing
returns typed parts (:class:`SessionPath`, :class:`DatasetName`, :class:`AlfPath`);
constructing those parts validates them and ``str()`` builds the path or name. Anything that
breaks the rules raises :class:`AlfError` (a ``ValueError``) whose ``.part`` names the part
that is wrong and whose message says what was expected.

```
ValueError
└── AlfError (.part .value .expected .path)
    └── DatasetTypeError (.filename .candidates)
```

See the guide "ALF naming conventions" for the rules, the revision order and what differs
from ONE.

Example:
    ```python
    from provena_like.alf import parse_alf_path, next_revision

    path = parse_alf_path("mouse1/2024-01-31/1/alf/#2024-02-01#/_ibl_trials.table.pqt")
    assert str(path.session) == "mouse1/2024-01-31/001"
    assert path.dataset.object_attribute == "trials.table"
    newer = path.with_revision(next_revision(path.revision, [path.revision]))
    assert newer.rel_path == "alf/#2024-02-01a#/_ibl_trials.table.pqt"
    ```
"""

from provena_like.alf.dataset_types import (
    DatasetTypeLike,
    match_dataset_type,
    matching_dataset_types,
)
from provena_like.alf.errors import AlfError, DatasetTypeError
from provena_like.alf.names import (
    DatasetName,
    add_uuid,
    is_uuid_string,
    is_valid_dataset_name,
    parse_dataset_name,
    remove_uuid,
)
from provena_like.alf.paths import (
    AlfPath,
    SessionPath,
    as_date,
    is_revision_name,
    is_session_path,
    padded_sequence,
    parse_alf_path,
    parse_rel_path,
    parse_session_path,
    split_session_path,
)
from provena_like.alf.revisions import (
    ExistingRevision,
    index_last_before,
    last_before,
    next_revision,
    resolve_revision,
    sort_revisions,
)

__all__ = [
    "AlfError",
    "AlfPath",
    "DatasetName",
    "DatasetTypeError",
    "DatasetTypeLike",
    "ExistingRevision",
    "SessionPath",
    "add_uuid",
    "as_date",
    "index_last_before",
    "is_revision_name",
    "is_session_path",
    "is_uuid_string",
    "is_valid_dataset_name",
    "last_before",
    "match_dataset_type",
    "matching_dataset_types",
    "next_revision",
    "padded_sequence",
    "parse_alf_path",
    "parse_dataset_name",
    "parse_rel_path",
    "parse_session_path",
    "remove_uuid",
    "resolve_revision",
    "sort_revisions",
    "split_session_path",
]
