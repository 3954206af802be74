-- +goose Up
-- Events are appended in arrival order (seq) and never indexed on a random
-- key: deduplication uses an in-memory index of the client ids, loaded at
-- start, so that ingest writes pages sequentially (see docs/DESIGN.md).
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL,
    idh         INTEGER,           -- hash of a client id; NULL for a generated one
    fp          INTEGER NOT NULL,  -- fingerprint of what the client said
    event_type  TEXT    NOT NULL,
    customer_id TEXT    NOT NULL,
    value       REAL    NOT NULL,
    metadata    TEXT,
    ts          INTEGER NOT NULL,  -- event time, Unix ms
    received_at INTEGER NOT NULL   -- Unix ms
);

-- The aggregation's progress: every event with seq <= watermark is folded
-- in; a run in progress folds (watermark, run_to] customer by customer and
-- has finished every customer up to run_after.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value ANY
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('watermark', 0), ('run_to', 0), ('run_after', '');

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL DEFAULT '',
    scope        TEXT NOT NULL,
    customer_id  TEXT NOT NULL DEFAULT '',
    prefix       TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- One row per customer and UTC hour (hours since 1970-01-01T00:00Z), with
-- the states of the four 15-minute slots of each event type.
CREATE TABLE buckets (
    customer_id TEXT    NOT NULL,
    hour        INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    PRIMARY KEY (customer_id, hour)
) WITHOUT ROWID;

-- One row per customer, period type and period. The key orders a
-- customer's rows of one period type by time, and a run, which goes
-- customer by customer, writes them in key order.
CREATE TABLE aggregations (
    customer_id        TEXT    NOT NULL,
    period             TEXT    NOT NULL,
    period_key         TEXT    NOT NULL,
    period_start       INTEGER NOT NULL,
    period_end         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    states             BLOB    NOT NULL,
    complete           INTEGER NOT NULL DEFAULT 0,
    revision           INTEGER NOT NULL DEFAULT 0,
    dirty              INTEGER NOT NULL DEFAULT 0,
    published          TEXT,
    wh_delivered       INTEGER NOT NULL DEFAULT 0,
    wh_attempts        INTEGER NOT NULL DEFAULT 0,
    wh_delivered_at    INTEGER,
    wh_last_error      TEXT,
    wh_last_attempt_at INTEGER,
    wh_dry_run         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (customer_id, period, period_key)
) WITHOUT ROWID;
CREATE INDEX aggregations_start ON aggregations (period_start, customer_id, period);
CREATE INDEX aggregations_due ON aggregations (period_end) WHERE complete = 0 OR dirty = 1;

CREATE TABLE notifications (
    id             INTEGER PRIMARY KEY,
    type           TEXT    NOT NULL,
    aggregation_id TEXT    NOT NULL,
    customer_id    TEXT    NOT NULL,
    revision       INTEGER NOT NULL,
    payload        BLOB    NOT NULL,
    created_at     INTEGER NOT NULL
);

-- +goose Down
DROP TABLE notifications;
DROP TABLE aggregations;
DROP TABLE buckets;
DROP TABLE api_keys;
DROP TABLE meta;
DROP TABLE events;
