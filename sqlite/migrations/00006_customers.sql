-- +goose Up
-- Customers' profiles, set with PUT /customers/{id}. A customer seen only
-- through events has no row here: it is found in the buckets (through
-- their unique index on customer and hour) and in the events not yet
-- folded into them, so ingest writes nothing more than it did.
CREATE TABLE customers (
    id               TEXT    PRIMARY KEY,
    name             TEXT    NOT NULL DEFAULT '',
    timezone         TEXT    NOT NULL DEFAULT '',
    billing_anchor   INTEGER,                    -- Unix ms; NULL: calendar cycles
    billing_interval TEXT    NOT NULL DEFAULT 'month',
    metadata         TEXT    NOT NULL DEFAULT '{}',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) WITHOUT ROWID;

-- +goose Down
DROP TABLE customers;
