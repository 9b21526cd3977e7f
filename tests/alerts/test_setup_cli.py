"""`oms alerts setup` and `oms alerts test` against a real Prefect server."""

from __future__ import annotations

import ast
import re
import base64
import hashlib
import hmac
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.sorting import AutomationSort
from prefect.events.actions import SendNotification
from prefect.settings import PREFECT_API_URL, temporary_settings

from oms.cli import main
from tasks.alert_setup import (
    ALERTS_AUTOMATION,
    FAILED_RUNS_AUTOMATION,
    RESOLVED_AUTOMATION,
    WATCHED_FLOWS,
    alert_automations,
)
from tasks.alerts import RESOLVED_EVENTS, TROUBLE_EVENTS

FLOWS = Path(__file__).resolve().parents[2] / "flows"
OURS = (ALERTS_AUTOMATION, RESOLVED_AUTOMATION, FAILED_RUNS_AUTOMATION)


def flow_names_in(folder: Path) -> set[str]:
    """The name of every `@flow` in the folder, as Prefect would register it."""
    names = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                target = call.func if call else decorator
                if getattr(target, "id", getattr(target, "attr", None)) != "flow":
                    continue
                given = [k.value.value for k in (call.keywords if call else []) if k.arg == "name"]
                names.add(given[0] if given else node.name.replace("_", "-"))
    return names


def test_the_failed_runs_automation_watches_exactly_the_flows_in_flows():
    assert set(WATCHED_FLOWS) == flow_names_in(FLOWS)


def test_setup_twice_leaves_one_of_each_automation_and_block(alerting, capsys):
    assert main(["alerts", "setup"]) == 0
    assert main(["alerts", "setup", "--config", str(alerting.config_path)]) == 0
    output = capsys.readouterr().out
    assert "oncall-wecom" in output and "oncall-dingtalk" in output
    assert re.search(r"oncall-slack +slack +skipped +set OMS_TEST_SLACK_URL_NEVER_SET", output)
    assert output.count("updated") == 6  # three automations, twice

    with get_client(sync_client=True) as client:
        # Prefect 3.8's sync client sends limit, offset and sort as null unless given (a 422).
        automations = [a for a in client.read_automations(limit=200, sort=AutomationSort.NAME_ASC)
                       if a.name.startswith("oms-")]
        blocks = {document.name: document.id for document in client.read_block_documents(
                      limit=200, offset=0, include_secrets=False)
                  if document.name.startswith("oncall-")}
    assert sorted(a.name for a in automations) == sorted(OURS)
    assert sorted(blocks) == ["oncall-dingtalk", "oncall-wecom"]
    for automation in automations:
        assert automation.enabled
        assert {a.block_document_id for a in automation.actions} == set(blocks.values())
    for secret in alerting.secrets:
        assert secret not in output


def test_setup_from_a_machine_without_a_channels_variable_keeps_the_saved_channel(
        alerting, monkeypatch, capsys):
    monkeypatch.delenv("OMS_TEST_WECOM_URL")
    assert main(["alerts", "setup"]) == 0
    assert re.search(r"oncall-wecom +wecom +kept +OMS_TEST_WECOM_URL unset here", capsys.readouterr().out)
    with get_client(sync_client=True) as client:
        [automation] = client.read_automations_by_name(ALERTS_AUTOMATION)
        wecom = client.read_block_document_by_name("oncall-wecom", "oms-wecom-robot")
    assert wecom.id in {action.block_document_id for action in automation.actions}
    assert wecom.data["webhook_url"].endswith(alerting.wecom_key)  # the saved URL, untouched


def test_setup_refuses_to_run_without_a_prefect_server(tmp_path, capsys):
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert main(["alerts", "setup", "--config", str(tmp_path / "unused.yaml")]) == 2
    assert "set PREFECT_API_URL" in capsys.readouterr().err


def test_setup_removes_a_second_automation_of_the_same_name(alerting):
    with get_client(sync_client=True) as client:
        wecom = client.read_block_document_by_name("oncall-wecom", "oms-wecom-robot")
        made_by_hand = alert_automations([wecom.id])[0].model_copy(update={"enabled": False})
        client.create_automation(made_by_hand)
        assert len(client.read_automations_by_name(ALERTS_AUTOMATION)) == 2
    assert main(["alerts", "setup"]) == 0
    with get_client(sync_client=True) as client:
        [kept] = client.read_automations_by_name(ALERTS_AUTOMATION)
    assert kept.enabled and len(kept.actions) == 2


def test_the_automations_match_the_alert_events_and_our_flows(alerting):
    with get_client(sync_client=True) as client:
        by_name = {name: client.read_automations_by_name(name)[0] for name in OURS}
    assert by_name[ALERTS_AUTOMATION].trigger.expect == set(TROUBLE_EVENTS)
    assert by_name[RESOLVED_AUTOMATION].trigger.expect == set(RESOLVED_EVENTS)
    failed_runs = by_name[FAILED_RUNS_AUTOMATION].trigger
    assert failed_runs.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    assert failed_runs.match_related.model_dump() == {"prefect.resource.role": "flow",
                                                      "prefect.resource.name": list(WATCHED_FLOWS)}
    for automation in by_name.values():
        assert automation.trigger.posture == "Reactive" and automation.trigger.threshold == 1
        assert automation.trigger.for_each == {"prefect.resource.id"}
        assert all(isinstance(action, SendNotification) for action in automation.actions)
    [alert_action, *_] = by_name[ALERTS_AUTOMATION].actions
    assert (alert_action.subject, alert_action.body) == ("{{ event.payload.headline }}",
                                                         "{{ event.payload.message }}")
    assert by_name[RESOLVED_AUTOMATION].actions[0].subject.startswith("RESOLVED: ")


def test_alerts_test_delivers_one_message_per_channel_and_dingtalk_signs_it(alerting, receiver, capsys):
    assert main(["alerts", "test"]) == 0
    output = capsys.readouterr().out
    got = receiver.wait_for(2, 10, lambda r: r.text.startswith("OMS test alert"))
    assert sorted(r.path for r in got) == sorted([alerting.wecom_path, alerting.dingtalk_path])
    assert len(receiver.wait_for(3, 1, lambda r: r.text.startswith("OMS test alert"))) == 2
    [dingtalk] = [r for r in got if r.path == alerting.dingtalk_path]
    digest = hmac.new(alerting.dingtalk_secret.encode(),
                      f"{dingtalk.query['timestamp']}\n{alerting.dingtalk_secret}".encode(), hashlib.sha256)
    assert dingtalk.query["sign"] == base64.b64encode(digest.digest()).decode()
    assert dingtalk.query["access_token"] == alerting.dingtalk_token
    [wecom] = [r for r in got if r.path == alerting.wecom_path]
    assert wecom.query == {"key": alerting.wecom_key}
    lines = {line.split()[0]: line.split()[2] for line in output.splitlines()[1:]}
    assert lines == {"oncall-wecom": "ok", "oncall-dingtalk": "ok", "oncall-slack": "skipped"}


def test_alerts_test_reports_a_refusing_channel_as_an_error_without_its_key(alerting, receiver, capsys):
    receiver.answer(alerting.wecom_path, 200, {"errcode": 93000, "errmsg": "invalid webhook url"})
    assert main(["alerts", "test"]) == 1
    output = capsys.readouterr().out
    [wecom_line] = [line for line in output.splitlines() if line.startswith("oncall-wecom")]
    assert "error" in wecom_line and "errcode 93000" in wecom_line
    assert alerting.wecom_key not in output
