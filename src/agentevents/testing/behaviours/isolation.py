"""The isolation scenarios' scripted behaviours: agents that name themselves in every thought, so
a thought delivered to the wrong person or attributed to the wrong agent shows."""

from __future__ import annotations

from ..scripts import register, steps


def agent_thought(agent: str, i: int, n: int) -> str:
    """What the named agent thinks at step i of n: its name is in the text, so a mix-up shows."""
    return f"{agent} thought {i} of {n}"


def _thinks_as(n: int, agent: str, pause: float) -> dict:
    items: list[dict] = []
    for i in range(1, n + 1):
        items.append({"think": agent_thought(agent, i, n), "agent": agent})
        if i < n:
            items.append({"sleep": pause})
    return steps(*items)


register('thinks {n:d} times as "{agent}", {pause:g} seconds apart', _thinks_as)


