"""Helpers of the ``pv.registration`` tests (importable: not a conftest)."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from provena_like import ProvenaClient

OLD = time.time() - 3600
"""An mtime an hour ago: the hash cache only trusts files not modified in the last seconds."""


@dataclass(frozen=True)
class SdkVocabulary:
    """Dataset types and a data format no other test uses; ``names`` match the types."""

    token: str
    extension: str
    types: tuple[str, ...]

    def name(self, kind: int) -> str:
        """A dataset file name of type ``kind`` (``_ibl_<token>k.table.<ext>``)."""
        return f"_ibl_{self.token}{kind}.table{self.extension}"


async def make_sdk_vocabulary(admin: ProvenaClient, kinds: int = 2) -> SdkVocabulary:
    """``kinds`` dataset types (patterns over a fresh object name) and one data format.

    ``admin`` is a registry admin's client (the vocabulary is written by admins only); the
    records are readable by everyone signed in, as a registry's vocabulary would be.
    """
    token = "o" + uuid.uuid4().hex[:8]
    extension = ".x" + uuid.uuid4().hex[:5]
    types: list[str] = []
    for kind in range(kinds):
        name = f"{token}{kind}.table"
        await admin.registry_client.create_item(
            {
                "subtype": "dataset_type",
                "record": {"name": name, "filename_pattern": f"*{name}*"},
                "general": ["metadata-read"],
            }
        )
        types.append(name)
    await admin.registry_client.create_item(
        {
            "subtype": "data_format",
            "record": {"name": f"fmt_{token}", "file_extension": extension},
            "general": ["metadata-read"],
        }
    )
    return SdkVocabulary(token, extension, tuple(types))


def write_file(path: Path, data: bytes, *, old: bool = True) -> Path:
    """Write ``data`` at ``path`` (parents made), mtime an hour ago unless ``old`` is False."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if old:
        os.utime(path, (OLD, OLD))
    return path
