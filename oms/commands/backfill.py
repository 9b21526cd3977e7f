"""`oms backfill` and `oms reconcile`: a shop's orders over any time range, and the daily
reconciliation run by hand.

`oms backfill --shop CODE --since ISO --until ISO [--slice-hours H]` runs `ingest-orders`
once per slice of the range (each slice its own flow run, with its own report in the
UI), never moving the shop's watermark, and shows a progress bar with the orders fetched
and stored so far. Times without an offset are read in the warehouse's time zone, since
that is the clock an operator reading a seller's complaint has in mind.

`oms reconcile [--shop CODE] [--day YYYY-MM-DD] [--days N]` runs `reconcile-orders` once
and prints its report.

Prefect is imported only when a command runs, so `oms --help` stays quick.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

REPORT_ARTIFACT = "reconciliation-report"
# The ingest reports, in the order the totals are printed.
TOTALS = (("fetched", "fetched"), ("pages", "pages"), ("new payloads", "new_payloads"),
          ("stored new", "stored_new"), ("updated", "updated"), ("duplicates merged", "duplicates_merged"),
          ("quarantined", "quarantined"), ("newly quarantined", "newly_quarantined"))


def add_commands(commands) -> None:
    backfill = commands.add_parser("backfill", help="ingest one shop's orders over a time range (watermark untouched)")
    backfill.add_argument("--shop", required=True, help="shop code")
    backfill.add_argument("--since", required=True, help="start, ISO 8601 (no offset: warehouse time zone)")
    backfill.add_argument("--until", required=True, help="end, ISO 8601 (no offset: warehouse time zone)")
    backfill.add_argument("--slice-hours", type=float, default=None,
                          help="one ingest-orders run per slice this long (default: OMS_INGEST_SLICE_HOURS)")
    backfill.set_defaults(run=run_backfill)

    reconcile = commands.add_parser("reconcile", help="run reconcile-orders once and print its report")
    reconcile.add_argument("--shop", action="append", default=None,
                           help="shop code (repeat for several; default: every active shop)")
    reconcile.add_argument("--day", type=date.fromisoformat, default=None,
                           help="last day to reconcile, YYYY-MM-DD (default: yesterday, warehouse time zone)")
    reconcile.add_argument("--days", type=int, default=None,
                           help="how many days up to --day (default: OMS_RECONCILE_DAYS)")
    reconcile.set_defaults(run=run_reconcile)


# ------------------------------------------------------------------ backfill


def read_moment(text: str, zone: ZoneInfo) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def run_backfill(args) -> int:
    from oms.config import get_settings

    settings = get_settings()
    zone = ZoneInfo(settings.warehouse_timezone)
    try:
        since, until = read_moment(args.since, zone), read_moment(args.until, zone)
    except argparse.ArgumentTypeError as error:
        print(error, file=sys.stderr)
        return 2
    hours = args.slice_hours or settings.ingest_slice_hours
    if until <= since or hours <= 0:
        print("--until must be after --since, and --slice-hours above 0", file=sys.stderr)
        return 2
    # The bar is the feedback here; the flows' own INFO lines would scroll it away.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from tasks.ingest import Window

    pieces = Window(since, until).slices(timedelta(hours=hours))
    totals = _ingest_slices(args.shop, pieces)
    print(f"backfill of {args.shop}: {since.isoformat()} to {until.isoformat()}, {len(pieces)} slice(s)")
    for label, name in TOTALS:
        print(f"{label}: {totals[name]}")
    return 0


def _ingest_slices(shop_code: str, pieces: list) -> dict[str, int]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from flows.ingest import ingest_orders

    totals = dict.fromkeys((name for _, name in TOTALS), 0)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    # On standard error, so the totals on standard output can be piped or read by a script.
    with Progress(*columns, console=Console(stderr=True)) as progress:
        bar = progress.add_task(_progress_text(shop_code, totals), total=len(pieces))
        for piece in pieces:
            report = ingest_orders(shop_code, since=piece.start, until=piece.end)
            for _, name in TOTALS:
                totals[name] += getattr(report, name)
            progress.update(bar, advance=1, description=_progress_text(shop_code, totals))
    return totals


def _progress_text(shop_code: str, totals: dict[str, int]) -> str:
    return f"{shop_code}: {totals['fetched']} fetched, {totals['stored_new'] + totals['updated']} stored"


# ------------------------------------------------------------------ reconcile


def run_reconcile(args) -> int:
    from flows.reconcile import reconcile_orders

    state = reconcile_orders(shop_codes=args.shop, day=args.day, days=args.days, return_state=True)
    if not state.is_completed():
        print(f"{state.message or state.name} (the run's {REPORT_ARTIFACT} artifact has the details)",
              file=sys.stderr)
        return 1
    outcome = state.result()
    print(outcome.report, end="")
    return 0
