"""/docs renders with no network beyond the server itself (an intranet has no CDN)."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from playwright.sync_api import Page, Route, expect

pytestmark = pytest.mark.browser


def _only_the_server(page: Page, base: str) -> list[str]:
    """Abort every request to another host; returns the URLs that were refused."""
    refused: list[str] = []
    host = urlparse(base).netloc

    def guard(route: Route) -> None:
        if urlparse(route.request.url).netloc == host:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    return refused


def test_swagger_ui_shows_the_api_offline(page: Page, fake_base: str) -> None:
    refused = _only_the_server(page, fake_base)
    page.goto(fake_base + "/docs")
    expect(page.locator(".swagger-ui .opblock-summary-path").first).to_be_visible()
    paths = page.locator(".swagger-ui .opblock-summary-path").all_inner_texts()
    assert any("/v1/search" in p for p in paths) and any("/v1/lookup" in p for p in paths)
    assert refused == []
