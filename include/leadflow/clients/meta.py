"""Meta Lead Ads client: leads of one lead form and the form's questions, over the Graph API.

The connection's ``password`` is a Page or system-user access token, and its
``extra`` may set ``graph_version`` (path prefix, default ``v24.0``),
``page_size`` (``limit`` per request, default 100) and ``conn_id`` (named in
errors that ask for the token to be renewed).
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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

VENDOR = "meta"
DEFAULT_GRAPH_VERSION = "v24.0"
DEFAULT_PAGE_SIZE = 100

LEAD_FIELDS = (
    "id",
    "created_time",
    "ad_id",
    "ad_name",
    "adset_id",
    "adset_name",
    "campaign_id",
    "campaign_name",
    "form_id",
    "is_organic",
    "platform",
    "field_data",
    "custom_disclaimer_responses",
)

# Graph API error codes that mean "slow down": app, user, page and custom
# limits, and the business-use-case limits 80000-80008.
THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80009)})
# Codes Meta documents as temporary.
TRANSIENT_CODES = frozenset({1, 2, 341, 368})
TOKEN_CODES = frozenset({102, 190})

REDUCE_DATA_TEXT = "reduce the amount of data"

# Meta field_data name -> key in the common record's ``fields``.
STANDARD_FIELDS = {
    "first_name": "first_name",
    "last_name": "last_name",
    "full_name": "full_name",
    "email": "email",
    "work_email": "work_email",
    "phone_number": "phone",
    "company_name": "company",
    "job_title": "job_title",
    "country": "country",
}


class ReduceDataError(VendorError):
    """HTTP 500 asking for less data per request; the caller halves ``limit``."""


def parse_created_time(value: str) -> datetime:
    """Parse Meta's ``2026-01-01T00:05:12+0000`` into an aware UTC datetime."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)


def regain_seconds(header: str | None) -> float | None:
    """Read the largest ``estimated_time_to_regain_access`` (minutes) from X-Business-Use-Case-Usage."""
    if not header:
        return None
    try:
        usage = json.loads(header)
    except ValueError:
        return None
    if not isinstance(usage, dict):
        return None
    minutes = [
        entry.get("estimated_time_to_regain_access")
        for entries in usage.values()
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, dict)
    ]
    minutes = [float(m) for m in minutes if isinstance(m, int | float) and m > 0]
    return max(minutes) * 60 if minutes else None


def with_limit(url: str, limit: int) -> str:
    parts = urlsplit(url)
    params = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if name != "limit"]
    params.append(("limit", str(limit)))
    return urlunsplit(parts._replace(query=urlencode(params)))


class MetaLeadsClient:
    """Read-only Graph API client for ``/{form_id}/leads`` and form questions."""

    def __init__(self, config: ClientConfig, policy: RetryPolicy | None = None):
        if not config.password:
            raise ValueError("Meta connection has no access token; store it in the connection password")
        self.config = config
        self.policy = policy or RetryPolicy()
        self.base_url = config.base_url.rstrip("/")
        self.graph_version = str(config.extra.get("graph_version", DEFAULT_GRAPH_VERSION))
        self.page_size = int(config.extra.get("page_size", DEFAULT_PAGE_SIZE))
        if self.page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {self.page_size}")
        self.connection_name = config.extra.get("conn_id")
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {config.password}", "Accept": "application/json"})
        self._questions: dict[str, list[dict[str, Any]]] = {}

    # -- public API -----------------------------------------------------------
    def iter_leads(self, form_id: str, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Return a lazy iterator of raw lead objects of ``form_id`` created in ``[start, end)``.

        The ``time_created`` filter works in whole seconds with strict
        operators, so the request filters on ``> ceil(start) - 1`` and
        ``< ceil(end)``, and the client drops anything outside the window.
        On HTTP 500 "reduce the amount of data" the page is requested again
        with half the ``limit``, and the smaller limit is kept for the rest
        of the iteration.
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be aware UTC datetimes")
        if end <= start:
            raise ValueError(f"empty window: end {end.isoformat()} is not after start {start.isoformat()}")
        # Arguments are checked above, at the call, and the pages are read lazily.
        return self._iter_pages(str(form_id), start, end)

    def get_form_questions(self, form_id: str) -> list[dict[str, Any]]:
        """Fetch the questions of one lead form, cached per form id."""
        form = str(form_id)
        if form not in self._questions:
            url = f"{self.base_url}/{self.graph_version}/{form}?fields=questions"
            body = with_retries(
                functools.partial(self._get_json, url), self.policy, what=f"Meta questions of form {form}"
            )
            self._questions[form] = list(body.get("questions") or [])
        return self._questions[form]

    # -- internals ------------------------------------------------------------
    def _iter_pages(self, form: str, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        filtering = [
            {"field": "time_created", "operator": "GREATER_THAN", "value": math.ceil(start.timestamp()) - 1},
            {"field": "time_created", "operator": "LESS_THAN", "value": math.ceil(end.timestamp())},
        ]
        params = {
            "fields": ",".join(LEAD_FIELDS),
            "filtering": json.dumps(filtering, separators=(",", ":")),
            "limit": str(self.page_size),
        }
        url: str | None = f"{self.base_url}/{self.graph_version}/{form}/leads?{urlencode(params)}"
        limit = self.page_size
        pages = 0
        yielded = 0
        while url:
            try:
                body = with_retries(
                    functools.partial(self._get_json, url), self.policy, what=f"Meta leads of form {form}"
                )
            except ReduceDataError:
                if limit <= 1:
                    raise TransientError(VENDOR, f"form {form}: Meta still requests less data at limit=1") from None
                limit = max(1, limit // 2)
                log.warning("Meta form %s: server asked for less data; retrying with limit=%d", form, limit)
                url = with_limit(url, limit)
                continue
            pages += 1
            for lead in body.get("data") or []:
                created = lead.get("created_time")
                if created and not start <= parse_created_time(created) < end:
                    continue
                yielded += 1
                yield lead
            next_url = ((body.get("paging") or {}).get("next")) or None
            url = with_limit(self._check_next(next_url), limit) if next_url else None
        log.info("Meta form %s: %d leads in %d pages", form, yielded, pages)

    def _check_next(self, next_url: str) -> str:
        # The token travels with every request, so a next link must stay on the configured host.
        expected = urlsplit(self.base_url)
        actual = urlsplit(next_url)
        if (actual.scheme, actual.netloc) != (expected.scheme, expected.netloc):
            raise PermanentError(
                VENDOR, f"paging.next points to {actual.scheme}://{actual.netloc}, not the configured {self.base_url}"
            )
        return next_url

    def _get_json(self, url: str) -> Any:
        response = send(self.session, VENDOR, "GET", url, self.config.timeout)
        if response.status_code == 200:
            return json_body(VENDOR, response)
        raise self._error(response)

    def _error(self, response: requests.Response) -> VendorError:
        status = response.status_code
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        error = payload.get("error") if isinstance(payload, dict) else None
        error = error if isinstance(error, dict) else {}
        message = str(error.get("message") or response.reason or "no message")
        code = error.get("code")
        code_text = str(code) if code is not None else None
        if status == 500 and REDUCE_DATA_TEXT in message.lower():
            return ReduceDataError(VENDOR, message, status=status, code=code_text)
        if code in THROTTLE_CODES:
            retry_after = regain_seconds(response.headers.get("X-Business-Use-Case-Usage"))
            return Throttled(VENDOR, f"throttled: {message}", retry_after=retry_after, status=status, code=code_text)
        if code in TOKEN_CODES:
            connection = (
                f"Airflow connection '{self.connection_name}'"
                if self.connection_name
                else "the Meta Airflow connection"
            )
            return PermanentError(
                VENDOR,
                f"access token invalid or expired ({message}); issue a new Page or system-user token with leads_retrieval "
                f"and store it in the password of {connection}",
                status=status,
                code=code_text,
            )
        if status >= 500 or code in TRANSIENT_CODES or error.get("is_transient") is True:
            return TransientError(VENDOR, f"temporary failure: {message}", status=status, code=code_text)
        return PermanentError(VENDOR, f"request rejected: {message}", status=status, code=code_text)


# -- common lead record -----------------------------------------------------------
def _answer_value(values: list[Any], question: dict[str, Any] | None) -> Any:
    """Return the answer as a string, or as a list of labels for a question with options."""
    texts = ["" if v is None else str(v) for v in values]
    options = (question or {}).get("options")
    if options:
        labels = {
            str(option.get("key")): str(option.get("value")) for option in options if option.get("value") is not None
        }
        return [labels.get(text, text) for text in texts]
    if len(texts) == 1:
        return texts[0]
    if not texts:
        return ""
    return texts


def to_common(lead: dict[str, Any], questions: list[dict[str, Any]]) -> dict[str, Any]:
    """Convert a Graph API lead object and its form's questions to the common lead record.

    ``fields`` contains the standard keys with the raw submitted text, empty
    strings included. A multi-value standard answer is joined with ", ".
    ``is_test`` is always False: the lead object has no test flag, and test
    leads are only recognisable by id from the form's test-lead tooling.
    ``consent`` is None without ``custom_disclaimer_responses``, else whether
    every checkbox was checked.
    """
    by_key = {str(q.get("key")): q for q in questions or [] if q.get("key") is not None}
    fields: dict[str, str] = {}
    answers: dict[str, Any] = {}
    for item in lead.get("field_data") or []:
        name = str(item.get("name"))
        values = item.get("values")
        if not isinstance(values, list):
            values = [] if values is None else [values]
        value = _answer_value(values, by_key.get(name))
        answers[name] = value
        standard = STANDARD_FIELDS.get(name)
        if standard:
            fields[standard] = ", ".join(value) if isinstance(value, list) else value

    disclaimers = lead.get("custom_disclaimer_responses") or []
    consent = None
    if disclaimers:
        consent = all(str(d.get("is_checked")).lower() in ("1", "true") for d in disclaimers)

    return {
        "source": "meta",
        "source_lead_id": str(lead["id"]),
        "submitted_at": parse_created_time(lead["created_time"]),
        "form_id": str(lead["form_id"]) if lead.get("form_id") else None,
        "campaign_ref": str(lead["campaign_id"]) if lead.get("campaign_id") else None,
        "is_test": False,
        "fields": fields,
        "answers": answers,
        "consent": consent,
    }
