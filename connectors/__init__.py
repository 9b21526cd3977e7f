"""Connectors: the edge of the system, one module per marketplace and per carrier."""
