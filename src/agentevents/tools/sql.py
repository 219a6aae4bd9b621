"""``sql_query``: read-only SQL over the ``demo`` schema in PostgreSQL.

Defence in depth: a lexical guard (:func:`check_read_only`) admits one SELECT/WITH statement,
then the query runs in a READ ONLY transaction with a short ``statement_timeout`` and
``search_path = demo``, and at most :data:`MAX_ROWS` rows are returned.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import math
import re
import uuid
from typing import Any

import asyncpg

from agentevents.tools.base import ToolContext, ToolError, ToolResult

MAX_ROWS = 200
MAX_QUERY_LENGTH = 10_000
STATEMENT_TIMEOUT = "2s"

DEMO_SCHEMA_SQL = """
-- Serialise concurrent installers (held until this script's implicit transaction ends).
SELECT pg_advisory_xact_lock(hashtext('agentevents.demo_schema'));
CREATE SCHEMA IF NOT EXISTS demo;
CREATE TABLE IF NOT EXISTS demo.customers (
    id integer PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL UNIQUE,
    country text NOT NULL,
    created_at date NOT NULL
);
CREATE TABLE IF NOT EXISTS demo.products (
    id integer PRIMARY KEY,
    name text NOT NULL,
    category text NOT NULL,
    price numeric(10, 2) NOT NULL CHECK (price >= 0),
    stock integer NOT NULL CHECK (stock >= 0)
);
CREATE TABLE IF NOT EXISTS demo.orders (
    id integer PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES demo.customers (id),
    product_id integer NOT NULL REFERENCES demo.products (id),
    quantity integer NOT NULL CHECK (quantity > 0),
    order_date date NOT NULL,
    status text NOT NULL
);
INSERT INTO demo.customers (id, name, email, country, created_at) VALUES
    (1, 'Ada Lovelace', 'ada.lovelace@example.com', 'US', DATE '2023-01-05'),
    (2, 'Alan Turing', 'alan.turing@example.com', 'GB', DATE '2023-01-22'),
    (3, 'Grace Hopper', 'grace.hopper@example.com', 'DE', DATE '2023-02-08'),
    (4, 'Linus Torvalds', 'linus.torvalds@example.com', 'FR', DATE '2023-02-25'),
    (5, 'Barbara Liskov', 'barbara.liskov@example.com', 'NL', DATE '2023-03-14'),
    (6, 'Dennis Ritchie', 'dennis.ritchie@example.com', 'SE', DATE '2023-03-31'),
    (7, 'Margaret Hamilton', 'margaret.hamilton@example.com', 'CA', DATE '2023-04-17'),
    (8, 'Ken Thompson', 'ken.thompson@example.com', 'JP', DATE '2023-05-04'),
    (9, 'Frances Allen', 'frances.allen@example.com', 'US', DATE '2023-05-21'),
    (10, 'Edsger Dijkstra', 'edsger.dijkstra@example.com', 'GB', DATE '2023-06-07'),
    (11, 'Radia Perlman', 'radia.perlman@example.com', 'DE', DATE '2023-06-24'),
    (12, 'Tim Berners-Lee', 'tim.bernerslee@example.com', 'FR', DATE '2023-07-11'),
    (13, 'Hedy Lamarr', 'hedy.lamarr@example.com', 'NL', DATE '2023-07-28'),
    (14, 'John Backus', 'john.backus@example.com', 'SE', DATE '2023-08-14'),
    (15, 'Katherine Johnson', 'katherine.johnson@example.com', 'CA', DATE '2023-08-31'),
    (16, 'Donald Knuth', 'donald.knuth@example.com', 'JP', DATE '2023-09-17'),
    (17, 'Shafi Goldwasser', 'shafi.goldwasser@example.com', 'US', DATE '2023-10-04'),
    (18, 'Vint Cerf', 'vint.cerf@example.com', 'GB', DATE '2023-10-21'),
    (19, 'Joan Clarke', 'joan.clarke@example.com', 'DE', DATE '2023-11-07'),
    (20, 'Niklaus Wirth', 'niklaus.wirth@example.com', 'FR', DATE '2023-11-24')
ON CONFLICT DO NOTHING;
INSERT INTO demo.products (id, name, category, price, stock) VALUES
    (1, 'Keyboard', 'hardware', 135.62, 38),
    (2, 'Mouse', 'hardware', 163.38, 12),
    (3, 'Monitor 27in', 'hardware', 37.32, 137),
    (4, 'USB-C Hub', 'hardware', 45.80, 149),
    (5, 'Laptop Stand', 'hardware', 31.68, 129),
    (6, 'Webcam HD', 'hardware', 92.95, 22),
    (7, 'Headset', 'hardware', 178.56, 17),
    (8, 'Editor Pro License', 'software', 103.10, 141),
    (9, 'Backup Suite', 'software', 174.99, 211),
    (10, 'Antivirus 1y', 'software', 230.09, 242),
    (11, 'Database Toolkit', 'software', 96.29, 160),
    (12, 'Design Studio', 'software', 236.95, 15),
    (13, 'Setup Service', 'service', 234.65, 101),
    (14, 'Extended Warranty', 'service', 28.39, 56),
    (15, 'Training Session', 'service', 27.21, 219),
    (16, 'Cloud Storage 1TB', 'service', 61.07, 107),
    (17, 'Priority Support', 'service', 65.40, 30),
    (18, 'Data Migration', 'service', 232.23, 143),
    (19, 'Security Audit', 'service', 328.11, 46),
    (20, 'Consulting Hour', 'service', 49.29, 146)
ON CONFLICT DO NOTHING;
INSERT INTO demo.orders (id, customer_id, product_id, quantity, order_date, status) VALUES
    (1, 7, 12, 1, DATE '2024-02-01', 'delivered'),
    (2, 18, 3, 5, DATE '2024-02-10', 'paid'),
    (3, 20, 7, 4, DATE '2024-02-19', 'cancelled'),
    (4, 11, 15, 5, DATE '2024-02-28', 'cancelled'),
    (5, 12, 10, 2, DATE '2024-03-08', 'shipped'),
    (6, 8, 3, 5, DATE '2024-03-17', 'delivered'),
    (7, 10, 17, 4, DATE '2024-03-26', 'delivered'),
    (8, 15, 10, 5, DATE '2024-04-04', 'paid'),
    (9, 4, 17, 4, DATE '2024-04-13', 'shipped'),
    (10, 11, 5, 4, DATE '2024-04-22', 'cancelled'),
    (11, 2, 3, 5, DATE '2024-05-01', 'delivered'),
    (12, 19, 11, 3, DATE '2024-05-10', 'delivered'),
    (13, 20, 16, 5, DATE '2024-05-19', 'cancelled'),
    (14, 3, 3, 3, DATE '2024-05-28', 'cancelled'),
    (15, 3, 2, 3, DATE '2024-06-06', 'cancelled'),
    (16, 10, 13, 3, DATE '2024-06-15', 'delivered'),
    (17, 1, 15, 3, DATE '2024-06-24', 'shipped'),
    (18, 20, 4, 4, DATE '2024-07-03', 'paid'),
    (19, 7, 10, 2, DATE '2024-07-12', 'shipped'),
    (20, 13, 13, 4, DATE '2024-07-21', 'paid'),
    (21, 6, 15, 4, DATE '2024-07-30', 'delivered'),
    (22, 18, 9, 2, DATE '2024-08-08', 'cancelled'),
    (23, 18, 9, 4, DATE '2024-08-17', 'delivered'),
    (24, 13, 8, 2, DATE '2024-08-26', 'paid')
ON CONFLICT DO NOTHING;
"""


async def install_demo_schema(conn: Any) -> None:
    """Create and fill the ``demo`` schema; idempotent and safe to run concurrently.

    ``conn`` is an asyncpg connection (or pool). The script is sent as one simple query,
    so it runs as a single implicit transaction.
    """
    await conn.execute(DEMO_SCHEMA_SQL)


# --- statement guard -------------------------------------------------------------------------

FORBIDDEN_KEYWORDS = frozenset(
    {
        "insert",
        "update",
        "delete",
        "merge",
        "upsert",
        "create",
        "drop",
        "alter",
        "truncate",
        "grant",
        "revoke",
        "copy",
        "call",
        "do",
        "lock",
        "set",
        "reset",
        "vacuum",
        "analyze",
        "refresh",
        "listen",
        "unlisten",
        "notify",
        "execute",
        "prepare",
        "deallocate",
        "discard",
        "comment",
        "cluster",
        "reindex",
        "into",
        "begin",
        "commit",
        "rollback",
        "abort",
        "savepoint",
        "release",
        "checkpoint",
        "load",
        "import",
        "security",
    }
)
# Functions with side effects or access outside the demo data, even from a SELECT.
_FORBIDDEN_FUNCTION = re.compile(
    r"^(pg_read_file|pg_read_binary_file|pg_ls_\w*|pg_stat_file|lo_\w+|dblink\w*|pg_terminate_backend"
    r"|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile|set_config|pg_sleep\w*|pg_(try_)?advisory\w*"
    r"|pg_notify|query_to_xml\w*|cursor_to_xml\w*|pg_promote|pg_switch_wal|pg_create_\w+|pg_drop_\w+"
    r"|pg_logical_\w+|pg_replication_\w+|pg_file_\w+|nextval|setval|txid_current|pg_current_xact_id)$"
)
_WORD = re.compile(r"[A-Za-z_\x80-\uffff][A-Za-z0-9_$\x80-\uffff]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")

Token = tuple[str, str]  # (kind, text): kind is word | ident | string | number | punct


def _not_allowed(message: str) -> ToolError:
    return ToolError("sql_not_allowed", message)


def _skip_block_comment(query: str, i: int) -> int:
    depth, i = 1, i + 2
    while depth:
        if i >= len(query):
            raise _not_allowed("unterminated /* comment")
        if query.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif query.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def _skip_quoted(query: str, i: int, quote: str, backslash: bool) -> int:
    """Index after the literal opening at ``i`` (doubled quotes, optional backslash escapes)."""
    j = i + 1
    while j < len(query):
        ch = query[j]
        if backslash and ch == "\\":
            j += 2
        elif ch == quote:
            if query.startswith(quote * 2, j):
                j += 2
            else:
                return j + 1
        else:
            j += 1
    raise _not_allowed(f"unterminated {quote} literal")


def _lex_one(query: str, i: int) -> tuple[Token | None, int]:
    ch = query[i]
    if ch.isspace():
        return None, i + 1
    if query.startswith("--", i):
        end = query.find("\n", i)
        return None, len(query) if end < 0 else end + 1
    if query.startswith("/*", i):
        return None, _skip_block_comment(query, i)
    if ch == "'":
        return ("string", ""), _skip_quoted(query, i, "'", False)
    if ch in "eE" and query.startswith("'", i + 1):
        return ("string", ""), _skip_quoted(query, i + 1, "'", True)
    if ch == '"':
        end = _skip_quoted(query, i, '"', False)
        return ("ident", query[i + 1 : end - 1].replace('""', '"').lower()), end
    if ch == "$" and (tag := _DOLLAR_TAG.match(query, i)):
        end = query.find(tag.group(0), tag.end())
        if end < 0:
            raise _not_allowed("unterminated dollar-quoted string")
        return ("string", ""), end + len(tag.group(0))
    if word := _WORD.match(query, i):
        return ("word", word.group(0).lower()), word.end()
    if ch.isdigit():
        end = i
        while end < len(query) and (query[end].isalnum() or query[end] in "._"):
            end += 1
        return ("number", query[i:end]), end
    return ("punct", ch), i + 1


def tokenize_sql(query: str) -> list[Token]:
    """Split SQL into tokens, dropping whitespace and comments; literals keep no content."""
    tokens: list[Token] = []
    i = 0
    while i < len(query):
        token, i = _lex_one(query, i)
        if token is not None:
            tokens.append(token)
    return tokens


def _strip_trailing_semicolons(tokens: list[Token]) -> list[Token]:
    while tokens and tokens[-1] == ("punct", ";"):
        tokens = tokens[:-1]
    if ("punct", ";") in tokens:
        raise _not_allowed("only a single statement is allowed")
    return tokens


def _check_first_keyword(tokens: list[Token]) -> None:
    first = next((t for t in tokens if t != ("punct", "(")), None)
    if first is None:
        raise _not_allowed("empty query")
    if first not in (("word", "select"), ("word", "with")):
        raise _not_allowed("only SELECT or WITH queries are allowed")


def _check_words(tokens: list[Token]) -> None:
    for index, (kind, text) in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else ("", "")
        if kind == "word" and text in FORBIDDEN_KEYWORDS:
            raise _not_allowed(f"{text.upper()} is not allowed in a read-only query")
        if kind == "word" and text == "for" and following[1] in {"share", "no", "key"}:
            raise _not_allowed("row locking clauses are not allowed")
        if kind in ("word", "ident") and following == ("punct", "(") and _FORBIDDEN_FUNCTION.fullmatch(text):
            raise _not_allowed(f"function {text}() is not allowed")


def check_read_only(query: str) -> None:
    """Raise ToolError("sql_not_allowed") unless ``query`` is one plain SELECT/WITH statement."""
    if not isinstance(query, str) or not query.strip():
        raise _not_allowed("empty query")
    if len(query) > MAX_QUERY_LENGTH:
        raise _not_allowed(f"query longer than {MAX_QUERY_LENGTH} characters")
    if "\x00" in query:
        raise _not_allowed("NUL characters are not allowed")
    tokens = _strip_trailing_semicolons(tokenize_sql(query))
    _check_first_keyword(tokens)
    _check_words(tokens)


# --- execution -------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """Convert a PostgreSQL value to something JSON can carry."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, datetime.date | datetime.time | datetime.datetime):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


async def _fetch(conn: Any, query: str) -> tuple[list[str], list[list[Any]], bool]:
    async with conn.transaction(readonly=True):
        await conn.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
        await conn.execute("SET LOCAL search_path = demo")
        statement = await conn.prepare(query)
        columns = [attribute.name for attribute in statement.get_attributes()]
        cursor = await statement.cursor()
        records = await cursor.fetch(MAX_ROWS + 1)
    rows = [[jsonable(value) for value in record.values()] for record in records[:MAX_ROWS]]
    return columns, rows, len(records) > MAX_ROWS


async def run_read_only(db: Any, query: str) -> tuple[list[str], list[list[Any]], bool]:
    """Run a checked query on an asyncpg pool (or connection); returns columns, rows, truncated."""
    try:
        if hasattr(db, "acquire"):
            async with db.acquire() as conn:
                return await _fetch(conn, query)
        return await _fetch(db, query)
    except (OSError, asyncpg.exceptions.ConnectionDoesNotExistError) as exc:
        raise ToolError("database_unavailable", f"database connection failed: {exc}") from None
    except asyncpg.exceptions.QueryCanceledError:
        raise ToolError("sql_timeout", f"query exceeded the {STATEMENT_TIMEOUT} statement timeout") from None
    except (
        asyncpg.exceptions.ReadOnlySQLTransactionError,
        asyncpg.exceptions.InsufficientPrivilegeError,
    ) as exc:
        raise ToolError("sql_not_allowed", str(exc), details={"sqlstate": exc.sqlstate}) from None
    except asyncpg.PostgresError as exc:
        raise ToolError("sql_error", str(exc), details={"sqlstate": exc.sqlstate}) from None
    except asyncpg.InterfaceError as exc:
        raise ToolError("sql_error", str(exc)) from None


PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"query": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_LENGTH}},
    "required": ["query"],
    "additionalProperties": False,
}


class SqlQueryTool:
    name = "sql_query"
    description = (
        "Run one read-only SELECT (or WITH) query against the demo schema: customers(id, name, email, "
        f"country, created_at), products(id, name, category, price, stock), orders(id, customer_id, "
        f"product_id, quantity, order_date, status). At most {MAX_ROWS} rows are returned."
    )
    parameters: dict[str, Any] = PARAMETERS
    permission: str | None = "tools:sql"
    timeout_s = 10.0
    category = "data"

    async def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolResult:
        query = params.get("query", "")
        check_read_only(query)
        if ctx.db is None:
            raise ToolError("database_unavailable", "no database is configured for sql_query")
        columns, rows, truncated = await run_read_only(ctx.db, query)
        metadata = {
            "format": "table",
            "query": query,
            "row_count": len(rows),
            "truncated": truncated,
            "source": "postgresql://demo",
        }
        return ToolResult(result={"columns": columns, "rows": rows}, metadata=metadata)
