-- +goose Up
-- The webhook outbox: one row per notification and endpoint. id is the
-- webhook-id header, the same on every try.
CREATE TABLE deliveries (
    rid             INTEGER PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    notification_id INTEGER NOT NULL REFERENCES notifications (id),
    type            TEXT    NOT NULL,
    aggregation_id  TEXT    NOT NULL,
    customer_id     TEXT    NOT NULL,
    revision        INTEGER NOT NULL,
    endpoint        TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_error      TEXT,
    last_status     INTEGER,
    last_attempt_at INTEGER,
    delivered_at    INTEGER,
    dry_run         INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (endpoint, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_aggregation ON deliveries (aggregation_id, revision);
CREATE INDEX deliveries_customer ON deliveries (customer_id, rid);
CREATE INDEX deliveries_status ON deliveries (status, rid);

-- Endpoints that answered 410 Gone.
CREATE TABLE disabled_endpoints (
    endpoint    TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    disabled_at INTEGER NOT NULL
) WITHOUT ROWID;

-- +goose Down
DROP TABLE disabled_endpoints;
DROP TABLE deliveries;
