"""``sql_query``: read-only SQL over the ``demo`` schema in PostgreSQL, as a role that can read
nothing else.

Defence in depth, each layer enough on its own for what it guards:

1. a lexical guard (:func:`check_read_only`) admits one SELECT/WITH statement that names nothing
   outside ``demo``: no other schema (``public.events``), no system catalog or ``pg_*`` function,
   no function that reads files, settings or runs SQL text of its own;
2. the query runs on the tool's own small pool (:class:`SqlSandbox`), logged in as its own role
   (``<owner>_sql``, :func:`install_sql_role`): ``USAGE`` on schema ``demo`` and ``SELECT`` on its
   tables, nothing on ``public`` (the default ``PUBLIC`` privileges on it are revoked), read-only by
   default, a short ``statement_timeout`` and ``search_path = demo`` (role and session settings). Each
   new connection checks that it is that role and can read no table outside ``demo`` before it is
   used; if not, or if the role cannot log in, the tool fails (``database_unavailable``) — it never
   falls back to the archive's owner;
3. every query runs in a READ ONLY transaction with the statement timeout and ``search_path = demo``
   set again, and at most :data:`MAX_ROWS` rows are returned.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import decimal
import logging
import math
import re
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg

from agentevents.tools.base import ToolContext, ToolError, ToolResult

log = logging.getLogger("agentevents.tools")

MAX_ROWS = 200
MAX_QUERY_LENGTH = 10_000
STATEMENT_TIMEOUT = "2s"
DEMO_SCHEMA = "demo"
DEMO_TABLES = frozenset({"customers", "products", "orders"})

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


async def install_demo_schema(conn: Any, sql_database_url: str = "") -> None:
    """Create and fill the ``demo`` schema; idempotent and safe to run concurrently. With
    ``sql_database_url`` also create or refresh sql_query's role (:func:`install_sql_role`).

    ``conn`` is an asyncpg connection. The script is sent as one simple query, so it runs as a
    single implicit transaction.
    """
    await conn.execute(DEMO_SCHEMA_SQL)
    if sql_database_url:
        await install_sql_role(conn, sql_database_url)


# --- the role ---------------------------------------------------------------------------------

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
ROLE_ATTRIBUTES = ("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS "
                   "CONNECTION LIMIT 20")
# Set on the role, so even a session that forgets its own settings is read-only and short.
ROLE_SETTINGS = {"search_path": DEMO_SCHEMA, "default_transaction_read_only": "on",
                 "statement_timeout": STATEMENT_TIMEOUT, "idle_in_transaction_session_timeout": "10s"}


def quote_literal(text: str) -> str:
    """A SQL string literal (standard_conforming_strings, the default since PostgreSQL 9.1)."""
    if "\x00" in text:
        raise ValueError("NUL in a SQL literal")
    return "'" + text.replace("'", "''") + "'"


def sql_role_name(sql_database_url: str) -> str:
    """The role of sql_query's DSN; ValueError unless it is a plain lower-case name."""
    role = unquote(urlsplit(sql_database_url).username or "")
    if not _ROLE_NAME.match(role):
        raise ValueError(f"the SQL role {role!r} must be a lower-case name of letters, digits and _")
    return role


def role_script(role: str, password: str | None) -> str:
    """SQL that creates the role if it is missing and (re)sets its attributes, password and
    settings. Needs a superuser (or CREATEROLE with admin rights on the role)."""
    if not _ROLE_NAME.match(role):
        raise ValueError(f"not a role name: {role!r}")
    secret = "NULL" if password is None else quote_literal(password)
    lines = [f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {quote_literal(role)}) "
             f"THEN CREATE ROLE {role}; END IF; END$$;",
             f"ALTER ROLE {role} WITH {ROLE_ATTRIBUTES} PASSWORD {secret};"]
    lines += [f"ALTER ROLE {role} SET {name} = {quote_literal(value)};" for name, value in ROLE_SETTINGS.items()]
    return "\n".join(lines) + "\n"


def grants_script(role: str) -> str:
    """SQL, run in the application's database by the owner of schema ``demo``: the role may use
    ``demo`` and read its tables, and nothing in ``public`` (the default PUBLIC privileges on the
    schema are revoked; the owner keeps its own)."""
    if not _ROLE_NAME.match(role):
        raise ValueError(f"not a role name: {role!r}")
    return (f"REVOKE ALL ON SCHEMA public FROM PUBLIC;\n"
            f"REVOKE ALL ON SCHEMA public FROM {role};\n"
            f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role};\n"
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role};\n"
            f"GRANT USAGE ON SCHEMA {DEMO_SCHEMA} TO {role};\n"
            f"GRANT SELECT ON ALL TABLES IN SCHEMA {DEMO_SCHEMA} TO {role};\n")


async def install_sql_role(conn: Any, sql_database_url: str) -> bool:
    """Create or refresh sql_query's role when this connection may (superuser or CREATEROLE), then
    grant it ``demo`` and take ``public`` away. Without those rights the role must exist already
    (the native stack makes it as the superuser); if it does not, sql_query stays unavailable and
    this says so in the log. Returns whether the role exists and has its grants."""
    from agentevents.config import sql_role_credentials
    role = sql_role_name(sql_database_url)
    _role, password = sql_role_credentials(sql_database_url)
    if role == await conn.fetchval("SELECT current_user"):
        log.error("sql_role_refused role=%s reason=it is the archive's owner; sql_query stays unavailable", role)
        return False
    may_manage = await conn.fetchval(
        "SELECT rolsuper OR rolcreaterole FROM pg_catalog.pg_roles WHERE rolname = current_user")
    if may_manage:
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('agentevents.sql_role'))")
                await conn.execute(role_script(role, password))
        except asyncpg.InsufficientPrivilegeError as exc:
            log.warning("sql_role_not_refreshed role=%s error=%s", role, exc)
    if not await conn.fetchval("SELECT true FROM pg_catalog.pg_roles WHERE rolname = $1", role):
        log.warning("sql_role_missing role=%s: sql_query stays unavailable until the role exists "
                    "(created by a superuser, or by a worker whose role may create roles)", role)
        return False
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('agentevents.sql_role'))")
            await conn.execute(grants_script(role))
    except asyncpg.InsufficientPrivilegeError as exc:
        log.warning("sql_role_grants_failed role=%s error=%s", role, exc)
        return False
    return True


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
    r"|pg_logical_\w+|pg_replication_\w+|pg_file_\w+|nextval|setval|txid_current|pg_current_xact_id"
    # settings, SQL text run by a function (outside this guard), object lookups by name
    r"|current_setting|table_to_xml\w*|schema_to_xml\w*|database_to_xml\w*|ts_stat|ts_rewrite"
    r"|to_reg\w+|has_\w+_privilege|row_security_active|inet_server_\w+|inet_client_\w+)$"
)
# Schemas that are never the demo data, whatever the query calls its aliases.
_OTHER_SCHEMAS = frozenset({"public", "information_schema", "pg_catalog", "pg_toast"})
# Object-identifier types turn a string into a reference to any table or function.
_OBJECT_LOOKUPS = frozenset({"regclass", "regproc", "regprocedure", "regoper", "regoperator", "regtype",
                             "regnamespace", "regrole", "regcollation", "regconfig", "regdictionary"})
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
    if ch in "uU" and query[i + 1 : i + 3] in ('&"', "&'"):
        raise _not_allowed("Unicode-escaped names and strings (U&) are not allowed")
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


def _is_name(token: Token) -> bool:
    return token[0] in ("word", "ident")


def _check_names(tokens: list[Token]) -> None:
    """Nothing outside the demo schema: no system catalog or ``pg_*`` name, no object lookup by
    name, and a qualified name only under ``demo``, a demo table, or an alias or CTE the query
    declares itself (``c.name`` after ``FROM customers c``)."""
    def at(index: int) -> Token:
        return tokens[index] if 0 <= index < len(tokens) else ("", "")

    declared = {text for index, (kind, text) in enumerate(tokens)
                if kind in ("word", "ident") and at(index + 1) not in (("punct", "."), ("punct", "("))
                and at(index - 1) != ("punct", ".")}
    for index, (kind, text) in enumerate(tokens):
        if kind not in ("word", "ident"):
            continue
        if text.startswith("pg_") or text in _OTHER_SCHEMAS - {"public"}:
            raise _not_allowed(f"{text} is a system catalog or function: only the {DEMO_SCHEMA} schema may be read")
        if text in _OBJECT_LOOKUPS:
            raise _not_allowed(f"{text} looks objects up by name: only the {DEMO_SCHEMA} schema may be read")
        qualifies = at(index + 1) == ("punct", ".") and (_is_name(at(index + 2)) or at(index + 2) == ("punct", "*"))
        if not qualifies or at(index - 1) == ("punct", "."):
            continue
        inside = text == DEMO_SCHEMA or text in DEMO_TABLES or (text in declared and text not in _OTHER_SCHEMAS)
        if not inside:
            name = f"{text}.{at(index + 2)[1]}"
            raise _not_allowed(f"{name} is outside the {DEMO_SCHEMA} schema: only its tables "
                               f"({', '.join(sorted(DEMO_TABLES))}) may be read")


def check_read_only(query: str) -> None:
    """Raise ToolError("sql_not_allowed") unless ``query`` is one plain SELECT/WITH statement that
    names nothing outside the demo schema."""
    if not isinstance(query, str) or not query.strip():
        raise _not_allowed("empty query")
    if len(query) > MAX_QUERY_LENGTH:
        raise _not_allowed(f"query longer than {MAX_QUERY_LENGTH} characters")
    if "\x00" in query:
        raise _not_allowed("NUL characters are not allowed")
    tokens = _strip_trailing_semicolons(tokenize_sql(query))
    _check_first_keyword(tokens)
    _check_words(tokens)
    _check_names(tokens)


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
        await conn.execute(f"SET LOCAL search_path = {DEMO_SCHEMA}")
        statement = await conn.prepare(query)
        columns = [attribute.name for attribute in statement.get_attributes()]
        cursor = await statement.cursor()
        records = await cursor.fetch(MAX_ROWS + 1)
    rows = [[jsonable(value) for value in record.values()] for record in records[:MAX_ROWS]]
    return columns, rows, len(records) > MAX_ROWS


async def run_read_only(conn: Any, query: str) -> tuple[list[str], list[list[Any]], bool]:
    """Run a checked query on an asyncpg connection; returns columns, rows, truncated."""
    try:
        return await _fetch(conn, query)
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


# --- the sandbox pool ------------------------------------------------------------------------

CONNECT_TIMEOUT_S = 5.0
SESSION_SETTINGS = {"search_path": DEMO_SCHEMA, "statement_timeout": STATEMENT_TIMEOUT,
                    "default_transaction_read_only": "on", "application_name": "agentevents-sql_query"}
# Run by every new connection of the sandbox before its first query.
SESSION_CHECK = """
SELECT current_user AS role,
       r.rolsuper OR r.rolbypassrls OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication AS privileged,
       EXISTS (SELECT FROM pg_catalog.pg_auth_members m WHERE m.member = r.oid) AS member_of_roles,
       (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
           AND n.nspname NOT IN ('demo', 'pg_catalog', 'information_schema')
           AND n.nspname !~ '^pg_(toast|temp_)'
           AND pg_catalog.has_any_column_privilege(c.oid, 'SELECT')) AS readable_elsewhere
FROM pg_catalog.pg_roles r WHERE r.rolname = current_user
"""


class SandboxRefused(Exception):
    """A connection that is not the read-only role it should be; it is closed unused."""


def session_problem(row: Any, role: str) -> str | None:
    """Why a session (the row of :data:`SESSION_CHECK`) may not run sql_query's queries, or None."""
    if row is None or row["role"] != role:
        return f"the session is not the role {role!r}"
    if row["privileged"]:
        return f"the role {role!r} has privileges beyond reading (superuser, createrole, createdb, bypassrls …)"
    if row["member_of_roles"]:
        return f"the role {role!r} is a member of other roles"
    if row["readable_elsewhere"]:
        return f"the role {role!r} can read {row['readable_elsewhere']} table(s) outside the {DEMO_SCHEMA} schema"
    return None


async def check_session(conn: Any, role: str) -> None:
    problem = session_problem(await conn.fetchrow(SESSION_CHECK), role)
    if problem:
        raise SandboxRefused(problem)


class SqlSandbox:
    """sql_query's own small pool, logged in as its read-only role, never as the archive's owner.

    No connection is made until a query needs one, and each new connection passes
    :func:`check_session` first. Every way it can fail ends in a ToolError (``database_unavailable``
    when the role cannot be used): the query then does not run at all."""

    def __init__(self, dsn: str, *, owner_dsn: str = "", max_size: int = 3) -> None:
        self.dsn = dsn
        self.owner_dsn = owner_dsn
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._creating: asyncio.Lock | None = None

    def problem(self) -> str | None:
        """Why this DSN cannot be the sandbox, or None."""
        if not self.dsn:
            return "no DSN is configured for it"
        try:
            role = sql_role_name(self.dsn)
        except ValueError as exc:
            return str(exc)
        owner = unquote(urlsplit(self.owner_dsn).username or "") if self.owner_dsn else ""
        if owner and role == owner:
            return f"its role {role!r} is the archive's owner"
        return None

    async def _get_pool(self) -> asyncpg.Pool:
        if self._creating is None:
            self._creating = asyncio.Lock()
        async with self._creating:
            if self._pool is None:
                role = sql_role_name(self.dsn)

                async def init(conn: Any) -> None:
                    await check_session(conn, role)

                self._pool = await asyncpg.create_pool(
                    self.dsn, min_size=0, max_size=self.max_size, timeout=CONNECT_TIMEOUT_S,
                    server_settings=SESSION_SETTINGS, init=init, max_inactive_connection_lifetime=60)
        return self._pool

    async def run(self, query: str) -> tuple[list[str], list[list[Any]], bool]:
        """Run a checked query as the sandbox role; returns columns, rows, truncated."""
        problem = self.problem()
        if problem:
            raise ToolError("database_unavailable", f"sql_query's read-only role cannot be used: {problem}; "
                            "the query was not run")
        role = sql_role_name(self.dsn)
        pool = await self._get_pool()
        try:
            conn = await pool.acquire()
        except SandboxRefused as exc:
            log.error("sql_sandbox_refused role=%s reason=%s", role, exc)
            raise ToolError("database_unavailable", f"sql_query's read-only role cannot be used: {exc}; "
                            "the query was not run") from None
        except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError,
                asyncpg.InvalidCatalogNameError) as exc:
            log.warning("sql_sandbox_login_failed role=%s error=%s", role, exc)
            raise ToolError("database_unavailable", f"sql_query cannot log in as its read-only role {role!r}: "
                            f"{exc}; the query was not run") from None
        except (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.TooManyConnectionsError,
                asyncpg.CannotConnectNowError, asyncpg.InterfaceError) as exc:
            raise ToolError("database_unavailable", f"database connection failed: {exc}") from None
        try:
            return await run_read_only(conn, query)
        finally:
            await pool.release(conn)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), 5)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            pool.terminate()


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
        if not isinstance(ctx.db, SqlSandbox):  # never any other pool, such as the archive owner's
            raise ToolError("database_unavailable", "sql_query runs only as its read-only role, and none is "
                            "configured; the query was not run")
        columns, rows, truncated = await ctx.db.run(query)
        metadata = {
            "format": "table",
            "query": query,
            "row_count": len(rows),
            "truncated": truncated,
            "source": "postgresql://demo",
        }
        return ToolResult(result={"columns": columns, "rows": rows}, metadata=metadata)
