"""sql_query: the read-only statement guard, the role's SQL and the sandbox's fail-closed checks
(no database needed; tests/integration/test_sandbox.py runs them against PostgreSQL)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from agentevents.config import Settings, derive_sql_database_url
from agentevents.tools.base import ToolContext, ToolError
from agentevents.tools.sql import (
    STATEMENT_TIMEOUT,
    SqlQueryTool,
    SqlSandbox,
    check_read_only,
    grants_script,
    role_script,
    session_problem,
    sql_role_name,
)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1",
        "select * from customers;",
        "  WITH t AS (SELECT id FROM orders) SELECT count(*) FROM t",
        "(SELECT 1) UNION (SELECT 2)",
        "SELECT ';DROP TABLE customers' AS s",
        "SELECT 1 -- ; DELETE FROM orders\n",
        "SELECT /* ; /* nested */ DELETE */ 1",
        "SELECT $$; DELETE FROM orders$$",
        "SELECT $q$ ; $q$",
        "SELECT E'it\\'s; DELETE' AS s",
        'SELECT "delete" FROM customers',
        "SELECT name FROM customers WHERE country = 'US' ORDER BY name LIMIT 5",
    ],
)
def test_allows_single_select(query: str) -> None:
    check_read_only(query)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        ";",
        "DELETE FROM orders",
        "UPDATE products SET price = 0",
        "INSERT INTO orders VALUES (1)",
        "DROP TABLE customers",
        "EXPLAIN ANALYZE SELECT 1",
        "SET search_path = public",
        "SELECT 1; SELECT 2",
        "SELECT 1; DROP TABLE customers",
        "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d",
        "SELECT * INTO copy_of_customers FROM customers",
        "SELECT * FROM orders FOR UPDATE",
        "SELECT * FROM orders FOR SHARE",
        "SELECT pg_sleep(10)",
        'SELECT "pg_sleep"(10)',
        "SELECT pg_catalog.pg_read_file('/etc/passwd')",
        "SELECT set_config('search_path', 'public', true)",
        "SELECT lo_import('/etc/passwd')",
        "SELECT query_to_xml('DELETE FROM orders', true, true, '')",
        "SELECT 'unterminated",
        "SELECT /* unterminated",
        "SELECT $x$ unterminated $y$",
        "SELECT 1\x00",
        "SELECT " + "1," * 6000 + "1",
    ],
)
def test_rejects_everything_else(query: str) -> None:
    with pytest.raises(ToolError) as info:
        check_read_only(query)
    assert info.value.code == "sql_not_allowed"


# -- nothing outside the demo schema ----------------------------------------------------------------

@pytest.mark.parametrize(
    "query",
    [
        "SELECT c.name, o.status FROM customers c JOIN orders o ON o.customer_id = c.id",
        "SELECT demo.customers.name FROM demo.customers",
        'SELECT "c"."name" FROM demo."customers" AS "c"',
        "WITH t AS (SELECT id FROM orders) SELECT t.id FROM t",
        "SELECT x.n FROM (SELECT count(*) AS n FROM products) x",
        "SELECT customers.* FROM customers",
        "SELECT 1.5 * price FROM products",
    ],
)
def test_names_inside_the_demo_schema_are_allowed(query: str) -> None:
    check_read_only(query)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("SELECT payload FROM public.events", "public.events is outside the demo schema"),
        ('SELECT payload FROM "public"."events"', "public.events is outside the demo schema"),
        ('SELECT payload FROM "PUBLIC".events', "public.events is outside the demo schema"),
        ("SELECT payload FROM public . /* x */ events", "public.events is outside the demo schema"),
        ("SELECT e.payload FROM public.events e", "public.events is outside the demo schema"),
        ("SELECT public.events.payload FROM customers public", "public.events is outside the demo schema"),
        ("WITH x AS (SELECT payload FROM public.events) SELECT * FROM x", "public.events"),
        ("SELECT (SELECT payload FROM public.events LIMIT 1)", "public.events"),
        ("SELECT * FROM customers WHERE id IN (SELECT seq FROM public.events)", "public.events"),
        ("SELECT * FROM customers UNION ALL SELECT * FROM public.deliveries", "public.deliveries"),
        ("SELECT * FROM other_schema.secrets", "other_schema.secrets is outside the demo schema"),
        ("SELECT * FROM agentevents.public.events", "agentevents.public is outside the demo schema"),
        ("SELECT * FROM information_schema.tables", "information_schema"),
        ("SELECT * FROM pg_catalog.pg_tables", "pg_catalog"),
        ("SELECT usename, passwd FROM pg_shadow", "pg_shadow is a system catalog"),
        ('SELECT * FROM "pg_authid"', "pg_authid is a system catalog"),
        ("SELECT * FROM pg_stat_activity", "pg_stat_activity"),
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
        ("SELECT pg_ls_dir('.')", "pg_ls_dir"),
        ("SELECT lo_get(1)", "lo_get"),
        ("SELECT current_setting('data_directory')", "current_setting"),
        ("SELECT table_to_xml('public.events', true, true, '')", "table_to_xml"),
        ("SELECT query_to_xml('SELECT payload FROM events', true, true, '')", "query_to_xml"),
        ("SELECT * FROM ts_stat('SELECT payload::tsvector FROM events')", "ts_stat"),
        ("SELECT to_regclass('public.events')", "to_regclass"),
        ("SELECT 'public.events'::regclass", "regclass looks objects up by name"),
        ('SELECT * FROM U&"\\0070ublic".events', "Unicode-escaped names"),
        ("SELECT U&'\\0070' AS p", "Unicode-escaped"),
        ("SELECT set_config('search_path', 'public', false)", "set_config"),
        ("SET search_path = public; SELECT payload FROM events", "single statement"),
        ("SELECT * FROM customers; SET search_path TO public", "single statement"),
    ],
)
def test_names_outside_the_demo_schema_are_refused_with_the_reason(query: str, reason: str) -> None:
    with pytest.raises(ToolError) as info:
        check_read_only(query)
    assert info.value.code == "sql_not_allowed"
    assert reason in info.value.message, info.value.message


# -- the role, its grants and the sandbox's own checks -----------------------------------------------

def test_the_role_script_creates_a_read_only_role_with_its_own_settings() -> None:
    script = role_script("agentevents_sql", "it's")
    assert "CREATE ROLE agentevents_sql" in script and "IF NOT EXISTS" in script
    assert "NOSUPERUSER" in script and "NOINHERIT" in script and "NOBYPASSRLS" in script
    assert "PASSWORD 'it''s'" in script
    assert "SET search_path = 'demo'" in script and "SET default_transaction_read_only = 'on'" in script
    assert f"SET statement_timeout = '{STATEMENT_TIMEOUT}'" in script
    assert "PASSWORD NULL" in role_script("agentevents_sql", None)


def test_the_grants_give_demo_only_and_take_public_away() -> None:
    grants = grants_script("agentevents_sql")
    assert "REVOKE ALL ON SCHEMA public FROM PUBLIC;" in grants
    assert "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM agentevents_sql;" in grants
    assert "GRANT USAGE ON SCHEMA demo TO agentevents_sql;" in grants
    assert "GRANT SELECT ON ALL TABLES IN SCHEMA demo TO agentevents_sql;" in grants
    assert "GRANT" not in grants.replace("GRANT USAGE ON SCHEMA demo", "").replace(
        "GRANT SELECT ON ALL TABLES IN SCHEMA demo", "")


@pytest.mark.parametrize("role", ["Robert'); DROP ROLE x; --", "a b", "", "UPPER"])
def test_only_plain_role_names_are_used(role: str) -> None:
    with pytest.raises(ValueError):
        role_script(role, "x")
    with pytest.raises(ValueError):
        sql_role_name(f"postgresql://{role}@h/db" if role else "postgresql://h/db")


GOOD = {"role": "agentevents_sql", "privileged": False, "member_of_roles": False, "readable_elsewhere": 0}


@pytest.mark.parametrize(("change", "reason"), [
    ({"role": "agentevents"}, "is not the role"),
    ({"privileged": True}, "privileges beyond reading"),
    ({"member_of_roles": True}, "member of other roles"),
    ({"readable_elsewhere": 5}, "can read 5 table(s) outside the demo schema"),
])
def test_a_session_that_could_read_more_than_demo_is_refused(change: dict, reason: str) -> None:
    assert session_problem(GOOD, "agentevents_sql") is None
    assert reason in session_problem({**GOOD, **change}, "agentevents_sql")


OWNER = "postgresql://agentevents:pw@127.0.0.1:5434/agentevents"


@pytest.mark.parametrize(("dsn", "reason"), [
    ("", "no DSN"),
    ("postgresql://agentevents:pw@127.0.0.1:5434/agentevents", "is the archive's owner"),
    ("postgresql://127.0.0.1:5434/agentevents", "must be a lower-case name"),
])
def test_the_sandbox_fails_closed_without_its_own_role(dsn: str, reason: str) -> None:
    sandbox = SqlSandbox(dsn, owner_dsn=OWNER)
    assert reason in sandbox.problem()
    with pytest.raises(ToolError) as info:
        asyncio.run(sandbox.run("SELECT 1"))
    assert info.value.code == "database_unavailable" and "the query was not run" in info.value.message


def test_the_tool_runs_only_on_its_sandbox_never_on_another_pool() -> None:
    class OwnerPool:
        def acquire(self):
            raise AssertionError("the owner's pool must never be used")

    context = ToolContext(user_id="u", thread_id="t", run_id="r", permissions=frozenset({"tools:sql"}),
                          db=OwnerPool())
    with pytest.raises(ToolError) as info:
        asyncio.run(SqlQueryTool().run({"query": "SELECT 1"}, context))
    assert info.value.code == "database_unavailable"


def test_the_sandbox_dsn_is_derived_from_the_owners() -> None:
    derived = derive_sql_database_url(OWNER + "?sslmode=disable")
    parts = urlsplit(derived)
    assert (parts.username, parts.hostname, parts.port, parts.path, parts.query) == (
        "agentevents_sql", "127.0.0.1", 5434, "/agentevents", "sslmode=disable")
    assert parts.password and len(parts.password) >= 32 and parts.password != "pw"
    assert derive_sql_database_url(OWNER) == derive_sql_database_url(OWNER)  # every worker agrees
    other = derive_sql_database_url(OWNER.replace(":pw@", ":other@"))
    assert urlsplit(other).password != parts.password
    assert urlsplit(derive_sql_database_url("postgresql://app@db/x")).password is None
    assert urlsplit(derive_sql_database_url("postgresql://app@db/x")).username == "app_sql"
    assert Settings(database_url=OWNER).sql_database_url == derive_sql_database_url(OWNER)
    assert Settings(database_url=OWNER, sql_database_url="postgresql://r:s@h/d").sql_database_url == \
        "postgresql://r:s@h/d"
