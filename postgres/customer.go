package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/odometer-dev/odometer"
)

var _ odometer.CustomerStore = (*Store)(nil)

// PutCustomer implements odometer.CustomerStore.
func (s *Store) PutCustomer(ctx context.Context, c *odometer.Customer) error {
	var created time.Time
	err := s.pool.QueryRow(ctx, `INSERT INTO customers (id, name, timezone, billing_anchor, billing_interval, metadata, created_at, updated_at, billing_history)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, timezone = excluded.timezone, billing_anchor = excluded.billing_anchor,
			billing_interval = excluded.billing_interval, metadata = excluded.metadata, updated_at = excluded.updated_at,
			billing_history = excluded.billing_history
		RETURNING created_at`,
		c.ID, c.Name, c.Timezone, nullMS(c.BillingAnchor), string(c.BillingInterval), string(c.Metadata), ms(c.UpdatedAt),
		odometer.EncodeBillingHistory(c.BillingHistory)).Scan(&created)
	if err != nil {
		return storeError("put customer", err)
	}
	c.CreatedAt, c.UpdatedAt = created.UTC(), ms(c.UpdatedAt)
	return nil
}

// customerMetersQuery starts a query with meters(m): the names of the
// meters of customer $1 in the buckets, one index seek each (and a NULL
// that ends them).
const customerMetersQuery = `WITH RECURSIVE meters(m) AS (
		(SELECT event_type FROM buckets WHERE customer_id = $1 ORDER BY event_type LIMIT 1)
		UNION ALL
		SELECT (SELECT b.event_type FROM buckets b WHERE b.customer_id = $1 AND b.event_type > meters.m ORDER BY b.event_type LIMIT 1)
		FROM meters WHERE meters.m IS NOT NULL
	)`

const customerColumns = `id, name, timezone, billing_anchor, billing_interval, metadata, created_at, updated_at, billing_history`

func scanCustomer(row pgx.Row) (*odometer.Customer, error) {
	var c odometer.Customer
	var interval, meta, history string
	if err := row.Scan(&c.ID, &c.Name, &c.Timezone, &c.BillingAnchor, &interval, &meta, &c.CreatedAt, &c.UpdatedAt, &history); err != nil {
		return nil, err
	}
	var err error
	if c.BillingHistory, err = odometer.DecodeBillingHistory(history); err != nil {
		return nil, err
	}
	c.BillingAnchor = utc(c.BillingAnchor)
	c.BillingInterval = odometer.BillingInterval(interval)
	c.Metadata = []byte(meta)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return &c, nil
}

// FindProfile implements odometer.CustomerStore.
func (s *Store) FindProfile(ctx context.Context, id string) (*odometer.Customer, error) {
	c, err := scanCustomer(s.pool.QueryRow(ctx, `SELECT `+customerColumns+` FROM customers WHERE id = $1`, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, odometer.Errorf(odometer.ENOTFOUND, "Not found")
	case err != nil:
		return nil, storeError("find profile", err)
	}
	return c, nil
}

// FindCustomer implements odometer.CustomerStore. The first and last
// events are read from the buckets of the customer's first and last hours
// (through the primary key, which starts with the customer) and from its
// events not yet folded into them (the events past the watermark), in one
// snapshot.
func (s *Store) FindCustomer(ctx context.Context, id string) (*odometer.Customer, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, storeError("find customer", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	c, err := scanCustomer(tx.QueryRow(ctx, `SELECT `+customerColumns+` FROM customers WHERE id = $1`, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		c = nil
	case err != nil:
		return nil, storeError("find customer", err)
	}
	var first, last int64
	seen := false
	add := func(f, l int64) {
		if !seen || f < first {
			first = f
		}
		if !seen || l > last {
			last = l
		}
		seen = true
	}
	// The first and last bucket of each of the customer's meters: every
	// event is in its event type's, and a seek per meter finds them,
	// where a min(hour) over the customer would read all its rows (the
	// key puts the meter before the hour).
	rows, err := tx.Query(ctx, customerMetersQuery+`, ends AS (
			SELECT m, (SELECT min(hour) FROM buckets WHERE customer_id = $1 AND event_type = m) AS lo,
				(SELECT max(hour) FROM buckets WHERE customer_id = $1 AND event_type = m) AS hi
			FROM meters WHERE m IS NOT NULL
		)
		SELECT b.hour, b.slots FROM ends JOIN buckets b ON b.customer_id = $1 AND b.event_type = ends.m AND b.hour IN (ends.lo, ends.hi)`, id)
	if err != nil {
		return nil, storeError("find customer", err)
	}
	for rows.Next() {
		var hour int64
		var b []byte
		if err := rows.Scan(&hour, &b); err != nil {
			rows.Close()
			return nil, storeError("find customer", err)
		}
		slots := map[int64]odometer.State{}
		if err := odometer.DecodeSlots(hour, b, slots); err != nil {
			rows.Close()
			return nil, storeError("find customer", err)
		}
		if f, l, ok := odometer.SlotsSpan(slots); ok {
			add(f, l)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, storeError("find customer", err)
	}
	var lo, hi *time.Time
	if err := tx.QueryRow(ctx, `SELECT min(ts), max(ts) FROM events WHERE seq > (SELECT watermark FROM meta) AND customer_id = $1`, id).Scan(&lo, &hi); err != nil {
		return nil, storeError("find customer", err)
	}
	if lo != nil {
		add(lo.UnixMilli(), hi.UnixMilli())
	}
	if c == nil {
		if !seen {
			return nil, odometer.Errorf(odometer.ENOTFOUND, "Not found")
		}
		c = odometer.NewCustomer(id)
	}
	if seen {
		f, l := time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC()
		c.FirstEventAt, c.LastEventAt = &f, &l
	}
	return c, nil
}

// FindCustomers implements odometer.CustomerStore. Customers seen through
// events are found without reading the events table whole: those in the
// buckets by a walk of the buckets' primary key, one seek per customer (a
// recursive query: each step finds the first customer after the
// previous), and those of the events not yet folded by a scan of the
// events past the watermark alone.
func (s *Store) FindCustomers(ctx context.Context, f odometer.CustomerFilter) ([]*odometer.Customer, string, error) {
	after := ""
	if f.Cursor != "" {
		var err error
		if after, err = odometer.DecodeCustomerCursor(f.Cursor); err != nil {
			return nil, "", err
		}
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, "", storeError("find customers", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	rows, err := tx.Query(ctx, `SELECT `+customerColumns+` FROM customers
		WHERE id > $1 AND ($2 = '' OR id = $2) AND ($3 = '' OR starts_with(id, $3) OR starts_with(name, $3))
		ORDER BY id LIMIT $4`, after, f.ID, f.Q, f.Limit+1)
	if err != nil {
		return nil, "", storeError("find customers", err)
	}
	var profiles []*odometer.Customer
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			rows.Close()
			return nil, "", storeError("find customers", err)
		}
		profiles = append(profiles, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", storeError("find customers", err)
	}

	var ids []string
	if f.ID != "" {
		// A pinned key's customer: one seek.
		if strings.HasPrefix(f.ID, f.Q) {
			ids, err = queryIDs(ctx, tx, `SELECT customer_id FROM buckets WHERE customer_id = $1 AND customer_id > $2 LIMIT 1`, f.ID, after)
		}
	} else {
		ids, err = queryIDs(ctx, tx, `WITH RECURSIVE ids(id) AS (
				(SELECT customer_id FROM buckets WHERE customer_id > $1 AND customer_id >= $2 ORDER BY customer_id LIMIT 1)
				UNION ALL
				SELECT (SELECT b.customer_id FROM buckets b WHERE b.customer_id > ids.id ORDER BY b.customer_id LIMIT 1) FROM ids
				WHERE ids.id IS NOT NULL AND starts_with(ids.id, $2)
			)
			SELECT id FROM ids WHERE id IS NOT NULL AND starts_with(id, $2) LIMIT $3`,
			after, f.Q, f.Limit+1)
	}
	if err != nil {
		return nil, "", err
	}
	pending, err := queryIDs(ctx, tx, `SELECT DISTINCT customer_id FROM events
		WHERE seq > (SELECT watermark FROM meta) AND customer_id > $1 AND starts_with(customer_id, $2)
		AND ($3 = '' OR customer_id = $3) AND ($5 = '' OR customer_id <= $5) ORDER BY customer_id LIMIT $4`,
		after, f.Q, f.ID, f.Limit+1, odometer.PageBound(profiles, ids, f.Limit))
	if err != nil {
		return nil, "", err
	}
	out, next := odometer.MergeCustomers(profiles, odometer.MergeIDs(ids, pending), f.Limit)
	return out, next, nil
}

func queryIDs(ctx context.Context, tx pgx.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, storeError("find customers", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, storeError("find customers", err)
		}
		ids = append(ids, id)
	}
	return ids, storeError("find customers", rows.Err())
}

// FindCustomerUsage implements odometer.AggregationStore: the customer's
// bucket rows of every meter and one scan of the events past the
// watermark, in one snapshot.
func (s *Store) FindCustomerUsage(ctx context.Context, customerID string, fromHour, toHour int64) ([]odometer.Bucket, []odometer.Event, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, storeError("find customer usage", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var run odometer.RunState
	if err := tx.QueryRow(ctx, runStateQuery).Scan(&run.Watermark, &run.To, &run.After); err != nil {
		return nil, nil, storeError("find customer usage", err)
	}
	rows, err := tx.Query(ctx, customerMetersQuery+`
		SELECT b.event_type, b.hour, b.slots FROM meters JOIN buckets b ON b.customer_id = $1 AND b.event_type = meters.m AND b.hour BETWEEN $2 AND $3
		WHERE meters.m IS NOT NULL`, customerID, fromHour, toHour)
	if err != nil {
		return nil, nil, storeError("find customer usage", err)
	}
	var buckets []odometer.Bucket
	for rows.Next() {
		var meter string
		var hour int64
		var b []byte
		if err := rows.Scan(&meter, &hour, &b); err != nil {
			rows.Close()
			return nil, nil, storeError("find customer usage", err)
		}
		bk := odometer.Bucket{BucketKey: odometer.BucketKey{CustomerID: customerID, EventType: meter, Hour: hour}, Slots: map[int64]odometer.State{}}
		if err := odometer.DecodeSlots(hour, b, bk.Slots); err != nil {
			rows.Close()
			return nil, nil, storeError("find customer usage", err)
		}
		buckets = append(buckets, bk)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, storeError("find customer usage", err)
	}
	events, err := pendingEvents(ctx, tx, run, customerID, "")
	return buckets, events, storeError("find customer usage", err)
}

// FindCycleAggregations implements odometer.AggregationStore: a range of
// the index of the open aggregations (period, then end), and each
// customer's profile by its key (its columns as scanCustomer reads them;
// an id of ” for a customer without one).
func (s *Store) FindCycleAggregations(ctx context.Context, p odometer.Period, at time.Time) ([]odometer.CycleAggregation, error) {
	rows, err := s.pool.Query(ctx, `SELECT a.customer_id, a.period_key, a.period_start, a.period_end, a.states,
			coalesce(c.id, ''), coalesce(c.name, ''), coalesce(c.timezone, ''), c.billing_anchor, coalesce(c.billing_interval, ''),
			coalesce(c.metadata, '{}'), coalesce(c.created_at, to_timestamp(0)), coalesce(c.updated_at, to_timestamp(0)),
			coalesce(c.billing_history, '[]')
		FROM aggregations a LEFT JOIN customers c ON c.id = a.customer_id
		WHERE NOT a.complete AND a.period = $1 AND a.period_end > $2 AND a.period_start <= $2`, string(p), ms(at))
	if err != nil {
		return nil, storeError("find cycle aggregations", err)
	}
	defer rows.Close()
	var out []odometer.CycleAggregation
	for rows.Next() {
		a := &odometer.Aggregation{Period: p}
		var states []byte
		c, err := scanCustomer(scanAfter{rows, []any{&a.CustomerID, &a.PeriodKey, &a.PeriodStart, &a.PeriodEnd, &states}})
		if err != nil {
			return nil, storeError("find cycle aggregations", err)
		}
		a.PeriodStart, a.PeriodEnd = a.PeriodStart.UTC(), a.PeriodEnd.UTC()
		if a.States, err = odometer.DecodeStates(states); err != nil {
			return nil, storeError("find cycle aggregations", err)
		}
		ca := odometer.CycleAggregation{Aggregation: a}
		if c.ID != "" {
			ca.Profile = c
		}
		out = append(out, ca)
	}
	return out, storeError("find cycle aggregations", rows.Err())
}

// scanAfter scans a row into first, then into what its Scan is given: a
// row that holds other columns before those of a reader such as
// scanCustomer.
type scanAfter struct {
	row   pgx.Row
	first []any
}

func (s scanAfter) Scan(dest ...any) error { return s.row.Scan(append(s.first, dest...)...) }
