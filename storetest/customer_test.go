package storetest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

func put(tb testing.TB, s odometer.CustomerStore, c *odometer.Customer, now time.Time) *odometer.Customer {
	tb.Helper()
	if err := c.Validate(); err != nil {
		tb.Fatal(err)
	}
	c.UpdatedAt = now
	if err := s.PutCustomer(context.Background(), c); err != nil {
		tb.Fatal(err)
	}
	return c
}

func findCustomer(tb testing.TB, s odometer.CustomerStore, id string) *odometer.Customer {
	tb.Helper()
	c, err := s.FindCustomer(context.Background(), id)
	if err != nil {
		tb.Fatalf("FindCustomer(%s): %v", id, err)
	}
	return c
}

func timeText(t *time.Time) string {
	if t == nil {
		return "none"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// TestCustomers_PutFind: a profile is stored whole, replaced whole, and
// keeps the time it was first created.
func TestCustomers_PutFind(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		s := open(t)
		ctx := context.Background()
		if _, err := s.FindCustomer(ctx, "cust_nobody"); odometer.ErrorCode(err) != odometer.ENOTFOUND {
			t.Fatalf("FindCustomer of an unknown customer: %v, want ENOTFOUND", err)
		}
		anchor := at(t, "2026-01-15T00:00:00+05:30")
		t0 := at(t, "2026-02-01T10:00:00.123Z")
		put(t, s, &odometer.Customer{ID: "cust_1", Name: "Acme Ltd", Timezone: "Asia/Kolkata", BillingAnchor: &anchor,
			BillingInterval: odometer.IntervalYear, Metadata: []byte(`{"plan": "pro", "seats": [1, 2]}`)}, t0)

		c := findCustomer(t, s, "cust_1")
		if got, want := c.Name, "Acme Ltd"; got != want {
			t.Errorf("name %q, want %q", got, want)
		}
		if got, want := c.Timezone, "Asia/Kolkata"; got != want {
			t.Errorf("timezone %q, want %q", got, want)
		}
		if c.BillingAnchor == nil || !c.BillingAnchor.Equal(anchor) {
			t.Errorf("billing anchor %s, want %s", timeText(c.BillingAnchor), timeText(&anchor))
		}
		if got, want := c.BillingInterval, odometer.IntervalYear; got != want {
			t.Errorf("interval %q, want %q", got, want)
		}
		if got, want := string(c.Metadata), `{"plan":"pro","seats":[1,2]}`; got != want {
			t.Errorf("metadata %s, want %s", got, want)
		}
		if !c.CreatedAt.Equal(t0) || !c.UpdatedAt.Equal(t0) {
			t.Errorf("created %s, updated %s, want both %s", c.CreatedAt, c.UpdatedAt, t0)
		}
		if c.FirstEventAt != nil || c.LastEventAt != nil {
			t.Errorf("a customer without events has first %s, last %s", timeText(c.FirstEventAt), timeText(c.LastEventAt))
		}
		// The profile alone, as the aggregator reads it.
		p, err := s.FindProfile(ctx, "cust_1")
		if err != nil {
			t.Fatal(err)
		}
		if p.Name != c.Name || p.Timezone != c.Timezone || !p.BillingAnchor.Equal(*c.BillingAnchor) ||
			p.BillingInterval != c.BillingInterval || string(p.Metadata) != string(c.Metadata) || !p.CreatedAt.Equal(t0) {
			t.Errorf("FindProfile: %+v, want the profile of FindCustomer %+v", p, c)
		}
		if _, err := s.FindProfile(ctx, "cust_nobody"); odometer.ErrorCode(err) != odometer.ENOTFOUND {
			t.Errorf("FindProfile of an unknown customer: %v, want ENOTFOUND", err)
		}

		// Replaced whole: what the new profile omits goes back to its default.
		t1 := t0.Add(time.Hour)
		put(t, s, &odometer.Customer{ID: "cust_1", Name: "Acme"}, t1)
		c = findCustomer(t, s, "cust_1")
		if c.Name != "Acme" || c.Timezone != "" || c.BillingAnchor != nil || c.BillingInterval != odometer.IntervalMonth || string(c.Metadata) != `{}` {
			t.Errorf("after replacing: %+v", c)
		}
		if !c.CreatedAt.Equal(t0) || !c.UpdatedAt.Equal(t1) {
			t.Errorf("after replacing: created %s, updated %s, want %s and %s", c.CreatedAt, c.UpdatedAt, t0, t1)
		}
	})
}

// TestCustomers_EventTimes: the first and last event times of a customer,
// by the events' own time, whether its events are folded into the buckets
// or not yet, and after some are deleted.
func TestCustomers_EventTimes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		s := open(t)
		ctx := context.Background()
		cfg := aggConfig(t, "")
		now := at(t, "2026-03-10T12:00:00Z")
		agg := &odometer.Aggregator{Store: s, Config: func() *odometer.Config { return cfg }, Now: func() time.Time { return now }}
		first, last := at(t, "2026-03-01T08:03:07.421Z"), at(t, "2026-03-09T17:44:59.999Z")
		ingest(t, s, []odometer.Event{
			event("e1", "cust_ev", "e.sum", 1, at(t, "2026-03-05T00:00:00Z")),
			event("e2", "cust_ev", "e.avg", 2, last),
			event("e3", "cust_ev", "e.count", 3, first),
			event("e4", "cust_ev", "e.max", 4, at(t, "2026-03-01T08:03:07.422Z")),
			event("x1", "cust_other", "e.sum", 5, at(t, "2026-02-20T00:00:00Z")),
		})
		check := func(when string, wantFirst, wantLast time.Time) {
			t.Helper()
			c := findCustomer(t, s, "cust_ev")
			if c.HasProfile() {
				t.Errorf("%s: a customer seen only through events has a profile: %+v", when, c)
			}
			if c.FirstEventAt == nil || !c.FirstEventAt.Equal(wantFirst) || c.LastEventAt == nil || !c.LastEventAt.Equal(wantLast) {
				t.Errorf("%s: first %s, last %s; want %s and %s", when, timeText(c.FirstEventAt), timeText(c.LastEventAt),
					timeText(&wantFirst), timeText(&wantLast))
			}
			if c.BillingInterval != odometer.IntervalMonth || string(c.Metadata) != "{}" {
				t.Errorf("%s: defaults %q %s", when, c.BillingInterval, c.Metadata)
			}
		}
		check("before aggregation", first, last)
		if _, err := s.FindProfile(ctx, "cust_ev"); odometer.ErrorCode(err) != odometer.ENOTFOUND {
			t.Errorf("FindProfile of a customer seen only through events: %v, want ENOTFOUND", err)
		}
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}
		check("from the buckets", first, last)

		// New events, not yet folded, widen the span both ways.
		earlier, later := at(t, "2026-02-25T23:59:59.001Z"), at(t, "2026-03-10T11:59:00Z")
		ingest(t, s, []odometer.Event{event("e5", "cust_ev", "e.sum", 1, later), event("e6", "cust_ev", "e.min", 1, earlier)})
		check("buckets and pending events", earlier, later)
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}
		check("after the second run", earlier, later)

		// Deleting the earliest and latest events moves the span in.
		for _, f := range []odometer.EventFilter{
			{CustomerID: "cust_ev", EventType: "e.min"},
			{CustomerID: "cust_ev", EventType: "e.sum", From: &later},
		} {
			if _, _, err := agg.DeleteEvents(ctx, s, f); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}
		check("after deletes", first, last)

		// A profile and events together.
		put(t, s, &odometer.Customer{ID: "cust_ev", Name: "Evented"}, now)
		c := findCustomer(t, s, "cust_ev")
		if !c.HasProfile() || c.Name != "Evented" || c.FirstEventAt == nil || !c.FirstEventAt.Equal(first) {
			t.Errorf("profile and events: %+v, first %s", c, timeText(c.FirstEventAt))
		}
	})
}

func listIDs(tb testing.TB, s odometer.CustomerStore, f odometer.CustomerFilter) (ids []string, pages int) {
	tb.Helper()
	for {
		page, next, err := s.FindCustomers(context.Background(), f)
		if err != nil {
			tb.Fatalf("FindCustomers(%+v): %v", f, err)
		}
		if len(page) > f.Limit {
			tb.Fatalf("FindCustomers(%+v): %d customers, over the limit", f, len(page))
		}
		pages++
		for _, c := range page {
			ids = append(ids, c.ID)
		}
		if next == "" {
			return ids, pages
		}
		if pages > 100 {
			tb.Fatalf("FindCustomers(%+v): more than 100 pages", f)
		}
		f.Cursor = next
	}
}

// TestCustomers_List: profiles, customers seen in the buckets and
// customers seen only in events not yet folded, listed together by id,
// each once, paged, searched by prefix of id or name.
func TestCustomers_List(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		s := open(t)
		ctx := context.Background()
		cfg := aggConfig(t, "")
		now := at(t, "2026-03-10T12:00:00Z")
		agg := &odometer.Aggregator{Store: s, Config: func() *odometer.Config { return cfg }, Now: func() time.Time { return now }}
		// Folded: acme-2, beta-1, both (which has a profile too), and
		// many hours of zed so that the walk of the index has entries to skip.
		var evs []odometer.Event
		for i, c := range []string{"acme-2", "beta-1", "both"} {
			evs = append(evs, event("f"+c, c, "e.sum", float64(i), at(t, "2026-03-02T10:00:00Z")))
		}
		for h := range 50 {
			evs = append(evs, event("z"+string(rune('a'+h%26))+string(rune('a'+h/26)), "zed", "e.sum", 1, at(t, "2026-03-02T00:00:00Z").Add(time.Duration(h)*time.Hour)))
		}
		ingest(t, s, evs)
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}
		// Not folded yet: acme-4, beta-3, both.
		ingest(t, s, []odometer.Event{
			event("p1", "acme-4", "e.sum", 1, now), event("p2", "beta-3", "e.sum", 1, now), event("p3", "both", "e.sum", 1, now),
		})
		// Profiles: acme-1, acme-3, beta-2 (named "Acme Beta"), both.
		put(t, s, &odometer.Customer{ID: "acme-1", Name: "First"}, now)
		put(t, s, &odometer.Customer{ID: "acme-3"}, now)
		put(t, s, &odometer.Customer{ID: "beta-2", Name: "Acme Beta"}, now)
		put(t, s, &odometer.Customer{ID: "both", Name: "Both kinds"}, now)

		all := []string{"acme-1", "acme-2", "acme-3", "acme-4", "beta-1", "beta-2", "beta-3", "both", "zed"}
		for _, limit := range []int{1, 2, 3, 4, 100} {
			got, pages := listIDs(t, s, odometer.CustomerFilter{Limit: limit})
			if !slices.Equal(got, all) {
				t.Errorf("limit %d: %q, want %q", limit, got, all)
			}
			if want := (len(all) + limit - 1) / limit; pages != want && pages != want+1 {
				t.Errorf("limit %d: %d pages, want %d", limit, pages, want)
			}
		}
		for _, tt := range []struct {
			q    string
			want []string
		}{
			{"acme", []string{"acme-1", "acme-2", "acme-3", "acme-4"}},
			{"Acme", []string{"beta-2"}}, // by its name, "Acme Beta"
			{"acme-", []string{"acme-1", "acme-2", "acme-3", "acme-4"}},
			{"beta", []string{"beta-1", "beta-2", "beta-3"}},
			{"b", []string{"beta-1", "beta-2", "beta-3", "both"}}, // "both" by id and name, once
			{"Both", []string{"both"}},
			{"z", []string{"zed"}},
			{"First", []string{"acme-1"}},
			{"nothing", nil},
			{"ACME", nil}, // case counts
		} {
			for _, limit := range []int{1, 2, 100} {
				got, _ := listIDs(t, s, odometer.CustomerFilter{Q: tt.q, Limit: limit})
				if !slices.Equal(got, tt.want) {
					t.Errorf("q %q, limit %d: %q, want %q", tt.q, limit, got, tt.want)
				}
			}
		}
		// One customer only (a pinned key's).
		for _, tt := range []struct {
			id, q string
			want  []string
		}{
			{"beta-1", "", []string{"beta-1"}}, {"acme-4", "", []string{"acme-4"}}, {"acme-1", "", []string{"acme-1"}},
			{"both", "", []string{"both"}}, {"beta-1", "acme", nil}, {"nobody", "", nil},
		} {
			got, _ := listIDs(t, s, odometer.CustomerFilter{ID: tt.id, Q: tt.q, Limit: 10})
			if !slices.Equal(got, tt.want) {
				t.Errorf("id %q q %q: %q, want %q", tt.id, tt.q, got, tt.want)
			}
		}
		// A profile listed keeps its fields.
		page, _, err := s.FindCustomers(ctx, odometer.CustomerFilter{Q: "beta-2", Limit: 10})
		if err != nil || len(page) != 1 || page[0].Name != "Acme Beta" || !page[0].HasProfile() {
			t.Errorf("FindCustomers(beta-2): %+v, %v", page, err)
		}
		if _, _, err := s.FindCustomers(ctx, odometer.CustomerFilter{Cursor: "!!not a cursor", Limit: 10}); odometer.ErrorCode(err) != odometer.EINVALID {
			t.Errorf("a malformed cursor: %v, want EINVALID", err)
		}
	})
}

// TestCustomers_CurrentCycle: the usage of a customer's current billing
// cycle, from its anchor in its zone, counts the events of the cycle
// (folded or not yet) and none outside it.
func TestCustomers_CurrentCycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		s := open(t)
		ctx := context.Background()
		cfg := aggConfig(t, `"meters": {"users": {"eventType": "e.sum", "op": "unique", "value": "$.user"},
			"gbh": {"eventType": "e.max", "op": "integral"}}`)
		now := at(t, "2026-03-10T12:00:00Z")
		agg := &odometer.Aggregator{Store: s, Config: func() *odometer.Config { return cfg }, Now: func() time.Time { return now }}
		// Anchor on the 15th in Asia/Kolkata (+5:30): the cycle of March 10
		// is [Feb 15 00:00 IST, Mar 15 00:00 IST) = [Feb 14 18:30Z, Mar 14 18:30Z).
		anchor := at(t, "2025-11-15T09:00:00+05:30")
		c := put(t, s, &odometer.Customer{ID: "cust_k", Timezone: "Asia/Kolkata", BillingAnchor: &anchor}, now)
		withUser := func(e odometer.Event, user string) odometer.Event {
			e.Metadata = []byte(`{"user":"` + user + `"}`)
			return e
		}
		ingest(t, s, []odometer.Event{
			withUser(event("before", "cust_k", "e.sum", 1000, at(t, "2026-02-14T18:29:59.999Z")), "u0"), // Feb 14 23:59:59.999 IST
			withUser(event("in1", "cust_k", "e.sum", 0.1, at(t, "2026-02-14T18:30:00Z")), "u1"),         // Feb 15 00:00 IST
			withUser(event("in2", "cust_k", "e.sum", 0.2, at(t, "2026-03-01T00:00:00Z")), "u2"),
			event("in3", "cust_k", "e.count", 7, at(t, "2026-03-05T00:00:00Z")),
			event("gauge", "cust_k", "e.max", 5, at(t, "2026-03-05T00:00:00Z")),
			withUser(event("other", "cust_x", "e.sum", 50, at(t, "2026-03-01T00:00:00Z")), "u9"),
		})
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}
		ingest(t, s, []odometer.Event{
			withUser(event("in4", "cust_k", "e.sum", 0.3, at(t, "2026-03-10T11:00:00Z")), "u3"), // not folded yet: its metadata counts too
		})
		cyc, err := odometer.CurrentCycle(ctx, s, cfg, findCustomer(t, s, c.ID), time.UTC, now)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := cyc.Start, at(t, "2026-02-14T18:30:00Z"); !got.Equal(want) {
			t.Errorf("start %s, want %s", got, want)
		}
		if got, want := cyc.End, at(t, "2026-03-14T18:30:00Z"); !got.Equal(want) {
			t.Errorf("end %s, want %s", got, want)
		}
		if got, want := cyc.Key, "20260215"; got != want {
			t.Errorf("key %s, want %s", got, want)
		}
		want := map[string]float64{"e.sum": 0.6, "e.count": 1, "users": 3, "e.max": 5}
		if len(cyc.Values.Events) != len(want) {
			t.Errorf("events %v, want %v (gauges left out)", cyc.Values.Events, want)
		}
		for name, v := range want {
			if got := cyc.Values.Events[name]; got != v {
				t.Errorf("%s = %v, want %v", name, got, v)
			}
		}
		if got, want := cyc.Values.EventCounts["e.sum"], int64(3); got != want {
			t.Errorf("eventCounts[e.sum] = %d, want %d", got, want)
		}

		// With no profile, the calendar month in the default zone.
		cyc, err = odometer.CurrentCycle(ctx, s, cfg, findCustomer(t, s, "cust_x"), time.UTC, now)
		if err != nil {
			t.Fatal(err)
		}
		if !cyc.Start.Equal(at(t, "2026-03-01T00:00:00Z")) || !cyc.End.Equal(at(t, "2026-04-01T00:00:00Z")) || cyc.Values.Events["e.sum"] != 50 {
			t.Errorf("calendar cycle [%s, %s): %v", cyc.Start, cyc.End, cyc.Values.Events)
		}
	})
}

// TestCustomers_CycleDuringRun: while a run that stopped midway has
// folded a customer's new events into the buckets (and not yet moved the
// watermark past them), the cycle counts them once.
func TestCustomers_CycleDuringRun(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		s := open(t)
		ctx := context.Background()
		cfg := aggConfig(t, "")
		now := at(t, "2026-03-10T12:00:00Z")
		agg := &odometer.Aggregator{Store: s, Config: func() *odometer.Config { return cfg }, Now: func() time.Time { return now }}
		ingest(t, s, []odometer.Event{event("a1", "cust_k", "e.sum", 1, at(t, "2026-03-02T00:00:00Z"))})
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}
		run, err := s.RunState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ingest(t, s, []odometer.Event{event("b1", "cust_k", "e.sum", 10, at(t, "2026-03-03T00:00:00Z"))})
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}
		// As a run that folded cust_k's new event and stopped after it.
		max, err := s.MaxSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Aggregate(ctx, func(tx odometer.AggregationTx) error {
			return tx.SetRunState(odometer.RunState{Watermark: run.Watermark, To: max, After: "cust_k"})
		}); err != nil {
			t.Fatal(err)
		}
		cyc, err := odometer.CurrentCycle(ctx, s, cfg, findCustomer(t, s, "cust_k"), time.UTC, now)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := cyc.Values.Events["e.sum"], 11.0; got != want {
			t.Errorf("e.sum = %v, want %v (an event folded by the stopped run counted once)", got, want)
		}
	})
}
