"""Whether the bytes of registered files are what the uploader said, when the store won't tell.

A client uploads, then registers each file with its size and sha256. The server HEADs every
file first (:func:`~provena_like.server.datastore.manifest.head_files`): the size must match,
and so must the full-object SHA-256 the store keeps, if it keeps one. That is enough on a
store that *verifies* ``x-amz-checksum-sha256`` (SeaweedFS refuses a PUT whose bytes don't
match it). Other stores accept a wrong checksum (the JuiceFS gateway, moto), or keep and
return the uploader's value as it was sent (``rclone serve s3``): there, the sha256 in the
manifest would be only the uploader's word.

So the server knows which kind of store it has (:class:`UploadVerification`, made once at
start by :func:`upload_verification`: the setting ``store_verifies_checksums``, or else a
probe that puts a tiny object with a wrong checksum under :data:`PROBE_PREFIX` and sees
whether the store refuses it), and in the modes ``sample`` and ``all``
(:attr:`~provena_like.server.settings.S3Settings.verify_uploads`) it reads registered files
back and hashes them before it records anything (:func:`check_registered`): a file whose
bytes have another sha256 refuses the whole registration, 422 naming each such file. The
read is pinned to the ETag the HEAD saw (``If-Match``), which is the ETag the manifest
records, so the object checked is the object registered.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import anyio
from botocore.exceptions import BotoCoreError, ClientError

from provena_like.models.datastore import FileRegistration
from provena_like.server.errors import task_group, validation_error
from provena_like.server.settings import S3Settings
from provena_like.storage.direct import digest_object

from .storage import ObjectHead, ObjectStore, ObjectStoreError, is_missing

__all__ = [
    "PROBE_PREFIX",
    "UploadVerification",
    "VerifyMode",
    "check_registered",
    "probe_checksum_verification",
    "upload_verification",
]

log = logging.getLogger(__name__)

VerifyMode = Literal["store", "sample", "all"]

PROBE_PREFIX = ".provena-like/probe/"
"""Where the start-up probe puts its object (no dataset prefix starts with a dot)."""

_REFUSED_CHECKSUM = frozenset(
    {"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch"}
)
"""Error codes of a store that refused a PUT because its checksum didn't match the body."""

_READS_IN_FLIGHT = 4
"""Files the server reads back at once for one registration."""


@dataclass(frozen=True)
class UploadVerification:
    """How registered files are checked, decided once at start.

    Attributes:
        mode: ``store``: the store's checks only; ``sample``: the server also reads back
            ``sample_size`` files of each registration; ``all``: every file.
        store_verifies: whether the store refuses a wrong ``x-amz-checksum-sha256``.
        probed: whether ``store_verifies`` was found out by the start-up probe (else it
            was set).
        sample_size: the files of one registration read back in the ``sample`` mode.
    """

    mode: VerifyMode
    store_verifies: bool
    probed: bool
    sample_size: int

    def describe(self) -> str:
        """One line for the start-up log."""
        how = "probed" if self.probed else "as configured"
        store = "verifies" if self.store_verifies else "does not verify"
        checks = {
            "store": "the server trusts the store's checks",
            "sample": f"the server reads back {self.sample_size} file(s) of each registration",
            "all": "the server reads back every registered file",
        }[self.mode]
        return f"upload verification '{self.mode}': the store {store} checksums ({how}); {checks}"

    def chosen(self, files: Sequence[FileRegistration]) -> list[FileRegistration]:
        """The files of a registration the server reads back (a random sample, or all)."""
        if self.mode == "store":
            return []
        if self.mode == "all" or len(files) <= self.sample_size:
            return list(files)
        # the uploader can't know in advance which files will be read
        return secrets.SystemRandom().sample(list(files), self.sample_size)


async def probe_checksum_verification(store: ObjectStore) -> bool:
    """Whether the store refuses an object whose ``x-amz-checksum-sha256`` is wrong.

    Puts a few bytes with the checksum of other bytes under :data:`PROBE_PREFIX`, then
    deletes the object (if the store took it).

    Raises:
        ObjectStoreError: the store failed the PUT for another reason.
    """
    key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    body = b"provena-like checksum probe"
    wrong = base64.b64encode(hashlib.sha256(body + b" (not these bytes)").digest()).decode()
    try:
        await store.s3.put_object(Bucket=store.bucket, Key=key, Body=body, ChecksumSHA256=wrong)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in _REFUSED_CHECKSUM:
            return True
        raise ObjectStoreError("probe checksum verification", err) from err
    except BotoCoreError as err:
        raise ObjectStoreError("probe checksum verification", err) from err
    try:
        await store.s3.delete_object(Bucket=store.bucket, Key=key)
    except (ClientError, BotoCoreError):
        log.warning("could not delete the checksum probe object %s", key, exc_info=True)
    return False


async def upload_verification(store: ObjectStore, settings: S3Settings) -> UploadVerification:
    """Decide how registered files are checked (see :class:`UploadVerification`).

    ``store_verifies_checksums`` when set, else the probe's answer; a probe that fails
    counts as a store that doesn't verify (the server then checks for itself).
    """
    probed = settings.store_verifies_checksums is None
    if settings.store_verifies_checksums is not None:
        verifies = settings.store_verifies_checksums
    else:
        try:
            verifies = await probe_checksum_verification(store)
        except ObjectStoreError:
            log.warning(
                "the checksum probe failed; the store is taken as one that does not verify "
                "checksums",
                exc_info=True,
            )
            verifies = False
    mode: VerifyMode
    if settings.verify_uploads == "auto":
        mode = "store" if verifies else "sample"
    else:
        mode = settings.verify_uploads
    if mode == "store" and not verifies:
        log.warning(
            "verify_uploads='store' with a store that does not verify checksums: the sha256 of "
            "registered files is only the uploader's word"
        )
    return UploadVerification(
        mode=mode, store_verifies=verifies, probed=probed, sample_size=settings.verify_sample_size
    )


async def check_registered(
    store: ObjectStore,
    verification: UploadVerification,
    prefix: str,
    files: Sequence[FileRegistration],
    heads: Mapping[str, ObjectHead],
) -> None:
    """Read back the files :meth:`UploadVerification.chosen` picks; 422 naming any that differ.

    Each read is pinned to the ETag of its HEAD (``heads``, what the manifest will record).

    Raises:
        ServiceError: 422 naming each file whose bytes have another sha256 or size, or
            that changed or vanished while it was read.
        ObjectStoreError: the store failed a read.
    """
    chosen = verification.chosen(files)
    if not chosen:
        return
    index = {entry.path: i for i, entry in enumerate(files)}
    problems: dict[str, dict[str, Any]] = {}
    limiter = anyio.CapacityLimiter(_READS_IN_FLIGHT)
    hashing = anyio.CapacityLimiter(_READS_IN_FLIGHT)

    def problem(entry: FileRegistration, message: str, kind: str) -> None:
        field = f"files.{index[entry.path]}.path"
        problems[entry.path] = {"field": field, "message": message, "type": kind}

    async def one(entry: FileRegistration) -> None:
        head = heads[entry.path]
        async with limiter:
            try:
                digests = await digest_object(
                    store.requests, prefix, entry.path, hashing, if_match=head.etag
                )
            except ClientError as err:
                if is_missing(err):
                    problem(entry, f"{entry.path!r} vanished while the server read it", "missing")
                elif err.response.get("Error", {}).get("Code") == "PreconditionFailed":
                    problem(
                        entry,
                        f"{entry.path!r} was replaced while the server read it: register it "
                        "again once its upload is finished",
                        "object_changed",
                    )
                else:
                    raise ObjectStoreError(f"read {prefix + entry.path}", err) from err
                return
            except Exception as err:  # unreachable store, a body that broke off
                raise ObjectStoreError(f"read {prefix + entry.path}", err) from err
        if digests.size != entry.size or digests.sha256 != entry.sha256:
            problem(
                entry,
                f"the server read {entry.path!r} back from the store: its {digests.size} bytes "
                f"have sha256 {digests.sha256}, not the {entry.sha256} given; upload it again",
                "checksum_mismatch",
            )

    async with task_group() as group:
        for entry in chosen:
            group.start_soon(one, entry)
    if problems:
        paths = sorted(problems, key=index.__getitem__)
        named = ", ".join(repr(p) for p in paths[:5]) + (
            f" and {len(paths) - 5} more" if len(paths) > 5 else ""
        )
        raise validation_error(
            [problems[path] for path in paths],
            message=f"Nothing was registered: the server read back {named} from the store "
            "and the bytes are not the ones described (see details).",
        )
