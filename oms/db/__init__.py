"""Storage: schema, engine, migrations and the repositories the tasks call."""
