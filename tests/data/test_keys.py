"""`Keys`: API keys by hash, one active key per name, revocation."""

from __future__ import annotations

import datetime as dt

import pytest

from hazardvision.data.database import Database
from hazardvision.data.keys import Keys
from hazardvision.errors import ApiKeyConflict
from hazardvision.home import Home


@pytest.fixture
def keys(tmp_path, database_url) -> Keys:
    (tmp_path / "home").mkdir()
    return Keys(Database(database_url, Home.at(tmp_path / "home")))


def create(keys: Keys, name: str, key_hash: str) -> int:
    with keys.create(name=name, role="inspector", key_hash=key_hash, prefix=key_hash[:8]) as row:
        return row.id


def test_keys_create_then_find_by_hash(keys):
    key_id = create(keys, "li.wei", "a" * 64)
    found = keys.by_hash(key_hash="a" * 64)
    assert found is not None and (found.id, found.name, found.role, found.revoked_at) == (key_id, "li.wei",
                                                                                         "inspector", None)
    assert keys.by_hash(key_hash="b" * 64) is None


def test_keys_create_refuses_a_second_active_key_of_a_name(keys):
    create(keys, "li.wei", "a" * 64)
    with pytest.raises(ApiKeyConflict, match=r"an active key is named 'li\.wei'"):
        create(keys, "li.wei", "b" * 64)
    with keys.revoke(name="li.wei") as row:
        assert row is not None and row.revoked_at is not None
    create(keys, "li.wei", "c" * 64)  # free again once revoked
    assert [key.revoked_at is None for key in keys.list()] == [False, True]
    assert [key.key_hash[0] for key in keys.list(include_revoked=False)] == ["c"]


def test_keys_create_is_undone_when_the_work_inside_fails(keys):
    with pytest.raises(RuntimeError), keys.create(name="li.wei", role="ml", key_hash="a" * 64, prefix="aaaa"):
        raise RuntimeError("the audit log cannot be written")
    assert keys.list() == []


def test_keys_revoke_by_id_and_of_an_unknown_key(keys):
    key_id = create(keys, "li.wei", "a" * 64)
    with keys.revoke(key_id=key_id + 1) as missing:
        assert missing is None
    with keys.revoke(key_id=key_id) as row:
        assert row is not None and row.name == "li.wei"
    with keys.revoke(key_id=key_id) as again:  # only active keys are revoked
        assert again is None


def test_keys_mark_used_keeps_the_time(keys):
    key_id = create(keys, "li.wei", "a" * 64)
    at = dt.datetime(2026, 4, 2, 10, 0, tzinfo=dt.UTC)
    keys.mark_used(key_id=key_id, at=at)
    found = keys.by_hash(key_hash="a" * 64)
    assert found is not None and found.last_used_at is not None
    assert found.last_used_at.replace(tzinfo=dt.UTC) == at
