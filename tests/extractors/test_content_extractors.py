"""The content extractors over a generated tree of mixed files, good and corrupt.

Good file -> the expected fields and terms, JSON-serialisable; corrupt file -> an exception
(never a hang, never a result that looks fine); every list is capped and says so.
"""

from __future__ import annotations

import gzip
import json
import mimetypes
import os
import struct
import subprocess
import sys
import zipfile
from fractions import Fraction
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from provena_like.extractors._common import json_value
from provena_like.extractors.archive import ArchiveExtractor, zip_directory
from provena_like.extractors.hdf5 import Hdf5Extractor
from provena_like.extractors.image import ImageExtractor
from provena_like.extractors.jsonfile import JsonExtractor
from provena_like.extractors.netcdf import NetcdfExtractor
from provena_like.extractors.tabular import ParquetExtractor, TabularExtractor
from tests.support.mixed_files import (
    CSV_COLUMNS,
    CSV_TEXT,
    GOOD_PATHS,
    IMAGE_SIZE,
    PARQUET_ROWS,
    MixedFile,
    build_mixed_tree,
)

EXTRACTORS: dict[str, Any] = {
    "tabular": TabularExtractor,
    "parquet": ParquetExtractor,
    "json": JsonExtractor,
    "image": ImageExtractor,
    "hdf5": Hdf5Extractor,
    "netcdf": NetcdfExtractor,
    "archive": ArchiveExtractor,
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[MixedFile]]:
    root = tmp_path_factory.mktemp("mixed")
    return root, build_mixed_tree(root)


def _files(corrupt: bool) -> list[str]:
    """The tree's files by path, known before the tree is built (for parametrize ids)."""
    return [f"corrupt/{rel}" for rel in GOOD_PATHS] if corrupt else list(GOOD_PATHS)


def _extract(tree: tuple[Path, list[MixedFile]], rel: str, **limits: Any) -> dict[str, Any]:
    root, files = tree
    entry = next(f for f in files if f.path == rel)
    assert entry.extractor is not None
    result = EXTRACTORS[entry.extractor](**limits).extract(root / rel)
    json.dumps(result, allow_nan=False)  # strictly JSON: no NaN, no bytes, no numpy types
    return result


def _suffix(name: str) -> str:
    return Path(name).suffix.lower()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("rel", _files(corrupt=False))
def test_good_file_gives_json_and_its_terms(tree: tuple[Path, list[MixedFile]], rel: str) -> None:
    entry = next(f for f in tree[1] if f.path == rel)
    result = _extract(tree, rel)
    assert set(entry.terms) <= set(result["terms"]), result["terms"]
    assert result["truncated"] is False
    assert entry.extractor is not None
    extractor = EXTRACTORS[entry.extractor]()
    # the crawler hands it this file by its extension or its MIME type
    mime = mimetypes.guess_type(rel)[0]
    assert _suffix(rel) in extractor.extensions or mime in extractor.mime_types


@pytest.mark.timeout(120)
@pytest.mark.parametrize("rel", _files(corrupt=True))
def test_corrupt_file_raises(tree: tuple[Path, list[MixedFile]], rel: str) -> None:
    with pytest.raises(Exception):  # noqa: B017 - any exception marks the file as failed
        _extract(tree, rel)


def test_the_tree_has_a_corrupt_twin_of_every_kind(tree: tuple[Path, list[MixedFile]]) -> None:
    root, files = tree
    good = {f.kind for f in files if not f.corrupt and f.extractor}
    bad = {f.kind for f in files if f.corrupt}
    assert good == bad
    assert {"csv", "parquet", "json", "png", "jpeg", "hdf5", "netcdf", "zip", "tar"} <= good
    assert all((root / f.path).is_file() for f in files)


def test_entry_points_name_these_classes() -> None:
    registered = {ep.name: ep for ep in entry_points(group="provena_like.extractors")}
    for name, cls in EXTRACTORS.items():
        assert registered[name].load() is cls
        extractor = cls()
        assert extractor.name == name
        assert extractor.extensions and all(
            e.startswith(".") and e == e.lower() for e in extractor.extensions
        )
        assert isinstance(extractor.requires, tuple)


def test_importing_the_modules_loads_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "import provena_like.extractors.tabular, provena_like.extractors.jsonfile\n"
        "import provena_like.extractors.image, provena_like.extractors.hdf5\n"
        "import provena_like.extractors.netcdf, provena_like.extractors.archive\n"
        "heavy = {'pyarrow', 'PIL', 'h5py', 'netCDF4', 'numpy'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --- tabular ---------------------------------------------------------------------------


def test_csv_columns_types_and_rows(tree: tuple[Path, list[MixedFile]]) -> None:
    result = _extract(tree, "tables/sites.csv")
    assert result["format"] == "csv" and result["delimiter"] == ","
    assert result["has_header"] is True and result["row_count"] == 3
    assert [(c["name"], c["type"], c["nullable"]) for c in result["columns"]] == [
        ("site", "string", False),
        ("depth_m", "number", False),
        ("temperature", "number", True),
        ("sampled_on", "date", False),
        ("calibrated", "boolean", False),
    ]
    assert result["terms"] == list(CSV_COLUMNS)


def test_tsv_and_gzipped_csv(tree: tuple[Path, list[MixedFile]]) -> None:
    tsv = _extract(tree, "tables/sites.tsv")
    assert (tsv["format"], tsv["delimiter"], tsv["row_count"]) == ("tsv", "\t", 3)
    gz = _extract(tree, "tables/sites.csv.gz")
    assert gz["compression"] == "gzip" and gz["row_count"] == 3
    assert gz["columns"] == _extract(tree, "tables/sites.csv")["columns"]


def test_csv_without_header_gets_numbered_columns_and_no_terms(tmp_path: Path) -> None:
    path = tmp_path / "values.csv"
    path.write_text("1,2.5\n3,4\n")
    result = TabularExtractor().extract(path)
    assert result["has_header"] is False and result["row_count"] == 2
    assert [c["name"] for c in result["columns"]] == ["column_1", "column_2"]
    assert result["terms"] == []


def test_csv_row_count_past_the_scan_budget_is_an_estimate(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("n,value\n" + "".join(f"{i},{i * 2}\n" for i in range(20_000)))
    result = TabularExtractor(max_scan_bytes=10_000).extract(path)
    assert result["row_count"] is None and result["truncated"] is True
    assert 0 < result["rows_scanned"] < 20_000
    assert 15_000 < result["row_count_estimate"] < 25_000
    assert TabularExtractor().extract(path)["row_count"] == 20_000


def test_csv_wide_table_lists_capped_columns(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(50)) + "\n" + ",".join("1" * 50) + "\n")
    result = TabularExtractor(max_columns=10).extract(path)
    assert result["column_count"] == 50 and len(result["columns"]) == 10
    assert result["truncated"] is True and len(result["terms"]) == 10


def test_csv_in_windows_1252_is_read(tmp_path: Path) -> None:
    path = tmp_path / "legacy.csv"
    path.write_bytes("station,temp °C\nKöln,21\n".encode("cp1252"))
    result = TabularExtractor().extract(path)
    assert result["encoding"] == "cp1252"
    assert result["terms"] == ["station", "temp °C"]


def test_parquet_schema_rows_and_row_groups(tree: tuple[Path, list[MixedFile]]) -> None:
    result = _extract(tree, "tables/stations.parquet")
    assert result["row_count"] == PARQUET_ROWS and result["row_group_count"] == 3
    assert [(c["name"], c["type"]) for c in result["columns"]] == [
        ("station", "string"),
        ("salinity", "double"),
        ("observed_at", "timestamp[ms]"),  # Parquet keeps ms, not s,
    ]


# --- json ------------------------------------------------------------------------------


def test_json_keys_and_schema(tree: tuple[Path, list[MixedFile]]) -> None:
    result = _extract(tree, "json/survey.json")
    assert result["keys"] == ["survey", "sites", "lead"] and result["top_level"] == "object"
    sites = result["schema"]["properties"]["sites"]
    assert sites["items"]["properties"]["depth_m"] == {"type": "number"}
    assert result["schema"]["properties"]["lead"] == {"type": "null"}


def test_jsonl_records_and_merged_schema(tree: tuple[Path, list[MixedFile]]) -> None:
    result = _extract(tree, "json/readings.jsonl")
    assert result["record_count"] == 2 and result["format"] == "jsonl"
    assert result["schema"]["properties"]["temperature"] == {"type": ["null", "number"]}


def test_json_bounds(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    doc: dict[str, Any] = {f"k{i}": i for i in range(30)}
    doc["nest"] = {"a": {"b": {"c": {"d": 1}}}}
    path.write_text(json.dumps(doc))
    cut = JsonExtractor(max_keys=5, max_depth=2).extract(path)
    assert len(cut["keys"]) == 5 and cut["key_count"] == 31 and cut["truncated"] is True
    assert len(cut["schema"]["properties"]) == 5
    big = JsonExtractor(max_bytes=10).extract(path)
    assert big == {"format": "json", "parsed": False, "top_level": "object", "truncated": True}
    path.write_bytes(b"\x00\x01" * 20)
    with pytest.raises(ValueError):
        JsonExtractor(max_bytes=10).extract(path)


# --- image -----------------------------------------------------------------------------


def test_png_size_mode_and_text(tree: tuple[Path, list[MixedFile]]) -> None:
    result = _extract(tree, "images/transect.png")
    assert (result["width"], result["height"]) == IMAGE_SIZE
    assert (result["format"], result["mode"], result["frames"]) == ("PNG", "RGB", 1)
    assert result["text"] == {"Title": "reef transect"}
    assert result["integrity"] == "checksums"


def test_jpeg_exif_subset_without_gps(tree: tuple[Path, list[MixedFile]]) -> None:
    result = _extract(tree, "images/photo.jpg")
    assert result["format"] == "JPEG" and result["integrity"] == "decoded"
    assert result["exif"] == {"Make": "Nikon", "Model": "D850", "ExposureTime": 0.004}
    assert result["has_gps"] is False


def test_png_with_a_damaged_chunk_raises(
    tree: tuple[Path, list[MixedFile]], tmp_path: Path
) -> None:
    data = bytearray((tree[0] / "images/transect.png").read_bytes())
    data[data.index(b"IDAT") + 8] ^= 0xFF  # one flipped byte: the CRC no longer matches
    path = tmp_path / "flipped.png"
    path.write_bytes(bytes(data))
    with pytest.raises(Exception):  # noqa: B017
        ImageExtractor().extract(path)


# --- hdf5 / netcdf ---------------------------------------------------------------------


def test_hdf5_groups_datasets_links(tree: tuple[Path, list[MixedFile]]) -> None:
    result = _extract(tree, "arrays/scan.h5")
    datasets = {d["path"]: d for d in result["datasets"]}
    frames = datasets["/raw/frames"]
    assert frames["shape"] == [4, 8, 8] and frames["dtype"] == "uint16"
    assert frames["chunks"] == [1, 8, 8] and frames["attributes"] == {"exposure_ms": 20.0}
    assert datasets["/calibration/offsets"]["dtype"] == "float32"
    assert result["links"] == [{"path": "/latest", "type": "soft", "target": "/raw/frames"}]
    assert result["groups"][0] == {"path": "/", "attributes": {"instrument": "mesoSPIM"}}


def test_hdf5_cycles_and_object_budget(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "loop.h5"
    with h5py.File(path, "w") as f:
        group = f.create_group("g")
        group["again"] = group  # a hard-link cycle
        for i in range(20):
            f[f"many/d{i:02d}"] = [i]
    full = Hdf5Extractor().extract(path)
    assert full["object_count"] == 22 and full["truncated"] is False
    cut = Hdf5Extractor(max_objects=5).extract(path)
    assert cut["object_count"] == 5 and cut["truncated"] is True


def test_netcdf4_dimensions_variables_attributes(tree: tuple[Path, list[MixedFile]]) -> None:
    result = _extract(tree, "arrays/sst.nc")
    assert result["data_model"] == "NETCDF4"
    assert result["dimensions"] == {
        "time": {"size": 2, "unlimited": True},
        "lat": {"size": 3, "unlimited": False},
    }
    sst = next(v for v in result["variables"] if v["path"] == "/sst")
    assert sst["dimensions"] == ["time", "lat"] and sst["shape"] == [2, 3]
    assert sst["attributes"] == {"standard_name": "sea_surface_temperature", "units": "K"}
    assert result["attributes"] == {"title": "sea surface temperature"}


@pytest.mark.parametrize("cut", [40, -4])
def test_truncated_classic_netcdf_raises(
    tree: tuple[Path, list[MixedFile]], tmp_path: Path, cut: int
) -> None:
    """The netCDF library reads a cut classic file as if the rest were zeros; we must not."""
    good = tree[0] / "arrays/sst_classic.nc"
    assert NetcdfExtractor().extract(good)["data_model"] == "NETCDF3_CLASSIC"
    path = tmp_path / "cut.nc"
    path.write_bytes(good.read_bytes()[:cut])
    with pytest.raises(ValueError, match="truncated netCDF"):
        NetcdfExtractor().extract(path)


def test_netcdf_variable_budget(tree: tuple[Path, list[MixedFile]]) -> None:
    result = NetcdfExtractor(max_variables=1).extract(tree[0] / "arrays/sst.nc")
    assert len(result["variables"]) == 1 and result["truncated"] is True


# --- archive ---------------------------------------------------------------------------


def test_zip_members_and_totals(tree: tuple[Path, list[MixedFile]]) -> None:
    result = _extract(tree, "archives/bundle.zip")
    assert result["member_count"] == 2 and result["bomb_suspected"] is False
    site = result["members"][0]
    assert (site["name"], site["size"], site["type"]) == ("raw/site_a.csv", len(CSV_TEXT), "file")
    assert result["total_size"] == len(CSV_TEXT) + len("survey bundle\n")


def test_tar_and_tar_gz_members(tree: tuple[Path, list[MixedFile]]) -> None:
    plain = _extract(tree, "archives/bundle.tar")
    gz = _extract(tree, "archives/bundle.tar.gz")
    assert plain["members"] == gz["members"]
    assert plain["members"][0] == {
        "name": "raw/site_b.csv",
        "size": len(CSV_TEXT),
        "type": "file",
        "modified": "2023-11-14T22:13:20+00:00",
    }
    assert gz["compression"] == "gzip" and gz["member_count"] == 2


def _overlapping_zip(path: Path) -> None:
    """A zip whose central directory lists one stored member 100 times (a zip bomb's trick)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a", b"\0" * 100_000)
    data = path.read_bytes()
    eocd = data.rindex(b"PK\x05\x06")
    _, _, _, _, _, cd_size, cd_offset, _ = struct.unpack_from("<4s4H2LH", data, eocd)
    entry = data[cd_offset : cd_offset + cd_size]
    copies = b"".join(entry[:-1] + bytes([65 + i % 26]) for i in range(100))  # a name each
    record = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 100, 100, len(copies), cd_offset, 0)
    path.write_bytes(data[:cd_offset] + copies + record)


def test_zip_bomb_is_listed_not_inflated(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    _overlapping_zip(path)
    result = ArchiveExtractor(max_members=10).extract(path)
    assert result["member_count"] == 100 and len(result["members"]) == 10
    assert result["total_size"] == 100 * 100_000
    assert result["bomb_suspected"] is True and result["truncated"] is True
    assert os.path.getsize(path) * 1000 < result["total_size"]  # listed, not inflated
    dir_only = ArchiveExtractor(max_central_directory=100).extract(path)
    assert dir_only == {
        "format": "zip",
        "member_count": 100,
        "members": [],
        "truncated": True,
        "terms": [],
    }


def test_unsafe_member_names_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as z:
        for name in ("ok.txt", "../up.txt", "/abs.txt", "a/../../b.txt"):
            z.writestr(name, "x")
    assert ArchiveExtractor().extract(path)["unsafe_paths"] == 3


def test_compressed_tar_stops_at_the_scan_budget(tree: tuple[Path, list[MixedFile]]) -> None:
    result = ArchiveExtractor(max_scan_bytes=100).extract(tree[0] / "archives/bundle.tar.gz")
    assert result["member_count"] == 1 and result["truncated"] is True


def test_lone_gzip_file_reports_its_original_name(
    tree: tuple[Path, list[MixedFile]], tmp_path: Path
) -> None:
    result = ArchiveExtractor().extract(tree[0] / "tables/sites.csv.gz")
    assert result["format"] == "gzip"
    assert result["members"] == [{"name": "sites.csv", "type": "file"}]
    renamed = tmp_path / "download.gz"
    with renamed.open("wb") as raw, gzip.GzipFile("readings.csv", "wb", fileobj=raw) as gz:
        gz.write(CSV_TEXT.encode())
    assert ArchiveExtractor().extract(renamed)["terms"] == ["readings.csv"]


def test_reference_page_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = Path(__file__).resolve().parents[2] / "docs/reference/extractors.md"
    blocks = page.read_text().split("```python\n")[1:]
    assert blocks
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block.split("```", 1)[0], str(page), "exec"), {})  # noqa: S102


def test_zip64_end_records_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "z64.zip"
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 2)  # zip64 records from 3 entries on
    with zipfile.ZipFile(path, "w") as z:
        for name in ("a", "b", "c"):
            z.writestr(name, name)
    monkeypatch.undo()
    data = path.read_bytes()
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data
    with path.open("rb") as f:
        assert zip_directory(f, len(data))[0] == 3
    assert ArchiveExtractor().extract(path)["member_count"] == 3
    path.write_bytes(data.replace(b"PK\x06\x06", b"XX\x06\x06"))  # the zip64 record, damaged
    with pytest.raises(zipfile.BadZipFile, match="zip64"):
        ArchiveExtractor().extract(path)


def test_multi_frame_and_undecoded_images(tmp_path: Path) -> None:
    from PIL import Image

    frames = [Image.new("RGB", (8, 8), color) for color in ("red", "green", "blue")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    gif = ImageExtractor().extract(tmp_path / "anim.gif")
    assert (gif["format"], gif["frames"], gif["integrity"]) == ("GIF", 3, "decoded")
    Image.new("L", (40, 40)).save(tmp_path / "big.tif")
    tif = ImageExtractor(max_decode_pixels=100).extract(tmp_path / "big.tif")
    assert tif["integrity"] == "header" and tif["width"] == 40


def test_attribute_values_are_bounded_json() -> None:
    import numpy as np

    assert json_value(float("nan")) == "NaN" and json_value(-np.inf) == "-Infinity"
    assert json_value(np.float32(0.5)) == 0.5 and json_value(np.bool_(True)) is True
    assert json_value(b"caf\xc3\xa9") == "café" and json_value(Fraction(1, 4)) == 0.25
    assert json_value(np.zeros((10, 10))) == {"shape": [10, 10], "dtype": "float64"}
    assert json_value(np.arange(3)) == [0, 1, 2]
    assert json_value(list(range(100)))[-1] == "…" and len(json_value("x" * 5000)) == 1001
    assert json_value({"a": {"b": {"c": {"d": {"e": 1}}}}}) == {
        "a": {"b": {"c": {"d": "{'e': 1}"}}}
    }


def test_a_huge_line_raises_instead_of_filling_memory(tmp_path: Path) -> None:
    table = tmp_path / "one_line.csv"
    table.write_text("a,b\n" + "1," * 5_000 + "\n")
    with pytest.raises(ValueError, match="line longer than 1000"):
        TabularExtractor(max_line_chars=1000).extract(table)
    assert TabularExtractor().extract(table)["column_count"] == 5_001
    records = tmp_path / "one_line.jsonl"
    records.write_text('{"a": 1}\n' + json.dumps({"b": "x" * 5_000}) + "\n")
    with pytest.raises(ValueError, match="line longer than 1000"):
        JsonExtractor(max_bytes=1000).extract(records)
    assert JsonExtractor().extract(records)["record_count"] == 2


def test_hdf5_links_count_against_the_object_budget(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "links.h5"
    with h5py.File(path, "w") as f:
        f["data"] = [1]
        for i in range(50):
            f[f"alias{i:02d}"] = h5py.SoftLink("/data")
    cut = Hdf5Extractor(max_objects=10).extract(path)
    assert len(cut["links"]) + len(cut["datasets"]) == 10 and cut["truncated"] is True
    assert len(Hdf5Extractor().extract(path)["links"]) == 50


def test_netcdf_group_budget(tmp_path: Path) -> None:
    import netCDF4

    path = tmp_path / "groups.nc"
    with netCDF4.Dataset(path, "w") as ds:
        for i in range(30):
            ds.createGroup(f"g{i:02d}").createGroup("inner")
    cut = NetcdfExtractor(max_groups=7).extract(path)
    assert len(cut["groups"]) == 7 and cut["truncated"] is True
    full = NetcdfExtractor().extract(path)
    assert len(full["groups"]) == 60 and full["groups"][-1]["path"] == "/g29/inner"


def test_basic_takes_a_path_as_text_or_path(tmp_path: Path) -> None:
    from provena_like.extractors.basic import BasicExtractor

    target = tmp_path / "data.bin"
    target.write_bytes(b"test")
    basic = BasicExtractor(md5=True)
    as_text = basic.extract(str(target))
    assert as_text == basic.extract(target)
    assert as_text["size"] == 4 and str(as_text["sha256"]).startswith("9f86d081884c")
    with pytest.raises(ValueError, match="not a regular file"):
        basic.extract(str(tmp_path))
