"""Browser tests: Debian's Chromium driven by Playwright, a Prefect server of their own.

Chromium comes from the system (`apt-get install chromium`), never from Playwright's
download, which cannot reach its host here. Where it is missing the tests skip and say
why, unless OMS_REQUIRE_BROWSER=1 (set by `.ci/run`): CI must never pass by skipping them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("OMS_CHROMIUM", "/usr/bin/chromium"))
SERVER_STARTUP_SECONDS = 90


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    ui_url: str
    root: Path

    def log_text(self) -> str:
        return (self.root / "server.log").read_text(encoding="utf-8", errors="replace")

    def client_environment(self) -> dict[str, str]:
        """For a process that runs flows against this server and nothing else."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
        env.update({"PREFECT_API_URL": self.api_url, "PREFECT_HOME": str(self.root / "client-home"),
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"})
        return env


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
    port = _free_port()
    server = PrefectServer(f"http://127.0.0.1:{port}/api", f"http://127.0.0.1:{port}", root)
    with (root / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("prefect")), "server", "start",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env=_server_environment(server), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stopping it stops its children
        )
        try:
            _wait_until_healthy(server, process)
            yield server
        finally:
            _stop(process)


@pytest.fixture
def artifacts_dir() -> Path:
    """Where screenshots go: var/e2e (ignored by git) unless OMS_E2E_ARTIFACTS says."""
    folder = Path(os.environ.get("OMS_E2E_ARTIFACTS", REPO / "var" / "e2e"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _server_environment(server: PrefectServer) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(server.root / "home"),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{server.root / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "true",
        # The UI's own calls go to this server's API, whatever port it was given.
        "PREFECT_UI_API_URL": server.api_url,
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    })
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_healthy(server: PrefectServer, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited with {process.returncode}:\n{server.log_text()[-3000:]}")
        try:
            if httpx.get(f"{server.api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"prefect server not healthy after {SERVER_STARTUP_SECONDS}s:\n{server.log_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
