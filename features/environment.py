"""The specification's environment: ONE event loop for the whole run, the backend under test,
and fresh users, conversations and sockets per scenario.

The backend is described by a target profile (``features/targets/*.toml``, see
``agentevents.testing.profile``):

  -D target=features/targets/native.toml   (default) start the native stack if it is not up; stop it after
  -D target=features/targets/docker.toml   the docker-compose.yml topology (AE_JWT_SECRET set)
  -D target=yours.toml                      any backend speaking docs/protocol.md (see example.toml)
  -D stack=external -D ws_url=ws://host:8000/ws -D jwt_secret=...   the native profile, seen from outside

A scenario tagged with a capability (``@fault_control``, ``@conformance_agent`` …) the target does
not offer is skipped, and the reason says which capability and what for.
"""

from __future__ import annotations

import asyncio
import os
import sys

from agentevents.testing import capabilities
from agentevents.testing.world import StackTarget, TargetError, World


def before_all(context):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    context.loop = loop
    try:
        target = StackTarget.from_userdata(dict(context.config.userdata))
        target.start()
    except TargetError as exc:
        # Nothing ran yet and nothing can: one line, not a hook traceback per scenario.
        sys.stdout.flush()
        sys.stderr.write(f"specification: {exc}\n")
        sys.stderr.flush()
        os._exit(2)
    context.target = target


def before_scenario(context, scenario):
    absent = capabilities.missing(scenario.effective_tags, context.target.capabilities)
    if absent:
        scenario.skip(capabilities.skip_reason(absent))
        return
    context.world = World(context.target, scenario.name)
    if "conformance_agent" in scenario.effective_tags:
        # The scenario drives the scripted (conformance) agent: every person in it may start it.
        from agentevents.auth import PERM_SCRIPT
        context.world.default_permissions.append(PERM_SCRIPT)


def after_scenario(context, scenario):
    world = getattr(context, "world", None)
    if world is not None:
        context.loop.run_until_complete(world.close())
        if "fault_control" in scenario.effective_tags:
            context.target.heal()


def after_all(context):
    context.target.stop()
    context.loop.run_until_complete(context.loop.shutdown_asyncgens())
    context.loop.close()
