"""Browser fixtures: Debian's Chromium driven by Playwright against the live server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import pytest

from tests.factories import PASSWORD

# Playwright's sync API runs an event loop in this thread; Django's ORM refuses to run
# inside one unless told that this is safe (it is: the tests are synchronous).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

TIMEOUT_MS = 5_000


def pytest_configure(config: pytest.Config) -> None:
    # A failing browser test leaves a screenshot of each of its pages under test-results/.
    if getattr(config.option, "screenshot", None) == "off":
        config.option.screenshot = "only-on-failure"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    # `playwright install` cannot download browsers here: use the system Chromium.
    return {
        **browser_type_launch_args,
        "executable_path": shutil.which("chromium"),
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    # Wide enough that all twelve columns of a default stream show without scrolling.
    return {**browser_context_args, "viewport": {"width": 3000, "height": 1000}}


@pytest.fixture
def log_in(live_server) -> Callable:
    """Log a page in through the login form; returns the page, on the stream list."""

    def log_in_page(page, user):
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{live_server.url}/streams/")
        return page

    return log_in_page
