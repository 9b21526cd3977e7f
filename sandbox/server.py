"""Run the sandbox on a free loopback port in a background thread.

The demo, the benchmark and the integration tests all need a real HTTP server they can
start and stop in-process; uvicorn in a daemon thread gives exactly that.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from collections.abc import Iterator

import uvicorn

from sandbox.app import create_app
from sandbox.model import SandboxState


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RunningSandbox:
    def __init__(self, state: SandboxState, port: int) -> None:
        self.state = state
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            create_app(state), host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="sandbox", daemon=True)

    def start(self, timeout: float = 15.0) -> "RunningSandbox":
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@contextmanager
def running_sandbox(state: SandboxState | None = None, port: int = 0) -> Iterator[RunningSandbox]:
    sandbox = RunningSandbox(state or SandboxState(), port or free_loopback_port()).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()
