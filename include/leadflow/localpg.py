"""Embedded PostgreSQL for local runs and tests, from the ``pgserver`` wheel.

The wheel ships PostgreSQL 16 binaries, so a laptop needs no root, no Docker
and no system service. The server listens on 127.0.0.1 only, on a fixed port,
so Airflow connection URIs look like any other PostgreSQL server's. PostgreSQL
refuses to run as root; under root the server runs as the ``pgserver`` system
user that the wheel creates.

Usage: ``python -m leadflow.localpg start|stop|status DATA_DIR [--port N]``.
"""

from __future__ import annotations

import argparse
import os
import pwd
import stat
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

DEFAULT_PORT = 15432
DATABASES = ("warehouse", "airflow")


def _bin(name: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists("pgserver")
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    read_execute = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, read_execute)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    return "pgserver"


def _run(args: list[str], user: str | None) -> None:
    subprocess.run(args, check=True, user=user, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)


def dsn(port: int = DEFAULT_PORT, database: str = "warehouse") -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


def is_running(port: int = DEFAULT_PORT) -> bool:
    try:
        psycopg2.connect(dsn(port, "postgres"), connect_timeout=2).close()
    except psycopg2.OperationalError:
        return False
    return True


def start(data_dir: Path, port: int = DEFAULT_PORT) -> str:
    """Initialise ``data_dir`` if needed, start the server, create the databases."""
    data_dir = Path(data_dir).resolve()
    if is_running(port):
        if not (data_dir / "postmaster.pid").exists():
            raise RuntimeError(
                f"port {port} is already used by a PostgreSQL server that does not run from {data_dir}; "
                "stop that server or choose another port"
            )
        _create_databases(port)
        return dsn(port)
    user = _system_user()
    data_dir.mkdir(parents=True, exist_ok=True)
    if user is not None:
        from pgserver.utils import ensure_prefix_permissions

        ensure_prefix_permissions(data_dir)
        entry = pwd.getpwnam(user)
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    if not (data_dir / "PG_VERSION").exists():
        _run(
            [_bin("initdb"), "-D", str(data_dir), "--auth=trust", "--encoding=UTF8", "--no-sync", "-U", "postgres"],
            user,
        )
    options = f"-h 127.0.0.1 -p {port} -k {data_dir} -c max_connections=200 -c fsync=on"
    _run([_bin("pg_ctl"), "-D", str(data_dir), "-w", "-t", "60", "-l", str(data_dir / "server.log"), "-o", options, "start"], user)
    deadline = time.monotonic() + 30
    while not is_running(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL in {data_dir} did not accept connections on port {port}; see server.log there")
        time.sleep(0.2)
    _create_databases(port)
    return dsn(port)


def _create_databases(port: int) -> None:
    conn = psycopg2.connect(dsn(port, "postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        for name in DATABASES:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def stop(data_dir: Path) -> None:
    data_dir = Path(data_dir).resolve()
    if not (data_dir / "postmaster.pid").exists():
        return
    user = "pgserver" if os.geteuid() == 0 else None
    _run([_bin("pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"], user)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port on 127.0.0.1")
    args = parser.parse_args(argv)
    if args.action == "start":
        print(start(args.data_dir, args.port))
    elif args.action == "stop":
        stop(args.data_dir)
    else:
        print("running" if is_running(args.port) else "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
