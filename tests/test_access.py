"""API keys and roles: keys kept hashed, revoked keys refused, the role table as written in the brief."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import update

from hazardvision.access import PERMISSIONS, ApiKeys, KeyRecord, Permission, Role, allowed, check, key_digest
from hazardvision.bank.bank import SampleBank
from hazardvision.data.audit import AuditLog
from hazardvision.data.audit_records import AuditHead
from hazardvision.errors import ApiKeyConflict, ApiKeyError, AuditError, Forbidden, Unauthenticated, UnknownApiKey

# The policy, written out independently of hazardvision.access.PERMISSIONS.
GRANTED = {
    "scan": {"inspector", "pipeline", "ml", "admin"},
    "review": {"inspector", "ml", "admin"},
    "inspect": {"inspector", "admin"},
    "frames": {"pipeline", "admin"},
    "alerts.read": {"inspector", "pipeline", "ml", "admin"},
    "models.read": {"inspector", "pipeline", "ml", "admin"},
    "models.activate": {"ml", "admin"},
    "models.force": {"admin"},
    "keys.manage": {"admin"},
    "audit.read": {"ml", "admin"},
    "preannotate": {"ml", "admin"},
    "videos": {"inspector", "pipeline", "admin"},
    "scans.delete": {"admin"},
}


@pytest.fixture
def keys(tmp_path) -> ApiKeys:
    return ApiKeys(SampleBank(tmp_path))


@pytest.mark.parametrize(("role", "permission"), list(itertools.product(Role, Permission)))
def test_access_allowed_follows_the_role_table(role, permission):
    assert allowed(role, permission) is (role.value in GRANTED[permission.value])


def test_access_table_covers_every_permission():
    assert set(PERMISSIONS) == set(Permission) and {p.value for p in Permission} == set(GRANTED)


@pytest.mark.parametrize(
    ("role", "permission", "needed"),
    [
        (Role.PIPELINE, Permission.REVIEW, "inspector or ml or admin"),
        (Role.INSPECTOR, Permission.FRAMES, "pipeline or admin"),
        (Role.ML, Permission.MODELS_FORCE, "admin"),
        (Role.INSPECTOR, Permission.AUDIT_READ, "ml or admin"),
    ],
)
def test_access_check_names_the_role_needed(keys, role, permission, needed):
    record, _ = keys.create("someone", role)
    with pytest.raises(Forbidden, match=f"has role {role.value}; {permission.value} needs role {needed}$"):
        check(record, permission)
    admin, _ = keys.create("root", Role.ADMIN)
    keys.check(admin, permission)  # admin holds every permission


def test_access_create_returns_a_key_that_authenticates(keys):
    record, key = keys.create("dock3-pipeline", Role.PIPELINE)
    assert key.startswith("hv_") and len(key) == 3 + 43  # 32 random bytes, urlsafe base64
    assert record.prefix == key[:8] and record.role is Role.PIPELINE and record.active
    found = keys.authenticate(key)
    assert (found.id, found.name, found.role) == (record.id, "dock3-pipeline", Role.PIPELINE)
    assert found.last_used_at is not None and found.created_at.tzinfo is not None
    assert keys.create("other", Role.PIPELINE)[1] != key


def test_access_keys_are_hashed_at_rest(keys, tmp_path):
    _, key = keys.create("inspector-ann", Role.INSPECTOR)
    keys.authenticate(key)
    stored = b"".join(path.read_bytes() for path in tmp_path.rglob("*") if path.is_file())
    assert key.encode() not in stored
    assert key_digest(key).encode() in stored  # what is kept instead: the key's SHA-256
    assert "key" not in KeyRecord.model_fields


@pytest.mark.parametrize("given", [None, "", "hv_not-a-key", "x" * 10000])
def test_access_authenticate_refuses_a_missing_or_unknown_key(keys, given):
    keys.create("root", Role.ADMIN)
    with pytest.raises(Unauthenticated):
        keys.authenticate(given)


def test_access_revoked_key_is_refused(keys):
    _, key = keys.create("dock3-pipeline", Role.PIPELINE)
    revoked = keys.revoke("dock3-pipeline")
    assert revoked.revoked_at is not None and not revoked.active
    with pytest.raises(Unauthenticated, match="was revoked"):
        keys.authenticate(key)
    with pytest.raises(UnknownApiKey, match="no active key 'dock3-pipeline'"):
        keys.revoke("dock3-pipeline")


def test_access_revoke_by_id(keys):
    record, _ = keys.create("ml-bob", Role.ML)
    assert keys.revoke(str(record.id)).name == "ml-bob"
    assert [k.active for k in keys.list()] == [False]
    assert keys.list(include_revoked=False) == []


def test_access_name_is_unique_among_active_keys(keys):
    keys.create("ml-bob", Role.ML)
    with pytest.raises(ApiKeyConflict, match="an active key is named 'ml-bob'"):
        keys.create("ml-bob", Role.ADMIN)
    keys.revoke("ml-bob")
    again, key = keys.create("ml-bob", Role.ADMIN)
    assert keys.authenticate(key).id == again.id
    assert [(k.name, k.active) for k in keys.list()] == [("ml-bob", False), ("ml-bob", True)]


@pytest.mark.parametrize("name", ["", "has space", "-dash-first", "123", "x" * 101, "naïve"])
def test_access_create_refuses_a_bad_name(keys, name):
    with pytest.raises(ApiKeyError, match="a key name is"):
        keys.create(name, Role.INSPECTOR)


def test_access_key_changes_are_audited(keys, tmp_path):
    record, key = keys.create("ml-bob", Role.ML, actor="cli:ann")
    keys.revoke("ml-bob", actor="key:root")
    log = AuditLog.at(tmp_path)
    assert [(r.action, r.actor, r.subject) for r in log.records()] == [
        ("key.create", "cli:ann", "ml-bob"), ("key.revoke", "key:root", "ml-bob")]
    assert log.records()[0].details == {"id": record.id, "role": "ml", "prefix": key[:8]}
    assert log.verify() == []


def test_access_key_is_not_created_when_it_cannot_be_audited(keys, tmp_path):
    keys.create("root", Role.ADMIN)
    with keys.bank.database.session() as session:  # the chain's head forged: appends are refused
        session.execute(update(AuditHead).values(mac="0" * 64))
    with pytest.raises(AuditError, match="wrong MAC"):
        keys.create("ml-bob", Role.ML)
    assert [k.name for k in keys.list()] == ["root"]


def test_access_session_expires_and_needs_its_token(keys):
    key = keys.create("brief", Role.INSPECTOR)[1]
    signed_in = keys.sign_in(key, lifetime=dt.timedelta(hours=1))
    assert keys.session(signed_in.token).key.name == "brief" and signed_in.token not in (key, signed_in.csrf_token)
    expired = keys.sign_in(key, lifetime=dt.timedelta(seconds=-1))
    with pytest.raises(Unauthenticated, match="expired"):
        keys.session(expired.token)
    with pytest.raises(Unauthenticated, match="not signed in"):
        keys.session("")
    assert keys.sign_out(signed_in.token).name == "brief" and keys.sign_out(signed_in.token) is None
