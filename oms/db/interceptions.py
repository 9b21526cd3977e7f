"""Interceptions: parcels on their way whose order the platform cancelled.

`cancel_after_waybill` opens them; a person (or later the carrier's interception API)
asks the carrier to stop the parcel and records how it went here. Settling one keeps the
parcel's stock as it is: a parcel stopped comes back as a return (after-sales receives it
into stock), one the carrier could not stop is delivered and handled as a refund.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from oms.db.schema import interceptions, orders

WAITING = ("open", "requested")
SETTLED = ("intercepted", "failed", "closed")


def open_interceptions(conn: Connection, limit: int = 200) -> list[dict[str, Any]]:
    """Interceptions still waiting, oldest first, with order references (no buyer data)."""
    query = (select(interceptions.c.id, orders.c.shop_code, orders.c.platform_order_id, interceptions.c.carrier,
                    interceptions.c.tracking_number, interceptions.c.state, interceptions.c.reason,
                    interceptions.c.created_at)
             .join(orders, orders.c.id == interceptions.c.order_id)
             .where(interceptions.c.state.in_(WAITING))
             .order_by(interceptions.c.created_at, interceptions.c.id).limit(limit))
    return [dict(row._mapping) for row in conn.execute(query)]


def settle_interception(conn: Connection, interception_id: int, state: str, now: datetime,
                        note: str | None = None) -> bool:
    """Record what became of one interception: `requested` (the carrier was asked), or
    a final `intercepted`, `failed` or `closed`. False when it is unknown or already settled."""
    if state not in ("requested", *SETTLED):
        raise ValueError(f"an interception can become requested, {', '.join(SETTLED)}; not {state!r}")
    moved = conn.execute(update(interceptions)
                         .where(interceptions.c.id == interception_id, interceptions.c.state.in_(WAITING))
                         .values(state=state, note=note, updated_at=now).returning(interceptions.c.id)).first()
    return moved is not None
