"""Enrichment client for a Clearbit-style combined person and company lookup.

``GET /v2/combined/find?email=...`` returns ``{"person": ..., "company": ...}``
with either side null, or 202 with an empty body while the provider looks the
person up. The connection's ``password`` is the API key, and its ``extra`` may
set ``pending_retries`` (further lookups after a 202, default 3) and
``pending_wait_seconds`` (wait before each of them, default 1.0).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import requests

from leadflow.clients.base import (
    ClientConfig,
    PermanentError,
    RetryPolicy,
    Throttled,
    TransientError,
    VendorError,
    json_body,
    send,
    with_retries,
)

log = logging.getLogger(__name__)

VENDOR = "enrichment"

# A reset hint further away than this is not trusted, because it more likely
# shows clock skew between the provider and this host. The retry policy's
# backoff applies instead.
MAX_RESET_WAIT_SECONDS = 120.0

EnrichmentStatus = Literal["matched", "company_only", "no_match", "pending"]


@dataclass
class EnrichmentResult:
    """Outcome of one lookup, with the fields the pipeline reads flattened out.

    ``person`` and ``company_data`` are the provider's objects. ``company`` is
    the company name, from the company object or else the person's employment.
    """

    status: EnrichmentStatus
    person: dict[str, Any] | None = None
    company_data: dict[str, Any] | None = None
    company: str | None = None
    company_domain: str | None = None
    job_title: str | None = None
    industry: str | None = None
    employees: int | None = None
    country: str | None = None


def _nested(data: dict[str, Any] | None, *keys: str) -> Any:
    value: Any = data
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def build_result(person: dict[str, Any] | None, company: dict[str, Any] | None) -> EnrichmentResult:
    """Classify a 200 response and flatten the person and company attributes."""
    if person:
        status: EnrichmentStatus = "matched"
    elif company:
        status = "company_only"
    else:
        status = "no_match"
    return EnrichmentResult(
        status=status,
        person=person or None,
        company_data=company or None,
        company=_nested(company, "name") or _nested(person, "employment", "name"),
        company_domain=_nested(company, "domain") or _nested(person, "employment", "domain"),
        job_title=_nested(person, "employment", "title"),
        industry=_nested(company, "category", "industry"),
        employees=_as_int(_nested(company, "metrics", "employees")),
        country=_nested(person, "geo", "country") or _nested(company, "geo", "country"),
    )


def reset_wait_seconds(header: str | None, now: float) -> float | None:
    """Turn ``x-ratelimit-reset`` into seconds to wait.

    The header is epoch seconds. A small value is read as seconds from now,
    which some providers send instead. A hint in the past or more than
    ``MAX_RESET_WAIT_SECONDS`` away returns None.
    """
    if not header:
        return None
    try:
        value = float(header)
    except ValueError:
        return None
    wait = value - now if value > 1_000_000_000 else value
    if wait < 0 or wait > MAX_RESET_WAIT_SECONDS:
        return None
    return wait


class EnrichmentClient:
    """Client for the combined lookup; one instance per API key."""

    def __init__(self, config: ClientConfig, policy: RetryPolicy | None = None):
        if not config.password:
            raise ValueError("enrichment connection has no API key; store it in the connection password")
        self.config = config
        self.policy = policy or RetryPolicy()
        self.base_url = config.base_url.rstrip("/")
        self.pending_retries = int(config.extra.get("pending_retries", 3))
        self.pending_wait_seconds = float(config.extra.get("pending_wait_seconds", 1.0))
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {config.password}", "Accept": "application/json"})

    def lookup(self, email: str) -> EnrichmentResult:
        """Look up one email, repeating a queued (202) lookup up to ``pending_retries`` times.

        A lookup still queued after that returns status "pending".
        """
        attempt = 0
        while True:
            call = functools.partial(self._find, email)
            result = with_retries(call, self.policy, what="enrichment combined lookup")
            if result is not None:
                return result
            if attempt >= self.pending_retries:
                log.info("enrichment lookup still queued after %d retries", self.pending_retries)
                return EnrichmentResult(status="pending")
            attempt += 1
            self.policy.sleep(self.pending_wait_seconds)

    def _find(self, email: str) -> EnrichmentResult | None:
        """Send one lookup and return None on 202, which means the provider queued it."""
        response = send(
            self.session,
            VENDOR,
            "GET",
            f"{self.base_url}/v2/combined/find",
            self.config.timeout,
            params={"email": email},
        )
        if response.status_code == 202:
            return None
        if response.status_code == 200:
            body = json_body(VENDOR, response)
            if not isinstance(body, dict):
                raise TransientError(VENDOR, "lookup response is not a JSON object", status=200)
            return build_result(body.get("person"), body.get("company"))
        raise self._error(response)

    def _error(self, response: requests.Response) -> VendorError:
        status = response.status_code
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        error = payload.get("error") if isinstance(payload, dict) else None
        error = error if isinstance(error, dict) else {}
        error_type = error.get("type")
        message = str(error.get("message") or response.reason or "no message")
        if status == 429:
            retry_after = reset_wait_seconds(response.headers.get("x-ratelimit-reset"), time.time())
            return Throttled(
                VENDOR, f"rate limited: {message}", retry_after=retry_after, status=status, code=error_type
            )
        if status >= 500:
            return TransientError(VENDOR, f"server error: {message}", status=status, code=error_type)
        if status == 401:
            return PermanentError(
                VENDOR,
                f"API key rejected ({message}); store a valid key in the enrichment connection password",
                status=status,
                code=error_type,
            )
        return PermanentError(VENDOR, f"lookup rejected: {message}", status=status, code=error_type)
