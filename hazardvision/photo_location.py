"""Remove the GPS position from a photo's EXIF and XMP without touching its pixels.

Phones write where a photo was taken into the EXIF GPS IFD. `without_location` takes the GPSInfo
entry out of IFD0 and blanks the GPS IFD it pointed to, in place: the EXIF block keeps its length
and every other offset, so the JPEG, PNG, WebP or TIFF container around it needs no re-layout, the
image data is not re-encoded, and the photo decodes to the same pixels. Everything else in EXIF stays
(orientation, time taken, camera make and model, exposure).

Editors and drones write the position into XMP as well (`exif:GPSLatitude`, DJI's
`drone-dji:GpsLatitude`, IPTC's `Iptc4xmpExt:LocationCreated` GPS fields), as attributes or as
elements. Those fields are overwritten with spaces in place (XML whitespace, so the packet keeps its
length and stays well-formed, and every other XMP property stays); a packet that cannot be read as XML
is replaced whole by an empty one of the same length (photo_xmp).
"""

from __future__ import annotations

import struct
import zlib

from hazardvision.photo_xmp import EMPTY_PACKET, XMP_KEYWORD, without_xmp_location

GPS_IFD_TAG = 0x8825
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_APP1_EXIF = b"Exif\x00\x00"
_APP1_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_TIFF_TAG = 700
MAX_XMP_BYTES = 4 * 1024 * 1024
"""Largest compressed PNG XMP packet inflated to be edited; a larger one is replaced by an empty packet."""


def without_location(data: bytes) -> bytes:
    """`data` with every EXIF GPS IFD and XMP GPS field of the photo removed; the same bytes when there is none
    (or the EXIF cannot be read: a photo's metadata is never a reason to refuse it)."""
    buffer = bytearray(data)
    changed = False
    if data[:2] == b"\xff\xd8":
        changed = _jpeg(buffer)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        changed = _png(buffer)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        changed = _webp(buffer)
    elif data[:4] in (b"II*\x00", b"MM\x00*"):
        changed = _tiff_xmp(buffer) | _strip_tiff(buffer, 0, len(buffer))
    return bytes(buffer) if changed else data


def _jpeg(buffer: bytearray) -> bool:
    # Every APP1 Exif and XMP segment, the secondary images of an MPO (phones' depth and portrait shots)
    # included: a 0xFFE1 pair cannot occur inside entropy-coded data, where every 0xFF byte is stuffed.
    changed = False
    start = buffer.find(b"\xff\xe1")
    while start >= 0:
        if start + 4 <= len(buffer):
            (length,) = struct.unpack(">H", buffer[start + 2:start + 4])
            end = min(start + 2 + length, len(buffer))
            if buffer[start + 4:start + 10] == _APP1_EXIF:
                changed |= _strip_tiff(buffer, start + 10, end)
            elif buffer[start + 4:start + 4 + len(_APP1_XMP)] == _APP1_XMP:
                changed |= _xmp_in_place(buffer, start + 4 + len(_APP1_XMP), end)
        start = buffer.find(b"\xff\xe1", start + 2)
    return changed


def _png(buffer: bytearray) -> bool:
    position, changed = 8, False
    while position + 12 <= len(buffer):
        (length,) = struct.unpack(">I", buffer[position:position + 4])
        kind = bytes(buffer[position + 4:position + 8])
        body = position + 8
        if body + length + 4 > len(buffer):
            break
        if kind == b"eXIf" and _strip_tiff(buffer, body, body + length):
            _png_crc(buffer, position, length)
            changed = True
        elif kind == b"iTXt" and buffer[body:body + len(XMP_KEYWORD) + 1] == XMP_KEYWORD + b"\x00":
            edited = _png_xmp(buffer, position, length)
            if edited is not None:
                length, changed = edited, True
        if kind == b"IEND":
            break
        position = body + length + 4
    return changed


def _webp(buffer: bytearray) -> bool:
    position, changed = 12, False
    while position + 8 <= len(buffer):
        kind = bytes(buffer[position:position + 4])
        (length,) = struct.unpack("<I", buffer[position + 4:position + 8])
        body = position + 8
        if kind == b"EXIF":
            start = body + len(_APP1_EXIF) if buffer[body:body + 6] == _APP1_EXIF else body
            changed |= _strip_tiff(buffer, start, min(body + length, len(buffer)))
        elif kind == b"XMP ":
            changed |= _xmp_in_place(buffer, body, min(body + length, len(buffer)))
        position = body + length + (length & 1)
    return changed


def _png_crc(buffer: bytearray, position: int, length: int) -> None:
    crc = zlib.crc32(bytes(buffer[position + 4:position + 8 + length]))
    buffer[position + 8 + length:position + 12 + length] = struct.pack(">I", crc)


def _png_xmp(buffer: bytearray, position: int, length: int) -> int | None:
    """Remove the location from the PNG iTXt XMP chunk at `position`; its new length, or None when unchanged.

    An uncompressed packet is edited in place; a compressed one is inflated, edited and deflated again, so the
    chunk may change length (nothing in a PNG points past a chunk)."""
    body = position + 8
    flag_at = body + len(XMP_KEYWORD) + 1
    try:
        compressed, method = buffer[flag_at], buffer[flag_at + 1]
        language_end = buffer.index(0, flag_at + 2, body + length)
        text = buffer.index(0, language_end + 1, body + length) + 1
    except (IndexError, ValueError):
        return None
    if not compressed:
        if not _xmp_in_place(buffer, text, body + length):
            return None
        _png_crc(buffer, position, length)
        return length
    packet: bytes | None = None
    if method == 0:
        inflater = zlib.decompressobj()
        try:
            packet = inflater.decompress(bytes(buffer[text:body + length]), MAX_XMP_BYTES)
        except zlib.error:
            packet = None
        if inflater.unconsumed_tail:
            packet = None  # too large to edit here: it goes whole
    edited = without_xmp_location(packet) if packet is not None else EMPTY_PACKET
    if edited == packet:
        return None
    data = bytes(buffer[body:text]) + zlib.compress(edited)
    chunk = struct.pack(">I", len(data)) + b"iTXt" + data
    buffer[position:body + length + 4] = chunk + struct.pack(">I", zlib.crc32(chunk[4:]))
    return len(data)


def _xmp_in_place(buffer: bytearray, start: int, end: int) -> bool:
    """Remove the location from the XMP packet at buffer[start:end], keeping its length; whether it had one."""
    packet = bytes(buffer[start:end])
    edited = without_xmp_location(packet)
    if edited == packet:
        return False
    buffer[start:end] = edited
    return True


def _tiff_xmp(buffer: bytearray) -> bool:
    """Remove the location from a TIFF file's XMP (IFD0 tag 700, XMLPacket); whether it had one."""
    try:
        order = "<" if buffer[:2] == b"II" else ">"
        (ifd0,) = struct.unpack(order + "I", buffer[4:8])
        (count,) = struct.unpack(order + "H", buffer[ifd0:ifd0 + 2])
        for n in range(count):
            entry = ifd0 + 2 + 12 * n
            tag, kind, values, offset = struct.unpack(order + "HHII", buffer[entry:entry + 12])
            if tag == XMP_TIFF_TAG and kind in (1, 7) and values > 4 and offset + values <= len(buffer):
                return _xmp_in_place(buffer, offset, offset + values)
    except (struct.error, IndexError):
        pass
    return False


def _strip_tiff(buffer: bytearray, start: int, end: int) -> bool:
    """Remove the GPSInfo entry of the TIFF block at buffer[start:end] and blank its GPS IFD; whether it had one."""
    try:
        return _strip_tiff_unchecked(buffer, start, end)
    except (struct.error, IndexError, ValueError):
        return False


def _strip_tiff_unchecked(buffer: bytearray, start: int, end: int) -> bool:
    order = {b"II": "<", b"MM": ">"}.get(bytes(buffer[start:start + 2]))
    if order is None:
        return False
    (ifd0,) = struct.unpack(order + "I", buffer[start + 4:start + 8])
    at = start + ifd0
    (count,) = struct.unpack(order + "H", buffer[at:at + 2])
    entries = at + 2
    if entries + 12 * count + 4 > end:
        return False
    for n in range(count):
        entry = entries + 12 * n
        tag, _kind, _values, offset = struct.unpack(order + "HHII", buffer[entry:entry + 12])
        if tag != GPS_IFD_TAG:
            continue
        _blank_ifd(buffer, order, start, start + offset, end)
        # Close the gap: the entries after it and the next-IFD pointer move up by one entry (their values and
        # offsets point elsewhere in the block, so they stay valid); the freed 12 bytes are zeroed.
        tail = entries + 12 * count + 4
        buffer[entry:tail - 12] = buffer[entry + 12:tail]
        buffer[tail - 12:tail] = bytes(12)
        buffer[at:at + 2] = struct.pack(order + "H", count - 1)
        return True
    return False


def _blank_ifd(buffer: bytearray, order: str, start: int, at: int, end: int) -> None:
    """Zero the GPS IFD at `at` (its entries and the values they point to), so no position is left in the block."""
    if not start < at <= end - 2:
        return
    (count,) = struct.unpack(order + "H", buffer[at:at + 2])
    if at + 2 + 12 * count + 4 > end:
        return
    for n in range(count):
        entry = at + 2 + 12 * n
        _tag, kind, values, offset = struct.unpack(order + "HHII", buffer[entry:entry + 12])
        size = _TYPE_SIZES.get(kind, 0) * values
        if size > 4 and start + offset + size <= end:
            buffer[start + offset:start + offset + size] = bytes(size)
    buffer[at:at + 2 + 12 * count + 4] = bytes(2 + 12 * count + 4)
