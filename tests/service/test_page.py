"""The inspector's page in a real headless Chromium against the real service: sign in, scan a real photo, see
its boxes and findings, review, inspections, a rectification closed by an after-photo and verified by a second
inspector, the PDF record, both languages, a pipeline key's limits, and axe-core at phone and desktop width."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from axe_playwright_python import sync_playwright as axe_module
from pypdf import PdfReader

from hazardvision.access import ApiKeys, Role
from hazardvision.bank.bank import SampleBank
from hazardvision.similar.maintenance import sync_indexes
from tests.conftest import bundled_packs
from tests.service.conftest import labelled_bank, live_server

PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}
AXE_JS = Path(axe_module.__file__).with_name("axe.min.js")
TIMEOUT = 60_000  # ms: a scan on a busy 2-core machine
LOADED = "(selector) => [...document.querySelectorAll(selector)].every(i => i.complete && i.naturalWidth > 0)"


@pytest.fixture(scope="module")
def server(tmp_path_factory, ppe_photos):
    home = tmp_path_factory.mktemp("page-home")
    bank = SampleBank(home)
    labelled_bank(bank, tmp_path_factory.mktemp("labelled"), ppe_photos[20:26])
    sync_indexes(bank, bundled_packs())
    ApiKeys(bank).create("verifier", Role.INSPECTOR)
    bank.engine.dispose()
    with live_server(home) as running:
        yield running


@pytest.fixture(scope="module")
def verifier_key(server) -> str:
    bank = SampleBank(server.home)
    key = ApiKeys(bank).create("second-inspector", Role.INSPECTOR)[1]
    bank.engine.dispose()
    return key


@pytest.fixture
def page_at(browser, server) -> Iterator[Any]:
    """`page_at(viewport)`: a fresh browser context (its own cookies) on the page; closed after the test."""
    contexts = []

    def open_page(viewport: dict[str, int] = DESKTOP) -> Any:
        context = browser.new_context(viewport=viewport, bypass_csp=True, accept_downloads=True)  # bypass: axe
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.goto(f"{server.url}/app")
        return page

    yield open_page
    for context in contexts:
        context.close()


def images_loaded(page: Any, selector: str) -> None:
    """Wait until every image of `selector` has loaded (lazy ones scrolled into view first)."""
    page.evaluate("(s) => document.querySelectorAll(s).forEach(i => { i.loading = 'eager'; })", selector)
    page.wait_for_function(LOADED, arg=selector)


def sign_in(page: Any, key: str) -> None:
    page.fill("input[name=key]", key)
    page.click("form button[type=submit]")
    page.wait_for_selector("#signout:not([hidden])")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.add_script_tag(path=str(AXE_JS))
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [node["target"] for node in v["nodes"]][:5]}
            for v in results["violations"] if v["impact"] in ("serious", "critical")]


def after_photo(tmp_path: Path) -> Path:
    """A grey picture: no hazard of any class (it passes an after-photo check)."""
    path = tmp_path / "after.jpg"
    cv2.imwrite(str(path), np.full((480, 640, 3), 128, np.uint8))
    return path


def scan_photo(page: Any, photo: Path) -> None:
    page.click("nav a[href='#/scan']")
    page.set_input_files("input[type=file]", str(photo))
    page.fill("input[name=site]", "dock-9")
    page.fill("input[name=enterprise]", "acme")
    page.click("main form button[type=submit]")
    page.wait_for_selector("main h1:has-text('Findings in')")


def test_page_inspection_flow_from_sign_in_to_pdf(server, page_at, ppe_photos, verifier_key, tmp_path):
    page = page_at()
    sign_in(page, server.keys[Role.INSPECTOR])
    assert page.inner_text("#who").startswith("test-inspector")
    assert page.evaluate("() => JSON.stringify({...localStorage, ...sessionStorage})").find("hv_") == -1

    page.click("nav a[href='#/inspections']")
    page.fill("main form input[name=site] >> nth=0", "dock-9")
    page.fill("main form input[name=enterprise] >> nth=0", "acme")
    page.click("main form button[type=submit] >> nth=0")
    page.wait_for_selector("main h1:has-text('Inspection at dock-9')")
    inspection_id = page.url.rsplit("/", 1)[-1]

    photo = next(photo for photo in ppe_photos[:10] if _findings_of(server, photo) >= 2)
    scan_photo(page, photo)
    images_loaded(page, ".photo img, .case img")  # the photo and the similar cases' thumbnails
    boxes, items = page.locator(".photo svg rect.box"), page.locator("ol.findings > li.finding")
    assert boxes.count() == items.count() >= 2
    severities = [page.get_attribute(f"ol.findings > li.finding >> nth={i}", "data-severity")
                  for i in range(items.count())]
    rank = {"critical": 4, "high": 3, "medium": 2, "low": 1}
    assert [rank[s] for s in severities] == sorted((rank[s] for s in severities), reverse=True)
    items.nth(1).locator("h3 button").click()  # selecting a finding highlights its box
    selected = page.get_attribute(".photo svg rect.box.selected", "data-finding")
    assert selected == items.nth(1).get_attribute("data-finding")
    boxes.nth(0).dispatch_event("click")  # and the reverse
    assert page.get_attribute("li.finding.selected", "data-finding") == boxes.nth(0).get_attribute("data-finding")

    first, second = items.nth(0).get_attribute("data-finding"), items.nth(1).get_attribute("data-finding")
    items.nth(0).locator("input[name=note]").fill("no helmet near the crane")
    items.nth(0).locator("button:has-text('Correct the box')").click()  # then one drag on the photo
    area = page.locator(".photo svg").bounding_box()
    page.mouse.move(area["x"] + area["width"] * 0.1, area["y"] + area["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] * 0.5, area["y"] + area["height"] * 0.6, steps=5)
    page.mouse.up()
    assert "New box" in items.nth(0).inner_text()
    items.nth(0).locator("button:has-text('Confirm hazard')").click()
    page.wait_for_selector(f"li[data-finding='{first}'] .badge.confirmed")
    page.locator(f"li[data-finding='{second}'] button:has-text('Reject')").click()
    page.wait_for_selector(f"li[data-finding='{second}'] .badge.rejected")
    assert "test-inspector" in page.inner_text(f"li[data-finding='{first}']")  # the reviewer is the key's name
    with server.client(Role.INSPECTOR) as client:
        scan_id = page.url.rsplit("/", 1)[-1]
        width = client.get(f"/v1/scans/{scan_id}").json()["image"]["width"]
        review = next(r for r in client.get("/v1/reviews", params={"scan_id": scan_id}).json()["reviews"]
                      if r["finding_id"] == first)
    assert review["corrected"] and review["reviewer"] == "test-inspector"
    assert review["note"] == "no helmet near the crane"
    assert abs(review["box"]["x1"] - 0.1 * width) <= 0.02 * width
    assert abs(review["box"]["x2"] - 0.5 * width) <= 0.02 * width

    page.goto(f"{server.url}/app#/inspections/{inspection_id}")
    page.wait_for_selector("main h1:has-text('Inspection at dock-9')")
    assert page.locator("main .thumbs img").count() == 1
    images_loaded(page, "main .thumbs img")  # the annotated photo
    page.fill("input[name=responsible]", "site contractor")
    page.fill("input[name=deadline]", "2027-01-15")
    page.click("button:has-text('Set rectification')")
    page.wait_for_selector("td .badge.open")
    page.set_input_files("td input[type=file]", str(after_photo(tmp_path)))
    page.click("button:has-text('Close with this photo')")
    page.wait_for_selector("td .badge.closed")
    assert page.locator("button:has-text('Verify')").count() == 0  # the closer never verifies

    second_inspector = page_at()
    sign_in(second_inspector, verifier_key)
    second_inspector.goto(f"{server.url}/app#/inspections/{inspection_id}")
    second_inspector.click("button:has-text('Verify')")
    second_inspector.wait_for_selector("td .badge.verified")

    page.reload()
    page.wait_for_selector("td .badge.verified")
    texts = {}
    for language in ("en", "zh"):
        with page.expect_download() as download:
            page.click(f"a[href$='record.pdf?lang={language}']")
        reader = PdfReader(io.BytesIO(Path(download.value.path()).read_bytes()))
        texts[language] = "\n".join(page_.extract_text() for page_ in reader.pages)
    assert first in texts["en"] and second in texts["en"] and "Inspection record" in texts["en"]
    assert first in texts["zh"] and "隐患排查记录" in texts["zh"]

    page.click("#lang")
    assert page.inner_text("nav").startswith("拍照识别") and page.evaluate("document.documentElement.lang") == "zh-Hans"
    page.click("#lang")
    assert "Scan a photo" in page.inner_text("nav")

    page.click("#signout")
    page.wait_for_selector("input[name=key]")
    assert not page.is_visible("#signout") and page.inner_text("nav") == ""
    page.goto(f"{server.url}/app#/inspections")
    page.wait_for_selector("input[name=key]")  # signed out: the sign-in form again


def _findings_of(server, photo: Path) -> int:
    with server.client(Role.INSPECTOR) as client:
        return len(client.post("/v1/scans", files={"image": (photo.name, photo.read_bytes())}).json()["findings"])


def test_page_of_a_pipeline_key_shows_no_review_and_a_direct_review_is_403(server, page_at):
    page = page_at()
    page.wait_for_selector("input[name=key]")
    assert not page.is_visible("#signout")  # nothing but the sign-in form before signing in
    sign_in(page, server.keys[Role.PIPELINE])
    nav = page.inner_text("nav")
    assert "Scan a photo" in nav and "Review queue" not in nav and "Inspections" not in nav
    status = page.evaluate("""async () => {
        const session = await (await fetch('/v1/session')).json();
        const response = await fetch('/v1/findings/any/review', {method: 'POST',
            headers: {'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf_token},
            body: JSON.stringify({decision: 'confirm'})});
        return response.status;
    }""")
    assert status == 403


def test_page_shows_a_clear_error_for_a_file_that_is_not_a_photo(server, page_at, tmp_path):
    page = page_at(PHONE)
    sign_in(page, server.keys[Role.INSPECTOR])
    fake = tmp_path / "notes.jpg"
    fake.write_bytes(b"this is a text file, not a photo")
    page.set_input_files("input[type=file]", str(fake))
    page.click("main form button[type=submit]")
    assert re.search("not a photo", page.inner_text("main [role=alert]"))


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_page_main_screens_have_no_serious_accessibility_violations(server, page_at, ppe_photos, viewport):
    page = page_at(viewport)
    page.wait_for_selector("input[name=key]")
    found = {"sign-in": axe_violations(page)}
    sign_in(page, server.keys[Role.INSPECTOR])
    found["scan"] = axe_violations(page)
    scan_photo(page, ppe_photos[0])
    found["scan result"] = axe_violations(page)
    page.click("nav a[href='#/queue']")
    page.wait_for_selector("main h1:has-text('waiting for review')")
    found["queue"] = axe_violations(page)
    page.click("nav a[href='#/inspections']")
    page.wait_for_selector("main h1:has-text('Inspections')")
    found["inspections"] = axe_violations(page)
    page.click("nav a[href='#/rectifications']")
    page.wait_for_selector("main h1:has-text('Rectifications')")
    found["rectifications"] = axe_violations(page)
    assert not any(found.values()), found


def test_page_shows_a_clear_error_for_a_photo_too_large(browser, tmp_path_factory, ppe_photos):
    photo = max(ppe_photos[:40], key=lambda path: path.stat().st_size)
    limit = photo.stat().st_size // 2
    with live_server(tmp_path_factory.mktemp("small-uploads"), wait_ready=False, max_upload_bytes=limit) as small:
        context = browser.new_context(viewport=PHONE)
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT)
            page.goto(f"{small.url}/app")
            sign_in(page, small.keys[Role.INSPECTOR])
            page.set_input_files("input[type=file]", str(photo))
            page.click("main form button[type=submit]")
            assert "too large" in page.inner_text("main [role=alert]")
        finally:
            context.close()
