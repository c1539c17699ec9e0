"""Helpers of the Patcher tests: repositories a lab may use, and datasets they hold.

A *bench* is what every Patcher test needs: a lab (its member signs in), an S3 repository in
the server's bucket on which the lab's group has data roles, a POSIX repository item mounted
at a temp directory here, and registered datasets whose bytes are in both.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from provena_like import ProvenaClient
from provena_like._core.errors import TransferError
from provena_like.models.registration import RegisteredDataset
from provena_like.repositories import (
    ObjectInfo,
    PosixRepository,
    Repository,
    RepositoryResolver,
    path_from_dataset,
)
from provena_like.storage.events import ProgressCallback
from tests.support.patch_helpers import s3_repository
from tests.support.registration_helpers import (
    Lab,
    Vocabulary,
    create_item,
    file,
    make_session,
    register,
    unique,
)
from tests.support.users import User


async def grant_data_roles(
    client: httpx.AsyncClient,
    admin: User,
    repository: str,
    group: str,
    *,
    write: bool = True,
    data: bool = True,
) -> None:
    """As the registry admin, give ``group`` metadata-read and data-read (and data-write)."""
    current = (await client.get(f"/items/{repository}/access", headers=admin.headers)).json()
    roles = ["metadata-read", *(["data-read"] if data else []), *(["data-write"] if write else [])]
    current["groups"] = {**current.get("groups", {}), group: roles}
    r = await client.put(f"/items/{repository}/access", json=current, headers=admin.headers)
    assert r.status_code == 200, r.text


async def posix_repository(client: httpx.AsyncClient, admin: User) -> str:
    """A new POSIX repository item (root ``/data`` on its server); its handle."""
    body = {"name": unique("labsrv"), "kind": "posix", "root": "/data"}
    item = await create_item(client, admin, "repository", body)
    handle: str = item["id"]
    return handle


@dataclass
class Bench:
    """A lab with an S3 and a POSIX repository, mounted here at ``posix_root``."""

    lab: Lab
    vocabulary: Vocabulary
    s3: str
    s3_prefix: str
    posix: str
    posix_root: Path
    session: str = ""
    sessions: list[str] = field(default_factory=list)

    @property
    def local_roots(self) -> dict[str, Path]:
        """The ``local_roots`` of a resolver on this machine."""
        return {self.posix: self.posix_root}

    def resolver(self, pv: ProvenaClient) -> RepositoryResolver:
        """A resolver for ``pv`` that knows where the POSIX repository is mounted."""
        return RepositoryResolver(pv.registry_client, local_roots=self.local_roots)


async def make_bench(
    client: httpx.AsyncClient, admin: User, lab: Lab, vocabulary: Vocabulary, tmp_path: Path
) -> Bench:
    """A bench for ``lab``: both repositories, data roles granted on the S3 one."""
    s3, prefix = await s3_repository(client, admin)
    await grant_data_roles(client, admin, s3, lab.group)
    posix = await posix_repository(client, admin)
    await grant_data_roles(client, admin, posix, lab.group, data=False, write=False)
    root = tmp_path / "lab-server"
    root.mkdir()
    return Bench(lab, vocabulary, s3, prefix, posix, root)


def sha256(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


async def hold_files(
    client: httpx.AsyncClient,
    bench: Bench,
    repos: Mapping[str, Repository],
    contents: dict[str, bytes],
) -> list[RegisteredDataset]:
    """Register files of a new session in both repositories and put their bytes in both.

    Args:
        contents: ``[collection/]name`` → bytes, e.g. ``{"alf/obj.times.ext": b"old"}``.

    Returns:
        The registered datasets (with both file records), in the order of ``contents``.
    """
    session = await make_session(client, bench.lab)
    bench.session = session
    bench.sessions.append(session)
    body = [
        file(path, "", size=len(data), sha256=sha256(data), md5=hashlib.md5(data).hexdigest())
        for path, data in contents.items()
    ]
    answer: dict[str, object] = {}
    for repository in (bench.posix, bench.s3):
        r = await register(client, bench.lab.member, session, body, repository=repository)
        assert r.status_code == 201, r.text
        answer = r.json()
    datasets = [
        RegisteredDataset.model_validate(f["dataset"])
        for f in answer["files"]  # type: ignore[union-attr]
    ]
    for dataset, data in zip(datasets, contents.values(), strict=True):
        for handle in (bench.posix, bench.s3):
            local = bench.posix_root.parent / f"upload-{sha256(data)[:12]}"
            local.write_bytes(data)
            await repos[handle].put(local, path_from_dataset(dataset, handle))
            local.unlink()
    return datasets


def write_local(folder: Path, dataset: RegisteredDataset, data: bytes) -> Path:
    """Write ``data`` as the local copy of ``dataset``: ``folder/<its session path>/<rel_path>``."""
    target = folder / path_from_dataset(dataset)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


async def current_paths(pv: ProvenaClient, dataset_ids: Iterable[str]) -> dict[str, set[str]]:
    """Per repository, the paths the server's file records give for these datasets."""
    paths: dict[str, set[str]] = {}
    for dataset_id in dataset_ids:
        dataset = await pv.registry_client.get_registered_dataset(dataset_id)
        for record in dataset.files:
            paths.setdefault(record.repository, set()).add(record.relative_path)
    return paths


async def read_all(
    pv: ProvenaClient, repos: Mapping[str, Repository], dataset_ids: Iterable[str], folder: Path
) -> dict[tuple[str, str], bytes]:
    """What a reader gets: each dataset's bytes from each repository at the recorded path.

    The read is checked against the recorded sha256 (a mix would fail it).
    """
    got: dict[tuple[str, str], bytes] = {}
    folder.mkdir(parents=True, exist_ok=True)
    for dataset_id in dataset_ids:
        dataset = await pv.registry_client.get_registered_dataset(dataset_id)
        for record in dataset.files:
            local = folder / f"{dataset_id}-{record.repository.replace('/', '_')}"
            await repos[record.repository].get(record.relative_path, local, sha256=dataset.sha256)
            got[dataset_id, record.repository] = local.read_bytes()
    return got


async def listing(repos: Mapping[str, Repository], handles: Iterable[str]) -> dict[str, list[str]]:
    """Every object path in each repository."""
    return {h: [o.path async for o in repos[h].list()] for h in handles}


class Injected(TransferError):
    """The failure a :class:`Flaky` repository injects."""


class Flaky(Repository):
    """A repository that delegates to ``inner`` and fails one chosen call.

    Args:
        inner: The real (open) repository.
        fail: ``(method, n)``: the n-th call (1-based) of ``method`` (``put``, ``stat``,
            ``delete``) raises :class:`Injected` — before it reaches ``inner``.
        corrupt: After each ``put``, overwrite the stored object with the bytes of the
            file with one byte flipped (a copy corrupted in the store).
    """

    def __init__(
        self, inner: Repository, fail: tuple[str, int] | None = None, *, corrupt: bool = False
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.kind = inner.kind
        self.fail = fail
        self.corrupt = corrupt
        self.calls: dict[str, int] = {}

    def _count(self, method: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        if self.fail == (method, self.calls[method]):
            raise Injected(f"{self.name}: injected failure of {method} #{self.calls[method]}")

    async def put(
        self,
        local_path: Path | str | os.PathLike[str],
        path: str,
        *,
        progress: ProgressCallback | None = None,
    ) -> ObjectInfo:
        self._count("put")
        info = await self.inner.put(local_path, path, progress=progress)
        if self.corrupt:
            data = bytearray(Path(local_path).read_bytes())
            data[0] ^= 0x01
            bad = Path(local_path).with_name(Path(local_path).name + ".flipped")
            bad.write_bytes(bytes(data))
            await self.inner.put(bad, path)
            bad.unlink()
        return info

    async def get(
        self,
        path: str,
        local_path: Path | str | os.PathLike[str],
        *,
        sha256: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> ObjectInfo:
        self._count("get")
        return await self.inner.get(path, local_path, sha256=sha256, progress=progress)

    async def stat(self, path: str, *, verify: bool = False) -> ObjectInfo | None:
        self._count("stat")
        return await self.inner.stat(path, verify=verify)

    async def delete(self, path: str) -> None:
        self._count("delete")
        await self.inner.delete(path)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        async for obj in self.inner.list(prefix):
            yield obj


async def assert_no_orphans(
    pv: ProvenaClient, repos: Mapping[str, Repository], dataset_ids: Iterable[str]
) -> None:
    """Every object in each repository is one a file record points to; no temp file left."""
    recorded = await current_paths(pv, dataset_ids)
    listed = await listing(repos, recorded)
    assert {h: set(p) for h, p in listed.items()} == recorded
    for handle in recorded:
        repo = repos[handle]
        if isinstance(repo, PosixRepository):
            assert await repo.incomplete() == []
