"""A real `prefect server start` in a subprocess, alone with its own home and SQLite
database, for the tests that need what only a real server does: the alert tests
(automations, block classes, templates) and the browser test (the UI itself).

Its output goes to a file, so a test can read what the server logged.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SERVER_STARTUP_SECONDS = 90


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    ui_url: str
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def client_environment(self, home: Path) -> dict[str, str]:
        """For a process that runs flows against this server and nothing else."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
        env.update({"PREFECT_API_URL": self.api_url, "PREFECT_HOME": str(home),
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"})
        return env


@contextmanager
def running_prefect_server(root: Path, settings: dict[str, str] | None = None) -> Iterator[PrefectServer]:
    """Start a server under `root`; `settings` are extra PREFECT_* variables for it, where
    `{port}` stands for the port it is given."""
    port = _free_port()
    settings = {key: value.format(port=port) for key, value in (settings or {}).items()}
    server = PrefectServer(f"http://127.0.0.1:{port}/api", f"http://127.0.0.1:{port}", root / "server.log")
    with server.log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("prefect")), "server", "start",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env=_server_environment(root, settings), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stopping it stops its children
        )
        try:
            _wait_until_healthy(server, process)
            yield server
        finally:
            _stop(process)


def _server_environment(root: Path, settings: dict[str, str]) -> dict[str, str]:
    # Nothing of the caller's Prefect profile: this server is alone with its own files.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(root / "home"),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{root / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "true",
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        **settings,
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
