"""Prefect tasks: one module per lifecycle step, thin glue between connectors and storage."""
