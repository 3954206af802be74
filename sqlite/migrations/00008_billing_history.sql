-- +goose Up
-- The billing settings a customer had before a change of them took effect:
-- a JSON array of {until, anchor, interval, timezone}, oldest first. Cycles
-- before each "until" follow those settings and never move.
ALTER TABLE customers ADD COLUMN billing_history TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE customers DROP COLUMN billing_history;
