"""From the pipeline to on-call through a real Prefect server: alert events and failed
runs reach the robots within seconds, once each, and no secret reaches the server's log."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from flows.ingest import ingest_orders
from oms.config import reset_settings
from oms.db.engine import dispose_engines
from oms.db.migrate import upgrade
from tasks.alerts import (
    ALREADY_ALERTED_MARKER,
    TOKEN_REFRESH_FAILED,
    TOKEN_REFRESH_RECOVERED,
    announce,
)

ARRIVAL_TIMEOUT = 15
# After the first copy arrived, how long a second one is given to show up.
DUPLICATE_GRACE_SECONDS = 3


def assert_no_secret_in_server_log(prefect_server, alerting) -> None:
    log = prefect_server.log_text()
    for secret in alerting.secrets:
        assert secret not in log


def one_per_channel(receiver, alerting, marker: str) -> list:
    """Wait for the message containing `marker` at both robots, then make sure no second
    copy follows."""
    def wanted(request):
        return marker in request.text

    got = receiver.wait_for(2, ARRIVAL_TIMEOUT, wanted)
    assert sorted(r.path for r in got) == sorted([alerting.wecom_path, alerting.dingtalk_path])
    assert len(receiver.wait_for(3, DUPLICATE_GRACE_SECONDS, wanted)) == 2
    return got


def test_a_refresh_failure_reaches_both_robots_within_seconds(prefect_server, alerting, receiver,
                                                              record_property):
    shop = f"alert-shop-{uuid.uuid4().hex[:6]}"
    headline = f"Token refresh failed: taobao shop {shop}"
    message = f"Shop {shop} (taobao) could not refresh its access token: invalid_grant. Re-authorise the shop."
    emitted = time.monotonic()
    announce(TOKEN_REFRESH_FAILED, shop_code=shop, platform="taobao", headline=headline, message=message)
    got = one_per_channel(receiver, alerting, headline)

    for request in got:
        assert request.text == f"{headline}\n{message}"
    dingtalk = next(r for r in got if r.path == alerting.dingtalk_path)
    assert {"timestamp", "sign", "access_token"} <= set(dingtalk.query)
    seconds = max(r.arrived for r in got) - emitted
    record_property("emit_to_arrival_seconds", round(seconds, 2))
    print(f"emit -> arrival at both robots: {seconds:.2f} s")
    assert seconds < 10
    assert_no_secret_in_server_log(prefect_server, alerting)


def test_the_end_of_trouble_is_announced_as_resolved(prefect_server, alerting, receiver, record_property):
    shop = f"alert-shop-{uuid.uuid4().hex[:6]}"
    headline = f"Token refresh works again: taobao shop {shop}"
    emitted = time.monotonic()
    announce(TOKEN_REFRESH_RECOVERED, shop_code=shop, platform="taobao", headline=headline,
             message=f"Shop {shop} refreshed its token; nothing to do.")
    got = one_per_channel(receiver, alerting, headline)
    assert all(r.text.startswith(f"RESOLVED: {headline}\n") for r in got)
    record_property("emit_to_arrival_seconds", round(max(r.arrived for r in got) - emitted, 2))


@pytest.fixture
def empty_database(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'oms.db'}"
    upgrade(url)
    monkeypatch.setenv("OMS_DATABASE_URL", url)
    reset_settings()
    yield url
    monkeypatch.undo()
    reset_settings()
    dispose_engines()


def test_a_failed_run_of_our_flow_sends_one_alert_with_an_absolute_link_to_the_run(
        prefect_server, alerting, receiver, empty_database, record_property):
    shop = f"no-such-shop-{uuid.uuid4().hex[:6]}"
    state = ingest_orders(shop, return_state=True)  # no such shop: the run fails
    failed_at = time.monotonic()
    assert state.is_failed()
    run_id = str(state.state_details.flow_run_id)

    got = one_per_channel(receiver, alerting, run_id)
    link = f"{prefect_server.ui_url}/runs/flow-run/{run_id}"
    for request in got:
        lines = request.text.splitlines()
        assert lines[0] == f"Failed: ingest-orders run ingest-{shop}"
        assert lines[1] == f"Flow ingest-orders, run ingest-{shop}, ended Failed."
        assert f"no shop with code '{shop}'" in lines[2]
        assert lines[-1] == link and link.startswith("http://127.0.0.1:")
    record_property("failed_to_arrival_seconds", round(max(r.arrived for r in got) - failed_at, 2))
    print("alert text:", got[0].text, sep="\n")
    assert_no_secret_in_server_log(prefect_server, alerting)


def test_a_run_of_a_flow_that_is_not_ours_alerts_no_one(prefect_server, alerting, receiver):
    from prefect import flow

    @flow(name="somebody-elses-flow")
    def not_ours():
        raise RuntimeError("not our problem")

    state = not_ours(return_state=True)
    assert state.is_failed()
    run_id = str(state.state_details.flow_run_id)
    # Our own failed runs alert within about a second (see above).
    assert receiver.wait_for(1, 4, lambda r: run_id in r.text or "somebody-elses-flow" in r.text) == []


def test_a_run_failing_of_trouble_on_call_already_heard_of_does_not_page_again(
        prefect_server, alerting, receiver):
    from prefect import flow

    @flow(name="refresh-tokens")
    def refresh_refused():
        raise RuntimeError(f"shop s9: refresh refused ({ALREADY_ALERTED_MARKER})")

    @flow(name="refresh-tokens")
    def refresh_broke():
        raise RuntimeError("shop s9: the token store is unreachable")

    quiet = refresh_refused(return_state=True)
    loud = refresh_broke(return_state=True)
    assert quiet.is_failed() and loud.is_failed()
    # The second run's alert arriving shows the first had its chance to page, and did not.
    one_per_channel(receiver, alerting, str(loud.state_details.flow_run_id))
    quiet_id = str(quiet.state_details.flow_run_id)
    assert [r for r in receiver.requests if quiet_id in r.text or "refresh refused" in r.text] == []


def failed_notifications(prefect_server) -> list[dict]:
    """The `prefect.automation.action.failed` events the server stored for notifications."""
    answer = httpx.post(f"{prefect_server.api_url}/events/filter", json={
        "filter": {"event": {"name": ["prefect.automation.action.failed"]}}, "limit": 50}, timeout=10)
    answer.raise_for_status()
    return [event for event in answer.json()["events"] if "notification_log" in event["payload"]]


def test_a_refusing_robot_fails_the_action_without_its_key_reaching_log_or_events(
        prefect_server, alerting, receiver):
    receiver.answer(alerting.wecom_path, 500, {"errcode": -1, "errmsg": f"echo key={alerting.wecom_key}"})
    shop = f"alert-shop-{uuid.uuid4().hex[:6]}"
    headline = f"Token refresh failed: jd shop {shop}"
    announce(TOKEN_REFRESH_FAILED, shop_code=shop, platform="jd", headline=headline, message="Re-authorise.")
    got = one_per_channel(receiver, alerting, headline)  # DingTalk still gets it
    assert len(got) == 2

    deadline, failures = time.monotonic() + ARRIVAL_TIMEOUT, []
    while time.monotonic() < deadline and not failures:
        failures = [event for event in failed_notifications(prefect_server)
                    if "WeCom answered HTTP 500" in event["payload"]["notification_log"]]
        time.sleep(0.5)
    assert failures, "the server recorded no failed notification"
    assert "Action failed" in prefect_server.log_text()
    print("notification_log:", failures[0]["payload"]["notification_log"])
    for secret in alerting.secrets:
        assert all(secret not in str(event) for event in failures)
    assert_no_secret_in_server_log(prefect_server, alerting)
