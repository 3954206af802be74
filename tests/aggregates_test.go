package tests

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"testing"
	"time"
)

// killOps is the op of each event type of killConfig.
var killOps = map[string]string{"api.calls": "sum", "api.peak": "max", "api.hits": "count"}

// dayValue is one event type's aggregate in one customer's day.
type dayValue struct {
	value float64
	count int64
}

// expectedDaily computes, from scratch, the daily aggregate of every
// customer, day and event type of events, by the op of killOps. The
// values are quarters, so every sum is exact whatever the order.
func expectedDaily(t *testing.T, events []storedEvent) map[string]dayValue {
	t.Helper()
	want := map[string]dayValue{} // by customer, day and event type
	for _, e := range events {
		k := e.CustomerID + " " + e.Day + " " + e.EventType
		d, seen := want[k]
		switch op := killOps[e.EventType]; op {
		case "sum":
			d.value += e.Value
		case "max":
			if !seen || e.Value > d.value {
				d.value = e.Value
			}
		case "count":
			d.value++
		default:
			t.Fatalf("event %s has the type %q, which the kill configuration does not have", e.ID, e.EventType)
		}
		d.count++
		want[k] = d
	}
	return want
}

// checkDailyAggregates triggers an aggregation and checks every daily
// aggregation, value and count of each event type, against a computation
// from scratch over the stored events.
func checkDailyAggregates(t *testing.T, srv *server, events []storedEvent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	status, body, _, err := srv.do(ctx, "POST", "/aggregations/trigger", nil)
	if err != nil {
		t.Fatalf("POST /aggregations/trigger: %v", err)
	}
	if got, want := status, http.StatusOK; got != want {
		t.Fatalf("POST /aggregations/trigger: status %d, want %d: %s", got, want, body)
	}

	want := expectedDaily(t, events)
	got := map[string]dayValue{}
	days := map[string]bool{}
	cursor := ""
	for {
		q := url.Values{"period": {"daily"}, "limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var aggs []aggregation
		h := srv.getJSON(t, "/aggregations?"+q.Encode(), &aggs)
		for _, a := range aggs {
			if a.Period != "daily" {
				t.Errorf("GET /aggregations?period=daily returned a %s aggregation", a.Period)
			}
			day := a.CustomerID + " " + a.PeriodKey
			if days[day] {
				t.Errorf("two daily aggregations for %s", day)
			}
			days[day] = true
			for typ, v := range a.Events {
				if _, ok := killOps[typ]; !ok {
					continue // a meter over metadata: checked from scratch
				}
				got[day+" "+typ] = dayValue{v, a.EventCounts[typ]}
			}
			for typ := range a.EventCounts {
				if _, ok := a.Events[typ]; !ok {
					t.Errorf("daily aggregation %s has a count of %s but no value", day, typ)
				}
			}
		}
		next := h.Get("X-Next-Cursor")
		if next == "" || next == cursor || len(aggs) == 0 {
			break
		}
		cursor = next
	}

	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	wrong := 0
	for _, k := range sorted {
		if g, w := got[k], want[k]; g != w {
			wrong++
			if wrong <= 10 {
				t.Errorf("daily aggregation %s: %v over %d events, want %v over %d", k, g.value, g.count, w.value, w.count)
			}
		}
	}
	if len(got) == 0 {
		t.Errorf("no daily aggregation after the trigger")
	}
	ops := map[string]int{}
	for k := range want {
		for typ, op := range killOps {
			if len(k) > len(typ) && k[len(k)-len(typ):] == typ {
				ops[op]++
			}
		}
	}
	report(t, "aggregates checked: %d customer-days, %d values (sum %d, max %d, count %d); wrong %d",
		len(days), len(sorted), ops["sum"], ops["max"], ops["count"], wrong)
}
