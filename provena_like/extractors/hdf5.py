"""HDF5 files: groups, datasets (shape, dtype, chunks, compression) and attributes, with h5py.

Needs the ``extract-hdf5`` extra. The file is walked breadth-first from the root, visiting at
most ``max_objects`` groups, datasets and links and reading at most ``max_attributes``
attributes of each; no dataset values are read. Soft and external links are reported, not
followed (an external link names another file); an object reached again through a second
hard link is listed once. Attribute values are rendered by :func:`json_value` (long arrays
become their shape and dtype). A file that is not HDF5, or is damaged, raises :class:`OSError`.

``terms`` are the names of groups, datasets and attributes.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

from provena_like.extractors._common import JSONValue, Terms, attributes, clean_text

__all__ = ["Hdf5Extractor"]


class Hdf5Extractor:
    """HDF5 structure: groups, datasets and attributes, bounded.

    Args:
        max_objects: Groups, datasets and links visited at most.
        max_attributes: Attributes read per object at most.

    Example:
        ```python
        from pathlib import Path

        import h5py
        import numpy as np

        from provena_like.extractors.hdf5 import Hdf5Extractor

        with h5py.File("scan.h5", "w") as f:
            f.create_dataset("raw/frames", data=np.zeros((4, 8, 8), "u2"))
            f["raw"].attrs["instrument"] = "mesoSPIM"
        meta = Hdf5Extractor().extract(Path("scan.h5"))
        assert meta["datasets"][0]["shape"] == [4, 8, 8]
        assert "instrument" in meta["terms"]
        ```
    """

    name = "hdf5"
    extensions = frozenset({".h5", ".hdf5", ".he5"})
    mime_types = frozenset({"application/x-hdf5", "application/x-hdf"})
    requires: tuple[str, ...] = ("h5py",)

    def __init__(self, *, max_objects: int = 1000, max_attributes: int = 50) -> None:
        self.max_objects = max_objects
        self.max_attributes = max_attributes

    def extract(self, path: Path) -> dict[str, JSONValue]:
        """Describe the HDF5 file at ``path`` (see the module)."""
        import h5py

        groups: list[JSONValue] = []
        datasets: list[JSONValue] = []
        links: list[JSONValue] = []
        terms = Terms()
        truncated = False
        with h5py.File(path, "r", locking=False) as f:
            seen = {f.id}
            queue: deque[tuple[str, Any]] = deque([("/", f)])
            visited = 0
            spent = False  # the object budget
            while queue and not spent:
                group_path, group = queue.popleft()
                attrs, cut = attributes(group, self.max_attributes)
                terms.add(*attrs)
                groups.append({"path": clean_text(group_path, 500), "attributes": attrs})
                truncated = truncated or cut
                for key in group:
                    if visited >= self.max_objects:
                        spent = truncated = True
                        break
                    child_path = f"{group_path.rstrip('/')}/{key}"
                    link = group.get(key, getlink=True)
                    if isinstance(link, h5py.SoftLink | h5py.ExternalLink):
                        links.append(self._link(child_path, link))
                        visited += 1
                        continue
                    child = group[key]
                    if child.id in seen:
                        continue  # a second hard link to an object already listed
                    seen.add(child.id)
                    visited += 1
                    terms.add(key)
                    if isinstance(child, h5py.Group):
                        queue.append((child_path, child))
                    elif isinstance(child, h5py.Dataset):
                        info, cut = self._dataset(child_path, child, terms)
                        datasets.append(info)
                        truncated = truncated or cut
            result: dict[str, JSONValue] = {
                "format": "hdf5",
                "userblock_size": int(f.userblock_size),
                "groups": groups,
                "datasets": datasets,
                "links": links,
                "object_count": visited,
                "truncated": truncated or terms.truncated,
                "terms": terms.as_json(),
            }
        return result

    def _dataset(self, name: str, ds: Any, terms: Terms) -> tuple[dict[str, JSONValue], bool]:
        attrs, cut = attributes(ds, self.max_attributes)
        terms.add(*attrs)
        info: dict[str, JSONValue] = {
            "path": clean_text(name, 500),
            "shape": [int(n) for n in ds.shape] if ds.shape is not None else None,
            "dtype": clean_text(str(ds.dtype), 200),
            "chunks": [int(n) for n in ds.chunks] if ds.chunks else None,
            "compression": ds.compression,
            "attributes": attrs,
        }
        return info, cut

    @staticmethod
    def _link(name: str, link: Any) -> dict[str, JSONValue]:
        out: dict[str, JSONValue] = {"path": clean_text(name, 500)}
        if hasattr(link, "filename"):
            out.update(type="external", file=clean_text(str(link.filename), 500))
        out.setdefault("type", "soft")
        out["target"] = clean_text(str(link.path), 500)
        return out
