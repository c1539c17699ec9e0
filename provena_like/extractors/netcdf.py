"""netCDF files: dimensions, variables and attributes, with netCDF4 (extra ``extract-netcdf``).

Reads every netCDF format (classic, 64-bit offset, CDF-5 and netCDF-4/HDF5) through the Unidata
library; only the header is read, never variable data. Groups (netCDF-4) are walked
breadth-first: at most ``max_groups`` groups, ``max_variables`` variables in all and
``max_attributes`` attributes per object. A file that is not netCDF, or whose header is
damaged, raises :class:`OSError`; a truncated classic file raises :class:`ValueError`.

``terms`` are the names of dimensions, variables, groups and attributes, and the values of the
CF ``standard_name`` attributes (``sea_water_temperature``), which are vocabulary words.
"""

from __future__ import annotations

import math
import struct
from collections import deque
from pathlib import Path
from typing import Any, BinaryIO

from provena_like.extractors._common import JSONValue, Terms, attributes, clean_text

__all__ = ["NetcdfExtractor", "classic_data_end"]

# nc_type -> bytes per element (classic formats, CDF-5 types included)
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 8, 11: 8}
_DIMENSION, _VARIABLE, _ATTRIBUTE = 0x0A, 0x0B, 0x0C
_STREAMING = 0xFFFFFFFF


class _Header:
    """A strict reader of a classic netCDF header: any read past the end raises."""

    def __init__(self, f: BinaryIO, version: int) -> None:
        self.f = f
        self.wide = version == 5  # CDF-5: 64-bit counts

    def bytes(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise ValueError("truncated netCDF header")
        return data

    def int32(self) -> int:
        return int(struct.unpack(">I", self.bytes(4))[0])

    def int64(self) -> int:
        return int(struct.unpack(">Q", self.bytes(8))[0])

    def count(self) -> int:
        return self.int64() if self.wide else self.int32()

    def name(self) -> None:
        self.bytes(-(-self.count() // 4) * 4)

    def attributes(self) -> None:
        tag, n = self.int32(), self.count()
        if tag not in (0, _ATTRIBUTE) or (tag == 0 and n):
            raise ValueError("damaged netCDF header (attribute list)")
        for _ in range(n):
            self.name()
            size = _TYPE_SIZES.get(self.int32())
            if size is None:
                raise ValueError("damaged netCDF header (attribute type)")
            self.bytes(-(-self.count() * size // 4) * 4)


def classic_data_end(f: BinaryIO) -> int | None:
    """Where the data of a classic netCDF file (CDF-1, -2 or -5) must end, from its header.

    The netCDF library reads a truncated classic header or data section without complaint
    (what is missing reads as zeros); this strict walk of the header raises on truncation or
    damage, and the returned size lets a caller check the data is all there. None for a
    file being streamed (record count not yet written).
    """
    magic = f.read(4)
    if magic[:3] != b"CDF" or magic[3] not in (1, 2, 5):
        raise ValueError("not a classic netCDF file")
    h = _Header(f, magic[3])
    numrecs = h.count()
    tag, n = h.int32(), h.count()
    if tag not in (0, _DIMENSION) or (tag == 0 and n):
        raise ValueError("damaged netCDF header (dimension list)")
    dims = []
    for _ in range(n):
        h.name()
        dims.append(h.count())
    h.attributes()
    tag, n = h.int32(), h.count()
    if tag not in (0, _VARIABLE) or (tag == 0 and n):
        raise ValueError("damaged netCDF header (variable list)")
    end = f.tell()
    records: list[tuple[int, int]] = []  # (begin, bytes per record) of record variables
    for _ in range(n):
        h.name()
        ids = [h.count() for _ in range(h.count())]
        h.attributes()
        size = _TYPE_SIZES.get(h.int32())
        h.count()  # vsize: 32-bit in CDF-1/2, so recomputed below
        begin = h.int64() if magic[3] in (2, 5) else h.int32()
        if size is None or any(i >= len(dims) for i in ids):
            raise ValueError("damaged netCDF header (variable)")
        shape = [dims[i] for i in ids]
        if shape and shape[0] == 0:  # the record dimension
            records.append((begin, math.prod(shape[1:]) * size))
        else:
            end = max(end, begin + math.prod(shape) * size)
    if records:
        if numrecs == _STREAMING and not h.wide:
            return None
        sizes = [r for _, r in records]
        recsize = sizes[0] if len(sizes) == 1 else sum(-(-r // 4) * 4 for r in sizes)
        end = max(end, min(b for b, _ in records) + numrecs * recsize)
    return end


class NetcdfExtractor:
    """netCDF structure: format, dimensions, variables (dims, shape, dtype, attributes).

    Args:
        max_variables: Variables listed at most (over all groups).
        max_groups: Groups (netCDF-4) visited at most.
        max_attributes: Attributes read per variable, group or file at most.

    Example:
        ```python
        from pathlib import Path

        import netCDF4

        from provena_like.extractors.netcdf import NetcdfExtractor

        with netCDF4.Dataset("sst.nc", "w") as ds:
            ds.createDimension("time", None)
            sst = ds.createVariable("sst", "f4", ("time",))
            sst.standard_name = "sea_surface_temperature"
        meta = NetcdfExtractor().extract(Path("sst.nc"))
        assert meta["dimensions"] == {"time": {"size": 0, "unlimited": True}}
        assert "sea_surface_temperature" in meta["terms"]
        ```
    """

    name = "netcdf"
    extensions = frozenset({".nc", ".nc4", ".cdf", ".netcdf"})
    mime_types = frozenset({"application/x-netcdf", "application/netcdf"})
    requires: tuple[str, ...] = ("netCDF4",)

    def __init__(
        self, *, max_variables: int = 1000, max_groups: int = 1000, max_attributes: int = 50
    ) -> None:
        self.max_variables = max_variables
        self.max_groups = max_groups
        self.max_attributes = max_attributes

    def extract(self, path: Path) -> dict[str, JSONValue]:
        """Describe the netCDF file at ``path`` (see the module)."""
        import netCDF4

        with path.open("rb") as f:
            classic = f.read(3) == b"CDF"
            if classic:
                f.seek(0)
                end = classic_data_end(f)
                if end is not None and end > path.stat().st_size:
                    raise ValueError(f"truncated netCDF file: its data ends at byte {end}")
        terms = Terms()
        variables: list[JSONValue] = []
        groups: list[JSONValue] = []
        truncated = False
        with netCDF4.Dataset(path, "r") as ds:
            root_attrs, cut = attributes(ds, self.max_attributes)
            truncated = cut
            terms.add(*root_attrs)
            dimensions = self._dimensions(ds, terms)
            queue: deque[tuple[str, Any]] = deque([("/", ds)])
            while queue:
                group_path, group = queue.popleft()
                if group is not ds:
                    if len(groups) >= self.max_groups:
                        truncated = True
                        break
                    attrs, cut = attributes(group, self.max_attributes)
                    truncated = truncated or cut
                    terms.add(group.name, *attrs)
                    groups.append(
                        {
                            "path": clean_text(group_path, 500),
                            "dimensions": self._dimensions(group, terms),
                            "attributes": attrs,
                        }
                    )
                for name, var in group.variables.items():
                    if len(variables) >= self.max_variables:
                        truncated = True
                        queue.clear()
                        break
                    info, cut = self._variable(f"{group_path.rstrip('/')}/{name}", var, terms)
                    variables.append(info)
                    truncated = truncated or cut
                queue.extend(
                    (f"{group_path.rstrip('/')}/{name}", child)
                    for name, child in group.groups.items()
                )
            return {
                "format": "netcdf",
                "data_model": str(ds.data_model),
                "file_format": str(ds.file_format),
                "dimensions": dimensions,
                "variables": variables,
                "groups": groups,
                "attributes": root_attrs,
                "truncated": truncated or terms.truncated,
                "terms": terms.as_json(),
            }

    @staticmethod
    def _dimensions(group: Any, terms: Terms) -> dict[str, JSONValue]:
        terms.add(*group.dimensions)
        return {
            clean_text(str(name), 200): {"size": len(dim), "unlimited": bool(dim.isunlimited())}
            for name, dim in group.dimensions.items()
        }

    def _variable(self, path: str, var: Any, terms: Terms) -> tuple[dict[str, JSONValue], bool]:
        attrs, cut = attributes(var, self.max_attributes)
        terms.add(var.name, *attrs)
        terms.add(attrs.get("standard_name"))
        info: dict[str, JSONValue] = {
            "path": clean_text(path, 500),
            "dimensions": [clean_text(str(d), 200) for d in var.dimensions],
            "shape": [int(n) for n in var.shape],
            "dtype": clean_text(str(var.dtype), 200),
            "attributes": attrs,
        }
        return info, cut
