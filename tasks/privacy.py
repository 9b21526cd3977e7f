"""Personal data stays out of Prefect: the log mask on Prefect's loggers, and masked artifacts.

Prefect sends a run's log records to its API through one `APILogHandler`, attached (by
Prefect's logging.yml) to the `prefect.flow_runs` and `prefect.task_runs` loggers that
`get_run_logger()` writes to, and to `prefect.extra` and the extra loggers named in
PREFECT_LOGGING_EXTRA_LOGGERS. The mask goes on those loggers, so a record is masked
where it is made, before any handler (API or console) sees it; a logger keeps its
filters when Prefect reconfigures logging, while handlers are replaced. It also goes on
their handlers and on the root logger's, for records that child loggers propagate.

`import tasks` installs it (tasks/__init__.py), because every flow, however it is
started (a deployment loads `flows/x.py` as a bare script, without the `flows`
package), imports its tasks; the install makes Prefect configure its logging first.
"""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.logging.configuration import ensure_logging_setup
from prefect.settings import PREFECT_LOGGING_EXTRA_LOGGERS

from oms.domain.masking import redact_markdown, redact_table
from oms.logging_privacy import install_personal_data_mask

PREFECT_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "prefect.extra", "prefect")
ROOT_LOGGER = ""


def mask_personal_data_in_logs() -> None:
    """Install the mask on Prefect's run loggers, their API handler and the root (idempotent)."""
    # Prefect configures logging lazily, at the first `prefect.main` import; the
    # handlers must exist before the filter can be put on them.
    ensure_logging_setup()
    extra = PREFECT_LOGGING_EXTRA_LOGGERS.value() or []
    install_personal_data_mask((*PREFECT_RUN_LOGGERS, *extra, ROOT_LOGGER))


def publish_table(key: str, table: Any, description: str | None = None) -> None:
    """A table artifact with personal fields masked by name and phones masked everywhere."""
    create_table_artifact(key=key, table=redact_table(table), description=description)


def publish_markdown(key: str, markdown: str, description: str | None = None) -> None:
    create_markdown_artifact(key=key, markdown=redact_markdown(markdown), description=description)


mask_personal_data_in_logs()
