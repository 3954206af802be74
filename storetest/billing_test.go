package storetest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// TestBillingPeriod: the billing period is each customer's own cycle, from
// its anchor in its zone, aggregated, completed, sent and corrected like
// every period; a customer without a profile has the calendar month.
func TestBillingPeriod(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		cfg, err := odometer.ParseConfig("systemconfig.json", []byte(`{
			"periods": ["daily", "billing"],
			"events": {"api.calls": {"op": "sum"}},
			"webhooks": [{"url": "https://billing.example.com/hook", "secret": "whsec_test"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		store := open(t)
		clk := &clock{now: time.Date(2026, 2, 10, 12, 0, 0, 0, time.UTC)}
		rec := &recorder{AggregationStore: store}
		agg := &odometer.Aggregator{Store: rec, Config: func() *odometer.Config { return cfg }, Now: clk.Now, Customers: store}
		anchor := time.Date(2025, 1, 31, 15, 0, 0, 0, time.UTC)
		for _, c := range []*odometer.Customer{
			{ID: "cust_31", BillingAnchor: &anchor},                                    // Jan 31: Feb 28, then Mar 31
			{ID: "cust_kolkata", Timezone: "Asia/Kolkata"},                             // the calendar month in Kolkata
			{ID: "cust_kathmandu", Timezone: "Asia/Kathmandu", BillingAnchor: &anchor}, // +5:45
			{ID: "cust_week", BillingInterval: odometer.IntervalWeek, BillingAnchor: &anchor},
		} {
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			c.UpdatedAt = clk.Now()
			if err := odometer.SaveCustomer(ctx, store, c, clk.Now(), cfg.Location); err != nil {
				t.Fatal(err)
			}
		}
		at := func(s string) time.Time {
			v, err := time.Parse(time.RFC3339, s)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		ingest(t, store, []odometer.Event{
			event("e1", "cust_31", "api.calls", 1, at("2026-02-27T23:00:00Z")),
			event("e2", "cust_31", "api.calls", 2, at("2026-02-28T00:00:00Z")),         // the next cycle
			event("e3", "cust_kolkata", "api.calls", 4, at("2026-01-31T18:29:00Z")),    // Jan 31 in Kolkata
			event("e4", "cust_kolkata", "api.calls", 8, at("2026-01-31T18:30:00Z")),    // Feb 1 in Kolkata
			event("e5", "cust_kathmandu", "api.calls", 16, at("2026-01-30T18:14:00Z")), // Jan 30, 23:59 in Kathmandu
			event("e6", "cust_kathmandu", "api.calls", 32, at("2026-01-30T18:15:00Z")), // Jan 31, 00:00
			event("e7", "cust_week", "api.calls", 64, at("2026-02-05T00:00:00Z")),
			event("e8", "cust_none", "api.calls", 128, at("2026-02-03T00:00:00Z")),
		})
		clk.Set(time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC))
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}
		all := aggregationsByID(t, store)
		for _, tt := range []struct {
			id         string
			start, end string
			sum        float64
		}{
			{"cust_31_billing_20260131", "2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z", 1},
			{"cust_31_billing_20260228", "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z", 2},
			{"cust_kolkata_billing_20260101", "2025-12-31T18:30:00Z", "2026-01-31T18:30:00Z", 4},
			{"cust_kolkata_billing_20260201", "2026-01-31T18:30:00Z", "2026-02-28T18:30:00Z", 8},
			{"cust_kathmandu_billing_20251231", "2025-12-30T18:15:00Z", "2026-01-30T18:15:00Z", 16},
			{"cust_kathmandu_billing_20260131", "2026-01-30T18:15:00Z", "2026-02-27T18:15:00Z", 32},
			{"cust_week_billing_20260130", "2026-01-30T00:00:00Z", "2026-02-06T00:00:00Z", 64},
			{"cust_none_billing_20260201", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", 128},
		} {
			a := all[tt.id]
			if a == nil {
				t.Errorf("no aggregation %s", tt.id)
				continue
			}
			if !a.PeriodStart.Equal(at(tt.start)) || !a.PeriodEnd.Equal(at(tt.end)) {
				t.Errorf("%s: [%s, %s), want [%s, %s)", tt.id, a.PeriodStart, a.PeriodEnd, tt.start, tt.end)
			}
			if got := a.Values(cfg).Events["api.calls"]; got != tt.sum || !a.Complete {
				t.Errorf("%s: %v, complete %v; want %v, complete", tt.id, got, a.Complete, tt.sum)
			}
		}
		sent := 0
		for _, n := range rec.take() {
			if n.Type == odometer.AggregationCompleted && len(n.AggregationID) > 0 && aggOrEmpty(all, n.AggregationID).Period == odometer.Billing {
				sent++
			}
		}
		if sent != 8 {
			t.Errorf("%d billing cycles sent, want 8", sent)
		}

		// A late event revises its completed cycle.
		ingest(t, store, []odometer.Event{event("e9", "cust_31", "api.calls", 0.5, at("2026-03-30T23:00:00Z"))})
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}
		revised := false
		for _, n := range rec.take() {
			if n.Type == odometer.AggregationUpdated && n.AggregationID == "cust_31_billing_20260228" && n.Revision == 2 {
				revised = true
			}
		}
		if got := aggregationsByID(t, store)["cust_31_billing_20260228"].Values(cfg).Events["api.calls"]; got != 2.5 || !revised {
			t.Errorf("after a late event: %v, revised %v; want 2.5 and aggregation.updated", got, revised)
		}
	})
}

func aggOrEmpty(all map[string]*odometer.Aggregation, id string) *odometer.Aggregation {
	if x := all[id]; x != nil {
		return x
	}
	return &odometer.Aggregation{}
}

// TestAlert_BillingPeriod: an alert on the billing period fires once per
// cycle of the customer, keyed by the cycle's first day in its zone.
func TestAlert_BillingPeriod(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		store := open(t)
		cfg := aggConfig(t, `"periods": ["daily", "billing"], "maxEventAge": "0",
			"webhooks": [{"url": "https://billing.example.com/hooks", "secret": "whsec_alerts"}]`)
		conf := func() *odometer.Config { return cfg }
		clk := &clock{now: at(t, "2026-05-20T10:00:00Z")}
		anchor := at(t, "2026-01-15T00:00:00+05:30")
		c := &odometer.Customer{ID: "c1", Timezone: "Asia/Kolkata", BillingAnchor: &anchor}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		c.UpdatedAt = clk.Now()
		if err := odometer.SaveCustomer(ctx, store, c, clk.Now(), cfg.Location); err != nil {
			t.Fatal(err)
		}
		ev := &odometer.AlertEvaluator{Store: store, Customers: store, Config: conf, Now: clk.Now}
		if err := store.CreateAlert(ctx, newAlert("alr_cycle", "e.sum", odometer.Billing, 100, "", clk.Now())); err != nil {
			t.Fatal(err)
		}
		seq := 0
		post := func(v float64, tm time.Time) {
			seq++
			e := event(fmt.Sprintf("ev-%d", seq), "c1", "e.sum", v, tm)
			e.ReceivedAt = clk.Now()
			ingest(t, store, []odometer.Event{e})
		}
		run := func() odometer.AlertResult {
			t.Helper()
			res, err := ev.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		run()
		// The cycle of May 15 (Kolkata) began at 18:30 UTC on May 14.
		post(60, at(t, "2026-05-14T18:30:00Z"))
		if res := run(); res.Fired != 0 {
			t.Fatalf("fired under the threshold: %+v", res)
		}
		post(40, clk.Now())
		if res := run(); res.Fired != 1 {
			t.Fatalf("did not fire at 100 in the cycle: %+v", res)
		}
		// Once per cycle; and a late event of the cycle before, which had
		// ended when it came, fires nothing.
		post(500, at(t, "2026-05-14T18:29:00Z"))
		post(1, clk.Now())
		if res := run(); res.Fired != 0 {
			t.Fatalf("fired again: %+v", res)
		}
		got := thresholdPayloads(t, store)
		if len(got) != 1 {
			t.Fatalf("payloads %v, want one", got)
		}
		for k, p := range got {
			if p.Period != odometer.Billing || p.PeriodKey != "20260515" || p.Value != 100 {
				t.Errorf("payload %s: %+v, want the billing cycle 20260515 at 100", k, p)
			}
		}
	})
}
