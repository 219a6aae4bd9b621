-- The delivery audit as ranges: per connection and thread, the seqs written to the socket one
-- after another (first_seq..last_seq), between first_at and last_at. An event is traced to the
-- connections that got it through its (thread_id, seq). The older per-frame table `deliveries`
-- keeps what it holds and is no longer written.
CREATE TABLE IF NOT EXISTS delivery_ranges (
    id            bigserial PRIMARY KEY,
    thread_id     text NOT NULL,
    first_seq     bigint NOT NULL,
    last_seq      bigint NOT NULL,
    user_id       text NOT NULL,
    connection_id text NOT NULL,
    server_id     text NOT NULL,
    first_at      timestamptz NOT NULL,
    last_at       timestamptz NOT NULL,
    CHECK (first_seq >= 1 AND first_seq <= last_seq)
);
CREATE INDEX IF NOT EXISTS delivery_ranges_thread ON delivery_ranges (thread_id, first_seq);
CREATE INDEX IF NOT EXISTS delivery_ranges_user ON delivery_ranges (user_id, first_at);
