"""The API docs pages work offline: every script, style and icon they load comes from the service itself."""

from __future__ import annotations

import re

import pytest

from tests.service.conftest import live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("docs-home"), wait_ready=False) as running:
        yield running


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_loads_its_assets_from_the_service(server, page):
    with server.client(None) as anonymous:
        html = anonymous.get(page)
        assert html.status_code == 200 and "text/html" in html.headers["content-type"]
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
        assert urls and all(url.startswith("/") for url in urls), urls  # no CDN, no external host
        for url in urls:
            asset = anonymous.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url


def test_docs_page_renders_the_api_in_a_browser_without_leaving_the_service(server, browser):
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        page.goto(f"{server.url}/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
        assert "hazardvision" in page.inner_text(".swagger-ui .info .title")
        page.wait_for_selector("#operations-scans-create_scan_v1_scans_post", timeout=30_000)
    finally:
        page.close()
    assert requested and all(url.startswith(server.url) for url in requested), requested
