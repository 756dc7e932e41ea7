"""LinkedIn Lead Sync stand-in: ``leadFormResponses`` and ``leadForms`` under ``/rest/``.

Each ``accounts[].linkedin`` entry of the scenario is one tenant with an
``access_token``, a ``sponsored_account_id``, ``forms`` (``leadForms`` shape,
one entry per form version, each with ``id`` and ``versionId``) and ``leads``
(``leadFormResponses`` elements). A lead without ``owner``, ``leadType`` or
``testLead`` gets the tenant's sponsored account, ``SPONSORED`` and ``false``.

Endpoints:

- ``GET /rest/leadFormResponses?q=owner&owner=(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A{id})
  &leadType=(leadType:SPONSORED)`` with the optional ``submittedAtTimeRange=(start:{ms},end:{ms})``,
  ``limitedToTestLeads``, ``versionedLeadGenFormUrn`` and ``start``/``count``. The Rest.li
  values are parsed from the raw query string, so an ``owner`` whose parentheses
  or colons are percent-encoded (what ``requests`` produces from a params dict)
  or whose URN is not encoded is rejected with 400.
- ``GET /rest/leadFormResponses/{id}``: one lead.
- ``GET /rest/leadForms?q=owner&owner=...``: the latest version of each form,
  offset-paged, with no ``paging.total``.
- ``GET /rest/leadForms/{id}``: the latest version of a form, or the version
  given by ``?versionId={n}``. A client resolves
  ``urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{id},{n})`` to
  ``/rest/leadForms/{id}?versionId={n}``.
  NOTE: ``versionId`` as a query parameter is a convention of this sandbox.
  The public LinkedIn documentation does not show how an older version is read.

Behaviour choices:

- Test leads: ``limitedToTestLeads=true`` returns only rows with
  ``testLead: true``. ``false`` or an absent parameter returns only real
  leads, so a client that wants both sends two queries. The parameter is
  documented as "only fetch test leads", default false.
- ``submittedAtTimeRange`` keeps leads with ``start <= submittedAt < end``.
  NOTE: LinkedIn does not document whether its bounds are inclusive.
- Leads are listed newest first and only once ``submittedAt`` is at or before
  the sandbox clock, and not when older than ``retention_days``.
- ``fields`` projections are accepted and ignored: every response carries the
  whole stored record.
- A call with a valid token counts toward the tenant's ``daily_quota``, which
  resets at 00:00 UTC on the sandbox clock. Over quota, the response is the
  same 429 as a throttle, because LinkedIn does not tell the two apart.
- Access tokens expire ``token_ttl_seconds`` after the sandbox started,
  measured on the sandbox clock.
- ``serviceErrorCode`` 101 is LinkedIn's throttle code. The other codes used
  here (65600 invalid token, 65601 expired token, 100 access denied,
  2 invalid request, 4 not found) are choices of this sandbox.

Settings (``settings.linkedin``): ``default_count`` (10), ``max_count`` (500,
larger counts are capped), ``token_ttl_seconds`` (5184000), ``daily_quota``
(100000), ``sunset_versions`` (``["202301"]``), ``retention_days`` (365).
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from sandbox.core import Request, Response, Sandbox, VendorApp, json_response

log = logging.getLogger(__name__)

DEFAULT_SETTINGS: dict[str, Any] = {
    "default_count": 10,
    "max_count": 500,
    "token_ttl_seconds": 5_184_000,
    "daily_quota": 100_000,
    "sunset_versions": ["202301"],
    "retention_days": 365,
}

THROTTLE_BODY = {
    "serviceErrorCode": 101,
    "message": "Resource level throttle limit for calls to this resource is reached.",
    "status": 429,
}

SERVICE_CODE_INVALID_REQUEST = 2
SERVICE_CODE_NOT_FOUND = 4
SERVICE_CODE_ACCESS_DENIED = 100
SERVICE_CODE_INVALID_TOKEN = 65600
SERVICE_CODE_EXPIRED_TOKEN = 65601

LEAD_TYPES = ("SPONSORED", "EVENT", "COMPANY", "ORGANIZATION_PRODUCT")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Rest.li 2.0 union values: the wrapper stays literal, the URN inside is
# percent-encoded exactly once.
SPONSORED_OWNER = re.compile(r"^\(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A(\d+)\)$")
ORGANIZATION_OWNER = re.compile(r"^\(organization:urn%3Ali%3Aorganization%3A(\d+)\)$")
LEAD_TYPE_VALUE = re.compile(r"^\(leadType:([A-Z_]+)\)$")
TIME_RANGE_VALUE = re.compile(r"^\((?:start:(\d+))?(,)?(?:end:(\d+))?\)$")
VERSIONED_FORM_URN = re.compile(r"^urn:li:versionedLeadGenForm:\(urn:li:leadGenForm:(\d+),(\d+)\)$")
VERSION_HEADER = re.compile(r"^\d{6}(\.\d{2})?$")


def to_epoch_ms(instant: datetime) -> int:
    return (instant - EPOCH) // timedelta(milliseconds=1)


class InvalidParameter(Exception):
    """A query parameter that is missing or not valid Rest.li. The message names it."""


@dataclass
class Tenant:
    account_id: str
    access_token: str
    sponsored_account_id: str
    forms: list[dict[str, Any]]
    leads: list[dict[str, Any]]
    # Calls with this tenant's token per UTC date (ISO string).
    calls_by_day: dict[str, int] = field(default_factory=dict)


def error(status: int, message: str, service_code: int, code: str | None = None) -> Response:
    """Build LinkedIn's error envelope ``{"message", "serviceErrorCode", "status"}``."""
    log.info("linkedin sandbox: HTTP %d (serviceErrorCode %d): %s", status, service_code, message)
    body: dict[str, Any] = {"message": message, "serviceErrorCode": service_code, "status": status}
    if code:
        body["code"] = code
    return json_response(body, status)


def parse_raw_query(raw_query: str) -> dict[str, str]:
    """Split a query string into raw (still percent-encoded) values by decoded name."""
    params: dict[str, str] = {}
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name = unquote(name)
        if name in params:
            raise InvalidParameter(f"Query parameter '{name}' is given more than once")
        params[name] = value
    return params


def parse_int(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    text = unquote(raw)
    if not text.isdigit():
        raise InvalidParameter(f"Query parameter '{name}' must be a non-negative integer, got '{text}'")
    return int(text)


def parse_time_range(raw: str) -> tuple[int | None, int | None]:
    """Parse ``(start:{ms},end:{ms})``, where either bound may be left out."""
    match = TIME_RANGE_VALUE.match(raw)
    if match is None or raw == "()":
        raise InvalidParameter(f"submittedAtTimeRange must look like (start:<ms>,end:<ms>), got '{raw}'")
    start, comma, end = match.groups()
    if bool(comma) != bool(start and end):
        raise InvalidParameter(f"submittedAtTimeRange must look like (start:<ms>,end:<ms>), got '{raw}'")
    return (int(start) if start else None, int(end) if end else None)


def parse_owner(raw: str | None) -> tuple[str, str]:
    """Return ``("sponsoredAccount"|"organization", id)`` from a raw Rest.li owner value."""
    if raw is None:
        raise InvalidParameter("Query parameter 'owner' is missing")
    for kind, pattern in (("sponsoredAccount", SPONSORED_OWNER), ("organization", ORGANIZATION_OWNER)):
        match = pattern.match(raw)
        if match:
            return kind, match.group(1)
    raise InvalidParameter(
        "Query parameter 'owner' is not valid Rest.li 2.0: expected "
        f"(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A<id>) with literal parentheses, got '{raw}'"
    )


class LinkedInApp(VendorApp):
    name = "linkedin"

    def __init__(self, sandbox: Sandbox):
        super().__init__(sandbox)
        self.settings = {**DEFAULT_SETTINGS, **sandbox.scenario.get("settings", {}).get("linkedin", {})}
        self.started_at = self.clock.now()
        self.tenants: list[Tenant] = []
        for account in sandbox.scenario.get("accounts", []):
            source = account.get("linkedin")
            if not source:
                continue
            self.tenants.append(self._load_tenant(account["account_id"], source))
        self.route("GET", r"/rest/leadFormResponses", self.find_lead_responses)
        self.route("GET", r"/rest/leadFormResponses/([^/]+)", self.get_lead_response)
        self.route("GET", r"/rest/leadForms", self.find_forms)
        self.route("GET", r"/rest/leadForms/(\d+)", self.get_form)

    @staticmethod
    def _load_tenant(account_id: str, source: dict[str, Any]) -> Tenant:
        sponsored_id = str(source["sponsored_account_id"])
        leads = []
        for lead in source.get("leads", []):
            lead = copy.deepcopy(lead)
            lead.setdefault("owner", {"sponsoredAccount": f"urn:li:sponsoredAccount:{sponsored_id}"})
            lead.setdefault("leadType", "SPONSORED")
            lead.setdefault("testLead", False)
            leads.append(lead)
        return Tenant(
            account_id=account_id,
            access_token=source["access_token"],
            sponsored_account_id=sponsored_id,
            forms=copy.deepcopy(source.get("forms", [])),
            leads=leads,
        )

    # -- vendor responses used by fault injection -----------------------------
    def throttle_response(self, request: Request) -> Response:
        # LinkedIn sends no Retry-After or rate-limit headers with a 429.
        return json_response(dict(THROTTLE_BODY), 429)

    def expired_token_response(self, request: Request) -> Response:
        return error(401, "The access token has expired", SERVICE_CODE_EXPIRED_TOKEN, "EXPIRED_ACCESS_TOKEN")

    def error_response(self, status: int, message: str) -> Response:
        service_code = SERVICE_CODE_NOT_FOUND if status == 404 else SERVICE_CODE_INVALID_REQUEST
        return error(status, message, service_code)

    def dump_state(self) -> Any:
        today = self.clock.now().date().isoformat()
        return {
            tenant.account_id: {
                "forms": len(tenant.forms),
                "leads": len(tenant.leads),
                "test_leads": sum(1 for lead in tenant.leads if lead.get("testLead")),
                "calls_today": tenant.calls_by_day.get(today, 0),
            }
            for tenant in self.tenants
        }

    # -- checks shared by every endpoint ----------------------------------------
    def _authorize(self, request: Request) -> Tenant | Response:
        """Check headers, token and daily quota, and return the caller's tenant or an error response."""
        version = request.header("linkedin-version")
        if not version:
            return error(400, "Missing LinkedIn-Version header; send a version in YYYYMM form", SERVICE_CODE_INVALID_REQUEST, "VERSION_MISSING")
        if not VERSION_HEADER.match(version):
            return error(400, f"Invalid LinkedIn-Version '{version}'; expected YYYYMM", SERVICE_CODE_INVALID_REQUEST, "VERSION_INVALID")
        if version.split(".")[0] in {str(v) for v in self.settings["sunset_versions"]}:
            return error(426, f"LinkedIn-Version {version} is sunset; upgrade to a supported version", SERVICE_CODE_INVALID_REQUEST, "NONEXISTENT_VERSION")
        protocol = request.header("x-restli-protocol-version")
        if protocol != "2.0.0":
            return error(400, f"X-Restli-Protocol-Version must be 2.0.0, got '{protocol}'", SERVICE_CODE_INVALID_REQUEST)

        token = request.bearer_token()
        if not token:
            return error(401, "Missing bearer access token", SERVICE_CODE_INVALID_TOKEN, "INVALID_ACCESS_TOKEN")
        tenant = next((t for t in self.tenants if t.access_token == token), None)
        if tenant is None:
            return error(401, "Invalid access token", SERVICE_CODE_INVALID_TOKEN, "INVALID_ACCESS_TOKEN")
        now = self.clock.now()
        if (now - self.started_at).total_seconds() >= float(self.settings["token_ttl_seconds"]):
            return self.expired_token_response(request)

        day = now.date().isoformat()
        tenant.calls_by_day[day] = tenant.calls_by_day.get(day, 0) + 1
        if tenant.calls_by_day[day] > int(self.settings["daily_quota"]):
            log.info("linkedin sandbox: daily quota reached for account %s", tenant.account_id)
            return self.throttle_response(request)
        return tenant

    def _page_bounds(self, params: dict[str, str]) -> tuple[int, int]:
        start = parse_int(params, "start", 0)
        count = parse_int(params, "count", int(self.settings["default_count"]))
        return start, min(count, int(self.settings["max_count"]))

    def _visible(self, lead: dict[str, Any], now_ms: int) -> bool:
        oldest_ms = now_ms - int(self.settings["retention_days"]) * 86_400_000
        return oldest_ms <= int(lead["submittedAt"]) <= now_ms

    # -- leadFormResponses ------------------------------------------------------
    def find_lead_responses(self, request: Request, match: re.Match) -> Response:
        tenant = self._authorize(request)
        if isinstance(tenant, Response):
            return tenant
        try:
            params = parse_raw_query(request.raw_query)
            selected = self._select_leads(tenant, params)
            start, count = self._page_bounds(params)
        except InvalidParameter as exc:
            return error(400, str(exc), SERVICE_CODE_INVALID_REQUEST)
        except PermissionError as exc:
            return error(403, str(exc), SERVICE_CODE_ACCESS_DENIED)
        page = selected[start : start + count]
        return json_response(
            {
                "paging": {"start": start, "count": count, "links": [], "total": len(selected)},
                "elements": [copy.deepcopy(lead) for lead in page],
            }
        )

    def _select_leads(self, tenant: Tenant, params: dict[str, str]) -> list[dict[str, Any]]:
        """Apply the ``owner`` finder and its filters, newest lead first.

        Raises InvalidParameter for a malformed query and PermissionError for
        an owner that the token cannot read.
        """
        if unquote(params.get("q", "")) != "owner":
            raise InvalidParameter("Query parameter 'q' must be 'owner'")
        owner_kind, owner_id = parse_owner(params.get("owner"))

        lead_type_raw = params.get("leadType")
        if lead_type_raw is None:
            raise InvalidParameter("Query parameter 'leadType' is missing; send (leadType:SPONSORED)")
        lead_type_match = LEAD_TYPE_VALUE.match(lead_type_raw)
        if lead_type_match is None or lead_type_match.group(1) not in LEAD_TYPES:
            raise InvalidParameter(f"Invalid leadType '{lead_type_raw}'; expected (leadType:<{'|'.join(LEAD_TYPES)}>)")
        lead_type = lead_type_match.group(1)
        if lead_type == "SPONSORED" and owner_kind != "sponsoredAccount":
            raise InvalidParameter("leadType SPONSORED requires a sponsoredAccount owner")
        if owner_kind != "sponsoredAccount" or owner_id != tenant.sponsored_account_id:
            raise PermissionError(f"Not enough permissions to read leads of {owner_kind} {owner_id}")

        test_flag = unquote(params.get("limitedToTestLeads", "false"))
        if test_flag not in ("true", "false"):
            raise InvalidParameter(f"limitedToTestLeads must be true or false, got '{test_flag}'")
        want_test = test_flag == "true"

        range_start, range_end = (None, None)
        if "submittedAtTimeRange" in params:
            range_start, range_end = parse_time_range(params["submittedAtTimeRange"])

        form_urn = None
        if "versionedLeadGenFormUrn" in params:
            raw_urn = params["versionedLeadGenFormUrn"]
            form_urn = unquote(raw_urn)
            # A bare URN parameter is fully encoded, parentheses included.
            if "(" in raw_urn or ":" in raw_urn or not VERSIONED_FORM_URN.match(form_urn):
                raise InvalidParameter(f"versionedLeadGenFormUrn must be a fully percent-encoded versioned form URN, got '{raw_urn}'")

        now_ms = to_epoch_ms(self.clock.now())
        selected = []
        for position, lead in enumerate(tenant.leads):
            submitted = int(lead["submittedAt"])
            if not self._visible(lead, now_ms):
                continue
            if lead.get("leadType") != lead_type or bool(lead.get("testLead")) != want_test:
                continue
            if range_start is not None and submitted < range_start:
                continue
            if range_end is not None and submitted >= range_end:
                continue
            if form_urn is not None and lead.get("versionedLeadGenFormUrn") != form_urn:
                continue
            selected.append((-submitted, position, lead))
        selected.sort(key=lambda item: (item[0], item[1]))
        return [lead for _, _, lead in selected]

    def get_lead_response(self, request: Request, match: re.Match) -> Response:
        tenant = self._authorize(request)
        if isinstance(tenant, Response):
            return tenant
        lead_id = unquote(match.group(1))
        now_ms = to_epoch_ms(self.clock.now())
        for lead in tenant.leads:
            if lead.get("id") == lead_id and self._visible(lead, now_ms):
                return json_response(copy.deepcopy(lead))
        return error(404, f"Lead form response {lead_id} not found", SERVICE_CODE_NOT_FOUND)

    # -- leadForms ----------------------------------------------------------
    def _latest_forms(self, tenant: Tenant) -> list[dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        for form in tenant.forms:
            key = str(form["id"])
            if key not in latest or int(form.get("versionId", 1)) > int(latest[key].get("versionId", 1)):
                latest[key] = form
        return [latest[key] for key in sorted(latest, key=int)]

    def _form_out(self, tenant: Tenant, form: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(form)
        out.setdefault("owner", {"sponsoredAccount": f"urn:li:sponsoredAccount:{tenant.sponsored_account_id}"})
        return out

    def find_forms(self, request: Request, match: re.Match) -> Response:
        tenant = self._authorize(request)
        if isinstance(tenant, Response):
            return tenant
        try:
            params = parse_raw_query(request.raw_query)
            if unquote(params.get("q", "")) != "owner":
                raise InvalidParameter("Query parameter 'q' must be 'owner'")
            owner_kind, owner_id = parse_owner(params.get("owner"))
            start, count = self._page_bounds(params)
        except InvalidParameter as exc:
            return error(400, str(exc), SERVICE_CODE_INVALID_REQUEST)
        if owner_kind != "sponsoredAccount" or owner_id != tenant.sponsored_account_id:
            return error(403, f"Not enough permissions to read forms of {owner_kind} {owner_id}", SERVICE_CODE_ACCESS_DENIED)
        forms = self._latest_forms(tenant)[start : start + count]
        # The leadForms finder returns no paging.total.
        return json_response(
            {
                "paging": {"start": start, "count": count, "links": []},
                "elements": [self._form_out(tenant, form) for form in forms],
            }
        )

    def get_form(self, request: Request, match: re.Match) -> Response:
        tenant = self._authorize(request)
        if isinstance(tenant, Response):
            return tenant
        form_id = match.group(1)
        try:
            params = parse_raw_query(request.raw_query)
            version = parse_int(params, "versionId", -1) if "versionId" in params else None
        except InvalidParameter as exc:
            return error(400, str(exc), SERVICE_CODE_INVALID_REQUEST)
        versions = [form for form in tenant.forms if str(form["id"]) == form_id]
        if not versions:
            return error(404, f"Lead form {form_id} not found", SERVICE_CODE_NOT_FOUND)
        if version is None:
            chosen = max(versions, key=lambda form: int(form.get("versionId", 1)))
        else:
            chosen = next((form for form in versions if int(form.get("versionId", 1)) == version), None)
            if chosen is None:
                return error(404, f"Lead form {form_id} has no version {version}", SERVICE_CODE_NOT_FOUND)
        return json_response(self._form_out(tenant, chosen))


def create_app(sandbox: Sandbox) -> LinkedInApp:
    return LinkedInApp(sandbox)
