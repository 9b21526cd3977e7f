"""A real Prefect server for the alert tests, a loopback receiver in place of WeCom and
DingTalk, and alerting set up between the two.

The server is `prefect server start` in a subprocess with its own home and SQLite
database, because the point is what a real server does: import our block classes, fire
automations, render templates and call the robots. Its output goes to a file so tests
can check that no secret reached the log. While this package runs, the Prefect client
points at it; the flow tests' harness (tests/flows) is neither used nor disturbed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_URL, temporary_settings

from oms.config import reset_settings
from tasks.alert_channels import load_channels
from tasks.alert_setup import AlertingReport, ensure_alerting
from tests.alerts.loopback import Receiver
from tests.prefect_server import PrefectServer, running_prefect_server

# No PREFECT_UI_URL, as a server started by hand: the link to a failed run must come out
# absolute all the same (see tasks.alert_setup.run_link).
ALERT_SERVER_SETTINGS = {
    # INFO everywhere, so the log would show a secret that any library printed.
    "PREFECT_LOGGING_ROOT_LEVEL": "INFO",
    "PREFECT_SERVER_LOGGING_LEVEL": "INFO",
    # Stored events are readable within a second, for tests that look for one.
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "0.5",
}


@dataclass(frozen=True)
class Alerting:
    """What `ensure_alerting` was run with, and the secrets that must stay secret."""

    config_path: Path
    report: AlertingReport
    wecom_path: str
    wecom_key: str
    dingtalk_path: str
    dingtalk_token: str
    dingtalk_secret: str

    @property
    def secrets(self) -> list[str]:
        return [self.wecom_key, self.dingtalk_token, self.dingtalk_secret]


class EveryLogRecord(logging.Handler):
    """Keeps every record logged in this process, formatted, whatever its logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted holds nothing to scan
            pass


@pytest.fixture(scope="package")
def whole_run_logs(sandbox) -> Iterator[EveryLogRecord]:
    """Every log line of this package's tests, at DEBUG, and after them the check that no
    token, refresh token or app secret the sandbox ever issued appears in one of them
    (nor in the Prefect server's own log, which `prefect_server` adds)."""
    handler, root = EveryLogRecord(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    handler.server_logs = []  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    state = sandbox.state
    secrets = {*state.tokens, *state.refresh_tokens, *state.app_secrets.values()}
    text = "\n".join(handler.lines + handler.server_logs)  # type: ignore[attr-defined]
    leaked = sorted(secret[:6] + "..." for secret in secrets if len(secret) >= 8 and secret in text)
    assert not leaked, f"sandbox secrets in this run's logs: {leaked}"


@pytest.fixture(scope="package")
def prefect_server(tmp_path_factory, whole_run_logs) -> Iterator[PrefectServer]:
    with running_prefect_server(tmp_path_factory.mktemp("prefect-server"), ALERT_SERVER_SETTINGS) as server:
        # Prefect keeps one events and one log worker per process, bound to the API they
        # first talked to: stop any (the flow tests' harness) before, and ours after.
        _drain_prefect_workers()
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server
            _drain_prefect_workers()
        whole_run_logs.server_logs.append(server.log_text())


@pytest.fixture(scope="package")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(autouse=True)
def _robots_accept_again(request):
    yield
    if "receiver" in request.fixturenames:
        request.getfixturevalue("receiver").accept_everything()


@pytest.fixture(scope="package")
def alerting(prefect_server, receiver, tmp_path_factory) -> Iterator[Alerting]:
    """A WeCom and a DingTalk channel, both at the receiver, set up on the server."""
    config_path = tmp_path_factory.mktemp("alerts-config") / "alerts.yaml"
    config_path.write_text(
        "channels:\n"
        "  - {name: oncall-wecom, kind: wecom, url_env: OMS_TEST_WECOM_URL}\n"
        "  - {name: oncall-dingtalk, kind: dingtalk, url_env: OMS_TEST_DINGTALK_URL,\n"
        "     secret_env: OMS_TEST_DINGTALK_SECRET}\n"
        "  - {name: oncall-slack, kind: slack, url_env: OMS_TEST_SLACK_URL_NEVER_SET}\n",
        encoding="utf-8")
    wecom_key, dingtalk_token = "wecomkey-7f3a9c1e-5b2d", "dingtoken4e8b6f0a9d1c"
    dingtalk_secret = "SECd41d8cd98f00b204e9800998ecf8427e"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OMS_TEST_WECOM_URL", f"{receiver.url}/cgi-bin/webhook/send?key={wecom_key}")
        env.setenv("OMS_TEST_DINGTALK_URL", f"{receiver.url}/robot/send?access_token={dingtalk_token}")
        env.setenv("OMS_TEST_DINGTALK_SECRET", dingtalk_secret)
        env.delenv("OMS_TEST_SLACK_URL_NEVER_SET", raising=False)
        env.setenv("OMS_ALERTS_CONFIG_PATH", str(config_path))
        reset_settings()
        report = ensure_alerting(load_channels())
        yield Alerting(config_path, report, "/cgi-bin/webhook/send", wecom_key, "/robot/send",
                       dingtalk_token, dingtalk_secret)
    reset_settings()


def _drain_prefect_workers() -> None:
    APILogWorker.drain_all()
    EventsWorker.drain_all()
