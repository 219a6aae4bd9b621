"""The archive is complete: every event a client received reaches PostgreSQL, byte for byte,
after a worker is SIGKILLed with events not yet archived, while PostgreSQL is paused, across a
Redis restart, and when a row holds what PostgreSQL cannot store."""

from __future__ import annotations

import json
import urllib.request

from hamcrest import assert_that, equal_to, greater_than_or_equal_to

from agentevents.stack import native
from agentevents.testing.control import StoreUnavailable
from agentevents.testing.polling import poll
from agentevents.testing.tokens import TokenFactory
from agentevents.testing.world import Person

SCRIPT = ["agents:script"]


def thinking_steps(before: int, pause: float, after: int) -> dict:
    steps = [{"think": f"before {i}"} for i in range(before)] + [{"sleep": pause}]
    steps += [{"think": f"after {i}"} for i in range(after)]
    return {"steps": steps + [{"complete": {"status": "completed", "result": before + after, "summary": "done"}}]}


async def archived(control, thread_id: str, received: dict[int, str], timeout_s: float = 30.0) -> dict[int, str]:
    """Poll the archive until it holds every received seq (or the deadline passes); seq → payload."""
    async def fetch() -> dict[int, str]:
        try:
            return {row["seq"]: row["payload"] for row in await control.archived_events(thread_id)}
        except StoreUnavailable:
            return {}
    return await poll(fetch, lambda rows: set(received) <= set(rows), timeout_s, interval_s=0.3)


def received_payloads(client, thread_id: str) -> dict[int, str]:
    return {f.data["seq"]: f.raw for f in client.events(thread_id=thread_id)}


def test_a_worker_killed_while_postgres_is_paused_loses_nothing_from_the_archive(run, target):
    async def body(world):
        control = target.control
        world.person("Alice", permissions=SCRIPT)
        alice = await world.connect("Alice")
        await control.fault("pause", "postgres")
        accepted = await alice.start_agent("scripted", "archive me", options=thinking_steps(15, 30, 0))
        run_id, thread_id = accepted.data["run_id"], accepted.data["thread_id"]
        await alice.wait_for(lambda f: f.data.get("data", {}).get("reasoning") == "before 14", 10, "before 14")
        worker = await control.worker_of_run(run_id)
        assert worker, "the run has a worker"
        await control.fault("kill", worker)  # its archiver had read these events: PostgreSQL was paused
        await control.fault("resume", "postgres")
        end = await alice.wait_run_end(run_id, 40)  # the reaper ends the lost run
        assert_that(end.data["data"]["status"], equal_to("failed"))
        received = received_payloads(alice, thread_id)
        assert_that(len(received), greater_than_or_equal_to(1 + 15 + 2))
        rows = await archived(control, thread_id, received)
        assert_that(sorted(rows), equal_to(sorted(received)))
        for seq, raw in received.items():
            assert_that(rows[seq], equal_to(raw))  # a replay from the archive is what live delivery sent
    try:
        run(body)
    finally:
        target.heal()


def test_events_published_around_a_redis_restart_while_postgres_is_paused_are_all_archived(run, target):
    async def body(world):
        control = target.control
        world.person("Alice", permissions=SCRIPT)
        alice = await world.connect("Alice")
        await control.fault("pause", "postgres")
        accepted = await alice.start_agent("scripted", "archive me", options=thinking_steps(10, 3, 10))
        run_id, thread_id = accepted.data["run_id"], accepted.data["thread_id"]
        await alice.wait_for(lambda f: f.data.get("data", {}).get("reasoning") == "before 9", 10, "before 9")
        await control.fault("restart", "redis")
        await control.fault("resume", "postgres")
        seen = alice.last_seq(thread_id)
        again = await world.connect("Alice")
        await again.request({"type": "resume", "threads": {thread_id: seen}})
        end = await again.wait_run_end(run_id, 30)
        assert_that(end.data["data"]["status"], equal_to("completed"))
        received = {**received_payloads(alice, thread_id), **received_payloads(again, thread_id)}
        assert_that(sorted(received), equal_to(list(range(1, 1 + 20 + 2))))
        rows = await archived(control, thread_id, received)
        assert_that(rows, equal_to(received))
    try:
        run(body)
    finally:
        target.heal()


def test_a_user_id_postgres_cannot_store_holds_back_nobody_elses_archive(run, target):
    async def body(world):
        control = target.control
        world.people["Mallory"] = Person("Mallory", TokenFactory.fresh_user("mal\x00lory"), permissions=SCRIPT)
        world.person("Alice", permissions=SCRIPT)
        mallory = await world.connect("Mallory")
        alice = await world.connect("Alice")
        bad = await mallory.start_agent("scripted", "nul \x00 inside", options=thinking_steps(3, 0, 0))
        good = await alice.start_agent("scripted", "plain", options=thinking_steps(3, 0, 0))
        await mallory.wait_run_end(bad.data["run_id"])
        await alice.wait_run_end(good.data["run_id"])
        for client, accepted in ((alice, good), (mallory, bad)):
            received = received_payloads(client, accepted.data["thread_id"])
            rows = await archived(control, accepted.data["thread_id"], received, timeout_s=15)
            assert_that(rows, equal_to(received))
    run(body)
    for name, port in native.WORKERS.items():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            report = json.loads(answer.read())
        assert_that((name, report["status"], report["archive"]["stuck"], report["archive"]["rejected"]),
                    equal_to((name, "ok", False, 0)))
