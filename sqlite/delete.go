package sqlite

import (
	"context"
	"strings"
	"time"

	"github.com/odometer-dev/odometer"
)

// eventWhere returns the WHERE clause of a filter, without cursor or limit.
func eventWhere(f odometer.EventFilter) (string, []any) {
	var where []string
	var args []any
	if f.CustomerID != "" {
		where, args = append(where, "customer_id = ?"), append(args, f.CustomerID)
	}
	if f.EventType != "" {
		where, args = append(where, "event_type = ?"), append(args, f.EventType)
	}
	if f.From != nil {
		where, args = append(where, "ts >= ?"), append(args, ms(*f.From))
	}
	if f.To != nil {
		where, args = append(where, "ts <= ?"), append(args, ms(*f.To))
	}
	if len(where) == 0 {
		return "1", nil
	}
	return strings.Join(where, " AND "), args
}

// DeleteEvents implements odometer.EventStore.
func (s *Store) DeleteEvents(ctx context.Context, f odometer.EventFilter) (int, error) {
	where, args := eventWhere(f)
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, storeError("delete events", err)
	}
	defer tx.Rollback()
	st, err := scanRunState(tx.QueryRowContext(ctx, runStateQuery))
	if err != nil {
		return 0, storeError("delete events", err)
	}
	// The UTC hour of ts, rounding down before 1970 too.
	const hour = `(ts / 3600000 - (ts < 0 AND ts % 3600000 <> 0))`
	folded := `(seq <= ? OR (seq <= ? AND ? <> '' AND customer_id <= ?))`
	rargs := append(append([]any{}, args...), st.Watermark, st.To, st.After, st.After)
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO rebuilds (customer_id, event_type, hour)
		SELECT DISTINCT customer_id, event_type, `+hour+` FROM events WHERE `+where+` AND `+folded, rargs...); err != nil {
		return 0, storeError("delete events", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE `+where, args...)
	if err != nil {
		return 0, storeError("delete events", err)
	}
	n, _ := res.RowsAffected()
	return int(n), storeError("delete events", tx.Commit())
}

// ScanFolded implements odometer.AggregationStore.
func (s *Store) ScanFolded(ctx context.Context, upto int64, from, to time.Time, fn func(*odometer.Event) error) error {
	rows, err := s.read.QueryContext(ctx, `SELECT customer_id, event_type, seq, value, metadata, ts FROM events WHERE seq <= ? AND ts >= ? AND ts < ?`,
		upto, ms(from), ms(to))
	if err != nil {
		return storeError("scan folded", err)
	}
	defer rows.Close()
	var e odometer.Event
	for rows.Next() {
		var ts int64
		if err := rows.Scan(&e.CustomerID, &e.EventType, &e.Seq, &e.Value, &e.Metadata, &ts); err != nil {
			return storeError("scan folded", err)
		}
		e.Time = fromMS(ts)
		if err := fn(&e); err != nil {
			return err
		}
	}
	return storeError("scan folded", rows.Err())
}

func (t *aggTx) Rebuilds() ([]odometer.BucketKey, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT customer_id, event_type, hour FROM rebuilds`)
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
	st, err := t.stmt(`DELETE FROM rebuilds WHERE customer_id = ? AND event_type = ? AND hour = ?`)
	if err != nil {
		return storeError("clear rebuilds", err)
	}
	for _, k := range keys {
		if _, err := st.ExecContext(t.ctx, k.CustomerID, k.EventType, k.Hour); err != nil {
			return storeError("clear rebuilds", err)
		}
	}
	return nil
}
