"""Scoped access: which keys read which scans, findings and reviews; rejected findings show no picture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from hazardvision.access import ApiKeys, KeyRecord, Role
from hazardvision.bank.bank import SampleBank
from hazardvision.cli import app as cli_app
from hazardvision.data.bank_records import Annotation, Origin
from hazardvision.data.migrations import LATEST
from hazardvision.data.scans import Visibility
from hazardvision.service.scopes import visibility_of
from hazardvision.similar.thumbnails import thumbnail_path
from tests.databases import DATABASES
from tests.service.conftest import LiveServer, assert_error, live_server


class _NoCameras:
    def owned_by(self, *, owner: str) -> set[str]:
        return {"gate-1"} if owner == "pipe" else set()


def _key(role: Role, sites: tuple[str, ...] = ()) -> KeyRecord:
    import datetime as dt
    name = "pipe" if role is Role.PIPELINE else role.value
    return KeyRecord(id=1, name=name, role=role, prefix="hv_x", created_at=dt.datetime.now(dt.UTC), sites=sites)


@pytest.mark.parametrize(("key", "scope", "expected"), [
    (_key(Role.ADMIN, ("a",)), "own", None),
    (_key(Role.INSPECTOR), "own", None),  # no sites: every site, as before scopes
    (_key(Role.INSPECTOR, ("a",)), "own", Visibility("inspector", frozenset({"a"}))),
    (_key(Role.ML, ("a", "b")), "own", Visibility("ml", frozenset({"a", "b"}))),
    (_key(Role.PIPELINE), "own", Visibility("pipe", cameras=frozenset({"gate-1"}))),
    (_key(Role.PIPELINE), "all", None),
    (_key(Role.INSPECTOR, ("a",)), "all", None),
])
def test_visibility_of_a_key_follows_its_role_sites_cameras_and_the_setting(key, scope, expected):
    assert visibility_of(key, scope, _NoCameras()) == expected  # type: ignore[arg-type]


def test_visibility_admits_own_scans_its_sites_and_its_cameras():
    seen = Visibility("pipe", frozenset({"dock-3"}), frozenset({"gate-1"}))
    assert seen.admits(actor="pipe", site=None, camera=None)
    assert seen.admits(actor="other", site="dock-3", camera=None)
    assert seen.admits(actor="other", site=None, camera="gate-1")
    assert not seen.admits(actor="other", site="yard-9", camera="gate-2")


def test_keys_create_with_sites_keeps_them_and_migration_17_adds_the_column(tmp_path, database_url):
    result = CliRunner().invoke(cli_app, ["keys", "create", "--role", "inspector", "--name", "li", "--site", "dock-3",
                                          "--site", "yard-9", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    bank = SampleBank(tmp_path)
    (record,) = ApiKeys(bank).list()
    assert record.sites == ("dock-3", "yard-9")
    with bank.engine.begin() as connection:  # a version 16 bank: keys without sites
        connection.execute(text("ALTER TABLE api_keys DROP COLUMN sites"))
        connection.execute(text("DELETE FROM schema_version WHERE version >= 17"))
    bank.close()
    upgraded = SampleBank(tmp_path)
    assert upgraded.stats().schema_version == LATEST
    (record,) = ApiKeys(upgraded).list()
    assert record.sites == ()  # an older key reads every site, as it did
    upgraded.close()


@pytest.fixture(scope="module", params=DATABASES)
def server(request, tmp_path_factory, datasets) -> Iterator[LiveServer]:
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_server").create()
    home = tmp_path_factory.mktemp(f"scoped-{request.param}")
    try:
        with live_server(home, database_url=url) as running:
            bank = SampleBank(home, url=url)
            keys = ApiKeys(bank)
            running.keys.update({"dock": keys.create("dock-inspector", Role.INSPECTOR, sites=["dock-3"])[1],
                                 "pipe-b": keys.create("pipe-b", Role.PIPELINE)[1]})
            bank.engine.dispose()
            running.database_url = url  # type: ignore[attr-defined]
            yield running
    finally:
        if url:
            request.getfixturevalue("postgres_server").drop(url)


def _scan(client, photo, **fields):
    response = client.post("/v1/scans", files={"image": (photo.name, photo.read_bytes(), "image/jpeg")}, data=fields)
    assert response.status_code == 200, response.text
    return response.json()


def _with_findings(client, photos, **fields):
    for photo in photos[:12]:
        scan = _scan(client, photo, **fields)
        if scan["findings"]:
            return scan, photo
    pytest.skip("no photo of the first twelve has a finding")


def test_scans_findings_and_reviews_are_read_within_the_key_s_scope(server, ppe_photos):
    admin, inspector = server.client(Role.ADMIN), server.client(Role.INSPECTOR)
    dock, pipe_b = server.client(None), server.client(None)
    dock.headers["Authorization"] = f"Bearer {server.keys['dock']}"  # type: ignore[index]
    pipe_b.headers["Authorization"] = f"Bearer {server.keys['pipe-b']}"  # type: ignore[index]
    pipe = server.client(Role.PIPELINE)
    # the pipeline now owns gate-1
    assert pipe.put("/v1/cameras/gate-1", json={"rule": {"min_frames": 3}}).status_code == 200
    at_dock, _ = _with_findings(admin, ppe_photos, site="dock-3")
    at_yard, _ = _with_findings(admin, ppe_photos, site="yard-9", camera="gate-1")
    own = _scan(pipe_b, ppe_photos[0])
    readers = {"admin": admin, "inspector": inspector, "dock": dock, "pipe": pipe, "pipe-b": pipe_b}
    expected = {"admin": {at_dock["scan_id"], at_yard["scan_id"], own["scan_id"]},
                # an inspector key without sites reads every site
                "inspector": {at_dock["scan_id"], at_yard["scan_id"], own["scan_id"]},
                "dock": {at_dock["scan_id"]}, "pipe": {at_yard["scan_id"]}, "pipe-b": {own["scan_id"]}}
    for name, client in readers.items():
        for scan_id in (at_dock["scan_id"], at_yard["scan_id"], own["scan_id"]):
            for suffix in ("", "/annotated", "/photo"):
                response = client.get(f"/v1/scans/{scan_id}{suffix}")
                if scan_id in expected[name]:
                    assert response.status_code == 200, (name, scan_id, suffix)
                else:  # out of scope answers as an unknown scan does
                    assert assert_error(response, 404, "UnknownScan")["message"] == \
                        f"no scan {scan_id!r}; scan ids are returned by POST /v1/scans"
    queue = {f["scan_id"] for f in dock.get("/v1/findings", params={"limit": 200}).json()["findings"]}
    assert queue == {at_dock["scan_id"]}
    assert at_yard["scan_id"] in {f["scan_id"] for f in inspector.get("/v1/findings",
                                                                          params={"limit": 200}).json()["findings"]}
    yard_finding = at_yard["findings"][0]["id"]
    assert_error(dock.post(f"/v1/findings/{yard_finding}/review", json={"decision": "confirm"}), 404,
                 "UnknownFinding")
    dock_finding = at_dock["findings"][0]["id"]
    assert dock.post(f"/v1/findings/{dock_finding}/review", json={"decision": "reject"}).status_code == 201
    assert admin.post(f"/v1/findings/{yard_finding}/review", json={"decision": "reject"}).status_code == 201
    assert {r["scan_id"] for r in dock.get("/v1/reviews").json()["reviews"]} == {at_dock["scan_id"]}
    assert {r["scan_id"] for r in admin.get("/v1/reviews").json()["reviews"]} >= {at_dock["scan_id"],
                                                                                    at_yard["scan_id"]}
    for client in readers.values():
        client.close()


def test_a_rejected_finding_s_thumbnail_is_not_served(server, ppe_photos):
    # That a rescan names the false alarm without its thumbnail: tests/service/test_reviews.py.
    admin = server.client(Role.ADMIN)
    scan, _ = _with_findings(admin, ppe_photos, site="quarry-1")
    finding = scan["findings"][0]
    review = admin.post(f"/v1/findings/{finding['id']}/review", json={"decision": "reject"})
    assert review.status_code == 201, review.text
    case_id = review.json()["case_id"]
    bank = SampleBank(server.home, url=server.database_url)  # type: ignore[attr-defined]
    with bank.database.session() as session:
        rejected = session.scalars(select(Annotation.id).where(Annotation.case_id == case_id,
                                                                Annotation.origin == Origin.REJECTED.value)).all()
    bank.engine.dispose()
    assert rejected
    for annotation in rejected:
        path = thumbnail_path(server.home, annotation)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # as if the index had made one: the route must refuse it all the same
            path.write_bytes(b"\xff\xd8\xff\xd9")
        assert_error(admin.get(f"/v1/cases/{case_id}/thumbnail", params={"annotation": annotation}), 404)

    admin.close()
