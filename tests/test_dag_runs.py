"""Whole-DAG runs through a real Airflow scheduler against PostgreSQL and the sandbox.

The module starts the local stack with the small scenario, replays its windows
and its day exactly as ``make demo`` does, and checks the warehouse and the
sandbox's MAP and CRM records. It then clears and reruns a window and the daily
run and checks that nothing changed and nothing was created twice.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import psycopg2
import psycopg2.extras
import pytest
import requests

from leadflow.devstack import stack
from leadflow.devstack.connections import SANDBOX_PORTS
from tests.expectations import LEAD_REF_SQL, attribution_rows, by_account, quarantine_counts

pytestmark = pytest.mark.airflow

SMALL = Path(__file__).resolve().parents[1] / "scenarios" / "small.json"


def sandbox_state(vendor: str) -> dict:
    return requests.get(f"http://127.0.0.1:{SANDBOX_PORTS[vendor]}/_sandbox/state", timeout=10).json()


def sandbox_requests(vendor: str) -> list[dict]:
    return requests.get(f"http://127.0.0.1:{SANDBOX_PORTS[vendor]}/_sandbox/requests", timeout=10).json()


def query(dsn: str, sql: str, params=None) -> list[dict]:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, params)
            return [dict(row) for row in cur.fetchall()]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def replayed(warehouse_dsn):
    from leadflow import accounts

    scenario = accounts.read_scenario(str(SMALL))
    started = time.monotonic()
    try:
        stack.start_stack(SMALL)
        api = stack.AirflowApi()
        api.login()
        states = stack.replay(api, scenario)
        yield {"api": api, "scenario": scenario, "states": states, "dsn": warehouse_dsn, "seconds": time.monotonic() - started}
    finally:
        stack.stop_stack(stop_postgres=True)


def test_every_run_succeeds(replayed):
    assert replayed["states"], "no runs were replayed"
    assert {state for state in replayed["states"].values()} == {"success"}


def test_ingested_counts_match_scenario(replayed):
    expected = by_account(replayed["scenario"])
    rows = query(replayed["dsn"], "SELECT account_id, count(*) AS n FROM leadflow.leads GROUP BY 1")
    leads = {row["account_id"]: row["n"] for row in rows}
    people = {row["account_id"]: row["n"] for row in query(replayed["dsn"], "SELECT account_id, count(*) AS n FROM leadflow.people GROUP BY 1")}
    for account_id, item in expected.items():
        assert leads.get(account_id, 0) == item["valid_leads"], account_id
        assert people.get(account_id, 0) == item["distinct_people"], account_id


def test_quarantine_reasons_match_scenario(replayed):
    expected = by_account(replayed["scenario"])
    rows = query(replayed["dsn"], "SELECT account_id, reason_code, count(*) AS n FROM leadflow.quarantine GROUP BY 1, 2")
    actual: dict[str, dict[str, int]] = {}
    for row in rows:
        actual.setdefault(row["account_id"], {})[row["reason_code"]] = row["n"]
    for account_id, item in expected.items():
        assert actual.get(account_id, {}) == quarantine_counts(item), account_id
    reasons = query(replayed["dsn"], "SELECT reason FROM leadflow.quarantine WHERE reason IS NULL OR length(reason) < 10")
    assert reasons == []


def test_every_lead_queued_for_review(replayed):
    rows = query(
        replayed["dsn"],
        "SELECT count(*) AS n FROM leadflow.leads l LEFT JOIN leadflow.review_queue r USING (lead_id) WHERE r.lead_id IS NULL",
    )
    assert rows[0]["n"] == 0


def test_one_map_record_per_person(replayed):
    rows = query(
        replayed["dsn"],
        """
        SELECT m.account_id, m.map_type, m.map_record_id, p.email_key
        FROM leadflow.map_records m JOIN leadflow.people p USING (person_id) ORDER BY 1, 3
        """,
    )
    assert rows, "nothing was pushed"
    ids = Counter((row["account_id"], row["map_record_id"]) for row in rows)
    assert [key for key, count in ids.items() if count > 1] == []
    marketo = sandbox_state("marketo")
    hubspot = sandbox_state("hubspot")
    for row in rows:
        if row["map_type"] == "marketo":
            records = {str(r["id"]): r for r in marketo[row["account_id"]]["leads"]}
            assert row["map_record_id"] in records, row
            assert records[row["map_record_id"]]["email"].strip().lower() == row["email_key"]
        else:
            contacts = {str(c["id"]): c for c in hubspot[row["account_id"]]["contacts"]}
            assert row["map_record_id"] in contacts, row
            assert contacts[row["map_record_id"]]["properties"]["email"].strip().lower() == row["email_key"]


def test_excluded_test_and_spam_never_pushed(replayed):
    rows = query(
        replayed["dsn"],
        """
        SELECT l.lead_id, l.is_test, l.is_spam
        FROM leadflow.push_log p JOIN leadflow.leads l USING (lead_id)
        JOIN leadflow.accounts a ON a.account_id = l.account_id
        WHERE p.action IN ('created', 'updated')
          AND ((l.is_test AND NOT (a.settings->>'include_test_leads')::boolean)
               OR (l.is_spam AND NOT (a.settings->>'include_spam_leads')::boolean))
        """,
    )
    assert rows == []


def test_rejected_never_pushed_after_decision(replayed):
    rows = query(
        replayed["dsn"],
        """
        SELECT l.lead_id, a.settings->>'push_before_verification' AS early, p.pushed_at, r.decided_at
        FROM leadflow.push_log p JOIN leadflow.leads l USING (lead_id) JOIN leadflow.review_queue r USING (lead_id)
        JOIN leadflow.accounts a ON a.account_id = l.account_id
        WHERE p.action IN ('created', 'updated') AND r.status = 'rejected'
        """,
    )
    for row in rows:
        assert row["early"] == "true", row
        assert row["pushed_at"] <= row["decided_at"], row


def test_attribution_rows(replayed):
    got = query(
        replayed["dsn"],
        f"""
        SELECT a.account_id, a.opportunity_id, a.kind, a.rule_version, {LEAD_REF_SQL} AS ref
        FROM leadflow.attribution a JOIN leadflow.leads l USING (lead_id)
        JOIN leadflow.raw_leads r ON r.account_id = l.account_id AND r.source = l.source AND r.source_lead_id = l.source_lead_id
        """,
    )
    assert {(r["account_id"], r["opportunity_id"], r["kind"], r["ref"]) for r in got} == attribution_rows(replayed["scenario"])
    assert {r["rule_version"] for r in got} == {1}


def test_alerts_reach_both_channels_without_personal_data(replayed):
    state = sandbox_state("alerts")
    texts = [hook["body"]["text"] if isinstance(hook["body"], dict) else str(hook["body"]) for hook in state["webhooks"]]
    bodies = [mail["body"] for mail in state["emails"]]
    assert texts, "no webhook alert was received"
    assert len(bodies) == len(texts)
    overdue = [t for t in texts if "review overdue" in t]
    assert overdue, texts
    for text in texts + bodies:
        assert "@" not in text, text


def test_dq_results_stored_and_passed(replayed):
    rows = query(replayed["dsn"], "SELECT check_name, bool_and(success) AS ok, count(*) AS n FROM leadflow.dq_results GROUP BY 1 ORDER BY 1")
    names = {row["check_name"] for row in rows}
    assert names == {"check_leads", "check_enrichment", "check_push", "check_map_pull", "check_crm", "check_attribution", "check_report"}
    assert all(row["ok"] for row in rows), rows


def test_service_levels_reported(replayed):
    rows = query(replayed["dsn"], "SELECT DISTINCT promise FROM leadflow.service_levels")
    assert {"native_form_ingest", "landing_page_ingest", "human_verification", "push_to_map", "map_pull_freshness", "attribution_freshness"} <= {
        row["promise"] for row in rows
    }


def snapshot(dsn: str) -> dict:
    return {
        "leads": query(dsn, "SELECT account_id, source, source_lead_id, person_id, email, business_email FROM leadflow.leads ORDER BY 1, 2, 3"),
        "quarantine": query(dsn, "SELECT account_id, source, source_lead_id, reason_code FROM leadflow.quarantine ORDER BY 1, 2, 3"),
        "map_records": query(dsn, "SELECT account_id, person_id, map_record_id, last_pushed_hash FROM leadflow.map_records ORDER BY 1, 2"),
        "attribution": query(dsn, "SELECT account_id, lead_id, opportunity_id, kind, matched_by FROM leadflow.attribution ORDER BY 1, 2, 3, 4"),
        "map_values": query(dsn, "SELECT account_id, person_id, score, first_mql_date, latest_mql_date FROM leadflow.map_values ORDER BY 1, 2"),
        "pushed_leads": query(dsn, "SELECT lead_id, stage, action FROM leadflow.push_log WHERE action IN ('created', 'updated') ORDER BY 1, 2, 3"),
    }


def map_creates() -> int:
    creates = 0
    for record in sandbox_requests("marketo"):
        if record["path"] == "/rest/v1/leads.json" and record["method"] == "POST" and '"createOnly"' in record["body"]:
            creates += record["body"].count('"email"')
    for record in sandbox_requests("hubspot"):
        if record["path"].endswith("/batch/create") or record["path"].endswith("/batch/upsert"):
            creates += record["body"].count('"properties"')
    return creates


def test_clear_and_rerun_changes_nothing(replayed):
    api = replayed["api"]
    before = snapshot(replayed["dsn"])
    creates_before = map_creates()
    marketo_before = sandbox_state("marketo")
    hubspot_before = sandbox_state("hubspot")
    rerun = [run_id for run_id in replayed["states"]]
    for run_id in rerun:
        dag_id = "lead_flow_daily" if len(run_id) == len("replay__20261130") else "lead_flow_15min"
        response = api.call("POST", f"/dags/{dag_id}/clearTaskInstances", json={"dag_run_id": run_id, "dry_run": False, "only_failed": False, "reset_dag_runs": True})
        assert response.status_code == 200, response.text
        assert api.wait_for_run(dag_id, run_id, timeout=900) == "success"
    after = snapshot(replayed["dsn"])
    for key in before:
        assert after[key] == before[key], key
    assert map_creates() == creates_before
    assert [len(v["leads"]) for v in sandbox_state("marketo").values()] == [len(v["leads"]) for v in marketo_before.values()]
    assert [len(v["contacts"]) for v in sandbox_state("hubspot").values()] == [len(v["contacts"]) for v in hubspot_before.values()]


def test_rerun_one_account_one_window(replayed):
    api = replayed["api"]
    before = snapshot(replayed["dsn"])
    creates_before = map_creates()
    first = replayed["scenario"]["windows"]["start"]
    account_id = replayed["scenario"]["accounts"][0]["account_id"]
    response = api.call(
        "POST",
        "/dags/lead_flow_15min/dagRuns",
        json={"dag_run_id": "manual__one_account", "logical_date": None, "conf": {"account_ids": [account_id], "window_start": first}},
    )
    assert response.status_code == 200, response.text
    assert api.wait_for_run("lead_flow_15min", "manual__one_account", timeout=600) == "success"
    steps = query(
        replayed["dsn"],
        "SELECT DISTINCT account_id, window_start FROM leadflow.step_runs WHERE run_id = 'manual__one_account'",
    )
    assert {row["account_id"] for row in steps} == {account_id}
    assert {row["window_start"] for row in steps} == {datetime.fromisoformat(first.replace("Z", "+00:00"))}
    assert snapshot(replayed["dsn"]) == before
    assert map_creates() == creates_before
