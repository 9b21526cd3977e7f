"""Prefect flows: compose tasks; their names are the stable names prefect.yaml deploys."""
