"""The flows end to end: sandbox marketplaces over HTTP, a real database, real Prefect."""

from __future__ import annotations

import importlib
import itertools
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from flows.after_sales_process import APPROVAL_DEPLOYMENT
from flows.fulfil import fulfil_orders
from flows.ingest import ingest_orders
from flows.stock import confirm_collected_parcels
from flows.write_back import write_back_tracking
from oms.config import reset_settings
from oms.db.schema import (
    order_lines,
    orders,
    raw_orders,
    review_queue,
    shipments,
    tracking_pushes,
)
from oms.db.shops import get_shop, get_watermark
from sandbox.carrier import collect
from sandbox.model import SimLine, SimOrder
from tasks.tokens import register_shop

ROOT = Path(__file__).resolve().parents[2]


_hand_made_ids = itertools.count(9_000_001)  # far above the generator's ids


def paid_order(shop: str, sku: str) -> SimOrder:
    """A clean, paid one-unit order, updated an hour ago."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    order_id = next(_hand_made_ids)
    return SimOrder(
        order_id=order_id, shop=shop, created_at=now - timedelta(hours=2), updated_at=now - timedelta(hours=1),
        status="paid", currency="CNY", lines=[SimLine(sku, sku, 1, Decimal("10.00"), line_id=order_id * 100 + 1)],
        shipping_fee=Decimal("0"), receiver_name="测试", phone="13800138000", province="上海",
        city="上海市", district="浦东新区", address="测试路 8 号")


def make_clean(order: SimOrder) -> SimOrder:
    """Remove the generator's dirt from one order, so the pipeline must store it."""
    order.phone, order.province, order.city, order.address = "13800138000", "上海", "上海市", "测试路 1 号"
    for line in order.lines:
        line.sku, line.quantity = line.sku or "SKU-0001", max(line.quantity, 1)
    return order


def latest_artifact_table(key: str) -> list[dict]:
    import json

    import httpx
    from prefect.settings import PREFECT_API_URL

    # Prefect 3.8.8's own client sends nulls this server refuses (422), so ask the API
    # directly for the newest artifact under the key.
    response = httpx.post(f"{PREFECT_API_URL.value()}/artifacts/latest/filter",
                          json={"artifacts": {"key": {"any_": [key]}}, "limit": 1, "offset": 0})
    response.raise_for_status()
    [latest] = response.json()
    data = latest["data"]
    return json.loads(data) if isinstance(data, str) else data


def table_rows(db, table) -> list[dict]:
    with db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.id))]


def order_keys(db) -> list[tuple]:
    with db.connect() as conn:
        return sorted(conn.execute(select(orders.c.shop_code, orders.c.platform_order_id,
                                          orders.c.platform_updated_at, orders.c.status)).all())


@pytest.mark.parametrize("platform", ["shopify", "pdd"])
def test_ingesting_twice_over_the_same_window_leaves_the_same_rows(db, add_shop, platform):
    shop = add_shop(platform, orders=60)
    first = ingest_orders(shop)
    rows_after_first = order_keys(db)
    lines_after_first = len(table_rows(db, order_lines))
    with db.connect() as conn:
        watermark = get_watermark(conn, shop)
    second = ingest_orders(shop)
    assert watermark.isoformat() == first.window_end  # moved to the end of what was read
    assert second.window_start == (watermark - timedelta(minutes=5)).isoformat()  # overlap
    assert first.stored_new > 0 and len(rows_after_first) == first.stored_new
    assert order_keys(db) == rows_after_first
    assert len(table_rows(db, order_lines)) == lines_after_first
    assert second.stored_new == 0 and second.updated == 0


def test_a_backfill_stores_only_its_window_and_leaves_the_watermark_alone(db, add_shop, sandbox):


    shop = add_shop("shopify", orders=80, seed=8)
    now = datetime.now(timezone.utc)
    since, until = now - timedelta(hours=24), now - timedelta(hours=12)
    ingest_orders(shop, until=until, since=since)
    with db.connect() as conn:
        times = conn.execute(select(orders.c.platform_updated_at).where(orders.c.shop_code == shop)).scalars().all()
        watermark = get_watermark(conn, shop)
    served_in_window = {o.order_id for o in sandbox.state.orders[shop] if since <= o.updated_at < until}
    assert times and all(since <= t < until for t in times)
    assert len(times) <= len(served_in_window)
    assert watermark is None
    ingest_orders(shop)  # the regular sync still starts from the initial look-back
    with db.connect() as conn:
        assert get_watermark(conn, shop) is not None
        oldest = conn.execute(select(func.min(orders.c.platform_updated_at)).where(orders.c.shop_code == shop)).scalar_one()
    assert oldest < since


def test_an_order_served_on_two_pages_is_stored_once(db, add_shop, sandbox, monkeypatch):
    monkeypatch.setenv("OMS_INGEST_SLICE_HOURS", "1000")  # one slice: pages of the whole window
    reset_settings()
    shop = add_shop("shopify", orders=300, seed=21)
    served = sandbox.state.orders[shop]
    # Put a second copy of the order that ends the first 250-order page right after it,
    # so the platform serves it last on page one and first on page two.
    in_page_order = sorted(served, key=lambda o: (o.updated_at, o.order_id))
    straddling = make_clean(in_page_order[249])
    served.insert(served.index(straddling) + 1, straddling)
    report = ingest_orders(shop)
    with db.connect() as conn:
        stored = conn.execute(select(orders.c.platform_order_id).where(orders.c.shop_code == shop)).scalars().all()
        landed = conn.execute(select(func.count()).select_from(raw_orders)
                              .where(raw_orders.c.platform_order_id == str(straddling.order_id))).scalar_one()
    assert report.pages >= 2
    assert len(stored) == len(set(stored))
    assert stored.count(str(straddling.order_id)) == 1 and landed == 1
    assert report.duplicates_merged >= 1


def test_a_malformed_order_is_parked_with_reasons_and_payload_and_the_batch_is_stored(db, add_shop, sandbox, monkeypatch):
    import tasks.ingest

    announced = []
    monkeypatch.setattr(tasks.ingest, "emit_event", lambda **event: announced.append(event))
    shop = add_shop("shopify", orders=30, seed=5)
    broken = next(o for o in sandbox.state.orders[shop] if o.status == "paid")
    broken.phone = "12345"
    broken.lines = [SimLine(sku=None, title="无编码商品", quantity=1, unit_price=Decimal("9.90"))]
    ingest_orders(shop)
    with db.connect() as conn:
        entries = conn.execute(select(review_queue).where(review_queue.c.shop_code == shop)).all()
        stored = conn.execute(select(func.count()).select_from(orders).where(orders.c.shop_code == shop)).scalar_one()
    entry = next(e for e in entries if e.platform_order_id == str(broken.order_id))
    assert "receiver phone is missing or invalid" in entry.reasons
    assert "a line has no SKU, so it cannot be allocated" in entry.reasons
    assert entry.payload["id"] == broken.order_id
    distinct_served = len({o.order_id for o in sandbox.state.orders[shop]})
    assert stored == distinct_served - len({e.platform_order_id for e in entries})
    assert stored > 0
    review_table = latest_artifact_table(f"review-queue-{shop}")
    row = next(r for r in review_table if r["order"] == str(broken.order_id))
    assert "receiver phone is missing or invalid" in row["reasons"]
    assert "12345" not in str(review_table)  # reasons and ids only, no buyer data
    # Parked rows are a notice, not a page: the batch went on (oms.quality.failed is for
    # a batch that failed its gate).
    assert announced and all(e["event"] == "oms.quality.rows-parked" for e in announced)
    assert {e["resource"]["prefect.resource.id"] for e in announced} == {f"oms.shop.{shop}"}
    assert sum(e["payload"]["by_reason"].get("receiver phone is missing or invalid", 0) for e in announced) >= 1


def test_fulfil_reserves_what_exists_ships_it_and_the_platform_gets_the_tracking(db, add_shop, sandbox, carrier, stock_levels):
    shop = add_shop("pdd", orders=0)
    sandbox.state.orders[shop].extend(paid_order(shop, "SKU-LIMITED") for _ in range(7))
    stock_levels({"SKU-LIMITED": 5})
    ingest_orders(shop)
    report = fulfil_orders()
    with db.connect() as conn:
        statuses = dict(conn.execute(select(orders.c.status, func.count()).where(orders.c.shop_code == shop)
                                     .group_by(orders.c.status)).all())
    pushes = table_rows(db, tracking_pushes)
    assert (report.allocated, report.backordered, report.shipped) == (5, 2, 5)
    assert {"sku": "SKU-LIMITED", "units missing": 2} in latest_artifact_table("stock-shortages")
    assert statuses == {"packing": 5, "backordered": 2}  # labelled, still in the warehouse
    assert [p["outcome"] for p in pushes] == ["success"] * 5
    tracked = [o for o in sandbox.state.orders[shop] if o.tracking]
    numbers = {s["tracking_number"] for s in table_rows(db, shipments)}
    assert len(tracked) == 5
    assert {t.get("tracking_number") for o in tracked for t in o.tracking} == numbers
    # The courier's scan, not the label, ships an order.
    collect(sandbox.state, sorted(numbers)[:3], datetime.now(timezone.utc))
    assert confirm_collected_parcels().collected == 3
    with db.connect() as conn:
        statuses = dict(conn.execute(select(orders.c.status, func.count()).where(orders.c.shop_code == shop)
                                     .group_by(orders.c.status)).all())
    assert statuses == {"shipped": 3, "packing": 2, "backordered": 2}


STARTED_PER_REQUEST = {APPROVAL_DEPLOYMENT}


def test_every_flow_in_prefect_yaml_imports_and_runs(db, add_shop, carrier, stock_levels):
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    for platform in ("shopify", "pdd"):
        add_shop(platform, orders=20, code=f"demo-{platform}")
    stock_levels({f"SKU-{n:04d}": 50 for n in range(1, 41)})
    for deployment in spec["deployments"]:
        path, name = deployment["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, name)
        if "per-request" in deployment.get("tags", ()):
            # Started by another flow, by this exact name, with the request as parameter.
            assert f"{flow.name}/{deployment['name']}" in STARTED_PER_REQUEST, deployment["name"]
            continue
        state = flow(**deployment.get("parameters", {}), return_state=True)
        assert state.is_completed(), f"{deployment['name']}: {state.message}"


def test_a_rate_limited_fetch_is_retried_by_the_task_and_the_ingest_completes(db, add_shop, sandbox):
    shop = add_shop("shopify", orders=20, seed=4)
    sandbox.state.faults.arm("shopify", "rate_limit", times=1, retry_after=1)
    state = ingest_orders(shop, return_state=True)
    assert state.is_completed()
    assert state.result().stored_new > 0


def test_a_rejected_request_fails_the_run_at_once_and_moves_no_watermark(db, add_shop, sandbox):

    shop = add_shop("pdd", orders=10, seed=4)
    with db.begin() as conn:
        row = get_shop(conn, shop)
        register_shop(conn, code=shop, platform="pdd", name=shop, base_url=row["base_url"],
                  credentials=dict(row["credentials"], client_secret="wrong"), now=datetime.now(timezone.utc))
    state = ingest_orders(shop, return_state=True)
    assert state.is_failed()
    assert "Rejected" in state.message or "sign" in state.message.lower()
    with db.connect() as conn:
        assert get_watermark(conn, shop) is None
        assert conn.execute(select(func.count()).select_from(orders).where(orders.c.shop_code == shop)).scalar_one() == 0


def test_a_failed_tracking_push_is_recorded_retried_and_recorded_again(db, add_shop, sandbox, carrier, stock_levels):
    shop = add_shop("pdd", orders=0)
    sandbox.state.orders[shop].append(paid_order(shop, "SKU-RETRY"))
    stock_levels({"SKU-RETRY": 1})
    ingest_orders(shop)
    fulfil_orders(write_back=False)
    sandbox.state.faults.arm("pdd", "server_error", times=1)
    now = datetime.now(timezone.utc)
    write_back_tracking(now=now)
    assert [p["outcome"] for p in table_rows(db, tracking_pushes)] == ["retry"]
    write_back_tracking(now=now + timedelta(minutes=5))  # the next scheduled run, retry due
    outcomes = [p["outcome"] for p in table_rows(db, tracking_pushes)]
    assert outcomes == ["retry", "success"]
    assert [p["attempt"] for p in table_rows(db, tracking_pushes)] == [1, 2]
