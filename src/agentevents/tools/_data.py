"""Read files shipped in ``agentevents/data`` (lazily: nothing is read at import time)."""

from __future__ import annotations

from importlib import resources


def read_data_text(name: str) -> str:
    """Return the text of a shipped data file, e.g. ``corpus.jsonl`` or ``sales.csv``."""
    return resources.files("agentevents").joinpath("data", name).read_text(encoding="utf-8")
