"""Alerts to on-call: channel blocks, `oms alerts setup`/`test`, and delivery through a real
Prefect server to a loopback robot."""
