"""Risk holds through fulfil-orders: the sandbox shop, the database and real Prefect.

A suspicious order is held with its rule named and is not allocated while an ordinary
one ships; once an operator releases it, the next fulfil run allocates it. Tags and the
picking priority are stored for every order, and a second run opens no hold twice.
"""

from __future__ import annotations

import itertools
import zlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

import tasks.alerts
from flows.fulfil import fulfil_orders
from flows.ingest import ingest_orders
from oms.commands.holds import add_commands
from oms.config import reset_settings
from oms.db.schema import order_tags, orders, risk_holds
from sandbox.model import SimLine, SimOrder
from tests.flows.test_pipeline import latest_artifact_table

ROOT = Path(__file__).resolve().parents[2]
_ids = itertools.count(970_000_001)


def sim_order(shop: str, *, buyer: str, address: str, minutes_ago: float = 90, price: str = "10.00",
              sku: str = "SKU-R1") -> SimOrder:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    order_id = next(_ids)
    # A phone of the buyer's own: orders sharing a phone are one customer to the resolver.
    phone = f"139{zlib.crc32(buyer.encode()) % 10**8:08d}"
    return SimOrder(
        order_id=order_id, shop=shop, created_at=now - timedelta(minutes=minutes_ago),
        updated_at=now - timedelta(minutes=30), status="paid", currency="CNY",
        lines=[SimLine(sku, sku, 1, Decimal(price), line_id=order_id * 100 + 1)],
        shipping_fee=Decimal("0"), receiver_name="测试", phone=phone, province="上海",
        city="上海市", district="浦东新区", address=address, buyer_id=buyer)


@pytest.fixture
def strict_rules(tmp_path, monkeypatch):
    """The shipped rules with a lower velocity limit and a short amount history."""
    document = yaml.safe_load((ROOT / "config" / "tagging.yaml").read_text(encoding="utf-8"))
    document["holds"]["buyer_velocity"]["max_orders"] = 4
    document["holds"]["unusual_amount"]["min_history"] = 5
    path = tmp_path / "tagging.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("OMS_TAGGING_RULES_PATH", str(path))
    reset_settings()
    return path


@pytest.fixture
def announced(monkeypatch):
    events = []
    monkeypatch.setattr(tasks.alerts, "emit_event", lambda **event: events.append(event))
    return events


def by_platform_id(db) -> dict[str, dict]:
    with db.connect() as conn:
        return {row.platform_order_id: dict(row._mapping) for row in conn.execute(select(orders))}


def open_hold_rules(db) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    with db.connect() as conn:
        for row in conn.execute(select(risk_holds).where(risk_holds.c.released_at.is_(None))):
            found.setdefault(row.order_id, []).append(row.rule)
    return found


def oms_command(*argv: str) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="oms")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args.run(args)


def test_a_buyer_placing_five_orders_within_an_hour_is_held_until_released(
        db, add_shop, sandbox, carrier, stock_levels, strict_rules, announced, capsys):
    shop = add_shop("shopify", orders=0)  # plaintext receivers and buyer ids
    burst = [sim_order(shop, buyer="buyer-burst", address=f"世纪大道 {n} 号", minutes_ago=100 - 10 * n)
             for n in range(1, 6)]
    ordinary = sim_order(shop, buyer="buyer-calm", address="中山路 8 号")
    sandbox.state.orders[shop] += [*burst, ordinary]
    stock_levels({"SKU-R1": 20})
    ingest_orders(shop)

    report = fulfil_orders(write_back=False, sync_platform_stock=False)

    stored = by_platform_id(db)
    held_ids = {stored[str(o.order_id)]["id"] for o in burst}
    assert (report.tagged, report.risk_held, report.allocated) == (6, 5, 1)
    assert open_hold_rules(db) == {order_id: ["buyer_velocity"] for order_id in held_ids}
    assert {stored[str(o.order_id)]["status"] for o in burst} == {"paid"}
    assert stored[str(ordinary.order_id)]["status"] == "packing"

    table = latest_artifact_table("risk-holds")
    assert {row["order id"] for row in table} == held_ids
    assert all(row["rule"] == "buyer_velocity" and "5 orders from one customer" in row["detail"] for row in table)
    assert "13800138000" not in str(table) and "世纪大道" not in str(table)
    [event] = announced  # once per shop and run
    assert event["event"] == "oms.risk.holds-waiting"
    assert event["payload"]["held_orders"] == 5 and "buyer_velocity 5" in event["payload"]["message"]

    with db.connect() as conn:
        tags = set(conn.execute(select(order_tags.c.tag)
                                .where(order_tags.c.order_id == stored[str(ordinary.order_id)]["id"])).scalars())
    assert {"channel:shopify", "amount:small", "region:east_china", "priority:50"} <= tags

    released = stored[str(burst[0].order_id)]["id"]
    assert oms_command("holds", "release", str(released), "--reason", "buyer confirmed by phone",
                       "--actor", "li") == 0
    assert oms_command("holds", "list", "--shop", shop) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]]  # after the release line and header
    assert sorted(map(int, listed)) == sorted(held_ids - {released})

    again = fulfil_orders(write_back=False, sync_platform_stock=False)

    assert (again.tagged, again.risk_held, again.allocated) == (0, 0, 1)
    stored = by_platform_id(db)
    assert stored[str(burst[0].order_id)]["status"] == "packing"
    assert {stored[str(o.order_id)]["status"] for o in burst[1:]} == {"paid"}
    assert sorted(open_hold_rules(db)) == sorted(held_ids - {released})
    with db.connect() as conn:
        audit = conn.execute(select(risk_holds).where(risk_holds.c.order_id == released)).one()
    assert (audit.released_by, audit.release_reason) == ("li", "buyer confirmed by phone")
    assert len(announced) == 1  # nothing new was held


def test_an_order_fifty_times_the_shops_usual_amount_is_held_and_the_rest_ship(
        db, add_shop, sandbox, carrier, stock_levels, strict_rules, announced):
    shop = add_shop("shopify", orders=0)
    usual = [sim_order(shop, buyer=f"buyer-{n}", address=f"中山路 {n} 号", price=price)
             for n, price in enumerate(("9.50", "10.00", "10.00", "10.50", "11.00", "12.00"), start=1)]
    odd = sim_order(shop, buyer="buyer-big", address="世纪大道 100 号", price="500.00")
    sandbox.state.orders[shop] += [*usual, odd]
    stock_levels({"SKU-R1": 20})
    ingest_orders(shop)

    report = fulfil_orders(write_back=False, sync_platform_stock=False)

    stored = by_platform_id(db)
    assert (report.risk_held, report.allocated) == (1, 6)
    assert open_hold_rules(db) == {stored[str(odd.order_id)]["id"]: ["unusual_amount"]}
    assert stored[str(odd.order_id)]["status"] == "paid"
    [row] = latest_artifact_table("risk-holds")
    assert "CNY 500.00" in row["detail"] and "above the shop's median of CNY 10.50" in row["detail"]
    assert oms_command("holds", "release", str(row["order id"]), "--reason", "wholesale buyer, known") == 0
    assert fulfil_orders(write_back=False, sync_platform_stock=False).allocated == 1
