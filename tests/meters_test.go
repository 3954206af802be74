package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// metersConfig bills an LLM product: tokens by model, monthly active
// users, and p95 latency of successful requests; and keeps the template's
// api.calls.
const metersConfig = `{
  "periods": ["hourly", "daily", "monthly"],
  "events": {
    "api.calls":   { "op": "sum" },
    "llm.request": { "op": "count", "description": "LLM requests" }
  },
  "meters": {
    "llm.tokens": { "eventType": "llm.request", "op": "sum", "value": "$.tokens", "groupBy": ["model"], "description": "Tokens by model" },
    "llm.users":  { "eventType": "llm.request", "op": "unique", "value": "$.userId" },
    "llm.p95":    { "eventType": "llm.request", "op": "p95", "value": "$.latencyMs", "filter": { "status": ["ok"] } }
  },
  "webhooks": []
}`

type groupValue struct {
	Group map[string]any `json:"group"`
	Value float64        `json:"value"`
	Count int64          `json:"count"`
}

type meterAggregation struct {
	CustomerID  string                  `json:"customerId"`
	Period      string                  `json:"period"`
	PeriodKey   string                  `json:"periodKey"`
	Events      map[string]float64      `json:"events"`
	EventCounts map[string]int64        `json:"eventCounts"`
	Groups      map[string][]groupValue `json:"groups"`
}

// TestMeters: meters over metadata, through the real binary: grouped
// sums, exact unique counts, a filtered p95, skipped events counted, the
// usage query by meter and group, and the CSV export.
func TestMeters(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "systemconfig.json")
	if err := os.WriteFile(cfgPath, []byte(metersConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	const key = "odo_test_meters_admin_key_0123456789"
	srv := startServer(t, serverOptions{DB: filepath.Join(dir, "odometer.db"), Config: cfgPath, Key: key, Dir: dir})

	day := time.Now().UTC().Add(-48 * time.Hour).Truncate(24 * time.Hour)
	ts := func(h int) string { return day.Add(time.Duration(h) * time.Hour).Format(time.RFC3339) }
	var events []map[string]any
	add := func(h int, md map[string]any) {
		events = append(events, map[string]any{"eventType": "llm.request", "customerId": "cust_llm", "value": 1, "timestamp": ts(h), "metadata": md})
	}
	// Tokens: gpt-4o 1234 + 0.1 + 0.2, mini "12.5" (a string holding a number) + 100.
	add(1, map[string]any{"model": "gpt-4o", "tokens": 1234, "userId": "u_1", "latencyMs": 100, "status": "ok"})
	add(2, map[string]any{"model": "gpt-4o", "tokens": 0.1, "userId": "u_2", "latencyMs": 200, "status": "ok"})
	add(3, map[string]any{"model": "gpt-4o", "tokens": 0.2, "userId": "u_1", "latencyMs": 9000, "status": "err"})
	add(4, map[string]any{"model": "gpt-4o-mini", "tokens": "12.5", "userId": 7, "latencyMs": 300, "status": "ok"})
	add(5, map[string]any{"model": "gpt-4o-mini", "tokens": 100, "userId": "7", "latencyMs": 400, "status": "ok"})
	// No model: the group "". No tokens: skipped by llm.tokens only.
	add(6, map[string]any{"tokens": 5, "userId": true, "status": "ok", "latencyMs": 500})
	add(7, map[string]any{"model": "gpt-4o", "userId": "u_3", "status": "ok", "latencyMs": "600"})
	// Tokens not a number: skipped too.
	add(8, map[string]any{"model": "gpt-4o", "tokens": "many", "userId": "u_1", "status": "ok"})
	body, _ := json.Marshal(events)
	if a := srv.mustSend(t, "POST", "/usagebatch", key, body); a.Status != http.StatusCreated {
		t.Fatalf("POST /usagebatch: %d %s", a.Status, a.Body)
	}
	if a := srv.mustSend(t, "POST", "/aggregations/trigger", key, nil); a.Status != http.StatusOK {
		t.Fatalf("trigger: %d %s", a.Status, a.Body)
	}

	var aggs []meterAggregation
	srv.getJSON(t, "/aggregations?period=daily&customerId=cust_llm", &aggs)
	if len(aggs) != 1 {
		t.Fatalf("%d daily aggregations, want 1", len(aggs))
	}
	a := aggs[0]
	for name, want := range map[string]float64{
		"llm.request": 8,
		"llm.users":   6,   // "u_1", "u_2", 7, "7", true, "u_3": a number and a string are two values
		"llm.p95":     500, // ok latencies 100 200 300 400 500 "600": rank floor(0.95*5) = 4
	} {
		got := a.Events[name]
		tol := 0.0
		if name == "llm.p95" {
			tol = 0.01 * want
		}
		if d := got - want; d > tol || d < -tol {
			t.Errorf("events[%s] = %v, want %v", name, got, want)
		}
	}
	// 1234 + 0.1 + 0.2 + 12.5 + 100 + 5, in decimal.
	if got, want := a.Events["llm.tokens"], 1351.8; got != want {
		t.Errorf("llm.tokens = %v, want exactly %v", got, want)
	}
	if got, want := a.EventCounts["llm.tokens"], int64(6); got != want {
		t.Errorf("eventCounts[llm.tokens] = %d, want %d (two events skipped)", got, want)
	}
	if got, want := a.EventCounts["llm.p95"], int64(6); got != want {
		t.Errorf("eventCounts[llm.p95] = %d, want %d (the error filtered out, one without latency skipped)", got, want)
	}
	groups := a.Groups["llm.tokens"]
	want := []groupValue{
		{map[string]any{"model": ""}, 5, 1},
		{map[string]any{"model": "gpt-4o"}, 1234.3, 3},
		{map[string]any{"model": "gpt-4o-mini"}, 112.5, 2},
	}
	if len(groups) != len(want) {
		t.Fatalf("groups[llm.tokens] = %+v, want %+v", groups, want)
	}
	for i := range want {
		if fmt.Sprint(groups[i]) != fmt.Sprint(want[i]) {
			t.Errorf("group %d = %+v, want %+v", i, groups[i], want[i])
		}
	}
	if _, ok := a.Groups["llm.users"]; ok {
		t.Errorf("groups has llm.users, which has no groupBy")
	}

	// Usage by meter and group, per hour.
	var usage struct {
		Meter string `json:"meter"`
		Usage []struct {
			Key    string       `json:"key"`
			Value  float64      `json:"value"`
			Groups []groupValue `json:"groups"`
		} `json:"usage"`
	}
	srv.getJSON(t, "/usage?customerId=cust_llm&meter=llm.tokens&window=day&groupBy=model&from="+day.Format(time.RFC3339)+"&to="+day.Add(24*time.Hour).Format(time.RFC3339), &usage)
	if len(usage.Usage) != 1 || usage.Usage[0].Value != 1351.8 || len(usage.Usage[0].Groups) != 3 || usage.Usage[0].Groups[1].Value != 1234.3 {
		t.Errorf("usage by model = %+v", usage)
	}
	if a := srv.mustSend(t, "GET", "/usage?customerId=cust_llm&meter=llm.users&groupBy=model", key, nil); a.Status != http.StatusBadRequest || !strings.Contains(a.errorText(), "no groupBy") {
		t.Errorf("groupBy on a meter without: %d %s", a.Status, a.Body)
	}
	if a := srv.mustSend(t, "GET", "/usage?customerId=cust_llm&meter=nope", key, nil); a.Status != http.StatusBadRequest || !strings.Contains(a.errorText(), "Invalid meter: nope") {
		t.Errorf("unknown meter: %d %s", a.Status, a.Body)
	}

	// Skipped events are counted, by meter and reason.
	m := srv.mustSend(t, "GET", "/metrics", key, nil)
	for _, line := range []string{
		`odometer_meter_events_skipped_total{meter="llm.tokens",reason="missing"} 1`,
		`odometer_meter_events_skipped_total{meter="llm.tokens",reason="not_number"} 1`,
		`odometer_meter_events_skipped_total{meter="llm.p95",reason="missing"} 1`,
	} {
		if !strings.Contains(string(m.Body), line) {
			t.Errorf("metrics lack %s", line)
		}
	}

	// The export has a row per group.
	cmd := exec.Command(binary, "export", "aggregations", "--period", "daily", "--format", "csv", "--server", srv.URL, "--api-key", key)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], ",group,") || !strings.Contains(lines[3], `"{""model"":""gpt-4o""}"`) || !strings.Contains(lines[3], ",1234.3,3,") {
		t.Errorf("export:\n%s", out)
	}
	if !strings.Contains(lines[1], ",1351.8,6,") {
		t.Errorf("export total row: %s", lines[1])
	}
}

// TestMetersConfigCheck: odometer config check names the meter, the key
// and what is allowed.
func TestMetersConfigCheck(t *testing.T) {
	for _, tt := range []struct {
		name, meters, want string
	}{
		{"UnknownEventType", `{"m": {"eventType": "nope", "op": "sum"}}`, `meters.m.eventType: unknown event type "nope"; allowed: an event type of "events" (api.calls)`},
		{"UnknownOp", `{"m": {"eventType": "api.calls", "op": "median"}}`, `meters.m.op: unknown op "median"; allowed: sum, avg, min, max, count, first, last, unique, p50, p90, p95, p99`},
		{"BadPath", `{"m": {"eventType": "api.calls", "op": "sum", "value": "$..x"}}`, `meters.m.value: must be a metadata path`},
		{"TooManyGroups", `{"m": {"eventType": "api.calls", "op": "sum", "groupBy": ["a","b","c","d","e","f"]}}`, `meters.m.groupBy: has 6 paths; allowed: at most 5`},
		{"NameOfEventType", `{"api.calls": {"eventType": "api.calls", "op": "sum"}}`, `meters.api.calls: is the name of an event type`},
		{"UnknownKey", `{"m": {"eventType": "api.calls", "op": "sum", "field": "x"}}`, `meters.m.field: unknown key; allowed: eventType, op, value, groupBy, filter, unit, description`},
		{"EmptyFilter", `{"m": {"eventType": "api.calls", "op": "sum", "filter": {"status": []}}}`, `meters.m.filter.status: has no allowed values`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "systemconfig.json")
			cfg := `{"events": {"api.calls": {"op": "sum"}}, "meters": ` + tt.meters + `}`
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(binary, "config", "check", path).CombinedOutput()
			if err == nil {
				t.Fatalf("config check passed:\n%s", out)
			}
			if !strings.Contains(string(out), tt.want) || !strings.Contains(string(out), path) {
				t.Errorf("config check said:\n%s\nwant it to name the file and say %q", out, tt.want)
			}
		})
	}
}
