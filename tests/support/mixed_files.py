"""A generated tree of mixed research files, good and corrupt, for extractor and crawler tests.

``build_mixed_tree(root)`` writes small files of every kind the content extractors read (CSV,
TSV, gzipped CSV, Parquet, JSON, JSON lines, PNG, JPEG, HDF5, netCDF-4, classic netCDF, zip,
tar, tar.gz), one corrupt file of each kind under ``corrupt/``, and a plain text file no
content extractor reads. It returns one :class:`MixedFile` per file saying which extractor
should read it, whether it is corrupt, and terms its result must contain.

Writing the files needs the ``extract`` extras (pyarrow, Pillow, h5py, netCDF4).
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CSV_TEXT = (
    "site,depth_m,temperature,sampled_on,calibrated\n"
    "A,1.5,21.4,2024-03-01,true\n"
    "B,3,,2024-03-02,false\n"
    "C,4.25,20.8,2024-03-03,true\n"
)
"""The table in ``tables/sites.csv`` (and, tab-separated, ``tables/sites.tsv``)."""
CSV_COLUMNS = ("site", "depth_m", "temperature", "sampled_on", "calibrated")
PARQUET_COLUMNS = ("station", "salinity", "observed_at")
PARQUET_ROWS = 5
JSON_DOC = {"survey": "reef-2024", "sites": [{"name": "A", "depth_m": 1.5}], "lead": None}
JSONL_RECORDS = [{"t": 0, "temperature": 21.5}, {"t": 1, "temperature": None, "flag": "gap"}]
IMAGE_SIZE = (48, 32)


@dataclass(frozen=True)
class MixedFile:
    """One file of the tree.

    Attributes:
        path: Relative to the tree's root (POSIX separators).
        kind: What it is (``"csv"``, ``"parquet"``, ``"png"``, ``"netcdf3"``, ...).
        extractor: The entry-point name of the extractor that reads it, or None.
        corrupt: Whether reading it must fail.
        terms: Terms the extractor's result must include (empty for corrupt files).
    """

    path: str
    kind: str
    extractor: str | None
    corrupt: bool = False
    terms: tuple[str, ...] = ()


def _csv(p: Path) -> None:
    p.write_text(CSV_TEXT)


def _tsv(p: Path) -> None:
    p.write_text(CSV_TEXT.replace(",", "\t"))


def _csv_gz(p: Path) -> None:
    p.write_bytes(gzip.compress(CSV_TEXT.encode(), mtime=0))


def _parquet(p: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "station": [f"S{i}" for i in range(PARQUET_ROWS)],
            "salinity": [35.0 + i / 10 for i in range(PARQUET_ROWS)],
            "observed_at": pa.array(list(range(PARQUET_ROWS)), pa.timestamp("s")),
        }
    )
    pq.write_table(table, p, row_group_size=2)


def _json(p: Path) -> None:
    p.write_text(json.dumps(JSON_DOC))


def _jsonl(p: Path) -> None:
    p.write_text("".join(json.dumps(r) + "\n" for r in JSONL_RECORDS))


def _png(p: Path) -> None:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "reef transect")
    Image.new("RGB", IMAGE_SIZE, (0, 128, 128)).save(p, pnginfo=info)


def _jpeg(p: Path) -> None:
    from PIL import ExifTags, Image

    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Nikon"
    exif[ExifTags.Base.Model] = "D850"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.ExposureTime] = 0.004
    image = Image.linear_gradient("L").resize(IMAGE_SIZE).convert("RGB")
    image.save(p, exif=exif, quality=90)


def _hdf5(p: Path) -> None:
    import h5py
    import numpy as np

    with h5py.File(p, "w") as f:
        f.attrs["instrument"] = "mesoSPIM"
        raw = f.create_group("raw")
        raw.create_dataset("frames", data=np.zeros((4, 8, 8), "u2"), chunks=(1, 8, 8))
        raw["frames"].attrs["exposure_ms"] = 20.0
        f.create_dataset("calibration/offsets", data=np.arange(6, dtype="f4"))
        f["latest"] = h5py.SoftLink("/raw/frames")


def _netcdf(p: Path, fmt: str = "NETCDF4") -> None:
    import netCDF4
    import numpy as np

    with netCDF4.Dataset(p, "w", format=fmt) as ds:
        ds.title = "sea surface temperature"
        ds.createDimension("time", None)
        ds.createDimension("lat", 3)
        sst = ds.createVariable("sst", "f4", ("time", "lat"))
        sst.standard_name = "sea_surface_temperature"
        sst.units = "K"
        sst[0:2, :] = np.full((2, 3), 290.0, "f4")
        lat = ds.createVariable("lat", "f8", ("lat",))
        lat[:] = [-10.0, 0.0, 10.0]


def _netcdf3(p: Path) -> None:
    _netcdf(p, "NETCDF3_CLASSIC")


def _zip(p: Path) -> None:
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("raw/site_a.csv", CSV_TEXT)
        z.writestr("README.txt", "survey bundle\n")


def _tar(p: Path, mode: str = "w") -> None:
    with tarfile.open(p, mode) as t:
        for name, data in (("raw/site_b.csv", CSV_TEXT.encode()), ("notes.md", b"# notes\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            t.addfile(info, io.BytesIO(data))


def _tar_gz(p: Path) -> None:
    _tar(p, "w:gz")


def _half(build: Callable[[Path], None], keep: int | None = None) -> Callable[[Path], None]:
    """A builder of a good file cut to half its size, or to ``keep`` bytes (a broken copy)."""

    def write(p: Path) -> None:
        build(p)
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2 if keep is None else keep])

    return write


def _garbage(p: Path) -> None:
    p.write_bytes(bytes(range(256)) * 8)


# (relative path, kind, extractor, builder, terms the result must have)
_GOOD: list[tuple[str, str, str, Callable[[Path], None], tuple[str, ...]]] = [
    ("tables/sites.csv", "csv", "tabular", _csv, CSV_COLUMNS),
    ("tables/sites.tsv", "tsv", "tabular", _tsv, CSV_COLUMNS),
    ("tables/sites.csv.gz", "csv.gz", "tabular", _csv_gz, CSV_COLUMNS),
    ("tables/stations.parquet", "parquet", "parquet", _parquet, PARQUET_COLUMNS),
    ("json/survey.json", "json", "json", _json, ("survey", "sites", "name", "depth_m")),
    ("json/readings.jsonl", "jsonl", "json", _jsonl, ("t", "temperature", "flag")),
    ("images/transect.png", "png", "image", _png, ("Title",)),
    ("images/photo.jpg", "jpeg", "image", _jpeg, ("Nikon", "D850")),
    ("arrays/scan.h5", "hdf5", "hdf5", _hdf5, ("raw", "frames", "instrument", "exposure_ms")),
    ("arrays/sst.nc", "netcdf", "netcdf", _netcdf, ("sst", "sea_surface_temperature", "lat")),
    ("arrays/sst_classic.nc", "netcdf3", "netcdf", _netcdf3, ("sst", "time", "title")),
    ("archives/bundle.zip", "zip", "archive", _zip, ("site_a.csv", "README.txt")),
    ("archives/bundle.tar", "tar", "archive", _tar, ("site_b.csv", "notes.md")),
    ("archives/bundle.tar.gz", "tar.gz", "archive", _tar_gz, ("site_b.csv",)),
]

GOOD_PATHS = tuple(rel for rel, *_ in _GOOD)
"""The good files' paths (each has a corrupt twin at ``corrupt/<path>``)."""

# kind -> how its corrupt twin is made
_CORRUPT: dict[str, Callable[[Path], None]] = {
    "csv": _garbage,
    "tsv": lambda p: p.write_text('a\tb\n1\t"never closed\n'),
    "csv.gz": _half(_csv_gz),
    "parquet": _half(_parquet),
    "json": lambda p: p.write_text('{"survey": "reef", "sites": [1, 2'),
    "jsonl": lambda p: p.write_text('{"t": 0}\n{"t": 1,,}\n'),
    "png": _half(_png),
    "jpeg": _half(_jpeg),
    "hdf5": _half(_hdf5),
    "netcdf": _half(_netcdf),
    "netcdf3": _half(_netcdf3),
    "zip": _half(_zip),
    "tar": _half(_tar, 600),  # inside the first member (half would cut only the padding)
    "tar.gz": _half(_tar_gz),
}


def build_mixed_tree(root: Path, *, corrupt: bool = True) -> list[MixedFile]:
    """Write the tree under ``root`` (created if needed); one entry per file written.

    Args:
        root: Where to write.
        corrupt: Also write the corrupt twin of each file under ``corrupt/``.
    """
    files: list[MixedFile] = []
    for rel, kind, extractor, build, terms in _GOOD:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        build(target)
        files.append(MixedFile(rel, kind, extractor, terms=terms))
        if corrupt:
            bad_rel = f"corrupt/{rel}"
            bad = root / bad_rel
            bad.parent.mkdir(parents=True, exist_ok=True)
            _CORRUPT[kind](bad)
            files.append(MixedFile(bad_rel, kind, extractor, corrupt=True))
    (root / "README.txt").write_text("a mixed tree of research files\n")
    files.append(MixedFile("README.txt", "text", None))
    return files
