"""LinkedIn Lead Sync client: lead form responses and the form versions that explain them.

The connection's ``password`` is a 3-legged member access token, and its
``extra`` may set ``linkedin_version`` (``LinkedIn-Version`` header, default
``202601``), ``page_size`` (``count`` per request, default 100) and
``conn_id`` (named in errors that ask for the token to be renewed).

LinkedIn keys answers by ``questionId``. Their meaning (EMAIL, FIRST_NAME …)
is on the form version named by the lead's ``versionedLeadGenFormUrn``, so
``to_common`` needs the lead and that form version (``get_form``).
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

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

VENDOR = "linkedin"
DEFAULT_VERSION = "202601"
DEFAULT_PAGE_SIZE = 100

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

VERSIONED_FORM_URN = re.compile(r"^urn:li:versionedLeadGenForm:\(urn:li:leadGenForm:(\d+),(\d+)\)$")

# LinkedIn predefinedField -> key in the common record's ``fields``. Other
# predefined fields (seniority, industry …) appear only in ``answers``.
PREDEFINED_FIELDS = {
    "FIRST_NAME": "first_name",
    "LAST_NAME": "last_name",
    "EMAIL": "email",
    "WORK_EMAIL": "work_email",
    "PHONE_NUMBER": "phone",
    "COMPANY_NAME": "company",
    "JOB_TITLE": "job_title",
    "COUNTRY": "country",
}


def to_epoch_ms(instant: datetime) -> int:
    if instant.tzinfo is None:
        raise ValueError(f"datetime {instant.isoformat()} has no time zone; pass an aware UTC datetime")
    return (instant - EPOCH) // timedelta(milliseconds=1)


def parse_form_urn(versioned_form_urn: str) -> tuple[str, str]:
    """Return ``(form_id, version)`` from ``urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{id},{version})``."""
    match = VERSIONED_FORM_URN.match(versioned_form_urn or "")
    if match is None:
        raise ValueError(f"invalid versioned lead form URN {versioned_form_urn!r}")
    return match.group(1), match.group(2)


class LinkedInClient:
    """Read-only client for ``/rest/leadFormResponses`` and ``/rest/leadForms``."""

    def __init__(self, config: ClientConfig, policy: RetryPolicy | None = None):
        if not config.password:
            raise ValueError("LinkedIn connection has no access token; store it in the connection password")
        self.config = config
        self.policy = policy or RetryPolicy()
        self.base_url = config.base_url.rstrip("/")
        self.version = str(config.extra.get("linkedin_version", DEFAULT_VERSION))
        self.page_size = int(config.extra.get("page_size", DEFAULT_PAGE_SIZE))
        if self.page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {self.page_size}")
        self.connection_name = config.extra.get("conn_id")
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {config.password}",
                "LinkedIn-Version": self.version,
                "X-Restli-Protocol-Version": "2.0.0",
                "Accept": "application/json",
            }
        )
        self._forms: dict[str, dict[str, Any]] = {}

    # -- public API -----------------------------------------------------------
    def iter_leads(
        self, sponsored_account_id: str, start: datetime, end: datetime, include_test: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Return a lazy iterator of raw SPONSORED ``leadFormResponses`` elements submitted in ``[start, end)``.

        LinkedIn returns test leads only to a query with ``limitedToTestLeads=true``,
        so ``include_test`` adds a second pass for them after the real leads.
        The server's range bounds are not documented as inclusive or exclusive,
        so the request widens the range by 1 ms at the start and the client
        drops elements outside ``[start, end)``.
        """
        account_id = str(sponsored_account_id)
        if not account_id.isdigit():
            raise ValueError(f"sponsored account id must be numeric, got {sponsored_account_id!r}")
        start_ms = to_epoch_ms(start)
        end_ms = to_epoch_ms(end)
        if end_ms <= start_ms:
            raise ValueError(f"empty window: end {end.isoformat()} is not after start {start.isoformat()}")
        # Arguments are checked above, at the call, and the pages are read lazily.
        passes = (False, True) if include_test else (False,)
        return itertools.chain.from_iterable(
            self._iter_pass(account_id, start_ms, end_ms, test_only) for test_only in passes
        )

    def get_form(self, versioned_form_urn: str) -> dict[str, Any]:
        """Fetch one form version, cached per URN, from ``/rest/leadForms/{id}?versionId={version}``."""
        if versioned_form_urn not in self._forms:
            form_id, version = parse_form_urn(versioned_form_urn)
            url = f"{self.base_url}/rest/leadForms/{form_id}?versionId={version}"
            call = functools.partial(self._get_json, url)
            self._forms[versioned_form_urn] = with_retries(
                call, self.policy, what=f"LinkedIn leadForms {form_id} v{version}"
            )
        return self._forms[versioned_form_urn]

    # -- internals ------------------------------------------------------------
    def _leads_url(self, account_id: str, start_ms: int, end_ms: int, test_only: bool, offset: int) -> str:
        # Rest.li 2.0 wants literal parentheses and colons around a URN that is
        # itself percent-encoded once. requests' params encoding would encode
        # the parentheses too, so the query string is written by hand.
        query = "&".join(
            [
                "q=owner",
                f"owner=(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A{account_id})",
                "leadType=(leadType:SPONSORED)",
                f"limitedToTestLeads={'true' if test_only else 'false'}",
                f"submittedAtTimeRange=(start:{start_ms - 1},end:{end_ms})",
                f"start={offset}",
                f"count={self.page_size}",
            ]
        )
        return f"{self.base_url}/rest/leadFormResponses?{query}"

    def _iter_pass(self, account_id: str, start_ms: int, end_ms: int, test_only: bool) -> Iterator[dict[str, Any]]:
        offset = 0
        pages = 0
        yielded = 0
        while True:
            url = self._leads_url(account_id, start_ms, end_ms, test_only, offset)
            call = functools.partial(self._get_json, url)
            body = with_retries(
                call, self.policy, what=f"LinkedIn leadFormResponses account {account_id} start={offset}"
            )
            pages += 1
            elements = body.get("elements") or []
            for element in elements:
                submitted = element.get("submittedAt")
                if submitted is not None and not start_ms <= int(submitted) < end_ms:
                    continue
                yielded += 1
                yield element
            paging = body.get("paging") or {}
            # The server may cap ``count``, so a short page is measured against
            # the count it reports back.
            page_count = int(paging.get("count") or self.page_size)
            offset += len(elements)
            total = paging.get("total")
            if not elements or len(elements) < page_count or (total is not None and offset >= int(total)):
                break
        log.info(
            "LinkedIn account %s: %d %s leads in %d pages",
            account_id,
            yielded,
            "test" if test_only else "real",
            pages,
        )

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
        if not isinstance(payload, dict):
            payload = {}
        message = str(payload.get("message") or response.reason or "no message")
        code = payload.get("serviceErrorCode")
        code_text = str(code) if code is not None else None
        if status == 429:
            # LinkedIn sends no Retry-After; the retry policy's backoff decides the wait.
            return Throttled(VENDOR, f"throttled: {message}", status=status, code=code_text)
        if status >= 500:
            return TransientError(VENDOR, f"server error: {message}", status=status, code=code_text)
        if status == 401:
            connection = (
                f"Airflow connection '{self.connection_name}'"
                if self.connection_name
                else "the LinkedIn Airflow connection"
            )
            return PermanentError(
                VENDOR,
                f"access token rejected ({message}). LinkedIn tokens are 3-legged and cannot be refreshed "
                f"unattended: re-authorize the app and store the new token in the password of {connection}",
                status=status,
                code=code_text,
            )
        if status == 426:
            return PermanentError(
                VENDOR,
                f"LinkedIn-Version {self.version} is no longer served ({message}); set 'linkedin_version' in the connection extra to a supported YYYYMM",
                status=status,
                code=code_text,
            )
        return PermanentError(VENDOR, f"request rejected: {message}", status=status, code=code_text)


# -- common lead record -----------------------------------------------------------
def _localized(value: Any) -> str | None:
    """Pick the en_US text of a LinkedIn localized string, else the first locale's."""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        return None
    localized = value.get("localized")
    if not isinstance(localized, dict) or not localized:
        return None
    if "en_US" in localized:
        return localized["en_US"]
    return next(iter(localized.values()))


def _option_labels(question: dict[str, Any] | None, option_ids: list[Any]) -> list[str]:
    details = ((question or {}).get("questionDetails") or {}).get("multipleChoiceQuestionDetails") or {}
    options = {str(option.get("id")): option for option in details.get("options") or []}
    labels = []
    for option_id in option_ids:
        option = options.get(str(option_id))
        label = None
        if option is not None:
            label = _localized(option.get("text")) or option.get("label")
        # An option missing from the form version keeps its id, so nothing is lost.
        labels.append(str(label) if label is not None else str(option_id))
    return labels


def to_common(element: dict[str, Any], form: dict[str, Any]) -> dict[str, Any]:
    """Convert a ``leadFormResponses`` element and its form version to the common lead record.

    ``answers`` is keyed by the question's ``name``, or by the ``questionId``
    when the form version lacks the question. A multiple-choice answer is the
    list of option labels. ``fields`` contains the mapped predefined fields with
    the raw submitted text, empty strings included. A multiple-choice standard
    field contains its labels joined by ", ". ``consent`` is None without
    consent responses, else whether every consent was accepted.
    """
    questions = {str(q.get("questionId")): q for q in ((form or {}).get("content") or {}).get("questions") or []}
    fields: dict[str, str] = {}
    answers: dict[str, Any] = {}
    form_response = element.get("formResponse") or {}
    for answer in form_response.get("answers") or []:
        question_id = str(answer.get("questionId"))
        question = questions.get(question_id)
        key = str(question.get("name") or question_id) if question else question_id
        details = answer.get("answerDetails") or {}
        if "multipleChoiceAnswer" in details:
            value: Any = _option_labels(question, (details["multipleChoiceAnswer"] or {}).get("options") or [])
            text = ", ".join(value)
        else:
            text = str(((details.get("textQuestionAnswer") or {}).get("answer")) or "")
            value = text
        answers[key] = value
        standard = PREDEFINED_FIELDS.get((question or {}).get("predefinedField") or "")
        if standard:
            fields[standard] = text

    consents = form_response.get("consentResponses") or []
    consent = all(bool(c.get("accepted")) for c in consents) if consents else None

    urn = element.get("versionedLeadGenFormUrn")
    form_id = None
    if urn and VERSIONED_FORM_URN.match(urn):
        form_id = parse_form_urn(urn)[0]
    elif form and form.get("id") is not None:
        form_id = str(form["id"])

    campaign = ((element.get("leadMetadata") or {}).get("sponsoredLeadMetadata") or {}).get("campaign")
    return {
        "source": "linkedin",
        "source_lead_id": str(element["id"]),
        "submitted_at": EPOCH + timedelta(milliseconds=int(element["submittedAt"])),
        "form_id": form_id,
        "campaign_ref": str(campaign) if campaign else None,
        "is_test": bool(element.get("testLead", False)),
        "fields": fields,
        "answers": answers,
        "consent": consent,
    }
