-- +goose Up
-- Every text column that is compared or sorted uses the "C" collation:
-- byte order, as in Go and in SQLite, so that the aggregator's order of
-- customers is the database's. Times are timestamptz at millisecond
-- precision, as the API shows them.

-- Events are appended in arrival order (seq). A commit of events holds a
-- transaction-level advisory lock, so seq order is commit order and the
-- aggregation's watermark never passes an event still to be committed.
CREATE TABLE events (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          text COLLATE "C" NOT NULL,
    client      boolean NOT NULL,          -- the id came from the client
    fp          bigint NOT NULL,           -- fingerprint of what the client said
    event_type  text COLLATE "C" NOT NULL,
    customer_id text COLLATE "C" NOT NULL,
    value       double precision NOT NULL,
    metadata    bytea,                     -- the compact JSON as received
    ts          timestamptz NOT NULL,      -- event time
    received_at timestamptz NOT NULL
);
-- Client ids are stored once, ever. Generated ids are unique by
-- construction and stay out of the index, which keeps their inserts
-- sequential.
CREATE UNIQUE INDEX events_client_id ON events (id) WHERE client;

-- The aggregation's progress, one row: every event with seq <= watermark
-- is folded in; a run in progress folds (watermark, run_to] customer by
-- customer and has finished every customer up to run_after.
CREATE TABLE meta (
    one       boolean PRIMARY KEY DEFAULT true CHECK (one),
    watermark bigint NOT NULL DEFAULT 0,
    run_to    bigint NOT NULL DEFAULT 0,
    run_after text COLLATE "C" NOT NULL DEFAULT ''
);
INSERT INTO meta DEFAULT VALUES;

CREATE TABLE api_keys (
    id           text COLLATE "C" PRIMARY KEY,
    name         text NOT NULL DEFAULT '',
    scope        text NOT NULL,
    customer_id  text COLLATE "C" NOT NULL DEFAULT '',
    prefix       text NOT NULL,
    hash         bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- One row per customer, event type and UTC hour (hours since 1970-01-01T00:00Z):
-- the 15-minute slot states.
CREATE TABLE buckets (
    customer_id text COLLATE "C" NOT NULL,
    event_type  text COLLATE "C" NOT NULL,
    hour        bigint NOT NULL,
    slots       bytea NOT NULL,
    PRIMARY KEY (customer_id, event_type, hour)
);

-- Buckets whose events were deleted after they were folded in: the next
-- aggregation run rebuilds them from the events that remain, and the
-- periods that hold them.
CREATE TABLE rebuilds (
    customer_id text COLLATE "C" NOT NULL,
    event_type  text COLLATE "C" NOT NULL,
    hour        bigint NOT NULL,
    PRIMARY KEY (customer_id, event_type, hour)
);

-- One row per customer, period type and period.
CREATE TABLE aggregations (
    customer_id        text COLLATE "C" NOT NULL,
    period             text COLLATE "C" NOT NULL,
    period_key         text COLLATE "C" NOT NULL,
    period_start       timestamptz NOT NULL,
    period_end         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    states             bytea NOT NULL,
    complete           boolean NOT NULL DEFAULT false,
    revision           integer NOT NULL DEFAULT 0,
    dirty              boolean NOT NULL DEFAULT false,
    published          text,               -- JSON of the last notified values
    wh_delivered       boolean NOT NULL DEFAULT false,
    wh_attempts        integer NOT NULL DEFAULT 0,
    wh_delivered_at    timestamptz,
    wh_last_error      text,
    wh_last_attempt_at timestamptz,
    wh_dry_run         boolean NOT NULL DEFAULT false,
    PRIMARY KEY (customer_id, period, period_key)
);
CREATE INDEX aggregations_start ON aggregations (period_start, customer_id, period, period_key);
CREATE INDEX aggregations_due ON aggregations (period_end) WHERE NOT complete OR dirty;

CREATE TABLE notifications (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type           text NOT NULL,
    aggregation_id text COLLATE "C" NOT NULL,
    customer_id    text COLLATE "C" NOT NULL,
    revision       integer NOT NULL,
    payload        bytea NOT NULL,
    created_at     timestamptz NOT NULL
);

-- The webhook outbox: one row per notification and endpoint. id is the
-- webhook-id header, the same on every try.
CREATE TABLE deliveries (
    rid             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text COLLATE "C" NOT NULL UNIQUE,
    notification_id bigint NOT NULL REFERENCES notifications (id),
    type            text NOT NULL,
    aggregation_id  text COLLATE "C" NOT NULL,
    customer_id     text COLLATE "C" NOT NULL,
    revision        integer NOT NULL,
    endpoint        text COLLATE "C" NOT NULL,
    status          text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_error      text,
    last_status     integer,
    last_attempt_at timestamptz,
    delivered_at    timestamptz,
    dry_run         boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (endpoint, next_attempt_at, rid) WHERE status = 'pending';
CREATE INDEX deliveries_aggregation ON deliveries (aggregation_id, revision);
CREATE INDEX deliveries_customer ON deliveries (customer_id, rid);
CREATE INDEX deliveries_status ON deliveries (status, rid);

-- Endpoints that answered 410 Gone.
CREATE TABLE disabled_endpoints (
    endpoint    text COLLATE "C" PRIMARY KEY,
    reason      text NOT NULL,
    disabled_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE disabled_endpoints;
DROP TABLE deliveries;
DROP TABLE notifications;
DROP TABLE aggregations;
DROP TABLE rebuilds;
DROP TABLE buckets;
DROP TABLE api_keys;
DROP TABLE meta;
DROP TABLE events;
