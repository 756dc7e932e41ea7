"""Shared fixtures: a real PostgreSQL warehouse and a clean schema per test.

Without ``AIRFLOW_CONN_WAREHOUSE`` the tests start the embedded PostgreSQL in
``.local/test-pg`` (port 15433, or ``LEADFLOW_TEST_PG_PORT``, so a running
demo stack on 15432 is left alone) and stop it at the end. With the variable set they use that server and
drop and recreate the ``leadflow`` schema in it, so point it at a scratch
database.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg2
import pytest

from leadflow import localpg, warehouse

ROOT = Path(__file__).resolve().parents[1]
TEST_PG_DIR = ROOT / ".local" / "test-pg"
TEST_PG_PORT = int(os.environ.get("LEADFLOW_TEST_PG_PORT", "15433"))


@pytest.fixture(scope="session")
def warehouse_dsn():
    configured = os.environ.get("AIRFLOW_CONN_WAREHOUSE")
    if configured:
        yield warehouse.dsn()
        return
    dsn = localpg.start(TEST_PG_DIR, TEST_PG_PORT)
    os.environ["AIRFLOW_CONN_WAREHOUSE"] = dsn
    try:
        yield dsn
    finally:
        os.environ.pop("AIRFLOW_CONN_WAREHOUSE", None)
        localpg.stop(TEST_PG_DIR)


def reset_schema(dsn: str) -> None:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS leadflow CASCADE")
        cur.execute("DROP TABLE IF EXISTS public.leadflow_migrations")
    conn.close()
    warehouse.migrate()


@pytest.fixture
def clean_warehouse(warehouse_dsn):
    """A freshly migrated, empty warehouse schema."""
    reset_schema(warehouse_dsn)
    return warehouse_dsn
