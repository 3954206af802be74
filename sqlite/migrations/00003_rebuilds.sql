-- +goose Up
-- Buckets whose events were deleted after they were folded in: the next
-- aggregation run rebuilds them from the events that remain, and the
-- periods that hold them.
CREATE TABLE rebuilds (
    customer_id TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    hour        INTEGER NOT NULL,
    PRIMARY KEY (customer_id, event_type, hour)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE rebuilds;
