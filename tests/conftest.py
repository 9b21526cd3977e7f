"""Shared fixtures: the two databases, and the one sandbox server of the session.

`database_url` is parametrised over SQLite and PostgreSQL. PostgreSQL tests skip when no
server answers, unless OMS_REQUIRE_POSTGRES=1 (set by `.ci/run`), where a missing server
is a failure: CI must never pass by skipping them.
"""

from __future__ import annotations

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

import itertools

import pytest
from sqlalchemy import create_engine, text

from oms.config import reset_settings
from oms.db.engine import dispose_engines, get_engine
from oms.db.migrate import upgrade
from oms.db.schema import metadata
from sandbox.model import SandboxState
from sandbox.server import running_sandbox

POSTGRES_ADMIN_URL = os.environ.get("OMS_TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
# Several sessions on one machine each take their own database (OMS_TEST_POSTGRES_DB).
POSTGRES_TEST_DB = os.environ.get("OMS_TEST_POSTGRES_DB", "oms_test")


def _postgres_url() -> str | None:
    """Create (once) a database of our own beside `test`, so tests never clobber others'."""
    try:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                  {"n": POSTGRES_TEST_DB}).first()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{POSTGRES_TEST_DB}"'))
        admin.dispose()
    except Exception as error:  # no server, no rights: report below
        if os.environ.get("OMS_REQUIRE_POSTGRES") == "1":
            raise RuntimeError(f"PostgreSQL is required here but unreachable: {error}") from error
        return None
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{POSTGRES_TEST_DB}"


def _drop_everything(url: str) -> None:
    """Empty the test database without running downgrades: rows a previous run sealed
    with its own key could not be opened by this run's key."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'oms.db'}"
    else:
        url = _postgres_url()
        if url is None:
            pytest.skip("no PostgreSQL server at 127.0.0.1:5432")
        _drop_everything(url)  # a clean start whatever a previous run left
    upgrade(url)
    yield url
    dispose_engines()


@pytest.fixture
def db(database_url, monkeypatch):
    """An empty database of the current kind, also made the pipeline's configured one."""
    engine = get_engine(database_url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
    monkeypatch.setenv("OMS_DATABASE_URL", database_url)
    reset_settings()
    yield engine
    reset_settings()


# One sandbox server for the whole session; each test gets its own shop name, so tests
# never see each other's orders, and faults are cleared after every test.
_shop_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def sandbox():
    with running_sandbox(SandboxState()) as server:
        yield server


@pytest.fixture(autouse=True)
def _clear_faults(request):
    yield
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").state.faults.clear()


@pytest.fixture
def shop_name():
    return f"test-shop-{next(_shop_numbers)}"
