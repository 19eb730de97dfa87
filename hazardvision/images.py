"""Safe decoding of site photos into 8-bit BGR arrays.

Every photo passes here before any model sees it: the format is sniffed from the bytes, the
pixel count is checked from the header before any pixel is decoded (decompression bombs), EXIF
orientation is applied, and grayscale, palette, alpha, 16-bit and CMYK photos become 8-bit BGR.
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
from PIL import Image, ImageOps, UnidentifiedImageError

from hazardvision.errors import ImageTooLarge, InvalidImage

ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF"})
DEFAULT_MAX_PIXELS = 60_000_000
"""About a 60-megapixel photo: above any phone camera's default mode, far below a bomb."""

BGRImage = NDArray[np.uint8]


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


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode photo bytes, or raise `InvalidImage` / `ImageTooLarge` naming the problem."""
    if not data:
        raise InvalidImage("the image is empty (0 bytes); send the photo file's contents")
    sha256 = hashlib.sha256(data).hexdigest()
    image_format = "image"
    try:
        with warnings.catch_warnings():
            # Our own limit below is the one that counts; Pillow's bomb warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _pillow_open()(io.BytesIO(data)) as image:
                image_format = image.format or "unknown"
                if image_format not in ACCEPTED_FORMATS:
                    raise InvalidImage(
                        f"unsupported image format {image_format}; send JPEG, PNG, WebP, BMP or TIFF"
                    )
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageTooLarge(_too_large(width, height, max_pixels))
                if width < 1 or height < 1:
                    raise InvalidImage(f"the image has no pixels ({width}x{height})")
                pixels = _decode_jpeg_fast(data, image)
                if pixels is None:
                    pixels = _to_bgr(_loaded_upright(image))
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


def _too_large(width: int, height: int, max_pixels: int) -> str:
    return (
        f"the image is {width}x{height} ({width * height / 1e6:.1f} megapixels), above the limit of "
        f"{max_pixels / 1e6:.1f} megapixels; resize it before sending"
    )


def _decode_jpeg_fast(data: bytes, image: Image.Image) -> BGRImage | None:
    """Decode a complete RGB or grayscale JPEG with OpenCV, or return None to use Pillow.

    OpenCV decodes JPEG about twice as fast as Pillow and applies EXIF orientation itself, but it
    silently returns a partial picture for a truncated file. A complete JPEG ends with the EOI
    marker (0xFFD9), which entropy-coded data cannot contain, so only such files take this path;
    files with data after EOI (motion photos), CMYK and anything else go through Pillow.
    """
    if image.format != "JPEG" or image.mode not in {"RGB", "L"} or not data.endswith(b"\xff\xd9"):
        return None
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if decoded is None else np.asarray(decoded, dtype=np.uint8)


def _loaded_upright(image: Image.Image) -> Image.Image:
    image.load()
    try:
        return ImageOps.exif_transpose(image)
    except (ValueError, TypeError, KeyError, SyntaxError, struct.error):
        # A damaged EXIF block should not cost the photo: keep it as stored.
        return image


def _to_bgr(image: Image.Image) -> BGRImage:
    """Normalise any Pillow mode to 8-bit, 3-channel BGR."""
    mode = image.mode
    if mode.startswith("I"):
        # 16-bit grayscale keeps its top 8 bits. Mode "I" holds 32-bit integers: data above 255
        # is taken to be 16-bit, as from a 16-bit PNG or TIFF.
        wide = np.asarray(image).astype(np.int64)
        sixteen_bit = mode.startswith("I;16") or wide.max(initial=0) > 255
        gray = ((wide >> 8) if sixteen_bit else wide).clip(0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "F":
        gray = np.asarray(image).clip(0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    # Alpha is dropped, not blended, as OpenCV and the ultralytics training loader do, so that
    # the detector sees photos the way it saw them in training.
    rgb = np.asarray(image if mode == "RGB" else image.convert("RGB"))
    # cvtColor swaps channels in one pass, several times faster than copying a [..., ::-1] view.
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), dtype=np.uint8)
