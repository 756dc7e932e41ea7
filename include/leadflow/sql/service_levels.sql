-- Service-level report of one account for the report day [day_start, day_end).
-- One measurement per lead (or per account for freshness promises), in
-- minutes; a breach lists the lead ids, never personal data.
WITH measurements AS (
    -- Native-form leads: in the warehouse within 15 min of the platform making them available.
    SELECT
        'native_form_ingest' AS promise,
        15 AS target_minutes,
        l.lead_id::text AS ref,
        extract(EPOCH FROM l.ingested_at - l.available_at) / 60.0 AS minutes
    FROM leadflow.leads AS l
    WHERE
        l.account_id = %(account)s AND l.source IN ('linkedin', 'meta')
        AND l.ingested_at >= %(day_start)s AND l.ingested_at < %(day_end)s

    UNION ALL
    -- Landing-page leads: within 15 min of the collector receiving them.
    SELECT
        'landing_page_ingest',
        15,
        l.lead_id::text,
        extract(EPOCH FROM l.ingested_at - l.available_at) / 60.0
    FROM leadflow.leads AS l
    WHERE
        l.account_id = %(account)s AND l.source = 'pixel'
        AND l.ingested_at >= %(day_start)s AND l.ingested_at < %(day_end)s

    UNION ALL
    -- Automated enrichment: in the same run as ingestion.
    SELECT
        'enrichment_same_run',
        0,
        l.lead_id::text,
        CASE
            WHEN e.run_id = l.ingested_run_id THEN 0
            ELSE greatest(extract(EPOCH FROM coalesce(e.enriched_at, %(now)s) - l.ingested_at) / 60.0, 1)
        END
    FROM leadflow.leads AS l
    LEFT JOIN leadflow.enrichment AS e ON l.person_id = e.person_id
    WHERE
        l.account_id = %(account)s
        AND l.ingested_at >= %(day_start)s AND l.ingested_at < %(day_end)s
        AND l.lead_id = (
            SELECT min(x.lead_id) FROM leadflow.leads AS x WHERE x.person_id = l.person_id
        )

    UNION ALL
    -- Human verification: within 24 h of conversion. Undecided leads count
    -- once their deadline has passed.
    SELECT
        'human_verification',
        1440,
        l.lead_id::text,
        extract(EPOCH FROM coalesce(r.decided_at, %(now)s) - l.converted_at) / 60.0
    FROM leadflow.leads AS l
    INNER JOIN leadflow.review_queue AS r ON l.lead_id = r.lead_id
    WHERE
        l.account_id = %(account)s
        AND l.converted_at >= %(day_start)s AND l.converted_at < %(day_end)s
        AND (r.decided_at IS NOT NULL OR r.deadline_at <= %(now)s)

    UNION ALL
    -- Push to the MAP: within 15 min of being ready (verification, or
    -- ingestion for accounts that push first).
    SELECT
        'push_to_map',
        15,
        p.lead_id::text,
        greatest(extract(EPOCH FROM p.pushed_at - p.ready_at) / 60.0, 0)
    FROM leadflow.push_log AS p
    WHERE
        p.account_id = %(account)s AND p.action IN ('created', 'updated', 'unchanged')
        AND p.ready_at IS NOT NULL
        AND p.pushed_at >= %(day_start)s AND p.pushed_at < %(day_end)s

    UNION ALL
    -- Pull from the MAP: values no older than 24 h.
    SELECT
        'map_pull_freshness',
        1440,
        %(account)s,
        extract(EPOCH FROM %(now)s - max(v.pulled_at)) / 60.0
    FROM leadflow.map_values AS v
    WHERE v.account_id = %(account)s
    HAVING count(*) > 0

    UNION ALL
    -- Attribution: recomputed at least every 24 h.
    SELECT
        'attribution_freshness',
        1440,
        %(account)s,
        extract(EPOCH FROM %(now)s - max(s.event_at)) / 60.0
    FROM leadflow.step_runs AS s
    WHERE s.account_id = %(account)s AND s.step = 'compute_attribution' AND s.status = 'success'
    HAVING count(*) > 0
)

INSERT INTO leadflow.service_levels AS sl (
    report_date, account_id, promise, target_minutes, measured, met, breached,
    p95_minutes, max_minutes, breached_refs, computed_at, run_id
)
SELECT
    %(report_date)s,
    %(account)s,
    promise,
    target_minutes,
    count(*),
    count(*) FILTER (WHERE minutes <= target_minutes),
    count(*) FILTER (WHERE minutes > target_minutes),
    round(percentile_cont(0.95) WITHIN GROUP (ORDER BY minutes)::numeric, 1),
    round(max(minutes)::numeric, 1),
    coalesce((array_agg(ref ORDER BY ref) FILTER (WHERE minutes > target_minutes))[1:50], '{}'),
    %(now)s,
    %(run)s
FROM measurements
GROUP BY promise, target_minutes
ON CONFLICT (report_date, account_id, promise) DO UPDATE SET
    target_minutes = excluded.target_minutes,
    measured = excluded.measured,
    met = excluded.met,
    breached = excluded.breached,
    p95_minutes = excluded.p95_minutes,
    max_minutes = excluded.max_minutes,
    breached_refs = excluded.breached_refs,
    computed_at = excluded.computed_at,
    run_id = excluded.run_id
