"""sql_query: the read-only statement guard (no database needed)."""

from __future__ import annotations

import pytest

from agentevents.tools.base import ToolError
from agentevents.tools.sql import check_read_only


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
