package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestExportAggregations(t *testing.T) {
	ts := startServer(t)
	hour := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	at := func(m int) string { return hour.Add(time.Duration(m) * time.Minute).Format(time.RFC3339) }
	ts.mustPost(t,
		`{"eventType": "api.calls", "customerId": "cust_b", "value": 10, "timestamp": "`+at(1)+`"}`,
		`{"eventType": "api.calls", "customerId": "cust_b", "value": 15, "timestamp": "`+at(2)+`"}`,
		`{"eventType": "storage.bytes", "customerId": "cust_b", "value": 2500, "timestamp": "`+at(3)+`"}`,
		`{"eventType": "storage.bytes", "customerId": "cust_b", "value": 1000, "timestamp": "`+at(4)+`"}`,
		`{"eventType": "api.calls", "customerId": "cust_a", "value": 100, "timestamp": "`+at(5)+`"}`,
		`{"eventType": "response.time.ms", "customerId": "cust_a", "value": 50, "timestamp": "`+at(6)+`"}`,
		`{"eventType": "response.time.ms", "customerId": "cust_a", "value": 150, "timestamp": "`+at(7)+`"}`,
		// The current hour: not ended, not exported unless --incomplete.
		`{"eventType": "api.calls", "customerId": "cust_a", "value": 1}`,
	)
	mustRun(t, append([]string{"trigger"}, ts.flags(ts.AdminKey)...)...)
	read := ts.flags(ts.ReadKey)

	t.Run("CSV", func(t *testing.T) {
		r := mustRun(t, append([]string{"export", "aggregations", "--period", "hourly"}, read...)...)
		recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		wantHeader := []string{"customerId", "period", "periodKey", "periodStart", "periodEnd",
			"api.calls", "api.calls.count", "response.time.ms", "response.time.ms.count", "storage.bytes", "storage.bytes.count",
			"revision", "complete"}
		if !slices.Equal(recs[0], wantHeader) {
			t.Fatalf("header %q, want %q", recs[0], wantHeader)
		}
		key, start := hour.Format("2006010215"), hour.Format("2006-01-02T15:04:05.000Z")
		end := hour.Add(time.Hour - time.Millisecond).Format("2006-01-02T15:04:05.000Z")
		want := [][]string{
			{"cust_a", "hourly", key, start, end, "100", "1", "100", "2", "", "0", "1", "true"},
			{"cust_b", "hourly", key, start, end, "25", "2", "", "0", "2500", "2", "1", "true"},
		}
		if got := recs[1:]; !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("rows\n%q\nwant\n%q", got, want)
		}
		if !strings.Contains(r.stderr, "Exported 2 aggregations") {
			t.Fatalf("stderr %q", r.stderr)
		}
	})

	t.Run("Incomplete", func(t *testing.T) {
		r := mustRun(t, append([]string{"export", "aggregations", "--period", "hourly", "--incomplete", "--customer", "cust_a"}, read...)...)
		recs, _ := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
		if got, want := len(recs), 3; got != want {
			t.Fatalf("%d records, want %d (header, the past hour, the current one):\n%s", got, want, r.stdout)
		}
		if recs[1][3] >= recs[2][3] || recs[2][len(recs[2])-1] != "false" {
			t.Fatalf("want the past hour first and the current one incomplete:\n%s", r.stdout)
		}
	})

	t.Run("JSON", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "export.json")
		r := mustRun(t, append([]string{"export", "aggregations", "--period", "hourly", "--format", "json", "--out", out}, read...)...)
		if r.stdout != "" {
			t.Fatalf("stdout %q, want nothing with --out", r.stdout)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var rows []exportRow
		decodeJSON(t, string(b), &rows)
		if len(rows) != 2 || rows[0].CustomerID != "cust_a" || rows[1].Events["storage.bytes"] != 2500 || rows[1].EventCounts["api.calls"] != 2 {
			t.Fatalf("rows %+v", rows)
		}
	})

	t.Run("Pages", func(t *testing.T) {
		// More aggregations than one page: every one is exported once.
		var events []string
		base := time.Now().UTC().Add(-30 * 24 * time.Hour).Truncate(time.Hour)
		for i := 0; i < 1100; i++ {
			events = append(events, `{"eventType": "api.calls", "customerId": "cust_p", "value": 1, "timestamp": "`+
				base.Add(time.Duration(i/2)*time.Hour).Format(time.RFC3339)+`"}`)
		}
		ts.mustPost(t, events[:1000]...)
		ts.mustPost(t, events[1000:]...)
		mustRun(t, append([]string{"trigger"}, ts.flags(ts.AdminKey)...)...)
		r := mustRun(t, append([]string{"export", "aggregations", "--period", "hourly", "--customer", "cust_p"}, read...)...)
		recs, _ := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
		if got, want := len(recs)-1, 550; got != want {
			t.Fatalf("%d hours exported, want %d", got, want)
		}
		for i := 2; i < len(recs); i++ {
			if recs[i-1][3] >= recs[i][3] || recs[i][6] != "2" {
				t.Fatalf("row %d %q after %q: want later hours, each of 2 events", i, recs[i], recs[i-1])
			}
		}
	})

	t.Run("ErrFlags", func(t *testing.T) {
		mustFail(t, "--period is required", append([]string{"export", "aggregations"}, read...)...)
		mustFail(t, "--period must be", append([]string{"export", "aggregations", "--period", "minutely"}, read...)...)
		mustFail(t, "--format must be", append([]string{"export", "aggregations", "--period", "daily", "--format", "xlsx"}, read...)...)
	})
}
