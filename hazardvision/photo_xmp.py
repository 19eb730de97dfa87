"""Remove the GPS fields from an XMP packet, in place: the packet keeps its length and its other properties.

XMP is RDF/XML. A location is a property, written either as an attribute of an `rdf:Description`
(`exif:GPSLatitude="31,14.09N"`) or as an element (`<exif:GPSLatitude>31,14.09N</exif:GPSLatitude>`),
possibly inside a structure (IPTC's `Iptc4xmpExt:LocationCreated` holds `Iptc4xmpExt:GPSLatitude`).
Each such attribute or element is overwritten with spaces: whitespace between attributes and between
property elements means nothing to an RDF/XML reader, so the packet stays well-formed, no length
or offset around it changes (a JPEG segment, a WebP chunk, a TIFF tag), and every other property
(creator tool, rating, the City of a location) stays. A property is a location by its namespace,
resolved from the packet's `xmlns` declarations in scope, not by its prefix.

A packet that cannot be read as XML (a tag that does not parse, or does not close) is not guessed
at: it is replaced by an empty packet of the same length. UTF-8 packets only (what JPEG, PNG and
WebP hold); the extended XMP of a JPEG (`http://ns.adobe.com/xmp/extension/`) is not edited.
"""

from __future__ import annotations

import re
from collections.abc import Callable

XMP_KEYWORD = b"XML:com.adobe.xmp"
"""The keyword of the PNG iTXt chunk that holds XMP."""

EMPTY_PACKET = (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
                b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/><?xpacket end="w"?>')
"""An XMP packet with no property, what replaces one that cannot be read."""


def _gps(local: bytes) -> bool:
    return local.startswith(b"GPS")


_DJI_LOCATION = re.compile(rb"(?i)gps|latitude|longitude|longtitude|altitude")  # DJI writes "GpsLongtitude" too

LOCATION_PROPERTIES: dict[bytes, Callable[[bytes], bool]] = {
    b"http://ns.adobe.com/exif/1.0/": _gps,  # exif:GPSLatitude, GPSLongitude, GPSAltitude, GPSTimeStamp, ...
    b"http://cipa.jp/exif/1.0/": _gps,  # exifEX, the Exif 2.3 namespace
    b"http://iptc.org/std/Iptc4xmpExt/2008-02-29/": _gps,  # the GPS fields of LocationCreated and LocationShown
    b"http://www.dji.com/drone-dji/1.0/": lambda local: _DJI_LOCATION.search(local) is not None,
}
"""Namespace URI -> which of its properties (by local name) say where the photo was taken."""

_TOKEN = re.compile(
    rb"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<![^>]*>"  # comments, CDATA, processing instructions, declarations
    rb"|</\s*(?P<end>[^\s>]+)\s*>"
    rb"|<(?P<start>[^\s/>!?]+)(?P<attributes>(?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*(?P<empty>/?)>",
    re.S)
_ATTRIBUTE = re.compile(rb"([^\s=/>]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


class _Unreadable(Exception):
    """The packet is not XML this module can follow."""


def without_xmp_location(packet: bytes) -> bytes:
    """`packet` with its location properties overwritten by spaces (the same bytes when it has none); an
    unreadable packet that may hold one becomes an empty packet of the same length."""
    if not any(namespace in packet for namespace in LOCATION_PROPERTIES):
        return packet
    try:
        spans = _location_spans(packet)
    except _Unreadable:
        return EMPTY_PACKET.ljust(len(packet)) if len(packet) >= len(EMPTY_PACKET) else b" " * len(packet)
    if not spans:
        return packet
    edited = bytearray(packet)
    for start, end in spans:
        edited[start:end] = b" " * (end - start)
    return bytes(edited)


def _location_spans(packet: bytes) -> list[tuple[int, int]]:
    """The (start, end) byte ranges of the packet's location attributes and elements."""
    spans: list[tuple[int, int]] = []
    # Open elements: qualified name, where it starts, the namespaces in scope, whether it is a location.
    stack: list[tuple[bytes, int, dict[bytes, bytes], bool]] = []
    scope: dict[bytes, bytes] = {}
    position = packet.find(b"<")
    while position >= 0:
        token = _TOKEN.match(packet, position)
        if token is None:
            raise _Unreadable(position)
        if token["end"] is not None:
            if not stack or stack[-1][0] != token["end"]:
                raise _Unreadable(position)
            _name, start, _scope, location = stack.pop()
            if location and not any(open_location for *_, open_location in stack):
                spans.append((start, token.end()))
            scope = stack[-1][2] if stack else {}
        elif token["start"] is not None:
            attributes = list(_ATTRIBUTE.finditer(token["attributes"]))
            declared = {a[1][6:] if a[1].startswith(b"xmlns:") else b"": a[2] if a[2] is not None else a[3]
                        for a in attributes if a[1] == b"xmlns" or a[1].startswith(b"xmlns:")}
            inner = {**scope, **declared} if declared else scope
            location = _is_location(token["start"], inner, element=True)
            inside_location = location or any(open_location for *_, open_location in stack)
            if not inside_location:
                offset = token.start("attributes")
                spans.extend((offset + a.start(), offset + a.end()) for a in attributes
                             if not a[1].startswith(b"xmlns") and _is_location(a[1], inner, element=False))
            if token["empty"]:
                if location and not any(open_location for *_, open_location in stack):
                    spans.append((token.start(), token.end()))
            else:
                stack.append((token["start"], token.start(), inner, location))
                scope = inner
        position = packet.find(b"<", token.end())
    if stack:
        raise _Unreadable(len(packet))
    return spans


def _is_location(name: bytes, scope: dict[bytes, bytes], *, element: bool) -> bool:
    prefix, _, local = name.rpartition(b":")
    if not prefix and not element:
        return False  # an attribute without a prefix is in no namespace
    namespace = scope.get(prefix)
    test = LOCATION_PROPERTIES.get(namespace) if namespace is not None else None
    return test is not None and test(local)
