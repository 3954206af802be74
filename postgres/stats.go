package postgres

import (
	"context"
	"time"

	"github.com/odometer-dev/odometer"
)

// Backlog implements odometer.AggregationStore. Events commit in seq
// order, so the first past the watermark is the oldest waiting.
func (s *Store) Backlog(ctx context.Context) (odometer.Backlog, error) {
	var b odometer.Backlog
	st, err := s.RunState(ctx)
	if err != nil {
		return b, err
	}
	var max int64
	var received *time.Time
	err = s.pool.QueryRow(ctx, `SELECT coalesce((SELECT max(seq) FROM events), 0),
		(SELECT received_at FROM events WHERE seq > $1 ORDER BY seq LIMIT 1)`, st.Watermark).Scan(&max, &received)
	if err != nil {
		return b, storeError("backlog", err)
	}
	if max > st.Watermark && received != nil {
		b.Events, b.Oldest = max-st.Watermark, received.UTC()
	}
	return b, nil
}

// CountDeliveries implements odometer.DeliveryStore.
func (s *Store) CountDeliveries(ctx context.Context) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM deliveries GROUP BY status`)
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
