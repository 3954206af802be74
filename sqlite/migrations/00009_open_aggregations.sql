-- +goose Up
-- The open aggregations (complete = 0) by period and end: every customer's
-- period that holds a given instant (its current billing cycle or month,
-- for the customer directory's order by usage) is among them, found
-- without walking the closed periods. Small: a period closes when it ends.
CREATE INDEX aggregations_open ON aggregations (period, period_end) WHERE complete = 0;

-- +goose Down
DROP INDEX aggregations_open;
