"""Storage on both databases: the schema, idempotent upserts, history and reservations."""

from __future__ import annotations

import threading

import pytest
from datetime import timezone

from sqlalchemy import func, inspect, select

from oms.db.orders import LandedPayload, land_raw_orders, store_orders
from oms.db.review import ReviewEntry, open_entries, park
from oms.db.schema import order_lines, order_status_history, orders, reservations, stock
from oms.db.shops import save_skus, save_warehouse, set_on_hand
from oms.db import allocation
from oms.db.stock import StockMoved
from oms.domain.order import OrderStatus
from tests.factories import BASE_TIME, make_order
from tests.stockworld import default_policy

REQUIRED_TABLES = {
    "shops", "raw_orders", "orders", "order_lines", "order_status_history", "review_queue",
    "warehouses", "skus", "stock", "reservations", "shipments", "tracking_pushes", "sync_watermarks",
}


def allocate_batch(conn, **options):
    return allocation.allocate_batch(conn, policy=default_policy(), **options)


def count(conn, table) -> int:
    return conn.execute(select(func.count()).select_from(table)).scalar_one()


def seed_stock(conn, units: int, sku: str = "SKU-0001", warehouse: str = "WH-SH") -> None:
    sku_ids = save_skus(conn, [{"code": sku, "title": "帆布包", "weight_grams": 300}])
    warehouse_id = save_warehouse(conn, code=warehouse, name=warehouse, province="上海市", priority=10)
    set_on_hand(conn, warehouse_id, {sku_ids[sku]: units})


def test_migrations_create_every_table_the_pipeline_needs(db):
    assert REQUIRED_TABLES <= set(inspect(db).get_table_names())


def test_sqlite_runs_in_wal_mode(tmp_path):
    from oms.db.engine import get_engine

    with get_engine(f"sqlite:///{tmp_path / 'wal.db'}").connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_storing_the_same_batch_twice_leaves_the_same_rows(db):
    batch = [make_order(n) for n in range(1, 6)]
    with db.begin() as conn:
        first = store_orders(conn, batch, now=BASE_TIME)
    with db.begin() as conn:
        second = store_orders(conn, batch, now=BASE_TIME)
        assert (count(conn, orders), count(conn, order_lines), count(conn, order_status_history)) == (5, 5, 5)
    assert (first.inserted, second.inserted, second.unchanged) == (5, 0, 5)


def test_an_order_delivered_twice_in_one_batch_is_stored_once(db):
    with db.begin() as conn:
        result = store_orders(conn, [make_order(1), make_order(2), make_order(1)], now=BASE_TIME)
        assert count(conn, orders) == 2
    assert result.merged_in_batch == 1


def test_a_newer_platform_version_updates_the_order_and_writes_history(db):
    with db.begin() as conn:
        store_orders(conn, [make_order(1)], now=BASE_TIME)
        cancelled = make_order(1, status=OrderStatus.CANCELLED, minutes_later=30, platform_status="cancelled")
        result = store_orders(conn, [cancelled], now=BASE_TIME)
        status = conn.execute(select(orders.c.status)).scalar_one()
        history = conn.execute(select(order_status_history.c.from_status, order_status_history.c.to_status,
                                      order_status_history.c.actor)
                               .order_by(order_status_history.c.id)).all()
    assert result.updated == 1 and status == "cancelled"
    assert history == [(None, "paid", "ingest"), ("paid", "cancelled", "ingest")]


def test_an_older_platform_version_never_overwrites_a_newer_one(db):
    with db.begin() as conn:
        store_orders(conn, [make_order(1, status=OrderStatus.CANCELLED, minutes_later=30)], now=BASE_TIME)
        result = store_orders(conn, [make_order(1, minutes_later=0)], now=BASE_TIME)
        assert conn.execute(select(orders.c.status)).scalar_one() == "cancelled"
    assert result.unchanged == 1


def test_times_come_back_as_aware_utc(db):
    with db.begin() as conn:
        store_orders(conn, [make_order(1)], now=BASE_TIME)
        created = conn.execute(select(orders.c.created_at)).scalar_one()
    assert created == BASE_TIME and created.tzinfo == timezone.utc


def test_raw_payloads_are_landed_once_per_platform_update_time(db):
    payload = LandedPayload("ORDER-1", BASE_TIME, {"id": 1})
    with db.begin() as conn:
        assert land_raw_orders(conn, "shopify", "shop-a", [payload, payload], BASE_TIME) == 1
        assert land_raw_orders(conn, "shopify", "shop-a", [payload], BASE_TIME) == 0


def test_parking_the_same_rejected_payload_twice_makes_one_review_entry(db):
    entry = ReviewEntry("validate", "pdd", "shop-b", "X-1", ["receiver phone is missing or invalid"], {"order_sn": "X-1"})
    with db.begin() as conn:
        assert park(conn, [entry], BASE_TIME) == 1
        assert park(conn, [entry], BASE_TIME) == 0
        [stored] = open_entries(conn)
    assert stored["reasons"] == entry.reasons and stored["payload"] == {"order_sn": "X-1"}


def test_a_newer_bad_payload_of_an_order_replaces_its_open_review_entry(db):
    older = ReviewEntry("validate", "pdd", "shop-b", "X-1", ["receiver phone is missing or invalid"], {"v": 1})
    newer = ReviewEntry("validate", "pdd", "shop-b", "X-1", ["receiver phone is missing or invalid"], {"v": 2})
    other = ReviewEntry("validate", "pdd", "shop-b", "X-2", ["order has no lines"], {"v": 1})
    with db.begin() as conn:
        park(conn, [older, other], BASE_TIME)
        park(conn, [newer], BASE_TIME)
        still_open = [(e["platform_order_id"], e["payload"]) for e in open_entries(conn)]
    assert still_open == [("X-2", {"v": 1}), ("X-1", {"v": 2})]


def test_stock_five_and_seven_orders_reserves_exactly_five(db):
    with db.begin() as conn:
        seed_stock(conn, units=5)
        store_orders(conn, [make_order(n) for n in range(1, 8)], now=BASE_TIME)
    with db.begin() as conn:
        outcome = allocate_batch(conn, limit=100, now=BASE_TIME, actor="test")
    with db.connect() as conn:
        reserved = conn.execute(select(func.sum(reservations.c.quantity))).scalar_one()
        counter = conn.execute(select(stock.c.reserved, stock.c.on_hand)).one()
        statuses = dict(conn.execute(select(orders.c.status, func.count()).group_by(orders.c.status)).all())
    assert (len(outcome.allocated), len(outcome.backordered)) == (5, 2)
    assert reserved == 5 and tuple(counter) == (5, 5)
    assert statuses == {"allocated": 5, "backordered": 2}


def test_allocating_again_does_not_reserve_twice(db):
    with db.begin() as conn:
        seed_stock(conn, units=5)
        store_orders(conn, [make_order(n) for n in range(1, 8)], now=BASE_TIME)
    for _ in range(2):
        with db.begin() as conn:
            allocate_batch(conn, limit=100, now=BASE_TIME, actor="test")
    with db.connect() as conn:
        assert conn.execute(select(stock.c.reserved)).scalar_one() == 5
        assert count(conn, reservations) == 5


def test_a_cancelled_allocated_order_gives_its_stock_back(db):
    with db.begin() as conn:
        seed_stock(conn, units=1)
        store_orders(conn, [make_order(1)], now=BASE_TIME)
        allocate_batch(conn, limit=10, now=BASE_TIME, actor="test")
        store_orders(conn, [make_order(1, status=OrderStatus.CANCELLED, minutes_later=5)], now=BASE_TIME)
        assert conn.execute(select(stock.c.reserved)).scalar_one() == 0
        assert conn.execute(select(reservations.c.state)).scalar_one() == "released"


def test_an_allocated_order_shipped_by_hand_on_the_platform_takes_its_goods_out_of_stock(db):
    with db.begin() as conn:
        seed_stock(conn, units=3)
        store_orders(conn, [make_order(1, quantity=2)], now=BASE_TIME)
        allocate_batch(conn, limit=10, now=BASE_TIME, actor="test")
        store_orders(conn, [make_order(1, quantity=2, status=OrderStatus.SHIPPED, minutes_later=5)], now=BASE_TIME)
        assert tuple(conn.execute(select(stock.c.on_hand, stock.c.reserved)).one()) == (1, 0)
        assert conn.execute(select(reservations.c.state)).scalar_one() == "consumed"


def test_a_reservation_planned_on_stale_numbers_is_refused_not_oversold(db, monkeypatch):
    with db.begin() as conn:
        seed_stock(conn, units=2)
        store_orders(conn, [make_order(1, quantity=2)], now=BASE_TIME)
    # Someone else takes one unit between our read and our write.
    original = allocation.available

    def read_then_lose_a_unit(conn, sku_ids):
        numbers = original(conn, sku_ids)
        conn.execute(stock.update().values(reserved=stock.c.reserved + 1))
        return numbers

    monkeypatch.setattr(allocation, "available", read_then_lose_a_unit)
    with pytest.raises(StockMoved), db.begin() as conn:
        allocate_batch(conn, limit=10, now=BASE_TIME, actor="test")


def test_concurrent_allocations_never_sell_a_unit_twice(db):
    with db.begin() as conn:
        seed_stock(conn, units=10)
        store_orders(conn, [make_order(n) for n in range(1, 41)], now=BASE_TIME)
    errors: list[BaseException] = []

    def allocate_until_done():
        for _ in range(20):
            try:
                with db.begin() as conn:
                    allocate_batch(conn, limit=5, now=BASE_TIME, actor="test")
            except StockMoved:
                continue
            except BaseException as error:  # surfaced below
                errors.append(error)
                return

    workers = [threading.Thread(target=allocate_until_done) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with db.connect() as conn:
        reserved_rows = conn.execute(select(func.sum(reservations.c.quantity))).scalar_one()
        reserved_counter, on_hand = conn.execute(select(stock.c.reserved, stock.c.on_hand)).one()
    assert not errors
    assert reserved_rows == reserved_counter == 10 and on_hand == 10


def test_oms_db_upgrade_creates_the_schema_on_the_configured_database(tmp_path, monkeypatch):
    from sqlalchemy import create_engine

    from oms.cli import main
    from oms.config import reset_settings

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("OMS_DATABASE_URL", url)
    reset_settings()
    try:
        assert main(["db", "upgrade"]) == 0
    finally:
        reset_settings()
    assert REQUIRED_TABLES <= set(inspect(create_engine(url)).get_table_names())


def test_the_migrations_build_exactly_the_schema_the_code_declares(db):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from oms.db.schema import metadata

    with db.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
