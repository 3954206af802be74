package odometer

import (
	"context"
	"time"
)

// Store is everything a deployment keeps: one SQLite file, or one
// PostgreSQL database.
type Store interface {
	EventStore
	KeyStore
	AggregationStore
	DeliveryStore
	CustomerStore
	AlertStore
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
	Close() error
}

// EventStore stores usage events once, ever, by their client id.
type EventStore interface {
	// CreateEvents stores the events of one request atomically and durably
	// (on disk before it returns). It sets each stored event's Seq. An event
	// whose client id is already stored with the same fingerprint is not
	// stored again and is reported in dup; with another fingerprint the
	// whole request fails with ECONFLICT and nothing is stored. A store that
	// cannot write answers EUNAVAILABLE.
	CreateEvents(ctx context.Context, events []Event) (dup []bool, err error)

	// DeleteEvents deletes the events filter selects (its Limit and Cursor
	// aside) and returns how many. In the same transaction it records the
	// buckets that held those of them already folded into the aggregates,
	// for the next aggregation run to rebuild. Callers hold the aggregation
	// lock (see Aggregator.DeleteEvents), so that no run is folding them.
	DeleteEvents(ctx context.Context, filter EventFilter) (int, error)

	// PruneEvents deletes the events folded into the aggregates (Seq <=
	// upto) whose time is before before, without touching the aggregates,
	// in short transactions. It returns how many.
	PruneEvents(ctx context.Context, upto int64, before time.Time) (int, error)

	// FindEvents returns events newest first (by arrival), at most
	// filter.Limit, and the cursor of the next page ("" at the end).
	FindEvents(ctx context.Context, filter EventFilter) ([]Event, string, error)
}

// EventFilter selects events. From and To bound the event time.
type EventFilter struct {
	CustomerID string
	EventType  string
	From, To   *time.Time
	Limit      int
	Cursor     string
}

// KeyStore stores API keys by the SHA-256 of the key.
type KeyStore interface {
	CreateKey(ctx context.Context, k *APIKey) error
	// FindKeyByHash returns the live key with this hash, or ENOTFOUND.
	FindKeyByHash(ctx context.Context, hash [32]byte) (*APIKey, error)
	FindKeys(ctx context.Context) ([]*APIKey, error)
	// RevokeKey revokes the key with this id, or answers ENOTFOUND.
	RevokeKey(ctx context.Context, id string, at time.Time) error
	// TouchKey records that the key was used.
	TouchKey(ctx context.Context, id string, at time.Time) error
}

// RunState is the aggregation's progress. Every event with Seq <= Watermark
// is folded into the aggregates. A run in progress folds (Watermark, To],
// customer by customer in order, and has finished every customer up to
// and including After; a run that stops midway resumes there.
type RunState struct {
	Watermark int64
	To        int64
	After     string
}

// InProgress reports whether a run stopped midway.
func (r RunState) InProgress() bool { return r.To > r.Watermark }

// Folded reports whether the event of customerID with seq is in the
// aggregates.
func (r RunState) Folded(customerID string, seq int64) bool {
	return seq <= r.Watermark || (seq <= r.To && r.After != "" && customerID <= r.After)
}

// Backlog is the work waiting for the aggregator.
type Backlog struct {
	// Events is how many events are past the watermark (by Seq).
	Events int64
	// Oldest is when the first of them arrived; zero when there is none.
	Oldest time.Time
}

// AggregationStore keeps buckets, aggregations and notifications.
type AggregationStore interface {
	// LockAggregation waits until this caller is the only aggregation run
	// of the store, on every replica, and returns the release. A replica
	// that dies holding it loses it, so that another can take over.
	LockAggregation(ctx context.Context) (release func(), err error)
	RunState(ctx context.Context) (RunState, error)
	// MaxSeq returns the Seq of the newest event, 0 when there is none.
	MaxSeq(ctx context.Context) (int64, error)
	// Backlog describes the events not yet folded into the aggregates.
	Backlog(ctx context.Context) (Backlog, error)
	// OldestUnsettled returns the start of the oldest period that is not
	// complete, has changed since, or has a delivery of its current
	// revision not yet delivered; ok is false when there is none.
	OldestUnsettled(ctx context.Context) (start time.Time, ok bool, err error)
	// ScanEvents calls fn for each event with after < Seq <= upto of the
	// customers after fromCustomer ("" for every customer), ordered by
	// customer. The Event passed is reused between calls; fn must copy
	// what it keeps.
	// Metadata is read only for the events of metadataTypes (none when
	// empty): those of the meters that look into it.
	ScanEvents(ctx context.Context, after, upto int64, fromCustomer string, metadataTypes []string, fn func(*Event) error) error
	// ScanFolded calls fn for each event folded into the aggregates (Seq <=
	// upto, with no run in progress) whose time is in [from, to), with
	// their metadata.
	ScanFolded(ctx context.Context, upto int64, from, to time.Time, fn func(*Event) error) error
	// Aggregate runs fn in one write transaction that excludes every other
	// aggregation writer of this store (on every replica).
	Aggregate(ctx context.Context, fn func(AggregationTx) error) error

	FindAggregations(ctx context.Context, filter AggregationFilter) ([]*Aggregation, string, error)
	// FindUsage returns, from one consistent snapshot, the buckets of a
	// customer's meter for UTC hours fromHour..toHour, and that customer's
	// events of the meter's event type not yet folded into any bucket.
	FindUsage(ctx context.Context, customerID, meter, eventType string, fromHour, toHour int64) ([]Bucket, []Event, error)
	// FindCustomerUsage is FindUsage for every meter of a customer at
	// once: the buckets of all its meters (each Bucket's EventType names
	// the meter) for UTC hours fromHour..toHour, and its events of every
	// type not yet folded into any bucket.
	FindCustomerUsage(ctx context.Context, customerID string, fromHour, toHour int64) ([]Bucket, []Event, error)
	// FindCycleAggregations returns every customer's open (not complete)
	// aggregation of period p that holds at (PeriodStart <= at <
	// PeriodEnd), each with its customer's profile (nil without one), in
	// no particular order: the customers' current cycles, for the
	// directory's order by usage. Of each aggregation only the customer,
	// period, key, bounds and states are read.
	FindCycleAggregations(ctx context.Context, p Period, at time.Time) ([]CycleAggregation, error)
}

// AggregationTx is the write side of one aggregation step.
type AggregationTx interface {
	RunState() (RunState, error)
	SetRunState(RunState) error
	// LoadBuckets returns the stored encodings of those buckets that exist.
	LoadBuckets(keys []BucketKey) (map[BucketKey][]byte, error)
	// SaveBuckets inserts or replaces buckets; an empty encoding deletes one.
	SaveBuckets(buckets map[BucketKey][]byte) error
	// LoadCustomerBuckets returns every bucket of a customer for UTC hours
	// fromHour..toHour.
	LoadCustomerBuckets(customerID string, fromHour, toHour int64) (map[BucketKey][]byte, error)
	// Rebuilds returns the buckets that deleted events left to rebuild.
	Rebuilds() ([]BucketKey, error)
	// ClearRebuilds forgets rebuilt buckets.
	ClearRebuilds(keys []BucketKey) error
	// LoadAggregations returns those aggregations that exist.
	LoadAggregations(keys []AggregationKey) (map[AggregationKey]*Aggregation, error)
	// SaveAggregations inserts or replaces aggregations. The webhook status
	// is kept unless the revision changed, when it starts afresh.
	SaveAggregations(aggs []*Aggregation) error
	// FindDue returns up to limit aggregations whose period ended at or
	// before end and that are incomplete or dirty.
	FindDue(end time.Time, limit int) ([]*Aggregation, error)
	// AddNotifications records notifications, and one pending delivery for
	// each of their endpoints.
	AddNotifications(ns []*Notification) error
}
