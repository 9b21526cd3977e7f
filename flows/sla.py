"""`sla-watch`: every open order's ship-by deadline watched; on-call hears once per order
when it nears (warning, 2 hours before by default) and once when it passes (breach), and
the "orders at risk" artifact lists what to ship first, warehouse by warehouse.

`now` is a parameter so a test, or an operator replaying a moment, controls the clock;
scheduled runs leave it empty and get the real time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from oms.domain.sla import Escalation, Stage, time_left
from tasks.sla_watch import (
    local_time,
    orders_at_risk,
    warehouse_zone,
    watch_ship_by_deadlines_batch,
)

ARTIFACT_KEY = "orders-at-risk"


@dataclass
class SlaWatchSummary:
    deadlines_stored: int
    deadlines_recomputed: int
    settled: int
    warnings_sent: int
    breaches_sent: int
    at_risk: int  # orders in warning or past their deadline at `now`
    breached: int


@flow(name="sla-watch")
def watch_ship_by_deadlines(now: datetime | None = None) -> SlaWatchSummary:
    """Store and refresh deadlines, announce new warnings and breaches, list the orders at risk."""
    now = _aware(now)
    watched = watch_ship_by_deadlines_batch(now)
    risky = orders_at_risk(now)
    _publish(risky, now)
    rows = [row for group in risky.values() for row in group]
    return SlaWatchSummary(
        deadlines_stored=watched.stored, deadlines_recomputed=watched.recomputed, settled=watched.settled,
        warnings_sent=sum(alert.escalation is Escalation.WARNING for alert in watched.alerts),
        breaches_sent=sum(alert.escalation is Escalation.BREACH for alert in watched.alerts),
        at_risk=len(rows), breached=sum(row.stage is Stage.BREACHED for row in rows))


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    # A time typed into the UI's run form comes without a zone: take it as UTC.
    return now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)


def _publish(risky: dict, now: datetime) -> None:
    zone = warehouse_zone()
    if not risky:
        create_markdown_artifact(key=ARTIFACT_KEY, description="Orders at risk of missing their ship-by deadline",
                                 markdown=f"No order is near or past its ship-by deadline at {local_time(now, zone)}.")
        return
    total = sum(len(rows) for rows in risky.values())
    parts = [f"# Orders at risk at {local_time(now, zone)}", "",
             f"{total} order(s) near or past their ship-by deadline, most urgent warehouse first.", ""]
    for warehouse, rows in risky.items():
        late = sum(row.stage is Stage.BREACHED for row in rows)
        parts += [f"## {warehouse}: {len(rows)} order(s), {late} past the deadline", "",
                  "| order | shop | platform | deadline | stage | time left | step |",
                  "|---|---|---|---|---|---|---|"]
        parts += [f"| {row.platform_order_id} | {row.shop_code} | {row.platform} | {local_time(row.deadline, zone)} "
                  f"| {row.stage.value} | {time_left(row.minutes_left)} | {row.step or ''} |" for row in rows]
        parts.append("")
    create_markdown_artifact(key=ARTIFACT_KEY, markdown="\n".join(parts),
                             description=f"{total} order(s) at risk of missing their ship-by deadline")
