"""How fast parcels get waybills and their tracking numbers reach the platforms.

For each database this measures two stages of `fulfil-orders` against the sandbox, over
HTTP, with the sandbox in a process of its own:

    ship        the `create-shipments` task run batch after batch, as fulfil-orders runs
                it: parcels read from the database, merged, a carrier chosen from the rate
                cards, receivers opened for labels where the platform allows it, one
                `create_waybills` call per carrier and batch, shipments stored;
    write-back  the `write-back-tracking` flow run until nothing is due: every pushed
                number is a `tracking_pushes` row, and the order's stock is locked.

Setup is not measured: shops on Pinduoduo and Taobao with seeded orders (`--orders` per
shop), the two warehouses of config/routing.yaml with stock for everything, an account
with every carrier simulator, ingest through the real flow, then allocation.

The floor of each stage is the sandbox's own request rate with no pipeline in front,
measured in the same run right after the stage: exactly as many requests of the same
kind to the same simulators, made through the same connector and carrier client
objects on one thread, with nothing read from or written to the database and with the
connectors' pacing switched off.

    ship floor        the waybill requests again for the same parcels (same carriers,
                      receivers and weights, under new order references so the carrier
                      issues new numbers), in the same per-carrier chunks;
    write-back floor  the sandbox forgets the pushes (the orders are paid and unshipped
                      again), then every push is sent again: same order, carrier, number.

The pipeline keeps each platform's request pacing (Pinduoduo 50 a second, Taobao 40,
from the connectors) and pushes the shops side by side, as the flow does; `cap/s` is the
pacing's own ceiling for the pushes (the sum over the shops). `ratio` is pipeline time /
floor time.

    python benchmarks/ship.py                               # 1,000 orders a shop, SQLite and PostgreSQL
    python benchmarks/ship.py --orders 300 --databases sqlite

It prints a table and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from benchmarks.ingest import prepare_database, warm_up_prefect  # noqa: E402

PLATFORMS = ("pdd", "taobao")
SEED = 61


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000, help="orders per shop")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--one", metavar="DATABASE", help=argparse.SUPPRESS)
    parser.add_argument("--serve-sandbox", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sandbox:
        serve_sandbox(args.orders)
        return
    if args.one:
        print(json.dumps(run_one(args.one, args.orders)))
        return
    results = []
    for database in args.databases.split(","):
        child = subprocess.run([sys.executable, __file__, "--orders", str(args.orders), "--one", database],
                               capture_output=True, text=True, cwd=ROOT)
        if child.returncode != 0:
            print(child.stdout, child.stderr, file=sys.stderr)
            raise SystemExit(f"benchmark run on {database} failed")
        results.extend(json.loads(child.stdout.strip().splitlines()[-1]))
    print_table(results)


# ----------------------------------------------------------------- the sandbox process


def serve_sandbox(orders: int) -> None:
    """The sandbox with the benchmark's shops and carrier accounts; it prints them as one
    JSON line, then obeys `unship SHOP` lines on stdin until stdin closes."""
    from flows.demo import sandbox_carrier_accounts
    from sandbox.app import add_simulated_shop, shop_base_url
    from sandbox.carrier import register_partner
    from sandbox.model import SandboxState
    from sandbox.server import running_sandbox

    with running_sandbox(SandboxState()) as sandbox:
        now = datetime.now(timezone.utc)
        shops = {}
        for platform in PLATFORMS:
            code = f"bench-{platform}"
            credentials = add_simulated_shop(sandbox.state, platform, code, orders, SEED, now=now)
            shops[code] = {"platform": platform, "base_url": shop_base_url(platform, sandbox.url, code),
                           "credentials": credentials}
        partner = register_partner(sandbox.state, "bench-partner")
        print(json.dumps({"url": sandbox.url, "shops": shops, "sf": partner,
                          "accounts": sandbox_carrier_accounts(sandbox.state, sandbox.url, "bench")},
                         default=str), flush=True)
        for line in sys.stdin:
            command, _, shop = line.strip().partition(" ")
            if command == "unship":
                with sandbox.state.lock:
                    for order in sandbox.state.orders[shop]:
                        if order.tracking:
                            order.tracking.clear()
                            order.status = "paid"
            print("ok", flush=True)


class SandboxProcess:
    def __init__(self, orders: int) -> None:
        self.child = subprocess.Popen([sys.executable, __file__, "--serve-sandbox", "--orders", str(orders)],
                                      cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.setup = json.loads(self.child.stdout.readline())

    def unship(self, shop: str) -> None:
        self.child.stdin.write(f"unship {shop}\n")
        self.child.stdin.flush()
        assert self.child.stdout.readline().strip() == "ok"

    def stop(self) -> None:
        self.child.stdin.close()
        self.child.wait(timeout=30)


# ----------------------------------------------------------------- one database


def run_one(database: str, orders: int) -> list[dict]:
    url = prepare_database(database)
    os.environ["OMS_DATABASE_URL"] = url
    from oms.config import reset_settings
    from oms.db.migrate import downgrade, upgrade

    reset_settings()
    if database == "postgresql":
        downgrade(url, "base")
    upgrade(url)
    sandbox = SandboxProcess(orders)
    try:
        _configure(sandbox.setup, url)
        warm_up_prefect()
        _ingest_and_allocate(list(sandbox.setup["shops"]))
        ship = _measure_shipping()
        ship_floor = _waybill_floor(url)
        push = _measure_write_back()
        push_floor = _push_floor(url, sandbox)
    finally:
        sandbox.stop()
    return [
        _row(database, "ship", "shipments", ship, ship_floor, cap=None),
        _row(database, "write-back", "pushes", push, push_floor, cap=_push_cap()),
    ]


def _configure(setup: dict, database_url: str) -> None:
    from oms.config import reset_settings
    from oms.db.engine import get_engine
    from oms.db.shops import save_skus, save_warehouse, set_on_hand
    from tasks.tokens import register_shop

    os.environ["OMS_CARRIER_URL"] = f"{setup['url']}/sf"
    os.environ["OMS_CARRIER_PARTNER_ID"] = setup["sf"]["partner_id"]
    os.environ["OMS_CARRIER_CHECKWORD"] = setup["sf"]["checkword"]
    os.environ["OMS_CARRIER_ACCOUNTS"] = json.dumps(setup["accounts"])
    reset_settings()
    now = datetime.now(timezone.utc)
    with get_engine(database_url).begin() as conn:
        for code, shop in setup["shops"].items():
            register_shop(conn, code=code, platform=shop["platform"], name=code, base_url=shop["base_url"],
                          credentials=shop["credentials"], now=now)
        ids = save_skus(conn, [{"code": f"SKU-{n:04d}", "title": f"SKU-{n:04d}", "weight_grams": 400}
                               for n in range(1, 41)])
        for code, province, priority in (("WH-SH", "上海市", 10), ("WH-GZ", "广东省", 20)):
            warehouse_id = save_warehouse(conn, code=code, name=code, province=province, priority=priority)
            set_on_hand(conn, warehouse_id, dict.fromkeys(ids.values(), 1_000_000))


def _ingest_and_allocate(shops: list[str]) -> None:
    from flows.ingest import ingest_orders
    from oms.config import get_settings
    from tasks.allocate import allocate_stock

    for shop in shops:
        ingest_orders(shop)
    size, cursor, started = get_settings().fulfil_batch_size, 0, datetime.now(timezone.utc)
    while True:
        batch = allocate_stock.fn(size, after_id=cursor, decided_before=started)
        if batch.considered < size:
            return
        cursor = batch.last_id


def _measure_shipping() -> dict:
    from prefect import flow

    from oms.config import get_settings
    from tasks.ship import create_shipments

    @flow(name="benchmark-create-shipments")
    def ship_everything() -> int:
        size, cursor, parcels = get_settings().fulfil_batch_size, 0, 0
        while True:
            batch = create_shipments(size, after_id=cursor)
            parcels += batch.shipped
            if batch.considered < size:
                return parcels
            cursor = batch.last_id

    started = time.perf_counter()
    ship_everything()
    seconds = time.perf_counter() - started
    return {"count": _count("shipments"), "seconds": seconds}


def _measure_write_back() -> dict:
    from flows.write_back import write_back_tracking

    started = time.perf_counter()
    for _ in range(100):  # each run pushes what is due; a run that pushes nothing ends it
        results = write_back_tracking()
        if not any(summary.attempted for summary in results.values()):
            break
    seconds = time.perf_counter() - started
    return {"count": _count("tracking_pushes", "success"), "seconds": seconds}


def _count(table: str, outcome: str | None = None) -> int:
    from sqlalchemy import func, select

    from oms.db import schema
    from tasks.resources import engine

    target = getattr(schema, table)
    query = select(func.count()).select_from(target)
    if outcome:
        query = query.where(target.c.outcome == outcome)
    with engine().connect() as conn:
        return conn.execute(query).scalar_one()


# ----------------------------------------------------------------- floors


def _waybill_floor(database_url: str) -> dict:
    """The same waybill requests, parcel for parcel, without the pipeline."""
    from sqlalchemy import select

    from connectors.base import Parcel
    from oms.config import get_settings
    from oms.db.engine import get_engine
    from oms.db.schema import orders, shipments
    from tasks.resources import carrier_client, http_client, shop_access
    from tasks.ship import _stored_receiver

    query = (select(shipments.c.carrier, shipments.c.waybill_source, shipments.c.parcel_ref, orders)
             .join(orders, orders.c.id == shipments.c.order_id).order_by(shipments.c.id))
    parcels: dict[tuple, dict[str, Parcel]] = defaultdict(dict)
    with get_engine(database_url).connect() as conn:
        for row in conn.execute(query):
            order = dict(row._mapping)
            route = (row.carrier, row.waybill_source, row.shop_code if row.waybill_source else None)
            parcels[route].setdefault(row.parcel_ref, Parcel(
                order_ref=f"floor-{row.parcel_ref}", receiver=_stored_receiver(order), weight_grams=400,
                items=[("goods", 1)]))
    size = get_settings().fulfil_batch_size
    requests = sum(len(found) for found in parcels.values())
    with http_client() as http:
        clients = {route: carrier_client(http, route[0], shop=shop_access(route[2]) if route[2] else None,
                                         via=route[1]) for route in parcels}
        started = time.perf_counter()
        for route, found in parcels.items():
            batch = list(found.values())
            for first in range(0, len(batch), size):
                clients[route].create_waybills(batch[first:first + size])
        seconds = time.perf_counter() - started
    return {"count": requests, "seconds": seconds}


def _push_floor(database_url: str, sandbox: SandboxProcess) -> dict:
    """The same pushes again, once the sandbox has forgotten them, without the pipeline."""
    from sqlalchemy import select

    from oms.db.engine import get_engine
    from oms.db.schema import orders, shipments
    from tasks.resources import connector_for, http_client, shop_access

    query = (select(orders.c.shop_code, orders.c.platform_order_id, shipments.c.carrier, shipments.c.tracking_number)
             .join(orders, orders.c.id == shipments.c.order_id)
             .where(shipments.c.tracking_pushed_at.is_not(None)).order_by(shipments.c.id))
    with get_engine(database_url).connect() as conn:
        pushes = [tuple(row) for row in conn.execute(query)]
    for shop in {push[0] for push in pushes}:
        sandbox.unship(shop)
    with http_client() as http:
        connectors = {}
        for shop in {push[0] for push in pushes}:
            connectors[shop] = connector_for(shop_access(shop), http)
            connectors[shop]._pacing = None  # the sandbox's rate, not the platform's budget
        started = time.perf_counter()
        for shop, order_ref, carrier, number in pushes:
            connectors[shop].push_tracking(order_ref, carrier, number)
        seconds = time.perf_counter() - started
    return {"count": len(pushes), "seconds": seconds}


def _push_cap() -> float:
    from connectors import pinduoduo, taobao

    return pinduoduo.REQUEST_RATE.per_second + taobao.REQUEST_RATE.per_second


# ----------------------------------------------------------------- the table


def _row(database: str, stage: str, unit: str, pipeline: dict, floor: dict, cap: float | None) -> dict:
    return {
        "database": database, "stage": stage, unit: pipeline["count"],
        "pipeline_s": round(pipeline["seconds"], 2),
        "per_s": round(pipeline["count"] / pipeline["seconds"], 1) if pipeline["seconds"] else 0,
        "floor_requests": floor["count"], "floor_s": round(floor["seconds"], 2),
        "floor_per_s": round(floor["count"] / floor["seconds"], 1) if floor["seconds"] else 0,
        "ratio": round(pipeline["seconds"] / floor["seconds"], 2) if floor["seconds"] else 0,
        "cap/s": cap if cap is not None else "-",
    }


def print_table(results: list[dict]) -> None:
    columns = ["database", "stage", "done", "pipeline_s", "per_s", "floor_requests", "floor_s", "floor_per_s",
               "ratio", "cap/s"]
    for row in results:
        row["done"] = row.get("shipments", row.get("pushes"))
    widths = {c: max(len(c), *(len(str(r[c])) for r in results)) for c in columns}
    print("  ".join(c.rjust(widths[c]) for c in columns))
    for row in results:
        print("  ".join(str(row[c]).rjust(widths[c]) for c in columns))
    print("\ndone = shipments created (ship) or tracking numbers accepted (write-back) by the pipeline; "
          "floor = the same requests to the sandbox through the same clients, no database, no pacing, one thread; "
          "cap = the connectors' request pacing for the pushes, summed over the shops.")


if __name__ == "__main__":
    main()
