"""Order status history: every applied transition becomes one row (from, to, at, actor, reason)."""

from __future__ import annotations

from sqlalchemy import Connection

from oms.db.schema import order_status_history
from oms.domain.order import StatusChange


def record_history(conn: Connection, changes: list[tuple[int, StatusChange]]) -> None:
    if not changes:
        return
    conn.execute(
        order_status_history.insert(),
        [
            {
                "order_id": order_id,
                "from_status": change.from_status.value if change.from_status else None,
                "to_status": change.to_status.value,
                "at": change.at,
                "actor": change.actor,
                "reason": change.reason,
            }
            for order_id, change in changes
        ],
    )
