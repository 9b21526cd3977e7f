"""An operator approves a refund in the Prefect UI: the paused run's form, in Chromium.

The test starts its own Prefect server; another process (`refund_runner`) brings a refund
request in from a sandbox Taobao shop through the real flows and runs `approve-refund`,
which pauses at supervisor review. The test then does what the operator does: opens the run, presses
Resume, reads the request above the form, answers it and submits. An amount above the
request is refused by the UI and the run stays paused; the corrected answer completes it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.prefect_server import REPO, PrefectServer

WAIT_MS = 30_000


def test_an_operator_approves_a_paused_refund_in_the_prefect_ui(browser, prefect_server, artifacts_dir,
                                                                 tmp_path):
    runner_log = tmp_path / "runner.log"
    database_url = f"sqlite:///{tmp_path / 'oms.db'}"
    env = {**prefect_server.client_environment(tmp_path / "client-home"), "OMS_DATABASE_URL": database_url}
    with runner_log.open("w") as log:
        runner = subprocess.Popen([sys.executable, "-m", "tests.e2e.refund_runner", database_url, "120.00"],
                                  cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        run_id = _wait_for_paused_run(prefect_server, runner, runner_log)
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{prefect_server.ui_url}/runs/flow-run/{run_id}")
        page.get_by_role("button", name="Resume").first.click()
        form = page.locator(".p-modal")
        # The description tells the operator what they decide on, without the buyer's phone.
        form.get_by_role("heading", name="Refund taobao-70000001 — supervisor review").wait_for()
        for shown in ("(taobao)", "商品破损 (damaged)", "120.00 CNY of", "Platform deadline",
                      "Buyer's refund history", "supervisor decides here: amount 120.00 <= 200"):
            assert form.get_by_text(shown).count() >= 1, f"{shown!r} is not on the approval form"
        assert form.get_by_role("heading", name="Items").count() == 1

        _choose(page, form, "Decision", "approve")
        _field(page, form, "Approved Amount").locator("input").fill("999")
        _field(page, form, "Note").locator("textarea").fill("Photos show the teapot broken in transit")
        _field(page, form, "Approver").locator("textarea").fill("supervisor.li")
        form.get_by_role("button", name="Submit").click()
        page.get_by_text("greater than the maximum").first.wait_for()
        assert _state(prefect_server, run_id) == "PAUSED", "an amount above the request resumed the run"

        _field(page, form, "Approved Amount").locator("input").fill("120")
        screenshot = artifacts_dir / "approval-form.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"approval form screenshot: {screenshot}")
        form.get_by_role("button", name="Submit").click()

        runner.wait(timeout=WAIT_MS / 1000)
        output = runner_log.read_text()
        assert runner.returncode == 0, output[-3000:]
        outcome = json.loads(output.strip().splitlines()[-1])
        assert (outcome["outcome"], outcome["approved_amount"], outcome["decided_by"]) == \
            ("refunded", "120.00", "person: supervisor.li")
        # The platform was told to pay what the operator approved.
        assert [(a["agree"], Decimal(a["amount"])) for a in outcome["platform_answers"]] == [("True", Decimal("120"))]
        assert _state(prefect_server, run_id) == "COMPLETED"
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(timeout=10)


def _field(page, form, label: str):
    return form.locator(".schema-form-property").filter(
        has=page.locator(".schema-form-property__label", has_text=label))


def _choose(page, form, label: str, option: str) -> None:
    # The select opens from the keyboard; a mouse click on it only focuses it.
    _field(page, form, label).locator("button.p-select-button__control").press("ArrowDown")
    page.get_by_role("option", name=option, exact=True).click()


def _state(server: PrefectServer, run_id: str) -> str:
    return httpx.get(f"{server.api_url}/flow_runs/{run_id}", timeout=10).json()["state"]["type"]


def _wait_for_paused_run(server: PrefectServer, runner: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        if runner.poll() is not None:
            pytest.fail(f"the flow ended before it paused:\n{log.read_text()[-3000:]}")
        paused = httpx.post(f"{server.api_url}/flow_runs/filter", timeout=10,
                            json={"flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}}).json()
        if paused:
            return paused[0]["id"]
        time.sleep(0.3)
    pytest.fail(f"no paused run after {WAIT_MS / 1000:.0f} s:\n{log.read_text()[-3000:]}")
