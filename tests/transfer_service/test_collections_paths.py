"""Paths can never leave a collection's root: each way out is refused, nothing outside touched.

The normalisation is checked on its own (it is pure); the symlink cases run against real
directories of a POSIX collection of the live server, calling the backend with paths that
were resolved *before* a symlink was swapped in, to show that every access checks again.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from provena_like.server.datastore.storage import put_object
from provena_like.server.transfer.collections import Collection
from provena_like.server.transfer.errors import TransferAPIError
from provena_like.server.transfer.paths import ResolvedPath, normalise
from provena_like.server.transfer.posix import PosixBackend
from provena_like.testing.server_thread import ServerThread
from tests.support.transfer import (
    dataset_collection,
    in_server,
    new_root,
    open_as,
    register_collection,
)
from tests.support.users import User

pytestmark = pytest.mark.anyio

REFUSED = [
    "..",
    "/..",
    "/../etc/passwd",
    "/a/../../b",
    "a/..",
    "/~/../x",
    "~/..",
    "/a/%2e%2e/b",
    "/%2E%2E",
    "/a%2Fb",
    "/a%2fb/c",
    "/a%252Fb",
    "/%25252e%25252e/x",
    "/a%5Cb",
    "/a%5cb",
    "/a%00b",
    "/a\\b",
    "\\..\\x",
    "/a\x00b",
    "\x00",
    "/" + "n" * 256,
    "/d" * 2049,
]


@pytest.mark.parametrize("path", REFUSED)
def test_ways_out_are_refused(path: str) -> None:
    with pytest.raises(TransferAPIError) as err:
        normalise(path)
    assert err.value.status == 400
    assert err.value.code == "ClientError.BadRequest.InvalidPath"


@pytest.mark.parametrize(
    ("path", "parts", "display"),
    [
        (None, (), "/"),
        ("", (), "/"),
        ("/", (), "/"),
        ("~", (), "/"),
        ("~/", (), "/"),
        ("/~/", (), "/"),
        ("/~", (), "/"),
        ("/~/data/x.bin", ("data", "x.bin"), "/data/x.bin"),
        ("~/data/", ("data",), "/data/"),
        ("/a//./b/.", ("a", "b"), "/a/b/"),
        ("/etc/passwd", ("etc", "passwd"), "/etc/passwd"),
        ("relative/name", ("relative", "name"), "/relative/name"),
        ("/a/~/b", ("a", "~", "b"), "/a/~/b"),
        ("/a%20b/c%41", ("a%20b", "c%41"), "/a%20b/c%41"),
        ("/...", ("...",), "/..."),
        ("/é/ü.txt", ("é", "ü.txt"), "/é/ü.txt"),
    ],
)
def test_normalised_paths(path: str | None, parts: tuple[str, ...], display: str) -> None:
    resolved = normalise(path)
    assert resolved.parts == parts
    assert resolved.display == display
    assert resolved.as_dir == ("/" if not parts else "/" + "/".join(parts) + "/")


def test_child_names_are_checked() -> None:
    root = normalise("/")
    assert root.child("x").display == "/x"
    for name in ("..", ".", "", "a/b", "a\\b", "%2e%2e", "a\x00"):
        with pytest.raises(TransferAPIError):
            root.child(name)


def _tree(root: Path, outside: Path) -> None:
    """root: inside/ (f.txt), file.txt, out -> outside, pw -> outside/secret.txt,
    inlink -> inside, dangling -> nowhere."""
    (root / "inside").mkdir()
    (root / "inside" / "f.txt").write_text("in")
    (root / "file.txt").write_text("file")
    (root / "out").symlink_to(outside)
    (root / "pw").symlink_to(outside / "secret.txt")
    (root / "inlink").symlink_to(root / "inside")
    (root / "rel-up").symlink_to("../")
    (root / "dangling").symlink_to(root / "nowhere")


def test_local_paths_of_a_batch_resolve_as_one_by_one(tmp_path: Path) -> None:
    """A batch's shared ``parents`` cache (one lstat a file) gives what a full realpath
    gives: symlinked files and folders inside followed, those leading out refused."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    root = tmp_path / "root"
    root.mkdir()
    _tree(root, outside)
    (root / "inside" / "up").symlink_to("../file.txt")
    (root / "inside" / "pw").symlink_to(outside / "secret.txt")
    backend = PosixBackend(root)
    names = [
        "/file.txt", "/pw", "/dangling", "/missing", "/inside/f.txt", "/inside/up",
        "/inside/pw", "/inlink/f.txt", "/inlink/up", "/inlink/pw", "/out/secret.txt",
        "/rel-up/file.txt", "/rel-up/inside/up",
    ]  # fmt: skip

    def resolved(path: str, parents: dict[tuple[str, ...], str] | None) -> str:
        try:
            return str(backend.local_path(normalise(path), parents=parents))
        except TransferAPIError as err:
            return f"{err.status} {err.code}"

    parents: dict[tuple[str, ...], str] = {}
    batch = [resolved(name, parents) for name in names]
    assert batch == [resolved(name, None) for name in names]
    assert batch[names.index("/inlink/up")] == str(root.resolve() / "file.txt")
    assert batch[names.index("/inside/pw")].startswith("403")
    assert batch[names.index("/inlink/pw")].startswith("403")
    assert len(parents) < len(names)


def _snapshot(directory: Path) -> dict[str, bytes | None]:
    found: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in dirnames:
            found[os.path.join(dirpath, name)] = None
        for name in filenames:
            found[os.path.join(dirpath, name)] = Path(dirpath, name).read_bytes()
    return found


@pytest.fixture
async def posix(server: ServerThread, admin: User, tmp_path: Path) -> tuple[Collection, Path]:
    """A POSIX collection with the tree of :func:`_tree`, opened for writing, and the
    directory outside it that its symlinks point to."""
    outside = tmp_path / f"outside-{uuid.uuid4().hex[:6]}"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    root = new_root(server)
    _tree(root, outside)
    col = await register_collection(server, admin, root)
    return await open_as(server, admin, col["collection_id"], write=True), outside


async def test_symlinks_leading_outside_are_refused_everywhere(
    server: ServerThread, posix: tuple[Collection, Path]
) -> None:
    col, outside = posix
    backend = col.backend
    assert isinstance(backend, PosixBackend)
    before = _snapshot(outside)

    for path in ("/out", "/out/", "/out/secret.txt", "/pw", "/rel-up", "/rel-up/x", "/out/new"):
        with pytest.raises(TransferAPIError) as err:
            col.resolve(path)
        assert (err.value.status, err.value.code) == (403, "EndpointPermissionDenied"), path

    def p(path: str) -> ResolvedPath:
        return normalise(path)  # not checked: the backend must check by itself

    calls = {
        "stat": lambda: backend.stat(p("/out/secret.txt")),
        "stat link": lambda: backend.stat(p("/pw")),
        "ls": lambda: backend.list_dir(p("/out")),
        "ls up": lambda: backend.list_dir(p("/rel-up")),
        "mkdir": lambda: backend.mkdir(p("/out/new")),
        "rename out of": lambda: backend.rename(p("/out/secret.txt"), p("/stolen.txt")),
        "rename into": lambda: backend.rename(p("/file.txt"), p("/out/planted.txt")),
        "delete inside it": lambda: backend.delete(p("/out/secret.txt"), recursive=False),
        "delete tree": lambda: backend.delete(p("/rel-up/inside"), recursive=True),
    }
    for what, call in calls.items():
        with pytest.raises(TransferAPIError) as err:
            await in_server(server, call)
        assert (err.value.status, err.value.code) == (403, "EndpointPermissionDenied"), what
    blocking: dict[str, Callable[[], object]] = {
        "open_read": lambda: backend.open_read(p("/pw")),
        "open_read through a dir link": lambda: backend.open_read(p("/out/secret.txt")),
        "open_write": lambda: backend.open_write(p("/out/new.txt")),
        "open_write via link": lambda: backend.open_write(p("/pw")),
        "ensure_dir": lambda: backend.ensure_dir(p("/out/a/b")),
    }
    for what, sync in blocking.items():
        with pytest.raises(TransferAPIError) as err:
            sync()
        assert err.value.status == 403, what

    assert _snapshot(outside) == before
    assert (backend.root / "file.txt").read_text() == "file"
    # deleting the link itself is fine: the link goes, what it points to stays
    await in_server(server, lambda: backend.delete(p("/out"), recursive=True))
    assert not (backend.root / "out").is_symlink()
    assert _snapshot(outside) == before


async def test_listing_shows_symlinks_without_leaking(
    server: ServerThread, posix: tuple[Collection, Path]
) -> None:
    col, _ = posix
    backend = col.backend
    listing = {f.name: f for f in await in_server(server, lambda: backend.list_dir(normalise("/")))}
    assert listing["out"].type == "invalid_symlink" and listing["out"].link_target is None
    assert listing["pw"].type == "invalid_symlink" and listing["pw"].link_target is None
    assert listing["rel-up"].type == "invalid_symlink"
    assert listing["dangling"].type == "invalid_symlink"
    assert listing["inlink"].type == "dir" and listing["inlink"].link_target == "/inside"
    assert listing["inlink"].to_globus()["link_target"] == "/inside"
    assert listing["file.txt"].to_globus()["link_target"] is None
    # a symlink inside the root is followed
    inner = await in_server(server, lambda: backend.list_dir(col.resolve("/inlink/")))
    assert [f.name for f in inner] == ["f.txt"]
    assert (await in_server(server, lambda: backend.stat(col.resolve("/inlink/f.txt")))).size == 2


async def test_a_symlink_swapped_in_after_resolving_is_refused(
    server: ServerThread, posix: tuple[Collection, Path]
) -> None:
    col, outside = posix
    backend = col.backend
    assert isinstance(backend, PosixBackend)
    target = col.resolve("/inside/f.txt")
    directory = col.resolve("/inside/")
    os.rename(backend.root / "inside", backend.root / "inside.old")
    (backend.root / "inside").symlink_to(outside)
    (outside / "f.txt").write_text("outside")
    before = _snapshot(outside)
    for call in (
        lambda: backend.stat(target),
        lambda: backend.list_dir(directory),
        lambda: backend.mkdir(directory.child("new")),
        lambda: backend.delete(target, recursive=False),
    ):
        with pytest.raises(TransferAPIError) as err:
            await in_server(server, call)
        assert err.value.status == 403
    with pytest.raises(TransferAPIError):
        backend.open_read(target)
    with pytest.raises(TransferAPIError):
        backend.open_write(target)
    assert _snapshot(outside) == before


async def test_host_paths_stay_inside_the_root(
    server: ServerThread, posix: tuple[Collection, Path]
) -> None:
    col, _ = posix
    backend = col.backend
    with pytest.raises(TransferAPIError) as err:
        await in_server(server, lambda: backend.stat(col.resolve("/etc/passwd")))
    assert (err.value.status, err.value.code) == (404, "NotFound")
    assert isinstance(backend, PosixBackend)
    assert backend.local_path(col.resolve("/etc/passwd")) == backend.root / "etc" / "passwd"
    fd = backend.open_read(col.resolve("/~/file.txt"))
    try:
        assert os.read(fd, 100) == b"file"
    finally:
        os.close(fd)


async def test_s3_keys_stay_under_the_prefix(
    server: ServerThread, new_user: Callable[..., User]
) -> None:
    col, backend = await dataset_collection(server, new_user("alice"))
    prefix = backend.prefix
    assert backend.key(col.resolve("/etc/passwd")) == prefix + "etc/passwd"
    assert backend.dir_key(col.resolve("~")) == prefix
    for path in REFUSED[:12]:
        with pytest.raises(TransferAPIError):
            col.resolve(path)
    # (SeaweedFS itself refuses keys with ".." and folds "//" and "\\" into "/", so a key
    # that no Globus path could name can't be made here to check that listings skip it)
    await in_server(server, lambda: put_object(backend.store, prefix + "a/ok.txt", b"x"))
    names = [f.name for f in await in_server(server, lambda: backend.list_dir(col.resolve("/a")))]
    assert names == ["ok.txt"]
