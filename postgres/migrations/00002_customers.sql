-- +goose Up
-- Customers' profiles, set with PUT /customers/{id}. A customer seen only
-- through events has no row here: it is found in the buckets (through
-- their primary key, which starts with the customer) and in the events
-- not yet folded into them, so ingest writes nothing more than it did.
CREATE TABLE customers (
    id               text COLLATE "C" PRIMARY KEY,
    name             text COLLATE "C" NOT NULL DEFAULT '',
    timezone         text NOT NULL DEFAULT '',
    billing_anchor   timestamptz,               -- NULL: calendar cycles
    billing_interval text NOT NULL DEFAULT 'month',
    metadata         text NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- +goose Down
DROP TABLE customers;
