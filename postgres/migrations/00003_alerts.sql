-- +goose Up
-- Usage alerts: a threshold on a meter in a period, for one customer or
-- ('') for every customer.
CREATE TABLE alerts (
    id          text COLLATE "C" PRIMARY KEY,
    meter       text COLLATE "C" NOT NULL,
    period      text COLLATE "C" NOT NULL,
    threshold   double precision NOT NULL,
    customer_id text COLLATE "C" NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL
);

-- One row per alert, customer and period that reached the threshold: the
-- primary key is what makes usage.threshold_reached go out once, whichever
-- replica evaluates. The notification is recorded in the same transaction.
CREATE TABLE alert_firings (
    alert_id        text COLLATE "C" NOT NULL,
    customer_id     text COLLATE "C" NOT NULL,
    period          text COLLATE "C" NOT NULL,
    period_key      text COLLATE "C" NOT NULL,
    value           double precision NOT NULL,
    fired_at        timestamptz NOT NULL,
    notification_id bigint REFERENCES notifications (id),
    PRIMARY KEY (alert_id, customer_id, period, period_key)
);

-- Alert deliveries are claimed before the others of their endpoint: this
-- index finds them without reading the endpoint's whole queue.
CREATE INDEX deliveries_alerts_due ON deliveries (endpoint, next_attempt_at, rid)
    WHERE status = 'pending' AND type = 'usage.threshold_reached';

-- The alert evaluator's progress, one row: every event with seq <=
-- watermark has been evaluated. A row of its own, not a column of meta:
-- an aggregation transaction holds meta's row for as long as it writes,
-- and alerts must not wait for it.
CREATE TABLE alert_progress (
    one       boolean PRIMARY KEY DEFAULT true CHECK (one),
    watermark bigint NOT NULL DEFAULT 0
);
INSERT INTO alert_progress DEFAULT VALUES;

-- +goose Down
DROP TABLE alert_progress;
DROP INDEX deliveries_alerts_due;
DROP TABLE alert_firings;
DROP TABLE alerts;
