"""A reusable testing library for any backend that speaks the protocol: tokens, a recording
WebSocket client, and PyHamcrest matchers for events."""

from .client import Frame, RecordingClient
from .tokens import TokenFactory

__all__ = ["Frame", "RecordingClient", "TokenFactory"]
