"""The file-drop connector: CSV and XLSX order exports and till journals as a platform.

Many sellers start from Excel. A spreadsheet shop is a drop folder (its `base_url`,
`file:///...` or a plain path) and a source name (its one credential) that picks a column
mapping from `config/spreadsheet-sources.yaml`. Every export whose modification time falls
in the ingest window is read, so the watermark and the overlap work as for any platform,
and re-reading a window lands the same payloads again (landing is idempotent).

Rows are grouped into orders by the order id column (exports write one row per item).
A row that cannot be read becomes an unreadable `RawOrder` whose reason names the file
and the sheet row, and the ingest task parks it in the review queue: nothing is dropped.
The other rows of that order are held back with it, because landing the rest would ship
an order short of a line.

There is no API to tell a spreadsheet that an order shipped, so tracking numbers go to
`shipments-outbox.csv` in the same folder, for the seller to import into the back office.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import httpx
import yaml

from connectors.base import (
    PushResult,
    RawOrder,
    ShopAccess,
    TokenGrant,
    platform_carrier_code,
)
from connectors.spreadsheet_mapping import (
    PLATFORM,
    SourceConfigError,
    SourceMapping,
    map_order,
    parse_sources,
)
from connectors.spreadsheet_read import FOREIGN_SUFFIXES, READABLE_SUFFIXES, read_export
from oms.config import get_settings
from oms.domain.carriers import Carrier
from oms.domain.errors import Rejected, Unavailable
from oms.domain.order import Order

PROJECT_ROOT = Path(__file__).resolve().parents[1]
OUTBOX_NAME = "shipments-outbox.csv"
OUTBOX_HEADER = ("order_id", "carrier", "carrier_name", "tracking_number", "recorded_at")

# Our carrier code -> the name written into the outbox, as back-office imports spell it.
CARRIER_CODES: dict[str, str] = {
    Carrier.SF: "顺丰速运", Carrier.ZTO: "中通快递", Carrier.YTO: "圆通速递",
    Carrier.STO: "申通快递", Carrier.YUNDA: "韵达快递", Carrier.JD: "京东物流",
    Carrier.EMS: "中国邮政EMS", Carrier.JT: "极兔速递", Carrier.SPX: "Shopee Xpress",
    Carrier.LEX: "Lazada Express", Carrier.NINJAVAN: "Ninja Van", Carrier.FLASH: "Flash Express",
    Carrier.DHL: "DHL", Carrier.FEDEX: "FedEx", Carrier.UPS: "UPS", Carrier.USPS: "USPS",
}  # fmt: skip


# ---- sources -----------------------------------------------------------------------------


def sources_path() -> Path:
    path = Path(get_settings().spreadsheet_sources_path)
    # The default is relative to the project, not to wherever a worker was started.
    if not path.is_absolute() and not path.exists():
        return PROJECT_ROOT / path
    return path


def load_sources(path: Path | None = None) -> dict[str, SourceMapping]:
    """Every source of the sources file, checked; re-read when the file changes."""
    path = path or sources_path()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as error:
        raise SourceConfigError(f"{path}: cannot read the spreadsheet sources ({error.strerror})") from None
    return _parsed_sources(str(path), stamp)


@lru_cache(maxsize=8)
def _parsed_sources(path: str, stamp: int) -> dict[str, SourceMapping]:
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise SourceConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_sources(document, origin=path)


def drop_directory(base_url: str) -> Path:
    """The folder of a `file:///...` URL or a plain path."""
    parts = urlsplit(base_url)
    if parts.scheme == "file":
        return Path(url2pathname(unquote(parts.path)))
    if parts.scheme and len(parts.scheme) > 1:  # one letter is a Windows drive
        raise Rejected(f"spreadsheet base_url {base_url!r} is neither a file: URL nor a path",
                       platform=PLATFORM, code="bad_base_url")
    return Path(base_url)


# ---- the connector -------------------------------------------------------------------------


class SpreadsheetConnector:
    platform = PLATFORM
    fetch_lag = timedelta(0)  # a file is there or not

    def __init__(self, access: ShopAccess, http: httpx.Client | None = None) -> None:
        # `http` is unused: kept so the tasks build every connector the same way.
        self.access = access
        self.directory = drop_directory(access.base_url)
        self.source_name = access.credentials.get("source", "")

    def source(self) -> SourceMapping:
        try:
            sources = load_sources()
        except SourceConfigError as error:
            raise Rejected(str(error), platform=PLATFORM, code="bad_source_config") from None
        if self.source_name not in sources:
            raise Rejected(
                f"shop {self.access.code} names source {self.source_name!r}, which "
                f"{sources_path()} does not define (it has: {', '.join(sorted(sources))})",
                platform=PLATFORM, code="unknown_source")
        return sources[self.source_name]

    def fetch_orders(self, start: datetime, end: datetime) -> Iterator[list[RawOrder]]:
        """One page per export modified in [start, end), oldest file first."""
        source = self.source()
        for path, modified_at in self._exports():
            if start <= modified_at < end:
                yield read_export(path, source, modified_at)

    def to_order(self, raw: RawOrder) -> Order:
        return map_order(raw.payload, self.access.code)

    def push_tracking(self, platform_order_id: str, carrier: str, tracking_number: str) -> PushResult:
        """Append the shipment to the outbox once; a repeat of the same row is success."""
        carrier_name = platform_carrier_code(CARRIER_CODES, carrier, PLATFORM)
        path = self.directory / OUTBOX_NAME
        request = {"file": OUTBOX_NAME, "order_id": platform_order_id, "carrier": carrier,
                   "tracking_number": tracking_number}
        recorded_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            written = _append_once(path, [platform_order_id, carrier, carrier_name,
                                          tracking_number, recorded_at])
        except OSError as error:
            raise Unavailable(f"cannot write {path}: {error.strerror}", platform=PLATFORM) from None
        return PushResult(request, {"outcome": "recorded" if written else "already_recorded"})

    def refresh_access(self, refresh_token: str) -> TokenGrant:
        raise Rejected("a spreadsheet shop has no tokens to refresh", platform=PLATFORM,
                       code="no_tokens")

    def probe(self) -> None:
        if not self.directory.is_dir() or not os.access(self.directory, os.R_OK | os.X_OK):
            raise Unavailable(f"drop folder {self.directory} is missing or not readable",
                              platform=PLATFORM, code="no_drop_folder")
        self.source()

    def close(self) -> None:
        """Nothing to release; here so tasks may close every connector alike."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _exports(self) -> list[tuple[Path, datetime]]:
        try:
            entries = [(p, p.stat().st_mtime) for p in self.directory.iterdir() if _is_export(p)]
        except OSError as error:
            # A network share that went away comes back; a later attempt may succeed.
            raise Unavailable(f"cannot list drop folder {self.directory}: {error.strerror}",
                              platform=PLATFORM, code="no_drop_folder") from None
        entries.sort(key=lambda entry: (entry[1], entry[0].name))
        return [(p, datetime.fromtimestamp(stamp, timezone.utc)) for p, stamp in entries]


def _is_export(path: Path) -> bool:
    # '~$...' is Excel's lock file of an open workbook, '.' files are editors' droppings.
    if path.name.startswith(("~$", ".")) or path.name == OUTBOX_NAME or not path.is_file():
        return False
    return path.suffix.lower() in READABLE_SUFFIXES | FOREIGN_SUFFIXES


def _append_once(path: Path, row: list[str]) -> bool:
    """Append `row` unless the same order and tracking number are there; True if written.

    Binary append under an exclusive lock: two write-back runs cannot interleave, and the
    BOM (which Excel needs to read UTF-8) is written only into an empty file.
    """
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        existing = handle.read().decode("utf-8-sig")
        for line in list(csv.reader(io.StringIO(existing)))[1:]:
            if len(line) > 3 and line[0] == row[0] and line[3] == row[3]:
                return False
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\r\n")
        if not existing:
            writer.writerow(OUTBOX_HEADER)
        writer.writerow(row)
        handle.write(("\ufeff" if not existing else "").encode() + text.getvalue().encode("utf-8"))
        return True
