"""Integration tests run against the real native stack (started here if it is not up)."""

from __future__ import annotations

import asyncio
from typing import TypeVar

import pytest

from agentevents.testing.world import StackTarget, World

T = TypeVar("T")


@pytest.fixture(scope="session")
def target():
    stack = StackTarget.from_userdata({"stack": "native"})
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture
def run(target):
    """Run one test body in one event loop, with a World whose sockets are closed after."""
    yield from world_runner(target)


def world_runner(target):
    """The body of a ``run``-like fixture for any target: yields ``go(factory)``."""
    loop = asyncio.new_event_loop()
    world = World(target)

    def go(factory) -> T:
        async def body() -> T:
            try:
                return await factory(world)
            finally:
                await world.close()
        return loop.run_until_complete(body())

    yield go
    loop.close()


