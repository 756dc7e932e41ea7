"""Meta Lead Ads stand-in: the Graph API lead retrieval endpoints.

Each ``accounts[].meta`` entry of the scenario is one tenant with an
``access_token``, a ``page_id``, ``forms`` (``{id, name, questions[{key,
label, type, options?}]}``) and ``leads`` (Graph API lead objects, each with
``form_id`` and ``created_time`` in ``2026-01-01T00:05:12+0000`` form).

Endpoints, under any ``/v{N}.0`` prefix:

- ``GET /{form_id}/leads`` with ``fields``, ``filtering``, ``limit`` and
  ``after``. Without ``fields`` a lead carries only ``id`` and
  ``created_time``, as on the Graph API. ``filtering`` is a JSON list of
  ``{"field": "time_created", "operator": "GREATER_THAN"|"LESS_THAN",
  "value": <unix seconds>}``, both operators strict. Leads are listed newest
  first and only once ``created_time`` is at or before the sandbox clock.
- ``GET /{page_id}/leadgen_forms``: the page's forms, cursor-paged.
- ``GET /{object_id}``: one form (``?fields=questions`` for its questions) or
  one lead.

Paging uses opaque cursors that encode the sort key of the last row, so rows
added between two page requests do not shift later pages. ``paging.next``
repeats the request's parameters with the new ``after`` cursor and is absent
on the last page. A page with no rows has no ``paging``.

The token is read from ``Authorization: Bearer`` or the ``access_token``
parameter. A missing token gets error code 104. An unknown or expired token
gets HTTP 400 with an ``OAuthException`` of code 190, subcode 463 when expired.
Tokens expire ``token_ttl_seconds`` after the sandbox started, on the sandbox
clock. An object of another tenant gets code 100, as an unknown one does.

Settings (``settings.meta``): ``default_limit`` (25), ``max_limit`` (100,
larger limits are capped), ``token_ttl_seconds`` (5184000),
``reduce_data_limit`` (500, and a ``limit`` above it gets HTTP 500 "Please
reduce the amount of data you're asking for, then retry your request"),
``throttle_regain_minutes`` (1, the ``estimated_time_to_regain_access`` of the
throttle response).
NOTE: the Graph API raises the "reduce the amount of data" error from response
size, not from a fixed limit. A fixed threshold makes the client's
limit-halving path testable.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sandbox.core import Request, Response, Sandbox, VendorApp, json_response, parse_instant

log = logging.getLogger(__name__)

DEFAULT_SETTINGS: dict[str, Any] = {
    "default_limit": 25,
    "max_limit": 100,
    "token_ttl_seconds": 5_184_000,
    "reduce_data_limit": 500,
    "throttle_regain_minutes": 1,
}

REDUCE_DATA_MESSAGE = "Please reduce the amount of data you're asking for, then retry your request"

LEAD_FIELDS = frozenset(
    {
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
        "partner_name",
        "post",
        "retailer_item_id",
        "vehicle",
        "home_listing",
    }
)
DEFAULT_LEAD_FIELDS = ("id", "created_time")
FORM_FIELDS = frozenset({"id", "name", "status", "locale", "questions", "page_id", "leads_count", "created_time"})
DEFAULT_FORM_FIELDS = ("id", "locale", "name", "status")

FILTER_OPERATORS = ("GREATER_THAN", "LESS_THAN")


class GraphError(Exception):
    """A request the Graph API rejects, with the HTTP status and the ``error`` object to send."""

    def __init__(self, message: str, code: int, *, status: int = 400, subcode: int | None = None, error_type: str = "OAuthException"):
        super().__init__(message)
        self.status = status
        self.error = {"message": message, "type": error_type, "code": code}
        if subcode is not None:
            self.error["error_subcode"] = subcode


@dataclass
class Tenant:
    account_id: str
    access_token: str
    page_id: str
    forms: list[dict[str, Any]]
    leads: list[dict[str, Any]]


def format_created_time(value: str) -> str:
    return parse_instant(value).strftime("%Y-%m-%dT%H:%M:%S+0000")


def encode_cursor(key: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, ...]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError) as exc:
        raise GraphError(f"(#100) Invalid cursor '{cursor}'", 100) from exc
    if not isinstance(key, list):
        raise GraphError(f"(#100) Invalid cursor '{cursor}'", 100)
    return tuple(key)


def parse_fields(raw: str | None, allowed: frozenset[str], default: tuple[str, ...], node: str) -> list[str]:
    if raw is None:
        return list(default)
    names = [name.strip() for name in raw.split(",") if name.strip()]
    for name in names:
        if name not in allowed:
            raise GraphError(f"(#100) Unknown field '{name}' on node type {node}", 100)
    return names or list(default)


def parse_filtering(raw: str | None) -> list[tuple[str, int]]:
    """Parse the ``filtering`` JSON into ``(operator, unix_seconds)`` pairs."""
    if raw is None:
        return []
    try:
        rules = json.loads(raw)
    except ValueError as exc:
        raise GraphError("(#100) Parameter 'filtering' is not valid JSON", 100) from exc
    if not isinstance(rules, list):
        raise GraphError("(#100) Parameter 'filtering' must be a JSON list of {field, operator, value}", 100)
    parsed = []
    for rule in rules:
        if not isinstance(rule, dict) or rule.get("field") != "time_created":
            raise GraphError(f"(#100) Unsupported filter {rule!r}; only field 'time_created' is filterable", 100)
        operator = rule.get("operator")
        if operator not in FILTER_OPERATORS:
            raise GraphError(f"(#100) Unsupported filter operator {operator!r}; use {' or '.join(FILTER_OPERATORS)}", 100)
        try:
            value = int(rule.get("value"))
        except (TypeError, ValueError) as exc:
            raise GraphError(f"(#100) Filter value {rule.get('value')!r} must be unix seconds", 100) from exc
        parsed.append((operator, value))
    return parsed


class MetaApp(VendorApp):
    name = "meta"

    def __init__(self, sandbox: Sandbox):
        super().__init__(sandbox)
        self.settings = {**DEFAULT_SETTINGS, **sandbox.scenario.get("settings", {}).get("meta", {})}
        self.started_at = self.clock.now()
        self.tenants: list[Tenant] = []
        for account in sandbox.scenario.get("accounts", []):
            source = account.get("meta")
            if source:
                self.tenants.append(
                    Tenant(
                        account_id=account["account_id"],
                        access_token=source["access_token"],
                        page_id=str(source["page_id"]),
                        forms=copy.deepcopy(source.get("forms", [])),
                        leads=copy.deepcopy(source.get("leads", [])),
                    )
                )
        self.route("GET", r"/v(\d+)\.0/(\d+)/leads", self.list_leads)
        self.route("GET", r"/v(\d+)\.0/(\d+)/leadgen_forms", self.list_forms)
        self.route("GET", r"/v(\d+)\.0/(\d+)", self.get_object)

    # -- vendor responses used by fault injection -----------------------------
    def throttle_response(self, request: Request) -> Response:
        tenant = self._tenant_for_token(self._token(request))
        page_id = tenant.page_id if tenant else "0"
        usage = {
            page_id: [
                {
                    "type": "leadgen",
                    "call_count": 100,
                    "total_cputime": 12,
                    "total_time": 15,
                    "estimated_time_to_regain_access": int(self.settings["throttle_regain_minutes"]),
                }
            ]
        }
        body = {
            "error": {
                "message": "(#80005) Too many lead retrieval calls for this Page; wait before retrying.",
                "type": "OAuthException",
                "code": 80005,
                "error_subcode": 2446079,
                "fbtrace_id": self._trace_id(request),
            }
        }
        return json_response(body, 400, **{"X-Business-Use-Case-Usage": json.dumps(usage)})

    def expired_token_response(self, request: Request) -> Response:
        return self._graph_error(
            request,
            GraphError("Error validating access token: the session has expired.", 190, subcode=463),
        )

    def error_response(self, status: int, message: str) -> Response:
        return json_response({"error": {"message": message, "type": "GraphMethodException", "code": 100}}, status)

    def dump_state(self) -> Any:
        return {
            tenant.account_id: {"page_id": tenant.page_id, "forms": len(tenant.forms), "leads": len(tenant.leads)}
            for tenant in self.tenants
        }

    # -- helpers ------------------------------------------------------------
    @staticmethod
    def _trace_id(request: Request) -> str:
        return f"SbxTrace{request.seq:08d}"

    def _graph_error(self, request: Request, exc: GraphError) -> Response:
        log.info("meta sandbox: HTTP %d (code %s) on %s: %s", exc.status, exc.error["code"], request.path, exc.error["message"])
        return json_response({"error": {**exc.error, "fbtrace_id": self._trace_id(request)}}, exc.status)

    @staticmethod
    def _token(request: Request) -> str | None:
        return request.bearer_token() or request.arg("access_token")

    def _tenant_for_token(self, token: str | None) -> Tenant | None:
        return next((t for t in self.tenants if token and t.access_token == token), None)

    def _authorize(self, request: Request) -> Tenant:
        token = self._token(request)
        if not token:
            raise GraphError("Missing access token; send Authorization: Bearer <token> or the access_token parameter", 104)
        tenant = self._tenant_for_token(token)
        if tenant is None:
            raise GraphError("Invalid OAuth access token: the token is not recognised.", 190)
        elapsed = (self.clock.now() - self.started_at).total_seconds()
        if elapsed >= float(self.settings["token_ttl_seconds"]):
            raise GraphError("Error validating access token: the session has expired.", 190, subcode=463)
        return tenant

    @staticmethod
    def _not_found(object_id: str) -> GraphError:
        return GraphError(
            f"Unsupported get request. Object with ID '{object_id}' does not exist or this token cannot read it.",
            100,
            subcode=33,
            error_type="GraphMethodException",
        )

    def _limit(self, request: Request) -> int:
        raw = request.arg("limit")
        if raw is None:
            return int(self.settings["default_limit"])
        if not raw.isdigit() or int(raw) < 1:
            raise GraphError(f"(#100) Parameter 'limit' must be a positive integer, got '{raw}'", 100)
        limit = int(raw)
        if limit > int(self.settings["reduce_data_limit"]):
            raise GraphError(REDUCE_DATA_MESSAGE, 1, status=500)
        return min(limit, int(self.settings["max_limit"]))

    def _visible_leads(self, tenant: Tenant, form_id: str | None = None) -> list[dict[str, Any]]:
        now = self.clock.now()
        return [
            lead
            for lead in tenant.leads
            if (form_id is None or str(lead.get("form_id")) == form_id) and parse_instant(lead["created_time"]) <= now
        ]

    def _page(self, request: Request, rows: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> dict[str, Any]:
        """Cut one page from ``rows`` (``(sort key, item)`` sorted by key descending)."""
        limit = self._limit(request)
        after = request.arg("after")
        if after is not None:
            cursor_key = decode_cursor(after)
            try:
                rows = [row for row in rows if row[0] < cursor_key]
            except TypeError as exc:
                # A cursor taken from another edge has a key of other types.
                raise GraphError(f"(#100) Invalid cursor '{after}'", 100) from exc
        page = rows[:limit]
        if not page:
            return {"data": []}
        paging: dict[str, Any] = {"cursors": {"before": encode_cursor(page[0][0]), "after": encode_cursor(page[-1][0])}}
        if len(rows) > len(page):
            params = [(name, value) for name, value in parse_qsl(request.raw_query, keep_blank_values=True) if name not in ("after", "before")]
            params.append(("after", paging["cursors"]["after"]))
            host = request.header("host", "127.0.0.1")
            paging["next"] = f"http://{host}{request.path}?{urlencode(params)}"
        return {"data": [item for _, item in page], "paging": paging}

    @staticmethod
    def _lead_key(lead: dict[str, Any]) -> tuple[Any, ...]:
        return (int(parse_instant(lead["created_time"]).timestamp()), str(lead["id"]))

    def _lead_out(self, lead: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in fields:
            if name == "created_time":
                out[name] = format_created_time(lead["created_time"])
            elif name == "is_organic":
                out[name] = bool(lead.get("is_organic", "ad_id" not in lead))
            elif name in lead:
                out[name] = copy.deepcopy(lead[name])
        return out

    def _form_out(self, tenant: Tenant, form: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in fields:
            if name == "page_id":
                out[name] = tenant.page_id
            elif name == "leads_count":
                out[name] = len(self._visible_leads(tenant, str(form["id"])))
            elif name == "status":
                out[name] = form.get("status", "ACTIVE")
            elif name == "locale":
                out[name] = form.get("locale", "en_US")
            elif name == "questions":
                out[name] = copy.deepcopy(form.get("questions", []))
            elif name in form:
                out[name] = copy.deepcopy(form[name])
        return out

    # -- endpoints ------------------------------------------------------------
    def list_leads(self, request: Request, match: re.Match) -> Response:
        version, form_id = match.groups()
        try:
            tenant = self._authorize(request)
            if not any(str(form["id"]) == form_id for form in tenant.forms):
                raise self._not_found(form_id)
            fields = parse_fields(request.arg("fields"), LEAD_FIELDS, DEFAULT_LEAD_FIELDS, "UserLeadGenInfo")
            filters = parse_filtering(request.arg("filtering"))
            rows = []
            for lead in self._visible_leads(tenant, form_id):
                key = self._lead_key(lead)
                if all(key[0] > value if op == "GREATER_THAN" else key[0] < value for op, value in filters):
                    rows.append((key, self._lead_out(lead, fields)))
            rows.sort(key=lambda row: row[0], reverse=True)
            body = self._page(request, rows)
        except GraphError as exc:
            return self._graph_error(request, exc)
        return json_response(body, **{"facebook-api-version": f"v{version}.0"})

    def list_forms(self, request: Request, match: re.Match) -> Response:
        version, page_id = match.groups()
        try:
            tenant = self._authorize(request)
            if page_id != tenant.page_id:
                raise self._not_found(page_id)
            fields = parse_fields(request.arg("fields"), FORM_FIELDS, DEFAULT_FORM_FIELDS, "LeadgenForm")
            rows = [((str(form["id"]),), self._form_out(tenant, form, fields)) for form in tenant.forms]
            rows.sort(key=lambda row: row[0], reverse=True)
            body = self._page(request, rows)
        except GraphError as exc:
            return self._graph_error(request, exc)
        return json_response(body, **{"facebook-api-version": f"v{version}.0"})

    def get_object(self, request: Request, match: re.Match) -> Response:
        version, object_id = match.groups()
        try:
            tenant = self._authorize(request)
            form = next((f for f in tenant.forms if str(f["id"]) == object_id), None)
            if form is not None:
                fields = parse_fields(request.arg("fields"), FORM_FIELDS, DEFAULT_FORM_FIELDS, "LeadgenForm")
                body = self._form_out(tenant, form, fields)
            else:
                lead = next((lead for lead in self._visible_leads(tenant) if str(lead["id"]) == object_id), None)
                if lead is None:
                    raise self._not_found(object_id)
                fields = parse_fields(request.arg("fields"), LEAD_FIELDS, DEFAULT_LEAD_FIELDS, "UserLeadGenInfo")
                body = self._lead_out(lead, fields)
        except GraphError as exc:
            return self._graph_error(request, exc)
        return json_response(body, **{"facebook-api-version": f"v{version}.0"})


def create_app(sandbox: Sandbox) -> MetaApp:
    return MetaApp(sandbox)
