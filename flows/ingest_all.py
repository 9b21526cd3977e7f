"""`ingest-all-shops`: every active shop, each as its own `ingest-orders` run.

One deployment covers however many shops a seller connects: adding a shop is a row in
`shops`, not a new deployment. A shop whose platform is down or whose token lapsed must
not hold back the others, so every shop runs, and the flow fails at the end naming the
shops that did not finish (which is what the failed-run alert then reports).
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from flows.ingest import ingest_orders
from oms.db.shops import active_shop_codes
from tasks.alerts import ALREADY_ALERTED_MARKER
from tasks.resources import engine


@flow(name="ingest-all-shops")
def ingest_all_shops() -> dict[str, dict]:
    with engine().connect() as conn:
        shop_codes = active_shop_codes(conn)
    outcomes: dict[str, dict] = {}
    for shop_code in shop_codes:
        state = ingest_orders(shop_code, return_state=True)
        if state.is_completed():
            report = state.result()
            outcomes[shop_code] = {"shop": shop_code, "outcome": "ok", "fetched": report.fetched,
                                   "stored_new": report.stored_new, "quarantined": report.quarantined}
        else:
            outcomes[shop_code] = {"shop": shop_code, "outcome": "failed", "fetched": 0, "stored_new": 0,
                                   "quarantined": 0, "error": (state.message or "")[:300]}
    if outcomes:
        create_table_artifact(key="ingest-all-shops", table=list(outcomes.values()),
                              description="Every active shop's ingest in this run")
    failed = sorted(code for code, row in outcomes.items() if row["outcome"] == "failed")
    if failed:
        # When every failure is trouble on-call was already told of (a refused token
        # refresh), say so, so the failed-run alert does not page for it again.
        told = all(ALREADY_ALERTED_MARKER in outcomes[code]["error"] for code in failed)
        marker = f"({ALREADY_ALERTED_MARKER}) " if told else ""
        raise RuntimeError(f"{marker}ingest failed for {len(failed)} shop(s): {', '.join(failed)}")
    return outcomes
