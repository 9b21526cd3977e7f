"""How fast `ingest-orders` moves orders from a sandbox platform into each database.

For every (database, platform) pair this runs the real flow, through Prefect, against a
sandbox server in its own process over HTTP, and measures beside it, in the same run and
on the same database, the floor: a plain bulk insert of exactly the rows the flow stored
(orders and their lines). Each pair runs in a fresh child process so that the peak memory
figure (max RSS) belongs to that run alone.

    python benchmarks/ingest.py                      # 20,000 orders, SQLite and PostgreSQL
    python benchmarks/ingest.py --orders 5000 --databases sqlite --platforms pdd

It prints a table and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_BENCH_DB = "oms_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--platforms", default="shopify,pdd")
    parser.add_argument("--one", nargs=2, metavar=("DATABASE", "PLATFORM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], args.one[1], args.orders)))
        return
    results = []
    for database in args.databases.split(","):
        for platform in args.platforms.split(","):
            child = subprocess.run(
                [sys.executable, __file__, "--orders", str(args.orders), "--one", database, platform],
                capture_output=True, text=True, cwd=ROOT,
            )
            if child.returncode != 0:
                print(child.stdout, child.stderr, file=sys.stderr)
                raise SystemExit(f"benchmark run {database}/{platform} failed")
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print_table(results)


def run_one(database: str, platform: str, orders: int) -> dict:
    url = prepare_database(database)
    os.environ["OMS_DATABASE_URL"] = url
    from oms.config import reset_settings

    reset_settings()
    from oms.db.migrate import downgrade, upgrade

    if database == "postgresql":
        downgrade(url, "base")
    upgrade(url)
    with sandbox_process() as sandbox_url:
        shop = register_shop(sandbox_url, platform, orders, url)
        from flows.ingest import ingest_orders

        warm_up_prefect()
        rss_before = max_rss_mib()
        started = time.perf_counter()
        report = ingest_orders(shop)
        pipeline_seconds = time.perf_counter() - started
    floor_seconds, stored = measure_floor(url)
    return {
        "database": database,
        "platform": platform,
        "fetched": report.fetched,
        "stored": stored,
        "pipeline_s": round(pipeline_seconds, 2),
        "pipeline_orders_per_s": round(report.fetched / pipeline_seconds),
        "floor_s": round(floor_seconds, 3),
        "floor_orders_per_s": round(stored / floor_seconds) if floor_seconds else 0,
        "peak_rss_mib": round(max_rss_mib()),
        "rss_before_mib": round(rss_before),
    }


def prepare_database(database: str) -> str:
    if database == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix='oms-bench-')}/oms.db"
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": POSTGRES_BENCH_DB}).first():
            conn.execute(text(f'CREATE DATABASE "{POSTGRES_BENCH_DB}"'))
    admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{POSTGRES_BENCH_DB}"


class sandbox_process:
    """The sandbox in a child process, so its memory is not counted as the pipeline's."""

    def __enter__(self) -> str:
        from sandbox.server import free_loopback_port

        port = free_loopback_port()
        self.child = subprocess.Popen(
            [sys.executable, "-m", "oms.cli", "sandbox", "--port", str(port)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        import httpx

        for _ in range(300):
            try:
                httpx.get(f"{url}/_sandbox/health", timeout=1).raise_for_status()
                return url
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the sandbox did not start")

    def __exit__(self, *exc) -> None:
        self.child.terminate()
        self.child.wait(timeout=10)


def register_shop(sandbox_url: str, platform: str, orders: int, database_url: str) -> str:
    from datetime import datetime, timezone

    import httpx

    from oms.db.engine import get_engine
    from sandbox.app import shop_base_url
    from tasks.tokens import register_shop as store_shop

    code = f"bench-{platform}"
    response = httpx.post(f"{sandbox_url}/_sandbox/shops", timeout=120, json={
        "platform": platform, "shop": code, "orders": orders, "seed": 99, "span_hours": 48})
    response.raise_for_status()
    with get_engine(database_url).begin() as conn:
        store_shop(conn, code=code, platform=platform, name=code,
                  base_url=shop_base_url(platform, sandbox_url, code),
                  credentials=response.json(), now=datetime.now(timezone.utc))
    return code


def warm_up_prefect() -> None:
    """Start Prefect's ephemeral API before the clock starts: it is paid once per process."""
    from prefect import flow

    @flow(name="benchmark-warm-up")
    def warm_up() -> None:
        return None

    warm_up()
    from tasks.pacing import ensure_platform_limits

    ensure_platform_limits()


def measure_floor(database_url: str) -> tuple[float, int]:
    """Bulk-insert the very rows the flow stored into empty copies of the tables."""
    from sqlalchemy import MetaData, Table, select

    from oms.db.engine import get_engine
    from oms.db.schema import order_lines, orders

    engine = get_engine(database_url)
    with engine.connect() as conn:
        order_rows = [dict(r._mapping) for r in conn.execute(select(orders))]
        line_rows = [dict(r._mapping) for r in conn.execute(select(order_lines))]
    scratch = MetaData()
    copies = [Table(f"floor_{t.name}", scratch, *[c.copy() for c in t.columns]) for t in (orders, order_lines)]
    scratch.drop_all(engine)
    scratch.create_all(engine)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(copies[0].insert(), order_rows)
        conn.execute(copies[1].insert(), line_rows)
    seconds = time.perf_counter() - started
    scratch.drop_all(engine)
    return seconds, len(order_rows)


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_table(results: list[dict]) -> None:
    columns = ["database", "platform", "fetched", "stored", "pipeline_s", "pipeline_orders_per_s",
               "floor_s", "floor_orders_per_s", "rss_before_mib", "peak_rss_mib"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in results)) for c in columns}
    print("  ".join(c.rjust(widths[c]) for c in columns))
    for row in results:
        print("  ".join(str(row[c]).rjust(widths[c]) for c in columns))
    print("\nrss_before = resident memory after imports and Prefect start-up, before the run; "
          "peak_rss = the process's high-water mark after it.")
    print("floor = plain bulk INSERT of the same order and line rows into the same database, "
          "same run; pipeline = fetch over HTTP + land raw + clean + validate (GX) + upsert, through Prefect.")


if __name__ == "__main__":
    main()
