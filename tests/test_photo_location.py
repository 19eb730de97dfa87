"""`without_location`: the EXIF and XMP GPS position leaves a photo; its other EXIF and XMP, its pixels and its size
stay."""

from __future__ import annotations

import io
import struct
from xml.etree import ElementTree

import numpy as np
import pytest
from PIL import ExifTags, Image, PngImagePlugin

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


# -- XMP

EXIF_NS, DJI_NS = "http://ns.adobe.com/exif/1.0/", "http://www.dji.com/drone-dji/1.0/"
XMP_NS, IPTC_EXT_NS = "http://ns.adobe.com/xap/1.0/", "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
XMP_PACKET = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="TestPhone XMP 1.0">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:xmp="{XMP_NS}" xmlns:exif="{EXIF_NS}" xmlns:drone-dji="{DJI_NS}"
    xmlns:Iptc4xmpExt="{IPTC_EXT_NS}"
    xmp:CreatorTool="TestPhone Camera" xmp:Rating="3"
    exif:GPSLatitude="31,14.0917N" exif:GPSLongitude='121,28.1208E'
    drone-dji:GpsLatitude="31.234861" drone-dji:GpsLongtitude="121.468681" drone-dji:AbsoluteAltitude="+52.40"
    drone-dji:GimbalYawDegree="-12.50">
   <exif:GPSAltitude>524/10</exif:GPSAltitude>
   <exif:GPSAltitudeRef>0</exif:GPSAltitudeRef>
   <exif:ExposureTime>1/120</exif:ExposureTime>
   <Iptc4xmpExt:LocationCreated>
    <rdf:Bag>
     <rdf:li rdf:parseType="Resource">
      <Iptc4xmpExt:City>Shanghai</Iptc4xmpExt:City>
      <Iptc4xmpExt:GPSLatitude>31,14.0917N</Iptc4xmpExt:GPSLatitude>
      <Iptc4xmpExt:GPSLongitude>121,28.1208E</Iptc4xmpExt:GPSLongitude>
     </rdf:li>
    </rdf:Bag>
   </Iptc4xmpExt:LocationCreated>
   <Iptc4xmpExt:LocationShown>
    <rdf:Bag><rdf:li Iptc4xmpExt:Sublocation="dock 3" Iptc4xmpExt:GPSLatitude="31,14.1N"/></rdf:Bag>
   </Iptc4xmpExt:LocationShown>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:e="{EXIF_NS}" xmlns:gps="urn:not-a-location">
   <e:GPSLongitudeRef>E</e:GPSLongitudeRef>
   <gps:GPSNote>kept: this namespace holds no location</gps:GPSNote>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
{" " * 200}
<?xpacket end="w"?>""".encode()
LOCATION_FIELDS = {(EXIF_NS, "GPSLatitude"), (EXIF_NS, "GPSLongitude"), (EXIF_NS, "GPSAltitude"),
                   (EXIF_NS, "GPSAltitudeRef"), (EXIF_NS, "GPSLongitudeRef"), (DJI_NS, "GpsLatitude"),
                   (DJI_NS, "GpsLongtitude"), (DJI_NS, "AbsoluteAltitude"), (IPTC_EXT_NS, "GPSLatitude"),
                   (IPTC_EXT_NS, "GPSLongitude")}
OTHER_FIELDS = {(XMP_NS, "CreatorTool"), (XMP_NS, "Rating"), (DJI_NS, "GimbalYawDegree"), (EXIF_NS, "ExposureTime"),
                (IPTC_EXT_NS, "City"), (IPTC_EXT_NS, "Sublocation"), ("urn:not-a-location", "GPSNote")}


def xmp_fields(packet: bytes) -> set[tuple[str, str]]:
    """(namespace, local name) of every element and attribute of an XMP packet, read by an XML parser."""
    fields = set()
    for element in ElementTree.fromstring(packet.decode().strip()).iter():
        for name in (element.tag, *element.attrib):
            if name.startswith("{"):
                namespace, local = name[1:].split("}")
                fields.add((namespace, local))
    return fields


def with_xmp(container: str, packet: bytes = XMP_PACKET) -> bytes:
    """A real photo of `container` (PNG, PNG-zip: a compressed iTXt) with the XMP packet and an EXIF GPS position."""
    buffer = io.BytesIO()
    exif = exif_with_gps().tobytes()
    if container.startswith("PNG"):
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", packet.decode(), zip=container == "PNG-zip")
        picture().save(buffer, "PNG", pnginfo=info, exif=exif)
    elif container == "TIFF":
        picture().save(buffer, "TIFF", tiffinfo={700: packet}, exif=exif)
    else:
        picture().save(buffer, container, xmp=packet, exif=exif, **({"lossless": True} if container == "WEBP" else {}))
    return buffer.getvalue()


def xmp_of(data: bytes) -> bytes:
    packet = Image.open(io.BytesIO(data)).info["xmp"]
    return packet if isinstance(packet, bytes) else packet.encode()


@pytest.mark.parametrize("container", ["JPEG", "PNG", "PNG-zip", "WEBP", "TIFF"])
def test_without_location_removes_the_xmp_gps_fields_and_keeps_the_rest(container):
    data = with_xmp(container)
    assert xmp_fields(xmp_of(data)) >= LOCATION_FIELDS | OTHER_FIELDS
    stripped = without_location(data)
    packet = xmp_of(stripped)
    assert xmp_fields(packet).isdisjoint(LOCATION_FIELDS) and xmp_fields(packet) >= OTHER_FIELDS
    assert b"14.09" not in packet and b"121.46" not in packet and len(packet) == len(XMP_PACKET)
    assert not Image.open(io.BytesIO(stripped)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    if container != "PNG-zip":  # a compressed packet is deflated again; every other container keeps its layout
        assert len(stripped) == len(data)
    assert np.array_equal(decode_image(stripped).pixels, decode_image(data).pixels)
    assert without_location(stripped) == stripped


def test_without_location_replaces_an_unreadable_xmp_packet_with_an_empty_one():
    broken = XMP_PACKET.replace(b"</exif:GPSAltitude>", b"</exif:GPSAltitud>")  # a tag that does not close
    data = with_xmp("JPEG", broken)
    packet = xmp_of(without_location(data))
    assert len(packet) == len(broken) and b"GPS" not in packet and b"Gps" not in packet
    assert xmp_fields(packet) == {("adobe:ns:meta/", "xmpmeta")}  # still an XMP packet, with no property
    assert len(without_location(data)) == len(data)


def test_without_location_leaves_xmp_without_a_location_as_it_is():
    packet = XMP_PACKET.split(b"<rdf:Description")[0] + f"""<rdf:Description rdf:about='' xmlns:xmp='{XMP_NS}'
        xmlns:exif='{EXIF_NS}' xmp:Rating='3' exif:ExposureTime='1/120'/></rdf:RDF></x:xmpmeta>
        <?xpacket end='w'?>""".encode()
    buffer = io.BytesIO()
    picture().save(buffer, "JPEG", xmp=packet)
    assert without_location(buffer.getvalue()) == buffer.getvalue()
