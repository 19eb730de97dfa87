"""`without_location`: the EXIF GPS position leaves a photo; its other EXIF, its pixels and its size stay."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import ExifTags, Image

from hazardvision.images import decode_image
from hazardvision.photo_location import without_location

LATITUDE = (31.0, 14.0, 5.5)


def picture() -> Image.Image:
    pixels = np.random.default_rng(7).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "TestPhone"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", LATITUDE
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2026:05:01 08:30:00"
    return exif


def encoded(image_format: str, exif: bytes) -> bytes:
    buffer = io.BytesIO()
    options = {"lossless": True} if image_format == "WEBP" else {}
    picture().save(buffer, image_format, exif=exif, **options)
    return buffer.getvalue()


def big_endian_exif() -> bytes:
    """A Motorola-order ("MM") EXIF block by hand: IFD0 with Orientation and GPSInfo, a GPS IFD with a latitude."""
    ifd0, gps_ifd = 8, 8 + 2 + 2 * 12 + 4
    values = gps_ifd + 2 + 12 + 4
    tiff = b"MM\x00\x2a" + struct.pack(">I", ifd0)
    tiff += struct.pack(">H", 2) + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack(">HHII", 0x8825, 4, 1,
                                                                                           gps_ifd)
    tiff += struct.pack(">I", 0)
    tiff += struct.pack(">H", 1) + struct.pack(">HHII", 2, 5, 3, values) + struct.pack(">I", 0)
    tiff += struct.pack(">6I", 31, 1, 14, 1, 55, 10)
    return b"Exif\x00\x00" + tiff


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_without_location_removes_the_gps_ifd_and_keeps_the_rest(image_format):
    data = encoded(image_format, exif_with_gps().tobytes())
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    stripped = without_location(data)
    exif = Image.open(io.BytesIO(stripped)).getexif()
    assert ExifTags.IFD.GPSInfo not in exif and not exif.get_ifd(ExifTags.IFD.GPSInfo)
    assert (exif[ExifTags.Base.Orientation], exif[ExifTags.Base.Make]) == (6, "TestPhone")
    assert exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] == "2026:05:01 08:30:00"
    assert len(stripped) == len(data)
    assert np.array_equal(decode_image(stripped).pixels, decode_image(data).pixels)
    assert without_location(stripped) == stripped


def test_without_location_reads_motorola_byte_order():
    data = encoded("JPEG", big_endian_exif())
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    exif = Image.open(io.BytesIO(without_location(data))).getexif()
    assert ExifTags.IFD.GPSInfo not in exif and exif[ExifTags.Base.Orientation] == 6


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "BMP"])
def test_without_location_leaves_a_photo_without_gps_as_it_is(image_format):
    buffer = io.BytesIO()
    picture().save(buffer, image_format)
    assert without_location(buffer.getvalue()) == buffer.getvalue()


def test_without_location_leaves_unreadable_exif_as_it_is():
    data = encoded("JPEG", exif_with_gps().tobytes())
    start = data.index(b"Exif\x00\x00") + 6
    broken = data[:start + 4] + b"\xff\xff\xff\x00" + data[start + 8:]  # IFD0 points past the end
    assert without_location(broken) == broken
    assert without_location(b"\xff\xd8\xff\xe1\x00") == b"\xff\xd8\xff\xe1\x00"  # cut inside the segment
