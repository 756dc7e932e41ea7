"""Alert senders against the sandbox alerts app: webhook receiver and SMTP receiver."""

from __future__ import annotations

import smtplib
import socket

import pytest
import requests

from leadflow.alerts_transport import AlertDeliveryError, post_webhook, send_email
from sandbox import alerts
from sandbox.core import Clock, Sandbox, parse_instant

NOW = "2026-01-05T00:00:00Z"


@pytest.fixture
def served():
    sandbox = Sandbox({"format": 1, "settings": {"alerts": {"smtp_port": 0}}}, Clock(parse_instant(NOW)))
    app = alerts.create_app(sandbox)
    sandbox.add_app(app)
    url = sandbox.serve(ports={"alerts": 0})["alerts"]
    yield sandbox, app, url
    app.stop_smtp()
    sandbox.stop()


@pytest.fixture
def smtp(served):
    sandbox, app, url = served
    port = app.start_smtp()
    return app, url, port


def state(url: str) -> dict:
    return requests.get(f"{url}/_sandbox/state", timeout=5).json()


def test_create_app_binds_no_smtp_port():
    sandbox = Sandbox({"format": 1})
    app = alerts.create_app(sandbox)
    assert app.smtp_port is None
    assert app.configured_smtp_port == 18025


def test_post_webhook_is_recorded(served):
    _, _, url = served
    post_webhook(f"{url}/hooks/T000/B000/secret123", "Lead flow: 3 leads waiting for review")
    assert state(url)["webhooks"] == [
        {
            "path": "/hooks/T000/B000/secret123",
            "body": {"text": "Lead flow: 3 leads waiting for review"},
            "received_at": "2026-01-05T00:00:00+00:00",
        }
    ]


def test_webhook_answers_plain_ok(served):
    _, _, url = served
    response = requests.post(f"{url}/hooks/x", json={"text": "hi", "blocks": [{"type": "section"}]}, timeout=5)
    assert response.status_code == 200
    assert response.text == "ok"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert state(url)["webhooks"][0]["body"]["blocks"] == [{"type": "section"}]


@pytest.mark.parametrize(
    ("kwargs", "status", "text"),
    [
        ({"json": {"blocks": []}}, 400, "no_text"),
        ({"json": ["text"]}, 400, "invalid_payload"),
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "invalid_payload"),
    ],
)
def test_webhook_rejects_bad_payload(served, kwargs, status, text):
    _, _, url = served
    response = requests.post(f"{url}/hooks/x", timeout=5, **kwargs)
    assert response.status_code == status
    assert response.text == text
    assert state(url)["webhooks"] == []


def test_post_webhook_raises_without_leaking_path(served):
    _, _, url = served
    with pytest.raises(AlertDeliveryError) as raised:
        post_webhook(f"{url}/not-a-hook/secret123", "text")
    assert "HTTP 404" in str(raised.value)
    assert "secret123" not in str(raised.value)


def test_post_webhook_raises_on_server_error(served):
    _, _, url = served
    requests.post(f"{url}/_sandbox/faults", json={"kind": "status", "status": 500}, timeout=5)
    with pytest.raises(AlertDeliveryError, match="HTTP 500"):
        post_webhook(f"{url}/hooks/x", "text")


def test_post_webhook_raises_when_unreachable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(AlertDeliveryError, match="ConnectionError"):
        post_webhook(f"http://127.0.0.1:{port}/hooks/x", "text", timeout=2)


def test_send_email_is_recorded(smtp):
    app, url, port = smtp
    assert port == app.smtp_port
    assert port != 0
    body = "Salesforce pull stopped: daily API allocation used up.\n.dot-led line survives\nEnd"
    send_email(
        "127.0.0.1",
        port,
        "leadflow@example.com",
        ["ops@example.com", "oncall@example.org"],
        "[lead flow] Salesforce quota exhausted",
        body,
    )
    emails = state(url)["emails"]
    assert emails == [
        {
            "from": "leadflow@example.com",
            "to": ["ops@example.com", "oncall@example.org"],
            "subject": "[lead flow] Salesforce quota exhausted",
            # EmailMessage.set_content ends the text with a newline.
            "body": body + "\n",
            "received_at": "2026-01-05T00:00:00+00:00",
        }
    ]


def test_send_email_non_ascii_subject_and_body(smtp):
    _, url, port = smtp
    send_email("127.0.0.1", port, "leadflow@example.com", ["ops@example.com"], "Prüfung fällig – 2 Leads", "Grüße\n")
    email = state(url)["emails"][0]
    assert email["subject"] == "Prüfung fällig – 2 Leads"
    assert email["body"] == "Grüße\n"


def test_send_email_login_fails_without_auth(smtp):
    _, url, port = smtp
    with pytest.raises(AlertDeliveryError, match="SMTPNotSupportedError"):
        send_email("127.0.0.1", port, "a@example.com", ["b@example.com"], "s", "b", login="user", password="pw")
    assert state(url)["emails"] == []


def test_send_email_tls_fails_without_starttls(smtp):
    _, _, port = smtp
    with pytest.raises(AlertDeliveryError, match="SMTPNotSupportedError"):
        send_email("127.0.0.1", port, "a@example.com", ["b@example.com"], "s", "b", use_tls=True)


def test_send_email_needs_recipients():
    with pytest.raises(ValueError, match="at least one recipient"):
        send_email("127.0.0.1", 1, "a@example.com", [], "s", "b")


def test_smtp_protocol_errors_and_reset(smtp):
    app, url, port = smtp
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        assert client.docmd("MAIL", "FROM:<a@example.com>")[0] == 503
        assert client.ehlo()[0] == 250
        assert client.has_extn("8bitmime")
        assert not client.has_extn("auth")
        assert not client.has_extn("starttls")
        assert client.docmd("RCPT", "TO:<b@example.com>")[0] == 503
        assert client.docmd("DATA")[0] == 503
        assert client.docmd("MAIL", "FROM:a@example.com")[0] == 501
        assert client.docmd("MAIL", "FROM:<a@example.com> BODY=8BITMIME")[0] == 250
        assert client.docmd("MAIL", "FROM:<a@example.com>")[0] == 503
        assert client.docmd("RCPT", "TO:<>")[0] == 501
        assert client.docmd("RCPT", "TO:<dropped@example.com>")[0] == 250
        assert client.rset()[0] == 250
        assert client.docmd("DATA")[0] == 503
        assert client.noop()[0] == 250
        assert client.docmd("AUTH", "PLAIN")[0] == 502
        assert client.docmd("BOGUS")[0] == 500
        assert client.docmd("HELO")[0] == 501
        client.sendmail("a@example.com", ["kept@example.com"], "Subject: after reset\r\n\r\nkept\r\n")
    emails = state(url)["emails"]
    assert [(e["to"], e["subject"], e["body"]) for e in emails] == [(["kept@example.com"], "after reset", "kept\n")]


def test_smtp_two_messages_one_session(smtp):
    _, url, port = smtp
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.helo("tester")
        client.sendmail("a@example.com", ["one@example.com"], "Subject: first\r\n\r\n1\r\n")
        client.sendmail("a@example.com", ["two@example.com"], "Subject: second\r\n\r\n..2\r\n")
    emails = state(url)["emails"]
    assert [(e["to"], e["subject"], e["body"]) for e in emails] == [
        (["one@example.com"], "first", "1\n"),
        (["two@example.com"], "second", "..2\n"),
    ]


def test_stop_smtp_releases_port(served):
    _, app, _ = served
    port = app.start_smtp()
    assert app.start_smtp() == port
    app.stop_smtp()
    assert app.smtp_port is None
    with pytest.raises(AlertDeliveryError, match="ConnectionRefusedError"):
        send_email("127.0.0.1", port, "a@example.com", ["b@example.com"], "s", "b", timeout=2)
