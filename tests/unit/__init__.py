"""Unit tests of pure code: no database, no network."""
