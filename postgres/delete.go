package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/odometer-dev/odometer"
)

// eventWhere adds the conditions of a filter, without cursor or limit.
func eventWhere(f odometer.EventFilter, a *args) []string {
	var where []string
	if f.CustomerID != "" {
		where = append(where, "customer_id = "+a.add(f.CustomerID))
	}
	if f.EventType != "" {
		where = append(where, "event_type = "+a.add(f.EventType))
	}
	if f.From != nil {
		where = append(where, "ts >= "+a.add(ms(*f.From)))
	}
	if f.To != nil {
		where = append(where, "ts <= "+a.add(ms(*f.To)))
	}
	return where
}

// DeleteEvents implements odometer.EventStore. It locks the run state's
// row, so that the events it counts as folded stay folded until it
// commits.
func (s *Store) DeleteEvents(ctx context.Context, f odometer.EventFilter) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, storeError("delete events", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var st odometer.RunState
	if err := tx.QueryRow(ctx, runStateQuery+` FOR UPDATE`).Scan(&st.Watermark, &st.To, &st.After); err != nil {
		return 0, storeError("delete events", err)
	}
	var a args
	where := strings.Join(append(eventWhere(f, &a), "true"), " AND ")
	n := len(a)
	folded := "(seq <= " + a.add(st.Watermark) + " OR (seq <= " + a.add(st.To) + " AND " + a.add(st.After) + " <> '' AND customer_id <= " +
		a.add(st.After) + "))"
	// The UTC hour of ts, rounding down before 1970 too.
	const hour = `floor(extract(epoch FROM ts) / 3600)::bigint`
	if _, err := tx.Exec(ctx, `INSERT INTO rebuilds (customer_id, event_type, hour)
		SELECT DISTINCT customer_id, event_type, `+hour+` FROM events WHERE `+where+` AND `+folded+`
		ON CONFLICT DO NOTHING`, a...); err != nil {
		return 0, storeError("delete events", err)
	}
	tag, err := tx.Exec(ctx, `DELETE FROM events WHERE `+where, a[:n]...)
	if err != nil {
		return 0, storeError("delete events", err)
	}
	return int(tag.RowsAffected()), storeError("delete events", tx.Commit(ctx))
}

// ScanFolded implements odometer.AggregationStore.
func (s *Store) ScanFolded(ctx context.Context, upto int64, from, to time.Time, fn func(*odometer.Event) error) error {
	rows, err := s.pool.Query(ctx, `SELECT customer_id, event_type, seq, value, metadata, ts FROM events WHERE seq <= $1 AND ts >= $2 AND ts < $3`,
		upto, ms(from), ms(to))
	if err != nil {
		return storeError("scan folded", err)
	}
	defer rows.Close()
	var e odometer.Event
	for rows.Next() {
		if err := rows.Scan(&e.CustomerID, &e.EventType, &e.Seq, &e.Value, &e.Metadata, &e.Time); err != nil {
			return storeError("scan folded", err)
		}
		e.Time = e.Time.UTC()
		if err := fn(&e); err != nil {
			return err
		}
	}
	return storeError("scan folded", rows.Err())
}

func (t *aggTx) Rebuilds() ([]odometer.BucketKey, error) {
	rows, err := t.tx.Query(t.ctx, `SELECT customer_id, event_type, hour FROM rebuilds`)
	if err != nil {
		return nil, storeError("rebuilds", err)
	}
	defer rows.Close()
	var out []odometer.BucketKey
	for rows.Next() {
		var k odometer.BucketKey
		if err := rows.Scan(&k.CustomerID, &k.EventType, &k.Hour); err != nil {
			return nil, storeError("rebuilds", err)
		}
		out = append(out, k)
	}
	return out, storeError("rebuilds", rows.Err())
}

func (t *aggTx) ClearRebuilds(keys []odometer.BucketKey) error {
	if len(keys) == 0 {
		return nil
	}
	customers, types, hours := bucketKeyArrays(keys)
	_, err := t.tx.Exec(t.ctx, `DELETE FROM rebuilds r USING unnest($1::text[], $2::text[], $3::bigint[]) AS k (customer_id, event_type, hour)
		WHERE (r.customer_id, r.event_type, r.hour) = (k.customer_id, k.event_type, k.hour)`, customers, types, hours)
	return storeError("clear rebuilds", err)
}

func (t *aggTx) LoadCustomerBuckets(customerID string, fromHour, toHour int64) (map[odometer.BucketKey][]byte, error) {
	rows, err := t.tx.Query(t.ctx, `SELECT event_type, hour, slots FROM buckets WHERE customer_id = $1 AND hour BETWEEN $2 AND $3`,
		customerID, fromHour, toHour)
	if err != nil {
		return nil, storeError("load buckets", err)
	}
	defer rows.Close()
	out := map[odometer.BucketKey][]byte{}
	for rows.Next() {
		k := odometer.BucketKey{CustomerID: customerID}
		var b []byte
		if err := rows.Scan(&k.EventType, &k.Hour, &b); err != nil {
			return nil, storeError("load buckets", err)
		}
		out[k] = b
	}
	return out, storeError("load buckets", rows.Err())
}
