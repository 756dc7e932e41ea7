"""Shared parts of the vendor clients: configuration, error classes, retries.

Every client reads its endpoint and secrets from one Airflow connection
(``host`` is the base URL, ``login``/``password`` and ``extra`` carry the
credentials), so pointing the connection at the sandbox or at the vendor is
the only switch between them.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class ClientConfig:
    """Endpoint and credentials of one vendor account."""

    base_url: str
    login: str | None = None
    password: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Seconds before one HTTP request is abandoned.
    timeout: float = 30.0

    @classmethod
    def from_connection(cls, conn_id: str) -> ClientConfig:
        """Build the config from an Airflow connection id."""
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
        host = conn.host or ""
        if "://" not in host:
            scheme = conn.schema or "https"
            host = f"{scheme}://{host}"
        if conn.port:
            host = f"{host.rstrip('/')}:{conn.port}"
        extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else json.loads(conn.extra or "{}")
        extra = {**extra, "conn_id": conn_id}
        return cls(
            base_url=host.rstrip("/"),
            login=conn.login,
            password=conn.password,
            extra=dict(extra),
            timeout=float(extra.get("timeout", 30.0)),
        )


class VendorError(Exception):
    """A vendor call failed. ``retryable`` is True when a later try may succeed."""

    retryable = False

    def __init__(self, vendor: str, message: str, *, status: int | None = None, code: str | None = None):
        self.vendor = vendor
        self.status = status
        self.code = code
        text = f"{vendor}: {message}"
        if status:
            text += f" (HTTP {status})"
        if code:
            text += f" [code {code}]"
        super().__init__(text)


class TransientError(VendorError):
    """5xx, timeouts, dropped connections and vendor 'try again' codes."""

    retryable = True


class Throttled(TransientError):
    """Rate limit reached; ``retry_after`` is the vendor's hint in seconds, if any."""

    def __init__(self, vendor: str, message: str, *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(vendor, message, **kwargs)
        self.retry_after = retry_after


class AuthExpired(VendorError):
    """The access token expired or was revoked; the client refreshes it once."""

    retryable = True


class QuotaExhausted(VendorError):
    """A daily quota is used up; the run stops cleanly and resumes next run."""


class PermanentError(VendorError):
    """Bad request, bad credentials, unknown object: retrying cannot help."""


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter, capped per wait and per call."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, error: VendorError) -> float:
        hint = getattr(error, "retry_after", None)
        if hint is not None:
            return min(float(hint), self.max_delay)
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)


def with_retries(call: Callable[[], T], policy: RetryPolicy, *, what: str, on_auth_expired: Callable[[], None] | None = None) -> T:
    """Run ``call`` until it succeeds, a non-retryable error occurs, or attempts run out.

    ``AuthExpired`` triggers ``on_auth_expired`` (a token refresh) and counts as
    an attempt, so an endlessly rejected token cannot loop.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except VendorError as error:
            if not error.retryable or attempt >= policy.max_attempts:
                raise
            if isinstance(error, AuthExpired):
                if on_auth_expired is None:
                    raise
                log.info("%s: token rejected, refreshing (attempt %d)", what, attempt)
                on_auth_expired()
                continue
            wait = policy.delay(attempt, error)
            log.warning("%s failed (%s); retry %d/%d in %.1fs", what, error, attempt, policy.max_attempts - 1, wait)
            policy.sleep(wait)


def send(session: requests.Session, vendor: str, method: str, url: str, timeout: float, **kwargs: Any) -> requests.Response:
    """Send one request, turning network failures into ``TransientError``."""
    try:
        return session.request(method, url, timeout=timeout, **kwargs)
    except requests.Timeout as error:
        raise TransientError(vendor, f"{method} {url.split('?')[0]} timed out after {timeout}s") from error
    except requests.ConnectionError as error:
        raise TransientError(vendor, f"{method} {url.split('?')[0]} connection failed: {type(error).__name__}") from error


def json_body(vendor: str, response: requests.Response) -> Any:
    """Decode a JSON body; an undecodable body is a transient vendor fault."""
    try:
        return response.json()
    except ValueError as error:
        raise TransientError(vendor, f"response is not JSON ({len(response.content)} bytes)", status=response.status_code) from error
