"""What a user with database access might try in order to read other users' conversations, and
what a user might try in order to make a tool call an address of their choosing. Shared by the
specification (T117, T058) and the integration tests of the sandboxed tools.

Each query names the archive, the delivery audit or a way around the demo schema; the protocol's
answer to every one is ``sql_not_allowed`` (docs/conformance.md §4.7).
"""

from __future__ import annotations

# At most 8, so that one run stays under the per-user tool rate limit (10 calls) with a real query beside them.
SQL_READS_OF_OTHERS = [
    "SELECT payload FROM public.events",
    'SELECT payload FROM "public"."events"',
    "WITH x AS (SELECT payload FROM public.events) SELECT * FROM x",
    "SELECT * FROM customers WHERE name IN (SELECT payload FROM public.events)",
    "SELECT user_id, connection_id FROM public.deliveries",
    "SELECT query_to_xml('SELECT payload FROM public.events', true, true, '')",
]
