"""Headless Chromium for the dashboard tests: Debian's `chromium` package driven by Playwright
(from PyPI, which carries the same driver as the npm package) with `executable_path` set, so no
browser is downloaded.

`Browser.page()` opens a page on the daemon that records every console error, uncaught
exception, failed request and request to another origin, so a test can assert there were none;
`shot()` saves a screenshot under target/ui-artifacts, kept as the run's artifacts.
"""

import os
import re
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("DRYDOCK_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO_ROOT / "target" / "ui-artifacts"
# This machine has no internet: Chromium must not try to reach Google at start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


class Browser:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.playwright = sync_playwright().start()
        self.chromium = self.playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def page(self, viewport=DESKTOP, endpoint: str | None = None):
        """A page for the daemon at `endpoint` (the browser's own by default)."""
        origin = (endpoint or self.endpoint) + "/"
        # The daemon's certificate is self-signed.
        context = self.chromium.new_context(ignore_https_errors=True, viewport=viewport)
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.problems = []
        page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: page.problems.append(f"exception: {e}"))
        page.on("requestfailed", lambda r: page.problems.append(f"request failed: {r.url} {r.failure}"))
        # The dashboard works offline: nothing may be asked of another origin.
        page.on(
            "request",
            lambda r: r.url.startswith((origin, "data:"))
            or page.problems.append(f"request to another origin: {r.url}"),
        )
        return page

    @contextmanager
    def checked_page(self, **options):
        """A page() that fails the test if the browser reported a problem while it was open."""
        page = self.page(**options)
        try:
            yield page
        finally:
            problems = list(page.problems)
            page.context.close()
        assert not problems, "the browser reported problems:\n" + "\n".join(problems)

    def close(self):
        self.chromium.close()
        self.playwright.stop()


def shot(page, name: str):
    """Saves a full-page screenshot as target/ui-artifacts/<name>.png."""
    safe = re.sub(r"[^a-z0-9-]+", "-", name.lower())
    page.screenshot(path=str(ARTIFACTS / f"{safe}.png"), full_page=True)


def sign_in(page, endpoint: str, token: str):
    page.goto(f"{endpoint}/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.locator("main h1").first.wait_for()
