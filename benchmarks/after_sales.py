"""How fast `process-after-sales` settles after-sales requests that need no person.

For each database this measures the `process-after-sales` flow, through Prefect, against
the sandbox over HTTP, with the sandbox in a process of its own (as in ship.py): the flow
run again and again (500 requests claimed a run, its default) until it claims none.
Each run claims its batch, plans every request, settles the whole batch in one
`settle-automatic-after-sales` task (`walk_lifecycle` per request: audit rows, progress,
the platform's agree through `carry_out_answer`, the order moved) and publishes the
after-sales report. `requests/s` is the requests whose status became refunded,
partially_refunded, refused or failed, over the wall time of all the runs.

The lifecycle is a benchmark copy of config/after_sales.yaml, written to a temporary
file, whose automatic rule approves every refund-only request (amount at most
1,000,000,000, no cross-border or repeat-refunder condition), so every request is
settled without a person: the figure is the pipeline's own cost per request, not a
person's. The nodes are the shipped ones; the approval nodes a request reaches are
approved by the rule, the checks are skipped for refund-only requests.

Setup is not measured: shops on Pinduoduo and Taobao with seeded orders (`--orders` per
shop), the orders ingested through the real `ingest-orders` flow, then refund-only
requests opened on every paid, shipped or delivered order (`seed_after_sales`,
share 1.0) and brought in by the real `ingest-after-sales` flow. One request in seven
is served without its amount (the sandbox's dirt); it goes to the review queue and is
not counted.

The floor is the sandbox's own rate for the same calls with no pipeline in front,
measured in the same run right after it: the sandbox opens a fresh refund-only request
on every order again, the connectors read them (not timed), and exactly as many agree
calls as the pipeline made, shop for shop, are sent for them through the same connector
classes (`answer_after_sales`), on one thread, with nothing read from or written to the
database and with the connectors' pacing switched off.

The pipeline keeps each platform's request pacing (Pinduoduo 50 a second, Taobao 40,
from the connectors); `cap/s` is the pacing's ceiling summed over the two shops (the
batch task answers one request at a time, so it could reach that only if each answer
cost nothing but its call). `ratio` is pipeline time / floor time.

    python benchmarks/after_sales.py                               # 1,000 orders a shop, SQLite and PostgreSQL
    python benchmarks/after_sales.py --orders 300 --databases sqlite

PostgreSQL runs in a database of its own (oms_bench_after_sales), created and dropped
here. It prints a table and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from benchmarks.ingest import POSTGRES_ADMIN_URL, warm_up_prefect  # noqa: E402

PLATFORMS = ("pdd", "taobao")
ORDER_SEED, REQUEST_SEED, FLOOR_SEED = 71, 72, 73
POSTGRES_BENCH_DB = "oms_bench_after_sales"
BATCH_SIZE = 500  # process-after-sales' own default
SETTLED = ("refunded", "partially_refunded", "refused", "failed")
EVERY_AMOUNT = 1_000_000_000


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
        try:
            child = subprocess.run([sys.executable, __file__, "--orders", str(args.orders), "--one", database],
                                   capture_output=True, text=True, cwd=ROOT)
        finally:
            if database == "postgresql":
                drop_postgres_database()
        if child.returncode != 0:
            print(child.stdout, child.stderr, file=sys.stderr)
            raise SystemExit(f"benchmark run on {database} failed")
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print_table(results)


# ----------------------------------------------------------------- databases


def prepare_database(database: str) -> str:
    if database == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix='oms-bench-after-sales-')}/oms.db"
    from sqlalchemy import create_engine, text

    drop_postgres_database()
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{POSTGRES_BENCH_DB}"'))
    admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{POSTGRES_BENCH_DB}"


def drop_postgres_database() -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{POSTGRES_BENCH_DB}" WITH (FORCE)'))
    admin.dispose()


# ----------------------------------------------------------------- the sandbox process


def serve_sandbox(orders: int) -> None:
    """The sandbox with the benchmark's shops; it prints them as one JSON line, then obeys
    `seed SHOP SEED` lines on stdin (refund-only requests on every paid, shipped or
    delivered order; it answers with their request ids) until stdin closes."""
    from sandbox.after_sales import REFUND_ONLY, seed_after_sales
    from sandbox.app import add_simulated_shop, shop_base_url
    from sandbox.model import SandboxState
    from sandbox.server import running_sandbox

    with running_sandbox(SandboxState()) as sandbox:
        now = datetime.now(timezone.utc)
        shops = {}
        for platform in PLATFORMS:
            code = f"bench-{platform}"
            credentials = add_simulated_shop(sandbox.state, platform, code, orders, ORDER_SEED, now=now)
            shops[code] = {"platform": platform, "base_url": shop_base_url(platform, sandbox.url, code),
                           "credentials": credentials}
        print(json.dumps({"url": sandbox.url, "shops": shops}, default=str), flush=True)
        for line in sys.stdin:
            command, shop, seed = (line.split() + ["", "", ""])[:3]
            if command == "seed":
                made = seed_after_sales(sandbox.state, shop, seed=int(seed), now=datetime.now(timezone.utc),
                                        share=1.0, kinds=(REFUND_ONLY,))
                print(json.dumps([request.request_id for request in made]), flush=True)
            else:
                print(json.dumps({"unknown": line.strip()}), flush=True)


class SandboxProcess:
    def __init__(self, orders: int) -> None:
        self.child = subprocess.Popen([sys.executable, __file__, "--serve-sandbox", "--orders", str(orders)],
                                      cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.setup = json.loads(self.child.stdout.readline())

    def seed(self, shop: str, seed: int) -> list[int]:
        self.child.stdin.write(f"seed {shop} {seed}\n")
        self.child.stdin.flush()
        return json.loads(self.child.stdout.readline())

    def stop(self) -> None:
        self.child.stdin.close()
        self.child.wait(timeout=30)


# ----------------------------------------------------------------- one database


def run_one(database: str, orders: int) -> dict:
    url = prepare_database(database)
    os.environ["OMS_DATABASE_URL"] = url
    from oms.config import reset_settings
    from oms.db.migrate import upgrade

    reset_settings()
    upgrade(url)
    scratch = tempfile.mkdtemp(prefix="oms-bench-lifecycle-")
    sandbox = SandboxProcess(orders)
    try:
        lifecycle = _benchmark_lifecycle(Path(scratch))
        shops = sandbox.setup["shops"]
        _register_shops(shops, url)
        warm_up_prefect()
        seeded = _ingest(sandbox, list(shops))
        pipeline = _measure_pipeline(lifecycle)
        floor = _agree_floor(sandbox, shops, pipeline["per_shop"])
    finally:
        sandbox.stop()
        from oms.db.engine import get_engine

        get_engine(url).dispose()
        shutil.rmtree(scratch, ignore_errors=True)
        if database == "sqlite":
            shutil.rmtree(Path(url.removeprefix("sqlite:///")).parent, ignore_errors=True)
    return _row(database, seeded, pipeline, floor)


def _benchmark_lifecycle(folder: Path) -> str:
    """config/after_sales.yaml with the automatic rule widened to every refund-only request."""
    import yaml

    document = yaml.safe_load((ROOT / "config" / "after_sales.yaml").read_text(encoding="utf-8"))
    document["auto_approve"] = [{"name": "benchmark-every-refund-only",
                                 "when": {"amount_at_most": EVERY_AMOUNT, "kinds": ["refund_only"]}}]
    path = folder / "after_sales.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return str(path)


def _register_shops(shops: dict, database_url: str) -> None:
    from oms.db.engine import get_engine
    from tasks.tokens import register_shop

    now = datetime.now(timezone.utc)
    with get_engine(database_url).begin() as conn:
        for code, shop in shops.items():
            register_shop(conn, code=code, platform=shop["platform"], name=code, base_url=shop["base_url"],
                          credentials=shop["credentials"], now=now)


def _ingest(sandbox: SandboxProcess, shops: list[str]) -> int:
    """Orders in through ingest-orders, then a request on every order, in through
    ingest-after-sales; the number of requests the sandbox opened."""
    from flows.after_sales_ingest import ingest_after_sales
    from flows.ingest import ingest_orders

    for shop in shops:
        ingest_orders(shop)
    seeded = sum(len(sandbox.seed(shop, REQUEST_SEED)) for shop in shops)
    ingest_after_sales()
    return seeded


def _measure_pipeline(lifecycle: str) -> dict:
    from flows.after_sales_process import process_after_sales

    runs, claimed, waiting = 0, 0, 0
    started = time.perf_counter()
    while True:
        processed = process_after_sales(lifecycle_path=lifecycle, batch_size=BATCH_SIZE)
        runs += 1
        claimed += processed.claimed
        waiting += len(processed.sent_to_people) + len(processed.waiting_without_run)
        if processed.claimed < BATCH_SIZE:
            break
    seconds = time.perf_counter() - started
    statuses, per_shop = _statuses()
    return {"count": sum(statuses.get(s, 0) for s in SETTLED), "seconds": seconds, "runs": runs,
            "claimed": claimed, "waiting": waiting, "statuses": dict(statuses), "per_shop": per_shop}


def _statuses() -> tuple[Counter, dict[str, int]]:
    from sqlalchemy import func, select

    from oms.db.schema import after_sales_requests as requests
    from tasks.resources import engine

    statuses, per_shop = Counter(), Counter()
    with engine().connect() as conn:
        rows = conn.execute(select(requests.c.shop_code, requests.c.status, func.count())
                            .group_by(requests.c.shop_code, requests.c.status)).all()
    for shop, status, count in rows:
        statuses[status] += count
        if status in SETTLED:
            per_shop[shop] += count
    return statuses, dict(per_shop)


# ----------------------------------------------------------------- the floor


def _agree_floor(sandbox: SandboxProcess, shops: dict, per_shop: dict[str, int]) -> dict:
    """As many agree calls as the pipeline made, shop for shop, for fresh requests."""
    import httpx

    from connectors.base import AfterSalesDecision, ShopAccess
    from oms.domain.errors import MappingError
    from tasks.resources import CONNECTORS

    fresh = {code: {str(i) for i in sandbox.seed(code, FLOOR_SEED)} for code in shops}
    now = datetime.now(timezone.utc)
    with httpx.Client(timeout=20) as http:
        connectors, calls = {}, []
        for code, shop in shops.items():
            access = ShopAccess(code, shop["platform"], shop["base_url"], shop["credentials"])
            connector = connectors[code] = CONNECTORS[shop["platform"]](access, http=http)
            connector._pacing = None  # the sandbox's rate, not the platform's budget
            found = []
            for page in connector.fetch_after_sales(now - timedelta(hours=25), now + timedelta(minutes=2)):
                for raw in page:
                    if raw.platform_request_id not in fresh[code]:
                        continue
                    try:
                        found.append(connector.to_after_sales(raw))
                    except MappingError:
                        continue  # served without its amount: the pipeline parks these too
            wanted = per_shop.get(code, 0)
            if len(found) < wanted:
                raise RuntimeError(f"{code}: only {len(found)} fresh requests for {wanted} floor calls")
            calls += [(code, request) for request in found[:wanted]]
        started = time.perf_counter()
        for code, request in calls:
            connectors[code].answer_after_sales(
                request, AfterSalesDecision(agree=True, amount=Decimal(request.amount), note="approved"))
        seconds = time.perf_counter() - started
    return {"count": len(calls), "seconds": seconds}


def _cap() -> float:
    from connectors import pinduoduo, taobao

    return pinduoduo.REQUEST_RATE.per_second + taobao.REQUEST_RATE.per_second


# ----------------------------------------------------------------- the table


def _row(database: str, seeded: int, pipeline: dict, floor: dict) -> dict:
    return {
        "database": database, "seeded": seeded, "claimed": pipeline["claimed"], "runs": pipeline["runs"],
        "waiting": pipeline["waiting"], "statuses": pipeline["statuses"],
        "requests": pipeline["count"], "pipeline_s": round(pipeline["seconds"], 2),
        "requests/s": round(pipeline["count"] / pipeline["seconds"], 1) if pipeline["seconds"] else 0,
        "floor_calls": floor["count"], "floor_s": round(floor["seconds"], 2),
        "floor/s": round(floor["count"] / floor["seconds"], 1) if floor["seconds"] else 0,
        "cap/s": _cap(),
        "ratio": round(pipeline["seconds"] / floor["seconds"], 1) if floor["seconds"] else 0,
    }


def print_table(results: list[dict]) -> None:
    columns = ["database", "requests", "pipeline_s", "requests/s", "floor/s", "cap/s", "ratio"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in results)) for c in columns}
    print("  ".join(c.rjust(widths[c]) for c in columns))
    for row in results:
        print("  ".join(str(row[c]).rjust(widths[c]) for c in columns))
    print()
    for row in results:
        statuses = ", ".join(f"{status} {count}" for status, count in sorted(row["statuses"].items()))
        print(f"{row['database']}: {row['seeded']} requests opened, {row['claimed']} claimed in {row['runs']} "
              f"run(s), {row['waiting']} left for a person; statuses: {statuses}; floor: {row['floor_calls']} "
              f"calls in {row['floor_s']} s")
    print("\nrequests = after-sales requests settled (refunded, partially refunded, refused or failed) by "
          "process-after-sales, every one by the widened automatic rule; floor = as many agree calls for fresh "
          "requests to the sandbox through the same connectors, no database, no pacing, one thread; "
          "cap = the connectors' request pacing, summed over the two shops; ratio = pipeline_s / floor_s.")


if __name__ == "__main__":
    main()
