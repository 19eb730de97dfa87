"""Safe decoding: malformed and unusual photos give a domain error or the right pixels."""

from __future__ import annotations

import dataclasses
import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from hazardvision.errors import ImageTooLarge, InvalidImage, UnsupportedAspectRatio
from hazardvision.images import DECODE_BUDGET_FACTOR, DEFAULT_MAX_PIXELS, decode_image, load_image, read_header


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, followed by a token of pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def jpeg_with_declared_size(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF header is patched to declare another size."""
    data = bytearray(encode(Image.new("RGB", (8, 8), "red"), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.fixture(scope="module")
def photo(real_photo: Path) -> Image.Image:
    """A real site photo, cropped to a non-square shape so that rotation is visible."""
    with Image.open(real_photo) as image:
        return image.convert("RGB").crop((0, 0, 400, 300))


def bgr(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))[:, :, ::-1]


def small_jpeg() -> bytes:
    return encode(Image.new("RGB", (64, 48), (10, 120, 200)), "JPEG")


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", InvalidImage, "empty"),
        (b"hello, this is a text file\n" * 20, InvalidImage, "not a recognised image"),
        (bytes(range(256)) * 8, InvalidImage, "not a recognised image"),
        (small_jpeg()[: len(small_jpeg()) // 2], InvalidImage, "corrupt or truncated"),
        (encode(Image.new("RGB", (64, 64), "blue"), "PNG")[:-60], InvalidImage, "corrupt or truncated"),
        (encode(Image.new("RGB", (8, 8)), "GIF"), InvalidImage, "unsupported image format GIF"),
        (png_header_only(9000, 9000), ImageTooLarge, "9000x9000 .* above the limit"),
        (png_header_only(20000, 20000), ImageTooLarge, "far above the limit"),
        (jpeg_with_declared_size(20000, 20000), ImageTooLarge, "far above the limit"),
        (jpeg_with_declared_size(8000, 8000), ImageTooLarge, "8000x8000 .* above the limit"),
    ],
    ids=["zero-bytes", "text", "random-bytes", "truncated-jpeg", "truncated-png", "gif", "png-81mp-header",
         "png-400mp-header", "jpeg-400mp-header", "jpeg-64mp-header"],
)
def test_decode_image_malformed_input_raises_domain_error(data, error, message):
    with pytest.raises(error, match=message):
        decode_image(data)


def test_decode_image_pixel_limit_is_configurable():
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ImageTooLarge, match="100x100"):
        decode_image(data, max_pixels=9_999)
    assert decode_image(data, max_pixels=10_000).width == 100


def test_load_image_missing_file_is_invalid_image(tmp_path):
    with pytest.raises(InvalidImage, match="cannot read"):
        load_image(tmp_path / "nope.jpg")


def test_decode_image_one_pixel_photo_decodes():
    decoded = decode_image(encode(Image.new("RGB", (1, 1), (0, 0, 255)), "PNG"))
    assert decoded.pixels.shape == (1, 1, 3)
    assert decoded.pixels[0, 0].tolist() == [255, 0, 0]  # BGR


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "WEBP"])
def test_decode_image_lossless_formats_are_exact(photo, fmt):
    options = {"lossless": True} if fmt == "WEBP" else {}
    decoded = decode_image(encode(photo, fmt, **options))
    assert decoded.format == fmt
    np.testing.assert_array_equal(decoded.pixels, bgr(photo))


def test_decode_image_alpha_channel_is_dropped(photo):
    rgba = photo.copy()
    rgba.putalpha(255)
    np.testing.assert_array_equal(decode_image(encode(rgba, "PNG")).pixels, bgr(photo))


def test_decode_image_sixteen_bit_png_matches_original(photo):
    wide = bgr(photo).astype(np.uint16) * 257
    ok, data = cv2.imencode(".png", wide)
    assert ok
    decoded = decode_image(data.tobytes())
    assert np.abs(decoded.pixels.astype(int) - bgr(photo).astype(int)).max() <= 1


def test_decode_image_sixteen_bit_grayscale_png_is_scaled_to_eight_bits(photo):
    gray = np.asarray(photo.convert("L"))
    ok, data = cv2.imencode(".png", gray.astype(np.uint16) * 257)
    assert ok
    decoded = decode_image(data.tobytes())
    np.testing.assert_array_equal(decoded.pixels[:, :, 0], gray)
    np.testing.assert_array_equal(decoded.pixels[:, :, 0], decoded.pixels[:, :, 2])


def test_decode_image_grayscale_jpeg_becomes_three_channels(photo):
    decoded = decode_image(encode(photo.convert("L"), "JPEG", quality=95))
    assert decoded.pixels.shape == (300, 400, 3)


def test_decode_image_cmyk_jpeg_matches_original(photo):
    decoded = decode_image(encode(photo.convert("CMYK"), "JPEG", quality=95))
    difference = np.abs(decoded.pixels.astype(int) - bgr(photo).astype(int))
    assert difference.mean() < 3


@pytest.mark.parametrize(
    ("orientation", "stored"),
    [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270), (3, Image.Transpose.ROTATE_180)],
)
def test_decode_image_applies_exif_orientation(photo, orientation, stored):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(photo.transpose(stored), "JPEG", quality=95, exif=exif.tobytes())
    decoded = decode_image(data)
    assert (decoded.width, decoded.height) == photo.size
    difference = np.abs(decoded.pixels.astype(int) - bgr(photo).astype(int))
    assert difference.mean() < 3


def test_decode_image_hashes_the_bytes(real_photo):
    import hashlib

    data = real_photo.read_bytes()
    assert decode_image(data).sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.99])
def test_decode_image_truncated_real_photo_raises(real_photo, keep):
    data = real_photo.read_bytes()
    with pytest.raises(InvalidImage, match="corrupt or truncated"):
        decode_image(data[: int(len(data) * keep)])


def test_decode_image_unaffected_by_ultralytics_wrapping_pillow_open():
    pytest.importorskip("ultralytics", reason="checks the wrapper ultralytics installs on import")
    import ultralytics.utils.patches  # noqa: F401  (replaces PIL.Image.open)

    assert Image.open.__module__ != "PIL.Image"
    with pytest.raises(InvalidImage, match="not a recognised image"):
        decode_image(b"plain text, not a photo\n" * 20)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_decode_image_damaged_exif_still_decodes(photo, fmt):
    exif = Image.Exif()
    exif[0x0112] = 6
    damaged = exif.tobytes()[:-7] + b"\xff" * 7
    data = encode(photo, fmt, exif=damaged, **({"quality": 95} if fmt == "JPEG" else {}))
    decoded = decode_image(data)
    assert {decoded.width, decoded.height} == {400, 300}


# -- bounded decoding: the header is checked before any pixel is decoded


def png_of(pixels: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", pixels)
    assert ok
    return data.tobytes()


@pytest.mark.parametrize("size", [(60000, 1), (1, 60000), (2100, 100)], ids=["60000x1", "1x60000", "21-to-1"])
def test_decode_image_extreme_aspect_ratio_is_refused_before_decoding(size):
    width, height = size
    data = png_of(np.zeros((height, width), np.uint8))
    assert len(data) < 1000  # what a client sends: a few hundred bytes
    with pytest.raises(UnsupportedAspectRatio, match=f"{width}x{height} .* up to 20:1"):
        decode_image(data)


def test_decode_image_aspect_ratio_limit_is_inclusive_and_configurable():
    data = png_of(np.zeros((100, 2000), np.uint8))
    assert decode_image(data).pixels.shape == (100, 2000, 3)
    with pytest.raises(UnsupportedAspectRatio, match="up to 10:1"):
        decode_image(data, max_aspect_ratio=10)


@pytest.mark.parametrize(
    ("pixels", "described"),
    [(np.zeros((300, 400), np.uint16), "400x300 16-bit grayscale PNG"),
     (np.zeros((300, 400, 4), np.uint16), "400x300 16-bit RGBA/CMYK PNG"),
     (np.zeros((300, 400, 3), np.uint8), "400x300 8-bit RGB PNG")],
    ids=["gray16", "rgba16", "rgb8"],
)
def test_read_header_names_size_bit_depth_and_channels(pixels, described):
    header = read_header(png_of(pixels))
    assert header.describe() == described
    assert header.output_bytes == 400 * 300 * 3


def test_decode_image_over_its_memory_budget_is_refused_naming_the_photo():
    data = png_of(np.zeros((1000, 1000), np.uint16))
    with pytest.raises(ImageTooLarge, match=r"1000x1000 16-bit grayscale PNG .* memory budget of 4 MiB per photo"):
        decode_image(data, max_decode_bytes=4 * 2**20)
    assert decode_image(data, max_decode_bytes=8 * 2**20).width == 1000


def test_decode_image_default_budget_admits_every_photo_up_to_the_pixel_limit():
    side = int(DEFAULT_MAX_PIXELS**0.5)
    for pixels in (np.zeros((64, 64), np.uint16), np.zeros((64, 64, 3), np.uint8)):
        header = dataclasses.replace(read_header(png_of(pixels)), width=side, height=side)
        assert header.decode_bytes <= DECODE_BUDGET_FACTOR * header.output_bytes


# Each case builds a 4000x4000 photo (small on disk: zeros compress) in a fresh interpreter, resets its peak RSS,
# decodes, and prints the peak over the baseline (Linux: /proc/self/clear_refs and VmHWM).
_MEASURE = """
import io, sys, numpy as np, cv2
from PIL import Image
from hazardvision.images import decode_image, read_header

side = 4000
def pillow(array, fmt, **options):
    buffer = io.BytesIO()
    (Image.fromarray(array) if fmt != "CMYK" else Image.fromarray(array).convert("CMYK")).save(
        buffer, "JPEG" if fmt == "CMYK" else fmt, **options)
    return buffer.getvalue()
zeros = np.zeros
photos = {
    "png-16-bit-gray": lambda: cv2.imencode(".png", zeros((side, side), np.uint16))[1].tobytes(),
    "png-16-bit-rgba": lambda: cv2.imencode(".png", zeros((side, side, 4), np.uint16))[1].tobytes(),
    "webp": lambda: pillow(zeros((side, side, 3), np.uint8), "WEBP", lossless=True),
    "tiff-32-bit-gray": lambda: pillow(zeros((side, side), np.int32) + 1000, "TIFF", compression="tiff_deflate"),
    "tiff-rgb": lambda: pillow(zeros((side, side, 3), np.uint8), "TIFF", compression="tiff_deflate"),
    "jpeg-cmyk": lambda: pillow(zeros((side, side, 3), np.uint8), "CMYK"),
}
data = photos[sys.argv[1]]()
header = read_header(data)
def status(key):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(key))
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")
base = status("VmRSS")
decoded = decode_image(data)
print(len(data), status("VmHWM") - base, header.decode_bytes, decoded.pixels.nbytes)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="measures peak memory through Linux's /proc")
@pytest.mark.parametrize("photo_kind", ["png-16-bit-gray", "png-16-bit-rgba", "webp", "tiff-32-bit-gray", "tiff-rgb",
                                        "jpeg-cmyk"])
def test_decode_image_peak_memory_stays_within_its_budget(photo_kind):
    run = subprocess.run([sys.executable, "-c", _MEASURE, photo_kind], capture_output=True, text=True, timeout=120,
                         check=True)
    size, peak, estimate, output = map(int, run.stdout.split())
    assert output == 4000 * 4000 * 3
    assert size < 1_000_000  # small on disk, 48 MB decoded
    assert peak <= estimate + 4 * 2**20, f"peak {peak / output:.2f}x the 8-bit size, estimated {estimate / output:.2f}x"
    assert estimate <= DECODE_BUDGET_FACTOR * output


def exif_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


T = Image.Transpose
STORED = {1: None, 2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM, 5: T.TRANSPOSE, 6: T.ROTATE_90,
          7: T.TRANSVERSE, 8: T.ROTATE_270}
"""EXIF orientation -> how a camera stores an upright picture with that tag (the inverse of what shows it upright)."""


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF", "JPEG", "CMYK-JPEG"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_decode_image_every_exif_orientation_gives_the_upright_photo(photo, fmt, orientation):
    turn = STORED[orientation]
    stored = photo if turn is None else photo.transpose(turn)
    stored = stored.convert("CMYK") if fmt == "CMYK-JPEG" else stored
    options: dict[str, object] = {"lossless": True} if fmt == "WEBP" else {"quality": 95} if "JPEG" in fmt else {}
    decoded = decode_image(encode(stored, fmt.removeprefix("CMYK-"), exif=exif_orientation(orientation), **options))
    assert (decoded.width, decoded.height) == photo.size
    assert np.abs(decoded.pixels.astype(int) - bgr(photo).astype(int)).mean() < 3


def test_decode_image_truncated_webp_raises():
    data = encode(Image.new("RGB", (64, 64), "blue"), "WEBP", lossless=True)
    with pytest.raises(InvalidImage, match="corrupt or truncated"):
        decode_image(data[: len(data) // 2])
