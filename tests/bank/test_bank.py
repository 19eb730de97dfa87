from __future__ import annotations

import pytest
from sqlalchemy import text

from hazardvision.bank.bank import SampleBank
from hazardvision.data.bank_records import PendingImage
from hazardvision.data.migrations import LATEST
from hazardvision.errors import BankError, UnknownCase
from tests.bank.conftest import import_path, make_yolo


@pytest.fixture
def bank(sample_photos, tmp_path, database_url) -> SampleBank:
    """A bank of three photos, on SQLite and on PostgreSQL (HAZARDVISION_DATABASE_URL, set by `database_url`)."""
    data = make_yolo(tmp_path / "ds", sample_photos[:3], ["0 0.5 0.5 0.2 0.2\n"] * 3, ["helmet"])
    bank = SampleBank(tmp_path / "bank")
    import_path(bank, data)
    return bank


def test_bank_reopens_with_its_cases_and_schema_version(bank):
    again = SampleBank(bank.home)
    assert again.stats().cases == 3 and again.stats().schema_version == LATEST


def test_bank_newer_schema_is_refused(bank):
    with bank.engine.begin() as connection:
        connection.execute(text("INSERT INTO schema_version (version, description) VALUES (99, 'future')"))
    with pytest.raises(BankError, match="newer than this hazardvision knows"):
        SampleBank(bank.home)


def test_bank_verify_finds_missing_and_orphan_files(bank):
    case = bank.cases()[0]
    stored = bank.store.path(case.image_sha256, "JPEG")
    orphan = stored.with_name("f" * 64 + ".jpg")
    stored.rename(orphan)
    problems = bank.verify()
    assert any("missing from the store" in p for p in problems)
    assert any("belongs to no case" in p for p in problems)


def test_bank_reopen_removes_photos_of_an_uncommitted_write(bank):
    sha = "e" * 64
    with bank.database.session() as session:
        session.add(PendingImage(sha256=sha))
    bank.store.put(sha, "JPEG", b"half of an import")
    assert bank.verify() != []
    reopened = SampleBank(bank.home)
    assert reopened.verify() == []
    assert not bank.store.path(sha, "JPEG").exists()


def test_bank_unknown_case(bank):
    with pytest.raises(UnknownCase, match="no case 12345"):
        bank.case(12345)


def test_bank_site_must_keep_its_enterprise(bank):
    bank.records.provenance(source="scans", kind="scan", site="Dock 3", enterprise="Acme")
    with pytest.raises(BankError, match="belongs to another enterprise"):
        bank.records.provenance(source="scans", kind="scan", site="Dock 3", enterprise="Other Co")
