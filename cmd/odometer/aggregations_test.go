package main

import (
	"strings"
	"testing"
	"time"

	odohttp "github.com/odometer-dev/odometer/http"
)

func TestTrigger(t *testing.T) {
	ts := startServer(t)
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	ts.postSpread(t, "cust_a", "a", 5, start)

	r := mustRun(t, append([]string{"trigger", "-o", "json"}, ts.flags(ts.AdminKey)...)...)
	var res odohttp.TriggerResult
	decodeJSON(t, r.stdout, &res)
	if got, want := res.EventsProcessed, 5; got != want {
		t.Fatalf("events processed %d, want %d", got, want)
	}
	if res.AggregationsCreated == 0 || res.PeriodsCompleted == 0 {
		t.Fatalf("result %+v: want aggregations created and the past hour completed", res)
	}

	r = mustRun(t, append([]string{"trigger"}, ts.flags(ts.AdminKey)...)...)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "EVENTS") || !strings.HasPrefix(lines[1], "0 ") {
		t.Fatalf("second trigger, nothing new:\n%s", r.stdout)
	}
	mustFail(t, "403", append([]string{"trigger"}, ts.flags(ts.IngestKey)...)...)
}

func TestAggregations_List(t *testing.T) {
	ts := startServer(t)
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	ts.postSpread(t, "cust_a", "a", 5, start) // values 1..5 in one past hour
	ts.postSpread(t, "cust_b", "b", 2, start)
	mustRun(t, append([]string{"trigger"}, ts.flags(ts.AdminKey)...)...)
	read := ts.flags(ts.ReadKey)

	t.Run("OK", func(t *testing.T) {
		r := mustRun(t, append([]string{"aggregations", "list", "--customer", "cust_a", "--period", "hourly"}, read...)...)
		if !strings.Contains(r.stdout, "api.calls=15 (5)") || !strings.Contains(r.stdout, start.Format("2006010215")) {
			t.Fatalf("table:\n%s", r.stdout)
		}
	})

	t.Run("JSON", func(t *testing.T) {
		var aggs []odohttp.AggregationRecord
		decodeJSON(t, mustRun(t, append([]string{"aggregations", "list", "--period", "hourly", "--complete", "-o", "json"}, read...)...).stdout, &aggs)
		if got, want := len(aggs), 2; got != want {
			t.Fatalf("%d complete hourly aggregations, want %d", got, want)
		}
		sums := map[string]float64{}
		for _, a := range aggs {
			if !a.Complete || a.Period != "hourly" {
				t.Fatalf("aggregation %+v", a)
			}
			sums[a.CustomerID] = a.Events["api.calls"]
		}
		if sums["cust_a"] != 15 || sums["cust_b"] != 3 {
			t.Fatalf("sums %v, want cust_a 15, cust_b 3", sums)
		}
		decodeJSON(t, mustRun(t, append([]string{"aggregations", "list", "--period", "hourly", "--complete=false", "-o", "json"}, read...)...).stdout, &aggs)
		if got, want := len(aggs), 0; got != want {
			t.Fatalf("%d current hourly aggregations, want %d", got, want)
		}
	})

	t.Run("Pages", func(t *testing.T) {
		r := mustRun(t, append([]string{"aggregations", "list", "--customer", "cust_a", "--limit", "2", "--all", "-o", "csv"}, read...)...)
		// hourly, daily, weekly, monthly, yearly, and the header.
		if got, want := strings.Count(r.stdout, "\n"), 6; got != want {
			t.Fatalf("%d lines, want %d:\n%s", got, want, r.stdout)
		}
	})

	t.Run("ErrPeriod", func(t *testing.T) {
		mustFail(t, "400", append([]string{"aggregations", "list", "--period", "minutely"}, read...)...)
	})
}

func TestDeliveries(t *testing.T) {
	ts := startServer(t)
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	ts.postSpread(t, "cust_a", "a", 3, start)
	ts.postSpread(t, "cust_b", "b", 3, start)
	admin := ts.flags(ts.AdminKey)
	mustRun(t, append([]string{"trigger"}, admin...)...)

	// The past hour of each customer is complete: one delivery each, kept
	// pending (no sender runs here).
	var ds []struct {
		ID, CustomerID, Status string
	}
	decodeJSON(t, mustRun(t, append([]string{"deliveries", "list", "--status", "pending", "--customer", "cust_a", "-o", "json"}, admin...)...).stdout, &ds)
	if len(ds) == 0 {
		t.Fatal("no pending delivery of cust_a")
	}
	for _, d := range ds {
		if d.CustomerID != "cust_a" || d.Status != "pending" {
			t.Fatalf("delivery %+v", d)
		}
	}
	r := mustRun(t, append([]string{"deliveries", "list"}, admin...)...)
	if !strings.Contains(r.stdout, ds[0].ID) || !strings.Contains(r.stdout, "cust_b") {
		t.Fatalf("table:\n%s", r.stdout)
	}

	r = mustRun(t, append([]string{"deliveries", "retry", ds[0].ID, "-o", "json"}, admin...)...)
	var d struct{ ID, Status string }
	decodeJSON(t, r.stdout, &d)
	if d.ID != ds[0].ID || d.Status != "pending" {
		t.Fatalf("retried %+v", d)
	}
	mustFail(t, "404", append([]string{"deliveries", "retry", "dlv_nope"}, admin...)...)
	mustFail(t, "--status must be", append([]string{"deliveries", "list", "--status", "sent"}, admin...)...)
	mustFail(t, "403", append([]string{"deliveries", "list"}, ts.flags(ts.ReadKey)...)...)
}
