"""Benchmark: how fast one run alone streams its events to its user, through HAProxy.

    .venv/bin/python benchmarks/one_run.py --calls 4000

One enterprise-tier user runs the conformance agent with ``--calls`` echo tool calls back to
back (two events each) and counts, at the client, the events delivered per second from the
first to ``agent_completed``. Needs the native stack up.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from agentevents.stack import native
from agentevents.testing.client import RecordingClient
from agentevents.testing.tokens import TokenFactory


async def one_run(calls: int) -> tuple[int, float, str]:
    secret = native.read_secret()
    if not secret:
        sys.exit("one_run: the native stack is not up (agentevents stack up)")
    token = TokenFactory(secret=secret).token(TokenFactory.fresh_user("bench"), permissions=["agents:script"],
                                              tier="enterprise")
    client = RecordingClient(f"ws://127.0.0.1:{native.LB_PORT}/ws", token, compression=None)
    await client.connect()
    try:
        steps = [{"repeat": calls, "step": {"tool": "echo", "params": {"value": 1}}}]
        accepted = await client.start_agent("scripted", "one run alone", options={"steps": steps})
        end = await client.wait_run_end(accepted.data["run_id"], 300)
        events = client.events(run_id=accepted.data["run_id"])
        return len(events), end.at - events[0].at, end.data["data"]["status"]
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=4000, help="echo tool calls in the run (default 4000)")
    args = parser.parse_args()
    count, seconds, status = asyncio.run(one_run(args.calls))
    print(f"one run alone: {count} events in {seconds:.2f} s = {count / seconds:,.0f} events/s (status {status})")


if __name__ == "__main__":
    main()
