"""The local stack: warehouse, vendor sandbox, pixel collector and a real Airflow.

``demo`` starts everything, replays the scenario's windows through the Airflow
scheduler (the 15-minute DAG per window, a simulated review team between
windows, then the daily DAG), prints the per-account funnel, writes
``.local/demo-summary.json`` and stops what it started. ``up`` does the same
replay and leaves the stack running for the Airflow UI; ``down`` stops it.
"""

from __future__ import annotations

import csv
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import requests

from leadflow import accounts, localpg, warehouse
from leadflow.devstack import services, summary
from leadflow.devstack.airflow_api import API_URL, AirflowApi, airflow_env, write_file
from leadflow.devstack.connections import SANDBOX_PORTS, connections
from leadflow.devstack.services import LOCAL, ROOT

log = logging.getLogger(__name__)

PG_DIR = LOCAL / "pg"
PG_PORT = int(os.environ.get("LEADFLOW_PG_PORT", str(localpg.DEFAULT_PORT)))
COLLECTOR_PORT = 18200
COLLECTOR_URL = f"http://127.0.0.1:{COLLECTOR_PORT}"
DEFAULT_SCENARIO = ROOT / "scenarios" / "default.json"
SUMMARY_PATH = LOCAL / "demo-summary.json"
AIRFLOW_SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
ALL_SERVICES = (*AIRFLOW_SERVICES, "collector", "sandbox")
BIN = Path(sys.executable).parent


def _say(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _warehouse_uri() -> tuple[str, bool]:
    """Return the warehouse URI and whether the embedded server provides it."""
    configured = os.environ.get("AIRFLOW_CONN_WAREHOUSE")
    if configured:
        return warehouse.dsn(), False
    return localpg.dsn(PG_PORT, "warehouse"), True


def reset_warehouse() -> None:
    """Replace the ``leadflow`` schema with an empty, migrated one."""
    conn = psycopg2.connect(warehouse.dsn())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS leadflow CASCADE")
        cur.execute("DROP TABLE IF EXISTS public.leadflow_migrations")
    conn.close()
    warehouse.migrate()


def start_stack(scenario_path: Path, schedule_runs: bool = False) -> dict[str, str]:
    """Start every component; return the environment the Airflow processes use."""
    scenario = accounts.read_scenario(str(scenario_path))
    t0 = time.monotonic()
    localpg.start(PG_DIR, PG_PORT)
    uri, embedded = _warehouse_uri()
    os.environ["AIRFLOW_CONN_WAREHOUSE"] = uri
    _say(f"warehouse ready ({'embedded PostgreSQL in .local/pg' if embedded else warehouse.redacted(uri)})")
    reset_warehouse()
    count = accounts.load_scenario_accounts(scenario)
    _say(f"warehouse schema migrated, {count} accounts loaded from {scenario_path.name}")

    base_env = dict(os.environ)
    base_env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "include"), str(ROOT)])
    base_env["LEADFLOW_REPLAY"] = "1"
    # The replay posts a whole scenario from one address in a few seconds.
    base_env["LEADFLOW_COLLECTOR_CLIENT_BURST"] = "100000"
    base_env["LEADFLOW_COLLECTOR_CLIENT_RATE_PER_MINUTE"] = "100000"
    base_env["LEADFLOW_COLLECTOR_SITE_BURST"] = "100000"
    base_env["LEADFLOW_COLLECTOR_SITE_RATE_PER_MINUTE"] = "100000"
    services.start("sandbox", [sys.executable, "-m", "sandbox", "--scenario", str(scenario_path), "--urls-file", str(LOCAL / "run" / "sandbox-urls.json")], base_env)
    services.wait_http(f"http://127.0.0.1:{SANDBOX_PORTS['linkedin']}/_sandbox/clock", 30, "sandbox")
    clock_spec = scenario.get("clock") or {}
    clock_at = clock_spec.get("start_at") or clock_spec.get("frozen_at")
    if clock_at:
        # A frozen clock would stop rolling rate-limit windows; let it run from the scenario's instant.
        requests.post(f"http://127.0.0.1:{SANDBOX_PORTS['linkedin']}/_sandbox/clock", json={"start_at": clock_at}, timeout=10).raise_for_status()
    services.start("collector", [sys.executable, "-m", "leadflow.collector", "--host", "127.0.0.1", "--port", str(COLLECTOR_PORT)], base_env)
    services.wait_http(f"{COLLECTOR_URL}/healthz", 60, "collector")
    _say("vendor sandbox and pixel collector answering")

    metadata_uri = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or f"postgresql+psycopg2://postgres@127.0.0.1:{PG_PORT}/airflow"
    env = airflow_env(metadata_uri, {**connections(scenario), "AIRFLOW_CONN_WAREHOUSE": uri, "LEADFLOW_REPLAY": "1"}, schedule_runs)
    migrate = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, cwd=ROOT, capture_output=True, text=True)
    if migrate.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout[-3000:]}\n{migrate.stderr[-3000:]}")
    _say("Airflow metadata database migrated")
    services.start("api-server", [str(BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(API_URL.rsplit(":", 1)[1])], env)
    # LocalExecutor writes task logs to local disk, where the API server reads
    # them, so the scheduler's log server (which binds every interface) is off.
    services.start("scheduler", [str(BIN / "airflow"), "scheduler", "--skip-serve-logs"], env)
    services.start("dag-processor", [str(BIN / "airflow"), "dag-processor"], env)
    if schedule_runs:
        services.start("triggerer", [str(BIN / "airflow"), "triggerer"], env)
    services.wait_http(f"{API_URL}/api/v2/monitor/health", 120, "api-server", ok=lambda r: r.status_code == 200)
    _say(f"Airflow API server, scheduler and DAG processor running ({time.monotonic() - t0:.0f}s since start)")
    return env


def stop_stack(stop_postgres: bool = True) -> None:
    services.stop(*ALL_SERVICES)
    if stop_postgres:
        localpg.stop(PG_DIR)


def post_pixel_submissions(scenario: dict[str, Any]) -> int:
    """Send every scenario pixel submission to the collector in the pixel's wire format."""
    posted = 0
    session = requests.Session()
    items = []
    for account in scenario["accounts"]:
        pixel = account.get("pixel")
        if not pixel:
            continue
        origin = (pixel.get("allowed_origins") or [None])[0]
        for index, submission in enumerate(pixel.get("submissions", [])):
            items.append((submission["submitted_at"], account["account_id"], index, pixel["site_key"], origin, submission))
    for submitted_at, account_id, index, site_key, origin, submission in sorted(items, key=lambda i: (i[0], i[1], i[2])):
        body = {
            "submission_id": submission.get("submission_id") or _stable_uuid(account_id, index),
            "site_key": site_key,
            "form_id": submission.get("form_id"),
            "page_url": submission.get("page_url"),
            "submitted_at": submitted_at,
            "fields": submission.get("fields", {}),
            "consent": submission.get("consent"),
            "utm": submission.get("utm", {}),
        }
        headers = {"X-Leadflow-Replay-Received-At": (parse_time(submitted_at) + timedelta(seconds=2)).isoformat()}
        if origin:
            headers["Origin"] = origin
        response = session.post(f"{COLLECTOR_URL}/v1/collect", json=body, headers=headers, timeout=30)
        if response.status_code not in (200, 202):
            raise RuntimeError(f"collector rejected scenario submission {account_id}#{index}: HTTP {response.status_code} {response.text[:300]}")
        posted += 1
    return posted


def _stable_uuid(account_id: str, index: int) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"leadflow-scenario/{account_id}/{index}"))


def review_round(cutoff: datetime, work_dir: Path, round_no: int) -> dict[str, int]:
    """Export the queue, let the simulated team decide, import decisions made by ``cutoff``."""
    from leadflow import review, review_sim

    work_dir.mkdir(parents=True, exist_ok=True)
    export_path = work_dir / f"queue-{round_no:02d}.csv"
    decisions_path = work_dir / f"decisions-{round_no:02d}.csv"
    due_path = work_dir / f"import-{round_no:02d}.csv"
    exported = review.export_queue(export_path)
    if not exported:
        return {"exported": 0, "imported": 0}
    review_sim.simulate(export_path, decisions_path)
    with decisions_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fieldnames = reader.fieldnames or []
        rows = [row for row in reader if row.get("decision") and row.get("decided_at") and parse_time(row["decided_at"]) <= cutoff]
    with due_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    report = review.import_decisions(due_path, import_batch=f"demo-round-{round_no:02d}")
    if report.errors:
        raise RuntimeError(f"review import round {round_no} had {len(report.errors)} errors; see {due_path}.errors.csv")
    return {"exported": exported, "imported": report.applied}


def replay(api: AirflowApi, scenario: dict[str, Any]) -> dict[str, str]:
    """Run the scenario's windows and its day through the scheduler; return run states."""
    for dag_id in ("lead_flow_15min", "lead_flow_daily"):
        api.wait_for_dag(dag_id)
        api.delete_runs(dag_id)
        api.unpause(dag_id)
    posted = post_pixel_submissions(scenario)
    _say(f"posted {posted} landing-page submissions to the pixel collector")

    windows = scenario["windows"]
    start = parse_time(windows["start"])
    step = timedelta(minutes=int(windows.get("minutes", 15)))
    states: dict[str, str] = {}
    review_dir = LOCAL / "review"
    # One window more than the scenario has: it fetches nothing and pushes the
    # decisions the review desk made during the last scenario window.
    for index in range(int(windows["count"]) + 1):
        window_start = start + index * step
        run_id = f"replay__{window_start:%Y%m%dT%H%M}"
        t0 = time.monotonic()
        api.trigger("lead_flow_15min", run_id, window_start, window_start + step)
        state = api.wait_for_run("lead_flow_15min", run_id)
        states[run_id] = state
        counts = review_round(window_start + 2 * step, review_dir, index + 1)
        _say(f"15-minute run {window_start:%Y-%m-%d %H:%M} {state} in {time.monotonic() - t0:.0f}s; review desk exported {counts['exported']}, imported {counts['imported']}")

    # The daily DAG runs once for every day the windows touch, in order. A
    # replayed daily run is stamped 24 h after its day ends, so the review
    # decisions made by then are imported before it.
    last_end = start + (int(windows["count"]) + 1) * step
    day_start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    round_no = 90
    while day_start < last_end:
        round_no += 1
        counts = review_round(day_start + timedelta(days=2), review_dir, round_no)
        _say(f"review desk decisions made by {day_start + timedelta(days=2):%Y-%m-%d %H:%M} imported: {counts['imported']}")
        run_id = f"replay__{day_start:%Y%m%d}"
        t0 = time.monotonic()
        api.trigger("lead_flow_daily", run_id, day_start, day_start + timedelta(days=1))
        states[run_id] = api.wait_for_run("lead_flow_daily", run_id, timeout=900)
        _say(f"daily run {day_start:%Y-%m-%d} {states[run_id]} in {time.monotonic() - t0:.0f}s")
        day_start += timedelta(days=1)

    for run, state in states.items():
        if state != "success":
            dag_id = "lead_flow_daily" if len(run) == len("replay__20261130") else "lead_flow_15min"
            failed = {t: s for t, s in api.task_states(dag_id, run).items() if s not in ("success", "skipped")}
            _say(f"run {run} ended {state}; task states: {failed}")
    return states


def alerts_received() -> dict[str, int]:
    try:
        state = requests.get(f"http://127.0.0.1:{SANDBOX_PORTS['alerts']}/_sandbox/state", timeout=10).json()
    except requests.RequestException:
        return {}
    return {"webhook": len(state.get("webhooks", [])), "email": len(state.get("emails", []))}


def demo(scenario_path: Path = DEFAULT_SCENARIO, keep_running: bool = False) -> int:
    started = time.monotonic()
    scenario = accounts.read_scenario(str(scenario_path))
    try:
        start_stack(scenario_path)
        api = AirflowApi()
        api.login()
        states = replay(api, scenario)
        figures = summary.collect()
        figures["runs"] = states
        figures["alerts_received"] = alerts_received()
        write_file(SUMMARY_PATH, figures)
        print(summary.render(figures))
        print(f"alerts caught by the local receivers: {figures['alerts_received']}")
        print(f"summary written to {SUMMARY_PATH.relative_to(ROOT)}; total {time.monotonic() - started:.0f}s")
        ok = all(state == "success" for state in states.values())
    finally:
        if not keep_running:
            stop_stack()
            _say("stopped everything the demo started")
    if keep_running:
        print(f"\nAirflow UI: {API_URL} (user admin, password admin). Stop everything with: make down")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Run the lead flow locally.")
    parser.add_argument("command", choices=["demo", "up", "down", "status"])
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO, help="scenario file to replay")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    if args.command == "demo":
        return demo(args.scenario)
    if args.command == "up":
        return demo(args.scenario, keep_running=True)
    if args.command == "down":
        stop_stack()
        _say("stack stopped")
        return 0
    for name in ALL_SERVICES:
        print(f"{name:<14} {'running' if services.running(name) else 'stopped'}")
    print(f"{'postgres':<14} {'running' if localpg.is_running(PG_PORT) else 'stopped'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
