package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// OldestUnsettled implements odometer.AggregationStore.
func (s *Store) OldestUnsettled(ctx context.Context) (time.Time, bool, error) {
	var start sql.NullInt64
	err := s.read.QueryRowContext(ctx, `SELECT min(period_start) FROM aggregations a
		WHERE complete = 0 OR dirty = 1 OR EXISTS (SELECT 1 FROM deliveries d
			WHERE d.aggregation_id = a.customer_id || '_' || a.period || '_' || a.period_key
			AND d.revision = a.revision AND d.status <> 'delivered')`).Scan(&start)
	if err != nil {
		return time.Time{}, false, storeError("oldest unsettled", err)
	}
	if !start.Valid {
		return time.Time{}, false, nil
	}
	return fromMS(start.Int64), true, nil
}

// pruneChunk is how many events one transaction of PruneEvents deletes,
// so that ingest waits for the single writer no longer than that takes.
const pruneChunk = 10_000

// PruneEvents implements odometer.EventStore. The oldest events have the
// lowest seq, so each chunk finds its rows near the start of the table.
func (s *Store) PruneEvents(ctx context.Context, upto int64, before time.Time) (int, error) {
	total := 0
	for {
		res, err := s.write.ExecContext(ctx, `DELETE FROM events WHERE seq IN
			(SELECT seq FROM events WHERE seq <= ? AND ts < ? ORDER BY seq LIMIT ?)`, upto, ms(before), pruneChunk)
		if err != nil {
			return total, storeError("prune events", err)
		}
		n, _ := res.RowsAffected()
		total += int(n)
		if n < pruneChunk {
			return total, nil
		}
	}
}
