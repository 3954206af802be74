package storetest_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// TestCycleAggregations: the open aggregations that hold an instant are
// every customer's current cycle, its own billing cycle or the month,
// with its profile; closed periods and customers without usage in the
// cycle are not among them; and the directory's ranking over them orders
// and pages by a meter's value.
func TestCycleAggregations(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		cfg, err := odometer.ParseConfig("systemconfig.json", []byte(`{
			"periods": ["daily", "monthly", "billing"],
			"events": {"api.calls": {"op": "sum"}, "llm.request": {"op": "count"}},
			"meters": {"llm.tokens": {"eventType": "llm.request", "op": "sum", "value": "$.tokens", "groupBy": ["model"]}}}`))
		if err != nil {
			t.Fatal(err)
		}
		store := open(t)
		now := at(t, "2026-02-10T12:00:00Z")
		agg := &odometer.Aggregator{Store: store, Config: func() *odometer.Config { return cfg }, Now: func() time.Time { return now }, Customers: store}
		anchor := at(t, "2025-01-31T15:00:00Z")
		for _, c := range []*odometer.Customer{
			{ID: "cust_31", BillingAnchor: &anchor}, // the cycle of Feb 10: [Jan 31, Feb 28)
			{ID: "cust_week", BillingInterval: odometer.IntervalWeek, BillingAnchor: &anchor},
			{ID: "cust_named", Name: "Zed Corp"},
			{ID: "cust_quiet", Name: "No events"},
		} {
			put(t, store, c, at(t, "2025-01-01T00:00:00Z"))
		}
		tokens := func(e odometer.Event, model string, n int) odometer.Event {
			e.Metadata = []byte(fmt.Sprintf(`{"model":%q,"tokens":%d}`, model, n))
			return e
		}
		ingest(t, store, []odometer.Event{
			event("a1", "cust_31", "api.calls", 5, at(t, "2026-01-30T10:00:00Z")), // the cycle before
			event("a2", "cust_31", "api.calls", 7, at(t, "2026-01-31T10:00:00Z")),
			event("a3", "cust_31", "api.calls", 1, at(t, "2026-02-09T10:00:00Z")),
			event("a4", "cust_week", "api.calls", 100, at(t, "2026-02-05T10:00:00Z")), // the week before: Fridays, Jan 30 to Feb 6
			event("a5", "cust_week", "api.calls", 3, at(t, "2026-02-08T10:00:00Z")),
			event("a6", "cust_none", "api.calls", 30, at(t, "2026-02-01T10:00:00Z")),
			event("a7", "cust_old", "api.calls", 1000, at(t, "2026-01-20T10:00:00Z")),
			tokens(event("t1", "cust_named", "llm.request", 1, at(t, "2026-02-02T10:00:00Z")), "gpt-4o", 700),
			tokens(event("t2", "cust_named", "llm.request", 1, at(t, "2026-02-03T10:00:00Z")), "claude", 50),
			tokens(event("t3", "cust_none", "llm.request", 1, at(t, "2026-02-04T10:00:00Z")), "claude", 20),
		})
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}

		type cycle struct {
			key, start, end string
			calls           float64
			name            string
		}
		read := func(p odometer.Period, when time.Time) ([]odometer.CycleAggregation, map[string]cycle) {
			t.Helper()
			aggs, err := store.FindCycleAggregations(ctx, p, when)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]cycle{}
			for _, ca := range aggs {
				a := ca.Aggregation
				c := cycle{key: a.PeriodKey, start: a.PeriodStart.UTC().Format(time.RFC3339), end: a.PeriodEnd.UTC().Format(time.RFC3339)}
				if st := a.States["api.calls"]; st != nil {
					c.calls = cfg.Meter("api.calls").ValueOf(st, a.PeriodStart, a.PeriodEnd)
				}
				if ca.Profile != nil {
					c.name = ca.Profile.Name
					if ca.Profile.ID != a.CustomerID || !ca.Profile.HasProfile() {
						t.Errorf("%s: profile %+v", a.CustomerID, ca.Profile)
					}
				}
				if a.Period != p {
					t.Errorf("%s: period %s, want %s", a.CustomerID, a.Period, p)
				}
				got[a.CustomerID] = c
			}
			return aggs, got
		}
		aggs, got := read(odometer.Billing, now)
		want := map[string]cycle{
			"cust_31":    {"20260131", "2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z", 8, ""},
			"cust_week":  {"20260206", "2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z", 3, ""},
			"cust_none":  {"20260201", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", 30, ""},
			"cust_named": {"20260201", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", 0, "Zed Corp"},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("billing cycles at %s:\n got %v\nwant %v", now, got, want)
		}

		// The month: cust_old's January is closed, and the only one it has.
		_, got = read(odometer.Monthly, now)
		var ids []string
		for id, c := range got {
			ids = append(ids, id)
			if c.key != "202602" {
				t.Errorf("%s: month %s", id, c.key)
			}
		}
		sort.Strings(ids)
		if got, want := fmt.Sprint(ids), "[cust_31 cust_named cust_none cust_week]"; got != want {
			t.Errorf("customers of February: %s, want %s", got, want)
		}
		if _, got := read(odometer.Monthly, at(t, "2026-01-15T00:00:00Z")); len(got) != 0 {
			t.Errorf("January is complete, yet read as open: %v", got)
		}

		// The ranking: tokens descending, then ascending; a customer
		// without the meter this cycle counts 0, ties by id.
		r := odometer.RankUsage(cfg, aggs)["llm.tokens"]
		page := func(f odometer.UsageFilter) (string, string) {
			t.Helper()
			us, next, err := r.Page(f)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, u := range us {
				out = append(out, fmt.Sprintf("%s=%v/%d", u.CustomerID, u.Value, u.Count))
			}
			return fmt.Sprint(out), next
		}
		p1, next := page(odometer.UsageFilter{Desc: true, Limit: 2})
		if want := "[cust_named=750/2 cust_none=20/1]"; p1 != want || next == "" {
			t.Errorf("first page, descending: %s (next %q), want %s", p1, next, want)
		}
		p2, next2 := page(odometer.UsageFilter{Desc: true, Limit: 2, Cursor: next})
		if want := "[cust_week=0/0 cust_31=0/0]"; p2 != want || next2 != "" {
			t.Errorf("second page, descending: %s (next %q), want %s", p2, next2, want)
		}
		if p, _ := page(odometer.UsageFilter{Limit: 10}); p != "[cust_31=0/0 cust_week=0/0 cust_none=20/1 cust_named=750/2]" {
			t.Errorf("ascending: %s", p)
		}
		if p, _ := page(odometer.UsageFilter{Limit: 10, Q: "Zed"}); p != "[cust_named=750/2]" {
			t.Errorf("q=Zed (a name): %s", p)
		}
		if p, _ := page(odometer.UsageFilter{Limit: 10, ID: "cust_none", Q: "cust_"}); p != "[cust_none=20/1]" {
			t.Errorf("pinned to cust_none: %s", p)
		}
	})
}
