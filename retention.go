package odometer

import (
	"context"
	"fmt"
	"time"
)

// Prune deletes the raw events that the configured retention lets go: older
// than it, and only those whose periods are all complete and delivered, so
// that no aggregate or webhook can still need them. Aggregations stay. It
// returns how many it deleted; with no retention configured, none.
//
// A period type that is open for long keeps its events as long: with
// yearly periods configured, no event of the current year goes before the
// year is complete and delivered.
func (a *Aggregator) Prune(ctx context.Context, events EventStore) (int, error) {
	cfg := a.Config()
	if cfg.Retention.Events == 0 {
		return 0, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	release, err := a.Store.LockAggregation(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	defer release()
	cutoff := a.Now().UTC().Add(-time.Duration(cfg.Retention.Events))
	open, ok, err := a.Store.OldestUnsettled(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	if ok && open.Before(cutoff) {
		cutoff = open
	}
	st, err := a.Store.RunState(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	return events.PruneEvents(ctx, st.Watermark, cutoff)
}
