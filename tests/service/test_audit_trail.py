"""The service's audit trail, written through a real server, and `hazardvision audit verify` catching tampering."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from hazardvision.access import Role
from hazardvision.data.audit import AuditLog
from hazardvision.data.audit_records import AuditEntry
from tests.service.conftest import jpeg_bytes, live_server

SCRIPT = Path(sys.executable).with_name("hazardvision")


@pytest.fixture(scope="module")
def audited_home(tmp_path_factory, ppe_photos) -> Path:
    """A home whose audit log holds the records of six scans made through the service."""
    home = tmp_path_factory.mktemp("audited")
    with live_server(home) as server, server.client(Role.INSPECTOR) as client:
        for photo in ppe_photos[:6]:
            response = client.post("/v1/scans", files={"image": (photo.name, jpeg_bytes(photo), "image/jpeg")})
            assert response.status_code == 200, response.text
    return home


def verify(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), "audit", "verify", "--home", str(home)], capture_output=True, text=True,
                          timeout=120, check=False)


def edit_middle(log: AuditLog, count: int) -> None:
    with log.database.session() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == count // 2).values(actor="someone-else"))


def delete_third(log: AuditLog, count: int) -> None:
    with log.database.session() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 3))


def cut_tail(log: AuditLog, count: int) -> None:
    with log.database.session() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq > count - 2))


@pytest.mark.parametrize(("tamper", "message"), [
    (edit_middle, "was edited"),
    (delete_third, "deleted"),
    (cut_tail, "its tail was cut"),
])
def test_audit_verify_catches_tampering_with_the_service_log(
    audited_home: Path, tmp_path: Path, tamper: Callable[[AuditLog, int], None], message: str
):
    assert verify(audited_home).returncode == 0
    copy = tmp_path / "home"
    copy.mkdir()
    shutil.copytree(audited_home / "audit", copy / "audit")
    shutil.copy(audited_home / "bank.sqlite3", copy / "bank.sqlite3")  # the chain lives in the database
    log = AuditLog.at(copy)
    count = log.count()
    assert count >= 6 and log.verify() == []
    tamper(log, count)
    done = verify(copy)
    assert done.returncode == 1
    assert message in done.stdout + done.stderr
