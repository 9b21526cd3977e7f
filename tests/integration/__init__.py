"""Integration tests: real databases and real HTTP against the sandbox."""
