"""`WorkDeadline`: a request's commit and its deadline, whichever comes first, under one lock; a scan whose commit
it refuses leaves no photo file behind."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image
from sqlalchemy import func, select

from hazardvision.bank.bank import SampleBank
from hazardvision.data.audit import AuditLog
from hazardvision.data.database import COMMIT_CHECK
from hazardvision.data.image_store import ImageStore
from hazardvision.data.service_records import ScanRecord
from hazardvision.errors import RequestTimeout
from hazardvision.images import decode_image
from hazardvision.results import ImageInfo, ScanResult
from hazardvision.service.archive import ScanArchive, StoredScan
from hazardvision.service.middleware import WorkDeadline
from hazardvision.service.schemas.scans import ScanContext


def test_work_deadline_action_committed_in_time_keeps_its_answer():
    deadline = WorkDeadline(60)
    deadline.claim(True)
    assert deadline.expire() is False  # the middleware waits for the request's own answer


def test_work_deadline_plain_write_does_not_hold_off_the_deadline():
    deadline = WorkDeadline(60)
    deadline.claim(False)  # e.g. a key's last-used time
    assert deadline.expire() is True
    with pytest.raises(RequestTimeout, match="nothing was stored"):
        deadline.claim(True)


def test_work_deadline_passed_refuses_the_commit_before_the_loop_notices():
    deadline = WorkDeadline(-1)
    with pytest.raises(RequestTimeout):
        deadline.claim(True)
    assert deadline.expire() is True


def test_work_deadline_answer_started_lets_later_work_commit():
    deadline = WorkDeadline(-1)
    deadline.answered()
    deadline.claim(True)


def photo_with_gps(seed: int) -> bytes:
    """A real JPEG with an EXIF GPS position, so that the file stored is not the bytes uploaded."""
    pixels = np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] = (31.0, 14.0, 5.5)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


@pytest.fixture
def archive(tmp_path: Path, database_url: str) -> Iterator[ScanArchive]:
    bank = SampleBank(tmp_path / "home")
    yield ScanArchive(bank, AuditLog(bank.database))
    bank.engine.dispose()


def record(archive: ScanArchive, data: bytes, deadline: WorkDeadline) -> StoredScan:
    """What the service does with a scanned photo, under a request's deadline."""
    image = decode_image(data)
    result = ScanResult(source="site.jpg", image=ImageInfo(width=image.width, height=image.height,
                                                           sha256=image.sha256),
                        models=[], findings=[], objects=[], timings_ms={})
    token = COMMIT_CHECK.set(deadline.claim)
    try:
        return archive.record(uuid.uuid4().hex, "test-inspector", ScanContext(), image=image, data=data,
                              result=result)
    finally:
        COMMIT_CHECK.reset(token)


def stored_files(archive: ScanArchive) -> list[str]:
    return sorted(path.name for _, path in ImageStore(archive.photos.root).files())


def scans(archive: ScanArchive) -> int:
    with archive.records.database.session() as session:
        return session.scalar(select(func.count()).select_from(ScanRecord)) or 0


def test_work_deadline_passed_scan_leaves_no_orphan_photo_file(archive):
    with pytest.raises(RequestTimeout):
        record(archive, photo_with_gps(1), WorkDeadline(-1))
    assert (scans(archive), stored_files(archive)) == (0, [])
    assert not any(archive.photos.incoming.iterdir())


def test_work_deadline_passed_scan_keeps_the_file_another_scan_stored(archive):
    photo = photo_with_gps(2)
    kept = record(archive, photo, WorkDeadline(60))
    with pytest.raises(RequestTimeout):
        record(archive, photo, WorkDeadline(-1))  # a retry that came too late: the first scan keeps its file
    assert scans(archive) == 1 and stored_files(archive) == [f"{kept.stored_sha256}.jpg"]
    assert archive.photo(kept) == archive.photos.path(kept.stored_sha256, "JPEG").read_bytes()
