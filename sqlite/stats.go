package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/odometer-dev/odometer"
)

// Backlog implements odometer.AggregationStore. Events arrive in seq
// order, so the first past the watermark is the oldest waiting.
func (s *Store) Backlog(ctx context.Context) (odometer.Backlog, error) {
	var b odometer.Backlog
	st, err := s.RunState(ctx)
	if err != nil {
		return b, err
	}
	var max, received int64
	err = s.read.QueryRowContext(ctx, `SELECT coalesce((SELECT max(seq) FROM events), 0),
		coalesce((SELECT received_at FROM events WHERE seq > ? ORDER BY seq LIMIT 1), 0)`, st.Watermark).Scan(&max, &received)
	if errors.Is(err, sql.ErrNoRows) {
		return b, nil
	}
	if err != nil {
		return b, storeError("backlog", err)
	}
	if max > st.Watermark {
		b.Events, b.Oldest = max-st.Watermark, fromMS(received)
	}
	return b, nil
}

// CountDeliveries implements odometer.DeliveryStore.
func (s *Store) CountDeliveries(ctx context.Context) (map[string]int64, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT status, count(*) FROM deliveries GROUP BY status`)
	if err != nil {
		return nil, storeError("count deliveries", err)
	}
	defer rows.Close()
	out := map[string]int64{odometer.DeliveryPending: 0, odometer.DeliveryDelivered: 0, odometer.DeliveryFailed: 0}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, storeError("count deliveries", err)
		}
		out[st] = n
	}
	return out, storeError("count deliveries", rows.Err())
}
