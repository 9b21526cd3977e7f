"""The review queue: rows the pipeline could not process, parked with reasons and payload.

Parking is idempotent: the same payload failing the same stage twice is one entry, so a
re-run over a window never floods the operators with copies.

Operators then read, fix and close entries (`oms review`). Every such action is a
`review_audit` row written in the same transaction as the action itself. An entry keeps
the fingerprint it was parked with even after its payload is fixed: the platform's bad
original comes again on every overlapping fetch, and must keep finding its entry rather
than open a new one. A fix's audit row holds the fields it changed with their old values,
so what the platform sent is never lost; those rows carry personal data, so they stay
in the database and are never logged or printed.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from oms.db.dialect import chunks, upsert_insert
from oms.db.schema import review_audit, review_queue
from oms.domain.review_fix import FieldChange, diff_payloads

# Stages whose payload is what a platform sent: the only ones a person may edit. Later
# stages park our own references (order and shipment ids), which a fix could only break.
# A resubmitted `raw` entry goes through mapping, cleaning and the orders suite; the
# mapping refuses what the raw suite checks (unknown statuses, unreadable amounts).
FIXABLE_STAGES = ("land", "raw", "clean", "validate")
OPEN, RESOLVED, ALL = "open", "resolved", "all"


@dataclass
class ReviewEntry:
    stage: str  # land | raw | clean | validate | allocate | ship | write_back
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
    return _close_open(conn, keys, ("raw", "clean", "validate"), now, "superseded by a later valid version")


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


# ------------------------------------------------------------------ operators' actions


class ReviewRefused(Exception):
    """An action on an entry that cannot be done; the message says why and what to do."""


class UnknownEntry(ReviewRefused, LookupError):
    def __init__(self, entry_id: int) -> None:
        super().__init__(f"there is no review entry {entry_id}")


class EntryResolved(ReviewRefused):
    def __init__(self, entry: dict) -> None:
        by = f" by {entry['resolved_by']}" if entry.get("resolved_by") else ""
        super().__init__(f"review entry {entry['id']} was resolved{by} at "
                         f"{entry['resolved_at']:%Y-%m-%d %H:%M} ({entry['resolution']}); nothing more to do")


_SUMMARY_COLUMNS = [column for column in review_queue.c if column.name not in ("payload", "fingerprint")]


def list_entries(conn: Connection, *, state: str = OPEN, shop_code: str | None = None, stage: str | None = None,
                 reason: str | None = None, limit: int | None = 50) -> list[dict]:
    """Entries newest first, without payloads (listing must not hand out personal data).

    `reason` matches any part of any reason, ignoring case.
    """
    query = select(*_SUMMARY_COLUMNS).where(*_filters(state, shop_code, stage)).order_by(review_queue.c.id.desc())
    if not reason:
        return [dict(row._mapping) for row in conn.execute(query.limit(limit))]
    # Reasons are a JSON list, stored as text differently per database (escaped non-ASCII
    # on SQLite): matching them in Python is the one way that behaves the same on both.
    wanted = reason.casefold()
    found = [dict(row._mapping) for row in conn.execute(query)
             if any(wanted in text.casefold() for text in row.reasons)]
    return found[:limit] if limit else found


def count_entries(conn: Connection, *, state: str = OPEN, shop_code: str | None = None, stage: str | None = None,
                  reason: str | None = None) -> list[tuple[str, str, int]]:
    """(stage, reason, entries) for every reason found, most frequent first; an entry with
    two reasons counts once under each."""
    query = select(review_queue.c.stage, review_queue.c.reasons).where(*_filters(state, shop_code, stage))
    wanted = reason.casefold() if reason else ""
    counted = Counter((row.stage, text) for row in conn.execute(query) for text in row.reasons
                      if wanted in text.casefold())
    return [(stage_, text, count) for (stage_, text), count
            in sorted(counted.items(), key=lambda item: (-item[1], item[0]))]


def _filters(state: str, shop_code: str | None, stage: str | None) -> list:
    if state not in (OPEN, RESOLVED, ALL):
        raise ValueError(f"state is one of {OPEN}, {RESOLVED}, {ALL}, not {state!r}")
    conditions = []
    if state == OPEN:
        conditions.append(review_queue.c.resolved_at.is_(None))
    elif state == RESOLVED:
        conditions.append(review_queue.c.resolved_at.is_not(None))
    if shop_code:
        conditions.append(review_queue.c.shop_code == shop_code)
    if stage:
        conditions.append(review_queue.c.stage == stage)
    return conditions


def get_entry(conn: Connection, entry_id: int, *, for_update: bool = False) -> dict:
    """One entry with its payload; `for_update` locks it on PostgreSQL until the
    transaction ends, so two operators cannot act on it at once."""
    query = select(review_queue).where(review_queue.c.id == entry_id)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    if row is None:
        raise UnknownEntry(entry_id)
    return dict(row._mapping)


def get_open_entry(conn: Connection, entry_id: int, *, for_update: bool = True) -> dict:
    entry = get_entry(conn, entry_id, for_update=for_update)
    if entry["resolved_at"] is not None:
        raise EntryResolved(entry)
    return entry


def record_action(conn: Connection, entry_id: int, *, actor: str, action: str, now: datetime,
                  reason: str | None = None, detail: dict | None = None) -> int:
    """One row of an entry's audit trail; returns its id."""
    result = conn.execute(review_audit.insert().values(
        review_id=entry_id, at=now, actor=actor, action=action, reason=reason,
        detail=json.loads(json.dumps(detail, default=str)) if detail is not None else None,
    ))
    return result.inserted_primary_key[0]


def audit_trail(conn: Connection, entry_id: int) -> list[dict]:
    query = select(review_audit).where(review_audit.c.review_id == entry_id).order_by(
        review_audit.c.at, review_audit.c.id)
    return [dict(row._mapping) for row in conn.execute(query)]


def close_entry(conn: Connection, entry_id: int, *, resolution: str, actor: str, now: datetime) -> None:
    """Resolve an open entry; guarded, so an entry someone else closed meanwhile is refused."""
    closed = conn.execute(
        update(review_queue)
        .where(review_queue.c.id == entry_id, review_queue.c.resolved_at.is_(None))
        .values(resolved_at=now, resolution=resolution, resolved_by=actor)
    ).rowcount
    if closed != 1:
        entry = get_entry(conn, entry_id)
        raise EntryResolved(entry)


def discard(conn: Connection, entry_id: int, *, actor: str, reason: str, now: datetime) -> dict:
    """Close an entry nobody will process, saying why; returns the entry as it was."""
    if not reason or not reason.strip():
        raise ReviewRefused("say why the entry is discarded: --reason TEXT")
    entry = get_open_entry(conn, entry_id)
    close_entry(conn, entry_id, resolution=f"discarded: {reason.strip()}", actor=actor, now=now)
    record_action(conn, entry_id, actor=actor, action="discarded", now=now, reason=reason.strip())
    return entry


def fix_payload(conn: Connection, entry_id: int, patch: Callable[[Any], Any], *, actor: str, now: datetime,
                how: str, note: str | None = None) -> list[FieldChange]:
    """Replace an open entry's payload with `patch(payload)`; audit the changed fields.

    `how` says where the fix came from (assignments, a file) for the trail. The reasons
    stay as they were until the entry is resubmitted: only a new check can say the
    problem is gone.
    """
    entry = get_open_entry(conn, entry_id)
    if entry["stage"] not in FIXABLE_STAGES:
        raise ReviewRefused(
            f"review entry {entry_id} is at stage {entry['stage']}: its payload is our own record, not what "
            f"the platform sent, so it cannot be fixed here (only {', '.join(FIXABLE_STAGES)} entries can)")
    fixed = patch(entry["payload"])
    changes = diff_payloads(entry["payload"], fixed)
    if not changes:
        raise ReviewRefused(f"the fix changes nothing in review entry {entry_id}'s payload")
    conn.execute(update(review_queue).where(review_queue.c.id == entry_id).values(payload=fixed))
    record_action(conn, entry_id, actor=actor, action="fixed", now=now, reason=note,
                  detail={"how": how, "changes": [change.as_json() for change in changes]})
    return changes


def update_problem(conn: Connection, entry_id: int, *, stage: str, reasons: list[str]) -> None:
    """A resubmitted entry that failed again: the stage it stopped at and the new reasons."""
    conn.execute(update(review_queue).where(review_queue.c.id == entry_id).values(stage=stage, reasons=reasons))
