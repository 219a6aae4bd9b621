"""Faults against the real stack: a gateway dies mid-run; the client resumes through HAProxy."""

from __future__ import annotations

import time

from hamcrest import assert_that, equal_to

from agentevents.testing.matchers import follows_lifecycle, gapless_seqs


def test_gateway_killed_mid_run_the_run_finishes_and_the_client_loses_nothing(run, target):
    async def body(world):
        world.person("Alice", permissions=["agents:script"])
        alice = await world.connect("Alice")
        gateway = alice.frames[0].data["server_id"]
        steps = [{"think": f"before {i}"} for i in range(5)] + [{"sleep": 1.5}] + \
                [{"think": f"after {i}"} for i in range(5)] + [{"complete": {"status": "completed", "result": 1,
                                                                            "summary": "survived"}}]
        accepted = await alice.start_agent("scripted", "survive", options={"steps": steps})
        run_id, thread_id = accepted.data["run_id"], accepted.data["thread_id"]
        await alice.wait_for(lambda f: f.data.get("data", {}).get("reasoning") == "before 4", 5, "before 4")

        await target.control.fault("kill", gateway)
        await alice.wait_closed(5)
        seen = alice.last_seq(thread_id)

        deadline = time.monotonic() + 10
        while True:
            try:
                again = await world.connect("Alice")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
        await again.request({"type": "resume", "threads": {thread_id: seen}})
        end = await again.wait_run_end(run_id, 15)
        assert_that(end.data["data"]["status"], equal_to("completed"))
        combined = alice.events(run_id=run_id) + again.events(run_id=run_id)
        assert_that(combined, gapless_seqs(start=1))
        assert_that(combined, follows_lifecycle())
        assert_that(len(combined), equal_to(1 + 10 + 1))
    try:
        run(body)
    finally:
        target.heal()
