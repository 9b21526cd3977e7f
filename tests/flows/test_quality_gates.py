"""The quality gates in a real ingest: bad rows wait in the review queue with every
reason while the rest are stored; a batch that is mostly bad, or shorter than the
platform's own count, fails its task, is recorded and alerts on-call."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

import connectors.pinduoduo
from flows.ingest import ingest_orders
from oms.db.schema import orders, quality_rule_failures, quality_runs, review_queue
from oms.db.shops import get_watermark
from sandbox.model import SimLine, SimOrder
from tasks.alerts import QUALITY_FAILED
from tests.flows.test_pipeline import latest_artifact_table

_ids = itertools.count(8_000_001)

PHONE = "receiver phone is missing or invalid"
PROVINCE = "receiver province is missing or not a province of China"
NO_SKU = "a line has no SKU, so it cannot be allocated"


def clean_paid_order(shop: str) -> SimOrder:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    order_id = next(_ids)
    return SimOrder(
        order_id=order_id, shop=shop, created_at=now - timedelta(hours=2), updated_at=now - timedelta(hours=1),
        status="paid", currency="CNY", lines=[SimLine("SKU-Q", "SKU-Q", 1, Decimal("10.00"), line_id=order_id * 100)],
        shipping_fee=Decimal("0"), receiver_name="测试", phone="13800138000", province="上海",
        city="上海市", district="浦东新区", address="测试路 8 号")


@pytest.fixture
def alerts(monkeypatch):
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr("tasks.alerts.emit_event", lambda event, resource, payload: sent.append((event, payload)))
    return sent


def seeded_shop(add_shop, sandbox, good: int, platform: str = "shopify") -> tuple[str, list[SimOrder]]:
    # Shopify sends receivers in plain text, so a bad phone is seen (PDD masks it).
    shop = add_shop(platform, orders=0)
    served = [clean_paid_order(shop) for _ in range(good)]
    sandbox.state.orders[shop].extend(served)
    return shop, served


def open_review(db, shop: str) -> dict[str, list[str]]:
    with db.connect() as conn:
        rows = conn.execute(select(review_queue.c.platform_order_id, review_queue.c.reasons)
                            .where(review_queue.c.shop_code == shop, review_queue.c.resolved_at.is_(None))).all()
    return {order_id: reasons for order_id, reasons in rows}


def stored_ids(db, shop: str) -> set[str]:
    with db.connect() as conn:
        return set(conn.execute(select(orders.c.platform_order_id).where(orders.c.shop_code == shop)).scalars())


def quality_runs_of(db, shop: str, suite: str) -> list[dict]:
    with db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(quality_runs).where(quality_runs.c.shop_code == shop, quality_runs.c.suite == suite)
            .order_by(quality_runs.c.id))]


def test_a_batch_with_known_bad_rows_quarantines_exactly_those_with_their_reasons_and_stores_the_rest(
        db, add_shop, sandbox, alerts):
    shop, served = seeded_shop(add_shop, sandbox, good=20)
    bad_phone, bad_province, two_faults = served[3], served[7], served[11]
    bad_phone.phone = "12345"
    bad_province.province = "火星省"
    two_faults.phone = "999"
    two_faults.lines = [SimLine(None, "无编码商品", 1, Decimal("10.00"), line_id=two_faults.order_id * 100)]
    state = ingest_orders(shop, return_state=True)
    assert state.is_completed(), state.message
    bad = {str(o.order_id) for o in (bad_phone, bad_province, two_faults)}
    review = open_review(db, shop)
    assert set(review) == bad
    assert review[str(bad_phone.order_id)] == [PHONE]
    assert review[str(bad_province.order_id)] == [PROVINCE]
    assert sorted(review[str(two_faults.order_id)]) == sorted([PHONE, NO_SKU])
    assert stored_ids(db, shop) == {str(o.order_id) for o in served} - bad
    [raw_run] = quality_runs_of(db, shop, "raw_shopify")
    assert (raw_run["checked"], raw_run["failed_rows"], raw_run["expected_rows"]) == (20, 0, None)
    [run] = quality_runs_of(db, shop, "orders")
    assert (run["checked"], run["failed_rows"], run["batch_failures"]) == (20, 3, [])
    with db.connect() as conn:
        rules = dict(conn.execute(select(quality_rule_failures.c.rule, quality_rule_failures.c.failed)
                                  .where(quality_rule_failures.c.run_id == run["id"])).all())
    assert rules == {PHONE: 2, PROVINCE: 1, NO_SKU: 1}
    table = latest_artifact_table(f"quality-orders-{shop}")
    assert {row["rule"]: row["failed rows"] for row in table} == rules
    assert all(row["checked"] == 20 for row in table)
    assert "12345" not in str(table) and "火星" not in str(table)  # figures only, no buyer data
    assert [event for event, _ in alerts] == []  # row-level failures are not an incident


def test_a_batch_mostly_bad_fails_the_task_records_the_failure_and_alerts_but_parks_its_bad_rows(
        db, add_shop, sandbox, alerts):
    shop, served = seeded_shop(add_shop, sandbox, good=20)
    for order in served[:8]:  # 40 %, above the 20 % allowed
        order.phone = "12345"
    state = ingest_orders(shop, return_state=True)
    assert state.is_failed()
    assert "QualityGateFailed" in state.message or "quality gate" in state.message
    assert set(open_review(db, shop)) == {str(o.order_id) for o in served[:8]}
    assert stored_ids(db, shop) == set()  # nothing of the batch went on
    with db.connect() as conn:
        watermark = get_watermark(conn, shop)  # slices before the bad one may have moved it
    assert watermark is None or watermark <= min(o.updated_at for o in served)  # read again next run
    [run] = quality_runs_of(db, shop, "orders")
    [failure] = run["batch_failures"]
    assert failure["check"] == "failure_share" and (failure["failed_rows"], failure["checked"]) == (8, 20)
    [(event, payload)] = alerts
    assert event == QUALITY_FAILED and payload["shop"] == shop and payload["checks"] == "failure_share"
    assert "8 of 20 rows failed" in payload["message"] and "review queue" in payload["message"]
    table = latest_artifact_table(f"quality-orders-{shop}")
    assert any(row["rule"].startswith("batch check: 8 of 20 rows failed") for row in table)
    # Run again: the same answer, the same single review entry per order.
    assert ingest_orders(shop, return_state=True).is_failed()
    with db.connect() as conn:
        entries = conn.execute(select(func.count()).select_from(review_queue)
                               .where(review_queue.c.shop_code == shop)).scalar_one()
    assert entries == 8


def test_fewer_orders_than_the_platform_counted_fail_the_fetch_and_alert(db, add_shop, sandbox, alerts, monkeypatch):
    shop, served = seeded_shop(add_shop, sandbox, good=5, platform="pdd")
    listed = connectors.pinduoduo.PinduoduoConnector._list_page

    def one_more_counted(self, api, window, page):
        items, has_next, total = listed(self, api, window, page)
        return items, has_next, total + (1 if items else 0)

    monkeypatch.setattr(connectors.pinduoduo.PinduoduoConnector, "_list_page", one_more_counted)
    state = ingest_orders(shop, return_state=True)
    assert state.is_failed()
    [run] = quality_runs_of(db, shop, "raw_pdd")
    assert run["expected_rows"] == 6 and run["batch_failures"][0]["check"] == "row_count"
    assert run["batch_failures"][0]["missing"] == 1
    [(event, payload)] = alerts
    assert event == QUALITY_FAILED and "counted 6 orders" in payload["message"]
    with db.connect() as conn:
        watermark = get_watermark(conn, shop)
    assert watermark is None or watermark <= min(o.updated_at for o in served)
