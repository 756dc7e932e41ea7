"""Clearbit-style enrichment stand-in: ``GET /v2/combined/find?email=...``.

The scenario's top-level ``enrichment`` object contains the ``api_key``,
``people`` (``{email, person, company, pending_first}``) and ``companies``
(``{domain, company}``). A lookup returns ``{"person": ..., "company": ...}``:

- an email listed in ``people`` (compared case-insensitively) returns that
  person with the entry's ``company``, or else the company of the email's
  domain, or else the company of the person's ``employment.domain``;
- otherwise an email whose domain is listed in ``companies`` returns
  ``person: null`` with that company;
- otherwise both are null.

With ``pending_first_lookup`` on, the first lookup of a person marked
``pending_first`` returns 202 with an empty body (Clearbit queues the lookup)
and later lookups return 200.

The API key is accepted as a bearer token or as the Basic auth user name.
Errors use ``{"error": {"type", "message"}}``: 401 ``auth_required`` or
``invalid_api_key``, 422 ``invalid_email``, 404 ``unknown_route``, 429
``rate_limit``. Requests are counted per minute of the sandbox clock (a fixed
window starting on the minute). Every lookup response carries
``x-ratelimit-limit``, ``x-ratelimit-remaining`` and ``x-ratelimit-reset``
(epoch seconds at which the window ends). A request past ``per_minute`` gets
429 with no Retry-After.

Settings (``settings.enrichment``): ``per_minute`` (600),
``pending_first_lookup`` (true).
"""

from __future__ import annotations

import base64
import binascii
import copy
import logging
import re
from typing import Any

from sandbox.core import Request, Response, Sandbox, VendorApp, json_response

log = logging.getLogger(__name__)

DEFAULT_SETTINGS: dict[str, Any] = {"per_minute": 600, "pending_first_lookup": True}

API_VERSION = "2019-12-19"

EMAIL_PATTERN = re.compile(r"^[^@\s]+@([^@\s]+\.[^@\s]+)$")


def error(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> Response:
    log.info("enrichment sandbox: HTTP %d %s: %s", status, error_type, message)
    return json_response({"error": {"type": error_type, "message": message}}, status, **(headers or {}))


class EnrichmentApp(VendorApp):
    name = "enrichment"

    def __init__(self, sandbox: Sandbox):
        super().__init__(sandbox)
        self.settings = {**DEFAULT_SETTINGS, **sandbox.scenario.get("settings", {}).get("enrichment", {})}
        data = sandbox.scenario.get("enrichment", {})
        self.api_key: str | None = data.get("api_key")
        self.people = {entry["email"].strip().lower(): copy.deepcopy(entry) for entry in data.get("people", [])}
        self.companies = {entry["domain"].strip().lower(): copy.deepcopy(entry["company"]) for entry in data.get("companies", [])}
        # Emails (lower case) whose pending first lookup already returned 202.
        self.queued: set[str] = set()
        # Request count per window, keyed by the window's start in epoch minutes.
        self.calls_by_minute: dict[int, int] = {}
        self.lookups = 0
        self.route("GET", r"/v2/combined/find", self.combined_find)

    # -- vendor responses used by fault injection -----------------------------
    def throttle_response(self, request: Request) -> Response:
        minute = self._minute()
        headers = self._rate_headers(minute, remaining=0)
        return error(429, "rate_limit", "Rate limit exceeded; retry after x-ratelimit-reset", headers)

    def expired_token_response(self, request: Request) -> Response:
        return error(401, "invalid_api_key", "Invalid API key")

    def error_response(self, status: int, message: str) -> Response:
        error_type = "unknown_route" if status == 404 else "invalid_request"
        return error(status, error_type, message)

    def dump_state(self) -> Any:
        return {
            "people": len(self.people),
            "companies": len(self.companies),
            "lookups": self.lookups,
            "queued": len(self.queued),
            "calls_this_minute": self.calls_by_minute.get(self._minute(), 0),
        }

    # -- helpers ------------------------------------------------------------
    def _minute(self) -> int:
        return int(self.clock.now().timestamp()) // 60

    def _rate_headers(self, minute: int, remaining: int) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(int(self.settings["per_minute"])),
            "x-ratelimit-remaining": str(max(0, remaining)),
            "x-ratelimit-reset": str((minute + 1) * 60),
            "x-api-version": API_VERSION,
        }

    @staticmethod
    def _api_key(request: Request) -> str | None:
        bearer = request.bearer_token()
        if bearer:
            return bearer
        value = request.header("authorization", "") or ""
        if value.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(value[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return decoded.partition(":")[0] or None
        return None

    # -- endpoint -----------------------------------------------------------
    def combined_find(self, request: Request, match: re.Match) -> Response:
        key = self._api_key(request)
        if key is None:
            return error(401, "auth_required", "Missing API key; send it as a bearer token or the Basic auth user name")
        if key != self.api_key:
            return error(401, "invalid_api_key", "Invalid API key")

        minute = self._minute()
        used = self.calls_by_minute.get(minute, 0) + 1
        self.calls_by_minute[minute] = used
        limit = int(self.settings["per_minute"])
        if used > limit:
            log.info("enrichment sandbox: %d requests in the current minute exceed %d", used, limit)
            return self.throttle_response(request)
        headers = self._rate_headers(minute, remaining=limit - used)

        email = (request.arg("email") or "").strip()
        email_match = EMAIL_PATTERN.match(email)
        if email_match is None:
            return error(422, "invalid_email", "Parameter 'email' is missing or not a valid email address", headers)
        self.lookups += 1
        email_key = email.lower()
        domain = email_match.group(1).lower()

        entry = self.people.get(email_key)
        if entry is not None:
            pending = entry.get("pending_first") and bool(self.settings["pending_first_lookup"])
            if pending and email_key not in self.queued:
                self.queued.add(email_key)
                return Response(status=202, body=b"", headers=headers)
            person = copy.deepcopy(entry.get("person"))
            company = entry.get("company") or self.companies.get(domain)
            employer_domain = ((person or {}).get("employment") or {}).get("domain")
            if company is None and employer_domain:
                company = self.companies.get(employer_domain.lower())
            company = copy.deepcopy(company)
            return json_response({"person": person, "company": company}, **headers)
        return json_response({"person": None, "company": copy.deepcopy(self.companies.get(domain))}, **headers)


def create_app(sandbox: Sandbox) -> EnrichmentApp:
    return EnrichmentApp(sandbox)
