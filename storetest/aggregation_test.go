package storetest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// opTypes configures one event type per op.
var opTypes = map[string]odometer.Op{
	"e.sum": odometer.OpSum, "e.avg": odometer.OpAvg, "e.min": odometer.OpMin, "e.max": odometer.OpMax,
	"e.count": odometer.OpCount, "e.first": odometer.OpFirst, "e.last": odometer.OpLast,
}

// aggConfig is a configuration with every op; extra is more top-level JSON.
func aggConfig(tb testing.TB, extra string) *odometer.Config {
	tb.Helper()
	events := map[string]map[string]string{}
	for name, op := range opTypes {
		events[name] = map[string]string{"op": string(op)}
	}
	b, _ := json.Marshal(map[string]any{"events": events})
	if extra != "" {
		b = append(b[:len(b)-1], ","+extra+"}"...)
	}
	cfg, err := odometer.ParseConfig("systemconfig.json", b)
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

func at(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// recorder passes every call through to the store under test and keeps
// the notifications of the transactions that committed.
type recorder struct {
	odometer.AggregationStore
	mu    sync.Mutex
	notes []*odometer.Notification
}

type recordingTx struct {
	odometer.AggregationTx
	added *[]*odometer.Notification
}

func (t recordingTx) AddNotifications(ns []*odometer.Notification) error {
	if err := t.AggregationTx.AddNotifications(ns); err != nil {
		return err
	}
	*t.added = append(*t.added, ns...)
	return nil
}

func (r *recorder) Aggregate(ctx context.Context, fn func(odometer.AggregationTx) error) error {
	var added []*odometer.Notification
	err := r.AggregationStore.Aggregate(ctx, func(tx odometer.AggregationTx) error {
		added = nil
		return fn(recordingTx{tx, &added})
	})
	if err == nil {
		r.mu.Lock()
		r.notes = append(r.notes, added...)
		r.mu.Unlock()
	}
	return err
}

// take returns the notifications recorded since the last take.
func (r *recorder) take() []*odometer.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.notes
	r.notes = nil
	return n
}

// clock is an injected time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// findAll reads every aggregation that f selects, page by page.
func findAll(tb testing.TB, s odometer.AggregationStore, f odometer.AggregationFilter) []*odometer.Aggregation {
	tb.Helper()
	if f.Limit == 0 {
		f.Limit = 37
	}
	var out []*odometer.Aggregation
	seen := map[string]bool{}
	for {
		page, next, err := s.FindAggregations(context.Background(), f)
		if err != nil {
			tb.Fatal(err)
		}
		if len(page) > f.Limit {
			tb.Fatalf("page of %d aggregations, limit %d", len(page), f.Limit)
		}
		for _, a := range page {
			if seen[a.ID()] {
				tb.Fatalf("aggregation %s on two pages", a.ID())
			}
			seen[a.ID()] = true
			out = append(out, a)
		}
		if next == "" {
			return out
		}
		f.Cursor = next
	}
}

// The reference: an independent from-scratch computation over the raw
// events, keyed by each event's own time in the zone.

// refKey is the key of the period of type p holding t, from t's wall clock.
func refKey(p odometer.Period, t time.Time) string {
	switch p {
	case odometer.Hourly:
		return fmt.Sprintf("%04d%02d%02d%02d", t.Year(), int(t.Month()), t.Day(), t.Hour())
	case odometer.Daily:
		return fmt.Sprintf("%04d%02d%02d", t.Year(), int(t.Month()), t.Day())
	case odometer.Weekly:
		y, w := t.ISOWeek()
		return fmt.Sprintf("%04d%02d", y, w)
	case odometer.Monthly:
		return fmt.Sprintf("%04d%02d", t.Year(), int(t.Month()))
	case odometer.Yearly:
		return fmt.Sprintf("%04d", t.Year())
	}
	panic("unknown period " + p)
}

type refGroup struct {
	customer string
	period   odometer.Period
	key      string
	byType   map[string][]odometer.Event
}

// reference groups events by customer and period key in loc.
func reference(cfg *odometer.Config, events []odometer.Event) map[string]*refGroup {
	out := map[string]*refGroup{}
	for _, e := range events {
		local := e.Time.In(cfg.Location)
		for _, p := range cfg.Periods {
			key := refKey(p, local)
			id := e.CustomerID + "_" + string(p) + "_" + key
			g := out[id]
			if g == nil {
				g = &refGroup{customer: e.CustomerID, period: p, key: key, byType: map[string][]odometer.Event{}}
				out[id] = g
			}
			g.byType[e.EventType] = append(g.byType[e.EventType], e)
		}
	}
	return out
}

// refValue applies op to events: sums and averages exactly in decimal
// (each value as the shortest decimal that reads back as it, what the
// client wrote), as rationals, rounded once.
func refValue(tb testing.TB, op odometer.Op, events []odometer.Event) float64 {
	tb.Helper()
	if len(events) == 0 {
		return 0
	}
	exactRat := func() *big.Rat {
		acc := new(big.Rat)
		for _, e := range events {
			r, ok := new(big.Rat).SetString(strconv.FormatFloat(e.Value, 'g', -1, 64))
			if !ok {
				tb.Fatalf("reference: %v is not a decimal", e.Value)
			}
			acc.Add(acc, r)
		}
		return acc
	}
	exact := func() float64 {
		f, _ := exactRat().Float64()
		return f
	}
	earlier := func(a, b odometer.Event) bool {
		ta, tb := a.Time.UnixMilli(), b.Time.UnixMilli()
		return ta < tb || (ta == tb && a.Seq < b.Seq)
	}
	switch op {
	case odometer.OpSum:
		return exact()
	case odometer.OpAvg:
		f, _ := exactRat().Quo(exactRat(), new(big.Rat).SetInt64(int64(len(events)))).Float64()
		return f
	case odometer.OpCount:
		return float64(len(events))
	case odometer.OpMin, odometer.OpMax:
		v := events[0].Value
		for _, e := range events[1:] {
			if (op == odometer.OpMin && e.Value < v) || (op == odometer.OpMax && e.Value > v) {
				v = e.Value
			}
		}
		return v
	case odometer.OpFirst, odometer.OpLast:
		w := events[0]
		for _, e := range events[1:] {
			if (op == odometer.OpFirst && earlier(e, w)) || (op == odometer.OpLast && earlier(w, e)) {
				w = e
			}
		}
		return w.Value
	}
	tb.Fatalf("unknown op %q", op)
	return 0
}

// checkAggregations compares every stored aggregation with the reference.
func checkAggregations(tb testing.TB, s odometer.AggregationStore, cfg *odometer.Config, events []odometer.Event) []*odometer.Aggregation {
	tb.Helper()
	ref := reference(cfg, events)
	aggs := findAll(tb, s, odometer.AggregationFilter{})
	if got, want := len(aggs), len(ref); got != want {
		tb.Errorf("%d aggregations, want %d", got, want)
	}
	bad := 0
	for _, a := range aggs {
		g := ref[a.ID()]
		if g == nil {
			tb.Errorf("aggregation %s has no events in the reference", a.ID())
			continue
		}
		if a.CustomerID != g.customer || a.Period != g.period || a.PeriodKey != g.key {
			tb.Errorf("aggregation %s: customer, period, key = %s, %s, %s", a.ID(), a.CustomerID, a.Period, a.PeriodKey)
		}
		loc := cfg.Location
		if refKey(a.Period, a.PeriodStart.In(loc)) != a.PeriodKey || refKey(a.Period, a.PeriodEnd.Add(-time.Millisecond).In(loc)) != a.PeriodKey ||
			refKey(a.Period, a.PeriodEnd.In(loc)) == a.PeriodKey || refKey(a.Period, a.PeriodStart.Add(-time.Millisecond).In(loc)) == a.PeriodKey {
			tb.Errorf("aggregation %s: bounds [%s, %s) are not the period's", a.ID(), a.PeriodStart, a.PeriodEnd)
		}
		v := a.Values(cfg)
		if got, want := len(v.Events), len(g.byType); got != want {
			tb.Errorf("aggregation %s: %d event types, want %d", a.ID(), got, want)
		}
		for typ, evs := range g.byType {
			for _, e := range evs {
				if e.Time.Before(a.PeriodStart) || !e.Time.Before(a.PeriodEnd) {
					tb.Errorf("aggregation %s [%s, %s) holds an event at %s", a.ID(), a.PeriodStart, a.PeriodEnd, e.Time)
				}
			}
			want := refValue(tb, cfg.Events[typ].Op, evs)
			if got := v.Events[typ]; got != want {
				bad++
				if bad <= 10 {
					tb.Errorf("aggregation %s: %s (%s) = %v, want %v", a.ID(), typ, cfg.Events[typ].Op, got, want)
				}
			}
			if got, want := v.EventCounts[typ], int64(len(evs)); got != want {
				tb.Errorf("aggregation %s: count of %s = %d, want %d", a.ID(), typ, got, want)
			}
		}
	}
	if bad > 10 {
		tb.Errorf("%d wrong values in all", bad)
	}
	return aggs
}

// checkUsage compares odometer.Usage with the reference over [from, to).
func checkUsage(tb testing.TB, s odometer.AggregationStore, cfg *odometer.Config, events []odometer.Event, customer, typ string, window odometer.Period, from, to time.Time) {
	tb.Helper()
	points, err := odometer.Usage(context.Background(), s, cfg, odometer.UsageQuery{
		CustomerID: customer, Meter: typ, From: from, To: to, Window: window, Location: cfg.Location,
	})
	if err != nil {
		tb.Fatalf("usage %s %s %s [%s, %s): %v", customer, typ, window, from, to, err)
	}
	want := map[string][]odometer.Event{}
	for _, e := range events {
		if e.CustomerID == customer && e.EventType == typ && !e.Time.Before(from) && e.Time.Before(to) {
			k := refKey(window, e.Time.In(cfg.Location))
			want[k] = append(want[k], e)
		}
	}
	if got, w := len(points), len(want); got != w {
		tb.Errorf("usage %s %s %s [%s, %s): %d windows, want %d", customer, typ, window, from, to, got, w)
	}
	for i, p := range points {
		if i > 0 && !points[i-1].Start.Before(p.Start) {
			tb.Errorf("usage windows out of order: %s before %s", points[i-1].Key, p.Key)
		}
		evs := want[p.Key]
		if got, w := p.Count, int64(len(evs)); got != w {
			tb.Errorf("usage %s %s %s window %s: count %d, want %d", customer, typ, window, p.Key, got, w)
		}
		if got, w := p.Value, refValue(tb, cfg.Events[typ].Op, evs); got != w {
			tb.Errorf("usage %s %s %s window %s: value %v, want %v", customer, typ, window, p.Key, got, w)
		}
	}
}

// ingest stores events in one request and fails the test unless all are new.
func ingest(tb testing.TB, s odometer.EventStore, events []odometer.Event) {
	tb.Helper()
	dup, err := s.CreateEvents(context.Background(), events)
	if err != nil {
		tb.Fatal(err)
	}
	for i, d := range dup {
		if d {
			tb.Fatalf("event %s reported as a duplicate", events[i].ID)
		}
	}
	for _, e := range events {
		if e.Seq <= 0 {
			tb.Fatalf("event %s stored without a seq", e.ID)
		}
	}
}

func event(id, customer, typ string, v float64, t time.Time) odometer.Event {
	return odometer.Event{ID: id, ClientID: true, CustomerID: customer, EventType: typ, Value: v,
		Time: t.UTC().Truncate(time.Millisecond), TimeGiven: true, ReceivedAt: t.UTC()}
}

// propValue draws values that make exact aggregation hard.
func propValue(rng *rand.Rand) float64 {
	switch rng.IntN(7) {
	case 0:
		return float64(rng.IntN(2001) - 1000)
	case 1:
		return float64(rng.IntN(200001)-100000) / 100
	case 2:
		return 0.1 * float64(rng.IntN(10))
	case 3:
		return rng.NormFloat64() * 1e6
	case 4:
		return (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(30)-15))
	case 5:
		return float64(rng.Int64N(1<<53)) * float64(1-2*rng.IntN(2))
	default:
		return 0
	}
}

// propEvents draws n events over 2024 to 2026: some anywhere, most around
// busy instants (new years, daylight saving time changes), some exactly
// on local midnights, and some at the very millisecond of another event.
func propEvents(rng *rand.Rand, n int, loc *time.Location, prefix string) []odometer.Event {
	lo := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	hi := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	busy := []time.Time{
		time.Date(2024, 2, 29, 12, 0, 0, 0, loc),
		time.Date(2025, 1, 1, 0, 0, 0, 0, loc),
		time.Date(2025, 3, 9, 2, 0, 0, 0, loc),  // New York springs forward
		time.Date(2025, 4, 6, 2, 0, 0, 0, loc),  // Lord Howe goes back
		time.Date(2025, 10, 5, 2, 0, 0, 0, loc), // Lord Howe goes forward
		time.Date(2025, 11, 2, 1, 0, 0, 0, loc), // New York falls back
		time.Date(2026, 12, 31, 23, 0, 0, 0, loc),
	}
	customers := []string{"cust_a", "cust_b", "cust_ü"}
	types := make([]string, 0, len(opTypes))
	for t := range opTypes {
		types = append(types, t)
	}
	sort.Strings(types)
	out := make([]odometer.Event, 0, n)
	for i := 0; i < n; i++ {
		var t time.Time
		switch r := rng.IntN(10); {
		case r < 3:
			t = lo.Add(time.Duration(rng.Int64N(int64(hi.Sub(lo)))))
		case r < 8:
			b := busy[rng.IntN(len(busy))]
			t = b.Add(time.Duration(rng.Int64N(int64(72*time.Hour))) - 36*time.Hour)
		case r < 9:
			b := busy[rng.IntN(len(busy))].In(loc)
			t = time.Date(b.Year(), b.Month(), b.Day()+rng.IntN(5)-2, 0, 0, 0, 0, loc).Add(time.Duration(rng.IntN(3)-1) * time.Millisecond)
		default:
			if len(out) > 0 {
				t = out[rng.IntN(len(out))].Time
			} else {
				t = lo
			}
		}
		out = append(out, event(fmt.Sprintf("%s-%d", prefix, i), customers[rng.IntN(len(customers))], types[rng.IntN(len(types))], propValue(rng), t))
	}
	return out
}

// TestAggregator_MatchesReference ingests random events in random requests,
// aggregates after random splits while the clock moves on, and compares
// the aggregations and the usage with a from-scratch computation.
func TestAggregator_MatchesReference(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		zones := []string{"UTC", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe"}
		n := 1500
		if testing.Short() {
			n = 400
		}
		for zi, zone := range zones {
			for _, chunk := range []int{7, 0} {
				t.Run(fmt.Sprintf("%s/chunk%d", zone, chunk), func(t *testing.T) {
					t.Parallel()
					rng := rand.New(rand.NewPCG(uint64(zi), uint64(chunk)))
					store := open(t)
					cfg := aggConfig(t, fmt.Sprintf(`"timezone": %q, "maxEventAge": "0"`, zone))
					rec := &recorder{AggregationStore: store}
					clk := &clock{now: at(t, "2024-01-01T00:00:00Z")}
					agg := &odometer.Aggregator{Store: rec, Config: func() *odometer.Config { return cfg }, Now: clk.Now, ChunkSize: int64(chunk)}
					if chunk > 0 {
						agg.FlushEvents = 3 // many passes of 7 events, each written in several commits
					}
					ctx := context.Background()

					events := propEvents(rng, n, cfg.Location, "evt")
					var stored []odometer.Event
					var requests [][]odometer.Event
					usageChecked := false
					for len(events) > 0 {
						size := 1 + rng.IntN(120)
						if rng.IntN(5) == 0 {
							size = 1
						}
						size = min(size, len(events))
						req := events[:size]
						events = events[size:]
						ingest(t, store, req)
						stored = append(stored, req...)
						requests = append(requests, req)

						// A repeated request stores nothing and changes no aggregate.
						if rng.IntN(20) == 0 {
							old := requests[rng.IntN(len(requests))]
							again := make([]odometer.Event, len(old))
							for i, e := range old {
								again[i] = event(e.ID, e.CustomerID, e.EventType, e.Value, e.Time)
							}
							dup, err := store.CreateEvents(ctx, again)
							if err != nil {
								t.Fatal(err)
							}
							for i, d := range dup {
								if !d {
									t.Fatalf("repeated event %s not reported as a duplicate", again[i].ID)
								}
							}
						}

						// Usage answers from buckets and the events not yet folded in.
						if !usageChecked && len(stored) > n/2 {
							usageChecked = true
							from := time.Date(2025, 3, 1, 0, 0, 0, 0, cfg.Location)
							checkUsage(t, store, cfg, stored, "cust_a", "e.sum", odometer.Daily, from, from.AddDate(0, 3, 0))
						}

						if rng.IntN(3) == 0 {
							clk.Set(clk.Now().Add(time.Duration(rng.Int64N(int64(20 * 24 * time.Hour)))))
							if _, err := agg.Run(ctx); err != nil {
								t.Fatal(err)
							}
						}
					}

					// Mid-stream: every aggregation equals the reference.
					if _, err := agg.Run(ctx); err != nil {
						t.Fatal(err)
					}
					checkAggregations(t, store, cfg, stored)

					// After every period has ended: all complete, none dirty.
					clk.Set(at(t, "2029-01-01T00:00:00Z"))
					res, err := agg.Run(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if got := res.EventsProcessed; got != 0 {
						t.Errorf("final run processed %d events, want 0", got)
					}
					aggs := checkAggregations(t, store, cfg, stored)
					notes := rec.take()
					completed := map[string]int{}
					latest := map[string]int{}
					for _, n := range notes {
						switch n.Type {
						case odometer.AggregationCompleted:
							completed[n.AggregationID]++
							if n.Revision != 1 {
								t.Errorf("%s completed with revision %d", n.AggregationID, n.Revision)
							}
						case odometer.AggregationUpdated:
							if n.Revision < 2 {
								t.Errorf("%s updated with revision %d", n.AggregationID, n.Revision)
							}
						}
						if n.Revision <= latest[n.AggregationID] {
							t.Errorf("%s: revision %d recorded after %d", n.AggregationID, n.Revision, latest[n.AggregationID])
						}
						latest[n.AggregationID] = n.Revision
					}
					revised := 0
					for _, a := range aggs {
						if !a.Complete || a.Dirty || a.Revision < 1 {
							t.Errorf("%s: complete %v, dirty %v, revision %d after every period ended", a.ID(), a.Complete, a.Dirty, a.Revision)
						}
						if completed[a.ID()] != 1 {
							t.Errorf("%s: %d completion notifications, want 1", a.ID(), completed[a.ID()])
						}
						if latest[a.ID()] != a.Revision {
							t.Errorf("%s: revision %d, last notified %d", a.ID(), a.Revision, latest[a.ID()])
						}
						if a.Revision > 1 {
							revised++
						}
					}
					if revised == 0 {
						t.Errorf("no late events revised a completed period: the test does not exercise revisions")
					}

					loc := cfg.Location
					for _, w := range []struct {
						window   odometer.Period
						from, to time.Time
					}{
						{odometer.Hourly, time.Date(2025, 3, 7, 0, 0, 0, 0, loc), time.Date(2025, 3, 11, 0, 0, 0, 0, loc)},
						{odometer.Hourly, time.Date(2025, 11, 1, 0, 0, 0, 0, loc), time.Date(2025, 11, 3, 12, 0, 0, 0, loc)},
						{odometer.Hourly, time.Date(2025, 4, 5, 0, 0, 0, 0, loc), time.Date(2025, 4, 7, 0, 0, 0, 0, loc)},
						{odometer.Daily, time.Date(2024, 12, 20, 0, 0, 0, 0, loc), time.Date(2025, 4, 20, 0, 0, 0, 0, loc)},
						{odometer.Weekly, time.Date(2024, 1, 1, 0, 0, 0, 0, loc), time.Date(2027, 1, 1, 0, 0, 0, 0, loc)},
						{odometer.Monthly, time.Date(2024, 2, 15, 6, 0, 0, 0, loc), time.Date(2026, 12, 31, 23, 30, 0, 0, loc)},
						{odometer.Yearly, time.Date(2023, 1, 1, 0, 0, 0, 0, loc), time.Date(2028, 1, 1, 0, 0, 0, 0, loc)},
					} {
						for _, typ := range []string{"e.sum", "e.avg", "e.first", "e.last", "e.min"} {
							checkUsage(t, store, cfg, stored, "cust_b", typ, w.window, w.from, w.to)
						}
					}
				})
			}
		}
	})
}

// TestAggregator_LateEvent: an event dated inside a completed period makes
// a new revision, with the value corrected and an aggregation.updated
// notification carrying the previous values.
func TestAggregator_LateEvent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		store := open(t)
		cfg := aggConfig(t, `"periods": ["daily"], "webhooks": [{"url": "https://billing.example.com/hooks", "secret": "whsec_late"}]`)
		rec := &recorder{AggregationStore: store}
		clk := &clock{now: at(t, "2026-03-11T00:00:00Z")} // the first instant after 2026-03-10
		agg := &odometer.Aggregator{Store: rec, Config: func() *odometer.Config { return cfg }, Now: clk.Now}

		ingest(t, store, []odometer.Event{event("late-1", "cust_late", "e.sum", 5, at(t, "2026-03-10T12:00:00Z"))})
		res, err := agg.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := res.PeriodsCompleted, 1; got != want {
			t.Fatalf("PeriodsCompleted = %d, want %d", got, want)
		}
		notes := rec.take()
		if got, want := len(notes), 1; got != want {
			t.Fatalf("%d notifications, want %d", got, want)
		}
		if got, want := notes[0].Type, odometer.AggregationCompleted; got != want {
			t.Fatalf("notification type = %q, want %q", got, want)
		}

		clk.Set(at(t, "2026-03-12T09:00:00Z"))
		ingest(t, store, []odometer.Event{event("late-2", "cust_late", "e.sum", 7, at(t, "2026-03-10T13:00:00Z"))})
		res, err = agg.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := res.PeriodsRevised, 1; got != want {
			t.Errorf("PeriodsRevised = %d, want %d", got, want)
		}
		if got, want := res.PeriodsCompleted, 0; got != want {
			t.Errorf("PeriodsCompleted = %d, want %d", got, want)
		}
		if got, want := res.AggregationsUpdated, 1; got != want {
			t.Errorf("AggregationsUpdated = %d, want %d", got, want)
		}
		aggs := findAll(t, store, odometer.AggregationFilter{CustomerID: "cust_late"})
		if got, want := len(aggs), 1; got != want {
			t.Fatalf("%d aggregations, want %d", got, want)
		}
		a := aggs[0]
		if got, want := a.ID(), "cust_late_daily_20260310"; got != want {
			t.Errorf("id = %q, want %q", got, want)
		}
		if got, want := a.Revision, 2; got != want {
			t.Errorf("revision = %d, want %d", got, want)
		}
		if !a.Complete || a.Dirty {
			t.Errorf("complete, dirty = %v, %v; want true, false", a.Complete, a.Dirty)
		}
		if got, want := a.Values(cfg).Events["e.sum"], 12.0; got != want {
			t.Errorf("e.sum = %v, want %v", got, want)
		}
		if a.Published == nil || a.Published.Events["e.sum"] != 12 {
			t.Errorf("published = %+v, want e.sum 12", a.Published)
		}

		notes = rec.take()
		if got, want := len(notes), 1; got != want {
			t.Fatalf("%d notifications, want %d", got, want)
		}
		n := notes[0]
		if n.Type != odometer.AggregationUpdated || n.AggregationID != "cust_late_daily_20260310" || n.Revision != 2 || n.CustomerID != "cust_late" {
			t.Errorf("notification = %s %s revision %d customer %s", n.Type, n.AggregationID, n.Revision, n.CustomerID)
		}
		var p odometer.WebhookPayload
		if err := json.Unmarshal(n.Payload, &p); err != nil {
			t.Fatalf("payload %s: %v", n.Payload, err)
		}
		if p.Type != odometer.AggregationUpdated || p.Data.Revision != 2 || p.Data.Events["e.sum"] != 12 || p.Data.EventCounts["e.sum"] != 2 {
			t.Errorf("payload = %s", n.Payload)
		}
		if p.Data.Previous == nil || p.Data.Previous.Events["e.sum"] != 5 || p.Data.Previous.EventCounts["e.sum"] != 1 {
			t.Errorf("payload previous = %s, want e.sum 5 of 1 event", n.Payload)
		}
		if got, want := p.Data.PeriodStart, "2026-03-10T00:00:00.000Z"; got != want {
			t.Errorf("periodStart = %q, want %q", got, want)
		}
		if got, want := p.Data.PeriodEnd, "2026-03-10T23:59:59.999Z"; got != want {
			t.Errorf("periodEnd = %q, want %q", got, want)
		}

		// The store keeps both revisions in the webhook outbox.
		ds, _, err := store.FindDeliveries(ctx, odometer.DeliveryFilter{CustomerID: "cust_late", Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(ds), 2; got != want {
			t.Fatalf("%d deliveries, want %d", got, want)
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i].Revision < ds[j].Revision })
		for i, want := range []struct {
			typ      string
			revision int
			sum      float64
		}{{odometer.AggregationCompleted, 1, 5}, {odometer.AggregationUpdated, 2, 12}} {
			d := ds[i]
			if d.Type != want.typ || d.Revision != want.revision || d.AggregationID != "cust_late_daily_20260310" || d.Endpoint != "https://billing.example.com/hooks" {
				t.Errorf("delivery %d: %s %s revision %d to %s", i, d.Type, d.AggregationID, d.Revision, d.Endpoint)
			}
			var p odometer.WebhookPayload
			if err := json.Unmarshal(d.Payload, &p); err != nil {
				t.Fatalf("delivery payload %s: %v", d.Payload, err)
			}
			if got := p.Data.Events["e.sum"]; got != want.sum {
				t.Errorf("delivery %d: e.sum = %v, want %v", i, got, want.sum)
			}
		}

		// Nothing new: nothing revised.
		res, err = agg.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.PeriodsRevised != 0 || res.PeriodsCompleted != 0 || len(rec.take()) != 0 {
			t.Errorf("idle run: %+v", res)
		}
	})
}

// TestAggregator_CatchUp: periods of any age are aggregated and finalized
// by one run, with no trigger and no lookback window.
func TestAggregator_CatchUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		store := open(t)
		cfg := aggConfig(t, `"maxEventAge": "0"`)
		now := at(t, "2026-06-15T10:00:00Z")
		old := now.AddDate(0, 0, -400) // 2025-05-11T10:00Z
		events := []odometer.Event{
			event("old-1", "cust_old", "e.sum", 3, old),
			event("old-2", "cust_old", "e.sum", 4, old.Add(3*time.Hour+30*time.Minute)),
			event("old-3", "cust_old", "e.max", 9, old.Add(20*time.Minute)),
		}
		strict := aggConfig(t, "")
		for i := range events {
			if msg := cfg.CheckTime(&events[i], now); msg != "" {
				t.Fatalf("with maxEventAge 0, event %s refused: %s", events[i].ID, msg)
			}
			if msg := strict.CheckTime(&events[i], now); msg == "" {
				t.Fatalf("with the default maxEventAge, event %s accepted", events[i].ID)
			}
		}
		ingest(t, store, events)
		rec := &recorder{AggregationStore: store}
		agg := &odometer.Aggregator{Store: rec, Config: func() *odometer.Config { return cfg }, Now: func() time.Time { return now }}
		res, err := agg.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		aggs := checkAggregations(t, store, cfg, events)
		// Hours 10 and 13, the day, the week, the month and the year 2025.
		if got, want := len(aggs), 6; got != want {
			t.Fatalf("%d aggregations, want %d", got, want)
		}
		for _, a := range aggs {
			if !a.Complete || a.Revision != 1 || a.Dirty {
				t.Errorf("%s: complete %v, revision %d, dirty %v; want complete revision 1", a.ID(), a.Complete, a.Revision, a.Dirty)
			}
		}
		if got, want := res.PeriodsCompleted, 6; got != want {
			t.Errorf("PeriodsCompleted = %d, want %d", got, want)
		}
		if got, want := res.EventsProcessed, 3; got != want {
			t.Errorf("EventsProcessed = %d, want %d", got, want)
		}
		if got, want := len(rec.take()), 6; got != want {
			t.Errorf("%d notifications, want %d", got, want)
		}
	})
}

// TestAggregator_OnlyEndedPeriodsComplete: a run with the current periods
// open aggregates them but completes, and notifies, only the ended ones.
func TestAggregator_OnlyEndedPeriodsComplete(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		store := open(t)
		cfg := aggConfig(t, `"webhooks": [{"url": "https://billing.example.com/hooks", "secret": "whsec_x"}]`)
		now := at(t, "2026-06-15T10:20:00Z") // a Monday: week 2026-W25 began at midnight
		events := []odometer.Event{
			event("c-1", "cust_now", "e.sum", 1, at(t, "2026-06-15T10:05:00Z")), // this hour
			event("c-2", "cust_now", "e.sum", 2, at(t, "2026-06-15T09:10:00Z")), // the previous hour
			event("c-3", "cust_now", "e.sum", 4, at(t, "2026-06-14T23:00:00Z")), // yesterday, last week
		}
		ingest(t, store, events)
		rec := &recorder{AggregationStore: store}
		agg := &odometer.Aggregator{Store: rec, Config: func() *odometer.Config { return cfg }, Now: func() time.Time { return now }}
		res, err := agg.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ended := map[string]bool{
			"cust_now_hourly_2026061509": true, "cust_now_hourly_2026061423": true,
			"cust_now_daily_20260614": true, "cust_now_weekly_202624": true,
		}
		if got, want := res.PeriodsCompleted, len(ended); got != want {
			t.Errorf("PeriodsCompleted = %d, want %d", got, want)
		}
		// Hours 2026061423, 09 and 10; days 14 and 15; weeks 24 and 25; June; 2026.
		if got, want := res.AggregationsCreated, 9; got != want {
			t.Errorf("AggregationsCreated = %d, want %d", got, want)
		}
		for _, a := range checkAggregations(t, store, cfg, events) {
			if got, want := a.Complete, ended[a.ID()]; got != want {
				t.Errorf("%s: complete = %v, want %v", a.ID(), got, want)
			}
			if got, want := a.Complete, !a.PeriodEnd.After(now); got != want {
				t.Errorf("%s ending %s: complete = %v at %s", a.ID(), a.PeriodEnd, got, now)
			}
			if want := map[bool]int{true: 1, false: 0}[ended[a.ID()]]; a.Revision != want {
				t.Errorf("%s: revision = %d, want %d", a.ID(), a.Revision, want)
			}
		}
		notes := rec.take()
		if got, want := len(notes), len(ended); got != want {
			t.Errorf("%d notifications, want %d", got, want)
		}
		for _, n := range notes {
			if !ended[n.AggregationID] || n.Type != odometer.AggregationCompleted {
				t.Errorf("notification %s for %s, an open period", n.Type, n.AggregationID)
			}
		}

		ds, _, err := store.FindDeliveries(ctx, odometer.DeliveryFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(ds), len(ended); got != want {
			t.Errorf("%d deliveries, want %d", got, want)
		}
		for _, d := range ds {
			if !ended[d.AggregationID] {
				t.Errorf("delivery %s for %s, an open period", d.Type, d.AggregationID)
			}
		}

		// With a grace period, an ended period waits for it.
		graceCfg := aggConfig(t, `"gracePeriod": "1h"`)
		store2 := open(t)
		ingest(t, store2, []odometer.Event{event("g-1", "cust_grace", "e.sum", 1, at(t, "2026-06-15T09:10:00Z"))})
		clk := &clock{now: at(t, "2026-06-15T10:59:59.999Z")}
		agg2 := &odometer.Aggregator{Store: store2, Config: func() *odometer.Config { return graceCfg }, Now: clk.Now}
		if res, err := agg2.Run(ctx); err != nil || res.PeriodsCompleted != 0 {
			t.Fatalf("within the grace period: %+v, %v; want nothing completed", res, err)
		}
		clk.Set(at(t, "2026-06-15T11:00:00Z"))
		if res, err := agg2.Run(ctx); err != nil || res.PeriodsCompleted != 1 {
			t.Fatalf("after the grace period: %+v, %v; want the hour 09 completed", res, err)
		}
	})
}

// TestAggregator_Concurrent: runs from several goroutines at once, while
// events arrive, count each event once.
func TestAggregator_Concurrent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		store := open(t)
		cfg := aggConfig(t, `"timezone": "America/New_York", "maxEventAge": "0"`)
		now := func() time.Time { return time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) }
		shared := &odometer.Aggregator{Store: store, Config: func() *odometer.Config { return cfg }, Now: now, ChunkSize: 50, FlushEvents: 20}
		runners := []*odometer.Aggregator{shared, shared, shared, shared}

		const writers = 3
		var mu sync.Mutex
		var stored []odometer.Event
		var done atomic.Bool
		var wg sync.WaitGroup
		errs := make(chan error, writers+len(runners))
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 99))
				events := propEvents(rng, 600, cfg.Location, fmt.Sprintf("w%d", w))
				for len(events) > 0 {
					size := min(1+rng.IntN(12), len(events))
					req := events[:size]
					events = events[size:]
					if _, err := store.CreateEvents(ctx, req); err != nil {
						errs <- err
						return
					}
					mu.Lock()
					stored = append(stored, req...)
					mu.Unlock()
				}
			}(w)
		}
		var rwg sync.WaitGroup
		for _, a := range runners {
			rwg.Add(1)
			go func(a *odometer.Aggregator) {
				defer rwg.Done()
				for n := 0; n < 3 || !done.Load(); n++ {
					if _, err := a.Run(ctx); err != nil {
						errs <- err
						return
					}
				}
			}(a)
		}
		wg.Wait()
		done.Store(true)
		rwg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if _, err := shared.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := len(stored), writers*600; got != want {
			t.Fatalf("%d events stored, want %d", got, want)
		}
		checkAggregations(t, store, cfg, stored)
	})
}

// TestAggregator_TemplateAcceptance is the template's acceptance flow at
// the store: 18 events for three customers, one run, the daily values.
func TestAggregator_TemplateAcceptance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		store := open(t)
		cfg := odometer.ExampleConfig()
		now := at(t, "2026-01-13T15:04:05.678Z")
		post := map[string]map[string][]float64{
			"cust_test_a": {"api.calls": {10, 15, 25}, "storage.bytes": {1000, 2500, 1500}, "response.time.ms": {100, 200, 150}},
			"cust_test_b": {"api.calls": {5, 10}, "storage.bytes": {5000, 3000}, "response.time.ms": {250, 350}},
			"cust_test_c": {"api.calls": {100}, "storage.bytes": {10000}, "response.time.ms": {50}},
		}
		n := 0
		for _, customer := range []string{"cust_test_a", "cust_test_b", "cust_test_c"} {
			for _, typ := range []string{"api.calls", "storage.bytes", "response.time.ms"} {
				for _, v := range post[customer][typ] {
					n++
					// No timestamp: the event time is the time of receipt.
					ingest(t, store, []odometer.Event{{ID: fmt.Sprintf("gen-%d", n), CustomerID: customer, EventType: typ, Value: v, Time: now, ReceivedAt: now}})
				}
			}
		}
		if n != 18 {
			t.Fatalf("posted %d events, want 18", n)
		}
		agg := &odometer.Aggregator{Store: store, Config: func() *odometer.Config { return cfg }, Now: func() time.Time { return now }}
		res, err := agg.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := res.EventsProcessed, 18; got != want {
			t.Errorf("EventsProcessed = %d, want %d", got, want)
		}
		for _, tt := range []struct {
			customer                 string
			calls, storage, response float64
			counts                   int64
		}{
			{"cust_test_a", 50, 2500, 150, 3},
			{"cust_test_b", 15, 5000, 300, 2},
			{"cust_test_c", 100, 10000, 50, 1},
		} {
			aggs := findAll(t, store, odometer.AggregationFilter{CustomerID: tt.customer, Period: odometer.Daily})
			if got, want := len(aggs), 1; got != want {
				t.Fatalf("%s: %d daily aggregations, want %d", tt.customer, got, want)
			}
			a := aggs[0]
			if got, want := a.ID(), tt.customer+"_daily_20260113"; got != want {
				t.Errorf("id = %q, want %q", got, want)
			}
			v := a.Values(cfg)
			for typ, want := range map[string]float64{"api.calls": tt.calls, "storage.bytes": tt.storage, "response.time.ms": tt.response} {
				if got := v.Events[typ]; got != want {
					t.Errorf("%s %s = %v, want %v", tt.customer, typ, got, want)
				}
				if got := v.EventCounts[typ]; got != tt.counts {
					t.Errorf("%s count of %s = %d, want %d", tt.customer, typ, got, tt.counts)
				}
			}
			if a.Complete {
				t.Errorf("%s: today's aggregation is complete", tt.customer)
			}
		}
	})
}
