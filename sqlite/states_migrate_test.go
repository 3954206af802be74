package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/sqlite"
)

// TestLegacyStatesFile: a database written before states carried a kind
// and a version (testdata/v4-legacy-states.db, written by that release
// with the template's example configuration) opens, shows the values it
// showed, folds new events into its states in decimal, and writes them
// back in the new format.
func TestLegacyStatesFile(t *testing.T) {
	ctx := context.Background()
	b, err := os.ReadFile("testdata/v4-legacy-states.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "odometer.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg := odometer.ExampleConfig()
	values := func(id string) *odometer.Values {
		t.Helper()
		aggs, _, err := s.FindAggregations(ctx, odometer.AggregationFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range aggs {
			if a.ID() == id {
				return a.Values(cfg)
			}
		}
		t.Fatalf("no aggregation %s", id)
		return nil
	}
	// The template's acceptance flow, and binary sums as they were shown.
	for id, want := range map[string]map[string]float64{
		"cust_test_a_daily_20261118": {"api.calls": 50, "storage.bytes": 2500, "response.time.ms": 150},
		"cust_b_daily_20261118":      {"api.calls": 0.30000000000000004, "response.time.ms": 0.1},
		"cust_b_daily_20261119":      {"response.time.ms": 0.2, "storage.bytes": -3.5},
		"cust_b_monthly_202611":      {"api.calls": 0.30000000000000004, "response.time.ms": 0.15000000000000002},
	} {
		v := values(id)
		for name, w := range want {
			if got := v.Events[name]; got != w {
				t.Errorf("%s: %s = %v, want %v (as before the upgrade)", id, name, got, w)
			}
		}
	}
	// Buckets too: the usage of a legacy hour.
	pts, err := odometer.Usage(ctx, s, cfg, odometer.UsageQuery{CustomerID: "cust_test_a", Meter: "api.calls", Window: odometer.Daily,
		From: time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC), Location: time.UTC})
	if err != nil || len(pts) != 1 || pts[0].Value != 50 || pts[0].Count != 3 {
		t.Fatalf("usage of legacy buckets: %+v, %v", pts, err)
	}

	// New events fold into the legacy states, in decimal.
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	at := time.Date(2026, 11, 18, 5, 30, 0, 0, time.UTC)
	if _, err := s.CreateEvents(ctx, []odometer.Event{
		{ID: "b6", ClientID: true, EventType: "api.calls", CustomerID: "cust_b", Value: 0.1, Time: at, TimeGiven: true, ReceivedAt: now},
		{ID: "a10", ClientID: true, EventType: "api.calls", CustomerID: "cust_test_a", Value: 0.5, Time: at, TimeGiven: true, ReceivedAt: now},
	}); err != nil {
		t.Fatal(err)
	}
	agg := &odometer.Aggregator{Store: s, Config: func() *odometer.Config { return cfg }, Now: func() time.Time { return now }}
	if _, err := agg.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := values("cust_test_a_daily_20261118").Events["api.calls"]; got != 50.5 {
		t.Errorf("legacy 50 + 0.5 = %v", got)
	}
	// The legacy binary total 0.30000000000000004 stays what it was, and
	// 0.1 is added to it in decimal.
	if got := values("cust_b_daily_20261118").Events["api.calls"]; got != 0.4 {
		t.Errorf("legacy 0.30000000000000004 + 0.1 = %v, want 0.4", got)
	}
	// Written back in the new format: the raw rows read again the same,
	// after a restart.
	s.Close()
	if s, err = sqlite.Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	if got := values("cust_test_a_daily_20261118").Events["api.calls"]; got != 50.5 {
		t.Errorf("after a restart: %v", got)
	}
}
