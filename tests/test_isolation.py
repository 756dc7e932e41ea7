"""Per-account isolation: a failed check or step blocks only its own account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg2
import psycopg2.extras
import pytest

from leadflow import accounts, warehouse
from leadflow.runtime import RunContext
from leadflow.steps.common import AccountsFailed, StepResult, run_per_account

WINDOW_START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(minutes=15)


def seed(dsn: str) -> None:
    with warehouse.transaction() as cur:
        for account_id in ("alpha", "beta"):
            accounts.upsert_account(cur, {"account_id": account_id, "name": account_id.title(), "map": {"type": "marketo"}})
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        for index, (account_id, email, key) in enumerate(
            [("alpha", "ana@alpha.example", "ana@alpha.example"), ("beta", "Bo@Beta.example", "someone-else@beta.example")]
        ):
            cur.execute(
                "INSERT INTO leadflow.people (account_id, email_key, created_at) VALUES (%s, %s, %s) RETURNING person_id",
                (account_id, key, WINDOW_END),
            )
            person_id = cur.fetchone()[0]
            cur.execute(
                """
                INSERT INTO leadflow.leads (account_id, source, source_lead_id, person_id, converted_at, available_at,
                    ingested_at, ingested_run_id, email, optin_email)
                VALUES (%s, 'linkedin', %s, %s, %s, %s, %s, 'run-1', %s, %s) RETURNING lead_id
                """,
                (account_id, f"lead-{index}", person_id, WINDOW_START, WINDOW_START, WINDOW_END, email, email),
            )
            lead_id = cur.fetchone()[0]
            cur.execute(
                "INSERT INTO leadflow.review_queue (lead_id, account_id, queued_at, deadline_at) VALUES (%s, %s, %s, %s)",
                (lead_id, account_id, WINDOW_END, WINDOW_START + timedelta(hours=24)),
            )
    conn.close()


@pytest.fixture
def ctx(clean_warehouse):
    seed(clean_warehouse)
    return RunContext("run-1", "lead_flow_15min", WINDOW_START, WINDOW_END, WINDOW_END)


def step_status(dsn: str, step: str) -> dict[str, str]:
    conn = psycopg2.connect(dsn)
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute("SELECT account_id, status FROM leadflow.step_runs WHERE run_id = 'run-1' AND step = %s", (step,))
        result = {row["account_id"]: row["status"] for row in cur.fetchall()}
    conn.close()
    return result


def test_failed_check_blocks_only_that_account(ctx, clean_warehouse):
    from leadflow.dq.checks import run_check

    passed = run_check(ctx, "check_leads")
    assert passed == {"alpha": True, "beta": False}
    assert step_status(clean_warehouse, "check_leads") == {"alpha": "success", "beta": "failed"}

    processed = []

    def work(cur, account):
        processed.append(account.account_id)
        return StepResult(rows_in=1, rows_out=1)

    outcomes = run_per_account(ctx, "enrich_leads", work, requires=["check_leads"])
    assert processed == ["alpha"]
    assert outcomes["alpha"]["status"] == "success"
    assert outcomes["beta"] == {"status": "blocked", "detail": "blocked by check_leads"}
    assert step_status(clean_warehouse, "enrich_leads") == {"alpha": "success", "beta": "blocked"}


def test_failed_expectation_is_stored(ctx, clean_warehouse):
    from leadflow.dq.checks import run_check

    run_check(ctx, "check_leads")
    conn = psycopg2.connect(clean_warehouse)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT expectation, column_name FROM leadflow.dq_results WHERE account_id = 'beta' AND NOT success ORDER BY 1"
        )
        failed = cur.fetchall()
    conn.close()
    assert failed == [("leads.expect_column_values_to_be_in_set", "email_key_matches")]


def test_one_account_error_does_not_stop_others(ctx, clean_warehouse):
    def work(cur, account):
        if account.account_id == "alpha":
            raise RuntimeError("vendor answered 500 twice")
        return StepResult(rows_out=2)

    with pytest.raises(AccountsFailed) as raised:
        run_per_account(ctx, "fetch_linkedin_leads", work)
    assert raised.value.failures == {"alpha": "RuntimeError: vendor answered 500 twice"}
    assert step_status(clean_warehouse, "fetch_linkedin_leads") == {"alpha": "failed", "beta": "success"}


def test_attribution_settings_change_bumps_rule_version(clean_warehouse):
    spec = {"account_id": "alpha", "name": "Alpha", "settings": {"attribution": {"triggered_window_days": 90, "influenced_window_days": 365}}}
    with warehouse.transaction() as cur:
        accounts.upsert_account(cur, spec)
        accounts.upsert_account(cur, spec)
        cur.execute("SELECT attribution_rule_version FROM leadflow.accounts WHERE account_id = 'alpha'")
        unchanged = cur.fetchone()["attribution_rule_version"]
        spec["settings"]["attribution"] = {"triggered_window_days": 30, "influenced_window_days": 365}
        accounts.upsert_account(cur, spec)
        cur.execute("SELECT attribution_rule_version FROM leadflow.accounts WHERE account_id = 'alpha'")
        changed = cur.fetchone()["attribution_rule_version"]
    assert unchanged == 1
    assert changed == 2
