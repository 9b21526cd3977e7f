"""`check-connector-health` against the sandbox: latency, failures in a row, one alert
per outage or stall, and its end."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from flows.health import ARTIFACT_KEY, check_connector_health
from oms.db.health import health_rows, record_fetch
from oms.db.incidents import open_incidents
from oms.db.schema import alert_incidents
from tasks.alerts import CONNECTOR_RECOVERED, CONNECTOR_STALLED, CONNECTOR_UNHEALTHY
from tests.flows.test_pipeline import latest_artifact_table


@pytest.fixture
def announced(monkeypatch):
    """The alert events the health task sends, in order: (event, shop, payload)."""
    sent: list[tuple[str, str, dict]] = []

    def record(event, *, shop_code, platform, headline, message, **facts):
        sent.append((event, shop_code, {"headline": headline, "message": message, **facts}))

    monkeypatch.setattr("tasks.health.announce", record)
    return sent


def incidents_of(db, kind: str) -> list:
    with db.connect() as conn:
        return list(conn.execute(select(alert_incidents).where(alert_incidents.c.kind == kind)
                                 .order_by(alert_incidents.c.id)))


def health_of(db, shop_code: str):
    with db.connect() as conn:
        return health_rows(conn)[shop_code]


def test_a_healthy_shop_records_its_latency_and_no_failures(db, add_shop, announced):
    shop = add_shop("shopify", orders=5)
    report = check_connector_health()
    row = health_of(db, shop)
    assert row.last_probe_ok is True and row.consecutive_failures == 0
    assert row.last_latency_ms is not None and row.last_latency_ms > 0
    assert row.last_success_at == row.last_probe_at and row.last_error is None
    assert report.answering == [shop] and not report.down and not report.stalled
    assert announced == []
    [line] = latest_artifact_table(ARTIFACT_KEY)
    assert set(line) == {"shop", "platform", "ok", "latency ms", "consecutive failures",
                         "last success age", "last non-empty fetch age", "alert state"}
    assert line["shop"] == shop and line["ok"] is True and line["alert state"] == "ok"
    assert line["last non-empty fetch age"] == "never"


def test_a_failing_shop_opens_one_incident_at_the_threshold_and_a_healthy_run_ends_it(
        db, add_shop, sandbox, announced):
    healthy = add_shop("shopify", orders=5)
    failing = add_shop("pdd", orders=5)
    sandbox.state.faults.arm("pdd", "server_error", times=-1)

    for run in (1, 2):
        check_connector_health()
        assert health_of(db, failing).consecutive_failures == run
        assert incidents_of(db, "connector-down") == []
    assert announced == []

    report = check_connector_health()
    assert report.down == [failing] and report.answering == [healthy]
    assert health_of(db, healthy).consecutive_failures == 0
    [incident] = incidents_of(db, "connector-down")
    assert incident.subject == failing and incident.platform == "pdd"
    [(event, shop, payload)] = announced
    assert (event, shop) == (CONNECTOR_UNHEALTHY, failing)
    assert "pdd shop" in payload["headline"] and "3 times in a row" in payload["message"]
    assert "502" in payload["message"] and "status page" in payload["message"]

    check_connector_health()  # still failing: the same incident, and on-call hears nothing new
    [incident] = incidents_of(db, "connector-down")
    assert incident.occurrences == 2 and health_of(db, failing).consecutive_failures == 4
    assert len(announced) == 1
    line = next(l for l in latest_artifact_table(ARTIFACT_KEY) if l["shop"] == failing)
    assert line["ok"] is False and line["alert state"] == "down (unavailable)"

    sandbox.state.faults.clear("pdd")
    check_connector_health()
    assert health_of(db, failing).consecutive_failures == 0
    [incident] = incidents_of(db, "connector-down")
    assert incident.resolved_at is not None
    assert [(event, shop) for event, shop, _ in announced[1:]] == [(CONNECTOR_RECOVERED, failing)]


def test_error_texts_never_carry_the_shops_credentials(db, add_shop, announced, monkeypatch):
    shop = add_shop("shopify", orders=5)
    seen: list[str] = []

    def leaky_probe(connector):
        seen.extend(v for v in connector.access.credentials.values() if len(v) >= 4)
        raise RuntimeError(f"GET https://example.invalid/?token={'&'.join(seen)} refused")

    monkeypatch.setattr("connectors.shopify.ShopifyConnector.probe", leaky_probe)
    check_connector_health()
    error = health_of(db, shop).last_error
    assert seen and "RuntimeError" in error and "***" in error
    assert not any(secret in error for secret in seen)


def test_a_shop_whose_ingest_stores_nothing_while_the_platform_has_orders_is_stalled(
        db, add_shop, sandbox, announced):
    shop = add_shop("shopify", orders=5)
    now = datetime.now(timezone.utc)
    # The platform's orders were all updated within the last half hour...
    for order in sandbox.state.shop_orders(shop):
        order.updated_at = max(order.updated_at, (now - timedelta(minutes=30)).replace(microsecond=0))
    # ...while ingest last brought orders three hours ago and keeps fetching nothing.
    with db.begin() as conn:
        record_fetch(conn, shop, 5, now - timedelta(hours=3))
        record_fetch(conn, shop, 0, now - timedelta(minutes=1))

    report = check_connector_health()
    assert report.stalled == [shop] and report.answering == [shop]
    [incident] = incidents_of(db, "connector-stalled")
    assert incident.subject == shop and incident.resolved_at is None
    [(event, who, payload)] = announced
    assert (event, who) == (CONNECTOR_STALLED, shop)
    assert "stored nothing for 3 h" in payload["message"] and payload["platform_orders"] > 0

    check_connector_health()
    assert len(incidents_of(db, "connector-stalled")) == 1 and len(announced) == 1

    with db.begin() as conn:
        record_fetch(conn, shop, 5, datetime.now(timezone.utc))
    check_connector_health()
    with db.connect() as conn:
        assert open_incidents(conn, "connector-stalled") == []
    assert [event for event, _, _ in announced] == [CONNECTOR_STALLED, CONNECTOR_RECOVERED]


def test_a_quiet_shop_whose_platform_lists_nothing_owed_is_not_stalled(
        db, add_shop, sandbox, announced):
    shop = add_shop("shopify", orders=5)
    now = datetime.now(timezone.utc)
    # Seeded: these five orders of the last two days were all updated before two hours ago.
    assert all(o.updated_at < now - timedelta(hours=2) for o in sandbox.state.shop_orders(shop))
    with db.begin() as conn:
        record_fetch(conn, shop, 5, now - timedelta(days=3))
        record_fetch(conn, shop, 0, now - timedelta(minutes=1))
    report = check_connector_health()
    assert report.stalled == [] and incidents_of(db, "connector-stalled") == []
    assert [line.alert_state for line in report.shops] == ["ok"] and announced == []


def test_fetch_times_only_move_forward(db, add_shop):
    shop = add_shop("shopify", orders=5)
    now = datetime.now(timezone.utc)
    with db.begin() as conn:
        record_fetch(conn, shop, 3, now)
        record_fetch(conn, shop, 0, now - timedelta(minutes=10))  # an older fetch finishing late
    row = health_of(db, shop)
    assert row.last_fetch_at == now and row.last_nonempty_fetch_at == now
