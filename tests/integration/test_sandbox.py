"""Sandboxed tools against the real stack: sql_query reads the demo schema as its own read-only
role and nothing else, http_api calls only the base URLs the server allows, and a client's
timeout_s never lengthens a run past its tier's limit.

The SQL attacks run twice: through the stack (the guard refuses them with the reason) and straight
on the sandbox role, past the guard (PostgreSQL refuses them, or they find nothing). The time
limit and the fail-closed role run on a private `agentevents serve` beside the native stack, with
a 2-second ceiling for the free tier and a wrong password for the SQL role.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from conftest import world_runner

from agentevents.config import Settings
from agentevents.stack import native
from agentevents.testing import serve_stack
from agentevents.testing.attacks import SQL_READS_OF_OTHERS
from agentevents.testing.httpd import JsonService
from agentevents.testing.profile import Profile
from agentevents.testing.world import StackTarget, World
from agentevents.tools.base import ToolError
from agentevents.tools.sql import SqlSandbox

SCRIPT, SQL, HTTP = "agents:script", "tools:sql", "tools:http"

# Read the archive, the audit log or the server's files: each must be refused or find nothing.
ATTACKS = [
    *SQL_READS_OF_OTHERS,
    'SELECT payload FROM "public" . "events" WHERE payload LIKE \'%\'',
    "SELECT e.payload FROM public.events e JOIN customers c ON true",
    "SELECT (SELECT payload FROM public.events LIMIT 1) AS p",
    "SELECT payload FROM events",
    "SELECT pg_read_file('/etc/hostname')",
    "SELECT pg_ls_dir('.')",
    "SELECT table_to_xml('public.events', true, true, '')",
    "SELECT set_config('search_path', 'public', true), (SELECT count(*) FROM customers)",
    "SELECT usename, passwd FROM pg_shadow",
    "SELECT * FROM information_schema.table_privileges",
]


def owner_url() -> str:
    return native.stack_env()["AE_DATABASE_URL"]


def sandbox_url(database_url: str) -> str:
    return Settings(database_url=database_url).sql_database_url


async def archived_codeword(codeword: str, timeout_s: float = 20.0) -> None:
    """Wait (polling, with a deadline) until the archive holds an event carrying the codeword."""
    conn = await asyncpg.connect(owner_url())
    try:
        deadline = time.monotonic() + timeout_s
        while not await conn.fetchval("SELECT count(*) FROM events WHERE payload LIKE $1", f"%{codeword}%"):
            if time.monotonic() > deadline:
                raise AssertionError(f"no archived event carries {codeword!r} after {timeout_s:g}s")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def archive_a_secret(world: World) -> str:
    """Bob's run puts a codeword into the archive: what the attacks try to read."""
    codeword = "codeword-" + uuid.uuid4().hex[:12]
    bob = await world.connect("Bob")
    accepted = await bob.start_agent("math", f"What is 6*7? {codeword}")
    await bob.wait_run_end(accepted.data["run_id"], 15)
    await archived_codeword(codeword)
    return codeword


def tool_results(client: Any, run_id: str, tool: str) -> list[dict[str, Any]]:
    return [f.data["data"] for f in client.events(run_id=run_id, types=("tool_completed",))
            if f.data["data"].get("tool_name") == tool]


# -- sql_query ---------------------------------------------------------------------------------------

def test_sql_attacks_through_the_stack_are_refused_with_the_reason_and_show_nothing(run):
    async def body(world):
        codeword = await archive_a_secret(world)
        queries = [*ATTACKS, "SELECT id, name FROM customers ORDER BY id LIMIT 2"]
        done, frames = [], []
        for n, start in enumerate(range(0, len(queries), 8)):  # under the per-user tool rate limit
            name = f"Attacker{n}"
            world.person(name, permissions=[SCRIPT, SQL])
            client = await world.connect(name)
            steps = [{"tool": "sql_query", "params": {"query": q}} for q in queries[start:start + 8]]
            accepted = await client.start_agent("scripted", "read the archive", options={"steps": steps})
            await client.wait_run_end(accepted.data["run_id"], 30)
            done += tool_results(client, accepted.data["run_id"], "sql_query")
            frames += client.frames
        assert len(done) == len(queries)
        for query, result in zip(ATTACKS, done, strict=False):
            assert result["status"] == "error", (query, result)
            if query != "SELECT payload FROM events":  # found by no guard: demo has no table events
                assert result["error"]["code"] == "sql_not_allowed", (query, result)
            assert result["result"] is None, (query, result)
        assert done[-1]["status"] == "success"
        assert done[-1]["result"]["rows"] == [[1, "Ada Lovelace"], [2, "Alan Turing"]]
        assert done[0]["error"]["message"].startswith("public.events is outside the demo schema")
        assert not [f.raw for f in frames if codeword in f.raw]
    run(body)


def test_the_sandbox_role_itself_refuses_the_attacks_or_finds_nothing(run):
    async def body(world):
        codeword = await archive_a_secret(world)
        sandbox = SqlSandbox(sandbox_url(owner_url()), owner_dsn=owner_url())
        try:
            columns, rows, _ = await sandbox.run("SELECT id, name, country FROM customers ORDER BY id LIMIT 3")
            assert (columns, rows[0]) == (["id", "name", "country"], [1, "Ada Lovelace", "US"])
            for query in ATTACKS:  # past the guard: PostgreSQL itself is the last word
                try:
                    _columns, rows, _ = await sandbox.run(query)
                except ToolError as exc:
                    assert exc.code in ("sql_not_allowed", "sql_error"), (query, exc.code, exc.message)
                else:
                    assert codeword not in repr(rows), query
            with pytest.raises(ToolError) as refused:
                await sandbox.run("SELECT payload FROM public.events")
            assert "permission denied for schema public" in refused.value.message
            with pytest.raises(ToolError) as refused:
                await sandbox.run("SELECT pg_read_file('/etc/hostname')")
            assert refused.value.code == "sql_not_allowed"
            with pytest.raises(ToolError) as slow:
                await sandbox.run("SELECT pg_sleep(5)")
            assert slow.value.code == "sql_timeout"
            with pytest.raises(ToolError) as write:
                await sandbox.run("INSERT INTO customers (id, name, email, country, created_at) "
                                  "VALUES (999, 'x', 'x@example.com', 'US', now())")
            assert write.value.code == "sql_not_allowed"
        finally:
            await sandbox.close()

        # A session of its own, without the sandbox's settings: search_path and role tricks fail too.
        conn = await asyncpg.connect(sandbox_url(owner_url()))
        try:
            assert await conn.fetchval("SHOW default_transaction_read_only") == "on"
            assert await conn.fetchval("SHOW statement_timeout") == "2s"
            assert await conn.fetchval("SELECT has_schema_privilege('public', 'USAGE')") is False
            with pytest.raises(asyncpg.InsufficientPrivilegeError):  # not even the name resolves
                await conn.fetchval("SELECT has_table_privilege('public.events', 'SELECT')")
            await conn.execute("SET search_path = public, demo")
            # public is skipped without USAGE: the name finds nothing
            with pytest.raises((asyncpg.UndefinedTableError, asyncpg.InsufficientPrivilegeError)):
                await conn.fetch("SELECT payload FROM events")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("SET ROLE agentevents")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch("SELECT lo_import('/etc/hostname')")
            with pytest.raises(asyncpg.PostgresError):
                await conn.execute("CREATE TABLE demo.loot AS SELECT 1")
        finally:
            await conn.close()
    run(body)


def test_the_data_analyst_runs_its_own_query_never_the_clients(run):
    async def body(world):
        world.person("Alice", permissions=[SQL])
        alice = await world.connect("Alice")
        refused = await alice.start_agent("data_analyst", "How many customers do we have?",
                                          options={"sql": "SELECT payload FROM public.events"})
        end = await alice.wait_run_end(refused.data["run_id"], 15)
        assert end.data["data"]["status"] == "failed"
        assert "options.sql must name one of the server's queries" in end.data["data"]["error"]["message"]
        assert not alice.events(run_id=refused.data["run_id"], types=("tool_executing",))

        accepted = await alice.start_agent("data_analyst", "Customers per country?")
        end = await alice.wait_run_end(accepted.data["run_id"], 15)
        assert end.data["data"]["status"] == "completed"
        announced = [f.data["data"] for f in alice.events(run_id=accepted.data["run_id"], types=("tool_executing",))
                     if f.data["data"]["tool_name"] == "sql_query"]
        assert announced[0]["parameters"]["query"].startswith("SELECT country, count(*) AS customers")
        result = tool_results(alice, accepted.data["run_id"], "sql_query")[0]
        assert result["status"] == "success" and result["result"]["columns"] == ["country", "customers"]
    run(body)


# -- http_api ----------------------------------------------------------------------------------------

class Listener:
    """A loopback TCP listener that counts every connection it is offered."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> Listener:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        await writer.drain()
        writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def test_a_user_cannot_point_the_http_tool_at_an_address_of_their_choosing(run, target):
    async def body(world):
        world.person("Alice", permissions=[SCRIPT, HTTP])
        alice = await world.connect("Alice")
        listener = await Listener().start()
        allowed = await JsonService({"/forecast": {"temp": 21}}, target.callback_url).start()
        try:
            chosen = [f"http://127.0.0.1:{listener.port}", f"http://localhost:{listener.port}/",
                      f"http://127.0.0.1:{native.CONTROL_PORT}", f"{target.callback_url}/../"]
            for base in chosen:
                accepted = await alice.start_agent("scripted", "call my service", options={
                    "steps": [{"tool": "http_api", "params": {"path": "/forecast"}}], "http_api_base_url": base})
                await alice.wait_run_end(accepted.data["run_id"], 15)
                result = tool_results(alice, accepted.data["run_id"], "http_api")[0]
                assert (result["status"], result["error"]["code"]) == ("error", "api_host_not_allowed"), result
            assert listener.connections == 0
            assert allowed.requests == []

            accepted = await alice.start_agent("scripted", "call the allowed service", options={
                "steps": [{"tool": "http_api", "params": {"path": "/forecast"}}],
                "http_api_base_url": target.callback_url})
            await alice.wait_run_end(accepted.data["run_id"], 15)
            result = tool_results(alice, accepted.data["run_id"], "http_api")[0]
            assert result["status"] == "success" and result["result"]["body"] == {"temp": 21}
            assert allowed.requests == [("GET", "/forecast")] and listener.connections == 0
        finally:
            await listener.close()
            await allowed.close()
    run(body)


# -- a private `agentevents serve`: the tier's time limit, and a SQL role that cannot log in ------------

POLICY_PORT = 8610 + native.OFFSET
POLICY_HEALTH_PORT = 8611 + native.OFFSET
POLICY_DATABASE = "agentevents_policy"
POLICY_REDIS_DB = 3
FREE_CEILING_S = 2.0


@pytest.fixture(scope="module")
def policy_target(target, tmp_path_factory):
    """`agentevents serve` with AE_TIER_RUN_TIMEOUTS=free=2 and a wrong password for sql_query's role."""
    database_url = native.ensure_database(POLICY_DATABASE)
    right = urlsplit(sandbox_url(database_url))
    wrong = urlunsplit(right._replace(netloc=f"{right.username}:wrong-{secrets.token_hex(4)}@{right.hostname}:"
                                             f"{right.port}"))
    secret = secrets.token_urlsafe(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_")}
    env.update({"AE_HOST": "127.0.0.1", "AE_PORT": str(POLICY_PORT), "AE_HEALTH_PORT": str(POLICY_HEALTH_PORT),
                "AE_SERVER_ID": "policy", "AE_DATABASE_URL": database_url,
                "AE_REDIS_URL": native.stack_env()["AE_REDIS_URL"].rsplit("/", 1)[0] + f"/{POLICY_REDIS_DB}",
                "AE_JWT_SECRET": secret, "AE_TIER_RUN_TIMEOUTS": f"free={FREE_CEILING_S:g}",
                "AE_SQL_DATABASE_URL": wrong, "AE_LOG_LEVEL": "WARNING"})
    log = tmp_path_factory.mktemp("policy") / "serve.log"
    exe = str(Path(sys.executable).with_name("agentevents"))
    with open(log, "ab") as out:
        process = subprocess.Popen([exe, "serve", "--health-port", str(POLICY_HEALTH_PORT)], stdout=out,
                                   stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while not serve_stack.healthy(POLICY_PORT, POLICY_HEALTH_PORT):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"agentevents serve did not become healthy: {log.read_text()[-2000:]}")
            time.sleep(0.2)  # polling its health endpoints, with the deadline above
        yield StackTarget("external", f"ws://127.0.0.1:{POLICY_PORT}/ws", secret, profile=Profile("policy"))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
def on_policy(policy_target):
    yield from world_runner(policy_target)


def test_a_timeout_s_larger_than_the_tiers_does_not_lengthen_a_run(on_policy):
    async def body(world):
        world.person("Alice", permissions=[SCRIPT])
        alice = await world.connect("Alice")
        sent = time.monotonic()
        accepted = await alice.start_agent("scripted", "take my time", options={
            "steps": [{"think": "working"}, {"sleep": 30}], "timeout_s": 3600})
        end = await alice.wait_run_end(accepted.data["run_id"], 15)
        took = time.monotonic() - sent
        assert (end.data["data"]["status"], end.data["data"]["timeout_s"]) == ("timeout", FREE_CEILING_S)
        assert FREE_CEILING_S <= took < FREE_CEILING_S + 1.5, took

        accepted = await alice.start_agent("scripted", "be quick", options={"steps": [{"sleep": 30}], "timeout_s": 0.5})
        end = await alice.wait_run_end(accepted.data["run_id"], 15)
        assert (end.data["data"]["status"], end.data["data"]["timeout_s"]) == ("timeout", 0.5)
    on_policy(body)


def test_sql_fails_closed_when_its_role_cannot_log_in_and_never_uses_the_owner(on_policy):
    async def body(world):
        world.person("Alice", permissions=[SCRIPT, SQL])
        alice = await world.connect("Alice")
        accepted = await alice.start_agent("scripted", "list customers", options={
            "steps": [{"tool": "sql_query", "params": {"query": "SELECT id, name FROM customers"}}]})
        await alice.wait_run_end(accepted.data["run_id"], 15)
        result = tool_results(alice, accepted.data["run_id"], "sql_query")[0]
        assert (result["status"], result["error"]["code"]) == ("error", "database_unavailable"), result
        assert "cannot log in as its read-only role 'agentevents_sql'" in result["error"]["message"]
        assert result["result"] is None

        # The serve's worker did set the role up in its own database: with the right password it reads demo.
        sandbox = SqlSandbox(sandbox_url(native.ensure_database(POLICY_DATABASE)), owner_dsn=owner_url())
        try:
            deadline = time.monotonic() + 20
            while True:  # the worker grants demo once it has installed it
                try:
                    _columns, rows, _ = await sandbox.run("SELECT count(*) FROM customers")
                    break
                except ToolError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
            assert rows == [[20]]
            with pytest.raises(ToolError, match="permission denied for schema public"):
                await sandbox.run("SELECT payload FROM public.events")
        finally:
            await sandbox.close()
    on_policy(body)
