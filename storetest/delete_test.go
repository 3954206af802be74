package storetest_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// TestAggregator_DeleteEvents: deleting events rebuilds the buckets and
// periods that held them, so every aggregate equals a from-scratch
// computation over the events that remain, and a completed period changed
// by the deletion gets a new revision and an aggregation.updated.
func TestAggregator_DeleteEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		store := open(t)
		cfg := aggConfig(t, `"timezone": "America/New_York", "maxEventAge": "0"`)
		rec := &recorder{AggregationStore: store}
		clk := &clock{now: at(t, "2026-05-01T00:00:00Z")}
		agg := &odometer.Aggregator{Store: rec, Config: func() *odometer.Config { return cfg }, Now: clk.Now}

		rng := rand.New(rand.NewPCG(7, 11))
		var events []odometer.Event
		base := at(t, "2026-03-20T00:00:00Z")
		types := []string{"e.sum", "e.max", "e.first", "e.last", "e.avg"}
		for i := 0; i < 400; i++ {
			e := event("d-"+string(rune('a'+i%26))+time.Duration(i).String(), []string{"c1", "c2", "c3"}[rng.IntN(3)],
				types[rng.IntN(len(types))], float64(rng.IntN(2000))/8-100, base.Add(time.Duration(rng.Int64N(int64(20*24*time.Hour)))))
			events = append(events, e)
		}
		from, to := at(t, "2026-03-25T00:00:00Z"), at(t, "2026-04-02T00:00:00Z")
		// Some of c2's events in the range arrive after the last run: the
		// delete takes them before any run folds them in.
		var folded, unfolded []odometer.Event
		for i, e := range events {
			if i%4 == 0 && e.CustomerID == "c2" && !e.Time.Before(from) && !e.Time.After(to) {
				unfolded = append(unfolded, e)
			} else {
				folded = append(folded, e)
			}
		}
		if len(unfolded) == 0 {
			t.Fatal("no unfolded events: the test proves less than it says")
		}
		ingest(t, store, folded)
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}
		ingest(t, store, unfolded)
		rec.take()

		f := odometer.EventFilter{CustomerID: "c2", From: &from, To: &to}
		n, res, err := agg.DeleteEvents(ctx, store, f)
		if err != nil {
			t.Fatal(err)
		}
		var remain []odometer.Event
		deleted := 0
		for _, e := range events {
			if e.CustomerID == "c2" && !e.Time.Before(from) && !e.Time.After(to) {
				deleted++
				continue
			}
			remain = append(remain, e)
		}
		if got, want := n, deleted; got != want {
			t.Fatalf("deleted %d events, want %d", got, want)
		}
		if deleted == 0 {
			t.Fatal("the filter selected no events: the test proves nothing")
		}
		if res.PeriodsRevised == 0 {
			t.Errorf("no completed period was revised: %+v", res)
		}

		// Every aggregation equals the reference over what remains; periods
		// left with no events show zero counts.
		ref := reference(cfg, remain)
		revised := 0
		for _, a := range findAll(t, store, odometer.AggregationFilter{}) {
			v := a.Values(cfg)
			g := ref[a.ID()]
			for typ := range opTypes {
				var want float64
				var count int64
				if g != nil && len(g.byType[typ]) > 0 {
					want, count = refValue(t, cfg.Events[typ].Op, g.byType[typ]), int64(len(g.byType[typ]))
				}
				if got := v.EventCounts[typ]; got != count {
					t.Errorf("%s: count of %s = %d, want %d", a.ID(), typ, got, count)
				}
				if count > 0 && v.Events[typ] != want {
					t.Errorf("%s: %s = %v, want %v", a.ID(), typ, v.Events[typ], want)
				}
			}
			if a.Revision > 1 {
				revised++
				if a.CustomerID != "c2" {
					t.Errorf("%s revised, but no event of %s was deleted", a.ID(), a.CustomerID)
				}
			}
		}
		if revised != res.PeriodsRevised {
			t.Errorf("%d aggregations at revision 2, run revised %d", revised, res.PeriodsRevised)
		}
		updated := 0
		for _, note := range rec.take() {
			if note.Type == odometer.AggregationUpdated {
				updated++
			}
		}
		if updated != res.PeriodsRevised {
			t.Errorf("%d aggregation.updated notifications, want %d", updated, res.PeriodsRevised)
		}

		// Usage over the buckets agrees as well.
		checkUsage(t, store, cfg, remain, "c2", "e.sum", odometer.Daily, base, base.Add(21*24*time.Hour))
		checkUsage(t, store, cfg, remain, "c2", "e.max", odometer.Hourly, from.Add(-6*time.Hour), to.Add(6*time.Hour))

		// Deleting again selects nothing and changes nothing.
		n, res, err = agg.DeleteEvents(ctx, store, f)
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 || res.PeriodsRevised != 0 {
			t.Errorf("second delete: %d deleted, %+v", n, res)
		}
	})
}
