"""Browser tests: Debian's Chromium driven by Playwright, a Prefect server of their own.

Chromium comes from the system (`apt-get install chromium`), never from Playwright's
download, which cannot reach its host here. Where it is missing the tests skip and say
why, unless OMS_REQUIRE_BROWSER=1 (set by `.ci/run`): CI must never pass by skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from tests.prefect_server import REPO, PrefectServer, running_prefect_server

CHROMIUM = Path(os.environ.get("OMS_CHROMIUM", "/usr/bin/chromium"))


def _browser_missing(reason: str) -> None:
    if os.environ.get("OMS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"a browser is required here (OMS_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(f"{reason}; install it with `apt-get install -y chromium` "
                "(set OMS_REQUIRE_BROWSER=1 to make this a failure)")


# Module scope, not session: Playwright's sync API keeps an event loop on the main thread
# while it runs, and Prefect then takes every later test for async code (State.result()
# hands back a coroutine). Closing it with the module keeps the rest of the suite sync.
@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        _browser_missing(f"{CHROMIUM} is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _browser_missing("the playwright package is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium refuses its own sandbox.
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory) -> Iterator[PrefectServer]:
    root = tmp_path_factory.mktemp("prefect-server")
    # The UI's own calls go to this server's API, whatever port it was given.
    with running_prefect_server(root, {"PREFECT_UI_API_URL": "http://127.0.0.1:{port}/api"}) as server:
        yield server


@pytest.fixture
def artifacts_dir() -> Path:
    """Where screenshots go: var/e2e (ignored by git) unless OMS_E2E_ARTIFACTS says."""
    folder = Path(os.environ.get("OMS_E2E_ARTIFACTS", REPO / "var" / "e2e"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
