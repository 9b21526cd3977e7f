"""`check-connector-health`: probe every active shop, and show the table in the UI.

The run completes even when shops are down: trouble is reported as alert events, once
per incident, and a run failing every three minutes would only add a second, noisier
alert for the same trouble.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prefect import flow
from prefect.artifacts import create_table_artifact

from oms.db.shops import active_shop_codes
from tasks.health import ShopHealth, probe_shops
from tasks.resources import engine

ARTIFACT_KEY = "connector-health"


@dataclass
class HealthReport:
    shops: list[ShopHealth] = field(default_factory=list)

    @property
    def answering(self) -> list[str]:
        return [line.shop for line in self.shops if line.ok]

    @property
    def down(self) -> list[str]:
        return [line.shop for line in self.shops if line.alert_state.startswith("down")]

    @property
    def stalled(self) -> list[str]:
        return [line.shop for line in self.shops if line.alert_state == "stalled"]


@flow(name="check-connector-health")
def check_connector_health() -> HealthReport:
    with engine().connect() as conn:
        shop_codes = active_shop_codes(conn)
    report = HealthReport(probe_shops(shop_codes))
    _publish(report)
    return report


def _publish(report: HealthReport) -> None:
    if not report.shops:
        return
    create_table_artifact(
        key=ARTIFACT_KEY, table=[line.as_row() for line in report.shops],
        description=(f"Connector health: {len(report.answering)} of {len(report.shops)} shops "
                     f"answer; down: {', '.join(report.down) or 'none'}; "
                     f"stalled: {', '.join(report.stalled) or 'none'}"),
    )
