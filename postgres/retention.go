package postgres

import (
	"context"
	"time"
)

// OldestUnsettled implements odometer.AggregationStore.
func (s *Store) OldestUnsettled(ctx context.Context) (time.Time, bool, error) {
	var start *time.Time
	err := s.pool.QueryRow(ctx, `SELECT min(period_start) FROM aggregations a
		WHERE NOT complete OR dirty OR EXISTS (SELECT 1 FROM deliveries d
			WHERE d.aggregation_id = a.customer_id || '_' || a.period || '_' || a.period_key
			AND d.revision = a.revision AND d.status <> 'delivered')`).Scan(&start)
	if err != nil {
		return time.Time{}, false, storeError("oldest unsettled", err)
	}
	if start == nil {
		return time.Time{}, false, nil
	}
	return start.UTC(), true, nil
}

// pruneChunk is how many events one transaction of PruneEvents deletes.
const pruneChunk = 10_000

// PruneEvents implements odometer.EventStore.
func (s *Store) PruneEvents(ctx context.Context, upto int64, before time.Time) (int, error) {
	total := 0
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM events WHERE seq IN
			(SELECT seq FROM events WHERE seq <= $1 AND ts < $2 ORDER BY seq LIMIT $3)`, upto, before, pruneChunk)
		if err != nil {
			return total, storeError("prune events", err)
		}
		n := tag.RowsAffected()
		total += int(n)
		if n < pruneChunk {
			return total, nil
		}
	}
}
