"""Matching a file name to its dataset type.

A dataset type has a name (``"trials.table"``) and a filename pattern (``"*trials.table*"``,
shell-style). A file belongs to the single type whose pattern matches its name, compared
case-insensitively (``str.casefold``); a type with an empty pattern matches the files whose
``object.attribute`` equals its name (or, for a name that is not ALF, whose name without its
last extension does).
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import PurePath
from typing import Protocol, TypeVar

from provena_like.alf.errors import AlfError, DatasetTypeError
from provena_like.alf.names import parse_dataset_name

__all__ = ["DatasetTypeLike", "match_dataset_type", "matching_dataset_types"]


class DatasetTypeLike(Protocol):
    """Anything with a ``name`` and a ``filename_pattern`` (a record, a model, a tuple)."""

    @property
    def name(self) -> str:
        """The type's name, ``object.attribute`` by convention."""
        ...

    @property
    def filename_pattern(self) -> str:
        """A shell-style pattern over file names, or ``""`` to match by name."""
        ...


T = TypeVar("T", bound=DatasetTypeLike)


def _name_of(filename: str | PurePath) -> str:
    return filename.name if isinstance(filename, PurePath) else filename.rpartition("/")[2]


def matching_dataset_types(filename: str | PurePath, types: Iterable[T]) -> list[T]:
    """Every dataset type that matches a file name, in the order given.

    Args:
        filename: The file name or a path to it (only the name is matched).
        types: The dataset types.

    Returns:
        The matching types (zero, one or several).
    """
    name = _name_of(filename)
    folded = name.casefold()
    try:
        stem = parse_dataset_name(name).object_attribute
    except AlfError:
        stem = name.rpartition(".")[0] or name
    found: list[T] = []
    for dataset_type in types:
        pattern = dataset_type.filename_pattern.strip()
        if pattern:
            if fnmatchcase(folded, pattern.casefold()):
                found.append(dataset_type)
        elif dataset_type.name == stem:
            found.append(dataset_type)
    return found


def match_dataset_type(filename: str | PurePath, types: Iterable[T]) -> T:
    """The single dataset type that matches a file name.

    Args:
        filename: The file name or a path to it (only the name is matched).
        types: The dataset types.

    Returns:
        The matching type.

    Raises:
        DatasetTypeError: No type matches, or several do (``.candidates`` names them).

    Example:
        ```python
        from typing import NamedTuple
        from provena_like.alf import DatasetTypeError, match_dataset_type

        class DatasetType(NamedTuple):
            name: str
            filename_pattern: str

        types = [
            DatasetType("trials.table", ""),
            DatasetType("camera.raw", "_iblrig_*Camera.raw.*"),
        ]
        assert match_dataset_type("alf/_ibl_trials.table.pqt", types).name == "trials.table"
        assert match_dataset_type("_iblrig_leftCamera.raw.MP4", types).name == "camera.raw"
        try:
            match_dataset_type("wheel.position.npy", types)
        except DatasetTypeError as err:
            assert err.candidates == ()
        ```
    """
    found = matching_dataset_types(filename, types)
    if len(found) != 1:
        raise DatasetTypeError(_name_of(filename), [t.name for t in found])
    return found[0]
