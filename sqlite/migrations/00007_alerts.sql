-- +goose Up
-- Usage alerts: a threshold on a meter in a period, for one customer or
-- ('') for every customer.
CREATE TABLE alerts (
    id          TEXT    PRIMARY KEY,
    meter       TEXT    NOT NULL,
    period      TEXT    NOT NULL,
    threshold   REAL    NOT NULL,
    customer_id TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- One row per alert, customer and period that reached the threshold: the
-- key is what makes usage.threshold_reached go out once. The notification
-- is recorded in the same transaction.
CREATE TABLE alert_firings (
    alert_id        TEXT    NOT NULL,
    customer_id     TEXT    NOT NULL,
    period          TEXT    NOT NULL,
    period_key      TEXT    NOT NULL,
    value           REAL    NOT NULL,
    fired_at        INTEGER NOT NULL,
    notification_id INTEGER REFERENCES notifications (id),
    PRIMARY KEY (alert_id, customer_id, period, period_key)
) WITHOUT ROWID;

-- Alert deliveries are claimed before the others of their endpoint: this
-- index finds them without reading the endpoint's whole queue.
CREATE INDEX deliveries_alerts_due ON deliveries (endpoint, next_attempt_at)
    WHERE status = 'pending' AND type = 'usage.threshold_reached';

-- The alert evaluator's progress: every event with seq <= alert_watermark
-- has been evaluated.
INSERT INTO meta (key, value) VALUES ('alert_watermark', 0);

-- +goose Down
DELETE FROM meta WHERE key = 'alert_watermark';
DROP INDEX deliveries_alerts_due;
DROP TABLE alert_firings;
DROP TABLE alerts;
