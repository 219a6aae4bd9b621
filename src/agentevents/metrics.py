"""Prometheus metrics shared by gateways and workers."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS_PUBLISHED = Counter("ae_events_published_total", "Events appended to thread streams", ["type"])
EVENTS_DELIVERED = Counter("ae_events_delivered_total", "Event frames written to WebSockets")
RUNS_FINISHED = Counter("ae_runs_finished_total", "Runs finished", ["status"])
CONNECTIONS = Gauge("ae_connections", "Open WebSocket connections")
HANDSHAKE_REFUSED = Counter("ae_handshakes_refused_total", "Handshakes refused", ["reason"])
CLIENT_ERRORS = Counter("ae_client_errors_total", "Error frames sent to clients", ["code"])
SLOW_CONSUMERS = Counter("ae_slow_consumers_total", "Connections closed for not reading")
REPLAYS = Counter("ae_replays_total", "Replays served", ["complete"])
DELIVERY_LAG = Histogram("ae_delivery_lag_seconds", "Event timestamp to WebSocket write",
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))
