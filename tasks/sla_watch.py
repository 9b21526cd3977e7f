"""Ship-by deadline tasks of the `sla-watch` flow: watch every open order's deadline in one
batch, tell on-call once per order when it nears and once when it passes, and list the
orders at risk by warehouse.

Alerts are claimed in the database (oms.db.deadlines: a stage moves by a conditional
UPDATE) and sent only after that commit, so an overlapping run or a retry of this task
sends nothing twice. The price: a worker that dies between the commit and the send loses
those alerts; the orders still show in the "orders at risk" artifact of the next run.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from prefect import get_run_logger, task

from oms.config import get_settings
from oms.db.deadlines import SlaAlert, WatchResult, at_risk, watch_deadlines
from oms.domain.sla import AtRiskRow, Escalation, time_left
from oms.sla_rules import load_sla_rules
from tasks.alerts import SLA_BREACH, SLA_WARNING, announce
from tasks.policy import BATCH_TASK
from tasks.resources import engine

EVENTS = {Escalation.WARNING: SLA_WARNING, Escalation.BREACH: SLA_BREACH}


@task(name="watch-ship-by-deadlines", **BATCH_TASK)
def watch_ship_by_deadlines_batch(now: datetime) -> WatchResult:
    """Store missing or stale deadlines, move stages, then announce what this run claimed."""
    rules = load_sla_rules()
    with engine().begin() as conn:
        result = watch_deadlines(conn, rules, now)
    zone = warehouse_zone()
    for alert in result.alerts:
        announce_alert(alert, zone)
    get_run_logger().info("sla-watch: %d deadlines stored, %d recomputed, %d settled, %d warnings, %d breaches",
                          result.stored, result.recomputed, result.settled,
                          sum(a.escalation is Escalation.WARNING for a in result.alerts),
                          sum(a.escalation is Escalation.BREACH for a in result.alerts))
    return result


@task(name="orders-at-risk", **BATCH_TASK)
def orders_at_risk(now: datetime) -> dict[str, list[AtRiskRow]]:
    with engine().connect() as conn:
        return at_risk(conn, now, load_sla_rules())


def warehouse_zone() -> ZoneInfo:
    return ZoneInfo(get_settings().warehouse_timezone)


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M} {zone.key}"


def announce_alert(alert: SlaAlert, zone: ZoneInfo) -> None:
    """One event per order: the headline alone tells on-call which parcel, where, by when."""
    where = alert.warehouse or "no warehouse yet"
    deadline = local_time(alert.deadline, zone)
    left = time_left(alert.minutes_left)
    order = f"{alert.platform} order {alert.platform_order_id}"
    step = alert.step or "unknown"
    if alert.escalation is Escalation.WARNING:
        headline = f"Ship soon: {order} ({alert.shop_code}, {where}) due {deadline}, {left}"
        message = (f"{order} of shop {alert.shop_code} must have its tracking number accepted by "
                   f"{alert.platform} by {deadline} ({left}); it is at step '{step}' in {where}. "
                   "Pack and hand it over now and check that write-back pushes its tracking number; "
                   "if it cannot leave in time, ask the platform for an extension or contact the buyer.")
    else:
        headline = f"Ship-by missed: {order} ({alert.shop_code}, {where}) was due {deadline}, {left}"
        message = (f"{order} of shop {alert.shop_code} passed its ship-by deadline {deadline} ({left}) "
                   f"without {alert.platform} accepting a tracking number; it is at step '{step}' in {where}. "
                   "The platform may fine the shop: ship it and push the tracking number at once, "
                   "check the write-back review queue, and tell the shop's manager.")
    announce(EVENTS[alert.escalation], shop_code=alert.shop_code, platform=alert.platform,
             headline=headline, message=message, order=alert.platform_order_id, order_id=alert.order_id,
             warehouse=where, deadline=alert.deadline.isoformat(), deadline_local=deadline,
             minutes_left=alert.minutes_left, step=step, rule=alert.rule or "")
