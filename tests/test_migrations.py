import psycopg2

from leadflow import warehouse


def test_migrate_applies_once(clean_warehouse):
    assert warehouse.migrate() == []
    conn = psycopg2.connect(clean_warehouse)
    with conn.cursor() as cur:
        cur.execute("SELECT name FROM public.leadflow_migrations ORDER BY name")
        names = [row[0] for row in cur.fetchall()]
        cur.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'leadflow' AND table_name = 'leads'"
        )
        leads_tables = cur.fetchone()[0]
    conn.close()
    assert names == sorted(p.name for p in warehouse.MIGRATIONS_DIR.glob("*.sql"))
    assert leads_tables == 1
