"""Alert receivers for local runs: Slack-style incoming webhooks and an SMTP server.

``POST /hooks/{anything}`` takes a JSON body with ``text`` and optional
``blocks`` and returns ``200 ok`` as plain text, as Slack does. A body that is
not JSON returns 400 ``invalid_payload`` and one without ``text`` or
``blocks`` returns 400 ``no_text``.

The SMTP receiver speaks the minimal protocol of RFC 5321 (EHLO, HELO, MAIL,
RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT) without AUTH or STARTTLS. It
binds a port only when ``start_smtp`` is called, so tests that need no mail
server open no socket. The port comes from ``settings.alerts.smtp_port``
(18025; 0 picks any free port).
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
import socketserver
import threading
from typing import Any

from sandbox.core import Request, Response, Sandbox, VendorApp

log = logging.getLogger(__name__)

DEFAULT_SMTP_PORT = 18025

# Maximum message size accepted, in bytes. Larger messages get reply 552.
MAX_MESSAGE_BYTES = 10 * 1024 * 1024

# Maximum command line length accepted, in bytes. RFC 5321 sets 512 with CRLF,
# and the extra room lets MAIL and RCPT parameters through.
MAX_LINE_BYTES = 4096

# Seconds an SMTP connection may stay idle before the server closes it.
IDLE_TIMEOUT_SECONDS = 60

_ADDRESS_RE = re.compile(r"^(?P<verb>MAIL FROM|RCPT TO):\s*<(?P<address>[^>]*)>(?P<params>.*)$", re.IGNORECASE)


def _text_response(status: int, text: str) -> Response:
    return Response(status=status, body=text, headers={"Content-Type": "text/plain; charset=utf-8"})


class AlertsApp(VendorApp):
    """Records webhook posts and emails so tests and the demo can read them back."""

    name = "alerts"

    def __init__(self, sandbox: Sandbox):
        super().__init__(sandbox)
        settings = sandbox.scenario.get("settings", {}).get("alerts", {})
        self.configured_smtp_port = int(settings.get("smtp_port", DEFAULT_SMTP_PORT))
        self.webhooks: list[dict[str, Any]] = []
        self.emails: list[dict[str, Any]] = []
        # The bound port while the SMTP receiver runs, otherwise None.
        self.smtp_port: int | None = None
        self._smtp_server: _SmtpServer | None = None
        self._smtp_thread: threading.Thread | None = None
        self.route("POST", r"/hooks/(?P<hook>.+)", self.receive_webhook)

    def receive_webhook(self, request: Request, match: Any) -> Response:
        try:
            body = request.json()
        except ValueError:
            return _text_response(400, "invalid_payload")
        if not isinstance(body, dict):
            return _text_response(400, "invalid_payload")
        if not body.get("text") and not body.get("blocks"):
            return _text_response(400, "no_text")
        self.webhooks.append({"path": request.path, "body": body, "received_at": self.clock.now().isoformat()})
        return _text_response(200, "ok")

    def error_response(self, status: int, message: str) -> Response:
        return _text_response(status, message)

    def dump_state(self) -> Any:
        return {"webhooks": list(self.webhooks), "emails": list(self.emails)}

    # -- SMTP receiver
    def start_smtp(self, host: str = "127.0.0.1", port: int | None = None) -> int:
        """Start the SMTP receiver in a daemon thread and return its bound port.

        ``port`` None takes ``settings.alerts.smtp_port``. Calling it again while
        the receiver runs returns the port already bound.
        """
        if self._smtp_server is not None:
            return self.smtp_port
        bind_port = self.configured_smtp_port if port is None else port
        server = _SmtpServer((host, bind_port), _SmtpHandler)
        server.app = self
        self._smtp_server = server
        self.smtp_port = server.server_address[1]
        self._smtp_thread = threading.Thread(target=server.serve_forever, name="sandbox-alerts-smtp", daemon=True)
        self._smtp_thread.start()
        log.info("sandbox alerts SMTP receiver listening on %s:%d", host, self.smtp_port)
        return self.smtp_port

    def stop_smtp(self) -> None:
        """Stop the SMTP receiver and release its port. Does nothing when it is not running."""
        if self._smtp_server is None:
            return
        self._smtp_server.shutdown()
        self._smtp_server.server_close()
        if self._smtp_thread is not None:
            self._smtp_thread.join(timeout=5)
        log.info("sandbox alerts SMTP receiver on port %d stopped", self.smtp_port)
        self._smtp_server = None
        self._smtp_thread = None
        self.smtp_port = None

    def record_email(self, sender: str, recipients: list[str], data: bytes) -> None:
        """Parse one delivered message and store it under the sandbox lock."""
        message = email.message_from_bytes(data, policy=email.policy.default)
        part = message.get_body(preferencelist=("plain", "html"))
        body = part.get_content() if part is not None else ""
        entry = {
            "from": sender,
            "to": list(recipients),
            "subject": message.get("subject", ""),
            "body": body,
            "received_at": self.clock.now().isoformat(),
        }
        with self.sandbox.lock:
            self.emails.append(entry)


class _LineTooLong(Exception):
    """A client line exceeded the length the receiver reads."""


class _SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    app: AlertsApp


class _SmtpHandler(socketserver.StreamRequestHandler):
    """One SMTP session. Replies use RFC 5321 codes, and the envelope resets after each message."""

    timeout = IDLE_TIMEOUT_SECONDS
    server: _SmtpServer

    def setup(self) -> None:
        super().setup()
        self.greeted = False
        self.reset_envelope()

    def reset_envelope(self) -> None:
        self.sender: str | None = None
        self.recipients: list[str] = []

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode("utf-8") + b"\r\n")

    def read_line(self, max_bytes: int) -> bytes | None:
        """Read one line without its line ending, or None when the client hung up.

        A line longer than ``max_bytes`` is read to its end and discarded, then
        ``_LineTooLong`` is raised.
        """
        line = self.rfile.readline(max_bytes + 1)
        if not line:
            return None
        if len(line) > max_bytes and not line.endswith(b"\n"):
            while True:
                rest = self.rfile.readline(max_bytes)
                if not rest or rest.endswith(b"\n"):
                    break
            raise _LineTooLong
        return line.rstrip(b"\r\n")

    def handle(self) -> None:
        self.reply("220 127.0.0.1 sandbox SMTP receiver ready")
        try:
            while True:
                try:
                    line = self.read_line(MAX_LINE_BYTES)
                except _LineTooLong:
                    self.reject("500 5.5.2 Line too long")
                    continue
                if line is None:
                    return
                if not self.dispatch(line.decode("utf-8", errors="replace")):
                    return
        except TimeoutError:
            log.info("SMTP receiver closed an idle connection from %s", self.client_address[0])
            try:
                self.reply("421 4.4.2 idle timeout, closing connection")
            except OSError:
                pass
        except ConnectionError as error:
            log.debug("SMTP client connection ended: %s", error)

    def reject(self, line: str) -> None:
        """Send an error reply and log it, because the client may hide the reason."""
        log.info("SMTP receiver rejected a command from %s: %s", self.client_address[0], line)
        self.reply(line)

    def dispatch(self, line: str) -> bool:
        """Run one command. Return False when the session should end."""
        verb = line.split(" ", 1)[0].upper()
        argument = line[len(verb) :].strip()
        if verb in ("EHLO", "HELO"):
            self.greet(verb, argument)
            return True
        if verb == "MAIL":
            self.mail(line)
            return True
        if verb == "RCPT":
            self.rcpt(line)
            return True
        if verb == "DATA":
            return self.data()
        if verb == "RSET":
            self.reset_envelope()
            self.reply("250 2.0.0 OK")
            return True
        if verb == "NOOP":
            self.reply("250 2.0.0 OK")
            return True
        if verb == "QUIT":
            self.reply("221 2.0.0 Bye")
            return False
        if verb in ("AUTH", "STARTTLS", "VRFY", "EXPN", "HELP", "TURN", "ETRN", "BDAT"):
            self.reject(f"502 5.5.1 {verb} not implemented")
            return True
        self.reject("500 5.5.2 Syntax error, command unrecognized")
        return True

    def greet(self, verb: str, argument: str) -> None:
        if not argument:
            self.reject(f"501 5.5.4 Syntax: {verb} hostname")
            return
        self.greeted = True
        self.reset_envelope()
        if verb == "HELO":
            self.reply("250 127.0.0.1")
            return
        self.reply("250-127.0.0.1")
        self.reply("250-8BITMIME")
        self.reply("250-SMTPUTF8")
        self.reply(f"250 SIZE {MAX_MESSAGE_BYTES}")

    def mail(self, line: str) -> None:
        if not self.greeted:
            self.reject("503 5.5.1 Send EHLO or HELO first")
            return
        if self.sender is not None:
            self.reject("503 5.5.1 Nested MAIL command")
            return
        match = _ADDRESS_RE.match(line)
        if match is None or match.group("verb").upper() != "MAIL FROM":
            self.reject("501 5.5.4 Syntax: MAIL FROM:<address>")
            return
        # Parameters such as BODY=8BITMIME, SMTPUTF8 and SIZE=n are accepted and ignored.
        self.sender = match.group("address")
        self.reply("250 2.1.0 OK")

    def rcpt(self, line: str) -> None:
        if self.sender is None:
            self.reject("503 5.5.1 Need MAIL command first")
            return
        match = _ADDRESS_RE.match(line)
        if match is None or match.group("verb").upper() != "RCPT TO" or not match.group("address"):
            self.reject("501 5.5.4 Syntax: RCPT TO:<address>")
            return
        self.recipients.append(match.group("address"))
        self.reply("250 2.1.5 OK")

    def data(self) -> bool:
        """Receive one message and record it. Return False when the client hung up mid-message."""
        if not self.recipients:
            self.reject("503 5.5.1 Need RCPT command first")
            return True
        self.reply("354 End data with <CR><LF>.<CR><LF>")
        received = self.read_message()
        if received is None:
            return False

        lines, too_large = received
        sender, recipients = self.sender or "", self.recipients
        self.reset_envelope()
        if too_large:
            self.reject("552 5.3.4 Message size exceeds fixed maximum message size")
            return True
        try:
            self.server.app.record_email(sender, recipients, b"\n".join(lines) + b"\n")
        except Exception:  # a message the parser cannot read must not kill the session
            log.exception("SMTP receiver could not parse a message for %d recipients", len(recipients))
            self.reply("554 5.6.0 Message could not be parsed")
            return True
        self.reply("250 2.0.0 OK: queued")
        return True

    def read_message(self) -> tuple[list[bytes], bool] | None:
        """Read text lines up to the lone dot, returning (lines, too_large), or None when the client hung up."""
        lines: list[bytes] = []
        size = 0
        too_large = False
        while True:
            try:
                line = self.read_line(MAX_MESSAGE_BYTES)
            except _LineTooLong:
                too_large = True
                continue
            if line is None:
                return None
            if line == b".":
                return lines, too_large
            # Dot-unstuffing: the client doubled every leading dot of a text line.
            if line.startswith(b"."):
                line = line[1:]
            size += len(line) + 2
            if size > MAX_MESSAGE_BYTES:
                too_large = True
                continue
            lines.append(line)


def create_app(sandbox: Sandbox) -> AlertsApp:
    return AlertsApp(sandbox)
