package http

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

const directoryConfig = `{
  "periods": ["daily", "monthly"],
  "maxEventAge": "0",
  "events": { "api.calls": { "op": "sum" }, "llm.request": { "op": "count" } },
  "meters": { "llm.tokens": { "eventType": "llm.request", "op": "sum", "value": "$.tokens", "groupBy": ["model"] } }
}`

// usageRow is a customer of GET /customers?sort=usage as the test reads it.
type usageRow struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Usage *struct {
		Meter       string  `json:"meter"`
		Value       float64 `json:"value"`
		Count       int64   `json:"count"`
		Period      string  `json:"period"`
		PeriodKey   string  `json:"periodKey"`
		PeriodStart string  `json:"periodStart"`
		PeriodEnd   string  `json:"periodEnd"`
		Timezone    string  `json:"timezone"`
	} `json:"usage"`
}

func rowsText(rows []usageRow) string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%s=%v/%d", r.ID, r.Usage.Value, r.Usage.Count))
	}
	return strings.Join(out, " ")
}

// TestCustomersByUsage: GET /customers?sort=usage orders the customers
// with usage this month by a meter's value in it, pages, searches, keeps
// a pinned key to its customer, and refuses bad input with a message.
func TestCustomersByUsage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServerConfig(t, open, directoryConfig)
		var batch []string
		calls := map[string]int{"c1": 30, "c2": 5, "c3": 12, "c4": 12, "c5": 0}
		for c, n := range calls {
			if n > 0 {
				batch = append(batch, fmt.Sprintf(`{"eventType": "api.calls", "customerId": %q, "value": %d, "timestamp": "2026-01-05T08:00:00Z"}`, c, n))
			}
		}
		batch = append(batch,
			`{"eventType": "llm.request", "customerId": "c5", "value": 1, "timestamp": "2026-01-06T08:00:00Z", "metadata": {"model": "a", "tokens": 40}}`,
			`{"eventType": "llm.request", "customerId": "c5", "value": 1, "timestamp": "2026-01-07T08:00:00Z", "metadata": {"model": "b", "tokens": 2}}`,
			`{"eventType": "llm.request", "customerId": "c2", "value": 1, "timestamp": "2026-01-07T08:00:00Z", "metadata": {"model": "b", "tokens": 9}}`,
			`{"eventType": "api.calls", "customerId": "c1", "value": 1000, "timestamp": "2025-12-20T08:00:00Z"}`,
			`{"eventType": "api.calls", "customerId": "dec", "value": 1000, "timestamp": "2025-12-20T08:00:00Z"}`)
		ts.MustDo(t, 201, "POST", "/usagebatch", ts.IngestKey, "["+strings.Join(batch, ",")+"]")
		ts.MustDo(t, 200, "PUT", "/customers/c3", ts.AdminKey, `{"name": "Acme"}`)
		ts.mustTrigger(t)

		get := func(key string, q url.Values) ([]usageRow, string) {
			t.Helper()
			var rows []usageRow
			res := ts.MustDo(t, 200, "GET", "/customers?"+q.Encode(), key, "")
			res.Decode(t, &rows)
			return rows, res.Header.Get("X-Next-Cursor")
		}
		byUsage := func(meter, order string, extra ...string) url.Values {
			q := url.Values{"sort": {"usage"}, "meter": {meter}}
			if order != "" {
				q.Set("order", order)
			}
			for i := 0; i+1 < len(extra); i += 2 {
				q.Set(extra[i], extra[i+1])
			}
			return q
		}

		// Descending by default, ties by id reversed; dec has no usage
		// this month, and c1's December is not this cycle.
		rows, next := get(ts.ReadKey, byUsage("api.calls", ""))
		if got, want := rowsText(rows), "c1=30/1 c4=12/1 c3=12/1 c2=5/1 c5=0/0"; got != want || next != "" {
			t.Errorf("api.calls, descending: %s (next %q), want %s", got, next, want)
		}
		for _, r := range rows {
			u := r.Usage
			if u.Meter != "api.calls" || u.Period != "monthly" || u.PeriodKey != "202601" || u.PeriodStart != "2026-01-01T00:00:00.000Z" || u.PeriodEnd != "2026-01-31T23:59:59.999Z" {
				t.Errorf("%s: usage %+v", r.ID, u)
			}
			if (r.ID == "c3") != (r.Name == "Acme") {
				t.Errorf("%s: name %q", r.ID, r.Name)
			}
		}
		rows, _ = get(ts.ReadKey, byUsage("llm.tokens", "asc"))
		if got, want := rowsText(rows), "c1=0/0 c3=0/0 c4=0/0 c2=9/1 c5=42/2"; got != want {
			t.Errorf("llm.tokens, ascending: %s, want %s", got, want)
		}

		// Pages of two, each following on from the last.
		var all []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			rows, next := get(ts.ReadKey, byUsage("api.calls", "desc", "limit", "2", "cursor", cursor))
			all = append(all, rowsText(rows))
			if next == "" {
				break
			}
			cursor = next
		}
		if got, want := strings.Join(all, " | "), "c1=30/1 c4=12/1 | c3=12/1 c2=5/1 | c5=0/0"; got != want {
			t.Errorf("pages: %s, want %s", got, want)
		}

		// Search by id or name prefix.
		if rows, _ := get(ts.ReadKey, byUsage("api.calls", "", "q", "Ac")); rowsText(rows) != "c3=12/1" {
			t.Errorf("q=Ac: %s", rowsText(rows))
		}
		if rows, _ := get(ts.ReadKey, byUsage("api.calls", "", "q", "nobody")); len(rows) != 0 {
			t.Errorf("q=nobody: %s", rowsText(rows))
		}

		// A pinned key sees its own customer only.
		pinnedKey := ts.MustCreateKey(t, odometer.ScopeRead, "c2")
		if rows, _ := get(pinnedKey, byUsage("api.calls", "")); rowsText(rows) != "c2=5/1" {
			t.Errorf("pinned to c2: %s", rowsText(rows))
		}
		if rows, _ := get(pinnedKey, byUsage("api.calls", "", "q", "c1")); len(rows) != 0 {
			t.Errorf("pinned to c2, q=c1: %s", rowsText(rows))
		}

		// New usage shows once a run has folded it and the answer's 10
		// seconds are over.
		ts.MustDo(t, 201, "POST", "/usagebatch", ts.IngestKey, `[{"eventType": "api.calls", "customerId": "c2", "value": 100, "timestamp": "2026-01-12T08:00:00Z"}]`)
		ts.mustTrigger(t)
		ts.SetNow(testNow.Add(11 * time.Second))
		if rows, _ := get(ts.ReadKey, byUsage("api.calls", "", "limit", "1")); rowsText(rows) != "c2=105/2" {
			t.Errorf("after a run: %s, want c2=105/2", rowsText(rows))
		}

		// Bad input: 400 with a message.
		for _, tc := range []struct{ q, want string }{
			{"sort=size", "sort must be id or usage"},
			{"sort=usage", "meter must be one of the configured meters or event types with sort=usage: api.calls, llm.request, llm.tokens"},
			{"sort=usage&meter=nope", "meter must be one of"},
			{"sort=usage&meter=api.calls&order=up", "order must be desc or asc"},
			{"sort=usage&meter=api.calls&cursor=%25%25", "cursor is not valid"},
			{"sort=usage&meter=api.calls&limit=0", "limit must be"},
			{"order=desc", "order=desc needs sort=usage"},
			{"meter=api.calls", "meter needs sort=usage"},
		} {
			res := ts.MustDo(t, 400, "GET", "/customers?"+tc.q, ts.ReadKey, "")
			if msg := res.Error(); !strings.HasPrefix(msg, tc.want) {
				t.Errorf("%s: %q, want it to start with %q", tc.q, msg, tc.want)
			}
		}
	})
}

// TestCustomersByUsage_Periods: the cycle is the billing cycle when the
// billing period is configured, and sort=usage is refused, saying why,
// when neither billing nor monthly is.
func TestCustomersByUsage_Periods(t *testing.T) {
	ts := MustOpenServerConfig(t, func(tb testing.TB) odometer.Store { return storetest.OpenSQLite(tb) },
		strings.Replace(directoryConfig, `["daily", "monthly"]`, `["daily", "monthly", "billing"]`, 1))
	ts.MustDo(t, 200, "PUT", "/customers/anchored", ts.AdminKey, `{"billingAnchor": "2025-06-10T00:00:00+09:00", "timezone": "Asia/Tokyo"}`)
	ts.MustDo(t, 201, "POST", "/usagebatch", ts.IngestKey, `[
		{"eventType": "api.calls", "customerId": "anchored", "value": 7, "timestamp": "2026-01-09T08:00:00Z"},
		{"eventType": "api.calls", "customerId": "anchored", "value": 3, "timestamp": "2026-01-10T08:00:00Z"},
		{"eventType": "api.calls", "customerId": "calendar", "value": 4, "timestamp": "2026-01-02T08:00:00Z"}]`)
	ts.mustTrigger(t)
	var rows []usageRow
	ts.MustDo(t, 200, "GET", "/customers?sort=usage&meter=api.calls", ts.ReadKey, "").Decode(t, &rows)
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s=%v %s %s..%s %s", r.ID, r.Usage.Value, r.Usage.Period, r.Usage.PeriodStart, r.Usage.PeriodEnd, r.Usage.Timezone))
	}
	// The anchored customer's cycle runs from the 10th in Tokyo (15:00 the
	// day before in UTC): the event of 08:00 UTC on the 9th is before it.
	want := "calendar=4 billing 2026-01-01T00:00:00.000Z..2026-01-31T23:59:59.999Z UTC | anchored=3 billing 2026-01-09T15:00:00.000Z..2026-02-09T14:59:59.999Z Asia/Tokyo"
	if strings.Join(got, " | ") != want {
		t.Errorf("billing cycles:\n got %s\nwant %s", strings.Join(got, " | "), want)
	}

	ts = MustOpenServerConfig(t, func(tb testing.TB) odometer.Store { return storetest.OpenSQLite(tb) },
		strings.Replace(directoryConfig, `["daily", "monthly"]`, `["daily"]`, 1))
	res := ts.MustDo(t, 400, "GET", "/customers?sort=usage&meter=api.calls", ts.ReadKey, "")
	if msg := res.Error(); !strings.Contains(msg, "needs the billing or the monthly period") {
		t.Errorf("without billing and monthly: %q", msg)
	}
}
