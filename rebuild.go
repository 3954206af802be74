package odometer

import (
	"context"
	"fmt"
	"time"
)

// DeleteEvents deletes the events f selects, holding the aggregation lock
// so that no run folds them meanwhile, then runs the aggregation, which
// rebuilds the buckets and periods that held them: the aggregates stay
// true, and completed periods get a new revision.
func (a *Aggregator) DeleteEvents(ctx context.Context, events EventStore, f EventFilter) (int, RunResult, error) {
	a.mu.Lock()
	release, err := a.Store.LockAggregation(ctx)
	if err != nil {
		a.mu.Unlock()
		return 0, RunResult{}, fmt.Errorf("delete events: %w", err)
	}
	n, err := events.DeleteEvents(ctx, f)
	release()
	a.mu.Unlock()
	if err != nil {
		return 0, RunResult{}, err
	}
	res, err := a.Run(ctx)
	return n, res, err
}

// hourMillis is one hour in milliseconds.
const hourMillis = 3_600_000

// rebuild recomputes the buckets that deleted events left behind from the
// events that remain, and every period that holds them from the buckets.
// It runs with no pass in progress, under the aggregation lock.
func (a *Aggregator) rebuild(ctx context.Context, cfg *Config, pk *calendar, res *RunResult) error {
	var keys []BucketKey
	var st RunState
	err := a.Store.Aggregate(ctx, func(tx AggregationTx) error {
		var err error
		if st, err = tx.RunState(); err != nil {
			return err
		}
		keys, err = tx.Rebuilds()
		return err
	})
	if err != nil || len(keys) == 0 {
		return err
	}
	// The rebuilds name event types; each of their meters is rebuilt.
	fold := newFolder(cfg)
	want := make(map[BucketKey]map[int64]State, len(keys))
	minHour, maxHour := keys[0].Hour, keys[0].Hour
	for _, k := range keys {
		for _, m := range fold.metersOf(k.EventType) {
			want[BucketKey{k.CustomerID, m.Name, k.Hour}] = map[int64]State{}
		}
		minHour, maxHour = min(minHour, k.Hour), max(maxHour, k.Hour)
	}
	from, to := time.UnixMilli(minHour*hourMillis).UTC(), time.UnixMilli((maxHour+1)*hourMillis).UTC()
	err = a.Store.ScanFolded(ctx, st.Watermark, from, to, func(e *Event) error {
		slot := SlotOf(e.Time.UnixMilli())
		for i := range fold.samples(e) {
			ps := &fold.out[i]
			slots, ok := want[BucketKey{e.CustomerID, ps.m.Name, HourOfSlot(slot)}]
			if !ok {
				continue
			}
			s := slots[slot]
			if s == nil {
				s = ps.m.NewState()
				slots[slot] = s
			}
			s.Add(&ps.s)
		}
		return nil
	})
	res.addSkips(fold.skipped)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}

	now := a.Now().UTC()
	var r RunResult
	err = a.Store.Aggregate(ctx, func(tx AggregationTx) error {
		r = RunResult{}
		if cur, err := tx.RunState(); err != nil {
			return err
		} else if cur != st {
			return fmt.Errorf("aggregation progress moved during a rebuild")
		}
		out := make(map[BucketKey][]byte, len(want))
		for k, slots := range want {
			if len(slots) == 0 {
				out[k] = nil
			} else {
				out[k] = EncodeSlots(k.Hour, slots)
			}
		}
		if err := tx.SaveBuckets(out); err != nil {
			return err
		}
		// Every period holding a rebuilt hour, recomputed from the buckets.
		affected := map[AggregationKey]bool{}
		for k := range want {
			for s := k.Hour * SlotsPerBucket; s < (k.Hour+1)*SlotsPerBucket; s++ {
				keys, err := pk.keysAt(k.CustomerID, s)
				if err != nil {
					return err
				}
				for i, key := range keys {
					affected[AggregationKey{k.CustomerID, cfg.Periods[i], key}] = true
				}
			}
		}
		akeys := make([]AggregationKey, 0, len(affected))
		for k := range affected {
			akeys = append(akeys, k)
		}
		existing, err := tx.LoadAggregations(akeys)
		if err != nil {
			return err
		}
		var aggs []*Aggregation
		for _, ag := range existing {
			lo, hi := HourOfSlot(SlotOf(ag.PeriodStart.UnixMilli())), HourOfSlot(SlotOf(ag.PeriodEnd.UnixMilli()-1))
			buckets, err := tx.LoadCustomerBuckets(ag.CustomerID, lo, hi)
			if err != nil {
				return err
			}
			states := map[string]State{}
			first, last := SlotOf(ag.PeriodStart.UnixMilli()), SlotOf(ag.PeriodEnd.UnixMilli()-1)
			for bk, b := range buckets {
				slots := map[int64]State{}
				if err := DecodeSlots(bk.Hour, b, slots); err != nil {
					return fmt.Errorf("bucket %v: %w", bk, err)
				}
				for s, st := range slots {
					if s < first || s > last {
						continue
					}
					cur := states[bk.EventType]
					if cur == nil {
						cur = fold.newState(bk.EventType)
						states[bk.EventType] = cur
					}
					if sameKind(cur, st) {
						cur.Merge(st) // a slot of another kind (an old definition) is left out
					}
				}
			}
			ag.States = states
			ag.Timestamp = now
			if ag.Complete {
				ag.Dirty = true
			}
			r.AggregationsUpdated++
			aggs = append(aggs, ag)
		}
		// The states came from the buckets, which hold no carries: the
		// gauges take theirs again from the periods before.
		if c := newCarrier(cfg, pk, tx, now); c != nil && len(aggs) > 0 {
			more, err := c.settle(aggs, aggs)
			if err != nil {
				return err
			}
			aggs = append(aggs, more...)
			r.AggregationsCreated += c.created
		}
		if err := finalizeAndSave(tx, cfg, aggs, now, &r); err != nil {
			return err
		}
		return tx.ClearRebuilds(keys)
	})
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	res.AggregationsCreated += r.AggregationsCreated
	res.AggregationsUpdated += r.AggregationsUpdated
	res.PeriodsCompleted += r.PeriodsCompleted
	res.PeriodsRevised += r.PeriodsRevised
	return nil
}
