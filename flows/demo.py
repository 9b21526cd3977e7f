"""The main job behind `oms demo`: two sandbox shops, pushed through the whole pipeline.

It starts the sandbox on a free loopback port, seeds a Shopify shop and a Pinduoduo shop
with realistically dirty orders, two warehouses and their stock, then runs ingest →
fulfil → write-back once through Prefect and prints what happened per shop. Run it
twice: the second run finds every order already stored and stores none twice.
"""

from __future__ import annotations

import os
import random
from datetime import datetime, timezone

from sqlalchemy import distinct, func, select

from oms.config import get_settings, reset_settings
from oms.db.engine import get_engine
from oms.db.migrate import upgrade
from oms.db.schema import orders, reservations, shipments
from oms.domain.order import OrderStatus
from oms.db.shops import save_shop, save_skus, save_warehouse, set_on_hand
from sandbox.app import add_simulated_shop, shop_base_url
from sandbox.carrier import register_partner
from sandbox.generator import DEFAULT_SKUS
from sandbox.model import SandboxState
from sandbox.server import running_sandbox

DEMO_SHOPS = (
    # (shop code, platform, orders in the sandbox, seed)
    ("demo-shopify", "shopify", 400, 11),
    ("demo-pdd", "pdd", 400, 12),
)
WAREHOUSES = (("WH-SH", "上海仓", "上海市", 10), ("WH-GZ", "广州仓", "广东省", 20))


def run_demo(orders_per_shop: int | None = None) -> list[dict]:
    database_url = get_settings().database_url
    upgrade(database_url)
    with running_sandbox(SandboxState()) as sandbox:
        _point_carrier_at(sandbox)
        _seed_shops(sandbox, database_url, orders_per_shop)
        _seed_stock(database_url)
        reports = _run_pipeline()
    rows = _table_rows(database_url, reports)
    print_table(rows)
    return rows


def _point_carrier_at(sandbox) -> None:
    partner = register_partner(sandbox.state, "demo-partner")
    os.environ["OMS_CARRIER_URL"] = f"{sandbox.url}/sf"
    os.environ["OMS_CARRIER_PARTNER_ID"] = partner["partner_id"]
    os.environ["OMS_CARRIER_CHECKWORD"] = partner["checkword"]
    reset_settings()


def _seed_shops(sandbox, database_url: str, orders_per_shop: int | None) -> None:
    now = datetime.now(timezone.utc)
    with get_engine(database_url).begin() as conn:
        for code, platform, count, seed in DEMO_SHOPS:
            credentials = add_simulated_shop(sandbox.state, platform, code, orders_per_shop or count, seed, now=now)
            base_url = shop_base_url(platform, sandbox.url, code)
            save_shop(conn, code=code, platform=platform, name=f"{platform} demo shop",
                      base_url=base_url, credentials=credentials, now=now)


def _seed_stock(database_url: str) -> None:
    """Enough of most SKUs, and a few scarce ones, so the table shows both outcomes."""
    rng = random.Random(5)
    with get_engine(database_url).begin() as conn:
        sku_ids = save_skus(conn, [{"code": item.sku, "title": item.title, "weight_grams": 400}
                                   for item in DEFAULT_SKUS])
        for code, name, province, priority in WAREHOUSES:
            warehouse_id = save_warehouse(conn, code=code, name=name, province=province, priority=priority)
            set_on_hand(conn, warehouse_id, {sku_id: rng.choice((0, 2, 8, 40, 60))
                                             for sku_id in sku_ids.values()})


def _run_pipeline() -> dict:
    from flows.fulfil import fulfil_orders
    from flows.ingest import ingest_orders
    from tasks.pacing import ensure_platform_limits

    ensure_platform_limits()
    ingest = {code: ingest_orders(code) for code, *_ in DEMO_SHOPS}
    fulfil = fulfil_orders()
    return {"ingest": ingest, "fulfil": fulfil}


def _table_rows(database_url: str, reports: dict) -> list[dict]:
    with get_engine(database_url).connect() as conn:
        stored = _count_by_shop(conn, select(orders.c.shop_code, func.count()))
        # Reservations, not statuses: orders the platform already reported shipped were
        # never allocated by us and must not be counted as if they were.
        allocated = _count_by_shop(conn, select(orders.c.shop_code, func.count(distinct(reservations.c.order_id)))
                                   .select_from(reservations.join(orders, orders.c.id == reservations.c.order_id)))
        waiting = _count_by_shop(conn, select(orders.c.shop_code, func.count())
                                 .where(orders.c.status == OrderStatus.BACKORDERED.value))
        ours = shipments.join(orders, orders.c.id == shipments.c.order_id)
        shipped = _count_by_shop(conn, select(orders.c.shop_code, func.count()).select_from(ours))
        written_back = _count_by_shop(conn, select(orders.c.shop_code, func.count()).select_from(ours)
                                      .where(shipments.c.tracking_pushed_at.is_not(None)))
    rows = []
    for code, platform, *_ in DEMO_SHOPS:
        ingest = reports["ingest"][code]
        rows.append({
            "shop": code,
            "platform": platform,
            "fetched": ingest.fetched,
            "quarantined": ingest.quarantined,
            "duplicates merged": ingest.duplicates_merged,
            "stored (all runs)": stored.get(code, 0),
            "allocated": allocated.get(code, 0),
            "out of stock": waiting.get(code, 0),
            "shipped": shipped.get(code, 0),
            "tracking written back": written_back.get(code, 0),
            "top quarantine reasons": "; ".join(f"{r} ({n})" for r, n in ingest.top_reasons) or "-",
        })
    return rows


def _count_by_shop(conn, query) -> dict[str, int]:
    return dict(conn.execute(query.group_by(orders.c.shop_code)).all())


def print_table(rows: list[dict]) -> None:
    columns = [c for c in rows[0] if c != "top quarantine reasons"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print()
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    print()
    for row in rows:
        print(f"{row['shop']}: top quarantine reasons: {row['top quarantine reasons']}")
