package storetest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// gaugeConfig bills GB-hours of storage (by region too) and the average
// number of seats.
const gaugeConfig = `{
  "periods": ["hourly", "daily", "monthly"],
  "events": { "storage.gb": { "op": "last" }, "seats.set": { "op": "last" } },
  "meters": {
    "storage.gbh":      { "eventType": "storage.gb", "op": "integral" },
    "storage.gbmin":    { "eventType": "storage.gb", "op": "integral", "unit": "minute" },
    "storage.byRegion": { "eventType": "storage.gb", "op": "integral", "groupBy": ["region"] },
    "seats":            { "eventType": "seats.set", "op": "twa" }
  },
  "webhooks": [{ "url": "https://billing.example.com/hook", "secret": "whsec_test" }]
}`

func gaugeEvent(id, typ string, v float64, t time.Time, md string) odometer.Event {
	e := event(id, "cust_g", typ, v, t)
	if md != "" {
		e.Metadata = []byte(md)
	}
	return e
}

// aggregationsByID reads every aggregation of s.
func aggregationsByID(t *testing.T, s odometer.AggregationStore) map[string]*odometer.Aggregation {
	t.Helper()
	out := map[string]*odometer.Aggregation{}
	for _, a := range findAll(t, s, odometer.AggregationFilter{}) {
		out[a.ID()] = a
	}
	return out
}

// TestGauges: a gauge holds its value from its event until the next one,
// across periods: a day with no events but a held gauge has usage, is
// completed and sent; late events revise the periods they change, up to
// the next event; and the incremental runs equal a run from scratch.
func TestGauges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		cfg, err := odometer.ParseConfig("systemconfig.json", []byte(gaugeConfig))
		if err != nil {
			t.Fatal(err)
		}
		day0 := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC) // two days before "today"
		clk := &clock{now: day0.Add(48*time.Hour + 12*time.Hour)}
		store := open(t)
		rec := &recorder{AggregationStore: store}
		agg := &odometer.Aggregator{Store: rec, Config: func() *odometer.Config { return cfg }, Now: clk.Now}
		run := func() {
			t.Helper()
			if _, err := agg.Run(ctx); err != nil {
				t.Fatal(err)
			}
		}
		value := func(id, meter string) (float64, *odometer.Aggregation) {
			t.Helper()
			all := aggregationsByID(t, store)
			a := all[id]
			if a == nil {
				t.Fatalf("no aggregation %s", id)
			}
			return a.Values(cfg).Events[meter], a
		}

		// The only event: 5 GB, two days ago at 10:00; seats 10 then 20.
		events := []odometer.Event{
			gaugeEvent("g1", "storage.gb", 5, day0.Add(10*time.Hour), `{"region": "eu"}`),
			gaugeEvent("s1", "seats.set", 10, day0, ""),
			gaugeEvent("s2", "seats.set", 20, day0.Add(12*time.Hour), ""),
		}
		ingest(t, store, events)
		run()

		for _, tt := range []struct {
			id, meter string
			want      float64
		}{
			{"cust_g_daily_20261110", "storage.gbh", 5 * 14},
			{"cust_g_daily_20261111", "storage.gbh", 5 * 24}, // no events that day
			{"cust_g_daily_20261111", "storage.gbmin", 5 * 24 * 60},
			{"cust_g_daily_20261111", "storage.byRegion", 120},
			{"cust_g_daily_20261112", "storage.gbh", 5 * 24}, // today, as if held to its end
			{"cust_g_hourly_2026111023", "storage.gbh", 5},
			{"cust_g_hourly_2026111209", "storage.gbh", 5},
			{"cust_g_monthly_202611", "storage.gbh", 5 * (24*21 - 10)},
			{"cust_g_daily_20261110", "seats", 15},
			{"cust_g_daily_20261111", "seats", 20},
		} {
			if got, a := value(tt.id, tt.meter); got != tt.want {
				t.Errorf("%s %s = %v, want %v", tt.id, tt.meter, got, tt.want)
			} else if tt.id == "cust_g_daily_20261111" && (!a.Complete || a.Values(cfg).EventCounts[tt.meter] != 0) {
				t.Errorf("%s: complete %v, eventCounts %v; want complete with no events", tt.id, a.Complete, a.Values(cfg).EventCounts)
			}
		}
		if _, a := value("cust_g_daily_20261111", "storage.byRegion"); len(a.Values(cfg).Groups["storage.byRegion"]) != 1 ||
			string(a.Values(cfg).Groups["storage.byRegion"][0].Group) != `{"region":"eu"}` {
			t.Errorf("groups = %+v", a.Values(cfg).Groups)
		}
		// The held day was sent, with its value.
		sent := false
		for _, n := range rec.take() {
			if n.AggregationID == "cust_g_daily_20261111" && n.Type == odometer.AggregationCompleted {
				var p struct {
					Data struct {
						Events map[string]float64 `json:"events"`
					} `json:"data"`
				}
				if err := json.Unmarshal(n.Payload, &p); err != nil || p.Data.Events["storage.gbh"] != 120 {
					t.Errorf("payload %s", n.Payload)
				}
				sent = true
			}
		}
		if !sent {
			t.Error("no aggregation.completed for the day with no events")
		}

		// Time passes with no event: the next days are made and sent.
		clk.Set(day0.Add(5*24*time.Hour + time.Hour))
		run()
		if got, a := value("cust_g_daily_20261113", "storage.gbh"); got != 120 || !a.Complete {
			t.Errorf("a later day: %v, complete %v", got, a.Complete)
		}
		if got, _ := value("cust_g_daily_20261115", "storage.gbh"); got != 120 {
			t.Errorf("today after the wait: %v", got)
		}
		rec.take()

		// A late event: storage dropped to 0 on the 11th at 06:00. Every
		// period after it changes, and is revised, up to today.
		late := []odometer.Event{gaugeEvent("g2", "storage.gb", 0, day0.Add(30*time.Hour), `{"region": "eu"}`)}
		ingest(t, store, late)
		events = append(events, late...)
		run()
		for id, want := range map[string]float64{
			"cust_g_daily_20261110": 70, "cust_g_daily_20261111": 30, "cust_g_daily_20261112": 0,
			"cust_g_daily_20261114": 0, "cust_g_monthly_202611": 100,
		} {
			if got, _ := value(id, "storage.gbh"); got != want {
				t.Errorf("after the late event: %s = %v, want %v", id, got, want)
			}
		}
		revised := map[string]int{}
		for _, n := range rec.take() {
			if n.Type == odometer.AggregationUpdated {
				revised[n.AggregationID] = n.Revision
			}
		}
		for _, id := range []string{"cust_g_daily_20261111", "cust_g_daily_20261112", "cust_g_daily_20261113", "cust_g_daily_20261114"} {
			if revised[id] != 2 {
				t.Errorf("%s: revision %d sent, want 2 (all sent: %v)", id, revised[id], revised)
			}
		}
		if _, ok := revised["cust_g_daily_20261110"]; ok {
			t.Error("the day before the late event was revised")
		}

		// From scratch: the same events in a fresh store, one run, give the
		// same states, byte for byte.
		fresh := open(t)
		ingest(t, fresh, cloneEvents(events))
		if _, err := (&odometer.Aggregator{Store: fresh, Config: func() *odometer.Config { return cfg }, Now: clk.Now}).Run(ctx); err != nil {
			t.Fatal(err)
		}
		// Where the incremental runs made a period that a later event
		// emptied (the gauge set to 0 before it), the row stays with no
		// states, as a period whose events were deleted does.
		inc, scratch := aggregationsByID(t, store), aggregationsByID(t, fresh)
		ids := map[string]bool{}
		for id := range inc {
			ids[id] = true
		}
		for id := range scratch {
			ids[id] = true
		}
		for id := range ids {
			a, b := inc[id], scratch[id]
			var ea, eb []byte
			if a != nil {
				ea = odometer.EncodeStates(a.States)
			}
			if b != nil {
				eb = odometer.EncodeStates(b.States)
			}
			if a == nil || (b == nil && len(ea) != 0) || (b != nil && !bytes.Equal(ea, eb)) {
				t.Errorf("%s: incremental %x, from scratch %x", id, ea, eb)
			}
		}
	})
}

func cloneEvents(events []odometer.Event) []odometer.Event {
	out := make([]odometer.Event, len(events))
	copy(out, events)
	for i := range out {
		out[i].Seq = 0
	}
	return out
}

// TestGauges_PruneAndDelete: a carried gauge outlives the pruning of the
// event that set it; deleting a later event rebuilds its periods, which
// take their carries again from the periods before.
func TestGauges_PruneAndDelete(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		cfg, err := odometer.ParseConfig("systemconfig.json", []byte(gaugeConfig))
		if err != nil {
			t.Fatal(err)
		}
		day0 := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
		clk := &clock{now: day0.Add(36 * time.Hour)}
		store := open(t)
		agg := &odometer.Aggregator{Store: store, Config: func() *odometer.Config { return cfg }, Now: clk.Now}
		run := func() {
			t.Helper()
			if _, err := agg.Run(ctx); err != nil {
				t.Fatal(err)
			}
		}
		value := func(id string) float64 {
			t.Helper()
			a := aggregationsByID(t, store)[id]
			if a == nil {
				t.Fatalf("no aggregation %s", id)
			}
			return a.Values(cfg).Events["storage.gbh"]
		}
		ingest(t, store, []odometer.Event{gaugeEvent("g1", "storage.gb", 5, day0.Add(10*time.Hour), `{"region": "eu"}`)})
		run()
		st, err := store.RunState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := store.PruneEvents(ctx, st.Watermark, clk.Now()); err != nil || n != 1 {
			t.Fatalf("pruned %d, %v; want the one event", n, err)
		}
		clk.Set(day0.Add(4*24*time.Hour + time.Hour))
		run()
		if got := value("cust_g_daily_20261113"); got != 120 {
			t.Errorf("a day after the event was pruned: %v, want 120", got)
		}

		// A later event, then deleted: the days after it go back to 5 GB.
		ingest(t, store, []odometer.Event{gaugeEvent("g2", "storage.gb", 10, day0.Add(36*time.Hour), `{"region": "eu"}`)})
		run()
		if got := value("cust_g_daily_20261112"); got != 240 {
			t.Fatalf("after a later event of 10 GB: %v, want 240", got)
		}
		n, _, err := agg.DeleteEvents(ctx, store, odometer.EventFilter{CustomerID: "cust_g", EventType: "storage.gb"})
		if err != nil || n != 1 {
			t.Fatalf("deleted %d, %v", n, err)
		}
		for id, want := range map[string]float64{"cust_g_daily_20261111": 120, "cust_g_daily_20261112": 120, "cust_g_daily_20261114": 120, "cust_g_daily_20261110": 70} {
			if got := value(id); got != want {
				t.Errorf("after the delete: %s = %v, want %v", id, got, want)
			}
		}
	})
}

// TestGauges_CarryIntoAPeriodOfTheSameFlush: a run whose events reach a period
// that a gauge's carry also reaches keeps both in that period: the carry
// goes into the run's own copy of the aggregation, never into a second
// copy read from the store that, saved after, would drop the run's other
// meters. The order in which the run meets its periods varies (a map), so
// the run is repeated on fresh stores.
func TestGauges_CarryIntoAPeriodOfTheSameFlush(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		cfg, err := odometer.ParseConfig("systemconfig.json", []byte(`{
  "periods": ["hourly", "daily", "monthly"],
  "events": { "storage.gb": { "op": "last" }, "api.calls": { "op": "sum" } },
  "meters": { "storage.gbh": { "eventType": "storage.gb", "op": "integral" } }
}`))
		if err != nil {
			t.Fatal(err)
		}
		day0 := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
		for rep := 0; rep < 8; rep++ {
			store := open(t)
			agg := &odometer.Aggregator{Store: store, Config: func() *odometer.Config { return cfg }, Now: (&clock{now: day0.Add(96 * time.Hour)}).Now}
			events := []odometer.Event{gaugeEvent("g1", "storage.gb", 5, day0.Add(10*time.Hour), "")}
			for d := 1; d <= 3; d++ {
				events = append(events, gaugeEvent("c"+strconv.Itoa(d), "api.calls", float64(d), day0.Add(time.Duration(24*d+9)*time.Hour), ""))
			}
			ingest(t, store, events)
			if _, err := agg.Run(ctx); err != nil {
				t.Fatal(err)
			}
			all := aggregationsByID(t, store)
			for d := 1; d <= 3; d++ {
				id := "cust_g_daily_" + day0.AddDate(0, 0, d).Format("20060102")
				a := all[id]
				if a == nil {
					t.Fatalf("run %d: no aggregation %s", rep, id)
				}
				v := a.Values(cfg).Events
				if v["api.calls"] != float64(d) || v["storage.gbh"] != 120 {
					t.Fatalf("run %d: %s = %v, want api.calls %d and storage.gbh 120", rep, id, v, d)
				}
			}
		}
	})
}
