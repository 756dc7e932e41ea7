"""Human review desk: export pending leads for reviewers and import their decisions.

Reviewers receive a CSV or JSON export of ``leadflow.review_queue`` rows in
status ``pending``, fill in one decision per lead (verify, correct or reject)
and hand the file back. The import applies each row in its own savepoint, so
one bad row is reported and the rest still apply. Importing the same file
again changes nothing.

Command line::

    python -m leadflow.review export --out FILE [--account ID] [--format csv|json]
    python -m leadflow.review import FILE [--batch NAME] [--allow-override]

Exports contain personal data, so they are created readable by their owner
only (mode 0600).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from leadflow import warehouse

log = logging.getLogger(__name__)

LEAD_COLUMNS = [
    "lead_id",
    "account_id",
    "source",
    "converted_at",
    # queued_at is not a decision input, but an import rejects decided_at
    # before it, so reviewers and the review simulator need to see it.
    "queued_at",
    "deadline_at",
    "email",
    "business_email",
    "first_name",
    "last_name",
    "company",
    "job_title",
    "phone",
    "country",
    "enriched_company",
    "enriched_job_title",
    "enriched_industry",
    "is_test",
    "is_spam",
]
CORRECTABLE_FIELDS = ["first_name", "last_name", "email", "company", "job_title", "phone", "country"]
CORRECTED_COLUMNS = [f"corrected_{name}" for name in CORRECTABLE_FIELDS]
DECISION_COLUMNS = ["decision", *CORRECTED_COLUMNS, "reason", "reviewer", "decided_at"]
EXPORT_COLUMNS = LEAD_COLUMNS + DECISION_COLUMNS

# decision value -> review_queue.status
DECISION_STATUS = {"verify": "verified", "correct": "corrected", "reject": "rejected"}
DECIDED_STATUSES = frozenset(DECISION_STATUS.values())
# A lead past its deadline ("expired") can still be decided; a late human
# decision is better than none.
OPEN_STATUSES = frozenset({"pending", "expired"})
MAX_VALUE_CHARS = 500
# ASCII addresses with a dotted domain; the top-level label is letters or an
# IDNA "xn--" label.
_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$"
)
# Characters that make a spreadsheet treat a cell as a formula.
_FORMULA_START = ("=", "@", "\t", "\r")

_EXPORT_SQL = """
SELECT q.lead_id, q.account_id, l.source, l.converted_at, q.queued_at, q.deadline_at,
       l.email, l.business_email, l.first_name, l.last_name, l.company, l.job_title, l.phone, l.country,
       e.company AS enriched_company, e.job_title AS enriched_job_title, e.industry AS enriched_industry,
       l.is_test, l.is_spam
FROM leadflow.review_queue q
JOIN leadflow.leads l ON l.lead_id = q.lead_id
LEFT JOIN leadflow.enrichment e ON e.person_id = l.person_id
WHERE q.status = 'pending'
  AND (%(account_id)s::text IS NULL OR q.account_id = %(account_id)s)
ORDER BY q.deadline_at, q.lead_id
"""

Format = Literal["csv", "json"]


class ReviewFileError(ValueError):
    """A decisions file cannot be read as a whole (bad syntax, shape or header)."""


class RowError(ValueError):
    """One decision row is invalid or conflicts with the stored decision."""


@dataclass
class ImportReport:
    """Outcome of one import: counts and the rows that failed."""

    applied: int = 0
    unchanged: int = 0
    # Rows without a decision: the lead stays pending.
    skipped: int = 0
    # (row number, lead_id as written in the file, message)
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    errors_path: Path | None = None


# --- file reading and writing ------------------------------------------------


def file_format(path: str | Path) -> Format:
    """Return "json" for a ``.json`` path and "csv" otherwise."""
    return "json" if str(path).lower().endswith(".json") else "csv"


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _csv_safe(text: str) -> str:
    """Prefix a quote to text a spreadsheet would run as a formula.

    A leading "+" or "-" counts only with letters after it, so phone numbers
    such as "+49 30 1234" stay as they are.
    """
    if text.startswith(_FORMULA_START):
        return "'" + text
    if text.startswith(("+", "-")) and re.search(r"[A-Za-z]", text):
        return "'" + text
    return text


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def write_rows(path: str | Path, rows: Iterable[dict[str, Any]], columns: list[str], fmt: Format) -> int:
    """Write rows to ``path`` atomically with mode 0600; return the row count.

    CSV cells from lead data are guarded against spreadsheet formulas; JSON
    keeps native types and writes a list of objects.
    """
    path = Path(path)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    count = 0
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            if fmt == "csv":
                writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
                writer.writeheader()
                for row in rows:
                    writer.writerow({name: _csv_safe(_cell_text(row.get(name))) for name in columns})
                    count += 1
            else:
                out.write("[")
                for row in rows:
                    out.write(",\n" if count else "\n")
                    json.dump({name: _json_value(row.get(name)) for name in columns}, out, ensure_ascii=False)
                    count += 1
                out.write("\n]\n")
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return count


def read_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row number, row)`` from a CSV or JSON review file.

    CSV row numbers are those a spreadsheet shows, so the header is row 1 and
    the first lead is row 2. JSON row numbers count the list items from 1.
    Raises ReviewFileError when the file as a whole cannot be read.
    """
    path = Path(path)
    if file_format(path) == "json":
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ReviewFileError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(document, list) or not all(isinstance(item, dict) for item in document):
            raise ReviewFileError(f"{path} must contain a JSON list of objects, one per lead")
        for index, item in enumerate(document, start=1):
            yield index, item
        return
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            for index, item in enumerate(reader, start=2):
                yield index, item
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ReviewFileError(f"{path} is not a readable UTF-8 CSV file: {exc}") from exc


# --- export ----------------------------------------------------------------------


def export_queue(out_path: str | Path, account_id: str | None = None, fmt: Format = "csv") -> int:
    """Write pending review rows to ``out_path``, ordered by deadline_at then lead_id; return the row count.

    Each row has the lead, its enrichment and empty decision columns for the
    reviewer. ``account_id`` limits the export to one account.
    """
    if fmt not in ("csv", "json"):
        raise ValueError(f"invalid export format {fmt!r}; expected 'csv' or 'json'")
    conn = warehouse.connect()
    try:
        with conn:
            # A named cursor streams the rows, so a large backlog is not held in memory.
            with conn.cursor(name="review_export", cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                cur.itersize = 2000
                cur.execute(_EXPORT_SQL, {"account_id": account_id})
                count = write_rows(out_path, cur, EXPORT_COLUMNS, fmt)
    finally:
        conn.close()
    log.info("exported %d pending review rows (account %s)", count, account_id or "all")
    return count


# --- import ----------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """One validated decision row."""

    lead_id: int
    account_id: str | None
    status: str
    corrections: dict[str, str]
    reason: str | None
    reviewer: str
    decided_at: datetime


def _text(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def parse_decided_at(text: str) -> datetime:
    """Parse an ISO-8601 instant; raises RowError when it is missing, malformed or has no UTC offset."""
    if not text:
        raise RowError("missing decided_at; write an ISO-8601 time with offset, e.g. 2025-03-04T10:15:00+00:00")
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise RowError(f"invalid decided_at {text!r}; expected ISO-8601 such as 2025-03-04T10:15:00+00:00") from None
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise RowError(f"decided_at {text!r} has no UTC offset; add one such as +00:00 or Z")
    return instant


def is_valid_email(text: str) -> bool:
    """Check the syntax of an ASCII email address (no lookup of the domain)."""
    if len(text) > 254 or "@" not in text:
        return False
    local = text.rsplit("@", 1)[0]
    return len(local) <= 64 and _EMAIL_RE.match(text) is not None


def parse_decision(row: dict[str, Any]) -> Decision | None:
    """Validate one file row; return None for a row without a decision, raise RowError listing every problem."""
    lead_text = _text(row, "lead_id")
    decision = _text(row, "decision").lower()
    if not decision:
        if not lead_text.isdigit():
            raise RowError(f"invalid lead_id {lead_text!r}; expected a whole number")
        filled = [name for name in DECISION_COLUMNS[1:] if _text(row, name)]
        if filled:
            raise RowError(f"missing decision, but {', '.join(filled)} filled in; write verify, correct or reject")
        return None

    problems: list[str] = []
    lead_id = int(lead_text) if lead_text.isdigit() else None
    if lead_id is None:
        problems.append(f"invalid lead_id {lead_text!r}; expected a whole number")
    if decision not in DECISION_STATUS:
        problems.append(f"invalid decision {decision!r}; expected verify, correct or reject")

    corrections: dict[str, str] = {}
    for name in CORRECTABLE_FIELDS:
        value = _text(row, f"corrected_{name}")
        if not value:
            continue
        if len(value) > MAX_VALUE_CHARS or "\x00" in value:
            problems.append(f"corrected_{name} is longer than {MAX_VALUE_CHARS} characters or contains a NUL character")
        corrections[name] = value
    email = corrections.get("email")
    if email is not None and not is_valid_email(email):
        problems.append(f"invalid corrected_email {email!r}; expected an address such as name@example.com")

    reason = _text(row, "reason") or None
    if decision == "correct" and not corrections:
        problems.append("decision correct needs at least one corrected_* value")
    if decision in ("verify", "reject") and corrections:
        problems.append(f"decision {decision} must not have corrected_* values; use correct to change fields")
    if decision == "reject" and reason is None:
        problems.append("decision reject needs a reason")
    if reason is not None and len(reason) > MAX_VALUE_CHARS:
        problems.append(f"reason is longer than {MAX_VALUE_CHARS} characters")

    reviewer = _text(row, "reviewer")
    if not reviewer:
        problems.append("missing reviewer")
    decided_at = None
    try:
        decided_at = parse_decided_at(_text(row, "decided_at"))
    except RowError as exc:
        problems.append(str(exc))

    if problems:
        raise RowError("; ".join(problems))
    assert lead_id is not None and decided_at is not None
    return Decision(
        lead_id=lead_id,
        account_id=_text(row, "account_id") or None,
        status=DECISION_STATUS[decision],
        corrections=corrections,
        reason=reason,
        reviewer=reviewer,
        decided_at=decided_at,
    )


def _apply_decision(
    cur: psycopg2.extensions.cursor, decision: Decision, import_batch: str, allow_override: bool
) -> Literal["applied", "unchanged"]:
    cur.execute(
        "SELECT account_id, status, queued_at, decided_at, corrections, reason"
        " FROM leadflow.review_queue WHERE lead_id = %s FOR UPDATE",
        (decision.lead_id,),
    )
    stored = cur.fetchone()
    if stored is None:
        raise RowError(f"lead_id {decision.lead_id} not found in the review queue")
    if decision.account_id is not None and decision.account_id != stored["account_id"]:
        raise RowError(f"account_id {decision.account_id!r} does not match the lead's account {stored['account_id']!r}")
    if decision.decided_at < stored["queued_at"]:
        raise RowError(
            f"decided_at {decision.decided_at.isoformat()} is before the lead was queued at "
            f"{stored['queued_at'].astimezone(UTC).isoformat()}"
        )
    if stored["status"] in DECIDED_STATUSES:
        same = (
            stored["status"] == decision.status
            and (stored["corrections"] or {}) == decision.corrections
            and stored["reason"] == decision.reason
        )
        if same:
            return "unchanged"
        if not allow_override:
            raise RowError(
                f"already decided: {stored['status']} at {stored['decided_at'].astimezone(UTC).isoformat()};"
                " import with --allow-override to change the decision"
            )
        log.info("overriding decision of lead %s: %s -> %s", decision.lead_id, stored["status"], decision.status)
    elif stored["status"] not in OPEN_STATUSES:
        raise RowError(f"lead_id {decision.lead_id} has status {stored['status']!r}, which cannot take a decision")

    cur.execute(
        "UPDATE leadflow.review_queue SET status = %s, decided_at = %s, reviewer = %s, corrections = %s,"
        " reason = %s, import_batch = %s, imported_at = now() WHERE lead_id = %s",
        (
            decision.status,
            decision.decided_at,
            decision.reviewer,
            psycopg2.extras.Json(decision.corrections),
            decision.reason,
            import_batch,
            decision.lead_id,
        ),
    )
    return "applied"


def _write_errors(path: Path, errors: list[tuple[int, str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["row", "lead_id", "message"])
        writer.writerows(errors)


def import_decisions(path: str | Path, import_batch: str | None = None, allow_override: bool = False) -> ImportReport:
    """Apply a CSV or JSON decisions file to ``leadflow.review_queue``.

    Every row runs in its own savepoint inside one transaction, so a bad row is
    rolled back alone and reported while the others commit together. A row
    identical to the stored decision counts as unchanged. A different decision
    for an already decided lead is an error unless ``allow_override`` is true.
    ``import_batch`` defaults to the file name. Errors are also written to
    ``<path>.errors.csv``; a stale errors file from an earlier import is removed
    when this one has none. Raises ReviewFileError when the file cannot be read.
    """
    path = Path(path)
    batch = import_batch or path.name
    rows = list(read_rows(path))
    if rows:
        missing = [name for name in ("lead_id", "decision") if name not in rows[0][1]]
        if missing:
            raise ReviewFileError(f"{path} has no {' or '.join(missing)} column; start from a review export")
    report = ImportReport()
    conn = warehouse.connect()
    try:
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            for row_number, row in rows:
                lead_label = _text(row, "lead_id")
                try:
                    decision = parse_decision(row)
                    if decision is None:
                        report.skipped += 1
                        continue
                    cur.execute("SAVEPOINT decision_row")
                    try:
                        outcome = _apply_decision(cur, decision, batch, allow_override)
                    except (RowError, psycopg2.DataError, psycopg2.IntegrityError):
                        cur.execute("ROLLBACK TO SAVEPOINT decision_row")
                        raise
                    cur.execute("RELEASE SAVEPOINT decision_row")
                except RowError as exc:
                    report.errors.append((row_number, lead_label, str(exc)))
                    continue
                except (psycopg2.DataError, psycopg2.IntegrityError) as exc:
                    # The primary message names the rule; the detail may quote lead data.
                    report.errors.append(
                        (row_number, lead_label, f"rejected by the warehouse: {exc.diag.message_primary}")
                    )
                    continue
                if outcome == "applied":
                    report.applied += 1
                else:
                    report.unchanged += 1
    finally:
        conn.close()

    errors_path = Path(f"{path}.errors.csv")
    if report.errors:
        _write_errors(errors_path, report.errors)
        report.errors_path = errors_path
    else:
        errors_path.unlink(missing_ok=True)
    log.info(
        "imported review batch %s: %d applied, %d unchanged, %d without decision, %d failed",
        batch,
        report.applied,
        report.unchanged,
        report.skipped,
        len(report.errors),
    )
    return report


# --- command line ------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m leadflow.review", description="Export and import review decisions."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write pending review rows to a file")
    export.add_argument("--out", required=True, type=Path, help="file to write")
    export.add_argument("--account", help="export only this account id")
    export.add_argument("--format", choices=["csv", "json"], help="file format (default: from the --out suffix)")
    imported = commands.add_parser("import", help="apply a decisions file")
    imported.add_argument("file", type=Path, help="CSV or JSON decisions file (JSON when it ends in .json)")
    imported.add_argument("--batch", help="import batch name stored on each applied row (default: the file name)")
    imported.add_argument(
        "--allow-override", action="store_true", help="replace decisions that were already imported differently"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if args.command == "export":
        count = export_queue(args.out, account_id=args.account, fmt=args.format or file_format(args.out))
        print(f"exported {count} pending leads to {args.out}")
        return 0

    try:
        report = import_decisions(args.file, import_batch=args.batch, allow_override=args.allow_override)
    except (OSError, ReviewFileError) as exc:
        print(f"import failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"applied {report.applied}, unchanged {report.unchanged}, without decision {report.skipped}, "
        f"failed {len(report.errors)}"
    )
    for row_number, lead_id, message in report.errors:
        print(f"row {row_number} (lead_id {lead_id or '-'}): {message}", file=sys.stderr)
    if report.errors_path is not None:
        print(f"errors written to {report.errors_path}", file=sys.stderr)
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
