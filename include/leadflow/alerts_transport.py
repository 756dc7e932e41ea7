"""Senders that deliver alerts: Slack-style incoming webhooks and SMTP email.

Both raise ``AlertDeliveryError`` when delivery fails. Messages never contain
the webhook URL beyond its host, because the path of an incoming-webhook URL
is its secret.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import urlsplit

import requests

log = logging.getLogger(__name__)


class AlertDeliveryError(Exception):
    """An alert could not be delivered to its webhook or mail server."""


def post_webhook(url: str, text: str, timeout: float = 10) -> None:
    """Post ``{"text": text}`` to an incoming-webhook URL, raising AlertDeliveryError unless the response is 2xx."""
    host = urlsplit(url).netloc or "<no host>"
    try:
        response = requests.post(url, json={"text": text}, timeout=timeout)
    except requests.RequestException as error:
        raise AlertDeliveryError(f"webhook post to {host} failed: {type(error).__name__}") from error
    if not 200 <= response.status_code < 300:
        # A server may echo the request path, which contains the webhook secret.
        detail = response.text
        path = urlsplit(url).path
        if path.strip("/"):
            detail = detail.replace(path, "<webhook path>")
        detail = detail[:200]
        raise AlertDeliveryError(f"webhook post to {host} failed with HTTP {response.status_code}: {detail}")
    log.info("alert posted to webhook host %s", host)


def send_email(
    host: str,
    port: int,
    sender: str,
    recipients: list[str],
    subject: str,
    body: str,
    login: str | None = None,
    password: str | None = None,
    use_tls: bool = False,
    timeout: float = 10,
) -> None:
    """Send a plain-text email through an SMTP server.

    ``use_tls`` upgrades the connection with STARTTLS before logging in. Servers
    that expect TLS from the first byte (port 465) are not supported. ``login``
    with ``password`` authenticates after the upgrade. Raise AlertDeliveryError
    when the server rejects the message or cannot be reached.
    """
    if not recipients:
        raise ValueError("send_email needs at least one recipient")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(body)
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as client:
            client.ehlo()
            if use_tls:
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if login:
                client.login(login, password or "")
            refused = client.send_message(message, from_addr=sender, to_addrs=recipients)
    except (smtplib.SMTPException, OSError) as error:
        raise AlertDeliveryError(
            f"email to {len(recipients)} recipients via {host}:{port} failed: {_describe_smtp_error(error)}"
        ) from error
    if refused:
        # send_message raises only when every recipient is refused.
        log.warning("mail server %s:%d refused %d of %d recipients", host, port, len(refused), len(recipients))
    log.info("alert email sent via %s:%d to %d recipients", host, port, len(recipients))


def _describe_smtp_error(error: Exception) -> str:
    # The text of SMTPRecipientsRefused lists every address, so only the type and
    # the server's reply code and text go into the message.
    if isinstance(error, smtplib.SMTPResponseException):
        reply = (
            error.smtp_error.decode("utf-8", "replace")
            if isinstance(error.smtp_error, bytes)
            else str(error.smtp_error)
        )
        return f"{type(error).__name__}: {error.smtp_code} {reply}"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return f"{type(error).__name__}: all {len(error.recipients)} recipients refused"
    return f"{type(error).__name__}: {error}"
