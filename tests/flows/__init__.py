"""Flow tests: the real Prefect engine under one session-scoped test harness."""
