"""Kinds of search terms from real extractor output: which names are columns, attributes,
HDF5 datasets and netCDF variables - from the full metadata (attach) and from the compact
copy the server keeps (migration 0017), alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest

from provena_like.crawler import Extraction, FileRecord, FileResult
from provena_like.crawler.attach import extracted_file
from provena_like.extractors.hdf5 import Hdf5Extractor
from provena_like.extractors.image import ImageExtractor
from provena_like.extractors.jsonfile import JsonExtractor
from provena_like.extractors.kinds import term_kinds
from provena_like.extractors.netcdf import NetcdfExtractor
from provena_like.extractors.tabular import ParquetExtractor, TabularExtractor
from provena_like.models.extracted import SEARCH_KINDS, SearchKind


def _kinds(extractor: str, path: Path, meta: dict[str, Any]) -> dict[str, list[str]]:
    """The kinds of a file as attached, checked equal to those read back from storage."""
    result = FileResult(
        record=FileRecord(source=f"local:{path.parent}", path=path.name),
        extractions=[Extraction(extractor=extractor, status="ok", metadata=meta)],
    )
    wire = extracted_file(result)
    assert set(wire.kinds) <= set(SEARCH_KINDS)
    assert term_kinds(wire.metadata, wire.terms) == wire.kinds  # what 0017 computes
    return dict(wire.kinds)


def test_csv_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("site, temperature\nA,1\n")
    assert _kinds("tabular", path, TabularExtractor().extract(path)) == {
        "column": ["site", "temperature"]
    }
    headless = tmp_path / "n.csv"
    headless.write_text("1,2\n3,4\n")
    assert _kinds("tabular", headless, TabularExtractor().extract(headless)) == {}


def test_parquet_columns(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"depth": [1], "salinity": [2.0]}), path)
    assert _kinds("parquet", path, ParquetExtractor().extract(path)) == {
        "column": ["depth", "salinity"]
    }


def test_hdf5_datasets_and_attributes(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f.attrs["instrument"] = "mesoSPIM"
        frames = f.create_dataset("raw/frames", data=[1, 2])
        frames.attrs["units"] = "counts"
    assert _kinds("hdf5", path, Hdf5Extractor().extract(path)) == {
        "attribute": ["instrument", "units"],
        "dataset": ["frames"],
    }  # the group "raw" is a term of no kind


def test_netcdf_variables_and_attributes(tmp_path: Path) -> None:
    netCDF4 = pytest.importorskip("netCDF4")
    path = tmp_path / "o.nc"
    with netCDF4.Dataset(path, "w") as ds:
        ds.title = "ocean"
        ds.createDimension("time", 1)
        sst = ds.createVariable("sst", "f4", ("time",))
        sst.units = "K"
        sst.standard_name = "sea_surface_temperature"
    assert _kinds("netcdf", path, NetcdfExtractor().extract(path)) == {
        "attribute": ["title", "units", "standard_name"],
        "variable": ["sst", "sea_surface_temperature"],
    }  # the dimension "time" is a term of no kind


def test_json_keys_at_any_depth(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('{"meta": {"units": "K"}, "rows": [{"temperature": 1}]}')
    assert _kinds("json", path, JsonExtractor().extract(path)) == {
        "attribute": ["meta", "rows", "units", "temperature"]
    }


def test_png_text_chunk_keys(tmp_path: Path) -> None:
    image = pytest.importorskip("PIL.Image")
    png = pytest.importorskip("PIL.PngImagePlugin")
    path = tmp_path / "i.png"
    info = png.PngInfo()
    info.add_text("Instrument", "scope")
    image.new("RGB", (2, 2)).save(path, pnginfo=info)
    assert _kinds("image", path, ImageExtractor().extract(path)) == {"attribute": ["Instrument"]}


def test_only_terms_get_a_kind_and_odd_metadata_is_ignored() -> None:
    meta: dict[str, Any] = {
        "tabular": {"columns": [{"name": " a "}, {"name": 3}, "x", {"type": "int"}]},
        "netcdf": {"variables": "odd", "attributes": ["not", "a", "mapping"]},
        "hdf5": {"datasets": [{"path": None}, {"path": "/g/b"}]},
        "json": {"schema": {"properties": {"c": {"items": {"properties": {"d": {}}}}}}},
        "unknown": {"columns": [{"name": "a"}]},
        "broken": "not a mapping",
    }
    assert term_kinds(meta, ["a", "b", "c", "d"]) == {
        "column": ["a"],
        "dataset": ["b"],
        "attribute": ["c", "d"],
    }
    assert term_kinds(meta, []) == {}


def test_the_kinds_are_the_models() -> None:
    assert SEARCH_KINDS == get_args(SearchKind) == ("column", "attribute", "dataset", "variable")
