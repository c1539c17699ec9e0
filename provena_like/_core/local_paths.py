r"""Map a local endpoint's collection-side paths to local paths and back (pure, any OS).

A local endpoint shows the directory ``directory`` of a machine at ``path`` on a collection.
Globus Connect Personal on Windows shows drive ``C:`` as ``/C``, and the default directory
as ``/~``. The directory may be a POSIX path, a Windows path (``C:\data\raw``) or a UNC path
(``\\server\share\x``); the Windows forms are handled with :class:`~pathlib.PureWindowsPath`
on every OS, so the mapping can be checked anywhere.

Example:
    ```python
    paths = EndpointPaths("/C/data/raw", "C:\\data\\raw")
    assert str(paths.local_path("/C/data/raw/s1/a.bin")) == "C:\\data\\raw\\s1\\a.bin"
    assert paths.collection_path("C:\\data\\raw\\s1\\a.bin") == "/C/data/raw/s1/a.bin"
    ```
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath, PurePosixPath, PureWindowsPath

from provena_like._core.errors import UnsafePath, UsageError

__all__ = ["EndpointPaths", "is_windows_path", "local_pure_path"]

_WINDOWS = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\[^\\/]+[\\/][^\\/]+)")


def is_windows_path(text: str) -> bool:
    r"""Whether ``text`` is an absolute Windows path: ``C:\x``, ``C:/x`` or UNC ``\\host\share``.

    Example:
        ```python
        assert is_windows_path("C:\\data") and is_windows_path("\\\\nas\\lab\\raw")
        assert not is_windows_path("/data/raw")
        ```
    """
    return bool(_WINDOWS.match(text))


def local_pure_path(text: str) -> PurePath:
    r"""``text`` as an absolute pure path of its own flavour (Windows or POSIX).

    Raises:
        UsageError: If it is not absolute in either form.
        UnsafePath: If it holds ``..`` or a NUL byte.

    Example:
        ```python
        assert isinstance(local_pure_path("\\\\nas\\lab"), PureWindowsPath)
        assert local_pure_path("/data/raw") == PurePosixPath("/data/raw")
        ```
    """
    if "\x00" in text:
        raise UnsafePath("a local path must not contain a NUL byte")
    path: PurePath = PureWindowsPath(text) if is_windows_path(text) else PurePosixPath(text)
    if not path.is_absolute():
        raise UsageError(f"not an absolute path: {text!r}")
    if ".." in path.parts:
        raise UnsafePath(f"'..' is not allowed in a local path: {text!r}")
    return path


def _collection_parts(text: str) -> list[str]:
    if "\x00" in text:
        raise UnsafePath("a collection path must not contain a NUL byte")
    if not text.startswith("/"):
        raise UsageError(f"a collection path must start with '/': {text!r}")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePath(f"'..' is not allowed in a collection path: {text!r}")
    return parts


@dataclass(frozen=True)
class EndpointPaths:
    r"""The collection path ``path`` and the local directory ``directory`` it shows.

    Attributes:
        path: Where the directory is on the collection (``/``, ``/~/data``, ``/C/data/raw``).
        directory: The local directory (POSIX, ``C:\data\raw`` or ``\\server\share\x``).

    Raises:
        UsageError: If ``path`` doesn't start with ``/`` or ``directory`` isn't absolute.
        UnsafePath: If either holds ``..`` or a NUL byte.
    """

    path: str
    directory: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", "/" + "/".join(_collection_parts(self.path)))
        object.__setattr__(self, "directory", str(local_pure_path(self.directory)))

    @property
    def local_directory(self) -> PurePath:
        """:attr:`directory` as a pure path of its flavour."""
        return local_pure_path(self.directory)

    def local_path(self, collection_path: str) -> PurePath:
        """The local path a collection path shows.

        Raises:
            UsageError: If ``collection_path`` is not :attr:`path` or below it.
            UnsafePath: If it holds ``..`` or a NUL byte.
        """
        parts = _collection_parts(collection_path)
        root = _collection_parts(self.path)
        if parts[: len(root)] != root:
            raise UsageError(
                f"{collection_path!r} is outside the local endpoint's path {self.path!r}"
            )
        return self.local_directory.joinpath(*parts[len(root) :])

    def collection_path(self, local_path: str | PurePath) -> str:
        """The collection path of a local path inside :attr:`directory`.

        Raises:
            UsageError: If ``local_path`` is not absolute or not inside :attr:`directory`.
            UnsafePath: If it holds ``..`` or a NUL byte.
        """
        local = local_pure_path(str(local_path))
        directory = self.local_directory
        if type(local) is not type(directory) or not local.is_relative_to(directory):
            raise UsageError(
                f"{str(local_path)!r} is outside the local endpoint's directory {self.directory!r}"
            )
        relative = local.relative_to(directory).parts
        return "/".join([self.path.rstrip("/"), *relative]) or "/"
