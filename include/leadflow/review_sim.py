"""Simulated review team for the local demo: turns a review export into a decisions file.

Every choice for a lead comes from a SHA-256 hash of the seed, the lead_id and
the purpose of the draw, never from the row's position, so the same lead gets
the same decision in any export that contains it.

Decisions: test and spam leads are rejected with a reason. Of the rest about
80 % are verified, 12 % corrected, 6 % rejected and 2 % left undecided. A
lead drawn for correction that has nothing a reviewer would fix is verified
instead, so the corrected share depends on the data. decided_at is
converted_at plus 5 to 14 minutes, except about 3 % decided 20 to 23 hours
after converted_at. It is never earlier than one minute after queued_at,
because a reviewer cannot see a lead before it is queued.

Command line: ``python -m leadflow.review_sim EXPORT OUT [--seed N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from leadflow.review import DECISION_COLUMNS, EXPORT_COLUMNS, file_format, read_rows, write_rows

log = logging.getLogger(__name__)

REVIEWERS = ("Maya Chen", "Jonas Weber", "Priya Nair", "Tom Okafor", "Lucia Romero")
REJECT_REASONS = ("student", "competitor", "fake name", "job seeker, not a buyer")
TEST_REASON = "platform test lead"
SPAM_REASON = "suspected spam"
# Upper bounds of the cumulative shares for leads that are neither test nor spam.
VERIFY_UNTIL = 0.80
CORRECT_UNTIL = 0.92
REJECT_UNTIL = 0.98
LATE_SHARE = 0.03


def draw(seed: int, lead_id: str, purpose: str) -> float:
    """Return a number in [0, 1) fixed by the seed, the lead and the purpose of the draw."""
    digest = hashlib.sha256(f"{seed}:{lead_id}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _pick(seed: int, lead_id: str, purpose: str, choices: tuple[str, ...]) -> str:
    return choices[int(draw(seed, lead_id, purpose) * len(choices))]


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in ("true", "t", "1", "yes")


def _text(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    return "" if value is None else str(value).strip()


def title_case_name(name: str) -> str:
    """Capitalise each part of a name, also after hyphens and apostrophes ("o'brien-smith" -> "O'Brien-Smith")."""
    return re.sub(r"[A-Za-z\u00C0-\u024F]+", lambda match: match.group(0).capitalize(), name)


def _is_lower_case_name(name: str) -> bool:
    return any(ch.isalpha() for ch in name) and name == name.lower()


def _is_abbreviation(company: str, full_name: str) -> bool:
    """Tell whether ``company`` abbreviates ``full_name``: its initials, or a short all-caps form."""
    if not company or not full_name or company.casefold() == full_name.casefold():
        return False
    compact = company.replace(".", "").replace(" ", "")
    initials = "".join(word[0] for word in re.findall(r"[A-Za-z0-9]+", full_name))
    if compact.upper() == initials.upper() and len(compact) >= 2:
        return True
    return len(compact) <= 5 and compact.isupper() and full_name.upper().startswith(compact)


def propose_corrections(row: dict[str, Any]) -> dict[str, str]:
    """Return the corrected_* values a reviewer would write for this lead; empty when nothing needs fixing."""
    corrections: dict[str, str] = {}
    first_name = _text(row, "first_name")
    last_name = _text(row, "last_name")
    if _is_lower_case_name(first_name):
        corrections["corrected_first_name"] = title_case_name(first_name)
    if _is_lower_case_name(last_name):
        corrections["corrected_last_name"] = title_case_name(last_name)
    if not last_name:
        local_part = _text(row, "email").split("@", 1)[0]
        parts = [part for part in re.split(r"[._-]", local_part) if part.isalpha()]
        if len(parts) >= 2:
            corrections["corrected_last_name"] = title_case_name(parts[-1])
    company = _text(row, "company")
    enriched_company = _text(row, "enriched_company")
    if _is_abbreviation(company, enriched_company):
        corrections["corrected_company"] = enriched_company
    return corrections


def decide(row: dict[str, Any], seed: int) -> dict[str, str]:
    """Return the decision columns for one exported lead; all blank when the lead stays undecided."""
    lead_id = _text(row, "lead_id")
    decision = {name: "" for name in DECISION_COLUMNS}
    if _flag(row.get("is_test")):
        decision.update(decision="reject", reason=TEST_REASON)
    elif _flag(row.get("is_spam")):
        decision.update(decision="reject", reason=SPAM_REASON)
    else:
        share = draw(seed, lead_id, "decision")
        if share >= REJECT_UNTIL:
            return decision
        if share < VERIFY_UNTIL:
            decision["decision"] = "verify"
        elif share < CORRECT_UNTIL:
            corrections = propose_corrections(row)
            decision.update(corrections, decision="correct" if corrections else "verify")
        else:
            decision.update(decision="reject", reason=_pick(seed, lead_id, "reason", REJECT_REASONS))

    decision["reviewer"] = _pick(seed, lead_id, "reviewer", REVIEWERS)
    decision["decided_at"] = decided_at(row, seed).isoformat()
    return decision


def decided_at(row: dict[str, Any], seed: int) -> datetime:
    """Return the simulated decision time of one lead, to the second."""
    lead_id = _text(row, "lead_id")
    converted_at = datetime.fromisoformat(_text(row, "converted_at"))
    spread = draw(seed, lead_id, "delay")
    if draw(seed, lead_id, "late") < LATE_SHARE:
        delay = timedelta(hours=20) + spread * timedelta(hours=3)
    else:
        delay = timedelta(minutes=5) + spread * timedelta(minutes=9)
    instant = converted_at + delay
    queued_text = _text(row, "queued_at")
    if queued_text:
        instant = max(instant, datetime.fromisoformat(queued_text) + timedelta(minutes=1))
    return instant.replace(microsecond=0)


def simulate(export_path: str | Path, out_path: str | Path, seed: int = 11) -> dict[str, int]:
    """Write a decisions file for the leads in ``export_path``; return the count per decision.

    The output has the export's columns with the decision columns filled, in
    the export's order, as CSV or JSON by the suffix of ``out_path``. The
    counts have the keys verify, correct, reject and undecided.
    """
    counts = {"verify": 0, "correct": 0, "reject": 0, "undecided": 0}
    rows: list[dict[str, Any]] = []
    columns: list[str] | None = None
    for _row_number, row in read_rows(export_path):
        if columns is None:
            columns = list(row) + [name for name in DECISION_COLUMNS if name not in row]
        decision = decide(row, seed)
        counts[decision["decision"] or "undecided"] += 1
        rows.append({**row, **decision})
    write_rows(out_path, rows, columns or EXPORT_COLUMNS, file_format(out_path))
    log.info("simulated review of %d leads: %s", len(rows), counts)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leadflow.review_sim", description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, help="review export to decide (CSV, or JSON when it ends in .json)")
    parser.add_argument("out", type=Path, help="decisions file to write (CSV, or JSON when it ends in .json)")
    parser.add_argument("--seed", type=int, default=11, help="seed of the simulated decisions (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    counts = simulate(args.export, args.out, seed=args.seed)
    print(", ".join(f"{name} {count}" for name, count in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
