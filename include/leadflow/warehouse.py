"""Warehouse access: connection lookup, migrations and SQL files.

Product code names only the Airflow connection id ``warehouse``. Inside
Airflow the connection comes from Airflow's secrets backends. Outside it (the
pixel collector, the review desk command, tests) it comes from the
``AIRFLOW_CONN_WAREHOUSE`` environment variable in URI or JSON form. The local
stack sets that variable, so Airflow finds the connection there too.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import psycopg2
import psycopg2.extras

log = logging.getLogger(__name__)

CONN_ID = "warehouse"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = Path(os.environ.get("LEADFLOW_SQL_DIR", PROJECT_ROOT / "sql"))
TRANSFORMS_DIR = Path(__file__).resolve().parent / "sql"
# Any fixed 64-bit number works; it only has to be the same in every process.
_MIGRATION_LOCK_KEY = 7_310_552_001


def _dsn_from_env() -> str | None:
    value = os.environ.get("AIRFLOW_CONN_WAREHOUSE")
    if not value:
        return None
    if value.lstrip().startswith("{"):
        spec = json.loads(value)
        login = quote(spec.get("login") or "", safe="")
        password = quote(spec.get("password") or "", safe="")
        auth = ""
        if login:
            auth = f"{login}:{password}@" if password else f"{login}@"
        port = f":{spec['port']}" if spec.get("port") else ""
        return f"postgresql://{auth}{spec.get('host', 'localhost')}{port}/{spec.get('schema', '')}"
    parts = urlsplit(value)
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql") else parts.scheme
    return parts._replace(scheme=scheme).geturl()


def dsn() -> str:
    """Return the libpq URI of the warehouse connection."""
    from_env = _dsn_from_env()
    if from_env:
        return from_env
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(CONN_ID)
    auth = ""
    if conn.login:
        auth = quote(conn.login, safe="")
        if conn.password:
            auth += ":" + quote(conn.password, safe="")
        auth += "@"
    port = f":{conn.port}" if conn.port else ""
    return f"postgresql://{auth}{conn.host}{port}/{conn.schema or ''}"


def redacted(uri: str) -> str:
    """Return ``uri`` without its password, for logs and messages."""
    parts = urlsplit(uri)
    if parts.password:
        netloc = f"{unquote(parts.username or '')}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    return uri


def connect() -> psycopg2.extensions.connection:
    conn = psycopg2.connect(dsn(), connect_timeout=10, application_name="leadflow")
    return conn


@contextmanager
def transaction() -> Iterator[psycopg2.extensions.cursor]:
    """Yield a dict cursor inside one transaction; commit on success, roll back on error."""
    conn = connect()
    try:
        with conn:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                yield cur
    finally:
        conn.close()


def read_transform(name: str) -> str:
    """Return the text of ``include/leadflow/sql/<name>.sql``."""
    return (TRANSFORMS_DIR / f"{name}.sql").read_text(encoding="utf-8")


def run_transform(cur: psycopg2.extensions.cursor, name: str, params: dict[str, Any]) -> int:
    """Execute a transform file with bound parameters; return the affected row count."""
    cur.execute(read_transform(name), params)
    return cur.rowcount


def migrate(migrations_dir: Path | None = None) -> list[str]:
    """Apply every ``sql/NNN_*.sql`` file not yet applied, in name order.

    Each file runs in its own transaction together with its bookkeeping row, and
    an advisory lock keeps concurrent callers from applying a file twice.
    Returns the names applied by this call.
    """
    directory = Path(migrations_dir or MIGRATIONS_DIR)
    files = sorted(p for p in directory.glob("*.sql") if p.name[:3].isdigit())
    applied_now: list[str] = []
    conn = connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS public.leadflow_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"
            )
            cur.execute("SELECT name FROM public.leadflow_migrations")
            done = {row[0] for row in cur.fetchall()}
        for path in files:
            if path.name in done:
                continue
            conn.autocommit = False
            with conn, conn.cursor() as cur:
                cur.execute(path.read_text(encoding="utf-8"))
                cur.execute("INSERT INTO public.leadflow_migrations (name) VALUES (%s)", (path.name,))
            applied_now.append(path.name)
            log.info("applied migration %s", path.name)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))
    finally:
        conn.close()
    return applied_now
