"""`oms privacy` and `oms orders export`: personal data leaving the database, and its retention.

- `oms orders export --shop CODE --since ISO --until ISO --out FILE.csv --purpose TEXT`
  writes a shop's orders with their receivers to a CSV file and records who took them and
  why in `personal_data_exports`, in the same transaction: the file only appears under
  its name once the audit row is committed, and no audit row is left for a file that
  could not be written. Without a purpose nothing is exported.
- `oms privacy exports [--since ISO]` lists that audit.
- `oms privacy purge [--older-than-days N] [--dry-run]` runs the `purge-personal-data` flow.

Times without an offset are read in the warehouse time zone (OMS_WAREHOUSE_TIMEZONE), the
one operators live in.
"""

from __future__ import annotations

import csv
import getpass
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ORDER_EXPORT_KIND = "order-export"


def add_commands(commands) -> None:
    orders = commands.add_parser("orders", help="orders: export with receivers (audited)").add_subparsers()
    export = orders.add_parser("export", help="write a shop's orders with receivers to CSV; the export is audited")
    export.add_argument("--shop", required=True, help="shop code")
    export.add_argument("--since", required=True, type=_moment, help="orders created at or after (ISO)")
    export.add_argument("--until", required=True, type=_moment, help="orders created before (ISO)")
    export.add_argument("--out", required=True, type=Path, help="the CSV file to write")
    export.add_argument("--purpose", required=True, help="why the data is needed (kept in the audit)")
    export.add_argument("--actor", default=None, help="who takes the data (default: the login name)")
    export.set_defaults(run=_orders_export)

    privacy = commands.add_parser("privacy", help="personal data: the export audit, the retention purge"
                                  ).add_subparsers()
    exports = privacy.add_parser("exports", help="every export of personal data, oldest first")
    exports.add_argument("--since", type=_moment, default=None, help="only exports at or after (ISO)")
    exports.set_defaults(run=_privacy_exports)
    purge = privacy.add_parser("purge", help="run purge-personal-data: delete personal data past its retention")
    purge.add_argument("--older-than-days", type=int, default=None, help="default: OMS_RETENTION_DAYS (180)")
    purge.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    purge.set_defaults(run=_privacy_purge)


def _moment(text: str) -> datetime:
    from oms.config import get_settings

    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(get_settings().warehouse_timezone))
    return moment.astimezone(timezone.utc)


def _engine():
    # The database directly: an export needs neither the connectors nor Prefect.
    from oms.config import get_settings
    from oms.db.engine import get_engine

    return get_engine(get_settings().database_url)


def _orders_export(args) -> int:
    from oms.db.exports import ORDER_EXPORT_COLUMNS, orders_for_export, record_export

    if not args.purpose.strip():
        print("an export of personal data needs a purpose (--purpose): nothing exported", file=sys.stderr)
        return 2
    if args.since >= args.until:
        print("--since must be before --until", file=sys.stderr)
        return 2
    out: Path = args.out
    partial = out.with_name(f".{out.name}.partial")
    actor = args.actor or getpass.getuser()
    try:
        with _engine().begin() as conn:
            rows = orders_for_export(conn, args.shop, args.since, args.until)
            _write_csv(partial, ORDER_EXPORT_COLUMNS, rows)
            subject = f"shop {args.shop}, orders created {args.since.isoformat()} to {args.until.isoformat()}"
            record_export(conn, actor=actor, kind=ORDER_EXPORT_KIND, subject=subject,
                          row_count=len(rows), purpose=args.purpose, now=datetime.now(timezone.utc),
                          destination=str(out.resolve()))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, out)
    print(f"{len(rows)} orders of {args.shop} written to {out}; the export is recorded in the audit")
    return 0


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    # utf-8-sig: Excel, which most sellers open these with, reads Chinese names correctly then.
    with path.open("w", newline="", encoding="utf-8-sig") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _csv_value(value) for key, value in row.items()})


def _csv_value(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def _privacy_exports(args) -> int:
    from oms.db.exports import exports_since

    with _engine().connect() as conn:
        rows = exports_since(conn, args.since or datetime(1970, 1, 1, tzinfo=timezone.utc))
    if not rows:
        print("no exports of personal data recorded")
        return 0
    _print_rows(("at", "actor", "kind", "rows", "purpose", "subject", "destination"),
                [(r["at"].isoformat(timespec="seconds"), r["actor"], r["kind"], r["row_count"], r["purpose"],
                  r["subject"], r["destination"] or "") for r in rows])
    return 0


def _privacy_purge(args) -> int:
    from flows.retention import purge_personal_data

    counts = purge_personal_data(older_than_days=args.older_than_days, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    _print_rows(("kind", verb), sorted(counts.items()))
    return 0


def _print_rows(columns: tuple[str, ...], rows: list[tuple]) -> None:
    widths = [max(len(str(value)) for value in (column, *(row[i] for row in rows))) for i, column in enumerate(columns)]
    print("  ".join(column.ljust(width) for column, width in zip(columns, widths)))
    for row in rows:
        print("  ".join(str(value).ljust(width) for value, width in zip(row, widths)))
