package storetest_test

import (
	"context"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// TestAggregator_Prune: the retention deletes raw events older than it
// whose periods are all complete and delivered, and no other; the
// aggregations stay as they were.
func TestAggregator_Prune(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		store := open(t)
		cfg := aggConfig(t, `"periods": ["daily", "monthly"], "maxEventAge": "0", "retention": {"events": "30d"},
			"webhooks": [{"url": "https://billing.example.com/hooks", "secret": "whsec_prune"}]`)
		clk := &clock{now: at(t, "2026-06-15T12:00:00Z")}
		agg := &odometer.Aggregator{Store: store, Config: func() *odometer.Config { return cfg }, Now: clk.Now}

		events := []odometer.Event{
			event("p-1", "c1", "e.sum", 1, at(t, "2026-03-10T10:00:00Z")), // March: complete; delivered below
			event("p-2", "c1", "e.sum", 2, at(t, "2026-03-20T10:00:00Z")),
			event("p-3", "c2", "e.sum", 4, at(t, "2026-04-05T10:00:00Z")), // April: complete, its delivery left pending
			event("p-4", "c1", "e.sum", 8, at(t, "2026-05-30T10:00:00Z")), // inside the retention
			event("p-5", "c1", "e.sum", 16, at(t, "2026-06-14T10:00:00Z")),
		}
		ingest(t, store, events)
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}
		before := findAll(t, store, odometer.AggregationFilter{})

		// Deliver everything but c2's.
		var ds []*odometer.Delivery
		for {
			page, err := store.ClaimDeliveries(ctx, "https://billing.example.com/hooks", clk.Now(), time.Minute, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			ds = append(ds, page...)
		}
		if len(ds) == 0 {
			t.Fatal("no deliveries to settle: the test proves nothing")
		}
		now := clk.Now()
		for _, d := range ds {
			d.Attempts = 1
			d.LastAttemptAt = &now
			if d.CustomerID == "c2" {
				d.Status, d.LastError = odometer.DeliveryFailed, "the endpoint answered 500"
			} else {
				d.Status, d.DeliveredAt = odometer.DeliveryDelivered, &now
			}
		}
		if err := store.RecordAttempts(ctx, ds); err != nil {
			t.Fatal(err)
		}

		n, err := agg.Prune(ctx, store)
		if err != nil {
			t.Fatal(err)
		}
		// March goes; April's delivery is failed, so April onwards stays;
		// June is open.
		if got, want := n, 2; got != want {
			t.Errorf("pruned %d events, want %d", got, want)
		}
		left, _, err := store.FindEvents(ctx, odometer.EventFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, e := range left {
			ids[e.ID] = true
		}
		for _, id := range []string{"p-3", "p-4", "p-5"} {
			if !ids[id] {
				t.Errorf("event %s pruned; its period is not settled or it is inside the retention", id)
			}
		}
		for _, id := range []string{"p-1", "p-2"} {
			if ids[id] {
				t.Errorf("event %s kept", id)
			}
		}

		// The aggregations are as they were, and a run changes nothing.
		res, err := agg.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.PeriodsRevised != 0 || res.AggregationsUpdated != 0 {
			t.Errorf("run after prune: %+v", res)
		}
		after := findAll(t, store, odometer.AggregationFilter{})
		if len(after) != len(before) {
			t.Fatalf("%d aggregations after prune, %d before", len(after), len(before))
		}
		for i := range before {
			b, a := before[i].Values(cfg), after[i].Values(cfg)
			if before[i].ID() != after[i].ID() || b.Events["e.sum"] != a.Events["e.sum"] || b.EventCounts["e.sum"] != a.EventCounts["e.sum"] {
				t.Errorf("%s changed: %+v, was %+v", after[i].ID(), a, b)
			}
		}

		// With no retention, nothing goes.
		cfg2 := *cfg
		cfg2.Retention.Events = 0
		agg2 := &odometer.Aggregator{Store: store, Config: func() *odometer.Config { return &cfg2 }, Now: clk.Now}
		if n, err := agg2.Prune(ctx, store); err != nil || n != 0 {
			t.Errorf("prune without retention: %d, %v", n, err)
		}
	})
}
