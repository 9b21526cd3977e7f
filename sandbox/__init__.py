"""Local simulators of the marketplace and carrier APIs, for the demo and the tests."""
