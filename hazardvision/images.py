"""Safe decoding of site photos into 8-bit BGR arrays.

Every photo passes here before any model sees it: the format is sniffed from the bytes, and the
header (size, bit depth, channels) is checked before any pixel is decoded: the pixel count
(decompression bombs), the aspect ratio (a strip the detector cannot letterbox) and the memory
the decode will take. EXIF orientation is applied, and grayscale, palette, alpha, 16-bit and
CMYK photos become 8-bit BGR.

Memory: a decode holds at most `DECODE_BUDGET_FACTOR` times the 8-bit BGR size of the photo it
returns. PNG (any bit depth) and complete JPEG are decoded by OpenCV straight into 8 bits;
other photos are decoded by Pillow and converted a strip of rows at a time, so no full-size
intermediate wider than Pillow's own buffer (at most 4 bytes a pixel) ever exists.
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from hazardvision.errors import ImageTooLarge, InvalidImage, UnsupportedAspectRatio

ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF"})
DEFAULT_MAX_PIXELS = 60_000_000
"""About a 60-megapixel photo: above any phone camera's default mode, far below a bomb."""
DEFAULT_MAX_ASPECT_RATIO = 20.0
"""Longest side over shortest side. Letterboxed into a 640-pixel detector input, a 20:1 photo keeps a 32-pixel
short side (about the smallest object the packs find); phone panoramas stay well under it."""
DECODE_BUDGET_FACTOR = 3.0
"""A decode holds at most this many times the 8-bit BGR size of the photo it returns (tests/test_images.py measures
the peak of every decode path)."""
OPENCV_DECODE_FACTOR = 2.2
"""OpenCV's decode peaks at about twice its 8-bit BGR output (measured: 2.02 for 8- and 16-bit PNG, 2.14 for WebP)."""
STRIP_BYTES = 4 * 1024 * 1024
"""Pillow's pixels are converted this much at a time."""

BGRImage = NDArray[np.uint8]

_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
"""PNG colour type -> channels as stored (3: palette indices)."""
_PNG_END = b"IEND\xaeB`\x82"
_PILLOW_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
"""Bytes a pixel of Pillow's own buffer; every other mode takes 4 (RGB is stored as RGBX)."""


@dataclass(frozen=True)
class DecodedImage:
    """A decoded photo: `pixels` is `(height, width, 3)` uint8 BGR, upright."""

    pixels: BGRImage
    sha256: str
    format: str

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


@dataclass(frozen=True)
class ImageHeader:
    """What a photo's header says, before any pixel is decoded."""

    format: str
    width: int
    height: int
    bits: int
    """Bits per sample as stored (1 to 32)."""
    channels: int
    """Samples per pixel as stored (1 for palette photos)."""
    opencv: bool
    """Decoded by OpenCV (PNG, complete JPEG) rather than by Pillow."""
    pillow_bytes_per_pixel: int

    @property
    def output_bytes(self) -> int:
        """The size of the decoded photo: 8-bit BGR."""
        return self.width * self.height * 3

    @property
    def decode_bytes(self) -> int:
        """The most memory its decode holds at once (decoder buffer and output)."""
        if self.opencv:
            return round(OPENCV_DECODE_FACTOR * self.output_bytes)
        # Pillow's buffer, the output and the strips in flight, then (Pillow's freed) a rotated copy of the output.
        return max(self.width * self.height * self.pillow_bytes_per_pixel + self.output_bytes + 6 * STRIP_BYTES,
                   2 * self.output_bytes)

    def describe(self) -> str:
        kind = {1: "grayscale", 2: "grayscale+alpha", 3: "RGB", 4: "RGBA/CMYK"}.get(self.channels, "multi-channel")
        return f"{self.width}x{self.height} {self.bits}-bit {kind} {self.format}"


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                 max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO,
                 max_decode_bytes: int | None = None) -> DecodedImage:
    """Decode photo bytes, or raise `InvalidImage` / `ImageTooLarge` / `UnsupportedAspectRatio` naming the problem.

    `max_decode_bytes` bounds the memory one decode may hold; by default `DECODE_BUDGET_FACTOR` times the 8-bit
    BGR size of a photo of `max_pixels`.
    """
    if not data:
        raise InvalidImage("the image is empty (0 bytes); send the photo file's contents")
    sha256 = hashlib.sha256(data).hexdigest()
    budget = max_decode_bytes if max_decode_bytes is not None else round(DECODE_BUDGET_FACTOR * 3 * max_pixels)
    image_format = "image"
    try:
        with warnings.catch_warnings():
            # Our own limit below is the one that counts; Pillow's bomb warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _pillow_open()(io.BytesIO(data)) as image:
                image_format = image.format or "unknown"
                header = _header(data, image)
                _check(header, max_pixels=max_pixels, max_aspect_ratio=max_aspect_ratio, budget=budget)
                pixels = _decode_opencv(data, header)  # which applies EXIF orientation itself
                orientation = 1
                if pixels is None:
                    pixels = _pillow_to_bgr(image)
                    orientation = _orientation(image)  # once loaded: Pillow turns a TIFF itself, and drops its tag
            del image  # Pillow's buffer goes before a rotated copy of the pixels is made
        pixels = _upright(pixels, orientation)
    except Image.DecompressionBombError as error:
        # Pillow's own guard fires while reading headers far above any limit we would allow.
        raise ImageTooLarge(
            f"the image header declares a size far above the limit of {max_pixels / 1e6:.1f} megapixels "
            "(a possible decompression bomb); resize it before sending"
        ) from error
    except (UnidentifiedImageError, ImportError) as error:
        # ImportError: a wrapped Image.open (see _pillow_open) failed to load an optional plugin.
        raise InvalidImage(
            "the data is not a recognised image; send a JPEG, PNG, WebP, BMP or TIFF photo"
        ) from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        # Pillow reports truncated and corrupt files as OSError (sometimes SyntaxError/ValueError).
        raise InvalidImage(f"the {image_format} image is corrupt or truncated: {error}") from error
    return DecodedImage(pixels=pixels, sha256=sha256, format=image_format)


def load_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Read and decode a photo file; a missing or unreadable file is an `InvalidImage` too."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise InvalidImage(f"cannot read {path}: {error.strerror or error}") from error
    return decode_image(data, max_pixels=max_pixels)


def read_header(data: bytes) -> ImageHeader:
    """The header of photo bytes (no pixel decoded), or `InvalidImage` when they are not a photo we take."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _pillow_open()(io.BytesIO(data)) as image:
                return _header(data, image)
    except Image.DecompressionBombError as error:
        raise ImageTooLarge("the image header declares a size far above any limit (a possible decompression "
                            "bomb); resize it before sending") from error
    except (UnidentifiedImageError, ImportError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise InvalidImage("the data is not a recognised image; send a JPEG, PNG, WebP, BMP or TIFF photo") \
            from error


def _pillow_open() -> Callable[[io.BytesIO], Image.Image]:
    """Pillow's own `Image.open`.

    ultralytics, once imported, replaces `PIL.Image.open` with a wrapper that, on a file Pillow
    cannot identify, tries to fetch and register a HEIF plugin; it keeps Pillow's function in its
    module as `_image_open`. Decoding must not depend on whether some other library was imported.
    """
    opener = Image.open
    if opener.__module__ == Image.__name__:
        return opener
    original = getattr(opener, "__globals__", {}).get("_image_open")
    return original if callable(original) and getattr(original, "__module__", None) == Image.__name__ else opener


def _header(data: bytes, image: Image.Image) -> ImageHeader:
    image_format = image.format or "unknown"
    if image_format not in ACCEPTED_FORMATS:
        raise InvalidImage(f"unsupported image format {image_format}; send JPEG, PNG, WebP, BMP or TIFF")
    width, height = image.size
    mode = image.mode
    if image_format == "PNG" and len(data) >= 26:  # IHDR comes first: bit depth at byte 24, colour type at 25
        bits, channels = data[24], _PNG_CHANNELS.get(data[25], len(image.getbands()))
    else:
        rawmode = _rawmode(image)
        bits = 1 if mode == "1" else 16 if ";16" in mode or ";16" in rawmode else 32 if mode in {"I", "F"} else 8
        channels = len(image.getbands())
    opencv = _complete(data, image_format) and (image_format != "JPEG" or mode in {"RGB", "L"})
    return ImageHeader(format=image_format, width=width, height=height, bits=bits, channels=channels,
                       opencv=opencv, pillow_bytes_per_pixel=_PILLOW_BYTES_PER_PIXEL.get(mode, 4))


def _rawmode(image: Image.Image) -> str:
    """How the file stores its pixels, as Pillow names it (e.g. "RGB;16B" for 16-bit RGB); else the mode."""
    tile = getattr(image, "tile", None)  # an ImageFile's (every opened photo's)
    args = tile[0][3] if tile else None
    if isinstance(args, tuple) and args:
        args = args[0]
    return args if isinstance(args, str) else image.mode


def _check(header: ImageHeader, *, max_pixels: int, max_aspect_ratio: float, budget: int) -> None:
    width, height = header.width, header.height
    if width * height > max_pixels:
        raise ImageTooLarge(_too_large(width, height, max_pixels))
    if width < 1 or height < 1:
        raise InvalidImage(f"the image has no pixels ({width}x{height})")
    ratio = max(width, height) / min(width, height)
    if ratio > max_aspect_ratio:
        raise UnsupportedAspectRatio(
            f"the image is {width}x{height} pixels, an aspect ratio of {ratio:.0f}:1; the detector takes photos up "
            f"to {max_aspect_ratio:g}:1 (a thinner strip shrinks to almost nothing in its input); crop it into "
            "parts or send the uncut photo")
    if header.decode_bytes > budget:
        raise ImageTooLarge(
            f"decoding this {header.describe()} would take about {header.decode_bytes / 2**20:.0f} MiB, above the "
            f"memory budget of {budget / 2**20:.0f} MiB per photo; send it smaller or as an 8-bit JPEG")


def _too_large(width: int, height: int, max_pixels: int) -> str:
    return (
        f"the image is {width}x{height} ({width * height / 1e6:.1f} megapixels), above the limit of "
        f"{max_pixels / 1e6:.1f} megapixels; resize it before sending"
    )


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1: as stored); a damaged EXIF block keeps the photo as stored."""
    try:
        value = image.getexif().get(0x0112, 1)
    except (ValueError, TypeError, KeyError, SyntaxError, OSError, struct.error):
        return 1
    return value if isinstance(value, int) else 1


def _upright(pixels: BGRImage, orientation: int) -> BGRImage:
    """The pixels turned as EXIF `orientation` says (as Pillow's `ImageOps.exif_transpose`), one copy at most."""
    turns = {3: cv2.ROTATE_180, 6: cv2.ROTATE_90_CLOCKWISE, 8: cv2.ROTATE_90_COUNTERCLOCKWISE}
    if orientation in turns:
        return np.asarray(cv2.rotate(pixels, turns[orientation]), dtype=np.uint8)
    flips = {2: 1, 4: 0, 7: -1}  # 5 and 7 transpose first
    turned = np.asarray(cv2.transpose(pixels), dtype=np.uint8) if orientation in {5, 7} else pixels
    if orientation in flips:
        turned = np.asarray(cv2.flip(turned, flips[orientation], dst=turned if turned is not pixels else None),
                            dtype=np.uint8)
    return turned


def _complete(data: bytes, image_format: str) -> bool:
    """Whether the bytes are a whole PNG, WebP or JPEG file, which OpenCV then decodes.

    OpenCV silently returns a partial picture for a truncated JPEG; a complete JPEG ends with the EOI marker
    (0xFFD9), which entropy-coded data cannot contain. A PNG ends with its IEND chunk, a WebP file is as long as
    its RIFF header says. Anything else goes to Pillow, which says what is wrong with a damaged file.
    """
    if image_format == "JPEG":
        return data.endswith(b"\xff\xd9")
    if image_format == "PNG":
        return data.endswith(_PNG_END)
    if image_format == "WEBP":
        return len(data) >= 12 and struct.unpack("<I", data[4:8])[0] + 8 == len(data)
    return False


def _decode_opencv(data: bytes, header: ImageHeader) -> BGRImage | None:
    """Decode a whole PNG (any bit depth, straight into 8 bits), WebP or RGB/grayscale JPEG with OpenCV, EXIF
    orientation applied (as Pillow's `exif_transpose` would); None: let Pillow try."""
    if not header.opencv:
        return None
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None or decoded.shape[:2] not in {(header.height, header.width), (header.width, header.height)}:
        return None
    return np.asarray(decoded, dtype=np.uint8)


def _pillow_to_bgr(image: Image.Image) -> BGRImage:
    """Decode with Pillow and convert any mode to 8-bit, 3-channel BGR, a strip of rows at a time."""
    image.load()
    width, height = image.size
    mode = image.mode
    out = np.empty((height, width, 3), np.uint8)
    # Mode "I" holds 32-bit integers: data above 255 is taken to be 16-bit, as from a 16-bit PNG or TIFF.
    sixteen_bit = mode.startswith("I;16") or (mode == "I" and _extreme(image) > 255)
    rows = max(1, STRIP_BYTES // (width * 4))
    for top in range(0, height, rows):
        strip = image.crop((0, top, width, min(height, top + rows)))
        if mode.startswith("I") or mode == "F":
            values = np.asarray(strip)
            if sixteen_bit:  # 16-bit keeps its top 8 bits
                values = values >> 8
            gray = np.asarray(values.clip(0, 255), dtype=np.uint8)
            out[top:top + gray.shape[0]] = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
        else:
            # Alpha is dropped, not blended, as OpenCV and the ultralytics training loader do, so that
            # the detector sees photos the way it saw them in training.
            rgb = np.asarray(strip if strip.mode == "RGB" else strip.convert("RGB"))
            out[top:top + rgb.shape[0]] = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    return out


def _extreme(image: Image.Image) -> int:
    extrema = image.getextrema()
    high = extrema[1] if isinstance(extrema, tuple) and not isinstance(extrema[0], tuple) else 0
    return int(high) if isinstance(high, int | float) else 0
