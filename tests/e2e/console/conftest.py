"""The console in headless Chromium: Debian's `chromium` driven by Playwright for Python
(`executable_path`, no browser download), one browser per session, a fresh context (so a
fresh sessionStorage) per test, and every console message and page error collected: a test
fails on any it did not expect."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import RunningStack, start_stack

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
# The README's example of an external type ("Adding a job type").
README_EXTERNAL_TYPE = {
    "name": "video.render",
    "schema": {"type": "object", "required": ["url"]},
    "timeout_seconds": 7200,
}
# Chromium's own traffic (updates, sync, safe browsing) fails on a closed network and is of
# no use to a test; the sandbox needs user namespaces a container may not give root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str | None:
    configured = os.environ.get("TASKMILL_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def unavailable(reason: str) -> None:
    """Skip, saying why; where the browser tests must run (CI), fail instead."""
    if os.environ.get("TASKMILL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (TASKMILL_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """One local stack for the module, with the README's fan-out job types (a parent whose
    body submits children, `context.submit`, is how jobs get a `parent_id`) and its external
    type, declared with a schema that has no properties."""
    data_dir = tmp_path_factory.mktemp("e2e-console") / "data"
    running = start_stack(
        data_dir,
        {
            "TASKMILL_JOB_MODULES": "tests.support.fanout_jobs",
            "TASKMILL_EXTERNAL_TYPES": json.dumps([README_EXTERNAL_TYPE]),
        },
    )
    yield running
    if running.process.poll() is None:
        running.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        unavailable(
            "Chromium is not installed (no `chromium` on PATH, or TASKMILL_CHROMIUM names no "
            "file): `make browser` installs Debian's package (apt-get, as root)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed: `make venv` installs it")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Console:
    """A browser page on the stack's console, with what the page said on its console."""

    page: Any
    base: str
    messages: list[str] = field(default_factory=list)
    # Every console message of any type (a token must appear in none).
    everything: list[str] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)
    # Substrings of console errors a test provokes on purpose (an API answer of 400, say).
    expected_errors: list[str] = field(default_factory=list)

    def open(self, route: str = "") -> None:
        self.page.goto(f"{self.base}/console/{'#' + route if route else ''}")

    def sign_in(self, email: str, password: str) -> None:
        page = self.page
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Sign out").wait_for()

    def nav(self, name: str) -> None:
        self.page.get_by_role("navigation", name="Main").get_by_role(
            "link", name=name, exact=True
        ).click()
        self.page.get_by_role("heading", level=1, name=name).wait_for()

    def shoot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        width = self.page.viewport_size["width"]
        path = SCREENSHOTS / f"{name}-{width}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def no_horizontal_scroll(self) -> None:
        widths = self.page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"scrolls sideways: {widths}"

    def unexpected(self) -> list[str]:
        return [m for m in self.messages if not any(e in m for e in self.expected_errors)]


@pytest.fixture
def console(browser: Any, stack: RunningStack) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    seen = Console(page, stack.url)
    page.on(
        "console",
        lambda m: (
            seen.messages.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None
        ),
    )
    page.on("pageerror", lambda e: seen.messages.append(f"pageerror: {e}"))
    page.on("request", lambda r: seen.requests.append(r))
    yield seen
    context.close()
    assert seen.unexpected() == [], "the browser console reported errors"
