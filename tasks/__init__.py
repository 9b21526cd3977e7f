"""Prefect tasks: one module per lifecycle step, thin glue between connectors and storage."""

# Every flow imports its tasks, so this is the one place every run passes: phones and
# e-mails are masked in all logs, Prefect's API logs included (see tasks.privacy).
from tasks import privacy as _privacy  # noqa: F401
