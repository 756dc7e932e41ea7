"""Pixel collector: the HTTP service that landing-page pixels post form submissions to.

``POST /v1/collect`` takes one JSON object per form submission::

    {"submission_id": "<uuid made by the pixel per submit>", "site_key": "pk_...",
     "form_id": "demo-request", "page_url": "https://...", "submitted_at": "<client clock>",
     "fields": {"email": "...", ...}, "consent": true, "utm": {"utm_source": "..."}}

The checks run cheapest first, and each failure has its own status:

1. rate limit per client address (429 with Retry-After);
2. body size of at most 16 KiB, by Content-Length and by bytes read (413);
3. JSON object syntax (400);
4. site key known and active in ``leadflow.pixel_sites`` (401);
5. Origin header among the site's allowed origins, when it lists any (403);
6. rate limit per site key (429 with Retry-After);
7. field validation, listing every problem (400).

Only then is the submission inserted into ``leadflow.pixel_submissions`` and
committed. A new submission returns 202 and a repeated ``submission_id``
returns 200 without writing, both with ``{"submission_id": ...}``. The same
id from another site returns 409. A warehouse that cannot be reached returns
503 with Retry-After, never a success.

The body may be sent as ``application/json`` or as ``text/plain``. The pixel
uses ``text/plain`` so browsers send it without a CORS preflight, which also
keeps ``fetch(..., {keepalive: true})`` working while the page unloads.

Replay: when the environment sets ``LEADFLOW_REPLAY=1``, the request header
``X-Leadflow-Replay-Received-At`` (ISO-8601 with a UTC offset) sets
``received_at`` in place of the server clock, so recorded traffic replays with
its original receipt times and the 15-minute landing-page promise measures the
same. Without the variable the header is ignored. Never set it on a public
collector, because any client could then backdate its submissions.

Environment variables, all optional except the warehouse connection:

- ``AIRFLOW_CONN_WAREHOUSE``: the warehouse connection, URI or JSON form.
- ``LEADFLOW_COLLECTOR_CLIENT_RATE_PER_MINUTE`` (120) and
  ``LEADFLOW_COLLECTOR_CLIENT_BURST`` (30): token bucket per client address.
- ``LEADFLOW_COLLECTOR_SITE_RATE_PER_MINUTE`` (600) and
  ``LEADFLOW_COLLECTOR_SITE_BURST`` (300): token bucket per site key.
- ``LEADFLOW_COLLECTOR_SITE_CACHE_SECONDS`` (30): how long a site lookup is reused.
- ``LEADFLOW_COLLECTOR_DB_POOL_SIZE`` (8): maximum open warehouse connections.
- ``LEADFLOW_REPLAY`` (unset): ``1`` honours the replay header.

A site's limit is higher than a client's because one site gathers many
visitors, while one address is usually one browser or one office.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from leadflow import warehouse

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BODY_BYTES = 16 * 1024
MAX_SITE_KEY_CHARS = 200
MAX_SUBMISSION_ID_CHARS = 45
MAX_FORM_ID_CHARS = 200
MAX_PAGE_URL_CHARS = 2048
MAX_SUBMITTED_AT_CHARS = 64
MIN_FIELDS = 1
MAX_FIELDS = 50
MAX_FIELD_NAME_CHARS = 100
MAX_FIELD_VALUE_CHARS = 2000
MAX_UTM_ENTRIES = 20
MAX_UTM_VALUE_CHARS = 500
REQUIRED_KEYS = ("submission_id", "site_key", "form_id", "page_url", "fields", "consent")
OPTIONAL_KEYS = ("submitted_at", "utm")
REPLAY_HEADER = "x-leadflow-replay-received-at"
# Seconds a client is asked to wait after a 503 before trying again.
UNAVAILABLE_RETRY_AFTER = 5
STATIC_DIR = Path(__file__).resolve().parent / "static"


# --- settings -----------------------------------------------------------------


def _env_number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number; set a positive number or unset it") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={raw!r} must be a positive number")
    return value


@dataclass(frozen=True)
class CollectorSettings:
    """Runtime settings of one collector process."""

    dsn: str
    client_rate_per_minute: float = 120.0
    client_burst: int = 30
    site_rate_per_minute: float = 600.0
    site_burst: int = 300
    site_cache_seconds: float = 30.0
    db_pool_size: int = 8
    replay: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CollectorSettings:
        """Read the settings from environment variables, with the defaults above."""
        env = os.environ if environ is None else environ
        return cls(
            dsn=warehouse.dsn(),
            client_rate_per_minute=_env_number(env, "LEADFLOW_COLLECTOR_CLIENT_RATE_PER_MINUTE", 120.0),
            client_burst=int(_env_number(env, "LEADFLOW_COLLECTOR_CLIENT_BURST", 30)),
            site_rate_per_minute=_env_number(env, "LEADFLOW_COLLECTOR_SITE_RATE_PER_MINUTE", 600.0),
            site_burst=int(_env_number(env, "LEADFLOW_COLLECTOR_SITE_BURST", 300)),
            site_cache_seconds=_env_number(env, "LEADFLOW_COLLECTOR_SITE_CACHE_SECONDS", 30.0),
            db_pool_size=int(_env_number(env, "LEADFLOW_COLLECTOR_DB_POOL_SIZE", 8)),
            replay=env.get("LEADFLOW_REPLAY", "").strip() == "1",
        )


# --- rate limiting ------------------------------------------------------------


class TokenBuckets:
    """Token buckets by key, refilled continuously at ``rate_per_minute`` up to ``burst`` tokens.

    At most ``max_keys`` buckets are kept. The least recently used one is dropped
    first, and it is usually full again by then.
    NOTE: buckets live in this process only, so N collector processes together
    allow up to N times the configured rate.
    """

    def __init__(self, rate_per_minute: float, burst: int, max_keys: int = 100_000) -> None:
        self._rate_per_second = rate_per_minute / 60.0
        self._burst = float(max(burst, 1))
        self._max_keys = max_keys
        # key -> (tokens, monotonic time of the last update)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one token; return 0 when granted, else the seconds until one is available."""
        now = time.monotonic()
        with self._lock:
            tokens, updated = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - updated) * self._rate_per_second)
            granted = tokens >= 1.0
            if granted:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            self._buckets.move_to_end(key)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        if granted:
            return 0.0
        return (1.0 - tokens) / self._rate_per_second


# --- warehouse access ---------------------------------------------------------


class DatabaseUnavailable(Exception):
    """The warehouse could not be reached or did not respond in time."""


class ConnectionPool:
    """A small thread-safe pool of warehouse connections, opened on demand.

    A statement timeout bounds every query, so a stalled warehouse turns into a
    503 within seconds instead of holding request threads.
    """

    def __init__(self, dsn: str, size: int, acquire_timeout: float = 5.0, statement_timeout_ms: int = 5000) -> None:
        self._dsn = dsn
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[psycopg2.extensions.connection] = []
        self._idle_lock = threading.Lock()
        self._acquire_timeout = acquire_timeout
        self._statement_timeout_ms = statement_timeout_ms

    def _open(self) -> psycopg2.extensions.connection:
        try:
            return psycopg2.connect(
                self._dsn,
                connect_timeout=5,
                application_name="leadflow-collector",
                options=f"-c statement_timeout={self._statement_timeout_ms}",
            )
        except psycopg2.OperationalError as exc:
            raise DatabaseUnavailable(f"cannot connect to the warehouse at {warehouse.redacted(self._dsn)}") from exc

    def _take_idle(self) -> psycopg2.extensions.connection | None:
        with self._idle_lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
        return None

    def _give_back(self, conn: psycopg2.extensions.connection) -> None:
        if conn.closed or conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            _close_quietly(conn)
            return
        with self._idle_lock:
            self._idle.append(conn)

    def run(self, work: Callable[[psycopg2.extensions.cursor], T]) -> T:
        """Run ``work(cursor)`` in one transaction and commit it before returning.

        A reused idle connection may have been cut since its last use (warehouse
        restart, idle timeout), so a connection error on one is retried once on
        a fresh connection. ``work`` must therefore be safe to run twice. A
        connection error otherwise raises DatabaseUnavailable. Other database
        errors are rolled back and re-raised.
        """
        if not self._slots.acquire(timeout=self._acquire_timeout):
            raise DatabaseUnavailable("all warehouse connections of the collector are busy")
        try:
            conn = self._take_idle()
            if conn is not None:
                try:
                    return self._run_on(conn, work)
                except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                    log.info("warehouse connection was broken (%s); retrying on a new one", type(exc).__name__)
            try:
                return self._run_on(self._open(), work)
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                raise DatabaseUnavailable(f"warehouse query failed: {type(exc).__name__}") from exc
        finally:
            self._slots.release()

    def _run_on(self, conn: psycopg2.extensions.connection, work: Callable[[psycopg2.extensions.cursor], T]) -> T:
        try:
            with conn.cursor() as cur:
                result = work(cur)
            conn.commit()
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            _close_quietly(conn)
            raise
        except psycopg2.Error:
            _rollback_quietly(conn)
            self._give_back(conn)
            raise
        self._give_back(conn)
        return result

    def close(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close_quietly(conn)


def _close_quietly(conn: psycopg2.extensions.connection) -> None:
    try:
        conn.close()
    except psycopg2.Error:
        pass


def _rollback_quietly(conn: psycopg2.extensions.connection) -> None:
    try:
        conn.rollback()
    except psycopg2.Error:
        _close_quietly(conn)


# --- site keys ----------------------------------------------------------------


def normalise_origin(origin: str) -> str:
    """Lower-case an origin and drop a trailing slash, so configured and sent forms compare equal."""
    return origin.strip().rstrip("/").lower()


@dataclass(frozen=True)
class PixelSite:
    """One active row of ``leadflow.pixel_sites``; empty ``allowed_origins`` means any origin."""

    site_key: str
    account_id: str
    allowed_origins: frozenset[str]

    def allows(self, origin: str | None) -> bool:
        if not self.allowed_origins:
            return True
        return origin is not None and normalise_origin(origin) in self.allowed_origins


class SiteCache:
    """Active pixel sites by key, each lookup reused for ``ttl`` seconds.

    Unknown and inactive keys are cached too, so a flood of bad keys does not
    reach the warehouse. A site deactivated in the warehouse is therefore still
    accepted for up to ``ttl`` seconds.
    """

    def __init__(self, pool: ConnectionPool, ttl: float, max_entries: int = 10_000) -> None:
        self._pool = pool
        self._ttl = ttl
        self._max_entries = max_entries
        self._sites: OrderedDict[str, tuple[float, PixelSite | None]] = OrderedDict()
        self._origins: tuple[float, frozenset[str]] | None = None
        self._lock = threading.Lock()

    def get(self, site_key: str) -> PixelSite | None:
        """Return the active site for ``site_key`` or None; raises DatabaseUnavailable on a cache miss while the warehouse is down."""
        now = time.monotonic()
        with self._lock:
            cached = self._sites.get(site_key)
            if cached is not None and cached[0] > now:
                return cached[1]
        site = self._pool.run(lambda cur: _load_site(cur, site_key))
        with self._lock:
            self._sites[site_key] = (now + self._ttl, site)
            self._sites.move_to_end(site_key)
            while len(self._sites) > self._max_entries:
                self._sites.popitem(last=False)
        return site

    def evict(self, site_key: str) -> None:
        with self._lock:
            self._sites.pop(site_key, None)

    def all_allowed_origins(self, refresh: bool = True) -> frozenset[str]:
        """Return the union of allowed origins over active sites.

        With ``refresh=False`` the last loaded set is returned without a query
        (empty before the first load), for error paths that must not wait on
        the warehouse.
        """
        now = time.monotonic()
        with self._lock:
            cached = self._origins
        if cached is not None and (cached[0] > now or not refresh):
            return cached[1]
        if not refresh:
            return frozenset()
        origins = self._pool.run(_load_all_origins)
        with self._lock:
            self._origins = (now + self._ttl, origins)
        return origins


def _load_site(cur: psycopg2.extensions.cursor, site_key: str) -> PixelSite | None:
    cur.execute(
        "SELECT account_id, allowed_origins FROM leadflow.pixel_sites WHERE site_key = %s AND active",
        (site_key,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    return PixelSite(site_key, row[0], frozenset(normalise_origin(o) for o in row[1] or []))


def _load_all_origins(cur: psycopg2.extensions.cursor) -> frozenset[str]:
    cur.execute("SELECT DISTINCT unnest(allowed_origins) FROM leadflow.pixel_sites WHERE active")
    return frozenset(normalise_origin(row[0]) for row in cur.fetchall())


# --- validation ---------------------------------------------------------------


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _check_text(field: str, value: Any, max_chars: int, required: bool = True) -> list[dict[str, str]]:
    if not isinstance(value, str):
        return [_problem(field, f"must be a string, got {_json_type(value)}")]
    if required and value == "":
        return [_problem(field, "must not be empty")]
    if len(value) > max_chars:
        return [_problem(field, f"is {len(value)} characters long; the maximum is {max_chars}")]
    return []


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _unstorable_strings(value: Any, path: str) -> Iterator[str]:
    """Yield paths of strings PostgreSQL cannot store: NUL characters and unpaired surrogates."""
    if isinstance(value, str):
        if "\x00" in value:
            yield path
            return
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            yield from _unstorable_strings(key, child)
            yield from _unstorable_strings(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unstorable_strings(item, f"{path}[{index}]")


def validate_submission(document: dict[str, Any]) -> list[dict[str, str]]:
    """Return every problem of a parsed submission body as ``{"field", "message"}``; empty when valid.

    Neither the presence nor the content of the email field is checked here:
    the pipeline quarantines a missing or bad address with a reason a person
    can read, so the submission is kept and visible to the data team.
    """
    problems: list[dict[str, str]] = []
    for key in REQUIRED_KEYS:
        if key not in document:
            problems.append(_problem(key, "is required"))
    for key in sorted(set(document) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS)):
        problems.append(_problem(key, "is not a known field of a submission"))

    if "submission_id" in document:
        value = document["submission_id"]
        text_problems = _check_text("submission_id", value, MAX_SUBMISSION_ID_CHARS)
        if text_problems:
            problems += text_problems
        else:
            try:
                uuid.UUID(value)
            except ValueError:
                problems.append(
                    _problem("submission_id", "must be a UUID such as 0b4d1c52-6f1e-4a8e-9d36-2f6e3c1b7a90")
                )
    if "site_key" in document:
        problems += _check_text("site_key", document["site_key"], MAX_SITE_KEY_CHARS)
    if "form_id" in document:
        problems += _check_text("form_id", document["form_id"], MAX_FORM_ID_CHARS)
    if "page_url" in document:
        problems += _check_text("page_url", document["page_url"], MAX_PAGE_URL_CHARS)
    if document.get("submitted_at") is not None:
        problems += _check_text("submitted_at", document["submitted_at"], MAX_SUBMITTED_AT_CHARS)
    if "consent" in document and not isinstance(document["consent"], bool):
        problems.append(_problem("consent", f"must be true or false, got {_json_type(document['consent'])}"))
    if "fields" in document:
        problems += _validate_fields(document["fields"])
    if document.get("utm") is not None:
        problems += _validate_utm(document["utm"])

    for path in _unstorable_strings(document, ""):
        problems.append(_problem(path, "contains a NUL character or invalid Unicode"))
    return problems


def _validate_fields(fields: Any) -> list[dict[str, str]]:
    if not isinstance(fields, dict):
        return [_problem("fields", f"must be an object of field name to string, got {_json_type(fields)}")]
    problems: list[dict[str, str]] = []
    if not MIN_FIELDS <= len(fields) <= MAX_FIELDS:
        problems.append(_problem("fields", f"has {len(fields)} entries; expected {MIN_FIELDS} to {MAX_FIELDS}"))
    bad_names = 0
    for name, value in fields.items():
        if name == "" or len(name) > MAX_FIELD_NAME_CHARS:
            bad_names += 1
            continue
        problems += _check_text(f"fields.{name}", value, MAX_FIELD_VALUE_CHARS, required=False)
    if bad_names:
        message = f"{bad_names} field name(s) are empty or longer than {MAX_FIELD_NAME_CHARS} characters"
        problems.append(_problem("fields", message))
    return problems


def _validate_utm(utm: Any) -> list[dict[str, str]]:
    if not isinstance(utm, dict):
        return [_problem("utm", f"must be an object of parameter name to string, got {_json_type(utm)}")]
    problems: list[dict[str, str]] = []
    if len(utm) > MAX_UTM_ENTRIES:
        problems.append(_problem("utm", f"has {len(utm)} entries; the maximum is {MAX_UTM_ENTRIES}"))
    for name, value in utm.items():
        problems += _check_text(f"utm.{name}", value, MAX_UTM_VALUE_CHARS, required=False)
    return problems


def parse_replay_instant(value: str) -> datetime:
    """Parse the replay header; raises ValueError unless it is ISO-8601 with a UTC offset."""
    instant = datetime.fromisoformat(value.strip())
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("has no UTC offset")
    return instant


def _reject_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# --- responses ----------------------------------------------------------------


def _error(status: int, error: str, message: str, headers: dict[str, str], **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status, headers=headers)


def _cors_headers(origin: str | None, allowed: bool) -> dict[str, str]:
    headers = {"Vary": "Origin"}
    if origin and allowed:
        headers["Access-Control-Allow-Origin"] = origin
    return headers


def _retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


class RejectionLog:
    """Counts rejected requests by reason and logs the counts at most once per interval.

    Rejections are logged as counts, never per request, because a misbehaving
    page or a scan would otherwise flood the log.
    """

    def __init__(self, interval_seconds: float = 60.0) -> None:
        self._interval = interval_seconds
        self._counts: Counter[str] = Counter()
        self._since = time.monotonic()
        self._lock = threading.Lock()

    def add(self, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._counts[reason] += 1
            if now - self._since < self._interval:
                return
            counts, self._counts = dict(self._counts), Counter()
            elapsed, self._since = now - self._since, now
        log.warning("rejected pixel requests in the last %.0f s: %s", elapsed, counts)


# --- application ----------------------------------------------------------------


@dataclass
class _State:
    settings: CollectorSettings
    pool: ConnectionPool
    sites: SiteCache
    client_buckets: TokenBuckets
    site_buckets: TokenBuckets
    rejections: RejectionLog


def create_app(settings: CollectorSettings | None = None) -> FastAPI:
    """Build the collector app; ``settings`` defaults to ``CollectorSettings.from_env()``."""
    settings = settings or CollectorSettings.from_env()
    pool = ConnectionPool(settings.dsn, settings.db_pool_size)
    state = _State(
        settings=settings,
        pool=pool,
        sites=SiteCache(pool, settings.site_cache_seconds),
        client_buckets=TokenBuckets(settings.client_rate_per_minute, settings.client_burst),
        site_buckets=TokenBuckets(settings.site_rate_per_minute, settings.site_burst),
        rejections=RejectionLog(),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        pool.close()

    app = FastAPI(title="leadflow pixel collector", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.collector = state
    pixel_script = (STATIC_DIR / "pixel.js").read_bytes()
    if settings.replay:
        log.warning("LEADFLOW_REPLAY=1: the %s header sets received_at", REPLAY_HEADER)

    @app.post("/v1/collect")
    async def collect(request: Request) -> Response:
        return await _collect(state, request)

    @app.options("/v1/collect")
    async def preflight(request: Request) -> Response:
        return await _preflight(state, request)

    @app.get("/pixel.js")
    async def script() -> Response:
        return Response(
            pixel_script,
            media_type="application/javascript; charset=utf-8",
            headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    @app.get("/healthz")
    async def healthz() -> Response:
        try:
            await run_in_threadpool(pool.run, lambda cur: cur.execute("SELECT 1"))
        except DatabaseUnavailable as exc:
            log.warning("health check failed: %s", exc)
            headers = {"Retry-After": str(UNAVAILABLE_RETRY_AFTER)}
            return _error(503, "warehouse_unavailable", "the warehouse is unreachable", headers)
        return JSONResponse({"status": "ok"})

    return app


async def _read_body(request: Request, limit: int) -> bytes | None:
    """Read the request body; return None as soon as it exceeds ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _collect(state: _State, request: Request) -> Response:
    received_at = datetime.now(UTC)
    origin = request.headers.get("origin")
    client_address = request.client.host if request.client else "unknown"
    # Before the site is known, CORS headers go only to origins in the set the
    # last preflight loaded (empty until one arrives), so an error path never
    # waits on the warehouse.
    early_cors = _cors_headers(
        origin, origin is not None and normalise_origin(origin) in state.sites.all_allowed_origins(refresh=False)
    )

    wait = state.client_buckets.take(client_address)
    if wait:
        state.rejections.add("client_rate_limited")
        headers = {**early_cors, "Retry-After": _retry_after(wait)}
        return _error(
            429, "rate_limited", "too many requests from this address; retry after the Retry-After seconds", headers
        )

    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            state.rejections.add("bad_content_length")
            return _error(400, "invalid_request", "Content-Length is not a number", early_cors)
        if int(declared) > MAX_BODY_BYTES:
            state.rejections.add("too_large")
            return _error(413, "too_large", f"request body is larger than {MAX_BODY_BYTES} bytes", early_cors)
    body = await _read_body(request, MAX_BODY_BYTES)
    if body is None:
        state.rejections.add("too_large")
        return _error(413, "too_large", f"request body is larger than {MAX_BODY_BYTES} bytes", early_cors)

    try:
        document = json.loads(body, parse_constant=_reject_json_constant) if body else None
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, dict):
        state.rejections.add("not_json_object")
        problems = [_problem("", "request body must be a JSON object")]
        return _error(400, "invalid_request", "request body is not a JSON object", early_cors, problems=problems)

    site_key = document.get("site_key")
    if not isinstance(site_key, str) or not site_key or len(site_key) > MAX_SITE_KEY_CHARS:
        state.rejections.add("missing_site_key")
        return _error(401, "invalid_site_key", "site_key is missing or not a string", early_cors)
    try:
        site = await run_in_threadpool(state.sites.get, site_key)
    except DatabaseUnavailable as exc:
        log.warning("site lookup failed, responding with 503: %s", exc)
        return _unavailable(early_cors)
    if site is None:
        state.rejections.add("unknown_site_key")
        return _error(401, "invalid_site_key", "site_key is unknown or inactive", early_cors)

    cors = _cors_headers(origin, site.allows(origin))
    if not site.allows(origin):
        state.rejections.add("origin_not_allowed")
        return _error(403, "origin_not_allowed", "the Origin header is not an allowed origin of this site", cors)

    wait = state.site_buckets.take(site_key)
    if wait:
        state.rejections.add("site_rate_limited")
        headers = {**cors, "Retry-After": _retry_after(wait)}
        return _error(
            429, "rate_limited", "too many requests for this site; retry after the Retry-After seconds", headers
        )

    problems = validate_submission(document)
    replay_value = request.headers.get(REPLAY_HEADER)
    if state.settings.replay and replay_value is not None:
        try:
            received_at = parse_replay_instant(replay_value)
        except ValueError as exc:
            problems.append(_problem(f"header {REPLAY_HEADER}", f"must be ISO-8601 with a UTC offset: {exc}"))
    if problems:
        state.rejections.add("invalid_body")
        return _error(400, "invalid_request", f"{len(problems)} problem(s) in the submission", cors, problems=problems)

    submission_id = document["submission_id"]
    try:
        outcome = await run_in_threadpool(
            state.pool.run,
            lambda cur: _insert_submission(cur, submission_id, site, received_at, origin, document),
        )
    except DatabaseUnavailable as exc:
        log.warning("submission %s not stored, responding with 503: %s", submission_id, exc)
        return _unavailable(cors)
    except psycopg2.errors.ForeignKeyViolation:
        # The site row was deleted after it was cached.
        state.sites.evict(site_key)
        state.rejections.add("unknown_site_key")
        return _error(401, "invalid_site_key", "site_key is unknown or inactive", cors)
    except psycopg2.Error as exc:
        log.error("submission %s not stored: %s %s", submission_id, type(exc).__name__, exc.pgcode)
        return _unavailable(cors)

    if outcome == "created":
        log.info("stored pixel submission %s for account %s", submission_id, site.account_id)
        return JSONResponse({"submission_id": submission_id}, status_code=202, headers=cors)
    if outcome == "duplicate":
        log.info("pixel submission %s was already stored; nothing written", submission_id)
        return JSONResponse({"submission_id": submission_id}, status_code=200, headers=cors)
    state.rejections.add("submission_id_conflict")
    return _error(409, "conflict", "submission_id is already used by another site; generate a new one", cors)


def _unavailable(headers: dict[str, str]) -> JSONResponse:
    return _error(
        503,
        "warehouse_unavailable",
        "the submission was not stored; retry after the Retry-After seconds",
        {**headers, "Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
    )


def _insert_submission(
    cur: psycopg2.extensions.cursor,
    submission_id: str,
    site: PixelSite,
    received_at: datetime,
    origin: str | None,
    document: dict[str, Any],
) -> str:
    """Insert one submission; return "created", "duplicate" (same site) or "conflict" (another site)."""
    cur.execute(
        "INSERT INTO leadflow.pixel_submissions (submission_id, site_key, account_id, received_at, origin, payload)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (submission_id) DO NOTHING RETURNING submission_id",
        (submission_id, site.site_key, site.account_id, received_at, origin, psycopg2.extras.Json(document)),
    )
    if cur.fetchone() is not None:
        return "created"
    cur.execute("SELECT site_key FROM leadflow.pixel_submissions WHERE submission_id = %s", (submission_id,))
    row = cur.fetchone()
    return "duplicate" if row is not None and row[0] == site.site_key else "conflict"


async def _preflight(state: _State, request: Request) -> Response:
    """Respond to a CORS preflight for POST /v1/collect.

    With a ``site_key`` query parameter the site's own origins decide, so a
    site that allows any origin can be reached too. Without it the origin must
    be allowed by some active site, and the POST itself checks the site.
    """
    origin = request.headers.get("origin")
    method = request.headers.get("access-control-request-method", "").upper()
    if not origin or method != "POST":
        return Response(status_code=400, headers={"Vary": "Origin"})
    site_key = request.query_params.get("site_key")
    try:
        if site_key:
            site = await run_in_threadpool(state.sites.get, site_key)
            allowed = site is not None and site.allows(origin)
        else:
            allowed = normalise_origin(origin) in await run_in_threadpool(state.sites.all_allowed_origins)
    except DatabaseUnavailable as exc:
        log.warning("preflight failed, responding with 503: %s", exc)
        return Response(status_code=503, headers={"Vary": "Origin", "Retry-After": str(UNAVAILABLE_RETRY_AFTER)})
    if not allowed:
        state.rejections.add("preflight_origin_not_allowed")
        return Response(status_code=403, headers={"Vary": "Origin"})
    headers = {
        **_cors_headers(origin, True),
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "600",
    }
    return Response(status_code=204, headers=headers)
