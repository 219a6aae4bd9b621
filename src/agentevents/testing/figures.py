"""Measured figures: the numbers a scenario measured (latencies, counts, memory), attached to it.

A step records a figure with ``record_figure(context, "agent_started 8.2 ms after the request —
limit 500 ms")``. The one call puts the same sentence in three places: the scenario's captured
output (JUnit ``system-out``), the behave attachment stream (the run's records, from which the
console progress lines and the HTML report are written), and the scenario's own list
(``context.world.figures``), so every report shows the same figure.
"""

from __future__ import annotations

from typing import Any

FIGURE_MIME = "text/x-agentevents-figure"
PREFIX = "measured: "


def record_figure(context: Any, text: str) -> str:
    """Attach one measured figure to the running scenario; returns the text."""
    text = " ".join(text.split())  # one line, however it was built
    if not text:
        raise ValueError("a figure needs a text")
    print(f"{PREFIX}{text}")
    world = getattr(context, "world", None)
    if world is not None:
        world.figures.append(text)
    attach = getattr(context, "attach", None)
    if attach is not None:
        attach(FIGURE_MIME, text.encode("utf-8"))
    return text
