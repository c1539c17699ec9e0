"""Where things are on Globus: ``globus://<collection>/path`` and labelled roots.

A :class:`Location` is a collection (endpoint) UUID and an absolute path on it. Scripts that
move data between sites keep a table of names for the collections they use and the directory
each one starts at (ONE's ``endpoints = {label: {"id", "root_path"}}``, map-ephys's
``"<endpoint>:<path>"`` strings); :class:`Locations` is that table:

Example:
    ```python
    lab = "6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e"
    places = Locations({"lab-server": (lab, "/data/")})
    loc = places.resolve("lab-server:subjects/ZM_1")
    assert loc == Location(lab, "/data/subjects/ZM_1")
    assert places.resolve(f"globus://{lab}/data/subjects/ZM_1") == loc  # without a label
    ```

A path below a label can never climb out of the label's root (``..`` is refused).
"""

from __future__ import annotations

import posixpath
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from provena_like._core.errors import UnsafePath, UsageError

__all__ = ["Location", "LocationLike", "Locations", "to_globus_path"]

_SCHEME = "globus://"
_DRIVE = re.compile(r"^([A-Za-z]):[\\/]?")


def _check_path_text(path: str) -> None:
    if "\x00" in path:
        raise UnsafePath("a Globus path must not contain a NUL byte")


def _normalise(path: str) -> str:
    """An absolute POSIX path with single slashes, ``.`` removed and no trailing slash.

    ``~`` (the collection's default directory) is kept as the first segment.
    """
    _check_path_text(path)
    if path in ("", "~"):
        return "/~" if path == "~" else "/"
    text = path if path.startswith("/") else "/" + path
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePath(f"'..' is not allowed in a Globus path: {path!r}")
    return "/" + "/".join(parts)


def to_globus_path(local: str) -> str:
    r"""The Globus form of a local path: ``E:\\\\FlatIron\\\\x`` → ``/E/FlatIron/x``.

    Globus Connect Personal on Windows shows drive ``E:`` as the directory ``/E``; POSIX paths
    are returned normalised.

    Example:
        ```python
        assert to_globus_path("E:\\\\FlatIron\\\\zadorlab") == "/E/FlatIron/zadorlab"
        assert to_globus_path("/mnt/s0/Data/") == "/mnt/s0/Data"
        ```
    """
    match = _DRIVE.match(local)
    if match:
        rest = local[match.end() :].replace("\\", "/")
        return _normalise(f"/{match.group(1).upper()}/{rest}")
    return _normalise(local)


@dataclass(frozen=True)
class Location:
    """A path on a Globus collection.

    Attributes:
        collection: the collection (endpoint) UUID, as a lower-case string.
        path: the absolute path on the collection (``/`` is its root, ``/~`` its default
            directory); no trailing slash.

    Example:
        ```python
        loc = Location.parse("globus://6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e/data/raw")
        assert loc.path == "/data/raw"
        assert str(loc / "a.bin") == "globus://6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e/data/raw/a.bin"
        ```
    """

    collection: str
    path: str = "/"

    def __post_init__(self) -> None:
        try:
            collection = str(uuid.UUID(str(self.collection)))
        except ValueError:
            raise UsageError(f"not a collection UUID: {self.collection!r}") from None
        object.__setattr__(self, "collection", collection)
        object.__setattr__(self, "path", _normalise(self.path))

    @classmethod
    def parse(cls, text: str) -> Location:
        """Read ``globus://<collection-uuid>/path`` (the path defaults to ``/``).

        Raises:
            UsageError: not that notation, or not a UUID.
            UnsafePath: the path holds ``..`` or a NUL byte.
        """
        if not text.startswith(_SCHEME):
            raise UsageError(f"expected globus://<collection-uuid>/path, got {text!r}")
        rest = text[len(_SCHEME) :]
        collection, _, path = rest.partition("/")
        return cls(collection, "/" + path)

    @property
    def name(self) -> str:
        """The last path segment (``''`` at the root)."""
        return posixpath.basename(self.path)

    @property
    def parent(self) -> Location:
        """The directory that holds this path (the root is its own parent)."""
        return Location(self.collection, posixpath.dirname(self.path))

    @property
    def dir_path(self) -> str:
        """The path with a trailing slash, as Globus shows directories (``/data/``)."""
        return self.path if self.path.endswith("/") else self.path + "/"

    def joinpath(self, relative: str) -> Location:
        """The location ``relative`` below this one (never above it).

        Raises:
            UnsafePath: ``relative`` holds ``..`` or a NUL byte.
        """
        _check_path_text(relative)
        parts = [p for p in relative.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise UnsafePath(f"'..' is not allowed in a relative Globus path: {relative!r}")
        if not parts:
            return self
        return Location(self.collection, posixpath.join(self.path, *parts))

    def __truediv__(self, relative: str) -> Location:
        return self.joinpath(relative)

    def is_relative_to(self, other: Location) -> bool:
        """Whether this path is ``other`` or below it, on the same collection."""
        if self.collection != other.collection:
            return False
        return self.path == other.path or self.path.startswith(other.dir_path)

    def relative_to(self, other: Location) -> str:
        """This path relative to ``other`` (``''`` when they are equal).

        Raises:
            UsageError: this location is not below ``other``.
        """
        if not self.is_relative_to(other):
            raise UsageError(f"{self} is not below {other}")
        return self.path[len(other.path) :].lstrip("/")

    def __str__(self) -> str:
        return f"{_SCHEME}{self.collection}{self.path}"

    def __repr__(self) -> str:
        return f"Location({self.collection!r}, {self.path!r})"


LocationLike = Location | str
"""A :class:`Location`, ``globus://<uuid>/path``, ``<label>:<relative path>`` or a label."""


class Locations(Mapping[str, Location]):
    """Named collection roots: label → (collection UUID, root path).

    Args:
        labels: ``{"lab-server": ("<uuid>", "/data/")}`` (what ``transfer_locations`` in the
            config holds), or labels mapped to :class:`Location` objects.

    Raises:
        UsageError: a label with ``:`` or ``/`` in it, or a bad UUID.

    Example:
        ```python
        places = Locations({"lab": ("6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e", "/data/")})
        loc = places.resolve("lab:subjects/ZM_1")
        assert loc.path == "/data/subjects/ZM_1"
        assert places.label_of(loc) == ("lab", "subjects/ZM_1")
        ```
    """

    def __init__(self, labels: Mapping[str, tuple[str, str] | Location] | None = None) -> None:
        self._roots: dict[str, Location] = {}
        for label, root in (labels or {}).items():
            if isinstance(root, Location):
                self.register(label, root.collection, root.path)
            else:
                self.register(label, *root)

    def register(self, label: str, collection: str, root: str = "/") -> Location:
        """Name ``root`` on ``collection`` ``label`` (replacing an earlier one); returns it."""
        if not label or ":" in label or "/" in label:
            raise UsageError(f"a location label must be non-empty, without ':' or '/': {label!r}")
        location = Location(collection, root)
        self._roots[label] = location
        return location

    def __getitem__(self, label: str) -> Location:
        return self._roots[label]

    def __iter__(self) -> Iterator[str]:
        return iter(self._roots)

    def __len__(self) -> int:
        return len(self._roots)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {str(v)!r}" for k, v in self._roots.items())
        return f"Locations({{{inner}}})"

    def resolve(self, spec: LocationLike, path: str | None = None) -> Location:
        """The location that ``spec`` names, with ``path`` below it if given.

        ``spec`` is a :class:`Location`, ``globus://<uuid>/path``, ``<label>`` or
        ``<label>:<path below its root>``, or a bare collection UUID (then ``path`` is the
        absolute path on it, default ``/``).

        Raises:
            UsageError: an unknown label, or something that is none of the above.
            UnsafePath: a path that climbs out with ``..`` or holds a NUL byte.

        Example:
            ```python
            places = Locations({"lab": ("6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e", "/data")})
            assert places.resolve("lab", "raw/a.bin").path == "/data/raw/a.bin"
            ```
        """
        if isinstance(spec, Location):
            base = spec
        elif spec.startswith(_SCHEME):
            base = Location.parse(spec)
        else:
            label, sep, rest = spec.partition(":")
            if label in self._roots:
                base = self._roots[label].joinpath(rest) if sep else self._roots[label]
            else:
                try:
                    uuid.UUID(spec)
                except ValueError:
                    known = ", ".join(sorted(self._roots)) or "none registered"
                    raise UsageError(
                        f"{spec!r} is not a globus:// URL, a collection UUID or a location "
                        f"label (labels: {known})"
                    ) from None
                return Location(spec, path if path is not None else "/")
        return base if path is None else base.joinpath(path)

    def label_of(self, location: Location) -> tuple[str, str] | None:
        """The label whose root holds ``location`` and the path below it, or ``None``.

        When several labels hold it, the one with the deepest root wins.
        """
        best: tuple[str, Location] | None = None
        for label, root in self._roots.items():
            if location.is_relative_to(root) and (
                best is None or len(root.path) > len(best[1].path)
            ):
                best = (label, root)
        if best is None:
            return None
        return best[0], location.relative_to(best[1])
