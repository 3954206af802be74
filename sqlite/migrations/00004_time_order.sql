-- +goose Up
-- Buckets and aggregations are stored in time order, not customer order.
-- A run folds the newest events, which fall in the newest hours and
-- periods of every customer: in time order their rows sit side by side and
-- the run writes few pages; in customer order each customer's rows sat on
-- pages of their own, and the run wrote several pages per customer.

-- Buckets are kept in a rowid table, so that a row of several event types
-- (often over a kilobyte) is stored on its page, not spilled to an
-- overflow page of its own as in a WITHOUT ROWID table. New rows are
-- appended; the unique index finds a row by hour and customer, the other
-- by customer.
CREATE TABLE buckets_by_hour (
    id          INTEGER PRIMARY KEY,
    hour        INTEGER NOT NULL,
    customer_id TEXT    NOT NULL,
    data        BLOB    NOT NULL,
    UNIQUE (hour, customer_id)
);
INSERT INTO buckets_by_hour (hour, customer_id, data) SELECT hour, customer_id, data FROM buckets ORDER BY hour, customer_id;
DROP TABLE buckets;
ALTER TABLE buckets_by_hour RENAME TO buckets;
CREATE INDEX buckets_customer ON buckets (customer_id, hour);

-- One row per period type, period and customer: the rows of one period
-- are side by side.
CREATE TABLE aggregations_by_period (
    period             TEXT    NOT NULL,
    period_key         TEXT    NOT NULL,
    customer_id        TEXT    NOT NULL,
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
    PRIMARY KEY (period, period_key, customer_id)
) WITHOUT ROWID;
INSERT INTO aggregations_by_period (period, period_key, customer_id, period_start, period_end, updated_at, states, complete,
    revision, dirty, published, wh_delivered, wh_attempts, wh_delivered_at, wh_last_error, wh_last_attempt_at, wh_dry_run)
SELECT period, period_key, customer_id, period_start, period_end, updated_at, states, complete,
    revision, dirty, published, wh_delivered, wh_attempts, wh_delivered_at, wh_last_error, wh_last_attempt_at, wh_dry_run
FROM aggregations ORDER BY period, period_key, customer_id;
DROP TABLE aggregations;
ALTER TABLE aggregations_by_period RENAME TO aggregations;
CREATE INDEX aggregations_customer ON aggregations (customer_id, period_start);
CREATE INDEX aggregations_start ON aggregations (period_start, customer_id, period);
CREATE INDEX aggregations_due ON aggregations (period_end) WHERE complete = 0 OR dirty = 1;

-- +goose Down
CREATE TABLE buckets_by_customer (
    customer_id TEXT    NOT NULL,
    hour        INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    PRIMARY KEY (customer_id, hour)
) WITHOUT ROWID;
INSERT INTO buckets_by_customer SELECT customer_id, hour, data FROM buckets;
DROP TABLE buckets;
ALTER TABLE buckets_by_customer RENAME TO buckets;

CREATE TABLE aggregations_by_customer (
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
INSERT INTO aggregations_by_customer (customer_id, period, period_key, period_start, period_end, updated_at, states, complete,
    revision, dirty, published, wh_delivered, wh_attempts, wh_delivered_at, wh_last_error, wh_last_attempt_at, wh_dry_run)
SELECT customer_id, period, period_key, period_start, period_end, updated_at, states, complete,
    revision, dirty, published, wh_delivered, wh_attempts, wh_delivered_at, wh_last_error, wh_last_attempt_at, wh_dry_run
FROM aggregations;
DROP TABLE aggregations;
ALTER TABLE aggregations_by_customer RENAME TO aggregations;
CREATE INDEX aggregations_start ON aggregations (period_start, customer_id, period);
CREATE INDEX aggregations_due ON aggregations (period_end) WHERE complete = 0 OR dirty = 1;
