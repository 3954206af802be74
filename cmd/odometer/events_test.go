package main

import (
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
	"time"

	odohttp "github.com/odometer-dev/odometer/http"
)

// postSpread posts n api.calls events of customer, one a minute from
// start, with ids prefix-0...
func (ts *testServer) postSpread(tb testing.TB, customer, prefix string, n int, start time.Time) {
	tb.Helper()
	var events []string
	for i := 0; i < n; i++ {
		events = append(events, fmt.Sprintf(`{"eventType": "api.calls", "customerId": %q, "value": %d, "id": "%s-%d", "timestamp": %q}`,
			customer, i+1, prefix, i, start.Add(time.Duration(i)*time.Minute).Format(time.RFC3339)))
	}
	ts.mustPost(tb, events...)
}

func TestEvents_List(t *testing.T) {
	ts := startServer(t)
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	ts.postSpread(t, "cust_a", "a", 25, start)
	ts.postSpread(t, "cust_b", "b", 5, start)
	ts.mustPost(t, `{"eventType": "storage.bytes", "customerId": "cust_a", "value": 7, "metadata": {"region": "eu"}}`)
	read := ts.flags(ts.ReadKey)

	t.Run("OK", func(t *testing.T) {
		r := mustRun(t, append([]string{"events", "list"}, read...)...)
		if got, want := strings.Count(r.stdout, "\n"), 32; got != want {
			t.Fatalf("%d lines, want %d (header and 31 events):\n%s", got, want, r.stdout)
		}
		if !strings.HasPrefix(r.stdout, "ID ") || !strings.Contains(r.stdout, `{"region":"eu"}`) {
			t.Fatalf("table:\n%s", r.stdout)
		}
	})

	t.Run("Filters", func(t *testing.T) {
		args := append([]string{"events", "list", "--customer", "cust_a", "--type", "api.calls",
			"--from", start.Add(10 * time.Minute).Format(time.RFC3339), "--to", start.Add(19 * time.Minute).Format(time.RFC3339), "-o", "json"}, read...)
		var events []odohttp.EventRecord
		decodeJSON(t, mustRun(t, args...).stdout, &events)
		if got, want := len(events), 10; got != want {
			t.Fatalf("%d events, want %d", got, want)
		}
		for _, e := range events {
			if e.CustomerID != "cust_a" || e.EventType != "api.calls" || e.Value < 11 || e.Value > 20 {
				t.Fatalf("event %+v is not in the filter", e)
			}
		}
	})

	t.Run("Pages", func(t *testing.T) {
		r := mustRun(t, append([]string{"events", "list", "--customer", "cust_a", "--limit", "10", "-o", "csv"}, read...)...)
		if got, want := strings.Count(r.stdout, "\n"), 11; got != want {
			t.Fatalf("one page: %d lines, want %d", got, want)
		}
		if !strings.Contains(r.stderr, "--cursor ") {
			t.Fatalf("stderr %q: want the next cursor", r.stderr)
		}
		r = mustRun(t, append([]string{"events", "list", "--customer", "cust_a", "--limit", "10", "--all", "-o", "csv"}, read...)...)
		recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(recs), 27; got != want {
			t.Fatalf("--all: %d records, want %d (header and 26 events)", got, want)
		}
		seen := map[string]bool{}
		for _, rec := range recs[1:] {
			if seen[rec[0]] {
				t.Fatalf("event %s twice", rec[0])
			}
			seen[rec[0]] = true
		}
	})

	t.Run("ErrFilters", func(t *testing.T) {
		mustFail(t, "--from must be", append([]string{"events", "list", "--from", "yesterday"}, read...)...)
		mustFail(t, "--limit must be", append([]string{"events", "list", "--limit", "0"}, read...)...)
		mustFail(t, "--output must be", append([]string{"events", "list", "-o", "xml"}, read...)...)
	})
}

func TestEvents_Delete(t *testing.T) {
	ts := startServer(t)
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	ts.postSpread(t, "cust_a", "a", 6, start)
	ts.postSpread(t, "cust_b", "b", 4, start)
	admin := ts.flags(ts.AdminKey)

	t.Run("ErrNoFilter", func(t *testing.T) {
		mustFail(t, "give at least one of", append([]string{"events", "delete", "--yes"}, admin...)...)
		mustFail(t, "without filters", append([]string{"events", "delete", "--all", "--customer", "c", "--yes"}, admin...)...)
	})

	t.Run("ErrNotConfirmed", func(t *testing.T) {
		mustFail(t, "add --yes", append([]string{"events", "delete", "--customer", "cust_a"}, admin...)...)
		defer func(f func(any) bool) { isTerminal = f }(isTerminal)
		isTerminal = func(any) bool { return true }
		r := run(t, nil, "n\n", append([]string{"events", "delete", "--customer", "cust_a"}, admin...)...)
		if r.err == nil || !strings.Contains(r.err.Error(), "not deleted") || !strings.Contains(r.stderr, "Delete the events of customer cust_a") {
			t.Fatalf("answer n: err %v, stderr %q", r.err, r.stderr)
		}
		if got, want := ts.countEvents(t), 10; got != want {
			t.Fatalf("%d events, want %d", got, want)
		}
	})

	t.Run("Confirmed", func(t *testing.T) {
		defer func(f func(any) bool) { isTerminal = f }(isTerminal)
		isTerminal = func(any) bool { return true }
		r := run(t, nil, "y\n", append([]string{"events", "delete", "--customer", "cust_a", "-o", "json"}, admin...)...)
		if r.err != nil {
			t.Fatalf("%v\n%s", r.err, r.stderr)
		}
		var res odohttp.DeleteResult
		decodeJSON(t, r.stdout, &res)
		if got, want := res.Deleted, 6; got != want {
			t.Fatalf("deleted %d, want %d", got, want)
		}
		if got, want := ts.countEvents(t), 4; got != want {
			t.Fatalf("%d events left, want %d", got, want)
		}
	})

	t.Run("Yes", func(t *testing.T) {
		r := mustRun(t, append([]string{"events", "delete", "--customer", "cust_b", "--from", start.Add(2 * time.Minute).Format(time.RFC3339), "--yes"}, admin...)...)
		if !strings.Contains(r.stdout, "DELETED") || !strings.Contains(r.stdout, "2") {
			t.Fatalf("stdout:\n%s", r.stdout)
		}
		if got, want := ts.countEvents(t), 2; got != want {
			t.Fatalf("%d events left, want %d", got, want)
		}
	})

	t.Run("All", func(t *testing.T) {
		mustRun(t, append([]string{"events", "delete", "--all", "--yes"}, admin...)...)
		if got, want := ts.countEvents(t), 0; got != want {
			t.Fatalf("%d events left, want %d", got, want)
		}
	})
}
