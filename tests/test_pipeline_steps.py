"""The pipeline's steps in order, in-process, against PostgreSQL and the served sandbox.

This replays the small scenario in the DAGs' order: fetch, normalise, check,
enrich and push per window, review between windows, then the daily steps. It
calls the step functions directly, so a failure points at a step rather than
at a scheduler run. ``test_dag_runs.py`` covers the same flow through Airflow.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import psycopg2
import psycopg2.extras
import pytest

from leadflow import accounts, review, review_sim
from leadflow.devstack.connections import SANDBOX_PORTS, connections
from leadflow.runtime import RunContext
from leadflow.steps import enrich, ingest, lifecycle, push
from leadflow.steps.common import run_per_account
from sandbox.server import build_sandbox
from tests.expectations import LEAD_REF_SQL, attribution_rows, by_account, quarantine_counts

SMALL = Path(__file__).resolve().parents[1] / "scenarios" / "small.json"
def rows(dsn, sql, params=None):
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, params)
            return [dict(r) for r in cur.fetchall()]
    finally:
        conn.close()


def insert_pixel_submissions(dsn, scenario):
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        for account in scenario["accounts"]:
            pixel = account.get("pixel")
            if not pixel:
                continue
            for index, submission in enumerate(pixel.get("submissions", [])):
                received = datetime.fromisoformat(submission["submitted_at"].replace("Z", "+00:00")) + timedelta(seconds=2)
                payload = {k: submission.get(k) for k in ("form_id", "page_url", "submitted_at", "fields", "consent", "utm")}
                cur.execute(
                    "INSERT INTO leadflow.pixel_submissions VALUES (%s, %s, %s, %s, %s, %s)",
                    (str(uuid.uuid5(uuid.NAMESPACE_URL, f"{account['account_id']}/{index}")), pixel["site_key"], account["account_id"], received, None, json.dumps(payload)),
                )
    conn.close()


def replay_window(ctx: RunContext, validator) -> dict:
    """Run one 15-minute window's steps and checks in DAG order."""
    from leadflow.dq.checks import run_check

    outcome = {
        "linkedin": run_per_account(ctx, "fetch_linkedin_leads", lambda cur, a: ingest.fetch_linkedin(cur, ctx, a), applies=lambda a: "linkedin" in a.sources),
        "meta": run_per_account(ctx, "fetch_meta_leads", lambda cur, a: ingest.fetch_meta(cur, ctx, a), applies=lambda a: "meta" in a.sources),
        "pixel": run_per_account(ctx, "collect_pixel_leads", lambda cur, a: ingest.collect_pixel(cur, ctx, a), applies=lambda a: "pixel" in a.sources),
        "normalise": run_per_account(ctx, "normalise_leads", lambda cur, a: ingest.normalise(cur, ctx, a)),
    }
    run_check(ctx, "check_leads", validator)
    outcome["enrich"] = run_per_account(ctx, "enrich_leads", lambda cur, a: enrich.enrich(cur, ctx, a), requires=["normalise_leads", "check_leads"])
    run_check(ctx, "check_enrichment", validator)
    outcome["push"] = run_per_account(ctx, "push_ready_leads", lambda cur, a: push.push(cur, ctx, a), requires=["enrich_leads", "check_enrichment"])
    run_check(ctx, "check_push", validator)
    return outcome


@pytest.fixture(scope="module")
def replay(warehouse_dsn, tmp_path_factory):
    from tests.conftest import reset_schema

    reset_schema(warehouse_dsn)
    scenario = accounts.read_scenario(str(SMALL))
    mp = pytest.MonkeyPatch()
    for name, value in connections(scenario).items():
        mp.setenv(name, value)
    mp.setenv("LEADFLOW_REPLAY", "1")
    sandbox = build_sandbox(scenario)
    sandbox.clock.run_from(datetime.fromisoformat(scenario["clock"]["frozen_at"].replace("Z", "+00:00")))
    sandbox.serve({name: port for name, port in SANDBOX_PORTS.items() if name != "alerts"})
    accounts.load_scenario_accounts(scenario)
    insert_pixel_submissions(warehouse_dsn, scenario)
    work = tmp_path_factory.mktemp("review")
    from leadflow.dq.checks import Validator, run_check

    validator = Validator()
    start = datetime.fromisoformat(scenario["windows"]["start"].replace("Z", "+00:00"))
    step = timedelta(minutes=15)
    outcomes = {}
    try:
        for index in range(scenario["windows"]["count"]):
            window_start = start + index * step
            ctx = RunContext(f"w{index}", "lead_flow_15min", window_start, window_start + step, window_start + step)
            outcomes[f"w{index}"] = replay_window(ctx, validator)
            exported = work / f"queue-{index}.csv"
            review.export_queue(exported)
            review_sim.simulate(exported, work / f"decisions-{index}.csv")
            review.import_decisions(work / f"decisions-{index}.csv")
        day = start.replace(hour=0, minute=0)
        ctx = RunContext("daily", "lead_flow_daily", day, day + timedelta(days=1), day + timedelta(days=2))
        daily = {
            "deadlines": run_per_account(ctx, "apply_review_deadlines", lambda cur, a: lifecycle.apply_review_deadlines(cur, ctx, a)),
            "repair": run_per_account(ctx, "repair_map_ids", lambda cur, a: lifecycle.repair_map_ids(cur, ctx, a)),
            "push": run_per_account(ctx, "push_ready_leads", lambda cur, a: push.push(cur, ctx, a)),
            "pull": run_per_account(ctx, "pull_map_values", lambda cur, a: lifecycle.pull_map_values(cur, ctx, a)),
            "crm": run_per_account(ctx, "pull_crm_records", lambda cur, a: lifecycle.pull_crm(cur, ctx, a)),
        }
        run_check(ctx, "check_crm", validator)
        daily["attribution"] = run_per_account(ctx, "compute_attribution", lambda cur, a: lifecycle.compute_attribution(cur, ctx, a), requires=["check_crm"])
        run_check(ctx, "check_attribution", validator)
        daily["report"] = run_per_account(ctx, "report_service_levels", lambda cur, a: lifecycle.report_service_levels(cur, ctx, a))
        daily["report_check"] = run_check(ctx, "check_report", validator)
        outcomes["daily"] = daily
        yield {"scenario": scenario, "outcomes": outcomes, "dsn": warehouse_dsn, "sandbox": sandbox}
    finally:
        sandbox.stop()
        mp.undo()


def test_valid_leads_and_people(replay):
    expected = by_account(replay["scenario"])
    leads = {r["account_id"]: r["n"] for r in rows(replay["dsn"], "SELECT account_id, count(*) n FROM leadflow.leads GROUP BY 1")}
    people = {r["account_id"]: r["n"] for r in rows(replay["dsn"], "SELECT account_id, count(*) n FROM leadflow.people GROUP BY 1")}
    for account_id, item in expected.items():
        assert leads[account_id] == item["valid_leads"], account_id
        assert people[account_id] == item["distinct_people"], account_id


def test_quarantine_reasons(replay):
    expected = by_account(replay["scenario"])
    actual: dict[str, dict[str, int]] = {}
    for r in rows(replay["dsn"], "SELECT account_id, reason_code, count(*) n FROM leadflow.quarantine GROUP BY 1, 2"):
        actual.setdefault(r["account_id"], {})[r["reason_code"]] = r["n"]
    for account_id, item in expected.items():
        assert actual.get(account_id, {}) == quarantine_counts(item), account_id


def test_test_and_spam_flags(replay):
    expected = by_account(replay["scenario"])
    flags = {r["account_id"]: r for r in rows(replay["dsn"], "SELECT account_id, count(*) FILTER (WHERE is_test) t, count(*) FILTER (WHERE is_spam) s FROM leadflow.leads GROUP BY 1")}
    for account_id, item in expected.items():
        assert flags[account_id]["t"] == item["test_leads"], account_id
        assert flags[account_id]["s"] == item["spam_leads"], account_id


def test_attribution_matches_generator(replay):
    got = rows(
        replay["dsn"],
        f"""
        SELECT a.account_id, a.opportunity_id, a.kind, {LEAD_REF_SQL} AS ref
        FROM leadflow.attribution a JOIN leadflow.leads l USING (lead_id)
        JOIN leadflow.raw_leads r ON r.account_id = l.account_id AND r.source = l.source AND r.source_lead_id = l.source_lead_id
        """,
    )
    assert {(r["account_id"], r["opportunity_id"], r["kind"], r["ref"]) for r in got} == attribution_rows(replay["scenario"])


def test_every_step_succeeded(replay):
    failed = rows(replay["dsn"], "SELECT run_id, step, account_id, status, detail FROM leadflow.step_runs WHERE status <> 'success' ORDER BY 1, 2, 3")
    assert failed == []


def test_existing_map_records_reused(replay):
    """A pushed person whose email already exists in the MAP updates that record, never a new one."""
    pushed = {
        (r["account_id"], r["email_key"]): r["map_record_id"]
        for r in rows(
            replay["dsn"],
            "SELECT m.account_id, p.email_key, m.map_record_id FROM leadflow.map_records m JOIN leadflow.people p USING (person_id)",
        )
    }
    checked = 0
    for account in replay["scenario"]["accounts"]:
        spec = account["map"]
        existing: dict[str, list[dict]] = {}
        if spec["type"] == "marketo":
            for record in spec.get("leads", []):
                existing.setdefault(record["email"].strip().lower(), []).append({"id": str(record["id"]), "updated": record["updatedAt"]})
        else:
            for contact in spec.get("contacts", []):
                email = contact["properties"]["email"].strip().lower()
                existing.setdefault(email, []).append({"id": str(contact["id"]), "updated": contact["updatedAt"]})
        for email, records in existing.items():
            key = (account["account_id"], email)
            if key not in pushed:
                continue
            newest = sorted(records, key=lambda r: (r["updated"], -int(r["id"])), reverse=True)[0]
            assert pushed[key] == newest["id"], (key, records)
            checked += 1
    assert checked >= 2


def test_duplicate_email_updates_newest(replay):
    """Of two MAP records with one email, the push updates the most recently updated one."""
    alder = next(a for a in replay["scenario"]["accounts"] if a["map"]["type"] == "marketo")
    by_email: dict[str, list[dict]] = {}
    for record in alder["map"]["leads"]:
        by_email.setdefault(record["email"].strip().lower(), []).append(record)
    duplicated = {email: records for email, records in by_email.items() if len(records) > 1}
    assert duplicated, "the small scenario should hold a duplicated Marketo email"
    state = replay["sandbox"].apps["marketo"].dump_state()[alder["account_id"]]["leads"]
    for email, records in duplicated.items():
        newest = max(records, key=lambda r: (r["updatedAt"], -r["id"]))
        older = [r for r in records if r is not newest]
        now = {str(r["id"]): r for r in state}
        pushed = rows(
            replay["dsn"],
            "SELECT m.map_record_id FROM leadflow.map_records m JOIN leadflow.people p USING (person_id) WHERE p.email_key = %s",
            (email,),
        )
        if pushed:
            assert pushed[0]["map_record_id"] == str(newest["id"])
        for record in older:
            assert now[str(record["id"])]["updatedAt"] == record["updatedAt"], "the older duplicate was written"
