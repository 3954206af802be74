-- +goose Up
-- Buckets and aggregations move to rowid tables: rows are stored in the
-- order they are first written, and found by customer through a unique
-- index. A run writes its new rows sorted by period (or hour), then
-- customer, and a flush holds many customers, so either way a run
-- appends: a run over the newest events writes the newest periods of every
-- customer side by side (the tables keyed by customer put each customer's
-- rows on pages of their own, and such a run rewrote several pages per
-- customer), and a run catching up on a long history appends flush after
-- flush. A rowid table also keeps a row of several event types (often
-- over a kilobyte) on its page, where a WITHOUT ROWID table spilled it to
-- an overflow page of its own. The existing rows are copied in the order
-- the code writes.
CREATE TABLE buckets_by_arrival (
    id          INTEGER PRIMARY KEY,
    customer_id TEXT    NOT NULL,
    hour        INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    UNIQUE (customer_id, hour)
);
INSERT INTO buckets_by_arrival (customer_id, hour, data) SELECT customer_id, hour, data FROM buckets ORDER BY hour, customer_id;
DROP TABLE buckets;
ALTER TABLE buckets_by_arrival RENAME TO buckets;

CREATE TABLE aggregations_by_arrival (
    id                 INTEGER PRIMARY KEY,
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
    UNIQUE (customer_id, period, period_key)
);
INSERT INTO aggregations_by_arrival (customer_id, period, period_key, period_start, period_end, updated_at, states, complete,
    revision, dirty, published, wh_delivered, wh_attempts, wh_delivered_at, wh_last_error, wh_last_attempt_at, wh_dry_run)
SELECT customer_id, period, period_key, period_start, period_end, updated_at, states, complete,
    revision, dirty, published, wh_delivered, wh_attempts, wh_delivered_at, wh_last_error, wh_last_attempt_at, wh_dry_run
FROM aggregations ORDER BY period, period_key, customer_id;
DROP TABLE aggregations;
ALTER TABLE aggregations_by_arrival RENAME TO aggregations;
-- period_key too: in the WITHOUT ROWID table the index carried it as part
-- of the primary key, and FindAggregations orders and pages by it.
CREATE INDEX aggregations_start ON aggregations (period_start, customer_id, period, period_key);
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
