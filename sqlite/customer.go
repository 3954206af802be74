package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/odometer-dev/odometer"
)

var _ odometer.CustomerStore = (*Store)(nil)

// PutCustomer implements odometer.CustomerStore.
func (s *Store) PutCustomer(ctx context.Context, c *odometer.Customer) error {
	var created int64
	err := s.write.QueryRowContext(ctx, `INSERT INTO customers (id, name, timezone, billing_anchor, billing_interval, metadata, created_at, updated_at, billing_history)
		VALUES (?,?,?,?,?,?,?,?,?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, timezone = excluded.timezone, billing_anchor = excluded.billing_anchor,
			billing_interval = excluded.billing_interval, metadata = excluded.metadata, updated_at = excluded.updated_at,
			billing_history = excluded.billing_history
		RETURNING created_at`,
		c.ID, c.Name, c.Timezone, nullMS(c.BillingAnchor), string(c.BillingInterval), string(c.Metadata), ms(c.UpdatedAt), ms(c.UpdatedAt),
		odometer.EncodeBillingHistory(c.BillingHistory)).Scan(&created)
	if err != nil {
		return storeError("put customer", err)
	}
	c.CreatedAt = fromMS(created)
	c.UpdatedAt = fromMS(ms(c.UpdatedAt))
	return nil
}

const customerColumns = `id, name, timezone, billing_anchor, billing_interval, metadata, created_at, updated_at, billing_history`

func scanCustomer(row interface{ Scan(...any) error }) (*odometer.Customer, error) {
	var c odometer.Customer
	var interval, meta, history string
	var anchor sql.NullInt64
	var created, updated int64
	if err := row.Scan(&c.ID, &c.Name, &c.Timezone, &anchor, &interval, &meta, &created, &updated, &history); err != nil {
		return nil, err
	}
	var err error
	if c.BillingHistory, err = odometer.DecodeBillingHistory(history); err != nil {
		return nil, err
	}
	c.BillingAnchor = fromNullMS(anchor)
	c.BillingInterval = odometer.BillingInterval(interval)
	c.Metadata = []byte(meta)
	c.CreatedAt, c.UpdatedAt = fromMS(created), fromMS(updated)
	return &c, nil
}

// FindProfile implements odometer.CustomerStore.
func (s *Store) FindProfile(ctx context.Context, id string) (*odometer.Customer, error) {
	c, err := scanCustomer(s.read.QueryRowContext(ctx, `SELECT `+customerColumns+` FROM customers WHERE id = ?`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, odometer.Errorf(odometer.ENOTFOUND, "Not found")
	case err != nil:
		return nil, storeError("find profile", err)
	}
	return c, nil
}

// FindCustomer implements odometer.CustomerStore. The first and last
// events are read from the buckets of the customer's first and last hours
// (through the unique index on customer and hour) and from its events not
// yet folded into them (the events past the watermark), in one snapshot.
func (s *Store) FindCustomer(ctx context.Context, id string) (*odometer.Customer, error) {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, storeError("find customer", err)
	}
	defer tx.Rollback()
	c, err := scanCustomer(tx.QueryRowContext(ctx, `SELECT `+customerColumns+` FROM customers WHERE id = ?`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
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
	rows, err := tx.QueryContext(ctx, `SELECT hour, data FROM buckets WHERE customer_id = ?1
		AND hour IN ((SELECT min(hour) FROM buckets WHERE customer_id = ?1), (SELECT max(hour) FROM buckets WHERE customer_id = ?1))`, id)
	if err != nil {
		return nil, storeError("find customer", err)
	}
	defer rows.Close()
	for rows.Next() {
		var hour int64
		var b []byte
		if err := rows.Scan(&hour, &b); err != nil {
			return nil, storeError("find customer", err)
		}
		secs, err := decodeSections(b)
		if err != nil {
			return nil, storeError("find customer", err)
		}
		for _, sec := range secs {
			slots := map[int64]odometer.State{}
			if err := odometer.DecodeSlots(hour, sec, slots); err != nil {
				return nil, storeError("find customer", err)
			}
			if f, l, ok := odometer.SlotsSpan(slots); ok {
				add(f, l)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, storeError("find customer", err)
	}
	rows.Close()
	var lo, hi sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT min(ts), max(ts) FROM events
		WHERE seq > (SELECT value FROM meta WHERE key = 'watermark') AND customer_id = ?`, id).Scan(&lo, &hi); err != nil {
		return nil, storeError("find customer", err)
	}
	if lo.Valid {
		add(lo.Int64, hi.Int64)
	}
	if c == nil {
		if !seen {
			return nil, odometer.Errorf(odometer.ENOTFOUND, "Not found")
		}
		c = odometer.NewCustomer(id)
	}
	if seen {
		f, l := fromMS(first), fromMS(last)
		c.FirstEventAt, c.LastEventAt = &f, &l
	}
	return c, nil
}

// FindCustomers implements odometer.CustomerStore. Customers seen through
// events are found without reading the events table whole: those in the
// buckets by a walk of the buckets' unique index, one seek per customer
// (a recursive query: each step finds the first customer after the
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
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, "", storeError("find customers", err)
	}
	defer tx.Rollback()

	profiles, err := s.findProfiles(ctx, tx, f, after)
	if err != nil {
		return nil, "", err
	}

	var ids []string
	if f.ID != "" {
		// A pinned key's customer: one seek.
		if strings.HasPrefix(f.ID, f.Q) {
			ids, err = queryIDs(ctx, tx, `SELECT customer_id FROM buckets WHERE customer_id = ?1 AND customer_id > ?2 LIMIT 1`, f.ID, after)
		}
	} else {
		// One bound on the index, the tighter of the cursor and q: with
		// both, SQLite would seek to the first and scan to the second.
		first := `customer_id > ?1`
		if f.Q > after {
			first = `customer_id >= ?2`
		}
		ids, err = queryIDs(ctx, tx, `WITH RECURSIVE ids(id) AS (
				SELECT (SELECT customer_id FROM buckets WHERE `+first+` ORDER BY customer_id LIMIT 1)
				UNION ALL
				SELECT (SELECT customer_id FROM buckets WHERE customer_id > ids.id ORDER BY customer_id LIMIT 1) FROM ids
				WHERE ids.id IS NOT NULL AND substr(ids.id, 1, length(?2)) = ?2
				LIMIT ?3 + 2
			)
			SELECT id FROM ids WHERE id IS NOT NULL AND substr(id, 1, length(?2)) = ?2 LIMIT ?3`,
			after, f.Q, f.Limit+1)
	}
	if err != nil {
		return nil, "", err
	}
	pending, err := queryIDs(ctx, tx, `SELECT DISTINCT customer_id FROM events
		WHERE seq > (SELECT value FROM meta WHERE key = 'watermark') AND customer_id > ?1 AND substr(customer_id, 1, length(?2)) = ?2
		AND (?3 = '' OR customer_id = ?3) AND (?5 = '' OR customer_id <= ?5) ORDER BY customer_id LIMIT ?4`,
		after, f.Q, f.ID, f.Limit+1, odometer.PageBound(profiles, ids, f.Limit))
	if err != nil {
		return nil, "", err
	}
	out, next := odometer.MergeCustomers(profiles, odometer.MergeIDs(ids, pending), f.Limit)
	return out, next, nil
}

func (s *Store) findProfiles(ctx context.Context, tx *sql.Tx, f odometer.CustomerFilter, after string) ([]*odometer.Customer, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+customerColumns+` FROM customers
		WHERE id > ?1 AND (?2 = '' OR id = ?2) AND (?3 = '' OR substr(id, 1, length(?3)) = ?3 OR substr(name, 1, length(?3)) = ?3)
		ORDER BY id LIMIT ?4`, after, f.ID, f.Q, f.Limit+1)
	if err != nil {
		return nil, storeError("find customers", err)
	}
	defer rows.Close()
	var out []*odometer.Customer
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			return nil, storeError("find customers", err)
		}
		out = append(out, c)
	}
	return out, storeError("find customers", rows.Err())
}

func queryIDs(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
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

// FindCustomerUsage implements odometer.AggregationStore: one read of the
// customer's bucket rows (each holds every meter) and one scan of the
// events past the watermark, in one snapshot.
func (s *Store) FindCustomerUsage(ctx context.Context, customerID string, fromHour, toHour int64) ([]odometer.Bucket, []odometer.Event, error) {
	return s.findUsage(ctx, "find customer usage", customerID, "", "", fromHour, toHour)
}

// FindCycleAggregations implements odometer.AggregationStore: a range of
// the index of the open aggregations (period, then end), and each
// customer's profile by its key (its columns as scanCustomer reads them;
// an id of ” for a customer without one).
func (s *Store) FindCycleAggregations(ctx context.Context, p odometer.Period, at time.Time) ([]odometer.CycleAggregation, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT a.customer_id, a.period_key, a.period_start, a.period_end, a.states,
			coalesce(c.id, ''), coalesce(c.name, ''), coalesce(c.timezone, ''), c.billing_anchor, coalesce(c.billing_interval, ''),
			coalesce(c.metadata, '{}'), coalesce(c.created_at, 0), coalesce(c.updated_at, 0), coalesce(c.billing_history, '[]')
		FROM aggregations a LEFT JOIN customers c ON c.id = a.customer_id
		WHERE a.complete = 0 AND a.period = ?1 AND a.period_end > ?2 AND a.period_start <= ?2`, string(p), ms(at))
	if err != nil {
		return nil, storeError("find cycle aggregations", err)
	}
	defer rows.Close()
	var out []odometer.CycleAggregation
	for rows.Next() {
		a := &odometer.Aggregation{Period: p}
		var start, end int64
		var states []byte
		c, err := scanCustomer(scanAfter{rows, []any{&a.CustomerID, &a.PeriodKey, &start, &end, &states}})
		if err != nil {
			return nil, storeError("find cycle aggregations", err)
		}
		a.PeriodStart, a.PeriodEnd = fromMS(start), fromMS(end)
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
	row   interface{ Scan(...any) error }
	first []any
}

func (s scanAfter) Scan(dest ...any) error { return s.row.Scan(append(s.first, dest...)...) }
