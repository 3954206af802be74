package main

import (
	"context"
	"strings"
	"testing"

	odohttp "github.com/odometer-dev/odometer/http"
)

func TestAlerts_Server(t *testing.T) {
	ts := startServer(t)
	admin := ts.flags(ts.AdminKey)

	var created odohttp.AlertRecord
	decodeJSON(t, mustRun(t, append([]string{"alerts", "create", "--meter", "api.calls", "--period", "daily", "--threshold", "10000",
		"--customer", "cust_a", "-o", "json"}, admin...)...).stdout, &created)
	if created.ID == "" || created.Meter != "api.calls" || created.Period != "daily" || created.Threshold != 10000 || created.CustomerID != "cust_a" {
		t.Fatalf("created %+v", created)
	}
	mustRun(t, append([]string{"alerts", "create", "--meter", "storage.bytes", "--period", "monthly", "--threshold", "1e9"}, admin...)...)

	r := mustRun(t, append([]string{"alerts", "list"}, ts.flags(ts.ReadKey)...)...)
	if !strings.Contains(r.stdout, created.ID) || !strings.Contains(r.stdout, "(every customer)") || !strings.Contains(r.stdout, "1000000000") {
		t.Fatalf("list:\n%s", r.stdout)
	}
	var one []odohttp.AlertRecord
	decodeJSON(t, mustRun(t, append([]string{"alerts", "list", "--customer", "cust_a", "-o", "json"}, admin...)...).stdout, &one)
	if len(one) != 1 || one[0].ID != created.ID {
		t.Fatalf("list --customer cust_a: %+v", one)
	}

	mustFail(t, "Invalid event type: api.nope", append([]string{"alerts", "create", "--meter", "api.nope", "--period", "daily", "--threshold", "1"}, admin...)...)
	mustFail(t, "response.time.ms (avg) goes up and down", append([]string{"alerts", "create", "--meter", "response.time.ms", "--period", "daily", "--threshold", "1"}, admin...)...)
	mustFail(t, "--threshold must be a number greater than 0", append([]string{"alerts", "create", "--meter", "api.calls", "--period", "daily", "--threshold", "NaN"}, admin...)...)
	mustFail(t, "403", append([]string{"alerts", "create", "--meter", "api.calls", "--period", "daily", "--threshold", "1"}, ts.flags(ts.ReadKey)...)...)

	r = mustRun(t, append([]string{"alerts", "delete", created.ID}, admin...)...)
	if !strings.Contains(r.stderr, "deleted") {
		t.Fatalf("delete: %q", r.stderr)
	}
	mustFail(t, "Alert not found", append([]string{"alerts", "delete", created.ID}, admin...)...)
	if as, _ := ts.Store.FindAlerts(context.Background()); len(as) != 1 {
		t.Fatalf("%d alerts left, want 1", len(as))
	}
}
