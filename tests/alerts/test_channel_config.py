"""Reading config/alerts.yaml: secrets come from the environment and never show."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.alert_channels import (
    AlertConfigError,
    DingTalkRobot,
    SmtpEmail,
    WeComRobot,
    load_channels,
)

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_channel_gets_its_secrets_from_the_variables_it_names(tmp_path):
    path = write(tmp_path, "channels:\n"
                 "  - {name: oncall-dingtalk, kind: dingtalk, url_env: DT_URL, secret_env: DT_SECRET}\n")
    [channel] = load_channels(path, {"DT_URL": "https://oapi.dingtalk.com/robot/send?access_token=tok123456",
                                     "DT_SECRET": "SECsecretsecret"})
    assert channel.configured and isinstance(channel.block, DingTalkRobot)
    assert channel.block.webhook_url.get_secret_value().endswith("access_token=tok123456")
    assert channel.block.secret.get_secret_value() == "SECsecretsecret"


def test_a_channel_whose_variable_is_unset_is_skipped_and_names_the_variable(tmp_path):
    path = write(tmp_path, "channels:\n"
                 "  - {name: oncall-wecom, kind: wecom, url_env: WECOM_URL}\n"
                 "  - {name: oncall-dingtalk, kind: dingtalk, url_env: DT_URL, secret_env: DT_SECRET}\n")
    wecom, dingtalk = load_channels(path, {"WECOM_URL": "https://qyapi.weixin.qq.com/x?key=k", "DT_URL": ""})
    assert isinstance(wecom.block, WeComRobot)
    assert not dingtalk.configured
    assert dingtalk.missing_env == ("DT_URL", "DT_SECRET")


def test_no_secret_shows_in_the_repr_of_a_channel(tmp_path):
    path = write(tmp_path, "channels:\n"
                 "  - {name: oncall-dingtalk, kind: dingtalk, url_env: DT_URL, secret_env: DT_SECRET}\n"
                 "  - {name: mail, kind: email, host: smtp.example.com, from_addr: a@example.com,\n"
                 "     to_addrs: [b@example.com], username: a, password_env: SMTP_PASSWORD}\n")
    environ = {"DT_URL": "https://oapi.dingtalk.com/robot/send?access_token=tok-5e1f0c2a",
               "DT_SECRET": "SEC-9a8b7c6d", "SMTP_PASSWORD": "hunter2-pass"}
    channels = load_channels(path, environ)
    shown = repr(channels) + str(channels) + "".join(repr(channel.block.model_dump()) for channel in channels)
    for secret in ("tok-5e1f0c2a", "SEC-9a8b7c6d", "hunter2-pass"):
        assert secret not in shown
    assert isinstance(channels[1].block, SmtpEmail) and channels[1].block.port == 587


def test_an_unknown_kind_is_an_error_naming_the_channel(tmp_path):
    path = write(tmp_path, "channels:\n  - {name: oncall-pager, kind: pager, url_env: X}\n")
    with pytest.raises(AlertConfigError, match=r"'oncall-pager'.*unknown kind 'pager'"):
        load_channels(path, {})


def test_a_missing_required_setting_is_an_error_naming_the_channel_and_setting(tmp_path):
    path = write(tmp_path, "channels:\n  - {name: oncall-dingtalk, kind: dingtalk, url_env: DT_URL}\n")
    with pytest.raises(AlertConfigError, match=r"'oncall-dingtalk' \(dingtalk\).*secret_env"):
        load_channels(path, {"DT_URL": "https://example.com"})


def test_a_misspelt_setting_is_an_error_rather_than_ignored(tmp_path):
    path = write(tmp_path, "channels:\n  - {name: oncall-wecom, kind: wecom, url_evn: WECOM_URL}\n")
    with pytest.raises(AlertConfigError, match=r"'oncall-wecom'.*unknown setting\(s\) url_evn"):
        load_channels(path, {})


def test_an_invalid_value_is_reported_without_echoing_it(tmp_path):
    path = write(tmp_path, "channels:\n  - {name: mail, kind: email, host: smtp.example.com,\n"
                 "     from_addr: a@example.com, to_addrs: [], port: not-a-port, password_env: SMTP_PASSWORD}\n")
    with pytest.raises(AlertConfigError) as raised:
        load_channels(path, {"SMTP_PASSWORD": "hunter2-pass"})
    assert "'mail'" in str(raised.value) and "port" in str(raised.value)
    assert "hunter2-pass" not in str(raised.value) and "not-a-port" not in str(raised.value)


def test_two_channels_with_one_name_are_an_error(tmp_path):
    path = write(tmp_path, "channels:\n  - {name: a, kind: wecom, url_env: X}\n"
                 "  - {name: a, kind: slack, url_env: Y}\n")
    with pytest.raises(AlertConfigError, match="'a' is used twice"):
        load_channels(path, {})


def test_the_default_setting_points_at_the_shipped_file_whose_channels_all_load(monkeypatch):
    from oms.config import get_settings, reset_settings

    monkeypatch.delenv("OMS_ALERTS_CONFIG_PATH", raising=False)
    reset_settings()
    assert get_settings().alerts_config_path == Path("config/alerts.yaml")
    channels = load_channels(REPO / "config" / "alerts.yaml", {})
    assert [c.kind for c in channels] == ["wecom", "dingtalk", "slack"]
    assert not any(c.configured for c in channels)  # nothing secret in the file itself


def test_the_setting_can_point_at_another_file(tmp_path, monkeypatch):
    from oms.config import reset_settings

    path = write(tmp_path, "channels:\n  - {name: elsewhere, kind: slack, url_env: OMS_TEST_SLACK}\n")
    monkeypatch.setenv("OMS_ALERTS_CONFIG_PATH", str(path))
    monkeypatch.setenv("OMS_TEST_SLACK", "https://hooks.slack.com/services/T1/B2/C3")
    reset_settings()
    try:
        assert [c.name for c in load_channels()] == ["elsewhere"]
    finally:
        monkeypatch.undo()
        reset_settings()
