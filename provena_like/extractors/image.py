"""Images: size, mode, format, frames and an EXIF subset, with Pillow (extra ``extract-image``).

Only the header and metadata are read; the image is checked without being decoded at full
size: PNG chunks' checksums are verified, a JPEG is decoded at 1/8 scale, other formats are
decoded when they have at most ``max_decode_pixels`` pixels (else ``integrity`` says
``"header"``). A truncated or damaged file raises.

EXIF: camera, software, dates, exposure and orientation fields (:data:`EXIF_FIELDS`), never
GPS coordinates (``has_gps`` says whether the file holds them). Images over Pillow's
decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) raise Pillow's
``DecompressionBombError``; raise that limit in your process if you trust your files.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from provena_like.extractors._common import JSONValue, Terms, capped, clean_text, json_value

__all__ = ["EXIF_FIELDS", "ImageExtractor"]

EXIF_FIELDS = (
    "Make",
    "Model",
    "Software",
    "DateTime",
    "DateTimeOriginal",
    "Artist",
    "Copyright",
    "ImageDescription",
    "Orientation",
    "ExposureTime",
    "FNumber",
    "ISOSpeedRatings",
    "FocalLength",
    "LensModel",
    "XResolution",
    "YResolution",
    "ResolutionUnit",
)
"""The EXIF tags reported (base IFD and the Exif sub-IFD)."""

_TERM_FIELDS = ("Make", "Model", "Software", "LensModel")


class ImageExtractor:
    """Raster images (PNG, JPEG, TIFF, GIF, BMP, WebP): size, mode, format, EXIF subset.

    Args:
        max_decode_pixels: Formats without a cheap check are decoded up to this many pixels.
        max_text_chunks: Text chunks (PNG ``tEXt``/``iTXt``, ...) reported at most.

    Example:
        ```python
        from pathlib import Path

        from PIL import Image

        from provena_like.extractors.image import ImageExtractor

        Image.new("RGB", (64, 32), "teal").save("reef.png")
        meta = ImageExtractor().extract(Path("reef.png"))
        assert (meta["width"], meta["height"], meta["mode"]) == (64, 32, "RGB")
        ```
    """

    name = "image"
    extensions = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".bmp", ".webp"})
    mime_types = frozenset(
        {"image/png", "image/jpeg", "image/tiff", "image/gif", "image/bmp", "image/webp"}
    )
    requires: tuple[str, ...] = ("PIL",)

    def __init__(self, *, max_decode_pixels: int = 16_000_000, max_text_chunks: int = 50) -> None:
        self.max_decode_pixels = max_decode_pixels
        self.max_text_chunks = max_text_chunks

    def extract(self, path: Path) -> dict[str, JSONValue]:
        """Describe the image at ``path`` (see the module)."""
        from PIL import Image

        with warnings.catch_warnings():
            # no pixels are decoded at full size: the bomb warning has nothing to warn about
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                result: dict[str, JSONValue] = {
                    "format": im.format,
                    "width": width,
                    "height": height,
                    "mode": im.mode,
                    "frames": int(getattr(im, "n_frames", 1)),
                }
                terms = Terms()
                exif, has_gps = self._exif(im)
                terms.add(*(exif[k] for k in _TERM_FIELDS if k in exif))
                result["exif"] = exif
                result["has_gps"] = has_gps
                dpi = im.info.get("dpi")
                if dpi is not None:
                    result["dpi"] = json_value(dpi)
                text = getattr(im, "text", None)  # PNG text chunks (tEXt, zTXt, iTXt)
                text = {k: v for k, v in text.items() if isinstance(v, str)} if text else {}
                chunks, more = capped(text.items(), self.max_text_chunks)
                result["text"] = {clean_text(k, 200): clean_text(v) for k, v in chunks}
                terms.add(*(k for k, _ in chunks))
                result["integrity"] = self._check(im, path)
        result["truncated"] = more or terms.truncated
        result["terms"] = terms.as_json()
        return result

    @staticmethod
    def _exif(im: object) -> tuple[dict[str, JSONValue], bool]:
        from PIL import ExifTags, Image

        assert isinstance(im, Image.Image)
        exif = im.getexif()
        found: dict[str, JSONValue] = {}
        for ifd in (exif, exif.get_ifd(ExifTags.IFD.Exif)):
            for tag, value in ifd.items():
                tag_name = ExifTags.TAGS.get(tag)
                if tag_name in EXIF_FIELDS:
                    found[tag_name] = json_value(value)
        has_gps = bool(exif.get_ifd(ExifTags.IFD.GPSInfo))
        return {k: found[k] for k in EXIF_FIELDS if k in found}, has_gps

    def _check(self, im: object, path: Path) -> str:
        """Check the image data without a full decode; what was checked."""
        from PIL import Image

        assert isinstance(im, Image.Image)
        if im.format == "PNG":
            with Image.open(path) as fresh:  # verify() must come right after open()
                fresh.verify()  # every chunk's CRC, up to IEND
            return "checksums"
        if im.format == "JPEG":
            im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
            return "decoded"
        if im.width * im.height <= self.max_decode_pixels:
            im.load()
            return "decoded"
        return "header"
