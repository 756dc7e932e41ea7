"""Checks of the container deployment: Dockerfile, docker-compose.yaml, helm/values.yaml
and scripts/compose_connections.py.

No Docker engine or Kubernetes cluster runs here, so the first three are parsed and
checked statically. The connections script runs for real, and its output is read
back through Airflow's own LocalFilesystemBackend and ``BaseHook.get_connection``
with the secrets settings taken from docker-compose.yaml.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "compose_connections.py"
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
HELM_VALUES = ROOT / "helm" / "values.yaml"

AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
)
INIT_SERVICES = ("airflow-init", "leadflow-init")
REQUIRED_SERVICES = (*AIRFLOW_SERVICES, *INIT_SERVICES, "postgres", "redis", "warehouse", "sandbox", "collector")
PROJECT_MOUNTS = {"/opt/airflow/dags": "./dags", "/opt/airflow/include": "./include", "/opt/airflow/sql": "./sql"}

WAREHOUSE_URI = "postgresql://leadflow:s3cret@warehouse:5432/warehouse"


def tiny_scenario() -> dict[str, Any]:
    """Two accounts in the shape of docs/scenario-format.md, with only the fields connections use."""
    return {
        "format": 1,
        "name": "compose-test",
        "enrichment": {"api_key": "sk_enrich_test", "people": [], "companies": []},
        "accounts": [
            {
                "account_id": "acme",
                "name": "Acme",
                "linkedin": {"access_token": "li_token_acme", "sponsored_account_id": "500000001"},
                "meta": {"access_token": "meta_token_acme", "page_id": "100000000000001"},
                "map": {
                    "type": "marketo",
                    "client_id": "mkto_client_acme",
                    "client_secret": "mkto_secret_acme",
                    "munchkin_id": "123-ABC-456",
                },
                "crm": {"type": "salesforce", "client_id": "sf_client_acme", "client_secret": "sf_secret_acme"},
            },
            {
                "account_id": "globex",
                "name": "Globex",
                "meta": {"access_token": "meta_token_globex", "page_id": "100000000000002"},
                "map": {"type": "hubspot", "access_token": "pat-globex"},
            },
        ],
    }


EXPECTED_CONNECTIONS = {
    "alerts_smtp": {
        "conn_type": "smtp",
        "host": "sandbox",
        "port": 18025,
        "extra": {"from": "leadflow@localhost", "to": ["data-team@example.com"]},
    },
    "alerts_webhook": {
        "conn_type": "http",
        "host": "http://sandbox:18107",
        "extra": {"path": "/hooks/leadflow-alerts"},
    },
    "enrichment": {"conn_type": "http", "host": "http://sandbox:18103", "password": "sk_enrich_test"},
    "hubspot_globex": {"conn_type": "http", "host": "http://sandbox:18105", "password": "pat-globex"},
    "linkedin_acme": {"conn_type": "http", "host": "http://sandbox:18101", "password": "li_token_acme"},
    "marketo_acme": {
        "conn_type": "http",
        "host": "http://sandbox:18104",
        "login": "mkto_client_acme",
        "password": "mkto_secret_acme",
        "extra": {"munchkin_id": "123-ABC-456"},
    },
    "meta_acme": {"conn_type": "http", "host": "http://sandbox:18102", "password": "meta_token_acme"},
    "meta_globex": {"conn_type": "http", "host": "http://sandbox:18102", "password": "meta_token_globex"},
    "salesforce_acme": {
        "conn_type": "http",
        "host": "http://sandbox:18106",
        "login": "sf_client_acme",
        "password": "sf_secret_acme",
    },
    "warehouse": {
        "conn_type": "postgres",
        "host": "warehouse",
        "port": 5432,
        "login": "leadflow",
        "password": "s3cret",
        "schema": "warehouse",
    },
}


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


def write_scenario(directory: Path, scenario: dict[str, Any]) -> Path:
    path = directory / "scenario.json"
    path.write_text(json.dumps(scenario), encoding="utf-8")
    return path


def load_script_module():
    spec = importlib.util.spec_from_file_location("compose_connections", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def with_defaults(value: str) -> str:
    """Resolve compose interpolation as compose does with no variable set: ``${NAME:-x}`` becomes x, ``$$`` becomes $."""
    resolved = re.sub(r"(?<!\$)\$\{[A-Za-z0-9_]+(?::?-([^}]*))?\}", lambda match: match.group(1) or "", value)
    return resolved.replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    # PyYAML's safe loader resolves the << merge keys, as docker compose does.
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict[str, Any]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment must be written as a mapping so the anchors merge"
    return {key: with_defaults(str(value)) for key, value in env.items()}


def volume_targets(service: dict[str, Any]) -> dict[str, str]:
    """Map each mount's container path to its source."""
    targets = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        targets[target] = source
    return targets


def shell_words(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    text = command if isinstance(command, str) else " ".join(command)
    return shlex.split(with_defaults(text).replace("\\\n", " "))


def option_value(words: list[str], option: str) -> str:
    assert option in words, f"{option} is missing from {words}"
    return words[words.index(option) + 1]


# --------------------------------------------------------------------------- connections script


def test_script_writes_expected_connections(tmp_path):
    scenario = write_scenario(tmp_path, tiny_scenario())
    out = tmp_path / "secrets" / "connections.json"

    result = run_script("--scenario", str(scenario), "--out", str(out), "--warehouse-uri", WAREHOUSE_URI)

    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text(encoding="utf-8")) == EXPECTED_CONNECTIONS
    assert "wrote 10 connections" in result.stdout
    assert "s3cret" not in result.stdout, "the script must not print credentials"


def test_script_output_is_group_readable_only(tmp_path):
    scenario = write_scenario(tmp_path, tiny_scenario())
    out = tmp_path / "connections.json"

    result = run_script("--scenario", str(scenario), "--out", str(out))

    assert result.returncode == 0, result.stderr
    assert out.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".connections-")] == []


def test_script_default_warehouse_matches_compose(tmp_path, services):
    scenario = write_scenario(tmp_path, tiny_scenario())
    out = tmp_path / "connections.json"

    result = run_script("--scenario", str(scenario), "--out", str(out))

    assert result.returncode == 0, result.stderr
    compose_uri = environment(services["leadflow-init"])["AIRFLOW_CONN_WAREHOUSE"]
    module = load_script_module()
    assert json.loads(out.read_text())["warehouse"] == module.warehouse_connection(compose_uri)


def test_script_replaces_existing_file(tmp_path):
    scenario = write_scenario(tmp_path, tiny_scenario())
    out = tmp_path / "connections.json"
    out.write_text('{"stale": "postgresql://old"}')

    result = run_script("--scenario", str(scenario), "--out", str(out), "--sandbox-host", "vendors.internal")

    assert result.returncode == 0, result.stderr
    written = json.loads(out.read_text())
    assert "stale" not in written
    assert written["linkedin_acme"]["host"] == "http://vendors.internal:18101"
    assert written["alerts_smtp"]["host"] == "vendors.internal"


def test_script_reads_yaml_scenario(tmp_path):
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(tiny_scenario()), encoding="utf-8")
    out = tmp_path / "connections.json"

    result = run_script("--scenario", str(scenario), "--out", str(out), "--warehouse-uri", WAREHOUSE_URI)

    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text()) == EXPECTED_CONNECTIONS


def test_script_alert_options(tmp_path):
    scenario = write_scenario(tmp_path, tiny_scenario())
    out = tmp_path / "connections.json"

    result = run_script(
        "--scenario", str(scenario), "--out", str(out),
        "--smtp-port", "2525", "--alert-from", "flow@example.com",
        "--alert-to", "a@example.com", "--alert-to", "b@example.com",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    smtp = json.loads(out.read_text())["alerts_smtp"]
    assert smtp["port"] == 2525
    assert smtp["extra"] == {"from": "flow@example.com", "to": ["a@example.com", "b@example.com"]}


def test_script_rejects_missing_scenario(tmp_path):
    result = run_script("--scenario", str(tmp_path / "absent.json"), "--out", str(tmp_path / "c.json"))

    assert result.returncode == 2
    assert "scenario file not found" in result.stderr
    assert not (tmp_path / "c.json").exists()


def test_script_rejects_invalid_json(tmp_path):
    scenario = tmp_path / "scenario.json"
    scenario.write_text("{not json")

    result = run_script("--scenario", str(scenario), "--out", str(tmp_path / "c.json"))

    assert result.returncode == 2
    assert "invalid scenario file" in result.stderr


def test_script_names_missing_credential(tmp_path):
    scenario = tiny_scenario()
    del scenario["accounts"][0]["map"]["client_secret"]
    path = write_scenario(tmp_path, scenario)

    result = run_script("--scenario", str(path), "--out", str(tmp_path / "c.json"))

    assert result.returncode == 2
    assert "accounts[acme].map.client_secret" in result.stderr
    assert not (tmp_path / "c.json").exists()


def test_script_rejects_unknown_map_type(tmp_path):
    scenario = tiny_scenario()
    scenario["accounts"][1]["map"]["type"] = "pardot"
    path = write_scenario(tmp_path, scenario)

    result = run_script("--scenario", str(path), "--out", str(tmp_path / "c.json"))

    assert result.returncode == 2
    assert "'pardot'" in result.stderr


@pytest.mark.parametrize(
    "uri, message",
    [
        ("mysql://u:p@warehouse/warehouse", "invalid warehouse URI scheme 'mysql'"),
        ("postgresql:///warehouse", "the host is missing"),
        ("postgresql://u:p@warehouse/warehouse?sslmode=require", "sslmode=require"),
    ],
)
def test_script_rejects_bad_warehouse_uri(tmp_path, uri, message):
    path = write_scenario(tmp_path, tiny_scenario())

    result = run_script("--scenario", str(path), "--out", str(tmp_path / "c.json"), "--warehouse-uri", uri)

    assert result.returncode == 2
    assert message in result.stderr


def test_warehouse_uri_decodes_escapes():
    module = load_script_module()

    connection = module.warehouse_connection("postgres://lead%40flow:p%2Fss%3Aw@db.internal:6432/ware%20house")

    assert connection == {
        "conn_type": "postgres",
        "host": "db.internal",
        "port": 6432,
        "login": "lead@flow",
        "password": "p/ss:w",
        "schema": "ware house",
    }


def test_hubspot_crm_shares_map_connection():
    module = load_script_module()
    scenario = tiny_scenario()
    scenario["accounts"][1]["crm"] = {"type": "hubspot", "access_token": "pat-globex"}

    connections = module.build_connections(scenario)

    assert connections["hubspot_globex"] == EXPECTED_CONNECTIONS["hubspot_globex"]


def test_hubspot_crm_token_conflict_rejected():
    module = load_script_module()
    scenario = tiny_scenario()
    scenario["accounts"][1]["crm"] = {"type": "hubspot", "access_token": "pat-other"}

    with pytest.raises(module.ScenarioError, match="hubspot_globex"):
        module.build_connections(scenario)


def test_script_ports_match_sandbox():
    from sandbox.server import DEFAULT_PORTS

    assert load_script_module().SANDBOX_PORTS == DEFAULT_PORTS


def test_connections_load_in_airflow_backend(tmp_path):
    from airflow.secrets.local_filesystem import load_connections_dict

    path = write_scenario(tmp_path, tiny_scenario())
    out = tmp_path / "connections.json"
    assert run_script("--scenario", str(path), "--out", str(out), "--warehouse-uri", WAREHOUSE_URI).returncode == 0

    loaded = load_connections_dict(str(out))

    assert sorted(loaded) == sorted(EXPECTED_CONNECTIONS)
    for conn_id, expected in EXPECTED_CONNECTIONS.items():
        connection = loaded[conn_id]
        assert connection.conn_type == expected["conn_type"], conn_id
        assert connection.host == expected["host"], conn_id
        assert connection.login == expected.get("login"), conn_id
        assert connection.password == expected.get("password"), conn_id
        assert connection.port == expected.get("port"), conn_id
        assert connection.schema == expected.get("schema"), conn_id
        assert connection.extra_dejson == expected.get("extra", {}), conn_id


def test_connections_resolve_with_compose_settings(tmp_path, services):
    """Look connections up the way a task does, with the secrets settings of docker-compose.yaml."""
    path = write_scenario(tmp_path, tiny_scenario())
    out = tmp_path / "connections.json"
    assert run_script("--scenario", str(path), "--out", str(out), "--warehouse-uri", WAREHOUSE_URI).returncode == 0
    compose_env = environment(services["airflow-worker"])
    kwargs = json.loads(compose_env["AIRFLOW__SECRETS__BACKEND_KWARGS"])
    kwargs["connections_file_path"] = str(out)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW_CONN_", "AIRFLOW__"))}
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT)]),
            "AIRFLOW__SECRETS__BACKEND": compose_env["AIRFLOW__SECRETS__BACKEND"],
            "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps(kwargs),
            "AIRFLOW__CORE__FERNET_KEY": compose_env["AIRFLOW__CORE__FERNET_KEY"],
        }
    )
    probe = (
        "import json\n"
        "from airflow.sdk import BaseHook\n"
        "from leadflow import warehouse\n"
        "c = BaseHook.get_connection('marketo_acme')\n"
        "print(json.dumps({'host': c.host, 'login': c.login, 'password': c.password, 'extra': c.extra_dejson}))\n"
        "print(warehouse.dsn())\n"
    )

    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=180)

    assert result.returncode == 0, result.stderr[-2000:]
    connection_line, dsn_line = result.stdout.strip().splitlines()[-2:]
    marketo = EXPECTED_CONNECTIONS["marketo_acme"]
    assert json.loads(connection_line) == {key: marketo[key] for key in ("host", "login", "password", "extra")}
    assert dsn_line == WAREHOUSE_URI


def test_script_covers_small_scenario(tmp_path):
    small = ROOT / "scenarios" / "small.json"
    if not small.exists():
        pytest.skip("scenarios/small.json is not generated yet (make scenarios)")
    out = tmp_path / "connections.json"

    result = run_script("--scenario", str(small), "--out", str(out))

    assert result.returncode == 0, result.stderr
    written = json.loads(out.read_text())
    for account in json.loads(small.read_text())["accounts"]:
        account_id = account["account_id"]
        for source in ("linkedin", "meta"):
            if source in account:
                assert f"{source}_{account_id}" in written
        if account.get("map"):
            assert f"{account['map']['type']}_{account_id}" in written
        if account.get("crm"):
            assert f"{account['crm']['type']}_{account_id}" in written
    for conn_id, connection in written.items():
        if connection["conn_type"] == "http":
            assert connection["host"].startswith("http://sandbox:"), conn_id


# --------------------------------------------------------------------------- docker-compose.yaml


@pytest.mark.parametrize("name", REQUIRED_SERVICES)
def test_compose_has_service(services, name):
    assert name in services


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_compose_airflow_service_uses_celery(services, name):
    env = environment(services[name])

    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert "@postgres/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_compose_airflow_service_mounts_project(services, name):
    targets = volume_targets(services[name])

    for target, source in PROJECT_MOUNTS.items():
        assert targets.get(target) == source, f"{name} must mount {source} at {target}"


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_compose_airflow_service_waits_for_init(services, name):
    depends_on = services[name]["depends_on"]

    for init in INIT_SERVICES:
        assert depends_on[init]["condition"] == "service_completed_successfully", f"{name} -> {init}"


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_compose_airflow_service_reads_connections_file(services, name):
    env = environment(services[name])
    init_words = shell_words(services["leadflow-init"])
    connections_path = json.loads(env["AIRFLOW__SECRETS__BACKEND_KWARGS"])["connections_file_path"]

    assert env["AIRFLOW__SECRETS__BACKEND"] == "airflow.secrets.local_filesystem.LocalFilesystemBackend"
    assert connections_path == option_value(init_words, "--out")
    assert str(Path(connections_path).parent) in volume_targets(services[name])
    assert "AIRFLOW_CONN_WAREHOUSE" not in env, "the warehouse connection comes from the file in Airflow containers"


def test_compose_airflow_services_share_secrets(services):
    names = (*AIRFLOW_SERVICES, "airflow-init")
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        values = {environment(services[name])[key] for name in names}
        assert len(values) == 1, f"{key} differs between Airflow services: {values}"
        assert values.pop(), f"{key} has an empty default"


def test_compose_fernet_default_is_valid(services):
    from cryptography.fernet import Fernet

    Fernet(environment(services["airflow-scheduler"])["AIRFLOW__CORE__FERNET_KEY"])


def test_compose_execution_api_points_at_apiserver(services):
    url = environment(services["airflow-worker"])["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]

    assert url == "http://airflow-apiserver:8080/execution/"
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert any(port.endswith(":8080") for port in services["airflow-apiserver"]["ports"])


@pytest.mark.parametrize("name", ("postgres", "redis", "warehouse", *AIRFLOW_SERVICES, "sandbox", "collector"))
def test_compose_service_has_healthcheck(services, name):
    assert services[name]["healthcheck"]["test"], name


def test_compose_conditions_have_targets(services):
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown service {target}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], (
                    f"{name} waits for {target} to be healthy, which has no healthcheck"
                )
            if rule["condition"] == "service_completed_successfully":
                assert "restart" not in services[target], f"{target} is one-shot and must not restart"


def test_compose_leadflow_init_loads_scenario(services):
    init = services["leadflow-init"]
    env = environment(init)
    words = shell_words(init)
    sandbox_scenario = option_value(shell_words(services["sandbox"]), "--scenario")

    assert words[words.index("python") + 1] == "/opt/airflow/scripts/compose_connections.py"
    assert option_value(words, "--sandbox-host") == "sandbox"
    assert env["LEADFLOW_SCENARIO"] == sandbox_scenario
    assert ["-m", "leadflow.accounts", "load"] == words[
        words.index("leadflow.accounts") - 1 : words.index("leadflow.accounts") + 2
    ]
    assert volume_targets(init)["/opt/airflow/scripts"] == "./scripts"
    assert init["depends_on"]["warehouse"]["condition"] == "service_healthy"


def test_compose_warehouse_uri_matches_warehouse(services):
    warehouse_env = environment(services["warehouse"])
    module = load_script_module()
    for name in ("leadflow-init", "collector"):
        connection = module.warehouse_connection(environment(services[name])["AIRFLOW_CONN_WAREHOUSE"])
        assert connection["host"] == "warehouse", name
        assert connection["login"] == warehouse_env["POSTGRES_USER"], name
        assert connection["password"] == warehouse_env["POSTGRES_PASSWORD"], name
        assert connection["schema"] == warehouse_env["POSTGRES_DB"], name


def test_compose_sandbox_serves_every_vendor(services):
    sandbox = services["sandbox"]
    words = shell_words(sandbox)
    exposed = {int(port) for port in sandbox["expose"]}

    assert words[:3] == ["python", "-m", "sandbox"]
    assert option_value(words, "--host") == "0.0.0.0"
    assert set(load_script_module().SANDBOX_PORTS.values()) <= exposed
    assert int(option_value(words, "--smtp-port")) in exposed
    assert volume_targets(sandbox)["/opt/airflow/sandbox"] == "./sandbox"


def test_compose_collector_command(services):
    collector = services["collector"]
    words = shell_words(collector)

    assert words[:3] == ["python", "-m", "leadflow.collector"]
    assert option_value(words, "--port") == "18200"
    assert any(port.endswith("18200:18200") for port in collector["ports"])
    assert collector["depends_on"]["leadflow-init"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", ("sandbox", "collector"))
def test_compose_non_airflow_skips_db_wait(services, name):
    # The image entrypoint waits for an Airflow metadata database unless this is 0.
    assert environment(services[name])["CONNECTION_CHECK_MAX_COUNT"] == "0"


def test_compose_airflow_init_migrates(services):
    init = services["airflow-init"]
    script = with_defaults(init["command"][-1])

    assert "airflow db migrate" in script
    assert init["user"] == "0:0"
    assert environment(init)["LEADFLOW_ADMIN_PASSWORD"] == "admin"
    assert environment(init)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] in script


# --------------------------------------------------------------------------- Dockerfile and Helm values


def locked_version(package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert match, f"{package} is not pinned in requirements.txt"
    return match.group(1)


def test_dockerfile_base_matches_lock():
    text = DOCKERFILE.read_text()

    assert f"FROM apache/airflow:{locked_version('apache-airflow')}-python3.11" in text


def test_dockerfile_installs_lock_without_resolving():
    text = DOCKERFILE.read_text()

    assert re.search(
        r"^RUN pip install --no-cache-dir --no-deps -r /opt/airflow/requirements\.txt$", text, re.MULTILINE
    )
    assert re.search(r"^COPY --chown=airflow:root requirements\.txt ", text, re.MULTILINE)


def test_dockerfile_sets_pythonpath():
    text = DOCKERFILE.read_text()

    assert "PYTHONPATH=/opt/airflow/include:/opt/airflow" in text


def test_dockerfile_copy_sources_exist():
    # A COPY of a path that a fresh clone lacks fails the build.
    sources = re.findall(r"^COPY (?:--\S+ )*(\S+) ", DOCKERFILE.read_text(), re.MULTILINE)

    assert sources
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"Dockerfile copies {source}, which does not exist"
        if path.is_dir():
            assert any(path.iterdir()), f"Dockerfile copies {source}, which is empty and so absent from a clone"


def test_compose_builds_from_dockerfile(compose, services):
    for name in (*AIRFLOW_SERVICES, *INIT_SERVICES, "sandbox", "collector"):
        assert services[name]["build"]["dockerfile"] == "Dockerfile", name
        assert services[name]["build"]["context"] == ".", name


@pytest.fixture(scope="module")
def helm_values() -> dict[str, Any]:
    return yaml.safe_load(HELM_VALUES.read_text(encoding="utf-8"))


def test_helm_values_executor_and_version(helm_values):
    assert helm_values["executor"] == "CeleryExecutor"
    assert helm_values["airflowVersion"] == locked_version("apache-airflow")


def test_helm_values_use_custom_image(helm_values):
    assert helm_values["defaultAirflowRepository"] != "apache/airflow"
    assert "extraPipPackages" not in json.dumps(helm_values)
    assert helm_values["dags"]["gitSync"]["enabled"] is False


def test_helm_values_connections_from_secret(helm_values):
    env_from = yaml.safe_load(helm_values["extraEnvFrom"])

    assert env_from == [{"secretRef": {"name": "leadflow-connections"}}]


def test_helm_values_worker_resources(helm_values):
    resources = helm_values["workers"]["celery"]["resources"]

    assert resources["requests"]["cpu"]
    assert resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def test_helm_values_pools_parse(helm_values):
    config_map = helm_values["extraConfigMaps"]["{{ .Release.Name }}-leadflow-pools"]
    pools = json.loads(yaml.safe_load(config_map["data"])["pools.json"])

    assert set(pools) == {"linkedin_api", "meta_api", "enrichment_api", "marketo_api", "hubspot_api", "salesforce_api"}
    for name, pool in pools.items():
        assert isinstance(pool["slots"], int) and pool["slots"] > 0, name
        assert pool["description"], name
    mounts = helm_values["scheduler"]["extraVolumeMounts"]
    assert mounts[0]["mountPath"] == "/opt/airflow/pools"
