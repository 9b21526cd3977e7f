"""How fast stock allocation runs: order lines decided per second by 1 and 4 allocator
processes, for one hot SKU and for 10,000 SKUs, on SQLite and on PostgreSQL.

What is measured. For every cell (database, scenario, workers) a fresh database gets two
warehouses (BENCH-E in 上海市, BENCH-S in 广东省; no daily capacity, no rate card, through
a routing file of our own with the rules of config/routing.yaml), the SKUs, their stock
and the paid orders, stored with the project's own functions (`save_skus`,
`save_warehouse`, `set_on_hand`, `store_orders`). Setup is not measured. Then N spawned
processes, each importing the real task and opening its connection first, wait for one
start signal and run the body of the `allocate-stock` task, `allocate_stock.fn(batch,
after_id=cursor)`, over every waiting order, as `tests/allocators.py` does. The time is
the wall time from the start signal to the last worker finishing (one monotonic clock).

    hot SKU      one line of 1 unit per order, all of SKU HOT-1, with stock for half of
                 them (30 % of the lines in BENCH-E, 20 % in BENCH-S): the stock runs
                 out and the rest are backordered.
    10,000 SKUs  orders of 1-3 lines (1.75 on average) of 1-2 units over 10,000 SKUs,
                 0-5 units of each SKU in each warehouse: most orders are allocated.

`lines/s` is every order line decided (allocated or backordered) per second of that wall
time; `alloc lines` says how many of them got stock. Orders should end allocated or
backordered, never waiting: the run checks it. A worker whose task call raises (the task
gives up after 8 plans that found the stock moved) stops there, as its flow run would;
`gave up` counts those workers, the orders they leave waiting are printed under the
table, and `lines/s` then counts only the lines decided.

The floor, measured in the same run on the same kind of database: exactly the guarded
UPDATEs the allocator committed, and nothing else. `reserve()` issues one guarded UPDATE
per (warehouse, SKU) that a batch takes units of, in (warehouse_id, sku_id) order, inside
the batch's transaction. Every reservation row a batch inserts carries the batch's one
`now` as `created_at`, so the committed batches are recovered after the run from the
reservations table: rows grouped by `created_at` are one transaction, and the distinct
(warehouse_id, sku_id) pairs of a group with the sum of their units are the statements
it issued. The grouping is checked against the workers' own reports (the number of
batches that took stock, and the number of SKUs each touched, as a multiset); a mismatch
is printed. Then a fresh database with the same warehouses, SKUs and stock (ids kept,
nothing reserved) replays them: the allocator's own statement object
(`oms.db.stock._GUARDED_RESERVE`, so also `updated_at = :now`), one execute per pair
through a SQLAlchemy connection of `oms.db.engine.get_engine` (so SQLite runs WAL and
BEGIN IMMEDIATE, as the allocator does), one transaction per recorded batch, over the
same number of spawned processes, batches dealt to them in commit-time order. Rolled
back attempts (replans) are not in the floor; neither are batches that took nothing
(a batch whose orders were all backordered issues no guarded UPDATE). `floor lines/s` is
the decided lines divided by the floor's wall time: what allocation would run at if the
guarded UPDATEs were all it cost. `ratio` is allocation time / floor time. In the hot SKU
cells the floor is a few dozen statements (one or two per batch that still found stock),
so its milliseconds are mostly process wake-up and commits.

`oversold` must be 0: for each stock row max(0, reserved - on_hand), plus for each
stock row |reserved - the sum of its held and locked reservation rows|.
`replans` are batches planned again after StockMoved or a lock conflict, summed over
the workers' task calls that returned (a call that gave up had 8 more, not counted here);
`considered` is orders read by all batches of all workers. The workers of a cell share
one pass start (`decided_before`), so a backorder one of them tried is not routed again
by the others; on PostgreSQL a batch can still meet an order another committed a moment
ago and try it once more.

    python benchmarks/allocate.py                        # everything, about 2 minutes on 2 cores
    python benchmarks/allocate.py --lines 5000 --workers 1 --databases sqlite
    python benchmarks/allocate.py --profile /tmp/alloc.prof --databases sqlite --workers 1

`--profile PATH` runs the first worker of each cell under cProfile and writes
PATH.<database>.<scenario>.<workers> (read them with `python -m pstats`).
It prints a table and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_BENCH_DB = "oms_bench"
HOUSES = (("BENCH-E", "上海市", 10), ("BENCH-S", "广东省", 20))
# (province, city, district): receivers spread so that both warehouses are nearest to some
PLACES = (
    ("上海市", "上海市", "浦东新区"), ("浙江省", "杭州市", "西湖区"), ("江苏省", "南京市", "玄武区"),
    ("北京市", "北京市", "朝阳区"), ("广东省", "广州市", "天河区"), ("广东省", "深圳市", "南山区"),
    ("福建省", "福州市", "鼓楼区"), ("广西壮族自治区", "南宁市", "青秀区"), ("四川省", "成都市", "武侯区"),
    ("湖北省", "武汉市", "江汉区"),
)
SCENARIOS = {"hot": "hot SKU", "many": "10,000 SKUs"}
SKU_COUNT = 10_000
SEED = 20261202


# ------------------------------------------------------------------ the run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000, help="order lines per cell")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--batch", type=int, default=500, help="orders per allocation batch")
    parser.add_argument("--profile", metavar="PATH", help="cProfile the first worker of each cell")
    args = parser.parse_args()

    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="oms-bench-alloc-"))
    rules_path = write_routing_rules(work)
    os.environ["OMS_ROUTING_RULES_PATH"] = str(rules_path)
    os.environ["OMS_UNPAID_HOLD_MINUTES"] = "0"
    rows = []
    for database in args.databases:
        for scenario in args.scenarios:
            for workers in args.workers:
                print(f"... {database} / {SCENARIOS[scenario]} / {workers} worker(s)", file=sys.stderr, flush=True)
                profile = f"{args.profile}.{database}.{scenario}.{workers}" if args.profile else None
                rows.append(run_cell(database, scenario, workers, args.lines, args.batch, work, profile))
    dispose()
    shutil.rmtree(work, ignore_errors=True)
    print_table(rows, args)
    print(f"\nwhole benchmark: {time.monotonic() - began:.0f} s", flush=True)


def run_cell(database: str, scenario: str, workers: int, lines: int, batch: int, work: Path,
             profile: str | None) -> dict:
    url = fresh_database(database, work, "alloc")
    stock_rows, wanted = world(scenario, lines)
    setup_began = time.monotonic()
    build(url, stock_rows, wanted)
    setup_s = time.monotonic() - setup_began

    # One allocation pass: its workers share its start, as the batches of one fulfil run do.
    pass_started = datetime.now(timezone.utc)
    reports, wall = run_processes(_allocator, [(url, batch, profile if n == 0 else None, pass_started)
                                               for n in range(workers)])
    figures = inspect(url)
    transactions = figures.pop("transactions")
    grouping = check_grouping(transactions, reports)
    initial = copy_of_stock(url)

    floor_url = fresh_database(database, work, "floor")
    load_stock(floor_url, initial)
    shares = [transactions[n::workers] for n in range(workers)]
    floor_reports, floor_wall = run_processes(_floor_worker, [(floor_url, share) for share in shares])
    statements = sum(len(txn) for txn in transactions)
    dispose()
    return {
        "database": database, "scenario": SCENARIOS[scenario], "workers": workers,
        "lines": figures["lines"], "orders": figures["orders"],
        "allocated": figures["allocated"], "backordered": figures["backordered"],
        "waiting": figures["waiting"], "alloc_lines": figures["alloc_lines"],
        "decided_lines": figures["decided_lines"],
        "seconds": wall, "lines_per_s": figures["decided_lines"] / wall,
        "floor_txns": len(transactions), "floor_updates": statements, "floor_seconds": floor_wall,
        "floor_updates_per_s": statements / floor_wall if floor_wall else 0.0,
        "floor_lines_per_s": figures["decided_lines"] / floor_wall if floor_wall else 0.0,
        "ratio": wall / floor_wall if floor_wall else float("inf"),
        "oversold": figures["oversold"], "line_problems": figures["line_problems"],
        "replans": sum(r["replans"] for r in reports), "batches": sum(r["batches"] for r in reports),
        "considered": sum(r["considered"] for r in reports),
        "floor_misses": sum(r["misses"] for r in floor_reports),
        "grouping": grouping, "setup_s": setup_s,
        "gave_up": [r["gave_up"] for r in reports if r["gave_up"]],
        "slowest_worker_s": max(r["finished"] - r["began"] for r in reports),
    }


def run_processes(target, argument_lists: list[tuple]) -> tuple[list[dict], float]:
    """Spawn one process per argument tuple; once all are ready, start them together and
    return their reports and the wall time from the signal to the last one finishing."""
    context = multiprocessing.get_context("spawn")
    ready, start, results = context.Queue(), context.Event(), context.Queue()
    processes = [context.Process(target=target, args=(*arguments, ready, start, results))
                 for arguments in argument_lists]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=300)
    signalled = time.monotonic()
    start.set()
    reports = [results.get(timeout=1800) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    failed = [report["error"] for report in reports if "error" in report]
    if failed:
        raise SystemExit("a worker failed:\n" + "\n".join(failed))
    return reports, max(report["finished"] for report in reports) - signalled


# ------------------------------------------------------------------ the processes


def _allocator(url: str, batch: int, profile: str | None, pass_started: datetime, ready, start, results) -> None:
    """One allocator: the task body over every waiting order, from the start signal."""
    try:
        os.environ["OMS_DATABASE_URL"] = url
        from tasks.allocate import allocate_stock
        from tasks.resources import engine

        with engine().connect():
            pass
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
        ready.put(os.getpid())
        start.wait()
        began = time.monotonic()
        if profiler:
            profiler.enable()
        totals: Counter = Counter()
        reserving: list[int] = []  # SKUs touched by each batch that took stock
        cursor = 0
        gave_up = ""
        while True:
            try:
                summary = allocate_stock.fn(batch, after_id=cursor, decided_before=pass_started)
            except Exception as error:  # the task failed: a flow run would stop here too
                gave_up = f"{type(error).__name__}: {error}"
                break
            totals.update(considered=summary.considered, allocated=summary.allocated,
                          backordered=summary.backordered, replans=summary.replans, batches=1)
            if summary.touched_skus:
                reserving.append(len(summary.touched_skus))
            if summary.considered < batch:
                break
            cursor = summary.last_id
        finished = time.monotonic()
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        results.put({**{k: totals[k] for k in ("considered", "allocated", "backordered", "replans", "batches")},
                     "reserving": reserving, "gave_up": gave_up, "began": began, "finished": finished})
    except BaseException:
        results.put({"error": traceback.format_exc()})


def _floor_worker(url: str, transactions: list[list[tuple[int, int, int]]], ready, start, results) -> None:
    """The floor: the recorded guarded UPDATEs, one transaction per recorded batch."""
    try:
        from oms.db.engine import get_engine
        from oms.db.stock import _GUARDED_RESERVE

        engine = get_engine(url)
        with engine.connect():
            pass
        ready.put(os.getpid())
        start.wait()
        began = time.monotonic()
        misses = 0
        for transaction in transactions:
            now = datetime.now(timezone.utc)
            with engine.begin() as conn:
                for warehouse_id, sku_id, units in transaction:
                    params = {"w": warehouse_id, "s": sku_id, "units": units, "now": now}
                    if conn.execute(_GUARDED_RESERVE, params).rowcount != 1:
                        misses += 1
        results.put({"misses": misses, "began": began, "finished": time.monotonic()})
    except BaseException:
        results.put({"error": traceback.format_exc()})


# ------------------------------------------------------------------ the world


def world(scenario: str, lines: int) -> tuple[dict[tuple[str, str], int], list[dict[str, int]]]:
    """Stock per (warehouse code, SKU code), and one dict SKU -> units per order."""
    rng = random.Random(SEED)
    if scenario == "hot":
        return {("BENCH-E", "HOT-1"): lines * 3 // 10, ("BENCH-S", "HOT-1"): lines * 2 // 10}, [{"HOT-1": 1}] * lines
    codes = [f"SKU-{n:05d}" for n in range(SKU_COUNT)]
    stock = {(house, code): rng.randint(0, 5) for code in codes for house, _, _ in HOUSES}
    wanted, left = [], lines
    while left:
        count = min(left, rng.choice((1, 1, 2, 3)))
        wanted.append({code: rng.randint(1, 2) for code in rng.sample(codes, count)})
        left -= count
    return stock, wanted


def build(url: str, stock_levels: dict[tuple[str, str], int], wanted: list[dict[str, int]]) -> None:
    from oms.db.engine import get_engine
    from oms.db.orders import store_orders
    from oms.db.shops import save_skus, save_warehouse, set_on_hand
    from oms.domain.order import Order, OrderLine, OrderStatus, Receiver

    rng = random.Random(SEED + 1)
    engine = get_engine(url)
    with engine.begin() as conn:
        ids = save_skus(conn, [{"code": code, "title": code, "weight_grams": 300}
                               for code in sorted({sku for _, sku in stock_levels})])
        for code, province, priority in HOUSES:
            house = save_warehouse(conn, code=code, name=code, province=province, priority=priority)
            set_on_hand(conn, house, {ids[sku]: units for (w, sku), units in stock_levels.items() if w == code})
    now = datetime.now(timezone.utc)
    first = now - timedelta(hours=2)
    orders = []
    for number, lines in enumerate(wanted, start=1):
        province, city, district = rng.choice(PLACES)
        at = first + timedelta(milliseconds=number)
        orders.append(Order(
            platform="shopify", shop_code="bench-shop", platform_order_id=f"BENCH-{number}",
            platform_status="paid", status=OrderStatus.PAID, created_at=at, updated_at=at, paid_at=at,
            currency="CNY", total_amount=Decimal("59.00") * sum(lines.values()), buyer_ref=f"buyer-{number}",
            receiver=Receiver(name=f"买家{number}", phone=f"+86138{number:08d}", province=province, city=city,
                              district=district, address=f"测试路 {number} 号"),
            lines=[OrderLine(sku=sku, quantity=units, unit_price=Decimal("59.00"), title=sku)
                   for sku, units in lines.items()],
        ))
    for start in range(0, len(orders), 2000):
        with engine.begin() as conn:
            store_orders(conn, orders[start:start + 2000], now=now)
    settle(url)


def fresh_database(database: str, work: Path, label: str) -> str:
    """An empty, migrated database: a new SQLite file, or the emptied `oms_bench`."""
    from sqlalchemy import create_engine, text

    from oms.db.migrate import upgrade

    dispose()
    if database == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=work))
        url = f"sqlite:///{folder}/oms.db"
    else:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                {"n": POSTGRES_BENCH_DB}).first():
                conn.execute(text(f'CREATE DATABASE "{POSTGRES_BENCH_DB}"'))
        admin.dispose()
        url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{POSTGRES_BENCH_DB}"
        bench = create_engine(url, isolation_level="AUTOCOMMIT")
        with bench.connect() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        bench.dispose()
    upgrade(url)
    return url


def settle(url: str) -> None:
    """After bulk setup: statistics for PostgreSQL's planner (autovacuum would gather them
    in production), a checkpointed WAL for SQLite."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("VACUUM ANALYZE"))
        else:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


def copy_of_stock(url: str) -> dict[str, list[dict]]:
    from sqlalchemy import select

    from oms.db.engine import get_engine
    from oms.db.schema import skus, stock, warehouses

    with get_engine(url).connect() as conn:
        return {
            "warehouses": [dict(r._mapping) for r in conn.execute(select(warehouses))],
            "skus": [dict(r._mapping) for r in conn.execute(select(skus))],
            "stock": [dict(r._mapping) | {"reserved": 0, "updated_at": None} for r in conn.execute(select(stock))],
        }


def load_stock(url: str, copy: dict[str, list[dict]]) -> None:
    from oms.db.engine import get_engine
    from oms.db.schema import skus, stock, warehouses

    with get_engine(url).begin() as conn:
        for table in (warehouses, skus, stock):
            conn.execute(table.insert(), copy[table.name])
    settle(url)


def dispose() -> None:
    from oms.db.engine import dispose_engines

    dispose_engines()


def write_routing_rules(work: Path) -> Path:
    """The rules of config/routing.yaml without its warehouse section: our warehouses have
    no daily capacity and no rate card."""
    import yaml

    document = yaml.safe_load((ROOT / "config" / "routing.yaml").read_text(encoding="utf-8"))
    document.pop("warehouses", None)
    path = work / "routing.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


# ------------------------------------------------------------------ after the run


def inspect(url: str) -> dict:
    """Counts, the oversold units, and the committed batches' guarded UPDATEs."""
    from sqlalchemy import func, select

    from oms.db.engine import get_engine
    from oms.db.schema import order_lines, orders, reservations, stock

    with get_engine(url).connect() as conn:
        statuses = Counter(dict(conn.execute(select(orders.c.status, func.count()).group_by(orders.c.status)).all()))
        lines = conn.execute(select(func.count()).select_from(order_lines)).scalar_one()
        lines_by_status = Counter(dict(conn.execute(
            select(orders.c.status, func.count())
            .select_from(order_lines.join(orders, orders.c.id == order_lines.c.order_id))
            .group_by(orders.c.status)).all()))
        holding = {(w, s): int(n) for w, s, n in conn.execute(
            select(reservations.c.warehouse_id, reservations.c.sku_id, func.sum(reservations.c.quantity))
            .where(reservations.c.state.in_(("held", "locked")))
            .group_by(reservations.c.warehouse_id, reservations.c.sku_id))}
        oversold = 0
        for row in conn.execute(select(stock.c.warehouse_id, stock.c.sku_id, stock.c.on_hand, stock.c.reserved)):
            oversold += max(0, row.reserved - row.on_hand)
            oversold += abs(row.reserved - holding.get((row.warehouse_id, row.sku_id), 0))
        # Every line of an allocated order reserved in full, and no other line reserved.
        per_line = dict(conn.execute(select(reservations.c.order_line_id, func.sum(reservations.c.quantity))
                                     .group_by(reservations.c.order_line_id)).all())
        line_problems = sum(
            1 for line_id, quantity, status in conn.execute(
                select(order_lines.c.id, order_lines.c.quantity, orders.c.status)
                .join(orders, orders.c.id == order_lines.c.order_id))
            if per_line.get(line_id, 0) != (quantity if status == "allocated" else 0))
        batches: dict = {}
        for created, w, s, n in conn.execute(
                select(reservations.c.created_at, reservations.c.warehouse_id, reservations.c.sku_id,
                       func.sum(reservations.c.quantity))
                .group_by(reservations.c.created_at, reservations.c.warehouse_id, reservations.c.sku_id)):
            batches.setdefault(created, []).append((w, s, int(n)))
    transactions = [sorted(batches[at]) for at in sorted(batches)]  # reserve()'s order
    return {"orders": sum(statuses.values()), "allocated": statuses.get("allocated", 0),
            "backordered": statuses.get("backordered", 0),
            "waiting": sum(n for status, n in statuses.items() if status not in ("allocated", "backordered")),
            "lines": lines, "alloc_lines": lines_by_status["allocated"],
            "decided_lines": lines_by_status["allocated"] + lines_by_status["backordered"],
            "oversold": oversold, "line_problems": line_problems,
            "transactions": transactions}


def check_grouping(transactions: list[list[tuple[int, int, int]]], reports: list[dict]) -> str:
    """'ok' when the batches recovered from the rows are the ones the workers reported."""
    reported = Counter(n for report in reports for n in report["reserving"])
    recovered = Counter(len({s for _, s, _ in txn}) for txn in transactions)
    if reported == recovered:
        return "ok"
    return (f"MISMATCH: workers reported {sum(reported.values())} batches taking stock, "
            f"the rows group into {sum(recovered.values())}")


# ------------------------------------------------------------------ the table


def print_table(rows: list[dict], args) -> None:
    columns = [
        ("database", "{database}"), ("scenario", "{scenario}"), ("workers", "{workers}"),
        ("lines", "{lines:,}"), ("alloc lines", "{alloc_lines:,}"),
        ("orders alloc/backord", "{allocated:,}/{backordered:,}"),
        ("alloc s", "{seconds:.2f}"), ("lines/s", "{lines_per_s:,.0f}"),
        ("floor txns", "{floor_txns:,}"), ("floor UPDATEs", "{floor_updates:,}"),
        ("floor s", "{floor_seconds:.3f}"), ("floor UPDATEs/s", "{floor_updates_per_s:,.0f}"),
        ("floor lines/s", "{floor_lines_per_s:,.0f}"), ("ratio", "{ratio:,.1f}"),
        ("oversold", "{oversold}"), ("replans", "{replans}"), ("gave up", "{gave_up_n}"),
        ("batches", "{batches}"),
        ("considered", "{considered:,}"),
    ]
    cells = [[fmt.format(**row, gave_up_n=len(row["gave_up"])) for _, fmt in columns] for row in rows]
    widths = [max(len(title), *(len(c[i]) for c in cells)) for i, (title, _) in enumerate(columns)]
    print(f"\nAllocation, batch {args.batch} orders, {args.lines:,} order lines per cell "
          f"(ratio = alloc s / floor s; floor = the committed guarded UPDATEs alone)\n")
    print("  ".join(title.rjust(w) for (title, _), w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for cell in cells:
        print("  ".join(value.rjust(w) for value, w in zip(cell, widths)))
    print()
    for row in rows:
        label = f"{row['database']} / {row['scenario']} / {row['workers']}"
        notes = [f"setup {row['setup_s']:.1f} s (not measured)", f"slowest worker {row['slowest_worker_s']:.2f} s"]
        if row["grouping"] != "ok":
            notes.append(f"batch grouping {row['grouping']}")
        if row["gave_up"]:
            notes.append(f"{len(row['gave_up'])} of {row['workers']} workers stopped on a failed batch "
                         f"({row['gave_up'][0].splitlines()[0][:120]})")
        if row["waiting"]:
            notes.append(f"{row['waiting']:,} orders left waiting ({row['lines'] - row['decided_lines']:,} lines; "
                         "lines/s counts decided lines only)")
        if row["line_problems"]:
            notes.append(f"{row['line_problems']} lines reserved wrongly")
        if row["floor_misses"]:
            notes.append(f"{row['floor_misses']} floor UPDATEs matched no row")
        print(f"  {label}: " + "; ".join(notes))


if __name__ == "__main__":
    main()
