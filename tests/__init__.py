"""Tests: unit (pure domain), integration (databases, connectors against the sandbox), flows."""
