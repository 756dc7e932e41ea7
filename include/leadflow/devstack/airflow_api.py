"""Airflow settings of the local stack and a small client of the Airflow REST API v2."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from leadflow.devstack.services import LOCAL, ROOT

log = logging.getLogger(__name__)

AIRFLOW_HOME = LOCAL / "airflow"
API_PORT = int(os.environ.get("LEADFLOW_AIRFLOW_PORT", "8080"))
API_URL = f"http://127.0.0.1:{API_PORT}"
USERNAME = "admin"
PASSWORD = "admin"
# Local-only secrets: they let the scheduler and the API server trust each
# other's tokens. Production sets its own through the environment.
LOCAL_JWT_SECRET = "leadflow-local-jwt-secret-not-for-production"
LOCAL_FERNET_KEY = "Fl9hV8mL5o0JcXc7Qx2m0h7Wc3p3kYq1sV9oKxQ4b2A="


def airflow_env(metadata_uri: str, extra: dict[str, str], schedule_runs: bool) -> dict[str, str]:
    """Environment for every Airflow process of the local stack."""
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    passwords = AIRFLOW_HOME / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({USERNAME: PASSWORD}))
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT)]),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "leadflow.devstack.executor.PreloadingLocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__FERNET_KEY": LOCAL_FERNET_KEY,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{API_URL}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_uri,
            "AIRFLOW__API__BASE_URL": API_URL,
            "AIRFLOW__API__PORT": str(API_PORT),
            "AIRFLOW__API_AUTH__JWT_SECRET": LOCAL_JWT_SECRET,
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True" if schedule_runs else "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        }
    )
    env.update(extra)
    return env


class AirflowApi:
    """Token-authenticated calls to the Airflow REST API v2."""

    def __init__(self, base_url: str = API_URL):
        self.base_url = base_url
        self.session = requests.Session()

    def login(self) -> None:
        response = self.session.post(f"{self.base_url}/auth/token", json={"username": USERNAME, "password": PASSWORD}, timeout=30)
        response.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=60, **kwargs)
        if response.status_code == 401:
            self.login()
            response = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=60, **kwargs)
        return response

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.call("GET", f"/dags/{dag_id}")
            if response.status_code == 200:
                return
            time.sleep(1)
        raise RuntimeError(f"DAG {dag_id} was not parsed within {timeout:.0f}s; see .local/logs/dag-processor.log")

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def delete_runs(self, dag_id: str) -> int:
        response = self.call("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})
        response.raise_for_status()
        runs = response.json().get("dag_runs", [])
        for run in runs:
            path = f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}"
            if run["state"] in ("running", "queued"):
                # Airflow refuses to delete an unfinished run (HTTP 409).
                self.call("PATCH", path, json={"state": "failed"}).raise_for_status()
            deleted = self.call("DELETE", path)
            if deleted.status_code not in (204, 404):
                raise RuntimeError(f"could not delete {dag_id} run {run['dag_run_id']}: HTTP {deleted.status_code} {deleted.text[:300]}")
        return len(runs)

    def trigger(self, dag_id: str, run_id: str, start: datetime, end: datetime, conf: dict | None = None) -> str:
        body = {
            "dag_run_id": run_id,
            "logical_date": start.isoformat(),
            "data_interval_start": start.isoformat(),
            "data_interval_end": end.isoformat(),
            "conf": conf or {},
        }
        response = self.call("POST", f"/dags/{dag_id}/dagRuns", json=body)
        if response.status_code >= 400:
            raise RuntimeError(f"trigger of {dag_id} {run_id} failed: HTTP {response.status_code} {response.text[:500]}")
        return run_id

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> str:
        deadline = time.monotonic() + timeout
        state = "unknown"
        while time.monotonic() < deadline:
            response = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            response.raise_for_status()
            state = response.json()["state"]
            if state in ("success", "failed"):
                return state
            time.sleep(1)
        raise RuntimeError(f"{dag_id} run {run_id} still {state} after {timeout:.0f}s")

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        response = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        response.raise_for_status()
        return {ti["task_id"]: ti["state"] for ti in response.json()["task_instances"]}


def write_file(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True, default=str), encoding="utf-8")
