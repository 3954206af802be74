package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	odohttp "github.com/odometer-dev/odometer/http"
)

func TestCustomers_Commands(t *testing.T) {
	ts := startServer(t)
	admin, read := ts.flags(ts.AdminKey), ts.flags(ts.ReadKey)
	ts.mustPost(t, `{"eventType": "api.calls", "customerId": "cust_ev", "value": 3}`)

	t.Run("Set", func(t *testing.T) {
		var rec odohttp.CustomerRecord
		decodeJSON(t, mustRun(t, append([]string{"customers", "set", "cust_k", "--name", "Kolkata Ltd", "--timezone", "Asia/Kolkata",
			"--anchor", "2026-01-15T00:00:00+05:30", "--metadata", `{"plan": "pro"}`, "-o", "json"}, admin...)...).stdout, &rec)
		if rec.Name != "Kolkata Ltd" || rec.Timezone != "Asia/Kolkata" || rec.BillingAnchor != "2026-01-14T18:30:00.000Z" ||
			compact(t, rec.Metadata) != `{"plan":"pro"}` || rec.CurrentCycle == nil || rec.CurrentCycle.Timezone != "Asia/Kolkata" {
			t.Fatalf("set: %+v", rec)
		}
		// Only the flags given change.
		rec = odohttp.CustomerRecord{}
		decodeJSON(t, mustRun(t, append([]string{"customers", "set", "cust_k", "--interval", "year", "-o", "json"}, admin...)...).stdout, &rec)
		if rec.Name != "Kolkata Ltd" || rec.Timezone != "Asia/Kolkata" || rec.BillingInterval != "year" || compact(t, rec.Metadata) != `{"plan":"pro"}` {
			t.Fatalf("set --interval: %+v", rec)
		}
		// An empty value clears; --replace resets what is not given.
		rec = odohttp.CustomerRecord{}
		decodeJSON(t, mustRun(t, append([]string{"customers", "set", "cust_k", "--anchor", "", "-o", "json"}, admin...)...).stdout, &rec)
		if rec.BillingAnchor != "" || rec.Name != "Kolkata Ltd" {
			t.Fatalf("set --anchor '': %+v", rec)
		}
		rec = odohttp.CustomerRecord{}
		decodeJSON(t, mustRun(t, append([]string{"customers", "set", "cust_r", "--name", "R"}, append(admin, "-o", "json")...)...).stdout, &rec)
		rec = odohttp.CustomerRecord{}
		decodeJSON(t, mustRun(t, append([]string{"customers", "set", "cust_r", "--replace", "--timezone", "UTC", "-o", "json"}, admin...)...).stdout, &rec)
		if rec.Name != "" || rec.Timezone != "UTC" {
			t.Fatalf("set --replace: %+v", rec)
		}
		mustFail(t, "timezone must be an IANA time zone name", append([]string{"customers", "set", "cust_k", "--timezone", "Mars/Base"}, admin...)...)
		mustFail(t, "--metadata must be a JSON object", append([]string{"customers", "set", "cust_k", "--metadata", "[1]"}, admin...)...)
		mustFail(t, "403", append([]string{"customers", "set", "cust_k", "--name", "x"}, read...)...)
	})

	t.Run("Get", func(t *testing.T) {
		out := mustRun(t, append([]string{"customers", "get", "cust_ev"}, read...)...).stdout
		if !strings.Contains(out, "api.calls=3 (1)") || !strings.Contains(out, "cust_ev") {
			t.Fatalf("get:\n%s", out)
		}
		mustFail(t, "404", append([]string{"customers", "get", "cust_nobody"}, read...)...)
	})

	t.Run("List", func(t *testing.T) {
		out := mustRun(t, append([]string{"customers", "list", "--limit", "1", "--all"}, read...)...).stdout
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[1], "cust_ev") || !strings.HasPrefix(lines[2], "cust_k") || !strings.HasPrefix(lines[3], "cust_r") {
			t.Fatalf("list --all:\n%s", out)
		}
		r := mustRun(t, append([]string{"customers", "list", "--limit", "1"}, read...)...)
		if !strings.Contains(r.stderr, "More customers: --cursor ") {
			t.Fatalf("list --limit 1: stderr %q", r.stderr)
		}
		var recs []odohttp.CustomerRecord
		decodeJSON(t, mustRun(t, append([]string{"customers", "list", "--q", "Kol", "-o", "json"}, read...)...).stdout, &recs)
		if len(recs) != 1 || recs[0].ID != "cust_k" {
			t.Fatalf("list --q Kol: %+v", recs)
		}
	})
}

func compact(tb testing.TB, b []byte) string {
	tb.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		tb.Fatal(err)
	}
	return buf.String()
}
