"""Shared machinery of the vendor sandbox: clock, request log, faults, HTTP serving.

Each vendor is a ``VendorApp`` subclass that registers routes. The ``Sandbox``
owns one clock, one lock, one request log and one fault list for every vendor,
and serves each app on its own loopback port, so a product connection selects
the sandbox only through its host and port.

Every app also serves the control endpoints under ``/_sandbox/``:

- ``GET /_sandbox/requests`` lists recorded requests (``?since=<seq>``);
- ``POST /_sandbox/requests/clear`` empties the log of this vendor;
- ``GET /_sandbox/clock`` and ``POST /_sandbox/clock`` with
  ``{"now": ISO-8601}`` (freeze), ``{"start_at": ISO-8601}`` (run from),
  ``{"advance_seconds": N}`` or ``{"real": true}``;
- ``POST /_sandbox/faults`` adds fault rules, ``DELETE /_sandbox/faults``
  removes them;
- ``GET /_sandbox/state`` returns the vendor's current records;
- ``GET /_sandbox/counters`` returns calls per path.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_sandbox/"


def parse_instant(value: str) -> datetime:
    """Parse an ISO-8601 instant; a value without an offset is taken as UTC."""
    text = value.strip().replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class Clock:
    """Sandbox time: real UTC time, a frozen instant, or a clock that runs from a set instant.

    A running clock (``start_at``) keeps rolling windows and rate limits
    working during a replay while dates stay those of the scenario.
    """

    def __init__(self, frozen_at: datetime | None = None, start_at: datetime | None = None):
        self._frozen_at = frozen_at
        self._start_at = start_at
        self._started = time.monotonic()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            if self._start_at is not None:
                return self._start_at + timedelta(seconds=time.monotonic() - self._started)
        return datetime.now(UTC)

    def set(self, instant: datetime | None) -> None:
        """Freeze the clock at ``instant``; ``None`` returns to real time."""
        with self._lock:
            self._frozen_at = instant
            self._start_at = None

    def run_from(self, instant: datetime) -> None:
        """Let the clock run in real time starting at ``instant``."""
        with self._lock:
            self._frozen_at = None
            self._start_at = instant
            self._started = time.monotonic()

    def advance(self, seconds: float) -> None:
        with self._lock:
            if self._frozen_at is None and self._start_at is not None:
                self._start_at += timedelta(seconds=seconds)
                return
            base = self._frozen_at or datetime.now(UTC)
            self._frozen_at = base + timedelta(seconds=seconds)

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None


@dataclass
class Request:
    method: str
    path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes
    vendor: str = ""
    seq: int = 0

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.raw_query, keep_blank_values=True)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True)

    def bearer_token(self) -> str | None:
        value = self.header("authorization", "")
        if value and value.lower().startswith("bearer "):
            return value[7:].strip()
        return None

    def record(self) -> dict[str, Any]:
        body_text = self.body.decode("utf-8", errors="replace")
        return {
            "seq": self.seq,
            "vendor": self.vendor,
            "method": self.method,
            "path": self.path,
            "query": self.raw_query,
            "headers": {k: v for k, v in self.headers.items() if k != "authorization"},
            "authorization": self.headers.get("authorization"),
            "body": body_text,
        }


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to sleep before responding, for slow-response faults.
    delay: float = 0.0
    # Close the connection without a response, for connection-reset faults.
    drop: bool = False

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")


def json_response(body: Any, status: int = 200, **headers: str) -> Response:
    return Response(status=status, body=body, headers={"Content-Type": "application/json", **headers})


Handler = Callable[[Request, re.Match], Response]


@dataclass
class Fault:
    """One injected failure.

    ``kind`` is one of these:

    - ``throttle``: the vendor's own throttle response;
    - ``status``: ``status`` and ``body`` as given;
    - ``slow``: the normal response after ``delay`` seconds;
    - ``drop``: the connection closes without a response;
    - ``malformed``: a body that is not JSON;
    - ``empty``: HTTP 200 with no body;
    - ``expire_token``: the vendor's expired-token response.
 ``skip`` matching calls pass before the
    fault fires ``times`` times; ``times`` 0 means every matching call.
    """

    vendor: str
    kind: str
    method: str | None = None
    path: str | None = None
    times: int = 1
    skip: int = 0
    status: int = 500
    body: Any = None
    delay: float = 0.0
    fired: int = 0
    seen: int = 0

    def matches(self, request: Request) -> bool:
        if self.vendor != request.vendor:
            return False
        if self.method and self.method.upper() != request.method:
            return False
        if self.path and not re.search(self.path, request.path):
            return False
        return True

    @property
    def exhausted(self) -> bool:
        return self.times > 0 and self.fired >= self.times


class VendorApp:
    """Base of one vendor's stand-in. Subclasses call ``route`` in ``__init__``."""

    name = "vendor"

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self._routes: list[tuple[str, re.Pattern, Handler]] = []

    @property
    def clock(self) -> Clock:
        return self.sandbox.clock

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def dispatch(self, request: Request) -> Response:
        allowed = False
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            allowed = True
            if method == request.method:
                return handler(request, match)
        if allowed:
            return self.error_response(405, "Method not allowed")
        return self.error_response(404, f"No route for {request.path}")

    # Vendor-specific responses used by fault injection. Subclasses override them.
    def throttle_response(self, request: Request) -> Response:
        return json_response({"message": "Too many requests"}, status=429)

    def expired_token_response(self, request: Request) -> Response:
        return json_response({"message": "Access token expired"}, status=401)

    def error_response(self, status: int, message: str) -> Response:
        return json_response({"message": message, "status": status}, status=status)

    def dump_state(self) -> Any:
        return {}


class Sandbox:
    """All vendor apps of one scenario, with their shared clock, log and faults."""

    def __init__(self, scenario: dict[str, Any], clock: Clock | None = None):
        self.scenario = scenario
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self.apps: dict[str, VendorApp] = {}
        self.faults: list[Fault] = []
        self._log: list[dict[str, Any]] = []
        self._seq = 0
        self._servers: dict[str, ThreadingHTTPServer] = {}
        self._threads: list[threading.Thread] = []
        for fault in scenario.get("faults", []):
            self.faults.append(Fault(**fault))

    def add_app(self, app: VendorApp) -> None:
        self.apps[app.name] = app

    # -- request handling ---------------------------------------------------
    def handle(self, vendor: str, request: Request) -> Response:
        request.vendor = vendor
        if request.path.startswith(CONTROL_PREFIX):
            return self._control(vendor, request)
        with self.lock:
            self._seq += 1
            request.seq = self._seq
            self._log.append(request.record())
            fault = self._take_fault(request)
        app = self.apps[vendor]
        if fault is not None:
            return self._fault_response(app, fault, request)
        with self.lock:
            return app.dispatch(request)

    def _take_fault(self, request: Request) -> Fault | None:
        for fault in self.faults:
            if fault.exhausted or not fault.matches(request):
                continue
            fault.seen += 1
            if fault.seen <= fault.skip:
                continue
            fault.fired += 1
            return fault
        return None

    def _fault_response(self, app: VendorApp, fault: Fault, request: Request) -> Response:
        if fault.kind == "throttle":
            return app.throttle_response(request)
        if fault.kind == "expire_token":
            return app.expired_token_response(request)
        if fault.kind == "slow":
            with self.lock:
                response = app.dispatch(request)
            response.delay = fault.delay
            return response
        if fault.kind == "drop":
            return Response(drop=True)
        if fault.kind == "malformed":
            return Response(status=200, body=b'{"truncated": ', headers={"Content-Type": "application/json"})
        if fault.kind == "empty":
            return Response(status=200, body=b"")
        return json_response(fault.body if fault.body is not None else {"message": "Injected failure"}, fault.status)

    def requests(self, vendor: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self._log if r["seq"] > since and (vendor is None or r["vendor"] == vendor)]

    def _control(self, vendor: str, request: Request) -> Response:
        action = request.path[len(CONTROL_PREFIX) :].strip("/")
        if action == "requests" and request.method == "GET":
            return json_response(self.requests(vendor, int(request.arg("since", "0"))))
        if action == "requests/clear" and request.method == "POST":
            with self.lock:
                self._log = [r for r in self._log if r["vendor"] != vendor]
            return json_response({"cleared": True})
        if action == "clock":
            if request.method == "POST":
                payload = request.json() or {}
                if payload.get("real"):
                    self.clock.set(None)
                elif "now" in payload:
                    self.clock.set(parse_instant(payload["now"]))
                elif "start_at" in payload:
                    self.clock.run_from(parse_instant(payload["start_at"]))
                elif "advance_seconds" in payload:
                    self.clock.advance(float(payload["advance_seconds"]))
            return json_response({"now": self.clock.now().isoformat(), "frozen": self.clock.frozen})
        if action == "faults":
            with self.lock:
                if request.method == "POST":
                    payload = request.json()
                    rules = payload if isinstance(payload, list) else [payload]
                    for rule in rules:
                        self.faults.append(Fault(**{"vendor": vendor, **rule}))
                elif request.method == "DELETE":
                    self.faults = [f for f in self.faults if f.vendor != vendor]
                return json_response([f.__dict__ for f in self.faults if f.vendor == vendor])
        if action == "state":
            with self.lock:
                return json_response(self.apps[vendor].dump_state())
        if action == "counters":
            with self.lock:
                counts = Counter(f"{r['method']} {r['path']}" for r in self._log if r["vendor"] == vendor)
            return json_response(dict(counts))
        return json_response({"message": f"Unknown control action {action!r}"}, 404)

    # -- serving ------------------------------------------------------------
    def serve(self, ports: dict[str, int], host: str = "127.0.0.1") -> dict[str, str]:
        """Start one HTTP server per app in daemon threads; return base URLs."""
        urls = {}
        for vendor, port in ports.items():
            if vendor not in self.apps:
                continue
            server = ThreadingHTTPServer((host, port), _make_handler(self, vendor))
            server.daemon_threads = True
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"sandbox-{vendor}", daemon=True)
            thread.start()
            self._servers[vendor] = server
            self._threads.append(thread)
            urls[vendor] = f"http://{host}:{server.server_address[1]}"
            log.info("sandbox %s listening on %s", vendor, urls[vendor])
        return urls

    def stop(self) -> None:
        for server in self._servers.values():
            server.shutdown()
            server.server_close()
        self._servers.clear()


def _make_handler(sandbox: Sandbox, vendor: str) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("%s %s", vendor, format % args)

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=split.path,
                raw_query=split.query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            try:
                response = sandbox.handle(vendor, request)
            except Exception:  # a sandbox bug must surface as a 500, not a hang
                log.exception("sandbox %s failed on %s %s", vendor, self.command, split.path)
                response = json_response({"message": "sandbox internal error"}, 500)
            if response.drop:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if response.delay:
                time.sleep(response.delay)
            payload = response.encode()
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    return _Handler
