"""Alert incidents: one open row per kind of trouble and subject, so on-call hears once.

Whoever detects trouble calls `report_trouble` every time it sees it; only the call that
opens the incident (or escalates its stage) is told to alert. Whoever sees the subject
healthy again calls `report_recovery`; only the call that closes an open incident is told
to announce "resolved". Several workers seeing the same failure at once still open one
incident: the unique `open_key` lets exactly one insert win.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from oms.db.dialect import upsert_insert
from oms.db.schema import alert_incidents


@dataclass(frozen=True)
class Incident:
    id: int
    kind: str
    subject: str
    platform: str | None
    stage: str | None
    opened_at: datetime
    occurrences: int
    detail: dict[str, Any] | None


@dataclass(frozen=True)
class Trouble:
    """What `report_trouble` decided: alert now (`notify`) or stay quiet."""

    incident: Incident
    notify: bool
    escalated: bool = False


def open_key(kind: str, subject: str) -> str:
    return f"{kind}/{subject}"


def report_trouble(conn: Connection, kind: str, subject: str, now: datetime, *,
                   platform: str | None = None, detail: dict[str, Any] | None = None,
                   stage: str | None = None, stage_rank: dict[str, int] | None = None) -> Trouble:
    """Record one sighting of trouble; `notify` is true only for the first sighting of
    an incident, or when `stage` is more severe (by `stage_rank`) than the last sent."""
    key = open_key(kind, subject)
    inserted = conn.execute(
        upsert_insert(conn, alert_incidents).values(
            kind=kind, subject=subject, open_key=key, platform=platform, stage=stage,
            opened_at=now, last_seen_at=now, occurrences=1, detail=detail,
        ).on_conflict_do_nothing(index_elements=["open_key"]).returning(alert_incidents.c.id)
    ).first()
    if inserted is not None:
        return Trouble(_open_incident(conn, key), notify=True)
    current = _open_incident(conn, key)
    escalated = _more_severe(stage, current.stage, stage_rank or {})
    values: dict[str, Any] = {"last_seen_at": now, "occurrences": alert_incidents.c.occurrences + 1,
                              "detail": detail}
    guard = alert_incidents.c.open_key == key
    if escalated:
        values["stage"] = stage
        # Only one worker may win the escalation, as only one won the opening.
        guard = guard & (alert_incidents.c.stage == current.stage if current.stage is not None
                         else alert_incidents.c.stage.is_(None))
    changed = conn.execute(update(alert_incidents).where(guard).values(**values)).rowcount
    if escalated and not changed:
        conn.execute(update(alert_incidents).where(alert_incidents.c.open_key == key).values(
            last_seen_at=now, occurrences=alert_incidents.c.occurrences + 1))
        escalated = False
    return Trouble(_open_incident(conn, key), notify=escalated, escalated=escalated)


def report_recovery(conn: Connection, kind: str, subject: str, now: datetime) -> Incident | None:
    """Close the open incident, if any; returns it only to the caller that closed it."""
    key = open_key(kind, subject)
    current = conn.execute(select(alert_incidents).where(alert_incidents.c.open_key == key)).first()
    if current is None:
        return None
    closed = conn.execute(update(alert_incidents).where(
        alert_incidents.c.id == current.id, alert_incidents.c.open_key == key,
    ).values(open_key=None, resolved_at=now)).rowcount
    return _incident(current) if closed else None


def open_incidents(conn: Connection, kind: str | None = None) -> list[Incident]:
    query = select(alert_incidents).where(alert_incidents.c.open_key.is_not(None))
    if kind is not None:
        query = query.where(alert_incidents.c.kind == kind)
    return [_incident(row) for row in conn.execute(query.order_by(alert_incidents.c.id))]


def _open_incident(conn: Connection, key: str) -> Incident:
    row = conn.execute(select(alert_incidents).where(alert_incidents.c.open_key == key)).one()
    return _incident(row)


def _incident(row) -> Incident:
    return Incident(row.id, row.kind, row.subject, row.platform, row.stage, row.opened_at,
                    row.occurrences, row.detail)


def _more_severe(new: str | None, old: str | None, rank: dict[str, int]) -> bool:
    if new is None or new == old:
        return False
    return rank.get(new, 0) > rank.get(old or "", -1)
