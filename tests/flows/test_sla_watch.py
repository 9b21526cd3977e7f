"""`sla-watch` under a controlled clock: warnings and breaches fire at the right times and
once each, accepted tracking numbers end the watch, pre-sale and platform ship-by rules
apply, and the "orders at risk" artifact lists what to ship first by warehouse."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from prefect.settings import PREFECT_API_URL
from sqlalchemy import select, update

from flows.sla import ARTIFACT_KEY, watch_ship_by_deadlines
from oms.cli import main as cli_main
from oms.db.orders import store_orders
from oms.db.schema import orders, ship_deadlines, shipments
from oms.db.shipping import ShipmentDraft, record_shipments
from oms.db.shops import save_warehouse
from oms.db.tracking import record_attempt
from oms.domain.order import OrderStatus
from tasks.alerts import SLA_BREACH, SLA_WARNING
from tests.factories import make_order

# The controlled clock: 10:00 in Shanghai on the day every order is paid.
PAID = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)


def at(hours: float, minutes: float = 0) -> datetime:
    return PAID + timedelta(hours=hours, minutes=minutes)


@pytest.fixture
def alerts(monkeypatch):
    """Every alert event the flow emits, as (event, order ref, payload), in order."""
    sent: list[tuple[str, str, dict]] = []

    def record(*, event, resource, payload):
        sent.append((event, payload.get("order"), payload | {"resource": resource}))

    monkeypatch.setattr("tasks.alerts.emit_event", record)
    return sent


def place(db, ref: str, platform: str, *, sku: str = "SKU-0001", ship_by: datetime | None = None,
          status: OrderStatus = OrderStatus.PAID, updated: datetime = PAID, number: int = 1) -> int:
    """Store one order of the platform's shop, paid at PAID; returns its id."""
    order = make_order(number, sku=sku, platform=platform, shop_code=f"{platform}-shop", status=status,
                       platform_order_id=ref, paid_at=PAID, created_at=PAID - timedelta(minutes=3),
                       updated_at=updated, ship_by=ship_by)
    with db.begin() as conn:
        store_orders(conn, [order], now=updated)
        return conn.execute(select(orders.c.id).where(orders.c.platform_order_id == ref)).scalar_one()


def route(db, order_id: int, warehouse: str) -> int:
    with db.begin() as conn:
        house = save_warehouse(conn, code=warehouse, name=warehouse, province="上海市", priority=10)
        conn.execute(update(orders).where(orders.c.id == order_id).values(warehouse_id=house))
        return house


def push_tracking(db, order_id: int, platform: str, when: datetime) -> None:
    """A waybill, and the platform accepting its tracking number at `when`."""
    house = route(db, order_id, "WH-SH")
    with db.begin() as conn:
        record_shipments(conn, [ShipmentDraft(order_id, house, "SF", f"SF{order_id:010d}")], when)
        shipment = conn.execute(select(shipments.c.id).where(shipments.c.order_id == order_id)).scalar_one()
        record_attempt(conn, {"shipment_id": shipment, "platform": platform, "shop_code": f"{platform}-shop",
                           "order_id": order_id}, outcome="success", now=when)


def events(sent, since: int = 0) -> list[tuple[str, str]]:
    return [(event, ref) for event, ref, _ in sent[since:]]


def stage_of(db, order_id: int) -> str:
    with db.connect() as conn:
        return conn.execute(select(ship_deadlines.c.stage).where(ship_deadlines.c.order_id == order_id)).scalar_one()


def latest_markdown(key: str) -> str:
    # Prefect 3.8.8's own client sends nulls this server refuses: ask the API directly.
    response = httpx.post(f"{PREFECT_API_URL.value()}/artifacts/latest/filter",
                          json={"artifacts": {"key": {"any_": [key]}}, "limit": 1, "offset": 0})
    response.raise_for_status()
    [latest] = response.json()
    data = latest["data"]
    return data if not data.startswith('"') else json.loads(data)


def test_warnings_and_breaches_fire_at_the_right_times_and_once_each(db, alerts):
    for number, (ref, platform) in enumerate([("JD-1", "jd"), ("PDD-1", "pdd"), ("TB-1", "taobao"),
                                              ("DY-1", "douyin")], start=1):
        place(db, ref, platform, number=number)

    first = watch_ship_by_deadlines(now=at(21, 59))  # JD and PDD: 24 h, so 2 h 01 min left
    assert alerts == [] and first.deadlines_stored == 4

    watch_ship_by_deadlines(now=at(22))
    assert sorted(events(alerts)) == [(SLA_WARNING, "JD-1"), (SLA_WARNING, "PDD-1")]

    watch_ship_by_deadlines(now=at(22, 5))
    watch_ship_by_deadlines(now=at(24))  # the deadline itself is still a warning
    assert len(alerts) == 2

    breach = watch_ship_by_deadlines(now=at(24, 1))
    assert sorted(events(alerts, 2)) == [(SLA_BREACH, "JD-1"), (SLA_BREACH, "PDD-1")]
    assert breach.breaches_sent == 2 and breach.warnings_sent == 0
    watch_ship_by_deadlines(now=at(30))
    assert len(alerts) == 4

    watch_ship_by_deadlines(now=at(46))  # Taobao: 48 h
    watch_ship_by_deadlines(now=at(70))  # Douyin: 72 h
    watch_ship_by_deadlines(now=at(73))
    assert events(alerts, 4) == [(SLA_WARNING, "TB-1"), (SLA_BREACH, "TB-1"), (SLA_WARNING, "DY-1"),
                                 (SLA_BREACH, "DY-1")]


def test_the_alert_says_which_order_where_by_when_and_what_to_do(db, alerts):
    order_id = place(db, "JD-77", "jd")
    route(db, order_id, "WH-SH")
    watch_ship_by_deadlines(now=at(22, 30))
    [(event, ref, payload)] = alerts
    assert (event, ref) == (SLA_WARNING, "JD-77")
    assert payload["resource"]["prefect.resource.id"] == "oms.shop.jd-shop"
    headline = payload["headline"]
    # due 24 h after payment at 10:00 Shanghai time: 10:00 the next day, local
    for part in ("JD-77", "jd-shop", "WH-SH", "2026-12-02 10:00 Asia/Shanghai", "1 h 30 min left"):
        assert part in headline
    assert "tracking number" in payload["message"] and payload["step"] == "paid"


def test_an_order_first_seen_past_its_deadline_gets_only_the_breach(db, alerts):
    place(db, "JD-LATE", "jd")
    watch_ship_by_deadlines(now=at(26))
    assert events(alerts) == [(SLA_BREACH, "JD-LATE")]
    assert "overdue by 2 h 00 min" in alerts[0][2]["headline"]


def test_a_tracking_number_accepted_before_the_deadline_ends_the_watch_without_a_breach(db, alerts):
    order_id = place(db, "JD-OK", "jd")
    watch_ship_by_deadlines(now=at(22, 10))
    push_tracking(db, order_id, "jd", at(23))
    watch_ship_by_deadlines(now=at(25))
    watch_ship_by_deadlines(now=at(40))
    assert events(alerts) == [(SLA_WARNING, "JD-OK")]
    assert stage_of(db, order_id) == "done"


def test_a_tracking_number_accepted_late_between_two_runs_still_reports_the_breach(db, alerts):
    order_id = place(db, "JD-SLOW", "jd")
    watch_ship_by_deadlines(now=at(22, 10))
    push_tracking(db, order_id, "jd", at(24, 30))
    watch_ship_by_deadlines(now=at(25))
    watch_ship_by_deadlines(now=at(26))
    assert events(alerts) == [(SLA_WARNING, "JD-SLOW"), (SLA_BREACH, "JD-SLOW")]
    assert stage_of(db, order_id) == "done_late"


def test_a_presale_sku_gets_72_hours_even_on_jd(db, alerts):
    order_id = place(db, "JD-PRE", "jd", sku="PRE-0001")
    watch_ship_by_deadlines(now=at(30))
    assert alerts == []
    watch_ship_by_deadlines(now=at(70))
    assert events(alerts) == [(SLA_WARNING, "JD-PRE")]
    with db.connect() as conn:
        assert conn.execute(select(ship_deadlines.c.rule).where(ship_deadlines.c.order_id == order_id)
                            ).scalar_one() == "presale"


def test_the_platforms_own_ship_by_wins_over_the_configured_hours(db, alerts):
    place(db, "DY-FAST", "douyin", ship_by=at(6))  # Douyin's rule alone would give 72 h
    watch_ship_by_deadlines(now=at(4))
    watch_ship_by_deadlines(now=at(6, 1))
    assert events(alerts) == [(SLA_WARNING, "DY-FAST"), (SLA_BREACH, "DY-FAST")]


def test_a_ship_by_the_platform_moves_earlier_is_picked_up_by_the_next_run(db, alerts):
    place(db, "TB-MOVED", "taobao")
    watch_ship_by_deadlines(now=at(3))
    # the platform now says: ship by 5 hours after payment
    order = make_order(1, platform="taobao", shop_code="taobao-shop", platform_order_id="TB-MOVED",
                       paid_at=PAID, created_at=PAID - timedelta(minutes=3), updated_at=at(3, 30),
                       ship_by=at(5))
    with db.begin() as conn:
        store_orders(conn, [order], now=at(3, 30))
    run = watch_ship_by_deadlines(now=at(3, 45))
    assert run.deadlines_recomputed == 1
    assert events(alerts) == [(SLA_WARNING, "TB-MOVED")]


def test_a_cancelled_order_leaves_the_watch_silently(db, alerts):
    order_id = place(db, "PDD-GONE", "pdd")
    watch_ship_by_deadlines(now=at(1))
    place(db, "PDD-GONE", "pdd", status=OrderStatus.CANCELLED, updated=at(2))
    run = watch_ship_by_deadlines(now=at(30))
    assert alerts == [] and run.settled == 1
    with db.connect() as conn:
        assert conn.execute(select(ship_deadlines.c.settled_at).where(ship_deadlines.c.order_id == order_id)
                            ).scalar_one() is not None


def test_overlapping_runs_announce_each_stage_once(db, alerts, monkeypatch):
    """Two runs that both read the order still in `ok`, then both try to move it: the
    conditional UPDATE lets one of them win, and only the winner gets the alert."""
    from oms.db import deadlines
    from oms.sla_rules import load_sla_rules

    place(db, "JD-RACE", "jd")
    watch_ship_by_deadlines(now=at(1))
    with db.connect() as conn:
        read_before_either_moved = deadlines._facts(conn, list(deadlines._still_watched(conn)))
    rules = load_sla_rules()
    with db.begin() as conn:
        first = deadlines.watch_deadlines(conn, rules, at(22))
    monkeypatch.setattr(deadlines, "_facts", lambda conn, ids: read_before_either_moved)
    with db.begin() as conn:
        second = deadlines.watch_deadlines(conn, rules, at(22))
    assert [a.platform_order_id for a in first.alerts] == ["JD-RACE"] and second.alerts == []


def test_the_artifact_lists_orders_at_risk_by_warehouse_without_personal_data(db, alerts):
    route(db, place(db, "JD-SH", "jd", number=1), "WH-SH")
    route(db, place(db, "PDD-GZ", "pdd", number=2), "WH-GZ")
    place(db, "TB-CALM", "taobao", number=3)
    push_tracking(db, place(db, "JD-DONE", "jd", number=4), "jd", at(1))
    summary = watch_ship_by_deadlines(now=at(24, 30))
    assert summary.at_risk == 2 and summary.breached == 2
    markdown = latest_markdown(ARTIFACT_KEY)
    assert "## WH-SH: 1 order(s), 1 past the deadline" in markdown
    assert "## WH-GZ: 1 order(s), 1 past the deadline" in markdown
    sh_row = next(line for line in markdown.splitlines() if "JD-SH" in line)
    for part in ("jd-shop", "2026-12-02 10:00 Asia/Shanghai", "breached", "overdue by 30 min", "paid"):
        assert part in sh_row
    assert "TB-CALM" not in markdown and "JD-DONE" not in markdown
    assert "13800138000" not in markdown and "测试 收件人" not in markdown and "测试路" not in markdown

    watch_ship_by_deadlines(now=at(25))  # nothing new to announce, the list stays
    assert "JD-SH" in latest_markdown(ARTIFACT_KEY)


def test_oms_sla_at_risk_prints_the_overdue_orders_by_warehouse(db, alerts, capsys):
    route(db, place(db, "JD-LATE", "jd", number=1), "WH-SH")  # due at(24): long past by the real clock
    push_tracking(db, place(db, "JD-DONE", "jd", number=2), "jd", at(1))
    watch_ship_by_deadlines(now=at(24, 30))
    assert cli_main(["sla", "at-risk"]) == 0
    printed = capsys.readouterr().out
    late = next(line for line in printed.splitlines() if "JD-LATE" in line)
    assert "WH-SH" in late and "breached" in late and "overdue by" in late
    assert "JD-DONE" not in printed
