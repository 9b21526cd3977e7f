"""Where alerts go: the notification blocks of the channels on-call reads, built from
`config/alerts.yaml`.

Prefect core has no block for a WeCom or DingTalk group robot, its Slack block refuses
any URL that is not hooks.slack.com, and its email block needs Sendgrid, so the channels
live here: `WeComRobot`, `DingTalkRobot` (signed), `SlackIncomingWebhook`, `JsonWebhook`
and `SmtpEmail`. Each one raises `NotificationError` when the message did not get
through (a non-2xx answer, or a robot's `errcode` other than 0 in a 200 answer), with a
text that never contains the webhook URL, its key or a password: the server stores that
text in the `prefect.automation.action.failed` event and a raised `httpx` error would
print the URL into the server log.

An automation's send-notification action runs these blocks inside the Prefect server,
which finds a block class only in a module it imported. It imports every module named
by a `prefect.collections` entry point of an installed distribution before it looks a
block class up; that is the only hook, Prefect 3 having dropped PREFECT_EXTRA_ENTRYPOINTS.
So the installed project must declare `oms-alert-channels = "tasks.alert_channels"` in
that group (pyproject.toml; the alert tests lend the server one when it does not), and
this module imports only prefect, httpx and the standard library (the YAML loader
imports yaml and the settings when it is called).

The configuration names every secret by an environment variable (`url_env`,
`secret_env`, `password_env`), never by value. A channel whose variable is unset is
skipped, not an error: one file serves machines that set up only some channels.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import smtplib
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit

import httpx
from pydantic import Field, SecretStr, ValidationError
from prefect.blocks.abstract import NotificationBlock, NotificationError

from tasks.alerts import redact


class WeComRobot(NotificationBlock):
    """A WeCom (企业微信) group robot; its webhook URL carries the robot's key."""

    _block_type_name = "OMS WeCom Robot"
    _block_type_slug = "oms-wecom-robot"

    webhook_url: SecretStr = Field(
        description="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...")
    timeout_seconds: float = 10.0

    async def notify(self, body: str, subject: str | None = None) -> None:
        url = self.webhook_url.get_secret_value()
        await _post_to_robot("WeCom", url, _text_message(subject, body), self.timeout_seconds,
                             hide=_url_secrets(url))


class DingTalkRobot(NotificationBlock):
    """A DingTalk (钉钉) custom robot with the signing security setting."""

    _block_type_name = "OMS DingTalk Robot"
    _block_type_slug = "oms-dingtalk-robot"

    webhook_url: SecretStr = Field(
        description="https://oapi.dingtalk.com/robot/send?access_token=...")
    secret: SecretStr = Field(description="The robot's signing secret (SEC...)")
    timeout_seconds: float = 10.0

    async def notify(self, body: str, subject: str | None = None) -> None:
        url = self.webhook_url.get_secret_value()
        secret = self.secret.get_secret_value()
        # DingTalk refuses a signature older than an hour, so it is made per message.
        timestamp = str(int(time.time() * 1000))
        signed = (f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}"
                  f"&sign={dingtalk_signature(secret, timestamp)}")
        await _post_to_robot("DingTalk", signed, _text_message(subject, body), self.timeout_seconds,
                             hide=[*_url_secrets(url), secret])


class SlackIncomingWebhook(NotificationBlock):
    """A Slack incoming webhook, or anything that takes Slack's `{"text": ...}`."""

    _block_type_name = "OMS Slack Incoming Webhook"
    _block_type_slug = "oms-slack-incoming-webhook"

    webhook_url: SecretStr = Field(description="https://hooks.slack.com/services/...")
    timeout_seconds: float = 10.0

    async def notify(self, body: str, subject: str | None = None) -> None:
        url = self.webhook_url.get_secret_value()
        await _post("Slack", url, {"text": _joined(subject, body)}, self.timeout_seconds,
                    hide=_url_secrets(url))


class JsonWebhook(NotificationBlock):
    """Any HTTP endpoint: POSTs `{"subject", "body", "text"}` as JSON."""

    _block_type_name = "OMS JSON Webhook"
    _block_type_slug = "oms-json-webhook"

    webhook_url: SecretStr = Field(description="The endpoint, with any token it needs")
    timeout_seconds: float = 10.0

    async def notify(self, body: str, subject: str | None = None) -> None:
        url = self.webhook_url.get_secret_value()
        payload = {"subject": subject or "", "body": body, "text": _joined(subject, body)}
        await _post("Webhook", url, payload, self.timeout_seconds, hide=_url_secrets(url))


class SmtpEmail(NotificationBlock):
    """Email through an SMTP server (STARTTLS on the submission port by default)."""

    _block_type_name = "OMS SMTP Email"
    _block_type_slug = "oms-smtp-email"

    host: str
    port: int = 587
    username: str | None = None
    password: SecretStr | None = None
    from_addr: str
    to_addrs: list[str] = Field(min_length=1)
    starttls: bool = True
    timeout_seconds: float = 20.0

    async def notify(self, body: str, subject: str | None = None) -> None:
        # smtplib blocks; the server runs actions on its event loop.
        await asyncio.to_thread(self._send, subject or "OMS alert", body)

    def _send(self, subject: str, body: str) -> None:
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = subject, self.from_addr, ", ".join(self.to_addrs)
        message.set_content(body)
        password = self.password.get_secret_value() if self.password else ""
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, password)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as error:
            raise _failure(f"Email via {self.host}:{self.port} failed: {type(error).__name__}: {error}",
                           hide=[password]) from None


def dingtalk_signature(secret: str, timestamp: str) -> str:
    """DingTalk's `sign`: HMAC-SHA256 of "timestamp\\nsecret" keyed by the secret, base64, URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def _text_message(subject: str | None, body: str) -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": _joined(subject, body)}}


def _joined(subject: str | None, body: str) -> str:
    return f"{subject}\n{body}" if subject else body


async def _post_to_robot(service: str, url: str, payload: dict, timeout: float, hide: list[str]) -> None:
    """POST to a WeCom or DingTalk robot: both answer 200 with an `errcode` when they refuse."""
    answer = await _post(service, url, payload, timeout, hide)
    try:
        reply = answer.json()
    except ValueError:
        raise _failure(f"{service} answered {answer.status_code} with no JSON: {answer.text[:200]}", hide) from None
    if not isinstance(reply, dict) or reply.get("errcode", 0) != 0:
        details = reply if not isinstance(reply, dict) else f"errcode {reply.get('errcode')}: {reply.get('errmsg')}"
        raise _failure(f"{service} refused the message ({details})", hide)


async def _post(service: str, url: str, payload: dict, timeout: float, hide: list[str]) -> httpx.Response:
    # Straight through the transport: an httpx client logs every request's full URL at
    # INFO, and these URLs carry the robots' keys (a server whose root logger is at INFO
    # would write them to its log).
    request = httpx.Request("POST", url, json=payload,
                            extensions={"timeout": httpx.Timeout(timeout).as_dict()})
    try:
        async with httpx.AsyncHTTPTransport() as transport:
            answer = await transport.handle_async_request(request)
            await answer.aread()
    except httpx.HTTPError as error:
        raise _failure(f"{service} could not be reached: {type(error).__name__}: {error}", hide) from None
    if not answer.is_success:
        raise _failure(f"{service} answered HTTP {answer.status_code}: {answer.text[:200]}", hide)
    return answer


def _failure(text: str, hide: list[str]) -> NotificationError:
    # Positional, so that str(error) is the text as well as `error.log`.
    return NotificationError(redact(text, hide))


def _url_secrets(url: str) -> list[str]:
    """The parts of a webhook URL that are keys: the URL, its query values, long path parts
    (Slack puts its tokens in the path)."""
    parts = urlsplit(url)
    return [url, *(value for _, value in parse_qsl(parts.query)),
            *(piece for piece in parts.path.split("/") if len(piece) >= 8)]


# --- configuration -------------------------------------------------------------------


class AlertConfigError(ValueError):
    """The alerts file is unusable; the message names the channel and the setting."""


@dataclass(frozen=True)
class ChannelKind:
    block_class: type[NotificationBlock]
    # `<setting>_env` key in the file -> the block field its variable's value fills.
    secrets: dict[str, str]
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    # Secrets a channel may leave out (SMTP relays without a login).
    optional_secrets: dict[str, str] = field(default_factory=dict)


KINDS: dict[str, ChannelKind] = {
    "wecom": ChannelKind(WeComRobot, {"url_env": "webhook_url"}),
    "dingtalk": ChannelKind(DingTalkRobot, {"url_env": "webhook_url", "secret_env": "secret"}),
    "slack": ChannelKind(SlackIncomingWebhook, {"url_env": "webhook_url"}),
    "webhook": ChannelKind(JsonWebhook, {"url_env": "webhook_url"}),
    "email": ChannelKind(SmtpEmail, {}, required=("host", "from_addr", "to_addrs"),
                         optional=("port", "username", "starttls"),
                         optional_secrets={"password_env": "password"}),
}

BLOCK_CLASSES: tuple[type[NotificationBlock], ...] = tuple(kind.block_class for kind in KINDS.values())


@dataclass(frozen=True)
class Channel:
    """One channel of the file: its block when configured, or the variables it waits for."""

    name: str
    kind: str
    block: NotificationBlock | None = None
    missing_env: tuple[str, ...] = ()

    @property
    def configured(self) -> bool:
        return self.block is not None

    def secret_values(self) -> list[str]:
        """Every secret this channel holds, for scrubbing error texts before they are shown."""
        if self.block is None:
            return []
        values = [value.get_secret_value() for name in type(self.block).model_fields
                  if isinstance(value := getattr(self.block, name), SecretStr)]
        return [part for value in values for part in (_url_secrets(value) if "://" in value else [value])]


def load_channels(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> list[Channel]:
    """The channels of the alerts file (default: the `alerts_config_path` setting)."""
    if path is None:
        from oms.config import get_settings

        path = get_settings().alerts_config_path
    entries = _read_entries(Path(path))
    environ = os.environ if environ is None else environ
    channels = [_channel(entry, index, environ) for index, entry in enumerate(entries)]
    names = [channel.name for channel in channels]
    for name in names:
        if names.count(name) > 1:
            raise AlertConfigError(f"{path}: channel name {name!r} is used twice")
    return channels


def _read_entries(path: Path) -> list:
    import yaml

    if not path.is_file():
        raise AlertConfigError(f"no alerts configuration at {path}")
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = document.get("channels") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise AlertConfigError(f"{path}: expected a top-level 'channels:' list")
    return entries


def _channel(entry: Any, index: int, environ: Mapping[str, str]) -> Channel:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
        raise AlertConfigError(f"channel #{index + 1}: every channel needs a 'name'")
    name, kind_name = entry["name"], entry.get("kind")
    kind = KINDS.get(kind_name)
    if kind is None:
        raise AlertConfigError(f"channel {name!r}: unknown kind {kind_name!r}; "
                               f"expected one of {', '.join(KINDS)}")
    label = f"channel {name!r} ({kind_name})"
    settings = {key: value for key, value in entry.items() if key not in ("name", "kind")}
    allowed = {*kind.secrets, *kind.optional_secrets, *kind.required, *kind.optional}
    if unknown := sorted(set(settings) - allowed):
        raise AlertConfigError(f"{label}: unknown setting(s) {', '.join(unknown)}; "
                               f"allowed: {', '.join(sorted(allowed))}")
    if missing := [key for key in (*kind.secrets, *kind.required) if settings.get(key) in (None, "")]:
        raise AlertConfigError(f"{label}: missing setting(s) {', '.join(missing)}")

    fields = {key: settings[key] for key in (*kind.required, *kind.optional) if key in settings}
    unset: list[str] = []
    for key, block_field in {**kind.secrets, **kind.optional_secrets}.items():
        variable = settings.get(key)
        if variable is None:
            continue
        if not isinstance(variable, str):
            raise AlertConfigError(f"{label}: {key} must name an environment variable")
        value = environ.get(variable, "")
        if value:
            fields[block_field] = value
        else:
            unset.append(variable)
    if unset:
        return Channel(name, kind_name, missing_env=tuple(unset))
    return Channel(name, kind_name, block=_build_block(kind.block_class, fields, label))


def _build_block(block_class: type[NotificationBlock], fields: dict, label: str) -> NotificationBlock:
    try:
        return block_class(**fields)
    except ValidationError as error:
        # Without the inputs: they may be the secrets themselves.
        problems = "; ".join(f"{'.'.join(map(str, issue['loc']))}: {issue['msg']}"
                             for issue in error.errors(include_input=False, include_url=False))
        raise AlertConfigError(f"{label}: {problems}") from None
