"""Pixel collector against a real uvicorn server on a free loopback port and the test warehouse."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import pytest
import requests
import uvicorn

from leadflow.collector import create_app
from leadflow.collector.app import MAX_BODY_BYTES

ORIGIN = "https://www.acme.example"
PIXEL_JS = Path(__file__).resolve().parents[1] / "include" / "leadflow" / "collector" / "static" / "pixel.js"
ENV_NAMES = (
    "LEADFLOW_REPLAY",
    "LEADFLOW_COLLECTOR_CLIENT_RATE_PER_MINUTE",
    "LEADFLOW_COLLECTOR_CLIENT_BURST",
    "LEADFLOW_COLLECTOR_SITE_RATE_PER_MINUTE",
    "LEADFLOW_COLLECTOR_SITE_BURST",
)


class ServerThread:
    """A uvicorn server for one app, on a port the OS picks, in a daemon thread."""

    def __init__(self, app) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "collector did not start within 10 s"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


class TcpProxy:
    """Forwards loopback TCP connections to a port; close() cuts every connection and stops listening."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone
        # would leave the socket listening on Linux.
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


@pytest.fixture
def seeded(clean_warehouse):
    """One account with three pixel sites: origin-restricted, open to any origin, and inactive."""
    conn = psycopg2.connect(clean_warehouse)
    with conn, conn.cursor() as cur:
        cur.execute("INSERT INTO leadflow.accounts (account_id, name) VALUES ('acme', 'Acme')")
        cur.execute(
            "INSERT INTO leadflow.pixel_sites (site_key, account_id, allowed_origins, active) VALUES"
            " ('pk_acme', 'acme', ARRAY[%s], true),"
            " ('pk_open', 'acme', '{}', true),"
            " ('pk_old', 'acme', '{}', false)",
            (ORIGIN,),
        )
    conn.close()
    return clean_warehouse


@pytest.fixture
def start_collector(seeded, monkeypatch) -> Iterator[Callable[..., str]]:
    """Start a collector with the given environment variables; return its base URL."""
    servers: list[ServerThread] = []

    def start(**env: str) -> str:
        for name in ENV_NAMES:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        server = ServerThread(create_app())
        server.start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


def submission(**overrides) -> dict:
    body = {
        "submission_id": str(uuid.uuid4()),
        "site_key": "pk_acme",
        "form_id": "demo-request",
        "page_url": "https://www.acme.example/demo?utm_source=linkedin",
        "submitted_at": "2025-03-04T10:15:00.000Z",
        "fields": {"email": "ana.lopez@northwind.example", "first_name": "Ana", "company": "Northwind"},
        "consent": True,
        "utm": {"utm_source": "linkedin", "utm_campaign": "spring"},
    }
    body.update(overrides)
    return body


def post(base_url: str, body, origin: str | None = ORIGIN, headers: dict | None = None) -> requests.Response:
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if origin is not None:
        all_headers["Origin"] = origin
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return requests.post(f"{base_url}/v1/collect", data=data, headers=all_headers, timeout=10)


def stored_rows(dsn: str) -> list[tuple]:
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT submission_id::text, site_key, account_id, received_at, origin, payload"
            " FROM leadflow.pixel_submissions ORDER BY received_at"
        )
        rows = cur.fetchall()
    conn.close()
    return rows


def problem_fields(response: requests.Response) -> set[str]:
    return {problem["field"] for problem in response.json()["problems"]}


def test_valid_post_stores_one_row(start_collector, seeded):
    url = start_collector()
    body = submission()
    before = datetime.now(UTC)

    response = post(url, body)

    assert response.status_code == 202
    assert response.json() == {"submission_id": body["submission_id"]}
    assert response.headers["access-control-allow-origin"] == ORIGIN
    rows = stored_rows(seeded)
    assert len(rows) == 1
    submission_id, site_key, account_id, received_at, origin, payload = rows[0]
    assert submission_id == body["submission_id"]
    assert site_key == "pk_acme"
    assert account_id == "acme"
    assert origin == ORIGIN
    assert payload == body
    assert before - timedelta(seconds=1) <= received_at <= datetime.now(UTC) + timedelta(seconds=1)


def test_repeated_submission_id_writes_nothing(start_collector, seeded):
    url = start_collector()
    body = submission()
    assert post(url, body).status_code == 202

    again = post(url, {**body, "fields": {"email": "other@northwind.example"}})

    assert again.status_code == 200
    assert again.json() == {"submission_id": body["submission_id"]}
    rows = stored_rows(seeded)
    assert len(rows) == 1
    assert rows[0][5]["fields"]["email"] == "ana.lopez@northwind.example"


def test_text_plain_body_is_accepted(start_collector, seeded):
    url = start_collector()
    body = submission(site_key="pk_open")

    response = post(url, body, origin="https://any.example", headers={"Content-Type": "text/plain;charset=UTF-8"})

    assert response.status_code == 202
    assert response.headers["access-control-allow-origin"] == "https://any.example"
    assert len(stored_rows(seeded)) == 1


def test_unknown_or_inactive_site_key_is_401(start_collector, seeded):
    url = start_collector()

    unknown = post(url, submission(site_key="pk_nope"))
    inactive = post(url, submission(site_key="pk_old"))
    missing = post(url, {key: value for key, value in submission().items() if key != "site_key"})

    assert unknown.status_code == 401
    assert inactive.status_code == 401
    assert missing.status_code == 401
    assert stored_rows(seeded) == []


def test_origin_not_allowed_is_403(start_collector, seeded):
    url = start_collector()

    wrong = post(url, submission(), origin="https://evil.example")
    absent = post(url, submission(), origin=None)
    other_case = post(url, submission(), origin="https://WWW.acme.example")

    assert wrong.status_code == 403
    assert "access-control-allow-origin" not in wrong.headers
    assert absent.status_code == 403
    assert other_case.status_code == 202
    assert len(stored_rows(seeded)) == 1


def test_oversized_body_is_413(start_collector, seeded):
    url = start_collector()
    fields = {"email": "ana@northwind.example"} | {f"note_{i}": "x" * 2000 for i in range(9)}
    body = json.dumps(submission(fields=fields)).encode()
    assert len(body) > MAX_BODY_BYTES

    declared = post(url, body)
    chunked = requests.post(
        f"{url}/v1/collect",
        data=(body[i : i + 1000] for i in range(0, len(body), 1000)),
        headers={"Origin": ORIGIN, "Content-Type": "application/json"},
        timeout=10,
    )

    assert declared.status_code == 413
    assert chunked.status_code == 413
    assert stored_rows(seeded) == []


def test_invalid_body_lists_every_problem(start_collector, seeded):
    url = start_collector()
    body = submission(
        submission_id="not-a-uuid",
        form_id="",
        page_url="https://www.acme.example/" + "a" * 2048,
        fields={"name": "x" * 2001, "age": 5},
        consent="yes",
        utm=["linkedin"],
        campaign="spring",
    )

    response = post(url, body)

    assert response.status_code == 400
    assert problem_fields(response) == {
        "submission_id",
        "form_id",
        "page_url",
        "fields.name",
        "fields.age",
        "consent",
        "utm",
        "campaign",
    }
    assert stored_rows(seeded) == []


def test_field_count_and_syntax_are_checked(start_collector, seeded):
    url = start_collector()
    too_many = {"email": "ana@northwind.example"} | {f"f{i}": "v" for i in range(50)}

    empty = post(url, submission(fields={}))
    crowded = post(url, submission(fields=too_many))
    nul = post(url, submission(fields={"email": "ana\u0000@northwind.example"}))
    not_json = post(url, b"{not json")
    not_object = post(url, b"[1, 2]")

    assert empty.status_code == 400
    assert problem_fields(empty) == {"fields"}
    assert crowded.status_code == 400
    assert problem_fields(crowded) == {"fields"}
    assert nul.status_code == 400
    assert problem_fields(nul) == {"fields.email"}
    assert not_json.status_code == 400
    assert not_object.status_code == 400
    assert stored_rows(seeded) == []


def test_site_rate_limit_is_429_after_burst(start_collector, seeded):
    url = start_collector(LEADFLOW_COLLECTOR_SITE_BURST="3", LEADFLOW_COLLECTOR_SITE_RATE_PER_MINUTE="1")

    statuses = [post(url, submission()).status_code for _ in range(3)]
    limited = post(url, submission())

    assert statuses == [202, 202, 202]
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert len(stored_rows(seeded)) == 3


def test_client_rate_limit_applies_before_auth(start_collector, seeded):
    url = start_collector(LEADFLOW_COLLECTOR_CLIENT_BURST="2", LEADFLOW_COLLECTOR_CLIENT_RATE_PER_MINUTE="1")

    statuses = [post(url, submission(site_key="pk_nope")).status_code for _ in range(3)]

    assert statuses == [401, 401, 429]


def test_replay_header_ignored_without_replay_env(start_collector, seeded):
    url = start_collector()
    body = submission()

    response = post(url, body, headers={"X-Leadflow-Replay-Received-At": "2024-01-02T03:04:05Z"})

    assert response.status_code == 202
    received_at = stored_rows(seeded)[0][3]
    assert abs(datetime.now(UTC) - received_at) < timedelta(minutes=1)


def test_replay_header_sets_received_at(start_collector, seeded):
    url = start_collector(LEADFLOW_REPLAY="1")

    accepted = post(url, submission(), headers={"X-Leadflow-Replay-Received-At": "2024-01-02T03:04:05+01:00"})
    naive = post(url, submission(), headers={"X-Leadflow-Replay-Received-At": "2024-01-02T03:04:05"})

    assert accepted.status_code == 202
    rows = stored_rows(seeded)
    assert len(rows) == 1
    assert rows[0][3] == datetime(2024, 1, 2, 2, 4, 5, tzinfo=UTC)
    assert naive.status_code == 400
    assert problem_fields(naive) == {"header x-leadflow-replay-received-at"}


def test_unreachable_warehouse_is_503(seeded, monkeypatch):
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", f"postgresql://postgres@127.0.0.1:{closed_port}/warehouse")
    server = ServerThread(create_app())
    server.start()
    try:
        response = post(server.url, submission())
        health = requests.get(f"{server.url}/healthz", timeout=10)
    finally:
        server.stop()

    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert health.status_code == 503
    assert stored_rows(seeded) == []


def test_warehouse_lost_after_auth_is_503(seeded, monkeypatch):
    parts = urlsplit(seeded)
    proxy = TcpProxy(parts.port)
    auth = parts.username + (f":{parts.password}" if parts.password else "")
    proxied = parts._replace(netloc=f"{auth}@127.0.0.1:{proxy.port}").geturl()
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", proxied)
    server = ServerThread(create_app())
    server.start()
    try:
        first = post(server.url, submission())
        proxy.close()
        lost = submission()
        second = post(server.url, lost)
    finally:
        server.stop()
        proxy.close()

    assert first.status_code == 202
    assert second.status_code == 503
    assert int(second.headers["retry-after"]) >= 1
    stored_ids = [row[0] for row in stored_rows(seeded)]
    assert lost["submission_id"] not in stored_ids
    assert len(stored_ids) == 1


def test_preflight_allows_configured_origins_only(start_collector):
    url = start_collector()
    request_headers = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}

    allowed = requests.options(f"{url}/v1/collect", headers={"Origin": ORIGIN, **request_headers}, timeout=10)
    denied = requests.options(
        f"{url}/v1/collect", headers={"Origin": "https://evil.example", **request_headers}, timeout=10
    )
    open_site = requests.options(
        f"{url}/v1/collect?site_key=pk_open", headers={"Origin": "https://any.example", **request_headers}, timeout=10
    )

    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert denied.status_code == 403
    assert "access-control-allow-origin" not in denied.headers
    assert open_site.status_code == 204
    assert open_site.headers["access-control-allow-origin"] == "https://any.example"


def test_script_and_health_endpoints(start_collector):
    url = start_collector()

    script = requests.get(f"{url}/pixel.js", timeout=10)
    health = requests.get(f"{url}/healthz", timeout=10)

    assert script.status_code == 200
    assert script.headers["content-type"].startswith("application/javascript")
    assert "data-leadflow-form" in script.text
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}


# Runs pixel.js in Node with a minimal stand-in for the browser page: one
# marked form, storage, and the location. Node's fetch posts to the collector.
NODE_PAGE = r"""
const [pixelPath, base] = process.argv.slice(1);
const memoryStorage = () => {
  const data = new Map();
  return {getItem: (k) => (data.has(k) ? data.get(k) : null), setItem: (k, v) => data.set(k, String(v)),
          removeItem: (k) => data.delete(k)};
};
globalThis.window = globalThis;
globalThis.location = {href: "https://www.acme.example/demo?utm_source=linkedin&x=1", search: "?utm_source=linkedin&x=1"};
globalThis.localStorage = memoryStorage();
globalThis.sessionStorage = memoryStorage();
const listeners = {};
const attrs = {"data-site-key": "pk_open", "data-endpoint": base};
globalThis.document = {
  currentScript: {src: base + "/pixel.js", getAttribute: (n) => (n in attrs ? attrs[n] : null)},
  addEventListener: (type, fn) => { listeners[type] = fn; },
};
const control = (name, type, value, extra = {}) => ({name, type, value, disabled: false, checked: false,
  hasAttribute: (n) => !!(extra.attrs || {})[n], getAttribute: (n) => (extra.attrs || {})[n] ?? null, ...extra});
const form = {
  getAttribute: (n) => (n === "data-leadflow-form" ? "demo-request" : null),
  elements: [
    control("work_email", "email", "ana.lopez@northwind.example"),
    control("first_name", "text", "Ana"),
    control("password", "password", "secret"),
    control("consent", "checkbox", "yes", {checked: true}),
    control("", "submit", "Send"),
  ],
};
require(pixelPath);
let prevented = false;
listeners.submit({target: form, preventDefault: () => { prevented = true; }});
const started = Date.now();
const poll = () => {
  const pending = JSON.parse(localStorage.getItem("leadflow_pending_v1") || "{}");
  if (Object.keys(pending).length === 0 || Date.now() - started > 10000) {
    console.log(JSON.stringify({pending: Object.keys(pending).length, prevented}));
    process.exit(0);
  }
  setTimeout(poll, 50);
};
setTimeout(poll, 50);
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run pixel.js")
def test_pixel_script_posts_form(start_collector, seeded):
    url = start_collector()

    result = subprocess.run(
        ["node", "-e", NODE_PAGE, str(PIXEL_JS), url], capture_output=True, text=True, timeout=30, check=True
    )

    outcome = json.loads(result.stdout)
    assert outcome == {"pending": 0, "prevented": False}
    rows = stored_rows(seeded)
    assert len(rows) == 1
    payload = rows[0][5]
    assert uuid.UUID(payload["submission_id"]).version == 4
    assert payload["site_key"] == "pk_open"
    assert payload["form_id"] == "demo-request"
    assert payload["fields"] == {
        "work_email": "ana.lopez@northwind.example",
        "first_name": "Ana",
        "email": "ana.lopez@northwind.example",
    }
    assert payload["consent"] is True
    assert payload["utm"] == {"utm_source": "linkedin"}
    assert payload["page_url"] == "https://www.acme.example/demo?utm_source=linkedin&x=1"
