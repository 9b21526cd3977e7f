"""purge-personal-data: old personal data goes, what people still need stays, twice is once."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from uuid import uuid4

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import func, select

from flows.retention import ARTIFACT_KEY, purge_personal_data
from oms.db.orders import store_orders
from oms.db.schema import (
    after_sales_requests,
    orders,
    personal_data_exports,
    raw_orders,
    retention_runs,
    review_audit,
    review_queue,
    shipments,
    tracking_pushes,
)
from oms.db.shops import save_warehouse
from tests.factories import make_order

NOW = datetime.now(timezone.utc)
OLD, RECENT = NOW - timedelta(days=200), NOW - timedelta(days=10)
PAYLOAD = {"receiver": {"name": "张三", "phone": "13800138000", "address": "测试路 1 号"}}


def add_raw(conn, order_id: str, received_at: datetime) -> int:
    return conn.execute(raw_orders.insert().values(
        platform="shopify", shop_code="shop-a", platform_order_id=order_id, platform_updated_at=received_at,
        payload=PAYLOAD, received_at=received_at)).inserted_primary_key[0]


def add_review(conn, name: str, created_at: datetime, resolved: bool) -> int:
    entry_id = conn.execute(review_queue.insert().values(
        fingerprint=name, stage="validate", platform="shopify", shop_code="shop-a", platform_order_id=name,
        reasons=["receiver phone is missing or invalid"], payload=PAYLOAD, created_at=created_at,
        resolved_at=created_at + timedelta(days=1) if resolved else None,
        resolution="fixed" if resolved else None)).inserted_primary_key[0]
    conn.execute(review_audit.insert().values(review_id=entry_id, at=created_at, actor="li", action="fixed",
                                              detail={"changes": [{"receiver_phone": "+8613800138000"}]}))
    return entry_id


def add_after_sales(conn, request_id: str, status: str, updated_at: datetime) -> None:
    conn.execute(after_sales_requests.insert().values(
        platform="shopify", shop_code="shop-a", platform_request_id=request_id, platform_order_id="ORDER-1",
        kind="refund_only", status=status, platform_status="x", amount=Decimal("5.00"), currency="CNY",
        evidence=[{"text": "call me on 13800138000"}], platform_created_at=updated_at,
        platform_updated_at=updated_at, payload=PAYLOAD, received_at=updated_at, updated_at=updated_at))


@pytest.fixture
def aged_data(db):
    """Personal data 200 days old and 10 days old of every kind the purge knows."""
    with db.begin() as conn:
        store_orders(conn, [make_order(1), make_order(2)], now=NOW)
        old_raw, recent_raw = add_raw(conn, "ORDER-1", OLD), add_raw(conn, "ORDER-2", RECENT)
        for number, raw_id in ((1, old_raw), (2, recent_raw)):
            conn.execute(orders.update().where(orders.c.platform_order_id == f"ORDER-{number}")
                         .values(raw_order_id=raw_id))
        reviews = {"old_resolved": add_review(conn, "old-resolved", OLD, True),
                   "old_open": add_review(conn, "old-open", OLD, False),
                   "recent_resolved": add_review(conn, "recent-resolved", RECENT, True)}
        warehouse = save_warehouse(conn, code="WH-SH", name="WH-SH", province="上海市", priority=1)
        order_id = conn.execute(select(orders.c.id).where(orders.c.platform_order_id == "ORDER-1")).scalar_one()
        shipment = conn.execute(shipments.insert().values(order_id=order_id, warehouse_id=warehouse, carrier="SF",
                                                          tracking_number="SF1234567890123")).inserted_primary_key[0]
        for at in (OLD, RECENT):
            conn.execute(tracking_pushes.insert().values(shipment_id=shipment, platform="shopify", shop_code="shop-a",
                                                         attempt=1, outcome="success", request={"n": 1},
                                                         response={"destination": PAYLOAD}, at=at))
        add_after_sales(conn, "AS-old-settled", "refunded", OLD)
        add_after_sales(conn, "AS-old-open", "waiting", OLD)
        add_after_sales(conn, "AS-recent", "refunded", RECENT)
        conn.execute(personal_data_exports.insert().values(at=OLD, actor="li", kind="order-export", subject="x",
                                                           row_count=1, purpose="claim"))
    return reviews


def finished_flow_run_with_logs(message: str, ended_at: datetime | None = None) -> str:
    """A completed flow run with one log line, made through the API, ended at `ended_at`."""
    with get_client(sync_client=True) as client:
        flow_id = client.request("POST", "/flows/", json={"name": "retention-test-flow"}).json()["id"]
        run = client.request("POST", "/flow_runs/", json={
            "flow_id": flow_id, "name": f"finished-{uuid4().hex[:8]}", "state": {"type": "RUNNING", "name": "Running"},
        }).json()
        client.request("POST", "/flow_runs/{id}/set_state", path_params={"id": run["id"]}, json={
            "state": {"type": "COMPLETED", "name": "Completed"}, "force": True,
        }).raise_for_status()
        client.request("POST", "/logs/", json=[{"name": "prefect.flow_runs", "level": 20, "message": message,
                                                "timestamp": (ended_at or NOW).isoformat(),
                                                "flow_run_id": run["id"]}]).raise_for_status()
    if ended_at is not None:
        backdate(run["id"], ended_at)
    return run["id"]


def backdate(run_id: str, ended_at: datetime) -> None:
    """Move a run's end into the past. The API stamps state times itself and takes none
    from the caller, so the test harness's own SQLite database is edited directly."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    path = PREFECT_SERVER_DATABASE_CONNECTION_URL.value().split(":///", 1)[1]
    stamp = ended_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(path, timeout=30) as prefect_db:
        changed = prefect_db.execute("UPDATE flow_run SET start_time = ?, end_time = ? WHERE id = ?",
                                     (stamp, stamp, run_id)).rowcount
    assert changed == 1


def flow_run_exists(run_id: str) -> bool:
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_flow_run(run_id)
        except ObjectNotFound:
            return False
    return True


def logs_of(run_id: str) -> list[dict]:
    with get_client(sync_client=True) as client:
        return client.request("POST", "/logs/filter", json={"logs": {"flow_run_id": {"any_": [run_id]}},
                                                            "limit": 200, "offset": 0}).json()


def wait_until_no_logs(run_id: str, seconds: float = 20.0) -> list[dict]:
    # The server deletes a deleted run's logs in its background worker, just after.
    import time

    deadline = time.monotonic() + seconds
    while (found := logs_of(run_id)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def rows(db, table) -> list[dict]:
    with db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.id))]


def test_old_payloads_and_runs_go_recent_and_open_ones_stay_and_a_second_run_deletes_nothing(db, aged_data):
    old_run = finished_flow_run_with_logs("an old line of an old run", OLD)
    recent_run = finished_flow_run_with_logs("a recent line", RECENT)
    assert logs_of(old_run) and flow_run_exists(old_run)

    started = datetime.now(timezone.utc)
    counts = purge_personal_data()
    ended = datetime.now(timezone.utc)

    assert counts["raw_orders"] == 1 and counts["review_payloads"] == 1
    assert counts["tracking_push_bodies"] == 1 and counts["after_sales_payloads"] == 1
    assert counts["prefect_flow_runs"] >= 1
    assert [r["platform_order_id"] for r in rows(db, raw_orders)] == ["ORDER-2"]
    kept_orders = {o["platform_order_id"]: o for o in rows(db, orders)}
    assert set(kept_orders) == {"ORDER-1", "ORDER-2"}
    assert kept_orders["ORDER-1"]["raw_order_id"] is None and kept_orders["ORDER-2"]["raw_order_id"] is not None
    assert kept_orders["ORDER-1"]["receiver_phone"] == "+8613800138000"  # orders are records, not raw data
    reviews = {r["id"]: r for r in rows(db, review_queue)}
    assert reviews[aged_data["old_resolved"]]["payload"] == {}
    assert reviews[aged_data["old_resolved"]]["reasons"] == ["receiver phone is missing or invalid"]
    assert reviews[aged_data["old_open"]]["payload"] == PAYLOAD  # an operator still needs it
    assert reviews[aged_data["recent_resolved"]]["payload"] == PAYLOAD
    audit = {r["review_id"]: r for r in rows(db, review_audit)}
    assert audit[aged_data["old_resolved"]]["detail"] is None and audit[aged_data["old_open"]]["detail"]
    assert [(p["request"], p["response"]) for p in rows(db, tracking_pushes)] == \
        [(None, None), ({"n": 1}, {"destination": PAYLOAD})]
    requests = {r["platform_request_id"]: r for r in rows(db, after_sales_requests)}
    assert (requests["AS-old-settled"]["payload"], requests["AS-old-settled"]["evidence"]) == ({}, [])
    assert requests["AS-old-open"]["payload"] == PAYLOAD and requests["AS-recent"]["evidence"]
    assert len(rows(db, personal_data_exports)) == 1  # the audit is kept
    assert not flow_run_exists(old_run)
    assert wait_until_no_logs(old_run) == []
    assert flow_run_exists(recent_run) and logs_of(recent_run)

    [run] = rows(db, retention_runs)
    assert run["deleted"] == counts
    # NOW is taken when the module is imported, which in a long session is minutes ago.
    assert started - timedelta(days=180) <= run["cutoff"] <= ended - timedelta(days=180)

    again = purge_personal_data()
    assert again == dict.fromkeys(counts, 0), again
    assert len(rows(db, retention_runs)) == 2


def test_a_dry_run_counts_and_deletes_nothing(db, aged_data):
    old_run = finished_flow_run_with_logs("kept by a dry run", OLD)
    counts = purge_personal_data(dry_run=True)
    assert counts["raw_orders"] == 1 and counts["review_payloads"] == 1 and counts["prefect_flow_runs"] >= 1
    assert len(rows(db, raw_orders)) == 2 and flow_run_exists(old_run) and logs_of(old_run)
    assert rows(db, retention_runs) == []


def test_a_shorter_age_reaches_further_and_zero_days_is_refused(db, aged_data):
    counts = purge_personal_data(older_than_days=5)
    assert counts["raw_orders"] == 2 and counts["review_payloads"] == 2
    with pytest.raises(ValueError):
        purge_personal_data(older_than_days=0)


def test_the_run_publishes_its_counts_as_an_artifact(db, aged_data):
    import httpx
    from prefect.settings import PREFECT_API_URL

    purge_personal_data()
    response = httpx.post(f"{PREFECT_API_URL.value()}/artifacts/latest/filter",
                          json={"artifacts": {"key": {"any_": [ARTIFACT_KEY]}}, "limit": 1, "offset": 0})
    [latest] = response.json()
    assert "raw_orders" in str(latest["data"]) and latest["type"] == "table"
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(retention_runs)).scalar_one() == 1
