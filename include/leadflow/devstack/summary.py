"""Per-account funnel figures of a run, read from the warehouse and printed as a table."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from leadflow import warehouse

SUMMARY_KEYS = ("accounts", "ingested", "quarantined", "enriched", "verified", "rejected", "pushed", "pulled", "attributed", "dq", "service_levels")


def _grouped(cur, sql: str) -> dict[str, dict[str, int]]:
    cur.execute(sql)
    table: dict[str, dict[str, int]] = defaultdict(dict)
    for row in cur.fetchall():
        values = list(row.values())
        table[values[0]][str(values[1])] = int(values[2])
    return table


def collect() -> dict[str, Any]:
    """Return the funnel figures for every account in the warehouse."""
    with warehouse.transaction() as cur:
        cur.execute("SELECT account_id, active, map_type, settings FROM leadflow.accounts ORDER BY account_id")
        accounts = [
            {
                "account_id": row["account_id"],
                "active": row["active"],
                "map": row["map_type"],
                "push_before_verification": bool(row["settings"].get("push_before_verification")),
            }
            for row in cur.fetchall()
        ]
        ingested = _grouped(cur, "SELECT account_id, source, count(*) FROM leadflow.leads GROUP BY 1, 2 ORDER BY 1, 2")
        quarantined = _grouped(cur, "SELECT account_id, reason_code, count(*) FROM leadflow.quarantine GROUP BY 1, 2 ORDER BY 1, 2")
        enriched = _grouped(
            cur,
            "SELECT e.account_id, e.status, count(*) FROM leadflow.enrichment e GROUP BY 1, 2 ORDER BY 1, 2",
        )
        review = _grouped(cur, "SELECT account_id, status, count(*) FROM leadflow.review_queue GROUP BY 1, 2 ORDER BY 1, 2")
        flags = _grouped(
            cur,
            """
            SELECT account_id, flag, count(*) FROM (
                SELECT account_id, 'test' AS flag FROM leadflow.leads WHERE is_test
                UNION ALL SELECT account_id, 'spam' FROM leadflow.leads WHERE is_spam
                UNION ALL SELECT account_id, 'people' FROM leadflow.people
            ) f GROUP BY 1, 2 ORDER BY 1, 2
            """,
        )
        pushed = _grouped(
            cur,
            """
            SELECT account_id, CASE WHEN action = 'skipped' THEN 'skipped: ' || split_part(reason, ':', 1) ELSE action END,
                   count(DISTINCT lead_id)
            FROM leadflow.push_log GROUP BY 1, 2 ORDER BY 1, 2
            """,
        )
        cur.execute("SELECT account_id, count(*) AS n FROM leadflow.map_records GROUP BY 1")
        map_records = {row["account_id"]: row["n"] for row in cur.fetchall()}
        pulled = _grouped(
            cur,
            """
            SELECT account_id, metric, count(*) FROM (
                SELECT account_id, 'people' AS metric FROM leadflow.map_values
                UNION ALL SELECT account_id, 'with_score' FROM leadflow.map_values WHERE score IS NOT NULL
                UNION ALL SELECT account_id, 'with_mql_date' FROM leadflow.map_values WHERE latest_mql_date IS NOT NULL
                UNION ALL SELECT account_id, 'with_custom_fields' FROM leadflow.map_values
                    WHERE EXISTS (SELECT 1 FROM jsonb_each(custom_fields) c WHERE c.value <> 'null'::jsonb)
            ) m GROUP BY 1, 2 ORDER BY 1, 2
            """,
        )
        attributed = _grouped(cur, "SELECT account_id, kind, count(*) FROM leadflow.attribution GROUP BY 1, 2 ORDER BY 1, 2")
        cur.execute(
            """
            SELECT account_id, kind || '_opportunities' AS metric, count(DISTINCT opportunity_id) AS n
            FROM leadflow.attribution GROUP BY 1, 2 ORDER BY 1, 2
            """
        )
        for row in cur.fetchall():
            attributed[row["account_id"]][row["metric"]] = row["n"]
        dq = _grouped(
            cur,
            """
            SELECT account_id, CASE WHEN success THEN 'passed' ELSE 'failed' END, count(*)
            FROM leadflow.dq_results GROUP BY 1, 2 ORDER BY 1, 2
            """,
        )
        cur.execute(
            """
            SELECT account_id, report_date, promise, target_minutes, measured, met, breached, p95_minutes
            FROM leadflow.service_levels ORDER BY account_id, report_date, promise
            """
        )
        service_levels: dict[str, dict[str, Any]] = defaultdict(dict)
        for row in cur.fetchall():
            day = service_levels[row["account_id"]].setdefault(row["report_date"].isoformat(), {})
            day[row["promise"]] = {
                "target_minutes": row["target_minutes"],
                "measured": row["measured"],
                "met": row["met"],
                "breached": row["breached"],
                "p95_minutes": float(row["p95_minutes"]) if row["p95_minutes"] is not None else None,
            }
    verified = {a: {k: v for k, v in r.items() if k in ("verified", "corrected", "pending", "expired")} for a, r in review.items()}
    rejected = {a: {"rejected": r.get("rejected", 0)} for a, r in review.items()}
    for account, values in flags.items():
        ingested.setdefault(account, {}).update({f"flagged_{k}" if k != "people" else "distinct_people": v for k, v in values.items()})
    for account, count in map_records.items():
        pushed.setdefault(account, {})["map_records"] = count
    return {
        "accounts": accounts,
        "ingested": dict(ingested),
        "quarantined": dict(quarantined),
        "enriched": dict(enriched),
        "verified": verified,
        "rejected": rejected,
        "pushed": dict(pushed),
        "pulled": dict(pulled),
        "attributed": dict(attributed),
        "dq": dict(dq),
        "service_levels": dict(service_levels),
    }


def render(summary: dict[str, Any]) -> str:
    """Format the figures as a plain-text report, one block per account."""
    lines = []
    for account in summary["accounts"]:
        account_id = account["account_id"]
        state = "active" if account["active"] else "inactive"
        mode = "push before verification" if account["push_before_verification"] else "push after verification"
        lines.append(f"== {account_id} ({state}, MAP {account['map']}, {mode})")
        for key in ("ingested", "quarantined", "enriched", "verified", "rejected", "pushed", "pulled", "attributed", "dq"):
            values = summary[key].get(account_id) or {}
            text = ", ".join(f"{name}={count}" for name, count in sorted(values.items())) or "none"
            lines.append(f"  {key:<12} {text}")
        days = summary["service_levels"].get(account_id) or {}
        for day, levels in sorted(days.items()):
            lines.append(f"  service levels for {day}:")
            for promise, figures in sorted(levels.items()):
                lines.append(
                    f"    {promise:<24} measured={figures['measured']:<4} met={figures['met']:<4} breached={figures['breached']:<3}"
                    f" p95={figures['p95_minutes']} min (target {figures['target_minutes']} min)"
                )
    return "\n".join(lines)
