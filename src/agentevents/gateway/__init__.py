"""The gateway: WebSocket server with no run state. Hub (one Redis subscriber per gateway),
connections (bounded outbound queues, per-thread cursors), and the message handlers."""
