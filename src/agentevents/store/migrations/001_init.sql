-- Threads, runs, the full event archive, and the audit log of deliveries.
CREATE TABLE IF NOT EXISTS threads (
    thread_id   text PRIMARY KEY,
    user_id     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS threads_user ON threads (user_id);

CREATE TABLE IF NOT EXISTS runs (
    run_id       text PRIMARY KEY,
    thread_id    text NOT NULL,
    user_id      text NOT NULL,
    agent_type   text NOT NULL,
    status       text NOT NULL,
    worker_id    text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    duration_ms  integer
);
CREATE INDEX IF NOT EXISTS runs_thread ON runs (thread_id);

-- payload is the exact JSON text that was published, so a replay from the archive is
-- byte-for-byte what live delivery sent.
CREATE TABLE IF NOT EXISTS events (
    thread_id  text NOT NULL,
    seq        bigint NOT NULL,
    event_id   text NOT NULL UNIQUE,
    run_id     text NOT NULL,
    user_id    text NOT NULL,
    type       text NOT NULL,
    payload    text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (thread_id, seq)
);
CREATE INDEX IF NOT EXISTS events_run ON events (run_id);

CREATE TABLE IF NOT EXISTS deliveries (
    id            bigserial PRIMARY KEY,
    event_id      text NOT NULL,
    thread_id     text NOT NULL,
    seq           bigint NOT NULL,
    user_id       text NOT NULL,
    connection_id text NOT NULL,
    server_id     text NOT NULL,
    delivered_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries (event_id);
CREATE INDEX IF NOT EXISTS deliveries_user ON deliveries (user_id, delivered_at);

CREATE TABLE IF NOT EXISTS user_preferences (
    user_id     text PRIMARY KEY,
    preferences jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
