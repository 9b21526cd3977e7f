"""A loopback HTTP server standing in for WeCom, DingTalk and Slack: it records every
request it gets and answers like a robot that accepted the message."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # the parsed JSON, or the raw text when it is not JSON
    arrived: float  # time.monotonic(), to compare with the moment a test emitted

    @property
    def text(self) -> str:
        """The message as a robot shows it: `text.content` (WeCom, DingTalk) or `text` (Slack)."""
        if isinstance(self.body, dict):
            text = self.body.get("text")
            return text.get("content", "") if isinstance(text, dict) else str(text or "")
        return str(self.body)


class Receiver:
    """Records requests; `answer(path, status, body)` makes one path refuse instead."""

    ACCEPTED = {"errcode": 0, "errmsg": "ok"}

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self._answers: dict[str, tuple[int, Any]] = {}
        self._arrival = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, name="alert-receiver",
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "Receiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, status: int, body: Any) -> None:
        self._answers[path] = (status, body)

    def accept_everything(self) -> None:
        self._answers.clear()

    def wait_for(self, count: int, timeout: float,
                 where: Callable[[ReceivedRequest], bool] = lambda request: True) -> list[ReceivedRequest]:
        """The matching requests once there are `count` of them (or all after `timeout`)."""
        deadline = time.monotonic() + timeout
        with self._arrival:
            while True:
                matching = [request for request in self.requests if where(request)]
                left = deadline - time.monotonic()
                if len(matching) >= count or left <= 0:
                    return matching
                self._arrival.wait(left)

    def _record(self, request: ReceivedRequest) -> tuple[int, Any]:
        with self._arrival:
            self.requests.append(request)
            self._arrival.notify_all()
        return self._answers.get(request.path, (200, self.ACCEPTED))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.monotonic()
                raw = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw
                parts = urlsplit(self.path)
                status, answer = receiver._record(ReceivedRequest(
                    "POST", parts.path, dict(parse_qsl(parts.query)),
                    {key.lower(): value for key, value in self.headers.items()}, body, arrived))
                content = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request lines carry the robots' keys; keep them out of test output

        return Handler
