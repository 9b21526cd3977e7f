"""Retention of personal data in our database: what is purged once it is older than the cut-off.

Each kind is purged in batches, one short transaction per batch (`purge_*` take a limit
and return how many rows they changed; the caller loops until 0), so a first purge of a
year's payloads never holds a long lock on tables the ingest writes to. Each kind has a
`count_*` twin for dry runs. Every condition excludes rows already purged, so a second
run over the same cut-off changes nothing.

What goes and what stays:

- `raw_orders`: rows received before the cut-off are deleted; the orders made from them
  stay, with `raw_order_id` set to NULL first (it is a foreign key).
- `review_queue`: the payload of a *resolved* entry created before the cut-off becomes
  `{}`; the row, its reasons and its resolution stay, and so does its audit trail, whose
  `detail` (an operator's fixes, which may spell a phone) becomes NULL. Open entries keep
  their payload whatever their age: a person still has to fix or discard them, and
  cannot without it.
- `tracking_pushes`: request and response bodies of attempts before the cut-off become
  NULL (platform answers may echo the receiver); attempt, outcome and error stay.
- `after_sales_requests`: the platform payload (buyer's messages, return addresses) and
  the evidence (photos, descriptions) of requests that are settled and unchanged since
  the cut-off become `{}` and `[]`; open requests keep them for their approvers.
- `orders` keep their receiver: they are the seller's business records, not raw data.
- `personal_data_exports` are kept: they are the audit this purge must not erase.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, delete, func, null, select, update

from oms.db.refunds import OPEN_STATUSES
from oms.db.schema import (
    after_sales_requests,
    orders,
    raw_orders,
    retention_runs,
    review_audit,
    review_queue,
    tracking_pushes,
)

EMPTY_PAYLOAD: dict = {}


def _old_raw_orders(cutoff: datetime):
    return raw_orders.c.received_at < cutoff


def purge_raw_orders(conn: Connection, cutoff: datetime, limit: int) -> int:
    ids = conn.execute(select(raw_orders.c.id).where(_old_raw_orders(cutoff))
                       .order_by(raw_orders.c.id).limit(limit)).scalars().all()
    if not ids:
        return 0
    conn.execute(update(orders).where(orders.c.raw_order_id.in_(ids)).values(raw_order_id=None))
    return conn.execute(delete(raw_orders).where(raw_orders.c.id.in_(ids))).rowcount


def count_raw_orders(conn: Connection, cutoff: datetime) -> int:
    return _count(conn, raw_orders, _old_raw_orders(cutoff))


def _old_resolved_reviews(cutoff: datetime):
    return and_(review_queue.c.resolved_at.is_not(None), review_queue.c.created_at < cutoff,
                review_queue.c.payload != EMPTY_PAYLOAD)


def purge_review_payloads(conn: Connection, cutoff: datetime, limit: int) -> int:
    ids = conn.execute(select(review_queue.c.id).where(_old_resolved_reviews(cutoff))
                       .order_by(review_queue.c.id).limit(limit)).scalars().all()
    if not ids:
        return 0
    conn.execute(update(review_audit).where(review_audit.c.review_id.in_(ids), review_audit.c.detail.is_not(None))
                 .values(detail=null()))
    return conn.execute(update(review_queue).where(review_queue.c.id.in_(ids)).values(payload=EMPTY_PAYLOAD)).rowcount


def count_review_payloads(conn: Connection, cutoff: datetime) -> int:
    return _count(conn, review_queue, _old_resolved_reviews(cutoff))


def _old_push_bodies(cutoff: datetime):
    return and_(tracking_pushes.c.at < cutoff,
                (tracking_pushes.c.request.is_not(None)) | (tracking_pushes.c.response.is_not(None)))


def purge_push_bodies(conn: Connection, cutoff: datetime, limit: int) -> int:
    ids = conn.execute(select(tracking_pushes.c.id).where(_old_push_bodies(cutoff))
                       .order_by(tracking_pushes.c.id).limit(limit)).scalars().all()
    if not ids:
        return 0
    # null(): SQL NULL. A Python None would be stored as the JSON value null, which
    # `IS NOT NULL` still finds, and the next run would purge the same rows again.
    return conn.execute(update(tracking_pushes).where(tracking_pushes.c.id.in_(ids))
                        .values(request=null(), response=null())).rowcount


def count_push_bodies(conn: Connection, cutoff: datetime) -> int:
    return _count(conn, tracking_pushes, _old_push_bodies(cutoff))


def _old_settled_after_sales(cutoff: datetime):
    return and_(after_sales_requests.c.status.not_in(OPEN_STATUSES), after_sales_requests.c.updated_at < cutoff,
                (after_sales_requests.c.payload != EMPTY_PAYLOAD) | (after_sales_requests.c.evidence != []))


def purge_after_sales_payloads(conn: Connection, cutoff: datetime, limit: int) -> int:
    ids = conn.execute(select(after_sales_requests.c.id).where(_old_settled_after_sales(cutoff))
                       .order_by(after_sales_requests.c.id).limit(limit)).scalars().all()
    if not ids:
        return 0
    # updated_at is left alone: it is the platform's story of the request, not ours.
    return conn.execute(update(after_sales_requests).where(after_sales_requests.c.id.in_(ids))
                        .values(payload=EMPTY_PAYLOAD, evidence=[])).rowcount


def count_after_sales_payloads(conn: Connection, cutoff: datetime) -> int:
    return _count(conn, after_sales_requests, _old_settled_after_sales(cutoff))


# Kind name -> (purge one batch, count all), in the order a run purges them.
DATABASE_PURGES = {
    "raw_orders": (purge_raw_orders, count_raw_orders),
    "review_payloads": (purge_review_payloads, count_review_payloads),
    "tracking_push_bodies": (purge_push_bodies, count_push_bodies),
    "after_sales_payloads": (purge_after_sales_payloads, count_after_sales_payloads),
}


def record_retention_run(conn: Connection, *, ran_at: datetime, cutoff: datetime, deleted: dict[str, int]) -> int:
    result = conn.execute(retention_runs.insert().values(ran_at=ran_at, cutoff=cutoff, deleted=dict(deleted)))
    return result.inserted_primary_key[0]


def retention_history(conn: Connection, limit: int = 20) -> list[dict]:
    query = select(retention_runs).order_by(retention_runs.c.ran_at.desc(), retention_runs.c.id.desc()).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def _count(conn: Connection, table, condition) -> int:
    return conn.execute(select(func.count()).select_from(table).where(condition)).scalar_one()
