"""The service's audit trail, written through a real server, and `hazardvision audit verify` catching tampering."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hazardvision.access import Role
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


def lines_of(home: Path) -> list[str]:
    return (home / "audit" / "audit.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)


def edit_middle(lines: list[str]) -> list[str]:
    middle = len(lines) // 2
    record = json.loads(lines[middle])
    record["actor"] = "someone-else"
    return [*lines[:middle], json.dumps(record) + "\n", *lines[middle + 1:]]


@pytest.mark.parametrize(("tamper", "message"), [
    (edit_middle, "was edited"),
    (lambda lines: lines[:2] + lines[3:], "deleted"),
    (lambda lines: lines[:-2], "its tail was cut"),
])
def test_audit_verify_catches_tampering_with_the_service_log(
    audited_home: Path, tmp_path: Path, tamper: Callable[[list[str]], list[str]], message: str
):
    assert verify(audited_home).returncode == 0
    copy = tmp_path / "home"
    shutil.copytree(audited_home / "audit", copy / "audit")
    lines = lines_of(copy)
    assert len(lines) >= 6
    (copy / "audit" / "audit.jsonl").write_text("".join(tamper(lines)), encoding="utf-8")
    done = verify(copy)
    assert done.returncode == 1
    assert message in done.stdout + done.stderr
