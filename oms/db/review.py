"""The review queue: rows the pipeline could not process, parked with reasons and payload.

Parking is idempotent: the same payload failing the same stage twice is one entry, so a
re-run over a window never floods the operators with copies.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from oms.db.dialect import chunks, upsert_insert
from oms.db.schema import review_queue


@dataclass
class ReviewEntry:
    stage: str  # land | clean | validate | allocate | ship | write_back
    platform: str
    shop_code: str
    platform_order_id: str | None
    reasons: list[str]
    payload: Any


def fingerprint(entry: ReviewEntry) -> str:
    body = json.dumps(
        [entry.stage, entry.platform, entry.shop_code, entry.platform_order_id, entry.payload],
        sort_keys=True,
        default=str,
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def park(conn: Connection, entries: list[ReviewEntry], now: datetime) -> int:
    """Insert the entries not already queued; return how many are new."""
    if not entries:
        return 0
    rows = [
        {
            "fingerprint": fingerprint(entry),
            "stage": entry.stage,
            "platform": entry.platform,
            "shop_code": entry.shop_code,
            "platform_order_id": entry.platform_order_id,
            "reasons": entry.reasons,
            "payload": json.loads(json.dumps(entry.payload, default=str)),
            "created_at": now,
        }
        for entry in entries
    ]
    statement = (
        upsert_insert(conn, review_queue)
        .on_conflict_do_nothing(index_elements=["fingerprint"])
        .returning(review_queue.c.id)
    )
    new_ids = [row.id for row in conn.execute(statement, rows)]
    # A newer payload of an order replaces its older entry at the same stage, so an
    # operator sees one entry per order and problem, not one per platform update.
    for stage in {entry.stage for entry in entries}:
        keys = [(e.platform, e.shop_code, e.platform_order_id) for e in entries
                if e.stage == stage and e.platform_order_id]
        _close_open(conn, keys, (stage,), now, "replaced by a newer payload of the same order",
                    keep=[row["fingerprint"] for row in rows])
    return len(new_ids)


def open_entries(conn: Connection, shop_code: str | None = None, limit: int | None = None) -> list[dict]:
    query = select(review_queue).where(review_queue.c.resolved_at.is_(None))
    if shop_code:
        query = query.where(review_queue.c.shop_code == shop_code)
    query = query.order_by(review_queue.c.id.desc() if limit else review_queue.c.id).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def resolve_superseded(conn: Connection, keys: list[tuple[str, str, str]], now: datetime) -> int:
    """Close open clean/validate entries of orders that have since arrived in a good state:
    the platform fixed the data, so the operator no longer needs to."""
    return _close_open(conn, keys, ("clean", "validate"), now, "superseded by a later valid version")


def _close_open(conn: Connection, keys: list[tuple[str, str, str]], stages: tuple[str, ...],
                now: datetime, resolution: str, keep: list[str] = ()) -> int:
    closed = 0
    by_shop: dict[tuple[str, str], list[str]] = {}
    for platform, shop, order_id in keys:
        by_shop.setdefault((platform, shop), []).append(order_id)
    for (platform, shop), ids in by_shop.items():
        for part in chunks(ids):
            closed += conn.execute(
                update(review_queue)
                .where(
                    review_queue.c.platform == platform,
                    review_queue.c.shop_code == shop,
                    review_queue.c.platform_order_id.in_(part),
                    review_queue.c.stage.in_(stages),
                    review_queue.c.resolved_at.is_(None),
                    review_queue.c.fingerprint.not_in(list(keep)),
                )
                .values(resolved_at=now, resolution=resolution)
            ).rowcount
    return closed
