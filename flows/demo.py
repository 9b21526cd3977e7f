"""The main job behind `oms demo`: one shop on every channel, through the whole pipeline.

It starts the sandbox on a free loopback port, seeds one shop on each of the eight
marketplaces with realistically dirty orders (the cross-border ones in their own
countries and currencies), drops a Taobao order export (XLSX, Chinese headers, a few
unreadable rows) into a spreadsheet shop's folder, adds two warehouses and their stock,
then runs ingest → fulfil (allocation by the routing rules of config/routing.yaml, stock
sync to every platform, waybills, write-back) once through Prefect, lets the courier
collect the parcels, audits the stock, and prints what happened per shop with an example
of a routing decision. Run it twice: the second run finds every order already stored and
stores none twice.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import distinct, func, select

from oms.config import get_settings, reset_settings
from oms.db.engine import get_engine
from oms.db.migrate import upgrade
from oms.db.schema import listings, order_routing, orders, reservations, review_queue, shipments, tracking_pushes
from oms.domain.order import OrderStatus
from oms.db.shops import save_skus, save_warehouse, set_on_hand
from oms.db.tokens import token_overview
from oms.domain.tokens import describe_span
from sandbox.app import add_simulated_shop, shop_base_url
from sandbox import jdl as jdl_simulator
from sandbox import kuaidi100 as kuaidi100_simulator
from sandbox import yto as yto_simulator
from sandbox import zto as zto_simulator
from sandbox.carrier import collect, register_partner
from sandbox.generator import DEFAULT_SKUS, populate
from sandbox.spreadsheets import write_export
from sandbox.model import SandboxState
from sandbox.server import running_sandbox
from tasks.tokens import register_shop

DEMO_SHOPS = (
    # (shop code, platform, orders in the sandbox, seed)
    # Shopify's Standard plan allows 2 calls a second and a push takes two: 60 orders keep
    # the demo's write-back inside the 40-call burst instead of waiting a minute on it.
    ("demo-shopify", "shopify", 60, 11),
    ("demo-pdd", "pdd", 200, 12),
    ("demo-taobao", "taobao", 200, 13),
    ("demo-jd", "jd", 200, 14),
    ("demo-douyin", "douyin", 200, 15),
    ("demo-shopee", "shopee", 200, 16),
    ("demo-lazada", "lazada", 200, 17),
    ("demo-amazon", "amazon", 12, 18),
    ("demo-excel", "spreadsheet", 60, 19),
)
SPREADSHEET_SOURCE = "taobao-export-zh"
# Amazon paces order items at 0.5 calls a second after a burst of 30, and the connector
# keeps to it: a dozen orders stay inside the burst, so the demo does not sit waiting.
AT_MOST = {"amazon": 12}
WAREHOUSES = (("WH-SH", "上海仓", "上海市", 10), ("WH-GZ", "广州仓", "广东省", 20))
_SANDBOX_STATE: list[SandboxState] = []  # the running sandbox's state, for the courier step


def run_demo(orders_per_shop: int | None = None) -> list[dict]:
    database_url = get_settings().database_url
    upgrade(database_url)
    with running_sandbox(SandboxState()) as sandbox:
        _SANDBOX_STATE[:] = [sandbox.state]
        _point_carrier_at(sandbox)
        _seed_shops(sandbox, database_url, orders_per_shop)
        _seed_stock(database_url)
        reports = _run_pipeline()
    os.environ.pop("OMS_CARRIER_ACCOUNTS", None)  # they name the sandbox that just stopped
    reset_settings()
    rows = _table_rows(database_url, reports)
    print_table(rows)
    _print_stock_story(database_url, reports)
    _print_shipping_story(database_url, reports)
    _print_after_sales_story(database_url, reports["after_sales"])
    _print_trust_story(database_url, reports["trust"])
    return rows


def _point_carrier_at(sandbox) -> None:
    partner = register_partner(sandbox.state, "demo-partner")
    os.environ["OMS_CARRIER_URL"] = f"{sandbox.url}/sf"
    os.environ["OMS_CARRIER_PARTNER_ID"] = partner["partner_id"]
    os.environ["OMS_CARRIER_CHECKWORD"] = partner["checkword"]
    # The other carriers config/carriers.yaml may choose, each with its sandbox account.
    os.environ["OMS_CARRIER_ACCOUNTS"] = json.dumps(sandbox_carrier_accounts(sandbox.state, sandbox.url, "demo"))
    reset_settings()


def sandbox_carrier_accounts(state: SandboxState, url: str, name: str) -> dict[str, dict[str, str]]:
    """An account with every carrier simulator, in the shape of OMS_CARRIER_ACCOUNTS
    (J&T through Kuaidi100, which has no simulator of its own carrier)."""
    zto = zto_simulator.register_account(state, f"{name}-zto")
    yto = yto_simulator.register_account(state, f"{name}-yto")
    jdl = jdl_simulator.register_customer(state, f"010K{zlib.crc32(name.encode()) % 10**6:06d}")
    k100 = kuaidi100_simulator.register_account(state)
    return {"ZTO": {"api": "zto", "url": f"{url}/zto", **zto},
            "YTO": {"api": "yto", "url": f"{url}/yto", **yto},
            "JD": {"api": "jdl", "url": f"{url}/jdl", **jdl},
            "JT": {"api": "kuaidi100", "url": f"{url}/kuaidi100", **k100}}


def _seed_shops(sandbox, database_url: str, orders_per_shop: int | None) -> None:
    now = datetime.now(timezone.utc)
    with get_engine(database_url).begin() as conn:
        for code, platform, count, seed in DEMO_SHOPS:
            count = orders_per_shop or count
            count = min(count, AT_MOST.get(platform, count))
            if platform == "spreadsheet":
                base_url, credentials = _drop_export(sandbox.state, code, count, seed, now)
            else:
                credentials = add_simulated_shop(sandbox.state, platform, code, count, seed, now=now)
                base_url = shop_base_url(platform, sandbox.url, code)
            register_shop(conn, code=code, platform=platform, name=f"{platform} demo shop",
                      base_url=base_url, credentials=credentials, now=now)
    _a_price_with_two_zeros_too_many(sandbox.state)


def _drop_export(state: SandboxState, code: str, count: int, seed: int, now: datetime) -> tuple[str, dict]:
    """Write a seller's Excel export into a fresh drop folder, as they would save it."""
    folder = Path(tempfile.mkdtemp(prefix=f"oms-{code}-"))
    sold = populate(state, code, count=count, seed=seed, now=now)
    _regulars_of_the_web_shop_at_the_till(state, sold)
    write_export(folder, SPREADSHEET_SOURCE, sold, fmt="xlsx", seed=seed, name="订单导出.xlsx")
    return folder.as_uri(), {"source": SPREADSHEET_SOURCE}


def _regulars_of_the_web_shop_at_the_till(state: SandboxState, till_sales: list) -> None:
    """Four Shopify buyers also buy in the shop whose till writes the Excel export, under
    the same name and phone: the customer resolver should make each one customer."""
    regulars = [o for o in state.orders.get("demo-shopify", [])
                if o.phone and len("".join(filter(str.isdigit, o.phone))) >= 11 and o.address][:4]
    for sale, regular in zip(till_sales[::7], regulars):
        sale.receiver_name, sale.phone = regular.receiver_name, regular.phone
        sale.province, sale.city, sale.district, sale.address = (
            regular.province, regular.city, regular.district, regular.address)


def _a_price_with_two_zeros_too_many(state: SandboxState) -> None:
    """One Taobao order's price was typed a hundred times too high: the risk rules hold
    it for a person instead of letting it ship."""
    order = next(o for o in state.orders["demo-taobao"] if o.status == "paid" and o.lines)
    order.lines[0].unit_price *= 100


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
    from flows.health import check_connector_health
    from flows.ingest import ingest_orders
    from flows.drift import check_status_drift
    from flows.sla import watch_ship_by_deadlines
    from flows.stock import audit_stock_totals, confirm_collected_parcels
    from flows.tokens import refresh_tokens
    from tasks.pacing import ensure_platform_limits

    ensure_platform_limits()
    ingest = {code: ingest_orders(code) for code, *_ in DEMO_SHOPS}
    trust = _reconcile_after_a_lost_write()
    fulfil = fulfil_orders()
    # The warehouse scans its parcels; the courier takes the ones handed over.
    handed_over, kept_back = _scan_parcels()
    # The platform cancels two Pinduoduo orders: one parcel is still on the packing bench,
    # the other already with the courier; the drift check finds and settles both.
    cancelled = _cancel_on_platform("demo-pdd", [kept_back[:1], handed_over[:1]])
    drift = check_status_drift(return_state=True)
    collect(_SANDBOX_STATE[0], handed_over, datetime.now(timezone.utc))
    collected = confirm_collected_parcels()
    sla = watch_ship_by_deadlines()
    after_sales = _after_sales()
    audit = audit_stock_totals()
    # What the schedules would run next: tokens renewed when due, every shop probed.
    tokens = {o.shop_code: o for o in refresh_tokens().outcomes}
    health = {line.shop: line for line in check_connector_health().shops}
    return {"ingest": ingest, "fulfil": fulfil, "tokens": tokens, "health": health,
            "collected": collected, "audit": audit, "drift": drift, "sla": sla, "cancelled": cancelled,
            "handed_over": len(handed_over), "after_sales": after_sales,
            "trust": trust | {"quality": _quality_summary()}}


def _reconcile_after_a_lost_write() -> dict:
    """Two Taobao orders vanish from our database, as a failed write or an old backup
    would leave them; the reconciliation of today finds them on the platform and brings
    them back before fulfilment, so they ship like the rest."""
    from sqlalchemy import delete

    from flows.reconcile import reconcile_orders
    from oms.db.schema import order_lines, order_status_history

    with get_engine(get_settings().database_url).begin() as conn:
        lost = conn.execute(select(orders.c.id, orders.c.platform_order_id)
                            .where(orders.c.shop_code == "demo-taobao", orders.c.status == "paid")
                            .order_by(orders.c.id).limit(2)).all()
        ids = [row.id for row in lost]
        for table in (order_lines, order_status_history):
            conn.execute(delete(table).where(table.c.order_id.in_(ids)))
        conn.execute(delete(orders).where(orders.c.id.in_(ids)))
    today = datetime.now(ZoneInfo(get_settings().warehouse_timezone)).date()
    # Three days: the sandbox's orders were placed over the last three.
    state = reconcile_orders(day=today, days=3, return_state=True)
    return {"lost": [row.platform_order_id for row in lost], "reconciliation": state}


def _quality_summary():
    from flows.quality_summary import data_quality_summary

    today = datetime.now(ZoneInfo(get_settings().warehouse_timezone)).date()
    return data_quality_summary(day=today, return_state=True)


def _after_sales() -> dict:
    """Buyers ask for refunds, returns and exchanges on a share of the orders; the requests
    come in, and the lifecycle settles the small ones while the rest wait for a person."""
    from flows.after_sales_ingest import ingest_after_sales
    from flows.after_sales_process import process_after_sales
    from sandbox.after_sales import seed_after_sales
    from tasks.after_sales_ingest import handles_after_sales

    now = datetime.now(timezone.utc)
    for code, platform, _count, seed in DEMO_SHOPS:
        if handles_after_sales(platform):
            seed_after_sales(_SANDBOX_STATE[0], code, seed=seed, now=now, share=0.25)
    intake = ingest_after_sales(return_state=True)
    return {"intake": intake, "processed": process_after_sales()}


def _scan_parcels() -> tuple[list[str], list[str]]:
    """Print, pack and weigh every labelled parcel; hand over three in four of them.
    Returns the numbers handed over and those kept back, Pinduoduo's first."""
    from oms.db.scans import record_scans
    from oms.domain.warehouse_steps import Scan

    engine = get_engine(get_settings().database_url)
    with engine.connect() as conn:
        parcels = conn.execute(
            select(shipments.c.tracking_number, orders.c.shop_code,
                   func.coalesce(func.sum(reservations.c.quantity), 1).label("units"))
            .select_from(shipments.join(orders, orders.c.id == shipments.c.order_id)
                         .outerjoin(reservations, (reservations.c.order_id == shipments.c.order_id)
                                    & (reservations.c.warehouse_id == shipments.c.warehouse_id)))
            .where(shipments.c.status == "label_created")
            .group_by(shipments.c.tracking_number, orders.c.shop_code)
            .order_by(orders.c.shop_code != "demo-pdd", shipments.c.tracking_number)).all()
    handed_over = [p.tracking_number for i, p in enumerate(parcels) if i % 4]
    kept_back = [p.tracking_number for i, p in enumerate(parcels) if not i % 4]
    now = datetime.now(timezone.utc)
    scans = [Scan(step, p.tracking_number, station="demo-bench", operator="demo", source="scanner")
             for step in ("printed", "packed") for p in parcels]
    scans += [Scan("weighed", p.tracking_number, weight_grams=400 * int(p.units), station="demo-scale",
                   operator="demo", source="scanner") for p in parcels]
    scans += [Scan("handed_over", number, station="demo-dock", operator="demo", source="scanner")
              for number in handed_over]
    with engine.begin() as conn:
        record_scans(conn, scans, now)
    return handed_over, kept_back


def _cancel_on_platform(shop: str, numbers: list[list[str]]) -> list[str]:
    """The buyer cancels on the platform the orders of these parcels (one each)."""
    from sandbox.pinduoduo_render import order_sn

    wanted = [group[0] for group in numbers if group]
    with get_engine(get_settings().database_url).connect() as conn:
        refs = list(conn.execute(select(orders.c.platform_order_id)
                                 .join(shipments, shipments.c.order_id == orders.c.id)
                                 .where(shipments.c.tracking_number.in_(wanted), orders.c.shop_code == shop))
                    .scalars())
    state = _SANDBOX_STATE[0]
    when = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
    with state.lock:
        for order in state.orders[shop]:
            if order_sn(order) in refs and order.status != "cancelled":
                order.status, order.updated_at = "cancelled", when
    return refs


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
        shipped = _count_by_shop(conn, select(orders.c.shop_code, func.count(distinct(orders.c.id))).select_from(ours))
        written_back = _count_by_shop(conn, select(orders.c.shop_code, func.count(distinct(orders.c.id)))
                                      .select_from(ours).where(shipments.c.tracking_pushed_at.is_not(None)))
        split = _count_by_shop(conn, select(orders.c.shop_code, func.count(distinct(orders.c.id))).select_from(ours)
                               .where(shipments.c.writes_back.is_(False)))
        merged = _count_by_shop(conn, select(orders.c.shop_code, func.count(distinct(orders.c.id))).select_from(ours)
                                .where(shipments.c.parcel_ref.like("%+%")))
        stock_pushed = dict(conn.execute(select(listings.c.shop_code, func.count())
                                         .where(listings.c.pushed_at.is_not(None)).group_by(listings.c.shop_code)).all())
        refused = dict(conn.execute(
            select(tracking_pushes.c.shop_code, func.count(distinct(tracking_pushes.c.shipment_id)))
            .where(tracking_pushes.c.outcome == "rejected").group_by(tracking_pushes.c.shop_code)).all())
        refusal_reasons = dict(conn.execute(
            select(tracking_pushes.c.shop_code, func.min(tracking_pushes.c.error))
            .where(tracking_pushes.c.outcome == "rejected").group_by(tracking_pushes.c.shop_code)).all())
        parked_at_shipping = dict(conn.execute(
            select(review_queue.c.shop_code, func.count()).where(
                review_queue.c.stage == "ship", review_queue.c.resolved_at.is_(None))
            .group_by(review_queue.c.shop_code)).all())
        ship_reasons = {shop: reasons[0] for shop, reasons in conn.execute(
            select(review_queue.c.shop_code, review_queue.c.reasons).where(
                review_queue.c.stage == "ship", review_queue.c.resolved_at.is_(None)))}
        currencies = dict(conn.execute(
            select(orders.c.shop_code, func.min(orders.c.currency)).group_by(orders.c.shop_code)).all())
        tokens = {row["code"]: row for row in token_overview(conn)}
    rows = []
    now = datetime.now(timezone.utc)
    for code, platform, *_ in DEMO_SHOPS:
        ingest = reports["ingest"][code]
        health, token = reports["health"].get(code), tokens.get(code, {})
        expires = token.get("access_expires_at")
        rows.append({
            "shop": code,
            "platform": platform,
            "currency": currencies.get(code, "-"),
            "fetched": ingest.fetched,
            "quarantined": ingest.quarantined,
            "duplicates merged": ingest.duplicates_merged,
            "stored (all runs)": stored.get(code, 0),
            "allocated": allocated.get(code, 0),
            "out of stock": waiting.get(code, 0),
            "shipped": shipped.get(code, 0),
            "split": split.get(code, 0),
            "merged": merged.get(code, 0),
            "parked at shipping": parked_at_shipping.get(code, 0),
            "tracking written back": written_back.get(code, 0),
            "write-back refused": refused.get(code, 0),
            "stock listings pushed": stock_pushed.get(code, 0),
            "top quarantine reasons": "; ".join(f"{r} ({n})" for r, n in ingest.top_reasons) or "-",
            "write-back refusal": (refusal_reasons.get(code) or "")[:160],
            "shipping reason": ship_reasons.get(code, ""),
            "token store": token.get("store") or "-",
            "token action": reports["tokens"][code].action,
            "token expires in": describe_span(expires - now) if expires else "-",
            "probe": "answers" if health and health.ok else "fails",
            "probe ms": health.latency_ms if health else "-",
            "alert state": health.alert_state if health else "-",
        })
    return rows


def _print_columns(rows: list[dict], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print()
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    print()


def _count_by_shop(conn, query) -> dict[str, int]:
    return dict(conn.execute(query.group_by(orders.c.shop_code)).all())


HEALTH_COLUMNS = ("shop", "token store", "token action", "token expires in", "probe", "probe ms",
                  "alert state")
NOTES = ("top quarantine reasons", "write-back refusal", "shipping reason")


def print_table(rows: list[dict]) -> None:
    _print_columns(rows, [c for c in rows[0] if c not in NOTES and c not in HEALTH_COLUMNS[1:]])
    print("tokens and connector health:")
    _print_columns(rows, list(HEALTH_COLUMNS))
    for row in rows:
        print(f"{row['shop']}: top quarantine reasons: {row['top quarantine reasons']}")
    for row in rows:
        if row["shipping reason"]:
            print(f"{row['shop']}: parked at shipping, for example: {row['shipping reason']}")
    for row in rows:
        if row["write-back refusal"]:
            print(f"{row['shop']}: a write-back refusal: {row['write-back refusal']}")


def _print_after_sales_story(database_url: str, after_sales: dict) -> None:
    from oms.db.after_sales import count_by_status

    intake = after_sales["intake"].result(raise_on_failure=False)
    if isinstance(intake, BaseException):
        print(f"after-sales: intake did not finish: {intake}")
        return
    processed = after_sales["processed"]
    fetched = sum(one.fetched for one in intake.values())
    parked = sum(one.parked for one in intake.values())
    with get_engine(database_url).connect() as conn:
        statuses = count_by_status(conn)
    print(f"after-sales: {fetched} requests fetched from {len(intake)} shops ({parked} unreadable, in the review "
          f"queue); {sum(processed.settled.values())} settled with no person needed, "
          f"{len(processed.waiting_without_run)} waiting for a person (`oms refund list`, then "
          f"`oms refund approve <id>` and answer the form in the Prefect UI)")
    print("  by status: " + ", ".join(f"{status} {count}" for status, count in sorted(statuses.items())))


def _print_trust_story(database_url: str, trust: dict) -> None:
    """Reconciliation, data quality, customers across channels, risk holds, the review queue."""
    from oms.db.schema import risk_holds

    from oms.domain.quality_report import render_markdown

    reports = Path("var") / "demo-reports"
    reports.mkdir(parents=True, exist_ok=True)
    state = trust["reconciliation"]
    if state.is_completed():
        (reports / "reconciliation-report.md").write_text(state.result().report, encoding="utf-8")
        days = state.result().shop_days
        print(f"reconciliation: {sum(d.comparison.platform_orders for d in days)} orders on the platforms; "
              f"{sum(d.backfilled for d in days)} missing here and backfilled "
              f"(lost on purpose: {', '.join(trust['lost'])}); {sum(d.for_a_person for d in days)} for a person")
    else:
        print(f"reconciliation: did not finish: {state.message}")
    quality = trust["quality"]
    if quality.is_completed():
        summary = quality.result()
        (reports / "data-quality-summary.md").write_text(render_markdown(summary), encoding="utf-8")
        worst = [p for p in summary.platforms if p.rate is not None][:3]
        print(f"data quality today: {summary.checked} rows checked, {summary.failed} failed; worst: "
              + ", ".join(f"{p.platform} {p.rate:.1%}" for p in worst))
    with get_engine(database_url).connect() as conn:
        linked = conn.execute(select(func.count(), func.count(distinct(orders.c.master_customer_id)))).one()
        across = conn.execute(
            select(func.count()).select_from(
                select(orders.c.master_customer_id).where(orders.c.master_customer_id.is_not(None))
                .group_by(orders.c.master_customer_id)
                .having(func.count(distinct(orders.c.shop_code)) > 1).subquery())).scalar_one()
        holds = dict(conn.execute(select(risk_holds.c.rule, func.count()).where(risk_holds.c.released_at.is_(None))
                                  .group_by(risk_holds.c.rule)).all())
        waiting = dict(conn.execute(select(review_queue.c.stage, func.count())
                                    .where(review_queue.c.resolved_at.is_(None)).group_by(review_queue.c.stage)).all())
    print(f"customers: {linked[0]} orders belong to {linked[1]} master customers; "
          f"{across} bought in more than one shop")
    print("risk holds waiting: " + (", ".join(f"{rule} {n}" for rule, n in sorted(holds.items())) or "none"))
    print("review queue, open: " + (", ".join(f"{stage} {n}" for stage, n in sorted(waiting.items())) or "none")
          + "  (oms review list)")
    print(f"the reconciliation report and the data-quality summary, as the Prefect UI shows them: {reports}/")


def _print_stock_story(database_url: str, reports: dict) -> None:
    """After the table: pickups, the audit, and one routing decision in full."""
    print(f"courier: {reports['collected'].collected} parcels collected, their stock taken out of on-hand")
    repairs = reports["audit"]
    print(f"stock audit: {len(repairs)} reserved totals repaired" if repairs else
          "stock audit: every reserved total equals the sum of its reservations")
    with get_engine(database_url).connect() as conn:
        decisions = conn.execute(
            select(orders.c.shop_code, orders.c.platform_order_id, order_routing.c.parcels,
                   order_routing.c.explanation)
            .join(order_routing, order_routing.c.order_id == orders.c.id)
            .where(order_routing.c.outcome == "allocated").order_by(orders.c.id).limit(2000)).all()
    # A split shows the most rules at work; otherwise the first allocated order.
    example = max(decisions, key=lambda row: len(row.parcels), default=None)
    if example is not None:
        print(f"routing of {example.shop_code} order {example.platform_order_id}:")
        for sentence in example.explanation:
            print(f"  - {sentence}")


def _print_shipping_story(database_url: str, reports: dict) -> None:
    """After the stock story: the warehouse floor, the drift check and the deadlines."""
    from oms.db.deadlines import at_risk
    from oms.db.drift import drift_report
    from oms.domain.sla import time_left

    print(f"warehouse: every labelled parcel printed, packed and weighed; {reports['handed_over']} handed "
          f"over to the courier; the platform then cancelled demo-pdd orders {', '.join(reports['cancelled'])}")
    drift = reports["drift"]
    if not drift.is_completed():
        print(f"status drift: the check did not finish: {drift.message}")
    now = datetime.now(timezone.utc)
    with get_engine(database_url).connect() as conn:
        report = drift_report(conn)
        risky = at_risk(conn, now)
    if drift.is_completed():
        seen = [found for summary in drift.result().values() for found in summary.found]
        print("status drift, seen in this run: " + (", ".join(
            f"{f.kind} ({f.platform_order_id}: {f.our_status} here, {f.platform_status} there, {f.action})"
            for f in seen) or "none"))
    print("status drift, still open: " + (", ".join(f"{kind} ({n})" for kind, n in report.top_kinds) or "none"))
    for interception in report.interceptions_open[:3]:
        print(f"  interception open: {interception['shop_code']} order {interception['platform_order_id']}, "
              f"{interception['carrier']} {interception['tracking_number']}: ask the carrier to stop it")
    sla = reports["sla"]
    print(f"ship-by deadlines: {sla.deadlines_stored} stored; {sla.warnings_sent} warnings and "
          f"{sla.breaches_sent} breaches announced once each; at risk now, by warehouse:")
    for warehouse, found in risky.items():
        breached = sum(1 for row in found if row.minutes_left < 0)
        print(f"  {warehouse}: {len(found)} order(s), {breached} past the deadline")
        for row in found[:3]:
            print(f"    {row.shop_code} {row.platform_order_id}: {row.stage.value}, {time_left(row.minutes_left)}, "
                  f"step {row.step or '-'}")
