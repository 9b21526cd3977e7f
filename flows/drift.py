"""`check-status-drift`: our status of recent orders against every platform's, repaired
where that is safe, and a drift report for operators.

Each active shop is one task, so a platform that is down holds back no other; the run
fails at the end naming the shops that could not be checked. The report artifact lists
the open drifts by kind and shop, what this run repaired and the interceptions waiting
for a person: order references and tracking numbers only, no buyer's data.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from sqlalchemy import select

from oms.config import get_settings
from oms.db.drift import DriftReport, drift_report
from oms.db.schema import shops
from tasks.resources import engine
from tasks.status_drift import ShopDrift, check_shop_drift

EXAMPLES_PER_KIND = 3


@flow(name="check-status-drift")
def check_status_drift(now: datetime | None = None, lookback_hours: float | None = None) -> dict[str, ShopDrift]:
    """Compare the orders changed in the last `lookback_hours` (default: the setting
    drift_lookback_hours) with what their platforms say at `now` (default: the clock)."""
    now = now or datetime.now(timezone.utc)
    lookback = timedelta(hours=lookback_hours if lookback_hours is not None else get_settings().drift_lookback_hours)
    with engine().connect() as conn:
        active = list(conn.execute(select(shops.c.code).where(shops.c.active.is_(True)).order_by(shops.c.code))
                      .scalars())
    futures = {code: check_shop_drift.submit(code, now, lookback) for code in active}
    results: dict[str, ShopDrift] = {}
    failed: dict[str, str] = {}
    for code, future in futures.items():
        future.wait()
        if future.state.is_completed():
            results[code] = future.result()
        else:
            failed[code] = future.state.message or "failed"
    with engine().connect() as conn:
        report = drift_report(conn)
    create_markdown_artifact(key="status-drift", markdown=drift_markdown(results, report, failed),
                             description="Status drift: top kinds, repairs and interceptions")
    if failed:
        raise RuntimeError(f"status drift check failed for {sorted(failed)}: {failed}")
    return results


def drift_markdown(results: dict[str, ShopDrift], report: DriftReport, failed: dict[str, str]) -> str:
    found = [f for summary in results.values() for f in summary.found]
    lines = ["# Status drift", "",
             f"{sum(s.checked for s in results.values())} orders compared in {len(results)} shop(s); "
             f"{len(found)} drift(s) seen, {sum(f.new for f in found)} new; "
             f"{sum(s.interceptions_raised for s in results.values())} interception(s) raised.", ""]
    lines += ["## Top kinds (open drifts)", ""]
    if report.top_kinds:
        lines += ["| kind | open | oldest since |", "|---|---|---|"]
        lines += [f"| {kind} | {n} | {report.oldest_since[kind].isoformat(timespec='minutes')} |"
                  for kind, n in report.top_kinds]
    else:
        lines.append("No open drift.")
    seen_now = Counter(f.kind for f in found)
    if seen_now:
        lines += ["", "## Seen in this run", "", "| kind | orders | action | examples |", "|---|---|---|---|"]
        for kind, n in seen_now.most_common():
            of_kind = [f for f in found if f.kind == kind]
            actions = ", ".join(sorted({f.action for f in of_kind}))
            examples = ", ".join(f.platform_order_id for f in of_kind[:EXAMPLES_PER_KIND])
            lines.append(f"| {kind} | {n} | {actions} | {examples} |")
    lines += ["", "## Per shop", "", "| shop | compared | drifts | new | repaired | interceptions | open |",
              "|---|---|---|---|---|---|---|"]
    for code, summary in sorted(results.items()):
        lines.append(f"| {code} | {summary.checked} | {len(summary.found)} | {sum(f.new for f in summary.found)} | "
                     f"{sum(f.action == 'repaired' for f in summary.found)} | {summary.interceptions_raised} | "
                     f"{report.open_by_shop.get(code, 0)} |")
    if report.interceptions_open:
        lines += ["", "## Interceptions waiting", "", "| shop | order | carrier | tracking | state | since |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {i['shop_code']} | {i['platform_order_id']} | {i['carrier']} | {i['tracking_number']} | "
                  f"{i['state']} | {i['created_at'].isoformat(timespec='minutes')} |"
                  for i in report.interceptions_open]
    if failed:
        lines += ["", "## Not checked", ""] + [f"- {code}: {message}" for code, message in sorted(failed.items())]
    return "\n".join(lines) + "\n"
