"""A shop whose token lapsed and whose refresh the platform refuses, end to end: the real
flow on a real Prefect server, the alert at the robots, once per incident, and a
"resolved" when the seller re-authorises; no token or secret in any log on the way."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone

import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

from flows.ingest import ingest_orders
from oms.config import reset_settings
from oms.db.incidents import open_incidents
from oms.db.tokens import token_record
from sandbox.app import add_simulated_shop, shop_base_url
from sandbox.shopee import ACCESS_TOKEN_LIFETIME, REFRESH_TOKEN_LIFETIME
from tasks.pacing import ensure_platform_limits
from tasks.resources import connector_for
from tasks.token_store import secret_block_name, shop_access
from tasks.tokens import refresh_shop, register_shop, set_tokens, warn_if_expiring
from tests.crash import CRASHED, refresh_and_die_before_storing

ALERT_WITHIN_SECONDS = 30  # how long the test waits; the figure measured is printed
QUIET_PERIOD_SECONDS = 6  # how long a second alert is given to (wrongly) arrive


@pytest.fixture(scope="module")
def platform_limits(prefect_server):
    ensure_platform_limits()


@pytest.fixture
def lapsed_shopee_shop(db, sandbox, shop_name, alerting, platform_limits):
    """A Shopee shop whose access token has lapsed and whose refresh token Shopee refuses."""
    code = f"{shop_name}-shopee"
    credentials = add_simulated_shop(sandbox.state, "shopee", code, 4, seed=11)
    with db.begin() as conn:
        register_shop(conn, code=code, platform="shopee", name=code,
                      base_url=shop_base_url("shopee", sandbox.url, code), credentials=dict(credentials))
    sandbox.state.expire(credentials["access_token"])
    sandbox.state.refresh_tokens[credentials["refresh_token"]].expires_at = \
        datetime.now(timezone.utc) - timedelta(minutes=1)
    return code, credentials


def test_a_refused_refresh_pages_once_with_the_next_step_and_once_resolved(
        lapsed_shopee_shop, alerting, receiver, prefect_server, sandbox, db, caplog):
    caplog.set_level(logging.DEBUG)
    code, credentials = lapsed_shopee_shop
    with db.connect() as conn:
        assert token_record(conn, code).store == "prefect"  # a server is configured: Secret blocks

    def at_wecom(request):
        return request.path == alerting.wecom_path and code in request.text

    started = time.monotonic()
    first = ingest_orders(code, return_state=True)
    assert first.is_failed()
    alerts = receiver.wait_for(1, ALERT_WITHIN_SECONDS, at_wecom)
    assert len(alerts) == 1, "no alert reached the WeCom robot"
    alert = alerts[0]
    with db.connect() as conn:  # the incident opened when the refusal came back
        [incident] = [i for i in open_incidents(conn, "token-refresh") if i.subject == code]
    failed_at = incident.opened_at
    arrived_at = time.time() - (time.monotonic() - alert.arrived)
    print(f"\nrefused refresh to alert at the robot: {arrived_at - failed_at.timestamp():.2f} s; "
          f"flow run start to alert: {alert.arrived - started:.2f} s")
    print(f"alert as WeCom got it:\n{alert.text}")
    assert "Token refresh failed: shopee shop " + code in alert.text
    assert "refresh_token" in alert.text.lower()  # Shopee's own refusal, named
    assert "Next step: re-authorise the shop" in alert.text
    assert f"oms tokens set {code}" in alert.text
    assert any(code in r.text for r in receiver.wait_for(1, 5, lambda r: r.path == alerting.dingtalk_path))

    second = ingest_orders(code, return_state=True)
    assert second.is_failed()
    time.sleep(QUIET_PERIOD_SECONDS)
    assert len([r for r in receiver.requests if at_wecom(r)]) == 1, \
        "a second failing run paged again (or the failed-run alert paged for it)"

    # The seller authorises the app again; the operator loads the new tokens.
    now = datetime.now(timezone.utc)
    fresh = sandbox.state.grant(code, now, ACCESS_TOKEN_LIFETIME, REFRESH_TOKEN_LIFETIME,
                                single_use_refresh=True)
    set_tokens(code, {"access_token": fresh["access_token"], "refresh_token": fresh["refresh_token"],
                      "access_expires_at": fresh["access_expires_at"].isoformat(),
                      "refresh_expires_at": fresh["refresh_expires_at"].isoformat()})
    resolved = receiver.wait_for(2, ALERT_WITHIN_SECONDS, at_wecom)
    assert len(resolved) == 2 and resolved[1].text.startswith("RESOLVED: ")
    assert "Token refresh works again: shopee shop " + code in resolved[1].text
    print(f"resolved notice as WeCom got it:\n{resolved[1].text}")
    assert ingest_orders(code, return_state=True).is_completed()
    time.sleep(2)
    assert len([r for r in receiver.requests if at_wecom(r)]) == 2

    secrets = _every_secret_of(sandbox, code, credentials) + alerting.secrets
    logs = {"captured": caplog.text, "server": prefect_server.log_text(),
            "flow runs": _flow_run_logs([first.state_details.flow_run_id, second.state_details.flow_run_id])}
    leaked = [f"{where}: ...{_around(text, secret)}..." for where, text in logs.items()
              for secret in secrets if secret in text]
    assert not leaked, f"secrets in the logs: {leaked}"
    texts = "\n".join(str(r.body) for r in receiver.requests)
    assert not [s for s in secrets if s in texts and s not in alerting.secrets]


def _around(text: str, secret: str) -> str:
    """Where a secret showed up, with the secret itself masked."""
    at = text.index(secret)
    return (text[max(0, at - 80):at] + "<SECRET>" + text[at + len(secret):at + len(secret) + 40]).replace("\n", " ")


def _every_secret_of(sandbox, code: str, credentials: dict) -> list[str]:
    tokens = [t for t, held in sandbox.state.tokens.items() if held.shop == code]
    refresh = [t for t, held in sandbox.state.refresh_tokens.items() if held.shop == code]
    return tokens + refresh + [credentials["partner_key"]]


def _flow_run_logs(flow_run_ids) -> str:
    with get_client(sync_client=True) as client:
        # limit and offset given: Prefect 3.8.8's sync client sends them as null otherwise (422).
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=list(flow_run_ids))),
                                limit=200, offset=0)
    return "\n".join(log.message for log in logs)


@pytest.fixture
def self_use_taobao_shop(db, sandbox, shop_name, alerting):
    """A Taobao shop of a self-use app: its session has a fixed length, no refresh."""
    code = f"{shop_name}-taobao"
    credentials = add_simulated_shop(sandbox.state, "taobao", code, 2, seed=4)
    credentials["app_kind"] = "self_use"
    with db.begin() as conn:
        register_shop(conn, code=code, platform="taobao", name=code,
                      base_url=shop_base_url("taobao", sandbox.url, code), credentials=credentials)
    return code


def test_a_token_only_a_person_can_renew_warns_at_7_3_and_1_days_and_under_2_hours_once_each(
        self_use_taobao_shop, alerting, receiver):
    code = self_use_taobao_shop
    expires = datetime.now(timezone.utc) + timedelta(days=30)
    set_tokens(code, {"access_token": "fixed-session-token-0001", "access_expires_at": expires.isoformat()})

    def warnings():
        return [r for r in receiver.requests if r.path == alerting.wecom_path and code in r.text]

    clock = [expires - timedelta(days=8), expires - timedelta(days=6, hours=23),
             expires - timedelta(days=5), expires - timedelta(days=2, hours=23),
             expires - timedelta(hours=23), expires - timedelta(hours=3),
             expires - timedelta(hours=1, minutes=59), expires - timedelta(minutes=30)]
    stages = [warn_if_expiring(code, now=moment) for moment in clock]
    assert stages == [None, "7d", "7d", "3d", "1d", "1d", "2h", "2h"]
    received = receiver.wait_for(4, ALERT_WITHIN_SECONDS,
                                 lambda r: r.path == alerting.wecom_path and code in r.text)
    time.sleep(3)  # room for a wrong fifth
    print(f"\nan expiry warning as WeCom got it:\n{received[-1].text}")
    assert len(warnings()) == 4
    # Each warning says how long is left at its own moment (events may arrive in any order).
    spans = {span for r in received for span in ("6 d 23 h", "2 d 23 h", "23 h 00 min", "1 h 59 min")
             if f"expires in {span}" in r.text}
    assert spans == {"6 d 23 h", "2 d 23 h", "23 h 00 min", "1 h 59 min"}
    assert all("must be re-authorised" in r.text and f"oms tokens set {code}" in r.text for r in received)


@pytest.mark.timeout(180)
def test_a_crash_between_the_refresh_answer_and_the_secret_block_loses_no_refresh_token(
        db, sandbox, shop_name, prefect_server, database_url, tmp_path, monkeypatch):
    journal_dir = tmp_path / "journal"
    monkeypatch.setenv("OMS_TOKEN_JOURNAL_DIR", str(journal_dir))
    reset_settings()
    code = f"{shop_name}-shopee-crash"
    credentials = add_simulated_shop(sandbox.state, "shopee", code, 2, seed=8)
    with db.begin() as conn:
        register_shop(conn, code=code, platform="shopee", name=code,
                      base_url=shop_base_url("shopee", sandbox.url, code), credentials=dict(credentials))
    # The worker dies the moment it would write the answer to the Secret block.
    died = refresh_and_die_before_storing(code, {
        "OMS_DATABASE_URL": database_url, "OMS_TOKEN_JOURNAL_DIR": str(journal_dir),
        "PREFECT_API_URL": prefect_server.api_url})
    assert died.returncode == CRASHED, died.stderr[-2000:]
    assert sandbox.state.refresh_tokens[credentials["refresh_token"]].used  # Shopee spent it
    assert _held_in_secret_block(code)["refresh_token"] == credentials["refresh_token"]

    recovered = refresh_shop(code, force=True)

    assert recovered.recovered_from_journal and recovered.action == "refreshed"
    held = _held_in_secret_block(code)
    assert not sandbox.state.refresh_tokens[held["refresh_token"]].used  # usable next time
    with connector_for(shop_access(code)) as connector:
        connector.probe()
    assert refresh_shop(code, force=True).action == "refreshed"


def _held_in_secret_block(code: str) -> dict:
    held = Secret.load(secret_block_name(code)).get()
    return json.loads(held) if isinstance(held, str) else held
