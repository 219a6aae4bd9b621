"""The project's PostgreSQL pools hand a connection back without asyncpg's reset round trip, yet
a transaction left open is still rolled back."""

from __future__ import annotations

import asyncio

from agentevents import store
from agentevents.stack import native


def test_a_released_connection_keeps_its_session_but_not_an_open_transaction(target):
    async def go() -> None:
        pool = await store.create_pool(native.database_url(), max_size=1)
        try:
            async with pool.acquire() as conn:
                await conn.execute("SET application_name = 'kept'")
                pid = await conn.fetchval("SELECT pg_backend_pid()")
            async with pool.acquire() as conn:  # the same connection: the pool holds one
                assert await conn.fetchval("SELECT pg_backend_pid()") == pid
                assert await conn.fetchval("SHOW application_name") == "kept", "reset ran on release"
                tx = conn.transaction()
                await tx.start()
                await conn.execute("CREATE TEMP TABLE left_open (n int)")
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT pg_backend_pid()") == pid
                assert await conn.fetchval("SELECT to_regclass('pg_temp.left_open') IS NULL"), "rolled back"
        finally:
            await pool.close()

    asyncio.run(go())
