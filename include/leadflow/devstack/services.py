"""Background processes of the local stack, tracked by pid files under ``.local/run``."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import requests

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[3]
LOCAL = ROOT / ".local"
RUN_DIR = LOCAL / "run"
LOG_DIR = LOCAL / "logs"


def start(name: str, args: list[str], env: dict[str, str]) -> int:
    """Start ``args`` in its own session with output to ``.local/logs/<name>.log``; return the pid."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    stop(name)
    log_file = open(LOG_DIR / f"{name}.log", "ab")  # noqa: SIM115 - the child process owns it
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    (RUN_DIR / f"{name}.pid").write_text(str(process.pid))
    log.info("started %s (pid %d), log %s", name, process.pid, LOG_DIR / f"{name}.log")
    return process.pid


def running(name: str) -> bool:
    pid_file = RUN_DIR / f"{name}.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def stop(*names: str, timeout: float = 15.0) -> None:
    """Stop services' whole process groups: SIGTERM to all, then SIGKILL after ``timeout``."""
    pids: dict[str, int] = {}
    for name in names:
        pid_file = RUN_DIR / f"{name}.pid"
        if not pid_file.exists():
            continue
        try:
            pid = int(pid_file.read_text())
            os.killpg(pid, signal.SIGTERM)
            pids[name] = pid
        except (OSError, ValueError):
            pid_file.unlink(missing_ok=True)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        for name, pid in list(pids.items()):
            try:
                os.killpg(pid, 0)
            except OSError:
                del pids[name]
                (RUN_DIR / f"{name}.pid").unlink(missing_ok=True)
                log.info("stopped %s", name)
        time.sleep(0.2)
    for name, pid in pids.items():
        log.info("%s did not stop within %.0fs of SIGTERM; sending SIGKILL", name, timeout)
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        (RUN_DIR / f"{name}.pid").unlink(missing_ok=True)


def names() -> list[str]:
    if not RUN_DIR.exists():
        return []
    return sorted(p.stem for p in RUN_DIR.glob("*.pid"))


def wait_http(url: str, timeout: float, name: str, ok=lambda r: r.status_code < 500) -> None:
    """Wait until ``url`` responds; raise with the service's log path on timeout."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            response = requests.get(url, timeout=3)
            if ok(response):
                return
            last = f"HTTP {response.status_code}"
        except requests.RequestException as error:
            last = type(error).__name__
        if not running(name):
            raise RuntimeError(f"{name} exited during start; see {LOG_DIR / (name + '.log')}")
        time.sleep(0.5)
    raise RuntimeError(f"{name} did not respond at {url} within {timeout:.0f}s ({last}); see {LOG_DIR / (name + '.log')}")
