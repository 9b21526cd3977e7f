"""reconcile-orders and `oms backfill` through the real Prefect engine, the sandbox and the
database: orders deleted from our database come back, status differences are classified
and recorded with their resolutions, the report names them, and a second run is clean."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import httpx
import pytest
from prefect.settings import PREFECT_API_URL
from sqlalchemy import delete, select, update

from flows.ingest import ingest_orders
from flows.reconcile import REPORT_KEY, TOTALS_KEY, reconcile_orders
from oms.cli import main as cli_main
from oms.db.reconciliation import differences_of, latest_runs
from oms.db.schema import order_lines, order_status_history, orders, review_queue
from oms.db.shops import get_watermark
from sandbox.pinduoduo_render import order_sn
from tasks.alerts import RECONCILIATION_DIFFERENCES
from tests.flows.test_stock_flows import rows

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Sandbox orders are spread over the last 48 hours: today and the two days before hold them all.
DAYS = 3


@pytest.fixture
def alerts(monkeypatch):
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr("tasks.reconcile.announce", lambda event, **facts: sent.append((event, facts)))
    return sent


@pytest.fixture
def shop(add_shop):
    code = add_shop("pdd", orders=40, seed=11)
    ingest_orders(code)
    return code


def latest_artifact(key: str):
    # Prefect 3.8.8's own client sends nulls this server refuses: ask the API directly.
    response = httpx.post(f"{PREFECT_API_URL.value()}/artifacts/latest/filter",
                          json={"artifacts": {"key": {"any_": [key]}}, "limit": 1, "offset": 0})
    response.raise_for_status()
    [latest] = response.json()
    data = latest["data"]
    return json.loads(data) if isinstance(data, str) and data[:1] in '"[{' else data


def reconcile(shop: str):
    return reconcile_orders(shop_codes=[shop], day=datetime.now(SHANGHAI).date(), days=DAYS)


def our_orders(db, shop: str) -> dict[str, dict]:
    return {r["platform_order_id"]: r for r in rows(db, select(orders).where(orders.c.shop_code == shop))}


def forget(db, order_ids: list[int]) -> None:
    """Delete orders as a lost write would have left them: never stored."""
    with db.begin() as conn:
        for table in (order_lines, order_status_history):
            conn.execute(delete(table).where(table.c.order_id.in_(order_ids)))
        conn.execute(delete(orders).where(orders.c.id.in_(order_ids)))


def set_our_status(db, order_id: int, status: str) -> None:
    with db.begin() as conn:
        conn.execute(update(orders).where(orders.c.id == order_id).values(status=status))


def differences_by_order(db, shop: str) -> dict[str, dict]:
    with db.connect() as conn:
        found = {}
        for run in latest_runs(conn, shop, limit=DAYS):
            found.update((d["platform_order_id"], d) for d in differences_of(conn, run.id))
    return found


def test_reconciliation_restores_deleted_orders_and_reports_status_differences(db, shop, sandbox, alerts):
    stored = our_orders(db, shop)
    paid = sorted(pid for pid, row in stored.items() if row["status"] == "paid")
    deleted, (cancelled_there, shipped_here, cancelled_here) = paid[:3], paid[3:6]
    forget(db, [stored[pid]["id"] for pid in deleted])
    sims = {order_sn(o): o for o in sandbox.state.orders[shop]}
    sims[cancelled_there].status = "cancelled"
    sims[cancelled_there].updated_at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
    set_our_status(db, stored[shipped_here]["id"], "shipped")  # we shipped; the platform says paid
    set_our_status(db, stored[cancelled_here]["id"], "cancelled")  # both cannot be right

    first = reconcile(shop)

    now_ours = our_orders(db, shop)
    assert set(deleted) <= set(now_ours)
    assert now_ours[cancelled_there]["status"] == "cancelled"
    found = differences_by_order(db, shop)
    assert {pid: (found[pid]["kind"], found[pid]["resolution"]) for pid in deleted} == {
        pid: ("missing_here", "backfilled") for pid in deleted}
    assert (found[cancelled_there]["kind"], found[cancelled_there]["our_status"]) == ("status", "paid")
    assert "confirm_status=2" in found[cancelled_there]["platform_status"]  # PDD's word for cancelled
    assert found[cancelled_there]["resolution"] == ("status differs: ours behind; "
                                                    "updated from the platform (now cancelled)")
    assert found[shipped_here]["resolution"] == "status differs: ours ahead (the platform has not caught up yet)"
    assert found[cancelled_here]["resolution"].startswith("status differs: conflict (ours cancelled")

    parked = {pid for pid, d in found.items() if d["resolution"].startswith("already waiting in the review queue: ")}
    with db.connect() as conn:
        waiting = set(conn.execute(select(review_queue.c.platform_order_id).where(
            review_queue.c.shop_code == shop, review_queue.c.resolved_at.is_(None))).scalars())
    assert parked <= waiting  # the ingest's dirty orders stay where it parked them
    assert {d["kind"] for d in found.values()} == {"missing_here", "status"}
    totals = {key: sum(getattr(run, key) for run in first_runs(db, shop))
              for key in ("missing_here", "backfilled", "status_differences", "missing_on_platform")}
    assert totals == {"missing_here": 3 + len(parked), "backfilled": 3, "status_differences": 3,
                      "missing_on_platform": 0}

    # Only the conflict needs a person: the parked orders wait in the review queue already.
    assert [(event, facts["differences"], facts["orders"]) for event, facts in alerts] == [
        (RECONCILIATION_DIFFERENCES, 1, cancelled_here)]
    assert first.alerted == [shop]

    report = latest_artifact(REPORT_KEY)
    assert f"{3 + len(parked) + 3} difference(s), 4 settled by this run, 1 for a person." in report
    for pid in [*deleted, cancelled_there, shipped_here, cancelled_here]:
        assert pid in report
    conflict_row = next(line for line in report.splitlines() if cancelled_here in line)
    assert "status (conflict)" in conflict_row and "a person decides" in conflict_row
    for sim in sims.values():  # no buyer's data
        assert (sim.receiver_name or "\0") not in report and (sim.phone or "\0") not in report
    table = latest_artifact(TOTALS_KEY)
    assert sum(row["backfilled"] for row in table) == 3 and {row["shop"] for row in table} == {shop}

    alerts.clear()
    second = reconcile(shop)
    again = differences_by_order(db, shop)
    assert {pid for pid, d in again.items() if d["kind"] == "missing_here"} == parked
    assert sum(sd.backfilled for sd in second.shop_days) == 0
    assert set(again) == parked | {shipped_here, cancelled_here}
    assert alerts == [] and second.alerted == []  # the conflict was told of by the first run
    assert len(our_orders(db, shop)) == len(now_ours)


def first_runs(db, shop: str):
    with db.connect() as conn:
        return latest_runs(conn, shop, limit=DAYS)


def test_oms_backfill_ingests_the_range_slice_by_slice_and_leaves_the_watermark(db, add_shop, sandbox, capsys):
    shop = add_shop("pdd", orders=25, seed=5)
    until = datetime.now(timezone.utc).replace(microsecond=0)
    since = until - timedelta(hours=72)
    code = cli_main(["backfill", "--shop", shop, "--since", since.isoformat(), "--until", until.isoformat(),
                     "--slice-hours", "24"])
    assert code == 0
    printed = capsys.readouterr().out
    stored = our_orders(db, shop)
    with db.connect() as conn:
        parked = set(conn.execute(select(review_queue.c.platform_order_id).where(
            review_queue.c.shop_code == shop, review_queue.c.resolved_at.is_(None))).scalars())
        assert get_watermark(conn, shop) is None
    listed = {order_sn(o) for o in sandbox.state.orders[shop] if o.status != "unpaid"}  # PDD lists paid ones
    assert listed == set(stored) | parked
    assert "3 slice(s)" in printed
    totals = dict(line.split(":", 1) for line in printed.splitlines() if ":" in line and not line.startswith(" "))
    assert int(totals["stored new"]) == len(stored)
    assert int(totals["fetched"]) >= len(listed)


def test_oms_reconcile_prints_the_report(db, shop, capsys):
    day = datetime.now(SHANGHAI).date().isoformat()
    assert cli_main(["reconcile", "--shop", shop, "--day", day, "--days", str(DAYS)]) == 0
    printed = capsys.readouterr().out
    assert "# Reconciliation with the platforms" in printed and f"| {shop} | pdd | {day} |" in printed


def test_by_default_every_active_shop_is_reconciled_for_yesterday(db, add_shop, alerts):
    shops = [add_shop("shopify", orders=15, seed=7), add_shop("pdd", orders=15, seed=7)]  # never ingested
    state = reconcile_orders(return_state=True)
    assert state.is_completed(), state.message
    yesterday = (datetime.now(SHANGHAI) - timedelta(days=1)).date().isoformat()
    with db.connect() as conn:
        runs = latest_runs(conn)
    assert sorted((run.shop_code, run.day) for run in runs) == sorted((shop, yesterday) for shop in shops)
    for run in runs:
        assert run.our_orders == 0 and run.missing_here == run.platform_orders > 0
        assert run.backfilled == len([pid for pid in our_orders(db, run.shop_code)])
