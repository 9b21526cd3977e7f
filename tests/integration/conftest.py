"""Fixtures for tests that talk to the sandbox over real HTTP.

One sandbox server runs for the whole session; each test gets its own shop name, so
tests never see each other's orders, and faults are cleared after every test.
"""

from __future__ import annotations

import itertools

import pytest

from sandbox.model import SandboxState
from sandbox.server import running_sandbox

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
