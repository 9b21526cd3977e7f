"""The channel blocks against a loopback robot: what they send, and how they fail."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import socket
import socketserver
import threading
import time
from email import message_from_bytes

import pytest
from prefect.blocks.abstract import NotificationError

from tasks.alert_channels import (
    DingTalkRobot,
    JsonWebhook,
    SlackIncomingWebhook,
    SmtpEmail,
    WeComRobot,
)

DINGTALK_TOKEN = "token-0b1c2d3e4f"
DINGTALK_SECRET = "SEC0123456789abcdef"
WECOM_KEY = "key-6a5b4c3d2e1f"


def notify(block, body: str, subject: str | None = None) -> None:
    asyncio.run(block.notify(body=body, subject=subject))


def expected_sign(secret: str, timestamp: str) -> str:
    """DingTalk's documented recipe, written out independently of the module under test."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode("utf-8"), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def test_dingtalk_signs_each_message_with_a_fresh_timestamp_the_secret_verifies(receiver):
    robot = DingTalkRobot(webhook_url=f"{receiver.url}/robot/send?access_token={DINGTALK_TOKEN}",
                          secret=DINGTALK_SECRET)
    before = time.time() * 1000
    notify(robot, "Shop s1 (taobao) cannot refresh its token.", "Token refresh failed")
    [request] = receiver.wait_for(1, 5, lambda r: r.query.get("access_token") == DINGTALK_TOKEN)
    assert request.path == "/robot/send"
    assert before - 1000 <= int(request.query["timestamp"]) <= time.time() * 1000
    assert request.query["sign"] == expected_sign(DINGTALK_SECRET, request.query["timestamp"])
    assert request.body == {"msgtype": "text", "text": {
        "content": "Token refresh failed\nShop s1 (taobao) cannot refresh its token."}}


def test_a_robot_refusing_with_an_errcode_in_a_200_answer_is_a_failure(receiver):
    receiver.answer("/robot/refuses", 200, {"errcode": 310000, "errmsg": "sign not match"})
    robot = DingTalkRobot(webhook_url=f"{receiver.url}/robot/refuses?access_token={DINGTALK_TOKEN}",
                          secret=DINGTALK_SECRET)
    with pytest.raises(NotificationError) as raised:
        notify(robot, "body")
    assert "errcode 310000" in raised.value.log and "sign not match" in raised.value.log
    assert DINGTALK_TOKEN not in raised.value.log and DINGTALK_SECRET not in raised.value.log


def test_wecom_posts_a_text_message_and_an_http_error_never_shows_the_key(receiver):
    robot = WeComRobot(webhook_url=f"{receiver.url}/cgi-bin/webhook/send?key={WECOM_KEY}")
    notify(robot, "body text", "subject line")
    [request] = receiver.wait_for(1, 5, lambda r: r.query.get("key") == WECOM_KEY)
    assert request.body == {"msgtype": "text", "text": {"content": "subject line\nbody text"}}

    # A proxy in the way that echoes the URL back must not get the key into the error.
    receiver.answer("/cgi-bin/webhook/broken", 502, {"error": f"bad gateway for ?key={WECOM_KEY}"})
    broken = WeComRobot(webhook_url=f"{receiver.url}/cgi-bin/webhook/broken?key={WECOM_KEY}")
    with pytest.raises(NotificationError) as raised:
        notify(broken, "body")
    assert "HTTP 502" in str(raised.value) and WECOM_KEY not in str(raised.value)


def test_an_unreachable_robot_is_a_failure_that_does_not_name_its_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    robot = WeComRobot(webhook_url=f"http://127.0.0.1:{closed_port}/send?key={WECOM_KEY}", timeout_seconds=2)
    with pytest.raises(NotificationError) as raised:
        notify(robot, "body")
    assert "could not be reached" in raised.value.log and WECOM_KEY not in raised.value.log


def test_slack_and_plain_webhooks_post_to_any_url(receiver):
    notify(SlackIncomingWebhook(webhook_url=f"{receiver.url}/services/T0AAAAAAA/B0BBBBBBB/slacktoken12345"),
           "the body", "the subject")
    notify(JsonWebhook(webhook_url=f"{receiver.url}/hooks/oms?token=hooktoken"), "the body", "the subject")
    slack, = receiver.wait_for(1, 5, lambda r: r.path.startswith("/services/"))
    hook, = receiver.wait_for(1, 5, lambda r: r.path == "/hooks/oms")
    assert slack.body == {"text": "the subject\nthe body"}
    assert hook.body == {"subject": "the subject", "body": "the body", "text": "the subject\nthe body"}


class FakeSmtpServer(socketserver.ThreadingTCPServer):
    """Just enough SMTP for smtplib: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.messages: list[dict] = []
        super().__init__(("127.0.0.1", 0), self.Session)

    class Session(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(f"{line}\r\n".encode())

        def handle(self) -> None:
            envelope = {"rcpt": []}
            self.reply("220 fake ESMTP")
            for raw in self.rfile:
                command = raw.decode().rstrip("\r\n")
                verb = command.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    self.reply("250-fake")
                    self.reply("250 AUTH PLAIN")
                elif verb == "AUTH":
                    envelope["auth"] = base64.b64decode(command.split()[2]).decode()
                    self.reply("235 ok")
                elif verb in ("MAIL", "RSET", "NOOP"):
                    self.reply("250 ok")
                elif verb == "RCPT":
                    envelope["rcpt"].append(command.split(":", 1)[1].strip("<> "))
                    self.reply("250 ok")
                elif verb == "DATA":
                    self.reply("354 go on")
                    lines = []
                    for data in self.rfile:
                        if data in (b".\r\n", b".\n"):
                            break
                        lines.append(data)
                    envelope["message"] = message_from_bytes(b"".join(lines))
                    self.server.messages.append(envelope)
                    self.reply("250 queued")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("502 not here")


@pytest.fixture
def smtp_server():
    server = FakeSmtpServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_email_logs_in_and_sends_the_subject_and_body_to_every_recipient(smtp_server):
    port = smtp_server.server_address[1]
    mail = SmtpEmail(host="127.0.0.1", port=port, username="alerts", password="smtp-pass-77",
                     from_addr="alerts@example.com", to_addrs=["a@example.com", "b@example.com"],
                     starttls=False)
    notify(mail, "Shop s1 cannot refresh its token.", "Token refresh failed")
    [sent] = smtp_server.messages
    assert sent["auth"] == "\0alerts\0smtp-pass-77"
    assert sent["rcpt"] == ["a@example.com", "b@example.com"]
    assert sent["message"]["Subject"] == "Token refresh failed"
    assert sent["message"].get_payload().strip() == "Shop s1 cannot refresh its token."


def test_email_to_a_server_that_is_not_there_fails_without_the_password():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    mail = SmtpEmail(host="127.0.0.1", port=closed_port, username="alerts", password="smtp-pass-77",
                     from_addr="alerts@example.com", to_addrs=["a@example.com"], timeout_seconds=2)
    with pytest.raises(NotificationError) as raised:
        notify(mail, "body")
    assert "Email via 127.0.0.1" in raised.value.log and "smtp-pass-77" not in raised.value.log
