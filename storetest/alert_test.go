package storetest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// alertConfig has every op, daily and monthly periods and one webhook.
func alertConfig(tb testing.TB) *odometer.Config {
	return aggConfig(tb, `"periods": ["daily", "monthly"], "maxEventAge": "0",
		"webhooks": [{"url": "https://billing.example.com/hooks", "secret": "whsec_alerts"}]`)
}

func newAlert(id, meter string, p odometer.Period, threshold float64, customer string, now time.Time) *odometer.Alert {
	return &odometer.Alert{ID: id, Meter: meter, Period: p, Threshold: threshold, CustomerID: customer, CreatedAt: now}
}

// thresholdPayloads returns the usage.threshold_reached payloads of every
// delivery, keyed by customer, alert and period key.
func thresholdPayloads(tb testing.TB, store odometer.Store) map[string]odometer.ThresholdPayload {
	tb.Helper()
	ds, _, err := store.FindDeliveries(context.Background(), odometer.DeliveryFilter{Limit: 1000})
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]odometer.ThresholdPayload{}
	for _, d := range ds {
		if d.Type != odometer.UsageThresholdReached {
			continue
		}
		var p odometer.ThresholdPayload
		if err := json.Unmarshal(d.Payload, &p); err != nil {
			tb.Fatal(err)
		}
		k := p.CustomerID + " " + p.AlertID + " " + p.PeriodKey
		if _, dup := out[k]; dup {
			tb.Errorf("two deliveries of %s", k)
		}
		if d.AggregationID != "" || d.CustomerID != p.CustomerID {
			tb.Errorf("delivery %s: aggregationId %q, customerId %q", d.ID, d.AggregationID, d.CustomerID)
		}
		out[k] = p
	}
	return out
}

func TestAlertStore_CreateFindDelete(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		store := open(t)
		now := at(t, "2026-05-01T10:00:00Z")
		if got, err := store.FindAlerts(ctx); err != nil || len(got) != 0 {
			t.Fatalf("FindAlerts on an empty store: %v, %v", got, err)
		}
		a := newAlert("alr_1", "e.sum", "daily", 1e4, "", now)
		b := newAlert("alr_2", "e.count", "monthly", 0.5, "cust_b", now.Add(time.Second))
		for _, x := range []*odometer.Alert{a, b} {
			if err := store.CreateAlert(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		got, err := store.FindAlerts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || *got[0] != *a || *got[1] != *b {
			t.Fatalf("FindAlerts = %+v %+v, want %+v %+v", got[0], got[1], a, b)
		}
		if err := store.DeleteAlert(ctx, "alr_1"); err != nil {
			t.Fatal(err)
		}
		var oe *odometer.Error
		if err := store.DeleteAlert(ctx, "alr_1"); !errors.As(err, &oe) || oe.Code != odometer.ENOTFOUND {
			t.Fatalf("deleting it again: %v, want ENOTFOUND", err)
		}
		if got, _ := store.FindAlerts(ctx); len(got) != 1 || got[0].ID != "alr_2" {
			t.Fatalf("after the delete: %+v", got)
		}
	})
}

// TestAlertEvaluator follows customers through a day and the next: an
// alert fires when the value first reaches the threshold, from the
// aggregates and the events not yet folded into them, once per alert,
// customer and period, and not for customers that stay under it, events
// of a period already over, or another customer's alert.
func TestAlertEvaluator(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		store := open(t)
		cfg := alertConfig(t)
		clk := &clock{now: at(t, "2026-05-01T10:00:00Z")}
		conf := func() *odometer.Config { return cfg }
		agg := &odometer.Aggregator{Store: store, Config: conf, Now: clk.Now}
		kicks := 0
		ev := &odometer.AlertEvaluator{Store: store, Config: conf, Now: clk.Now, Fired: func(int) { kicks++ }}
		seq := 0
		post := func(customer, typ string, v float64, tm time.Time) {
			seq++
			e := event(fmt.Sprintf("ev-%d", seq), customer, typ, v, tm)
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
		// Before any alert, nothing is evaluated; the first alert starts
		// at the newest event.
		post("c1", "e.sum", 500, clk.Now())
		if res := run(); res.Events != 0 {
			t.Fatalf("with no alert: %+v", res)
		}
		for _, a := range []*odometer.Alert{
			newAlert("alr_sum", "e.sum", "daily", 100, "", clk.Now()),
			newAlert("alr_count", "e.count", "monthly", 3, "c2", clk.Now()),
			newAlert("alr_gone", "e.sum", "daily", 1, "", clk.Now()),
		} {
			if err := store.CreateAlert(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		if err := store.DeleteAlert(ctx, "alr_gone"); err != nil {
			t.Fatal(err)
		}
		if res := run(); res.Events != 0 || res.Fired != 0 {
			t.Fatalf("the event before the alerts was evaluated: %+v", res)
		}

		// c4 has 70 folded into the aggregates and 40 more past them.
		post("c4", "e.sum", 70, clk.Now())
		post("c3", "e.sum", 99, clk.Now())
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}
		clk.Set(clk.Now().Add(time.Minute))
		post("c2", "e.sum", 60, clk.Now())
		post("c2", "e.count", 0, clk.Now())
		post("c1", "e.count", 0, clk.Now())
		post("c1", "e.count", 0, clk.Now())
		post("c1", "e.count", 0, clk.Now())
		if res := run(); res.Fired != 0 {
			t.Fatalf("fired under the threshold: %+v: %v", res, thresholdPayloads(t, store))
		}
		post("c4", "e.sum", 40, clk.Now())
		post("c2", "e.sum", 39.5, clk.Now())
		post("c2", "e.count", 0, clk.Now())
		post("c2", "e.count", 0, clk.Now())
		// A late event of yesterday: its period was over when it arrived.
		post("c3", "e.sum", 1000, at(t, "2026-04-30T23:00:00Z"))
		// c1's 500 came before the alert; its next event crosses.
		post("c1", "e.sum", 1, clk.Now())
		if res := run(); res.Fired != 3 {
			t.Fatalf("fired %d, want 3 (c1, c4, c2's count): %v", res.Fired, thresholdPayloads(t, store))
		}
		if kicks != 1 {
			t.Errorf("Fired was called %d times, want 1", kicks)
		}
		// More of the same period: nothing more.
		post("c4", "e.sum", 1000, clk.Now())
		post("c2", "e.count", 0, clk.Now())
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}
		post("c4", "e.sum", 1000, clk.Now())
		if res := run(); res.Fired != 0 || res.Events != 3 {
			t.Fatalf("the same periods again: %+v", res)
		}
		// The next day is another period for the daily alert only.
		clk.Set(at(t, "2026-05-02T08:00:00Z"))
		post("c4", "e.sum", 100, clk.Now())
		post("c2", "e.count", 0, clk.Now())
		if res := run(); res.Fired != 1 {
			t.Fatalf("the next day: %+v", res)
		}
		// One pass over two days of one customer: each day its own value.
		clk.Set(at(t, "2026-05-02T23:59:00Z"))
		post("c6", "e.sum", 60, clk.Now())
		clk.Set(at(t, "2026-05-03T00:01:00Z"))
		post("c6", "e.sum", 30, clk.Now())
		if res := run(); res.Fired != 0 || res.Events != 2 {
			t.Fatalf("two days under the threshold: %+v: %v", res, thresholdPayloads(t, store))
		}
		// A value kept from one pass to the next takes in new events once,
		// across an aggregation run that folds some of them.
		post("c6", "e.sum", 30, clk.Now())
		if res := run(); res.Fired != 0 {
			t.Fatalf("c6 at 60: %+v", res)
		}
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}
		post("c6", "e.sum", 39, clk.Now())
		if res := run(); res.Fired != 0 {
			t.Fatalf("c6 at 99: %+v", res)
		}
		post("c6", "e.sum", 1, clk.Now())
		if res := run(); res.Fired != 1 {
			t.Fatalf("c6 at 100: %+v", res)
		}

		got := thresholdPayloads(t, store)
		want := map[string]odometer.ThresholdPayload{
			"c1 alr_sum 20260501": {Type: "usage.threshold_reached", CustomerID: "c1", AlertID: "alr_sum", Meter: "e.sum", Period: "daily", PeriodKey: "20260501", Threshold: 100, Value: 501},
			"c4 alr_sum 20260501": {Type: "usage.threshold_reached", CustomerID: "c4", AlertID: "alr_sum", Meter: "e.sum", Period: "daily", PeriodKey: "20260501", Threshold: 100, Value: 110},
			"c2 alr_count 202605": {Type: "usage.threshold_reached", CustomerID: "c2", AlertID: "alr_count", Meter: "e.count", Period: "monthly", PeriodKey: "202605", Threshold: 3, Value: 3},
			"c4 alr_sum 20260502": {Type: "usage.threshold_reached", CustomerID: "c4", AlertID: "alr_sum", Meter: "e.sum", Period: "daily", PeriodKey: "20260502", Threshold: 100, Value: 100},
			"c6 alr_sum 20260503": {Type: "usage.threshold_reached", CustomerID: "c6", AlertID: "alr_sum", Meter: "e.sum", Period: "daily", PeriodKey: "20260503", Threshold: 100, Value: 100},
		}
		if len(got) != len(want) {
			t.Errorf("%d alerts sent, want %d: %+v", len(got), len(want), got)
		}
		for k, w := range want {
			g, ok := got[k]
			if !ok {
				t.Errorf("no alert %s", k)
				continue
			}
			if g.Created == 0 {
				t.Errorf("%s: no created", k)
			}
			g.Created = 0
			if g != w {
				t.Errorf("%s = %+v, want %+v", k, g, w)
			}
		}

		// Alert deliveries are recorded like every other, and leave the
		// aggregations' webhook status alone.
		ds, err := store.ClaimDeliveries(ctx, "https://billing.example.com/hooks", clk.Now(), time.Minute, 100)
		if err != nil {
			t.Fatal(err)
		}
		alerts := 0
		now := clk.Now()
		for _, d := range ds {
			if d.Type == odometer.UsageThresholdReached {
				alerts++
			}
			d.Status, d.Attempts, d.DeliveredAt, d.LastAttemptAt, d.NextAttemptAt = odometer.DeliveryDelivered, 1, &now, &now, nil
		}
		if alerts != 5 {
			t.Fatalf("claimed %d alert deliveries, want 5", alerts)
		}
		if err := store.RecordAttempts(ctx, ds); err != nil {
			t.Fatal(err)
		}
		for _, a := range findAll(t, store, odometer.AggregationFilter{}) {
			if a.Revision == 0 && (a.Webhook.Attempts != 0 || a.Webhook.Delivered) {
				t.Errorf("aggregation %s has the webhook status %+v of an alert's delivery", a.ID(), a.Webhook)
			}
		}
	})
}

// TestAlertEvaluator_Concurrent runs two evaluators, as two replicas do,
// against customers crossing their threshold: each alert goes out once.
func TestAlertEvaluator_Concurrent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		store := open(t)
		cfg := alertConfig(t)
		clk := &clock{now: at(t, "2026-05-01T10:00:00Z")}
		conf := func() *odometer.Config { return cfg }
		if err := store.CreateAlert(ctx, newAlert("alr_c", "e.sum", "daily", 10, "", clk.Now())); err != nil {
			t.Fatal(err)
		}
		evs := []*odometer.AlertEvaluator{
			{Store: store, Config: conf, Now: clk.Now, Chunk: 7},
			{Store: store, Config: conf, Now: clk.Now, Chunk: 5},
		}
		const customers = 40
		var wg sync.WaitGroup
		stop := make(chan struct{})
		var mu sync.Mutex
		fired := 0
		for _, ev := range evs {
			wg.Add(1)
			go func(ev *odometer.AlertEvaluator) {
				defer wg.Done()
				for {
					res, err := ev.RunOnce(ctx)
					var oe *odometer.Error
					if err != nil && !(errors.As(err, &oe) && oe.Code == odometer.ECONFLICT) {
						t.Error(err)
						return
					}
					mu.Lock()
					fired += res.Fired
					mu.Unlock()
					select {
					case <-stop:
						return
					default:
					}
				}
			}(ev)
		}
		for i := range 4 {
			var batch []odometer.Event
			for c := range customers {
				e := event(fmt.Sprintf("cc-%d-%d", i, c), fmt.Sprintf("c%02d", c), "e.sum", 3, clk.Now())
				e.ReceivedAt = clk.Now()
				batch = append(batch, e)
			}
			ingest(t, store, batch)
		}
		// Let them catch up, then stop them.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			wm, _ := store.AlertWatermark(ctx)
			max, _ := store.MaxSeq(ctx)
			if wm == max {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		if got := len(thresholdPayloads(t, store)); got != customers || fired != customers {
			t.Fatalf("%d alerts sent, %d reported fired, want %d", got, fired, customers)
		}
	})
}

// TestAlertStore_FiredOnce: the store records a firing once, whoever
// asks, and only for an alert that exists.
func TestAlertStore_FiredOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		store := open(t)
		now := at(t, "2026-05-01T10:00:00Z")
		if err := store.CreateAlert(ctx, newAlert("alr_o", "e.sum", "daily", 10, "", now)); err != nil {
			t.Fatal(err)
		}
		firing := func(alert string) *odometer.AlertFiring {
			return &odometer.AlertFiring{FiringKey: odometer.FiringKey{AlertID: alert, CustomerID: "c", Period: "daily", PeriodKey: "20260501"},
				Value: 12, FiredAt: now, Notification: &odometer.Notification{Type: odometer.UsageThresholdReached, CustomerID: "c",
					Payload: []byte(`{}`), CreatedAt: now, Endpoints: []string{"https://a.example.com", "https://b.example.com"}}}
		}
		n, err := store.FireAlerts(ctx, 0, 0, []*odometer.AlertFiring{firing("alr_o"), firing("alr_missing")})
		if err != nil || n != 1 {
			t.Fatalf("FireAlerts = %d, %v; want 1", n, err)
		}
		n, err = store.FireAlerts(ctx, 0, 0, []*odometer.AlertFiring{firing("alr_o")})
		if err != nil || n != 0 {
			t.Fatalf("FireAlerts again = %d, %v; want 0", n, err)
		}
		var oe *odometer.Error
		if _, err := store.FireAlerts(ctx, 5, 6, nil); !errors.As(err, &oe) || oe.Code != odometer.ECONFLICT {
			t.Fatalf("FireAlerts from a watermark that is not the store's: %v, want ECONFLICT", err)
		}
		done, err := store.FindFirings(ctx, []odometer.FiringKey{firing("alr_o").FiringKey, firing("alr_missing").FiringKey})
		if err != nil || len(done) != 1 || done[firing("alr_o").FiringKey] == nil {
			t.Fatalf("FindFirings = %v, %v", done, err)
		}
		if f := done[firing("alr_o").FiringKey]; f.FiringKey != firing("alr_o").FiringKey || f.Value != 12 || !f.FiredAt.Equal(now) {
			t.Errorf("FindFirings: %+v, want value 12 fired at %v", f, now)
		}
		ds, _, err := store.FindDeliveries(ctx, odometer.DeliveryFilter{Limit: 10})
		if err != nil || len(ds) != 2 {
			t.Fatalf("%d deliveries, want one per endpoint: %v", len(ds), err)
		}
	})
}

// TestDeliveryStore_AlertsFirst: an endpoint's alert deliveries are
// claimed before its other due deliveries, even older ones: an alert is
// due in seconds, and must not wait behind the period webhooks of a long
// catch-up run.
func TestDeliveryStore_AlertsFirst(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		store := open(t)
		now := at(t, "2026-05-01T10:00:00Z")
		const endpoint = "https://billing.example.com/hooks"
		var notes []*odometer.Notification
		for i := range 5 {
			notes = append(notes, &odometer.Notification{Type: odometer.AggregationCompleted, AggregationID: fmt.Sprintf("c%d_daily_20260430", i),
				CustomerID: fmt.Sprintf("c%d", i), Revision: 1, Payload: []byte(`{}`), CreatedAt: now.Add(-time.Minute), Endpoints: []string{endpoint}})
		}
		if err := store.Aggregate(ctx, func(tx odometer.AggregationTx) error { return tx.AddNotifications(notes) }); err != nil {
			t.Fatal(err)
		}
		if err := store.CreateAlert(ctx, newAlert("alr_f", "e.sum", "daily", 10, "", now)); err != nil {
			t.Fatal(err)
		}
		f := &odometer.AlertFiring{FiringKey: odometer.FiringKey{AlertID: "alr_f", CustomerID: "c9", Period: "daily", PeriodKey: "20260501"},
			Value: 12, FiredAt: now, Notification: &odometer.Notification{Type: odometer.UsageThresholdReached, CustomerID: "c9",
				Payload: []byte(`{}`), CreatedAt: now, Endpoints: []string{endpoint}}}
		if n, err := store.FireAlerts(ctx, 0, 0, []*odometer.AlertFiring{f}); err != nil || n != 1 {
			t.Fatalf("FireAlerts = %d, %v", n, err)
		}
		ds, err := store.ClaimDeliveries(ctx, endpoint, now, time.Minute, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 3 || ds[0].Type != odometer.UsageThresholdReached || ds[1].Type != odometer.AggregationCompleted || ds[1].CustomerID != "c0" {
			t.Fatalf("claimed %d: %+v, want the alert, then the oldest others", len(ds), ds)
		}
		rest, err := store.ClaimDeliveries(ctx, endpoint, now, time.Minute, 10)
		if err != nil || len(rest) != 3 {
			t.Fatalf("then claimed %d, %v; want the 3 left", len(rest), err)
		}
	})
}

// TestAlertEvaluator_BehindTheAggregation: an evaluator that lags behind
// the aggregation (one event per pass here) reads values that already hold
// events it has not evaluated yet, and must not count them again.
func TestAlertEvaluator_BehindTheAggregation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		store := open(t)
		cfg := alertConfig(t)
		clk := &clock{now: at(t, "2026-05-01T10:00:00Z")}
		conf := func() *odometer.Config { return cfg }
		agg := &odometer.Aggregator{Store: store, Config: conf, Now: clk.Now}
		ev := &odometer.AlertEvaluator{Store: store, Config: conf, Now: clk.Now, Chunk: 1}
		if err := store.CreateAlert(ctx, newAlert("alr_b", "e.sum", "daily", 100, "", clk.Now())); err != nil {
			t.Fatal(err)
		}
		for i, v := range []float64{50, 30} {
			e := event(fmt.Sprintf("b-%d", i), "c7", "e.sum", v, clk.Now())
			ingest(t, store, []odometer.Event{e})
		}
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if res, err := ev.RunOnce(ctx); err != nil || res.Fired != 0 || res.Events != 2 {
			t.Fatalf("80 in two passes: %+v, %v: %v", res, err, thresholdPayloads(t, store))
		}
		ingest(t, store, []odometer.Event{event("b-2", "c7", "e.sum", 20, clk.Now())})
		if res, err := ev.RunOnce(ctx); err != nil || res.Fired != 1 {
			t.Fatalf("100: %+v, %v", res, err)
		}
		if p := thresholdPayloads(t, store)["c7 alr_b 20260501"]; p.Value != 100 {
			t.Fatalf("value %v, want 100", p.Value)
		}
	})
}

// TestAlertStatuses: the alerts that apply to a customer, each with its
// period holding now (the customer's billing cycle for billing), the
// customer's value so far from the folded and the pending events, and the
// firing the evaluator recorded in that period, with its value and time.
func TestAlertStatuses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		store := open(t)
		cfg := aggConfig(t, `"periods": ["daily", "monthly", "billing"], "maxEventAge": "0",
			"webhooks": [{"url": "https://billing.example.com/hooks", "secret": "whsec_alerts"}]`)
		conf := func() *odometer.Config { return cfg }
		clk := &clock{now: at(t, "2026-05-20T10:00:00Z")}
		agg := &odometer.Aggregator{Store: store, Config: conf, Now: clk.Now, Customers: store}
		ev := &odometer.AlertEvaluator{Store: store, Config: conf, Now: clk.Now, Customers: store}
		anchor := at(t, "2026-01-15T00:00:00Z")
		if err := odometer.SaveCustomer(ctx, store, &odometer.Customer{ID: "c1", BillingAnchor: &anchor, BillingInterval: odometer.IntervalMonth}, clk.Now(), cfg.Location); err != nil {
			t.Fatal(err)
		}
		alerts := []*odometer.Alert{
			newAlert("alr_own", "e.sum", "daily", 100, "c1", clk.Now()),
			newAlert("alr_all", "e.count", "monthly", 3, "", clk.Now()),
			newAlert("alr_cycle", "e.max", "billing", 50, "c1", clk.Now()),
			newAlert("alr_other", "e.sum", "daily", 1, "c2", clk.Now()),
			// An op alerts do not watch (the configuration changed under
			// it): it sleeps.
			newAlert("alr_avg", "e.avg", "daily", 1, "", clk.Now()),
		}
		for _, a := range alerts {
			if err := store.CreateAlert(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		seq := 0
		post := func(customer, typ string, v float64, tm time.Time) {
			seq++
			e := event(fmt.Sprintf("ev-%d", seq), customer, typ, v, tm)
			e.ReceivedAt = clk.Now()
			ingest(t, store, []odometer.Event{e})
		}
		// Yesterday's and the last cycle's events count in no period of now.
		post("c1", "e.sum", 1000, at(t, "2026-05-19T10:00:00Z"))
		post("c1", "e.max", 70, at(t, "2026-05-14T10:00:00Z"))
		post("c1", "e.sum", 60, clk.Now())
		post("c1", "e.count", 1, clk.Now())
		post("c1", "e.max", 20, clk.Now())
		post("c2", "e.sum", 5, clk.Now())
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if res, err := ev.RunOnce(ctx); err != nil || res.Fired != 1 {
			t.Fatalf("first pass: %+v, %v; want c2's alert fired", res, err)
		}
		// c1 crosses 100 in the day; these events stay pending.
		clk.Set(clk.Now().Add(5 * time.Minute))
		firedAt := clk.Now()
		post("c1", "e.sum", 45.5, clk.Now())
		post("c1", "e.count", 1, clk.Now())
		if res, err := ev.RunOnce(ctx); err != nil || res.Fired != 1 {
			t.Fatalf("second pass: %+v, %v; want alr_own fired", res, err)
		}
		clk.Set(clk.Now().Add(time.Minute))
		post("c1", "e.sum", 4.5, clk.Now())

		if got := odometer.AlertsFor(alerts, "c1", true); len(got) != 2 || got[0].ID != "alr_own" || got[1].ID != "alr_cycle" {
			t.Fatalf("AlertsFor own only: %v", got)
		}
		apply := odometer.AlertsFor(alerts, "c1", false)
		var ids []string
		for _, a := range apply {
			ids = append(ids, a.ID)
		}
		if got, want := fmt.Sprint(ids), "[alr_own alr_all alr_cycle alr_avg]"; got != want {
			t.Fatalf("AlertsFor c1: %s, want %s", got, want)
		}
		sts, err := odometer.AlertStatuses(ctx, store, store, store, cfg, "c1", apply, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		type want struct {
			active     bool
			key        string
			start, end string
			value      float64
			count      int64
			firedValue float64
			firedAt    time.Time
			fired      bool
		}
		for i, w := range []want{
			{true, "20260520", "2026-05-20T00:00:00Z", "2026-05-21T00:00:00Z", 110, 3, 105.5, firedAt, true},
			{true, "202605", "2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z", 2, 2, 0, time.Time{}, false},
			{true, "20260515", "2026-05-15T00:00:00Z", "2026-06-15T00:00:00Z", 20, 1, 0, time.Time{}, false},
			{false, "", "", "", 0, 0, 0, time.Time{}, false},
		} {
			s := sts[i]
			if s.Alert != apply[i] || s.Active != w.active || s.PeriodKey != w.key || s.Value != w.value || s.Count != w.count {
				t.Errorf("%s: %+v, want %+v", apply[i].ID, s, w)
			}
			if w.active && s.Location != cfg.Location {
				t.Errorf("%s: zone %v, want the configuration's (c1 has none of its own)", apply[i].ID, s.Location)
			}
			if w.active && (!s.Start.Equal(at(t, w.start)) || !s.End.Equal(at(t, w.end))) {
				t.Errorf("%s: period %v..%v, want %s..%s", apply[i].ID, s.Start, s.End, w.start, w.end)
			}
			if (s.Fired != nil) != w.fired {
				t.Fatalf("%s: fired %+v, want fired %v", apply[i].ID, s.Fired, w.fired)
			}
			if w.fired && (s.Fired.Value != w.firedValue || !s.Fired.FiredAt.Equal(w.firedAt) || s.Fired.PeriodKey != w.key || s.Fired.CustomerID != "c1") {
				t.Errorf("%s: fired %+v, want value %v at %v", apply[i].ID, s.Fired, w.firedValue, w.firedAt)
			}
		}
		// The next day: another period, not fired, and its value anew.
		sts, err = odometer.AlertStatuses(ctx, store, store, store, cfg, "c1", apply[:1], at(t, "2026-05-21T08:00:00Z"))
		if err != nil {
			t.Fatal(err)
		}
		if s := sts[0]; s.PeriodKey != "20260521" || s.Fired != nil || s.Value != 0 || s.Count != 0 {
			t.Errorf("the next day: %+v", s)
		}
	})
}
