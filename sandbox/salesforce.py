"""Salesforce REST API stand-in: one org per account whose ``crm.type`` is ``salesforce``.

Endpoints (``vNN.N`` is any API version and is echoed back in returned URLs):

- ``POST /services/oauth2/token``: client-credentials grant, no ``expires_in``;
- ``GET /services/data/vNN.N/query?q=SOQL`` and ``/queryAll`` (also deleted
  records), continued through ``nextRecordsUrl``;
- ``POST /services/data/vNN.N/composite/sobjects``: sObject Collections create;
- ``GET /services/data/vNN.N/sobjects/{type}/{id}``: one record;
- ``GET /services/data/vNN.N/limits``.

Every data response carries ``Sforce-Limit-Info: api-usage=N/M``, counted over
a rolling 24 hours of the sandbox clock per org. Errors use the Salesforce
shape, a JSON array ``[{"message", "errorCode"}]``.

The SOQL subset: ``SELECT f1, f2 FROM Object [WHERE ...] [ORDER BY f [ASC|DESC]
[NULLS FIRST|LAST], ...] [LIMIT n]``. WHERE takes comparisons (``= != <> < <= >
>= IN NOT IN``) joined by AND, OR and NOT, with parentheses required when AND
and OR are mixed, as in Salesforce. Literals are ``'strings'``, numbers,
``true``, ``false``, ``null``, unquoted datetimes ``2026-01-01T00:00:00Z`` and
unquoted dates ``2026-01-01``. Relationship paths, functions, LIKE, OFFSET and
date literals such as ``TODAY`` are rejected with ``MALFORMED_QUERY``.

Settings under ``settings.salesforce``: ``session_seconds`` (7200),
``query_batch`` (2000), ``daily_limit`` (100000), ``max_collection`` (200) and
``locator_idle_seconds`` (900).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sandbox.core import Request, Response, Sandbox, VendorApp, json_response, parse_instant

log = logging.getLogger(__name__)

DEFAULT_SETTINGS = {
    "session_seconds": 7200,
    "query_batch": 2000,
    "daily_limit": 100000,
    "max_collection": 200,
    # NOTE: Salesforce documents no exact idle expiry for query locators.
    # 15 minutes is an estimate, so scenarios can change it.
    "locator_idle_seconds": 900,
}

# Salesforce accepts a Sforce-Query-Options batchSize from 200 to 2000.
MIN_BATCH_SIZE = 200
MAX_BATCH_SIZE = 2000

ROLLING_WINDOW = timedelta(hours=24)

# Field types, named as Salesforce describe calls name them.
ID = "id"
STRING = "string"
BOOLEAN = "boolean"
DOUBLE = "double"
DATE = "date"
DATETIME = "datetime"

COMMON_FIELDS = {
    "Id": ID,
    "IsDeleted": BOOLEAN,
    "CreatedDate": DATETIME,
    "LastModifiedDate": DATETIME,
    "SystemModstamp": DATETIME,
}

# Fields that an insert may not set: Salesforce fills them itself.
SYSTEM_FIELDS = frozenset(COMMON_FIELDS)


@dataclass(frozen=True)
class SObjectType:
    """Schema of one supported sObject."""

    name: str
    scenario_key: str
    id_prefix: str
    fields: dict[str, str]
    required: tuple[str, ...] = ()
    read_only: frozenset[str] = frozenset()
    defaults: dict[str, Any] = field(default_factory=dict)


SOBJECTS: dict[str, SObjectType] = {
    sobject.name: sobject
    for sobject in (
        SObjectType(
            name="Lead",
            scenario_key="leads",
            id_prefix="00Q",
            fields={
                **COMMON_FIELDS,
                "FirstName": STRING,
                "LastName": STRING,
                "Company": STRING,
                "Email": STRING,
                "Title": STRING,
                "Phone": STRING,
                "Status": STRING,
                "LeadSource": STRING,
                "IsConverted": BOOLEAN,
                "ConvertedDate": DATE,
                "ConvertedAccountId": ID,
                "ConvertedContactId": ID,
                "ConvertedOpportunityId": ID,
            },
            required=("LastName", "Company"),
            read_only=frozenset(
                {"IsConverted", "ConvertedDate", "ConvertedAccountId", "ConvertedContactId", "ConvertedOpportunityId"}
            ),
            defaults={"Status": "Open - Not Contacted", "IsConverted": False},
        ),
        SObjectType(
            name="Contact",
            scenario_key="contacts",
            id_prefix="003",
            fields={
                **COMMON_FIELDS,
                "AccountId": ID,
                "FirstName": STRING,
                "LastName": STRING,
                "Email": STRING,
                "Title": STRING,
                "Phone": STRING,
                "LeadSource": STRING,
            },
            required=("LastName",),
        ),
        SObjectType(
            name="Account",
            scenario_key="accounts",
            id_prefix="001",
            fields={**COMMON_FIELDS, "Name": STRING, "Website": STRING, "Industry": STRING},
            required=("Name",),
        ),
        SObjectType(
            name="Opportunity",
            scenario_key="opportunities",
            id_prefix="006",
            fields={
                **COMMON_FIELDS,
                "AccountId": ID,
                "Name": STRING,
                "StageName": STRING,
                "Amount": DOUBLE,
                "CloseDate": DATE,
                "IsWon": BOOLEAN,
                "IsClosed": BOOLEAN,
                "LeadSource": STRING,
                "CampaignId": ID,
            },
            required=("Name", "StageName", "CloseDate"),
            read_only=frozenset({"IsWon", "IsClosed"}),
        ),
        SObjectType(
            name="OpportunityContactRole",
            scenario_key="contact_roles",
            id_prefix="00K",
            fields={
                **COMMON_FIELDS,
                "OpportunityId": ID,
                "ContactId": ID,
                "Role": STRING,
                "IsPrimary": BOOLEAN,
            },
            required=("OpportunityId", "ContactId"),
            defaults={"IsPrimary": False},
        ),
        SObjectType(
            name="CampaignMember",
            scenario_key="campaign_members",
            id_prefix="00v",
            fields={
                **COMMON_FIELDS,
                "CampaignId": ID,
                "LeadId": ID,
                "ContactId": ID,
                "LeadOrContactId": ID,
                "Status": STRING,
                "HasResponded": BOOLEAN,
                "FirstRespondedDate": DATE,
            },
            required=("CampaignId",),
            read_only=frozenset({"LeadOrContactId"}),
            defaults={"Status": "Sent", "HasResponded": False},
        ),
    )
}

# Lookup fields checked on insert, and the object their Id must exist in.
# CampaignId is not checked because the sandbox stores no Campaign records.
REFERENCE_TARGETS = {"AccountId": "Account", "ContactId": "Contact", "OpportunityId": "Opportunity", "LeadId": "Lead"}

# Per-record error of a valid record that an allOrNone request did not save.
ROLLED_BACK_ERROR = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
    "fields": [],
}

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def format_datetime(value: datetime) -> str:
    """Format an aware datetime the way Salesforce returns it: ``2026-01-01T00:21:00.000+0000``."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def format_field(field_type: str, value: Any) -> Any:
    if value is None:
        return None
    if field_type == DATETIME:
        return format_datetime(value)
    if field_type == DATE:
        return value.isoformat()
    return value


class ApiError(Exception):
    """A request that Salesforce rejects as a whole with one error entry."""

    def __init__(self, status: int, error_code: str, message: str):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def error_body(error_code: str, message: str) -> list[dict[str, Any]]:
    return [{"message": message, "errorCode": error_code}]


# -- SOQL ------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>[+-]?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    """,
    re.VERBOSE,
)

_STRING_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}

# Words that end a field list or a condition, so they cannot be field names.
_RESERVED = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "ORDER", "BY", "LIMIT", "ASC", "DESC", "NULLS"}

# Literal token kind -> field types that accept it.
_LITERAL_TYPES = {
    "string": {ID, STRING},
    "number": {DOUBLE},
    "boolean": {BOOLEAN},
    "date": {DATE},
    "datetime": {DATETIME},
}

# Field type -> name used in Salesforce's type-mismatch message.
_TYPE_NAMES = {ID: "id", STRING: "string", DOUBLE: "double", BOOLEAN: "boolean", DATE: "date", DATETIME: "dateTime"}


class SoqlError(ApiError):
    """A query rejected with HTTP 400. ``position`` is the character offset of the bad token."""

    def __init__(self, error_code: str, message: str, position: int):
        super().__init__(400, error_code, message)
        self.position = position


@dataclass
class Token:
    kind: str
    text: str
    value: Any
    position: int


@dataclass
class Comparison:
    field: str
    field_type: str
    operator: str
    # A single literal, or a list of literals for IN and NOT IN.
    value: Any


@dataclass
class BoolOp:
    operator: str  # "AND", "OR" or "NOT"
    operands: list[Any]


@dataclass
class OrderItem:
    field: str
    field_type: str
    descending: bool
    nulls_first: bool


@dataclass
class SoqlQuery:
    sobject: str
    fields: list[str]
    where: Comparison | BoolOp | None
    order_by: list[OrderItem]
    limit: int | None


def _unescape(literal: str, position: int) -> str:
    out = []
    chars = iter(literal[1:-1])
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        escaped = next(chars)
        if escaped not in _STRING_ESCAPES:
            raise SoqlError(
                "MALFORMED_QUERY", f"Invalid string literal {literal}: illegal escape sequence \\{escaped}", position
            )
        out.append(_STRING_ESCAPES[escaped])
    return "".join(out)


def tokenize(soql: str) -> list[Token]:
    tokens = []
    position = 0
    while position < len(soql):
        match = _TOKEN_RE.match(soql, position)
        if match is None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{soql[position]}'", position)
        kind = match.lastgroup
        text = match.group()
        if kind != "ws":
            tokens.append(Token(kind, text, _literal_value(kind, text, position), position))
        position = match.end()
    tokens.append(Token("eof", "<EOF>", None, len(soql)))
    return tokens


def _literal_value(kind: str, text: str, position: int) -> Any:
    if kind == "string":
        return _unescape(text, position)
    if kind == "number":
        return float(text) if "." in text else int(text)
    try:
        if kind == "datetime":
            return parse_instant(text)
        if kind == "date":
            return date.fromisoformat(text)
    except ValueError:
        raise SoqlError("MALFORMED_QUERY", f"invalid {kind} literal: {text}", position) from None
    return None


class SoqlParser:
    """Recursive-descent parser for the SOQL subset, checked against one org's schema."""

    def __init__(self, soql: str, schema: dict[str, dict[str, str]]):
        self.soql = soql
        self.schema = schema
        self.tokens = tokenize(soql)
        self.index = 0
        self.sobject = ""
        self.fields: dict[str, str] = {}

    # -- token helpers
    def peek(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        token = self.peek()
        return token.kind == "name" and token.text.upper() in words

    def expect_keyword(self, word: str) -> None:
        if not self.at_keyword(word):
            self.fail_unexpected()
        self.advance()

    def expect_punct(self, text: str) -> None:
        token = self.peek()
        if token.kind != "punct" or token.text != text:
            self.fail_unexpected()
        self.advance()

    def fail_unexpected(self) -> None:
        token = self.peek()
        text = token.text if token.kind == "eof" else f"'{token.text}'"
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: {text}", token.position)

    # -- grammar
    def parse(self) -> SoqlQuery:
        self.expect_keyword("SELECT")
        select_tokens = [self.field_token()]
        while self.peek().kind == "punct" and self.peek().text == ",":
            self.advance()
            select_tokens.append(self.field_token())

        self.expect_keyword("FROM")
        self.resolve_object(self.advance())
        selected = []
        for token in select_tokens:
            name = self.resolve_field(token)
            if name in selected:
                raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {name}", token.position)
            selected.append(name)

        where = None
        if self.at_keyword("WHERE"):
            self.advance()
            where = self.condition()

        order_by = []
        if self.at_keyword("ORDER"):
            self.advance()
            self.expect_keyword("BY")
            order_by.append(self.order_item())
            while self.peek().kind == "punct" and self.peek().text == ",":
                self.advance()
                order_by.append(self.order_item())

        limit = None
        if self.at_keyword("LIMIT"):
            self.advance()
            token = self.advance()
            if token.kind != "number" or not isinstance(token.value, int) or token.value < 0:
                raise SoqlError(
                    "MALFORMED_QUERY", f"LIMIT must be a non-negative integer, found {token.text}", token.position
                )
            limit = token.value

        if self.peek().kind != "eof":
            self.fail_unexpected()
        return SoqlQuery(self.sobject, selected, where, order_by, limit)

    def field_token(self) -> Token:
        token = self.peek()
        if token.kind != "name" or token.text.upper() in _RESERVED:
            self.fail_unexpected()
        return self.advance()

    def resolve_object(self, token: Token) -> None:
        if token.kind != "name":
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: {token.text}", token.position)
        by_lower = {name.lower(): name for name in self.schema}
        name = by_lower.get(token.text.lower())
        if name is None:
            raise SoqlError("INVALID_TYPE", f"sObject type '{token.text}' is not supported.", token.position)
        self.sobject = name
        self.fields = self.schema[name]

    def resolve_field(self, token: Token) -> str:
        if "." in token.text:
            raise SoqlError(
                "MALFORMED_QUERY",
                f"relationship field '{token.text}' is not supported by the sandbox; select the Id field instead",
                token.position,
            )
        by_lower = {name.lower(): name for name in self.fields}
        name = by_lower.get(token.text.lower())
        if name is None:
            raise SoqlError(
                "INVALID_FIELD", f"No such column '{token.text}' on entity '{self.sobject}'.", token.position
            )
        return name

    def condition(self) -> Comparison | BoolOp:
        """Parse a chain of AND or of OR. Mixing the two needs parentheses, as in Salesforce."""
        first = self.unary()
        if not self.at_keyword("AND", "OR"):
            return first
        operator = self.peek().text.upper()
        operands = [first]
        while self.at_keyword("AND", "OR"):
            if self.peek().text.upper() != operator:
                self.fail_unexpected()
            self.advance()
            operands.append(self.unary())
        return BoolOp(operator, operands)

    def unary(self) -> Comparison | BoolOp:
        if self.at_keyword("NOT"):
            self.advance()
            return BoolOp("NOT", [self.unary()])
        token = self.peek()
        if token.kind == "punct" and token.text == "(":
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        field_token = self.field_token()
        name = self.resolve_field(field_token)
        field_type = self.fields[name]
        token = self.peek()
        if token.kind == "op":
            self.advance()
            operator = "!=" if token.text == "<>" else token.text
            return Comparison(name, field_type, operator, self.literal(name, field_type))
        operator = "IN"
        if self.at_keyword("NOT"):
            self.advance()
            operator = "NOT IN"
        if not self.at_keyword("IN"):
            self.fail_unexpected()
        self.advance()
        self.expect_punct("(")
        values = [self.literal(name, field_type)]
        while self.peek().kind == "punct" and self.peek().text == ",":
            self.advance()
            values.append(self.literal(name, field_type))
        self.expect_punct(")")
        return Comparison(name, field_type, operator, values)

    def literal(self, field_name: str, field_type: str) -> Any:
        token = self.advance()
        kind = token.kind
        value = token.value
        if kind == "name" and token.text.lower() in ("true", "false"):
            kind = "boolean"
            value = token.text.lower() == "true"
        elif kind == "name" and token.text.lower() == "null":
            return None
        if kind not in _LITERAL_TYPES:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token.text}'", token.position)
        if field_type not in _LITERAL_TYPES[kind]:
            quoting = "be enclosed in quotes" if field_type in (ID, STRING) else "not be enclosed in quotes"
            raise SoqlError(
                "INVALID_FIELD",
                f"value of filter criterion for field '{field_name}' must be of type {_TYPE_NAMES[field_type]} and should {quoting}",
                token.position,
            )
        return value

    def order_item(self) -> OrderItem:
        name = self.resolve_field(self.field_token())
        descending = False
        if self.at_keyword("ASC", "DESC"):
            descending = self.advance().text.upper() == "DESC"
        # Salesforce sorts nulls first in ascending order and last in descending order.
        nulls_first = not descending
        if self.at_keyword("NULLS"):
            self.advance()
            if not self.at_keyword("FIRST", "LAST"):
                self.fail_unexpected()
            nulls_first = self.advance().text.upper() == "FIRST"
        return OrderItem(name, self.fields[name], descending, nulls_first)


def describe_soql_error(soql: str, error: SoqlError) -> str:
    """Build the multi-line message Salesforce returns: the query, a caret, row and column."""
    before = soql[: error.position]
    row = before.count("\n") + 1
    column = error.position - (before.rfind("\n") + 1) + 1
    line = soql.split("\n")[row - 1]
    return f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{error.message}"


def _comparable(field_type: str, value: Any) -> Any:
    # Text comparisons in SOQL ignore case, but Id comparisons do not.
    if field_type == STRING and isinstance(value, str):
        return value.lower()
    return value


def _compare(comparison: Comparison, record: dict[str, Any]) -> bool:
    actual = record.get(comparison.field)
    operator = comparison.operator
    if operator in ("IN", "NOT IN"):
        found = any(_equals(comparison.field_type, actual, value) for value in comparison.value)
        return found if operator == "IN" else not found
    expected = comparison.value
    if operator == "=":
        return _equals(comparison.field_type, actual, expected)
    if operator == "!=":
        return not _equals(comparison.field_type, actual, expected)
    # Ordering comparisons never match a null on either side.
    if actual is None or expected is None:
        return False
    left = _comparable(comparison.field_type, actual)
    right = _comparable(comparison.field_type, expected)
    if operator == "<":
        return left < right
    if operator == "<=":
        return left <= right
    if operator == ">":
        return left > right
    return left >= right


def _equals(field_type: str, actual: Any, expected: Any) -> bool:
    if actual is None or expected is None:
        return actual is None and expected is None
    return _comparable(field_type, actual) == _comparable(field_type, expected)


def matches(condition: Comparison | BoolOp | None, record: dict[str, Any]) -> bool:
    if condition is None:
        return True
    if isinstance(condition, Comparison):
        return _compare(condition, record)
    if condition.operator == "AND":
        return all(matches(operand, record) for operand in condition.operands)
    if condition.operator == "OR":
        return any(matches(operand, record) for operand in condition.operands)
    return not matches(condition.operands[0], record)


def sort_records(records: list[dict[str, Any]], order_by: list[OrderItem]) -> list[dict[str, Any]]:
    """Sort by several keys through stable sorts, applied from the last key to the first."""
    result = list(records)
    for item in reversed(order_by):
        # Nulls sort above every value when that puts them first after the optional reverse.
        null_rank = 1 if item.descending == item.nulls_first else -1

        def key(record: dict[str, Any], item: OrderItem = item, null_rank: int = null_rank) -> tuple:
            value = record.get(item.field)
            if value is None:
                return (null_rank, 0)
            return (0, _comparable(item.field_type, value))

        result.sort(key=key, reverse=item.descending)
    return result


# -- org state ---------------------------------------------------------------


@dataclass
class Session:
    account_id: str
    issued_at: datetime


@dataclass
class Cursor:
    """Results of one query that did not fit in one batch, already in wire shape."""

    account_id: str
    records: list[dict[str, Any]]
    batch_size: int
    last_used: datetime


@dataclass
class Org:
    """One account's Salesforce org: credentials, records and API usage."""

    account_id: str
    org_id: str
    user_id: str
    client_id: str
    client_secret: str
    records: dict[str, list[dict[str, Any]]]
    # Field name -> type per sObject, including extra fields found in seed records.
    schema: dict[str, dict[str, str]]
    api_calls: deque[datetime] = field(default_factory=deque)
    next_id: int = 1

    def find(self, sobject: str, record_id: str) -> dict[str, Any] | None:
        for record in self.records[sobject]:
            if record.get("Id") == record_id:
                return record
        return None

    def new_id(self, sobject: str) -> str:
        prefix = SOBJECTS[sobject].id_prefix
        while True:
            candidate = f"{prefix}SB{self.next_id:010d}AAA"
            self.next_id += 1
            if self.find(sobject, candidate) is None:
                return candidate


def _infer_type(value: Any) -> str:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, (int, float)):
        return DOUBLE
    return STRING


def _coerce(field_type: str, value: Any) -> Any:
    """Convert one wire value into the stored Python type, raising ValueError when it does not fit."""
    if value is None:
        return None
    if field_type == DATETIME:
        if not isinstance(value, str):
            raise ValueError(f"expected a datetime string, got {value!r}")
        return parse_instant(value)
    if field_type == DATE:
        if not isinstance(value, str):
            raise ValueError(f"expected a date string YYYY-MM-DD, got {value!r}")
        return date.fromisoformat(value)
    if field_type == BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if field_type == DOUBLE:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _apply_derived_fields(sobject: str, record: dict[str, Any]) -> None:
    if sobject == "Opportunity":
        stage = (record.get("StageName") or "").lower()
        record.setdefault("IsClosed", stage in ("closed won", "closed lost"))
        record.setdefault("IsWon", stage == "closed won")
    if sobject == "CampaignMember":
        record.setdefault("LeadOrContactId", record.get("ContactId") or record.get("LeadId"))


def build_org(index: int, account: dict[str, Any], now: datetime) -> Org:
    """Load one account's ``crm`` block. A malformed seed record raises ValueError."""
    crm = account["crm"]
    account_id = account["account_id"]
    org = Org(
        account_id=account_id,
        org_id=f"00DSB{index:010d}AAA",
        user_id=f"005SB{index:010d}AAA",
        client_id=crm["client_id"],
        client_secret=crm["client_secret"],
        records={name: [] for name in SOBJECTS},
        schema={name: dict(sobject.fields) for name, sobject in SOBJECTS.items()},
    )
    for name, sobject in SOBJECTS.items():
        for position, seed in enumerate(crm.get(sobject.scenario_key) or []):
            where = f"account {account_id}, crm.{sobject.scenario_key}[{position}]"
            org.records[name].append(_load_seed_record(org, name, seed, now, where))
    return org


def _load_seed_record(org: Org, sobject: str, seed: dict[str, Any], now: datetime, where: str) -> dict[str, Any]:
    schema = org.schema[sobject]
    record: dict[str, Any] = {}
    for key, value in seed.items():
        if key == "attributes":
            continue
        if key not in schema:
            schema[key] = _infer_type(value)
        try:
            record[key] = _coerce(schema[key], value)
        except ValueError as error:
            raise ValueError(f"{where}: field {key}: {error}") from None
    record.setdefault("Id", org.new_id(sobject))
    record.setdefault("IsDeleted", False)
    record.setdefault("CreatedDate", now)
    record.setdefault("LastModifiedDate", record["CreatedDate"])
    record.setdefault("SystemModstamp", record["LastModifiedDate"])
    for key, value in SOBJECTS[sobject].defaults.items():
        record.setdefault(key, value)
    _apply_derived_fields(sobject, record)
    return record


# -- the app -----------------------------------------------------------------

_DATA = r"/services/data/(?P<version>v\d+\.\d)"


class SalesforceApp(VendorApp):
    name = "salesforce"

    def __init__(self, sandbox: Sandbox):
        super().__init__(sandbox)
        self.settings = {**DEFAULT_SETTINGS, **sandbox.scenario.get("settings", {}).get("salesforce", {})}
        self.orgs: dict[str, Org] = {}
        now = self.clock.now()
        crm_accounts = [
            a for a in sandbox.scenario.get("accounts", []) if (a.get("crm") or {}).get("type") == "salesforce"
        ]
        for index, account in enumerate(crm_accounts, start=1):
            self.orgs[account["account_id"]] = build_org(index, account, now)
        self.sessions: dict[str, Session] = {}
        self.cursors: dict[str, Cursor] = {}
        self.next_locator = 1

        self.route("POST", r"/services/oauth2/token", self.token)
        self.route("GET", _DATA + r"/query", self.with_org(self.query))
        self.route("GET", _DATA + r"/queryAll", self.with_org(self.query))
        self.route("GET", _DATA + r"/query(?:All)?/(?P<locator>01g\w+)-(?P<offset>\d+)", self.with_org(self.query_more))
        self.route("POST", _DATA + r"/composite/sobjects", self.with_org(self.create_collection))
        self.route("GET", _DATA + r"/sobjects/(?P<sobject>\w+)/(?P<record_id>\w+)", self.with_org(self.get_record))
        self.route("GET", _DATA + r"/limits", self.with_org(self.limits))

    # -- vendor responses used by the core and by fault injection
    def throttle_response(self, request: Request) -> Response:
        # The throttle fault is the concurrency limit, because the daily limit
        # is reached for real by counting calls.
        return json_response(
            error_body("REQUEST_LIMIT_EXCEEDED", "ConcurrentRequests (Concurrent API Requests) Limit exceeded."), 403
        )

    def expired_token_response(self, request: Request) -> Response:
        return json_response(error_body("INVALID_SESSION_ID", "Session expired or invalid"), 401)

    def error_response(self, status: int, message: str) -> Response:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(status, "UNKNOWN_EXCEPTION")
        return json_response(error_body(code, message), status)

    def dump_state(self) -> Any:
        state = {}
        for account_id, org in self.orgs.items():
            self._prune_calls(org)
            entry: dict[str, Any] = {"org_id": org.org_id, "api_usage": len(org.api_calls)}
            for name, sobject in SOBJECTS.items():
                entry[sobject.scenario_key] = [self._wire_record(org, name, r) for r in org.records[name]]
            state[account_id] = entry
        return state

    # -- OAuth
    def token(self, request: Request, match: re.Match) -> Response:
        form = {key: values[0] for key, values in request.form().items()}
        grant_type = form.get("grant_type")
        if grant_type != "client_credentials":
            log.info("salesforce sandbox rejected a token request with grant type %r", grant_type)
            return json_response(
                {"error": "unsupported_grant_type", "error_description": f"grant type not supported: {grant_type}"}, 400
            )
        org = next((o for o in self.orgs.values() if o.client_id == form.get("client_id")), None)
        secret = form.get("client_secret", "").encode()
        if org is None or not hmac.compare_digest(org.client_secret.encode(), secret):
            log.info("salesforce sandbox rejected a token request: unknown client id or wrong secret")
            return json_response({"error": "invalid_client", "error_description": "invalid client credentials"}, 400)

        now = self.clock.now()
        access_token = f"{org.org_id}!{secrets.token_urlsafe(32)}"
        self.sessions[access_token] = Session(org.account_id, now)
        instance_url = self._base_url(request)
        identity_url = f"{instance_url}/id/{org.org_id}/{org.user_id}"
        issued_at = str(int(now.timestamp() * 1000))

        # Salesforce signs the identity URL and issue time with the client secret.
        digest = hmac.new(org.client_secret.encode(), (identity_url + issued_at).encode(), hashlib.sha256).digest()
        log.info("salesforce sandbox issued a session for account %s", org.account_id)
        return json_response(
            {
                "access_token": access_token,
                "instance_url": instance_url,
                "id": identity_url,
                "token_type": "Bearer",
                "issued_at": issued_at,
                "signature": base64.b64encode(digest).decode(),
                "scope": "api",
            }
        )

    @staticmethod
    def _base_url(request: Request) -> str:
        return f"http://{request.header('host', '127.0.0.1')}"

    # -- authentication and limits around every data call
    def with_org(self, handler: Any) -> Any:
        def wrapped(request: Request, match: re.Match) -> Response:
            org = self._authorize(request)
            if org is None:
                log.info(
                    "salesforce sandbox rejected %s %s: missing, unknown or expired session",
                    request.method,
                    request.path,
                )
                return self.expired_token_response(request)
            if not self._count_call(org):
                log.info(
                    "salesforce sandbox rejected %s %s: daily limit of account %s used up",
                    request.method,
                    request.path,
                    org.account_id,
                )
                response = json_response(error_body("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), 403)
            else:
                try:
                    response = handler(request, match, org)
                except ApiError as error:
                    log.info(
                        "salesforce sandbox rejected %s %s for account %s: HTTP %d %s",
                        request.method,
                        request.path,
                        org.account_id,
                        error.status,
                        error.error_code,
                    )
                    response = json_response(error_body(error.error_code, error.message), error.status)
            response.headers["Sforce-Limit-Info"] = f"api-usage={len(org.api_calls)}/{self.settings['daily_limit']}"
            return response

        return wrapped

    def _authorize(self, request: Request) -> Org | None:
        """Return the org of a live session, or None for a missing, unknown or expired token."""
        token = request.bearer_token()
        session = self.sessions.get(token or "")
        if session is None:
            return None
        # NOTE: the session ends a fixed time after issue. Salesforce times out
        # idle sessions instead, so the sandbox expires busy clients sooner than an org would.
        if self.clock.now() >= session.issued_at + timedelta(seconds=self.settings["session_seconds"]):
            del self.sessions[token]
            return None
        return self.orgs[session.account_id]

    def _prune_calls(self, org: Org) -> None:
        cutoff = self.clock.now() - ROLLING_WINDOW
        while org.api_calls and org.api_calls[0] <= cutoff:
            org.api_calls.popleft()

    def _count_call(self, org: Org) -> bool:
        """Count one call in the rolling window. Return False, counting nothing, when the daily limit is used up."""
        self._prune_calls(org)
        if len(org.api_calls) >= self.settings["daily_limit"]:
            return False
        org.api_calls.append(self.clock.now())
        return True

    # -- data endpoints
    def limits(self, request: Request, match: re.Match, org: Org) -> Response:
        maximum = self.settings["daily_limit"]
        return json_response({"DailyApiRequests": {"Max": maximum, "Remaining": maximum - len(org.api_calls)}})

    def get_record(self, request: Request, match: re.Match, org: Org) -> Response:
        sobject = match.group("sobject")
        if sobject not in SOBJECTS:
            raise ApiError(404, "NOT_FOUND", f"The requested resource does not exist: sObject type {sobject}")
        record = org.find(sobject, match.group("record_id"))
        if record is None or record.get("IsDeleted"):
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        fields = list(org.schema[sobject])
        return json_response(self._shape(org, sobject, record, fields, match.group("version")))

    def query(self, request: Request, match: re.Match, org: Org) -> Response:
        soql = request.arg("q")
        if not soql:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            parsed = SoqlParser(soql, org.schema).parse()
        except SoqlError as error:
            raise ApiError(400, error.error_code, describe_soql_error(soql, error)) from None
        include_deleted = request.path.endswith("/queryAll")
        rows = [r for r in org.records[parsed.sobject] if include_deleted or not r.get("IsDeleted")]
        rows = [r for r in rows if matches(parsed.where, r)]
        rows = sort_records(rows, parsed.order_by)
        if parsed.limit is not None:
            rows = rows[: parsed.limit]
        version = match.group("version")
        shaped = [self._shape(org, parsed.sobject, r, parsed.fields, version) for r in rows]
        batch_size = self._batch_size(request)
        locator = None
        if len(shaped) > batch_size:
            locator = f"01gSB{self.next_locator:010d}AAA"
            self.next_locator += 1
            self.cursors[locator] = Cursor(org.account_id, shaped, batch_size, self.clock.now())
        return json_response(self._page(shaped, 0, batch_size, locator, version))

    def query_more(self, request: Request, match: re.Match, org: Org) -> Response:
        locator = match.group("locator")
        offset = int(match.group("offset"))
        cursor = self.cursors.get(locator)
        now = self.clock.now()
        if cursor is not None and now - cursor.last_used > timedelta(seconds=self.settings["locator_idle_seconds"]):
            del self.cursors[locator]
            cursor = None
        if cursor is None or cursor.account_id != org.account_id or offset > len(cursor.records):
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        cursor.last_used = now
        return json_response(self._page(cursor.records, offset, cursor.batch_size, locator, match.group("version")))

    def _batch_size(self, request: Request) -> int:
        batch_size = int(self.settings["query_batch"])
        options = request.header("sforce-query-options") or ""
        found = re.search(r"batchSize\s*=\s*(\d+)", options)
        if found:
            requested = min(max(int(found.group(1)), MIN_BATCH_SIZE), MAX_BATCH_SIZE)
            # The header requests a size, and the server may still send fewer records.
            batch_size = min(batch_size, requested)
        return batch_size

    @staticmethod
    def _page(records: list[dict[str, Any]], offset: int, batch_size: int, locator: str | None, version: str) -> dict:
        end = offset + batch_size
        page: dict[str, Any] = {"totalSize": len(records), "done": end >= len(records)}
        if not page["done"]:
            page["nextRecordsUrl"] = f"/services/data/{version}/query/{locator}-{end}"
        page["records"] = records[offset:end]
        return page

    def _shape(self, org: Org, sobject: str, record: dict[str, Any], fields: list[str], version: str) -> dict[str, Any]:
        schema = org.schema[sobject]
        shaped: dict[str, Any] = {
            "attributes": {"type": sobject, "url": f"/services/data/{version}/sobjects/{sobject}/{record['Id']}"}
        }
        for name in fields:
            shaped[name] = format_field(schema[name], record.get(name))
        return shaped

    def _wire_record(self, org: Org, sobject: str, record: dict[str, Any]) -> dict[str, Any]:
        schema = org.schema[sobject]
        return {name: format_field(schema[name], value) for name, value in record.items()}

    # -- sObject Collections
    def create_collection(self, request: Request, match: re.Match, org: Org) -> Response:
        try:
            payload = request.json()
        except ValueError as error:
            raise ApiError(400, "JSON_PARSER_ERROR", f"The request body is not valid JSON: {error}") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
            raise ApiError(400, "INVALID_INPUT", "The request body must be an object with a records array")
        all_or_none = payload.get("allOrNone", False)
        if not isinstance(all_or_none, bool):
            raise ApiError(400, "JSON_PARSER_ERROR", f"allOrNone must be true or false, got {all_or_none!r}")

        inputs = payload["records"]
        maximum = int(self.settings["max_collection"])
        if len(inputs) > maximum:
            raise ApiError(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {maximum} records into this call",
            )
        parsed = [self._parse_input(org, position, item) for position, item in enumerate(inputs)]
        errors = [self._validate(org, sobject, record) for sobject, record in parsed]
        failed = any(errors)

        results = []
        for (sobject, record), record_errors in zip(parsed, errors, strict=True):
            if record_errors:
                results.append({"success": False, "errors": record_errors})
            elif all_or_none and failed:
                results.append({"success": False, "errors": [dict(ROLLED_BACK_ERROR)]})
            else:
                results.append({"id": self._insert(org, sobject, record), "success": True, "errors": []})
        if failed:
            log.info(
                "salesforce sandbox collection for account %s: %d of %d records failed validation, allOrNone=%s",
                org.account_id,
                sum(1 for record_errors in errors if record_errors),
                len(errors),
                all_or_none,
            )
        return json_response(results)

    def _parse_input(self, org: Org, position: int, item: Any) -> tuple[str, dict[str, Any]]:
        """Check one input's type and field names. A problem here rejects the whole request, as in Salesforce."""
        if not isinstance(item, dict) or not isinstance(item.get("attributes"), dict):
            raise ApiError(400, "INVALID_INPUT", f"records[{position}] needs an attributes object with a type")
        sobject = item["attributes"].get("type")
        if sobject not in SOBJECTS:
            raise ApiError(400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        schema = org.schema[sobject]
        record = {}
        for key, value in item.items():
            if key == "attributes":
                continue
            if key not in schema:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {sobject}")
            try:
                record[key] = _coerce(schema[key], value)
            except ValueError as error:
                raise ApiError(400, "JSON_PARSER_ERROR", f"records[{position}].{key}: {error}") from None
        return sobject, record

    def _validate(self, org: Org, sobject: str, record: dict[str, Any]) -> list[dict[str, Any]]:
        """Return the per-record errors that make an insert fail, in Salesforce's error shape."""
        errors = []
        schema_type = SOBJECTS[sobject]
        read_only = sorted(k for k in record if k in SYSTEM_FIELDS or k in schema_type.read_only)
        if read_only:
            errors.append(
                {
                    "statusCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
                    "message": f"Unable to create/update fields: {', '.join(read_only)}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                    "fields": read_only,
                }
            )
        missing = [k for k in schema_type.required if record.get(k) in (None, "")]
        if missing:
            errors.append(
                {
                    "statusCode": "REQUIRED_FIELD_MISSING",
                    "message": f"Required fields are missing: [{', '.join(missing)}]",
                    "fields": missing,
                }
            )
        email = record.get("Email")
        if email and not EMAIL_RE.match(email):
            errors.append(
                {
                    "statusCode": "INVALID_EMAIL_ADDRESS",
                    "message": f"Email: invalid email address: {email}",
                    "fields": ["Email"],
                }
            )
        for key, target in REFERENCE_TARGETS.items():
            value = record.get(key)
            if value is not None and key in schema_type.fields and org.find(target, value) is None:
                errors.append(
                    {
                        "statusCode": "INVALID_CROSS_REFERENCE_KEY",
                        "message": f"invalid cross reference id: {value}",
                        "fields": [key],
                    }
                )
        return errors

    def _insert(self, org: Org, sobject: str, record: dict[str, Any]) -> str:
        now = self.clock.now()
        stored = dict(record)
        stored["Id"] = org.new_id(sobject)
        stored["IsDeleted"] = False
        stored["CreatedDate"] = stored["LastModifiedDate"] = stored["SystemModstamp"] = now
        for key, value in SOBJECTS[sobject].defaults.items():
            stored.setdefault(key, value)
        _apply_derived_fields(sobject, stored)
        org.records[sobject].append(stored)
        return stored["Id"]


def create_app(sandbox: Sandbox) -> SalesforceApp:
    return SalesforceApp(sandbox)
