"""Screenshots of the page's main screens at phone and desktop width, against a real service with real photos.

    .venv/bin/python -m tests.page_screenshots OUT_DIR

Starts the service on a new home (a few ppe-vest photos in the sample bank, for similar cases), signs in as an
inspector in Debian's headless Chromium, opens an inspection, scans a photo into it, reviews two findings, sets
and closes a rectification, and saves `<screen>-<width>.png` for each screen (and the scan result in Chinese).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from playwright.sync_api import Page, sync_playwright

from hazardvision.access import Role
from hazardvision.bank.bank import SampleBank
from hazardvision.similar.maintenance import sync_indexes
from tests.browsers import CHROMIUM
from tests.conftest import bundled_packs, test_photos
from tests.service.conftest import labelled_bank, live_server

WIDTHS = {"phone": {"width": 375, "height": 812}, "desktop": {"width": 1280, "height": 900}}


def _shoot(page: Page, out: Path, name: str) -> None:
    page.wait_for_load_state("networkidle")
    for width, viewport in WIDTHS.items():
        page.set_viewport_size(viewport)
        page.screenshot(path=str(out / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size(WIDTHS["desktop"])


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    photos = test_photos("ppe-vest")
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        bank = SampleBank(home)
        labelled_bank(bank, Path(folder) / "labelled", photos[20:26])
        sync_indexes(bank, bundled_packs())
        bank.engine.dispose()
        grey = Path(folder) / "after.jpg"
        cv2.imwrite(str(grey), np.full((480, 640, 3), 128, np.uint8))
        with live_server(home) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport=WIDTHS["desktop"])
            page.set_default_timeout(60_000)
            page.goto(f"{server.url}/app")
            page.wait_for_selector("input[name=key]")
            _shoot(page, out, "1-sign-in")
            page.fill("input[name=key]", server.keys[Role.INSPECTOR])
            page.click("form button[type=submit]")
            page.wait_for_selector("#signout:not([hidden])")
            page.click("nav a[href='#/inspections']")
            page.fill("main form input[name=site] >> nth=0", "dock-9")
            page.fill("main form input[name=enterprise] >> nth=0", "acme")
            page.fill("main form textarea", "Quarterly visit, east scaffold")
            page.click("main form button[type=submit] >> nth=0")
            page.wait_for_selector("main h1:has-text('Inspection at')")
            page.click("nav a[href='#/scan']")
            page.wait_for_selector("input[type=file]")
            _shoot(page, out, "2-scan")
            page.set_input_files("input[type=file]", str(photos[1]))
            page.fill("input[name=site]", "dock-9")
            page.fill("input[name=enterprise]", "acme")
            page.click("main form button[type=submit]")
            page.wait_for_selector("main h1:has-text('Findings in')")
            page.locator("ol.findings > li.finding >> nth=0").locator("h3 button").click()
            _shoot(page, out, "3-scan-result")
            page.click("#lang")
            _shoot(page, out, "3-scan-result-zh")
            page.click("#lang")
            items = page.locator("ol.findings > li.finding")
            if items.count() >= 2:
                items.nth(0).locator("button:has-text('Confirm hazard')").click()
                page.wait_for_selector("li.finding .badge.confirmed")
                page.locator("ol.findings > li.finding >> nth=1").locator("button:has-text('Reject')").click()
                page.wait_for_selector("li.finding .badge.rejected")
            page.click("nav a[href='#/queue']")
            page.wait_for_selector("main h1:has-text('waiting for review')")
            _shoot(page, out, "4-queue")
            page.click("nav a[href='#/inspections']")
            page.wait_for_selector("main table a")
            page.click("main table a >> nth=0")
            page.wait_for_selector("main h1:has-text('Inspection at')")
            if page.locator("input[name=responsible]").count():
                page.fill("input[name=responsible]", "site contractor")
                page.fill("input[name=deadline]", "2027-01-15")
                page.click("button:has-text('Set rectification')")
                page.wait_for_selector("td .badge.open")
            _shoot(page, out, "5-inspection")
            page.click("nav a[href='#/rectifications']")
            page.wait_for_selector("main h1:has-text('Rectifications')")
            _shoot(page, out, "6-rectifications")
            browser.close()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots"))
