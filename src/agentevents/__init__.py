"""Agent event delivery over WebSocket: every event an agent emits reaches the right user, in order."""

__version__ = "0.1.0"
