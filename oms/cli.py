"""The `oms` command: database migrations, the sandbox, the demo, Prefect limits, shop
tokens, stock (levels, deliveries, backorders, routing explanations, sync, audit), warehouse
scans and the scanner endpoint, alerts to on-call, the review queue, customers, backfills,
reconciliation, order tags and risk holds, personal-data exports and retention, and one-off
flow runs."""

from __future__ import annotations

import argparse
import os
import sys

# Set before Prefect is first imported: no telemetry from operators' machines or CI.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    return args.run(args) or 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oms", description="Order pipeline for multi-marketplace sellers")
    commands = parser.add_subparsers()

    db = commands.add_parser("db", help="database schema").add_subparsers()
    upgrade = db.add_parser("upgrade", help="apply migrations up to the newest")
    upgrade.add_argument("--revision", default="head")
    upgrade.set_defaults(run=_db_upgrade)

    sandbox = commands.add_parser("sandbox", help="run the marketplace and carrier simulators")
    sandbox.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
    sandbox.set_defaults(run=_sandbox)

    demo = commands.add_parser("demo", help="run the demo pipeline on SQLite against the sandbox")
    demo.add_argument("--orders", type=int, default=None, help="orders per shop")
    demo.set_defaults(run=_demo)

    ingest = commands.add_parser("ingest", help="run ingest-orders once for a shop")
    ingest.add_argument("shop_code")
    ingest.set_defaults(run=_ingest)

    fulfil = commands.add_parser("fulfil", help="run fulfil-orders once")
    fulfil.set_defaults(run=_fulfil)

    limits = commands.add_parser("limits", help="Prefect concurrency limits").add_subparsers()
    setup = limits.add_parser("setup", help="create or update one global concurrency limit per platform")
    setup.set_defaults(run=_limits_setup)

    tokens = commands.add_parser("tokens", help="shop tokens: status, refresh, re-authorisation").add_subparsers()
    status = tokens.add_parser("status", help="every shop's token expiry times (no secrets)")
    status.set_defaults(run=_tokens_status)
    refresh = tokens.add_parser("refresh", help="refresh due tokens now (one shop, or every active shop)")
    refresh.add_argument("shop_code", nargs="?")
    refresh.add_argument("--force", action="store_true", help="refresh even if not due yet")
    refresh.set_defaults(run=_tokens_refresh)
    set_tokens = tokens.add_parser(
        "set", help="store the tokens of a re-authorisation, read as JSON on standard input "
                    '({"access_token": ..., "refresh_token": ..., "access_expires_at": ...})')
    set_tokens.add_argument("shop_code")
    set_tokens.set_defaults(run=_tokens_set)

    stock = commands.add_parser("stock", help="stock: levels, deliveries, backorders, routing, sync, audit"
                                ).add_subparsers()
    levels = stock.add_parser("levels", help="on hand, reserved and available per warehouse")
    levels.add_argument("--sku")
    levels.set_defaults(run=_stock_levels)
    receive = stock.add_parser("receive", help="add a delivery, then allocate the backorders it can fill")
    receive.add_argument("warehouse")
    receive.add_argument("sku")
    receive.add_argument("units", type=int)
    receive.set_defaults(run=_stock_receive)
    backorders = stock.add_parser("backorders", help="the backorder queue, with why each order waits")
    backorders.set_defaults(run=_stock_backorders)
    explain = stock.add_parser("explain", help="why an order went to its warehouse(s), rule by rule")
    explain.add_argument("shop_code")
    explain.add_argument("platform_order_id")
    explain.set_defaults(run=_stock_explain)
    listings = stock.add_parser("listings", help="a shop's listings and what stock sync last told them")
    listings.add_argument("shop_code")
    listings.set_defaults(run=_stock_listings)
    sync = stock.add_parser("sync", help="run sync-stock once")
    sync.add_argument("--full", action="store_true", help="push every listing, changed or not")
    sync.set_defaults(run=_stock_sync)
    audit = stock.add_parser("audit", help="run audit-stock once: recompute reserved totals, repair drift")
    audit.set_defaults(run=_stock_audit)

    _add_scan_commands(commands)

    sla = commands.add_parser("sla", help="ship-by deadlines").add_subparsers()
    sla_risk = sla.add_parser("at-risk", help="orders near or past their ship-by deadline, by warehouse")
    sla_risk.set_defaults(run=_sla_at_risk)

    intercept = commands.add_parser("intercept", help="parcels to stop on their way (cancelled after handover)"
                                    ).add_subparsers()
    intercept.add_parser("list", help="interceptions still waiting").set_defaults(run=_intercept_list)
    settle = intercept.add_parser("settle", help="record what the carrier said about one interception")
    settle.add_argument("interception_id", type=int)
    settle.add_argument("state", choices=("requested", "intercepted", "failed", "closed"))
    settle.add_argument("--note", default=None)
    settle.set_defaults(run=_intercept_settle)

    writeback = commands.add_parser("writeback", help="tracking write-back").add_subparsers()
    retry = writeback.add_parser("retry", help="make parked pushes due again; the next write-back-tracking run sends them")
    retry.add_argument("--shop", default=None)
    retry.add_argument("--review-id", type=int, default=None)
    retry.set_defaults(run=_writeback_retry)

    alerts = commands.add_parser("alerts", help="alerts to on-call: channels and automations").add_subparsers()
    alerts_setup = alerts.add_parser(
        "setup", help="save the channels of the alerts file as blocks; create or update the alert automations")
    alerts_test = alerts.add_parser("test", help="send a test message through every configured channel")
    for command, run in ((alerts_setup, _alerts_setup), (alerts_test, _alerts_test)):
        command.add_argument("--config", default=None,
                             help="alerts file (default: OMS_ALERTS_CONFIG_PATH, else config/alerts.yaml)")
        command.set_defaults(run=run)
    _add_area_commands(commands)
    return parser


def _add_area_commands(commands) -> None:
    """The areas whose commands live in `oms.commands`, one module each."""
    from oms.commands import backfill, customers, holds, privacy, review

    for area in (review, customers, backfill, holds, privacy):
        area.add_commands(commands)


def _add_scan_commands(commands) -> None:
    from oms.domain.warehouse_steps import HANDED_OVER, STEPS

    skippable = [step for step in STEPS if step != HANDED_OVER]
    skip_help = "a step this station may skip besides printing, e.g. weighed where there is no scale (repeatable)"
    scan = commands.add_parser(
        "scan", help="warehouse steps: record a scan of parcels, or show a parcel's history",
        description="oms scan STEP TRACKING_NUMBER... records a warehouse step of each parcel; "
                    "oms scan history TRACKING_NUMBER... shows their timelines.")
    scan.add_argument("step", choices=(*STEPS, "history"))
    scan.add_argument("tracking_numbers", nargs="+", metavar="TRACKING_NUMBER")
    scan.add_argument("--weight", type=int, metavar="GRAMS", help="the scale's figure (needed for weighed)")
    scan.add_argument("--station", help="the desk or scanner scanning")
    scan.add_argument("--operator", help="who scans")
    scan.add_argument("--may-skip", action="append", choices=skippable, metavar="STEP", help=skip_help)
    scan.set_defaults(run=_scan)

    refund = commands.add_parser("refund", help="after-sales requests: open ones, one's audit trail, approval"
                                 ).add_subparsers()
    refund.add_parser("list", help="open requests, nearest platform deadline first").set_defaults(run=_refund_list)
    show = refund.add_parser("show", help="one request and every step of its audit trail")
    show.add_argument("request_id", type=int)
    show.set_defaults(run=_refund_show)
    approve = refund.add_parser("approve", help="run approve-refund for one request here; answer its form in the UI")
    approve.add_argument("request_id", type=int)
    approve.set_defaults(run=_refund_approve)

    scanner = commands.add_parser("scanner", help="the HTTP endpoint for warehouse scanners").add_subparsers()
    serve = scanner.add_parser("serve", help="serve POST /scans, GET /parcels/{tracking}, GET /healthz")
    serve.add_argument("--host", help="default: OMS_SCANNER_HOST (127.0.0.1)")
    serve.add_argument("--port", type=int, help="default: OMS_SCANNER_PORT (8765)")
    serve.add_argument("--may-skip", action="append", choices=skippable, metavar="STEP", help=skip_help)
    serve.set_defaults(run=_scanner_serve)


def _scan_policy(args):
    from zoneinfo import ZoneInfo

    from oms.config import get_settings
    from oms.domain.warehouse_steps import PRINTED, ScanPolicy

    return ScanPolicy(optional_steps=frozenset({PRINTED, *(args.may_skip or [])}),
                      display_zone=ZoneInfo(get_settings().warehouse_timezone))


def _scan(args) -> int:
    # The database directly, not through tasks.resources: a packer waits for every scan,
    # and importing the connectors and Prefect would cost seconds each time.
    from datetime import datetime, timezone

    from oms.config import get_settings
    from oms.db.engine import get_engine
    from oms.db.scans import record_scans
    from oms.domain.warehouse_steps import Scan

    policy = _scan_policy(args)
    engine = get_engine(get_settings().database_url)
    if args.step == "history":
        return _scan_history(engine, args.tracking_numbers, policy.display_zone)
    if args.weight is not None and args.weight <= 0:
        print("--weight is the scale's figure in grams: give a positive number", file=sys.stderr)
        return 2
    scans = [Scan(args.step, number, args.weight, args.station, args.operator, source="cli")
             for number in args.tracking_numbers]
    with engine.begin() as conn:
        outcomes = record_scans(conn, scans, datetime.now(timezone.utc), policy)
    words = {"accepted": "accepted", "repeated": "already", "refused": "REFUSED"}
    _print_table(("parcel", "outcome", "detail"),
                 [(o.tracking_number, words[o.verdict],
                   o.message + (f"  [{', '.join(o.orders)}]" if o.orders else "")) for o in outcomes])
    return 1 if any(o.verdict == "refused" for o in outcomes) else 0


def _scan_history(engine, tracking_numbers: list[str], zone) -> int:
    from oms.db.scans import parcel_history
    from oms.domain.warehouse_steps import STEPS

    def clock(moment) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z").rstrip()

    words = dict(zip(STEPS, ("waybill printed", "packed", "weighed", "handed over")))
    missing = 0
    with engine.connect() as conn:
        for number in tracking_numbers:
            parcel = parcel_history(conn, number)
            if parcel is None:
                print(f"{number}: no waybill has this tracking number", file=sys.stderr)
                missing += 1
                continue
            print(f"{number} ({parcel['carrier']}): {parcel['status']}, "
                  f"last step {words.get(parcel['warehouse_step'], 'none yet')}")
            for order in parcel["orders"]:
                items = ", ".join(f"{line['quantity']} x {line['sku']}" for line in order["lines"]) or "no lines"
                flag = "  CANCELLED: do not ship" if order["cancelled"] else ""
                print(f"  order {order['order_ref']} ({order['shop_code']}, {order['status']}): {items}{flag}")
            for step in parcel["steps"]:
                grams = f" {step['weight_grams']} g" if step["weight_grams"] else ""
                who = " ".join(part for part in (step["station"], step["operator"]) if part)
                print(f"  {clock(step['at'])}  {words[step['step']]}{grams}  via {step['source']}"
                      + (f"  {who}" if who else ""))
            if parcel["picked_up_at"]:
                print(f"  {clock(parcel['picked_up_at'])}  collected by the carrier")
    return 1 if missing else 0


def _scanner_serve(args) -> int:
    from oms.config import get_settings
    from oms.scanner import serve

    settings = get_settings()
    host, port = args.host or settings.scanner_host, args.port or settings.scanner_port
    token = settings.scanner_token.get_secret_value()
    if not token and host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {host} without OMS_SCANNER_TOKEN: anyone on the network can scan",
              file=sys.stderr)
    serve(settings.database_url, host, port, token=token, policy=_scan_policy(args))
    return 0


def _db_upgrade(args) -> int:
    from oms.config import get_settings
    from oms.db.migrate import upgrade

    upgrade(get_settings().database_url, args.revision)
    print(f"database is at revision {args.revision}")
    return 0


def _sandbox(args) -> int:
    import time

    from sandbox.server import running_sandbox

    with running_sandbox(port=args.port) as server:
        print(f"sandbox listening on {server.url} (Ctrl-C to stop)")
        print(f"  add a shop: curl -X POST {server.url}/_sandbox/shops "
              "-H 'content-type: application/json' -d '{\"platform\":\"shopify\",\"shop\":\"s1\"}'")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


def _demo(args) -> int:
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # The demo's Prefect API is a local subprocess; its 20 s start-up allowance was
    # seen running out on a busy two-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from flows.demo import run_demo

    run_demo(args.orders)
    return 0


def _ingest(args) -> int:
    from flows.ingest import ingest_orders

    print(ingest_orders(args.shop_code))
    return 0


def _fulfil(args) -> int:
    from flows.fulfil import fulfil_orders

    print(fulfil_orders())
    return 0


def _limits_setup(args) -> int:
    from tasks.pacing import ensure_platform_limits, limit_name

    for platform, slots in ensure_platform_limits().items():
        print(f"{limit_name(platform)}: {slots} slot(s)")
    return 0


def _tokens_status(args) -> int:
    from datetime import datetime, timezone

    from oms.db.tokens import token_overview
    from oms.domain.tokens import describe_span
    from tasks.resources import engine

    now = datetime.now(timezone.utc)

    def left(when):
        if when is None:
            return "-"
        return describe_span(when - now) if when > now else f"expired {describe_span(now - when)} ago"

    with engine().connect() as conn:
        rows = token_overview(conn)
    _print_table(("shop", "platform", "store", "access expires in", "refresh expires in", "refreshable",
                  "last refresh", "last error"),
                 [(r["code"], r["platform"], r["store"] or "-", left(r["access_expires_at"]),
                   left(r["refresh_expires_at"]), "yes" if r["refreshable"] else "no",
                   r["last_refresh_at"].isoformat(timespec="minutes") if r["last_refresh_at"] else "-",
                   (r["last_refresh_error"] or "")[:80]) for r in rows])
    return 0


def _tokens_refresh(args) -> int:
    from oms.db.shops import active_shop_codes
    from tasks.resources import engine
    from tasks.tokens import refresh_shop

    with engine().connect() as conn:
        codes = [args.shop_code] if args.shop_code else active_shop_codes(conn)
    outcomes = [refresh_shop(code, force=args.force) for code in codes]
    _print_table(("shop", "platform", "action", "access token valid until", "detail"),
                 [(o.shop_code, o.platform, o.action,
                   o.access_expires_at.isoformat(timespec="minutes") if o.access_expires_at else "-",
                   o.detail[:100]) for o in outcomes])
    return 1 if any(o.action == "failed" for o in outcomes) else 0


def _tokens_set(args) -> int:
    import json

    from tasks.tokens import set_tokens

    try:
        fields = json.load(sys.stdin)
    except ValueError as error:
        print(f"standard input is not JSON: {error}", file=sys.stderr)
        return 2
    if not isinstance(fields, dict) or not fields.get("access_token"):
        print('give at least {"access_token": ...} on standard input', file=sys.stderr)
        return 2
    tokens = set_tokens(args.shop_code, fields)
    until = tokens.access_expires_at.isoformat(timespec="minutes") if tokens.access_expires_at else "unknown"
    print(f"shop {args.shop_code}: tokens stored; access token valid until {until}; "
          f"{'refreshable' if tokens.can_refresh else 'not refreshable'}")
    return 0


def _stock_levels(args) -> int:
    from oms.db.stock_views import stock_levels
    from tasks.resources import engine

    with engine().connect() as conn:
        rows = stock_levels(conn, args.sku)
    _print_table(("sku", "warehouse", "on hand", "reserved", "safety", "available", "reorder point"),
                 [(r["sku"], r["warehouse"], r["on_hand"], r["reserved"], r["safety_stock"], r["available"],
                   "-" if r["reorder_point"] is None else r["reorder_point"]) for r in rows])
    return 0


def _stock_receive(args) -> int:
    from flows.stock import receive_stock_delivery

    if args.units <= 0:
        print("a delivery adds units: give a positive number", file=sys.stderr)
        return 2
    print(receive_stock_delivery([{"warehouse": args.warehouse, "sku": args.sku, "units": args.units}]))
    return 0


def _stock_backorders(args) -> int:
    from oms.db.stock_views import backorder_queue
    from tasks.resources import engine

    with engine().connect() as conn:
        rows = backorder_queue(conn)
    _print_table(("shop", "order", "waiting since", "tries", "reason"),
                 [(r["shop_code"], r["platform_order_id"],
                   r["first_decided_at"].isoformat(timespec="minutes") if r["first_decided_at"] else "-",
                   r["attempts"] or 0, (r["reason"] or "")[:140]) for r in rows])
    return 0


def _stock_explain(args) -> int:
    from oms.db.stock_views import routing_of
    from tasks.resources import engine

    with engine().connect() as conn:
        decision = routing_of(conn, args.shop_code, args.platform_order_id)
    if decision is None:
        print(f"no routing decision for {args.shop_code} {args.platform_order_id}", file=sys.stderr)
        return 1
    print(f"{args.shop_code} {args.platform_order_id}: {decision['outcome']} (order {decision['status']}), "
          f"decided {decision['decided_at'].isoformat(timespec='seconds')}, attempt {decision['attempts']}")
    for sentence in decision["explanation"]:
        print(f"  - {sentence}")
    for parcel in decision["parcels"]:
        print(f"  parcel from {parcel['warehouse']}: " +
              ", ".join(f"{units} x {sku}" for _, sku, units in parcel["lines"]))
    if decision["reason"]:
        print(f"  waits because: {decision['reason']}")
    return 0


def _stock_listings(args) -> int:
    from oms.db.stock_views import listing_overview
    from tasks.resources import engine

    with engine().connect() as conn:
        rows = listing_overview(conn, args.shop_code)
    _print_table(("sku", "item", "variant", "pushed", "at", "failures", "last error"),
                 [(r["sku"], r["item_id"], r["variant_id"] or "-",
                   "-" if r["pushed_quantity"] is None else r["pushed_quantity"],
                   r["pushed_at"].isoformat(timespec="minutes") if r["pushed_at"] else "-",
                   r["failures"], (r["last_error"] or "")[:80]) for r in rows])
    return 0


def _stock_sync(args) -> int:
    from flows.stock import sync_stock

    state = sync_stock(full=args.full, return_state=True)
    print(state.message or state.name)
    return 0 if state.is_completed() else 1


def _stock_audit(args) -> int:
    from flows.stock import audit_stock_totals

    repairs = audit_stock_totals()
    if not repairs:
        print("every reserved total equals the sum of its reservations")
        return 0
    _print_table(("warehouse", "sku", "recorded reserved", "reservations add up to", "on hand"),
                 [(r.warehouse, r.sku, r.recorded_reserved, r.actual_reserved, r.on_hand) for r in repairs])
    return 0


def _alerts_setup(args) -> int:
    from prefect.settings import PREFECT_API_URL

    from tasks.alert_setup import ensure_alerting

    if not PREFECT_API_URL.value():
        # Without it Prefect would start a throwaway API whose automations die with us.
        print("alerts live on a Prefect server: set PREFECT_API_URL to it", file=sys.stderr)
        return 2
    channels = _alert_channels(args.config)
    if channels is None:
        return 2
    report = ensure_alerting(channels)
    _print_channel_table(report.channels)
    if not report.automations:
        print("no channel is configured, so no automation was changed: set the variables above",
              file=sys.stderr)
        return 1
    print()
    _print_table(("automation", "outcome", "notifies"),
                 [(a.name, a.outcome, f"{a.actions} channel(s)") for a in report.automations])
    return 0 if report.ok else 1


def _alerts_test(args) -> int:
    from tasks.alert_setup import send_test_alert

    channels = _alert_channels(args.config)
    if channels is None:
        return 2
    results = send_test_alert(channels)
    _print_channel_table(results)
    if not any(result.status == "ok" for result in results):
        print("no test message went out", file=sys.stderr)
        return 1
    return 0 if all(result.status != "error" for result in results) else 1


def _alert_channels(path: str | None):
    """The channels of the alerts file, or None after saying what is wrong with it."""
    from tasks.alert_channels import AlertConfigError, load_channels

    try:
        return load_channels(path)
    except AlertConfigError as error:
        print(f"alerts configuration: {error}", file=sys.stderr)
        return None


def _print_channel_table(statuses) -> None:
    _print_table(("channel", "kind", "status", "detail"),
                 [(s.name, s.kind, s.status, s.detail) for s in statuses])


def _sla_at_risk(args) -> int:
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from oms.config import get_settings
    from oms.db.deadlines import at_risk
    from oms.db.engine import get_engine
    from oms.domain.sla import time_left

    settings = get_settings()
    zone = ZoneInfo(settings.warehouse_timezone)
    with get_engine(settings.database_url).connect() as conn:
        groups = at_risk(conn, datetime.now(timezone.utc))
    rows = [(r.warehouse, r.platform_order_id, r.shop_code, r.platform,
             f"{r.deadline.astimezone(zone):%Y-%m-%d %H:%M}", r.stage.value, time_left(r.minutes_left), r.step or "")
            for found in groups.values() for r in found]
    if not rows:
        print("no order is near or past its ship-by deadline")
        return 0
    _print_table(("warehouse", "order", "shop", "platform", "deadline", "stage", "time left", "step"), rows)
    return 0


def _intercept_list(args) -> int:
    from oms.config import get_settings
    from oms.db.engine import get_engine
    from oms.db.interceptions import open_interceptions

    with get_engine(get_settings().database_url).connect() as conn:
        waiting = open_interceptions(conn)
    if not waiting:
        print("no parcel is waiting to be intercepted")
        return 0
    _print_table(("id", "shop", "order", "carrier", "tracking", "state", "since", "why"),
                 [(i["id"], i["shop_code"], i["platform_order_id"], i["carrier"], i["tracking_number"], i["state"],
                   f"{i['created_at']:%Y-%m-%d %H:%M}", i["reason"]) for i in waiting])
    return 0


def _refund_list(args) -> int:
    from sqlalchemy import select

    from oms.config import get_settings
    from oms.db.engine import get_engine
    from oms.db.refunds import OPEN_STATUSES
    from oms.db.schema import after_sales_requests as requests

    query = (select(requests.c.id, requests.c.shop_code, requests.c.platform_request_id, requests.c.kind,
                    requests.c.amount, requests.c.currency, requests.c.status, requests.c.node, requests.c.respond_by)
             .where(requests.c.status.in_(OPEN_STATUSES)).order_by(requests.c.respond_by, requests.c.id))
    with get_engine(get_settings().database_url).connect() as conn:
        rows = conn.execute(query).all()
    if not rows:
        print("no after-sales request is open")
        return 0
    _print_table(("id", "shop", "request", "kind", "amount", "status", "waiting at", "platform deadline"),
                 [(r.id, r.shop_code, r.platform_request_id, r.kind, f"{r.amount} {r.currency}", r.status,
                   r.node or "", f"{r.respond_by:%Y-%m-%d %H:%M}" if r.respond_by else "") for r in rows])
    return 0


def _refund_show(args) -> int:
    from oms.config import get_settings
    from oms.db.after_sales import audit_trail
    from oms.db.engine import get_engine
    from oms.db.refunds import load_request

    with get_engine(get_settings().database_url).connect() as conn:
        try:
            request = load_request(conn, args.request_id)
        except LookupError as missing:
            print(missing, file=sys.stderr)
            return 2
        trail = audit_trail(conn, args.request_id)
    print(f"request #{request['id']}: {request['platform']} {request['platform_request_id']} "
          f"({request['kind']}, {request['amount']} {request['currency']}, reason {request['reason_code']}) "
          f"is {request['status']}" + (f" at {request['node']}" if request["node"] else ""))
    _print_table(("at", "who", "role", "what", "node", "why"),
                 [(f"{row['at']:%Y-%m-%d %H:%M:%S}", row["actor"], row["role"] or "", row["action"],
                   row["node"] or "", row["reason"]) for row in trail])
    return 0


def _refund_approve(args) -> int:
    from flows.after_sales import approve_refund

    outcome = approve_refund(args.request_id)
    print(f"request #{outcome.request_id}: {outcome.outcome} {outcome.approved_amount} ({outcome.decided_by})")
    return 0


def _intercept_settle(args) -> int:
    from datetime import datetime, timezone

    from oms.config import get_settings
    from oms.db.engine import get_engine
    from oms.db.interceptions import settle_interception

    with get_engine(get_settings().database_url).begin() as conn:
        moved = settle_interception(conn, args.interception_id, args.state, datetime.now(timezone.utc), args.note)
    if not moved:
        print(f"interception {args.interception_id} is unknown or already settled", file=sys.stderr)
        return 1
    print(f"interception {args.interception_id}: {args.state}")
    return 0


def _writeback_retry(args) -> int:
    from datetime import datetime, timezone

    from oms.config import get_settings
    from oms.db.engine import get_engine
    from oms.db.tracking import retry_parked

    if args.shop is None and args.review_id is None:
        print("name a shop (--shop) or a review entry (--review-id)", file=sys.stderr)
        return 2
    with get_engine(get_settings().database_url).begin() as conn:
        count = retry_parked(conn, datetime.now(timezone.utc), shop_code=args.shop, review_id=args.review_id)
    print(f"{count} push(es) due again; the next write-back-tracking run sends them")
    return 0


def _print_table(headers: tuple[str, ...], rows: list[tuple]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    for row in (headers, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
