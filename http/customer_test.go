package http

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

type customerBody struct {
	ID              string          `json:"id"`
	Name            string          `json:"name"`
	Timezone        string          `json:"timezone"`
	BillingAnchor   string          `json:"billingAnchor"`
	BillingInterval string          `json:"billingInterval"`
	Metadata        json.RawMessage `json:"metadata"`
	CreatedAt       string          `json:"createdAt"`
	UpdatedAt       string          `json:"updatedAt"`
	FirstEventAt    string          `json:"firstEventAt"`
	LastEventAt     string          `json:"lastEventAt"`
	CurrentCycle    *struct {
		PeriodStart string             `json:"periodStart"`
		PeriodEnd   string             `json:"periodEnd"`
		PeriodKey   string             `json:"periodKey"`
		Timezone    string             `json:"timezone"`
		Events      map[string]float64 `json:"events"`
		EventCounts map[string]int64   `json:"eventCounts"`
	} `json:"currentCycle"`
}

func TestCustomers_PutGet(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open) // the clock: 2026-01-13T10:30Z
		var put, got customerBody
		srv.MustDo(t, 200, "PUT", "/customers/cust_k", srv.AdminKey,
			`{"name": "Kolkata Ltd", "timezone": "Asia/Kolkata", "billingAnchor": "2025-12-05T00:00:00+05:30", "metadata": {"plan": "pro"}}`).Decode(t, &put)
		srv.MustDo(t, 200, "GET", "/customers/cust_k", srv.ReadKey, "").Decode(t, &got)
		if got.Name != "Kolkata Ltd" || got.Timezone != "Asia/Kolkata" || got.BillingInterval != "month" || string(got.Metadata) != `{"plan":"pro"}` {
			t.Errorf("GET after PUT: %+v", got)
		}
		if got.BillingAnchor != "2025-12-04T18:30:00.000Z" || got.CreatedAt != "2026-01-13T10:30:00.000Z" || got.FirstEventAt != "" {
			t.Errorf("anchor %s, created %s, first event %q", got.BillingAnchor, got.CreatedAt, got.FirstEventAt)
		}
		if put.ID != "cust_k" || put.Name != got.Name || put.CurrentCycle == nil {
			t.Errorf("the PUT answer is not the customer: %+v", put)
		}
		// The cycle of January 13: [Jan 5 00:00 IST, Feb 5 00:00 IST).
		c := got.CurrentCycle
		if c == nil || c.PeriodStart != "2026-01-04T18:30:00.000Z" || c.PeriodEnd != "2026-02-04T18:29:59.999Z" || c.PeriodKey != "20260105" || c.Timezone != "Asia/Kolkata" {
			t.Fatalf("currentCycle %+v", c)
		}
		if len(c.Events) != 0 {
			t.Errorf("a customer without events has usage: %v", c.Events)
		}

		// Events in the cycle, one just before it; one folded, two not yet.
		srv.MustPostEvent(t, "api.calls", `{"customerId": "cust_k", "value": 99, "timestamp": "2026-01-04T18:29:59.999Z"}`)
		srv.MustPostEvent(t, "api.calls", `{"customerId": "cust_k", "value": 0.1, "timestamp": "2026-01-04T18:30:00Z"}`)
		srv.mustTrigger(t)
		srv.MustPostEvent(t, "api.calls", `{"customerId": "cust_k", "value": 0.2, "timestamp": "2026-01-13T10:00:00.5Z"}`)
		srv.MustPostEvent(t, "response.time.ms", `{"customerId": "cust_k", "value": 120}`)
		srv.MustDo(t, 200, "GET", "/customers/cust_k", srv.ReadKey, "").Decode(t, &got)
		if got.CurrentCycle.Events["api.calls"] != 0.3 || got.CurrentCycle.EventCounts["api.calls"] != 2 || got.CurrentCycle.Events["response.time.ms"] != 120 {
			t.Errorf("cycle usage %v %v", got.CurrentCycle.Events, got.CurrentCycle.EventCounts)
		}
		if got.FirstEventAt != "2026-01-04T18:29:59.999Z" || got.LastEventAt != "2026-01-13T10:30:00.000Z" {
			t.Errorf("first %s, last %s", got.FirstEventAt, got.LastEventAt)
		}

		// Replaced whole; the creation time stays.
		srv.SetNow(testNow.Add(time.Hour))
		put = customerBody{}
		srv.MustDo(t, 200, "PUT", "/customers/cust_k", srv.AdminKey, `{"billingInterval": "week"}`).Decode(t, &put)
		if put.Name != "" || put.Timezone != "" || put.BillingAnchor != "" || put.BillingInterval != "week" || string(put.Metadata) != "{}" ||
			put.CreatedAt != "2026-01-13T10:30:00.000Z" || put.UpdatedAt != "2026-01-13T11:30:00.000Z" {
			t.Errorf("after replacing: %+v", put)
		}
		// The customer has events: the new settings take effect when the
		// cycle in force ends, which does not move.
		if c := put.CurrentCycle; c.PeriodStart != "2026-01-04T18:30:00.000Z" || c.PeriodEnd != "2026-02-04T18:29:59.999Z" || c.Timezone != "Asia/Kolkata" {
			t.Errorf("the cycle in force moved: %+v", c)
		}
		// From its end, no anchor, weekly: the ISO week in the config's
		// zone (UTC), the first one starting where the old cycle ended.
		srv.SetNow(time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC))
		got = customerBody{}
		srv.MustDo(t, 200, "GET", "/customers/cust_k", srv.ReadKey, "").Decode(t, &got)
		if c := got.CurrentCycle; c.PeriodStart != "2026-02-09T00:00:00.000Z" || c.PeriodEnd != "2026-02-15T23:59:59.999Z" || c.Timezone != "UTC" {
			t.Errorf("weekly calendar cycle %+v", c)
		}
		srv.SetNow(testNow.Add(time.Hour))

		// A customer seen only through events; one never seen.
		srv.MustPostEvent(t, "api.calls", `{"customerId": "cust_ev", "value": 5}`)
		got = customerBody{}
		srv.MustDo(t, 200, "GET", "/customers/cust_ev", srv.ReadKey, "").Decode(t, &got)
		if got.CreatedAt != "" || got.BillingInterval != "month" || string(got.Metadata) != "{}" || got.CurrentCycle.Events["api.calls"] != 5 ||
			got.CurrentCycle.PeriodStart != "2026-01-01T00:00:00.000Z" {
			t.Errorf("a customer seen only through events: %s", srv.Do(t, "GET", "/customers/cust_ev", srv.ReadKey, "").Body)
		}
		if r := srv.MustDo(t, 404, "GET", "/customers/cust_never", srv.ReadKey, ""); !strings.Contains(string(r.Body), `"Not found"`) {
			t.Errorf("404 body %s", r.Body)
		}
	})
}

func TestCustomers_BadInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		for _, tt := range []struct {
			name, path, body, want string
		}{
			{"UnknownKey", "/customers/c", `{"name": "A", "plan": "pro"}`, `Request body has the unknown key "plan"`},
			{"DuplicateKey", "/customers/c", `{"name": "A", "name": "B"}`, `Request body has the key "name" more than once`},
			{"NotObject", "/customers/c", `["A"]`, `Request body must be a JSON object`},
			{"BadJSON", "/customers/c", `{"name": }`, `Invalid JSON`},
			{"NameNumber", "/customers/c", `{"name": 7}`, `name must be a string`},
			{"NameLong", "/customers/c", `{"name": "` + strings.Repeat("n", 256) + `"}`, `name must be at most 255 bytes`},
			{"NameControl", "/customers/c", `{"name": "a\u0007b"}`, `name must be valid UTF-8 without control characters`},
			{"Timezone", "/customers/c", `{"timezone": "Mars/Olympus_Mons"}`, `timezone must be an IANA time zone name such as "Europe/Paris" or "UTC", not "Mars/Olympus_Mons"`},
			{"TimezoneOffset", "/customers/c", `{"timezone": "+05:30"}`, `timezone must be an IANA time zone name`},
			{"TimezoneLocal", "/customers/c", `{"timezone": "Local"}`, `timezone must be an IANA time zone name`},
			{"TimezoneNumber", "/customers/c", `{"timezone": 5.5}`, `timezone must be a string`},
			{"AnchorNotADate", "/customers/c", `{"billingAnchor": "2026-02-30T00:00:00Z"}`, `billingAnchor must be an RFC 3339 date-time`},
			{"AnchorNoZone", "/customers/c", `{"billingAnchor": "2026-02-03T00:00:00"}`, `billingAnchor must be an RFC 3339 date-time`},
			{"AnchorNumber", "/customers/c", `{"billingAnchor": 1767225600}`, `billingAnchor must be a string`},
			{"AnchorTooEarly", "/customers/c", `{"billingAnchor": "0001-01-01T00:00:00Z"}`, `billingAnchor must be between 1970-01-01 and 2199-12-31`},
			{"AnchorTooLate", "/customers/c", `{"billingAnchor": "9999-12-31T23:59:59Z"}`, `billingAnchor must be between 1970-01-01 and 2199-12-31`},
			{"Interval", "/customers/c", `{"billingInterval": "quarter"}`, `billingInterval must be one of: month, year, week, not "quarter"`},
			{"IntervalCase", "/customers/c", `{"billingInterval": "Month"}`, `billingInterval must be one of: month, year, week`},
			{"MetadataArray", "/customers/c", `{"metadata": [1, 2]}`, `metadata must be a JSON object`},
			{"MetadataString", "/customers/c", `{"metadata": "{}"}`, `metadata must be a JSON object`},
			{"MetadataLarge", "/customers/c", `{"metadata": {"k": "` + strings.Repeat("m", 17000) + `"}}`, `metadata must be at most 16384 bytes`},
			{"IDLong", "/customers/" + strings.Repeat("i", 256), `{}`, `the customer id must be at most 255 bytes`},
			{"IDControl", "/customers/a%01b", `{}`, `the customer id must be valid UTF-8 without control characters`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := srv.MustDo(t, 400, "PUT", tt.path, srv.AdminKey, tt.body)
				if got := r.Map(t)["error"]; !strings.Contains(got.(string), tt.want) {
					t.Errorf("error %q, want it to contain %q", got, tt.want)
				}
			})
		}
		// Nothing was stored.
		var list []customerBody
		srv.MustDo(t, 200, "GET", "/customers", srv.ReadKey, "").Decode(t, &list)
		if len(list) != 0 {
			t.Errorf("refused bodies stored customers: %+v", list)
		}
		for _, path := range []string{"/customers?limit=0", "/customers?limit=1001", "/customers?limit=x", "/customers?cursor=not*base64",
			"/customers?q=" + strings.Repeat("q", 256)} {
			srv.MustDo(t, 400, "GET", path, srv.ReadKey, "")
		}
	})
}

func TestCustomers_ListAndPinned(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		pinned := srv.MustCreateKey(t, odometer.ScopeRead, "cust_b")
		srv.MustDo(t, 200, "PUT", "/customers/cust_a", srv.AdminKey, `{"name": "Alpha"}`)
		srv.MustDo(t, 200, "PUT", "/customers/cust_c", srv.AdminKey, `{"name": "Gamma"}`)
		srv.MustPostEvent(t, "api.calls", `{"customerId": "cust_b", "value": 1}`)
		srv.MustPostEvent(t, "api.calls", `{"customerId": "cust_d", "value": 1}`)
		srv.mustTrigger(t)
		srv.MustPostEvent(t, "api.calls", `{"customerId": "cust_e", "value": 1}`)

		ids := func(key, query string) []string {
			t.Helper()
			var all []string
			path := "/customers?" + query
			for range 20 {
				r := srv.MustDo(t, 200, "GET", path, key, "")
				var page []customerBody
				r.Decode(t, &page)
				for _, c := range page {
					all = append(all, c.ID)
				}
				next := r.Header.Get("X-Next-Cursor")
				if next == "" {
					return all
				}
				path = "/customers?" + query + "&cursor=" + next
			}
			t.Fatal("too many pages")
			return nil
		}
		if got, want := ids(srv.ReadKey, "limit=2"), []string{"cust_a", "cust_b", "cust_c", "cust_d", "cust_e"}; !slices.Equal(got, want) {
			t.Errorf("list %q, want %q", got, want)
		}
		if got, want := ids(srv.ReadKey, "q=Gam"), []string{"cust_c"}; !slices.Equal(got, want) {
			t.Errorf("q=Gam: %q, want %q", got, want)
		}
		// A pinned key lists its own customer only, and reads no other.
		if got, want := ids(pinned, "limit=1"), []string{"cust_b"}; !slices.Equal(got, want) {
			t.Errorf("pinned list %q, want %q", got, want)
		}
		if got := ids(pinned, "q=cust_a"); len(got) != 0 {
			t.Errorf("pinned q=cust_a: %q", got)
		}
		srv.MustDo(t, 200, "GET", "/customers/cust_b", pinned, "")
		for _, id := range []string{"cust_a", "cust_d", "cust_e", "cust_nobody", "CUST_B", "cust_b%20"} {
			r := srv.MustDo(t, 404, "GET", "/customers/"+id, pinned, "")
			if strings.Contains(string(r.Body), "cust_") {
				t.Errorf("404 names a customer: %s", r.Body)
			}
		}
		srv.MustDo(t, 403, "PUT", "/customers/cust_b", pinned, `{"name": "mine"}`)
	})
}

// FuzzCustomerBody: whatever the body of PUT /customers/{id}, decoding it
// never panics, refuses with EINVALID, or accepts a profile that is valid
// and that reads back the same from the JSON the API writes of it.
func FuzzCustomerBody(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `{"name": "Acme", "timezone": "Asia/Kolkata", "billingAnchor": "2026-01-31T00:00:00+05:30", "billingInterval": "year", "metadata": {"a": [1, {"b": null}]}}`,
		`{"timezone": "America/St_Johns"}`, `{"billingAnchor": "1970-01-01T00:00:00Z"}`, `{"billingAnchor": "2199-12-31T23:59:59.999-12:00"}`,
		`{"metadata": null, "name": null}`, `{"name": "\u2028"}`, `{"timezone": "../zoneinfo"}`, `{"billingInterval": "week", "metadata": {}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		c, err := decodeCustomer("cust_fuzz", []byte(body))
		if err != nil {
			if odometer.ErrorCode(err) != odometer.EINVALID {
				t.Fatalf("refused with %v, want EINVALID", err)
			}
			return
		}
		again := *c
		if err := again.Validate(); err != nil {
			t.Fatalf("accepted a profile that does not validate: %v", err)
		}
		// The record, less what is not a profile key.
		b, err := json.Marshal(toCustomerJSON(c))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "id")
		if b, err = json.Marshal(m); err != nil {
			t.Fatal(err)
		}
		back, err := decodeCustomer("cust_fuzz", b)
		if err != nil {
			t.Fatalf("the API's own JSON of an accepted profile is refused: %v\n%s", err, b)
		}
		if back.Name != c.Name || back.Timezone != c.Timezone || back.BillingInterval != c.BillingInterval ||
			string(back.Metadata) != string(c.Metadata) || (back.BillingAnchor == nil) != (c.BillingAnchor == nil) ||
			(c.BillingAnchor != nil && !back.BillingAnchor.Equal(*c.BillingAnchor)) {
			t.Fatalf("round trip: %+v, then %+v", c, back)
		}
	})
}

// TestCustomerAlerts: GET /customers/{id}/alerts lists the alerts that
// apply to the customer (its own and those of every customer) with the
// period holding now (its billing cycle for billing), its usage so far,
// and the firing the evaluator recorded; a pinned key sees its own
// customer's alerts only.
func TestCustomerAlerts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServerConfig(t, open, `{
  "periods": ["daily", "monthly", "billing"], "timezone": "Europe/Oslo",
  "events": { "api.calls": { "op": "sum" }, "storage.bytes": { "op": "max" } }
}`)
		ctx := t.Context()
		pinned := srv.MustCreateKey(t, odometer.ScopeRead, "cust_a")
		srv.MustDo(t, 200, "PUT", "/customers/cust_a", srv.AdminKey, `{"billingAnchor": "2026-01-05T00:00:00+01:00"}`)
		var ids []string
		for _, body := range []string{
			`{"meter": "api.calls", "period": "daily", "threshold": 10, "customerId": "cust_a"}`,
			`{"meter": "storage.bytes", "period": "billing", "threshold": 500}`,
			`{"meter": "api.calls", "period": "daily", "threshold": 1, "customerId": "cust_b"}`,
		} {
			var a AlertRecord
			srv.MustDo(t, 201, "POST", "/alerts", srv.AdminKey, body).Decode(t, &a)
			ids = append(ids, a.ID)
		}
		ev := &odometer.AlertEvaluator{Store: srv.Store, Config: srv.API.Config, Now: srv.Now, Customers: srv.Store}
		evaluate := func(fired int) {
			t.Helper()
			if res, err := ev.RunOnce(ctx); err != nil || res.Fired != fired {
				t.Fatalf("alerts: %+v, %v; want %d fired", res, err, fired)
			}
		}
		srv.MustDo(t, 201, "POST", "/usage/api.calls", srv.IngestKey, `{"customerId": "cust_a", "value": 4}`)
		srv.MustDo(t, 201, "POST", "/usage/storage.bytes", srv.IngestKey, `{"customerId": "cust_a", "value": 300}`)
		evaluate(0)
		srv.MustDo(t, 201, "POST", "/usage/api.calls", srv.IngestKey, `{"customerId": "cust_a", "value": 7}`)
		evaluate(1)
		firedAt := odometer.FormatTime(srv.Now())
		srv.SetNow(srv.Now().Add(time.Minute))
		srv.MustDo(t, 201, "POST", "/usage/api.calls", srv.IngestKey, `{"customerId": "cust_a", "value": 0.5}`)

		type status struct {
			ID          string  `json:"id"`
			CustomerID  string  `json:"customerId"`
			Active      bool    `json:"active"`
			PeriodKey   string  `json:"periodKey"`
			PeriodStart string  `json:"periodStart"`
			PeriodEnd   string  `json:"periodEnd"`
			Timezone    string  `json:"timezone"`
			Value       float64 `json:"value"`
			Count       int64   `json:"count"`
			Fired       *struct {
				FiredAt string  `json:"firedAt"`
				Value   float64 `json:"value"`
			} `json:"fired"`
		}
		var got struct {
			CustomerID string   `json:"customerId"`
			ComputedAt string   `json:"computedAt"`
			Alerts     []status `json:"alerts"`
		}
		r := srv.MustDo(t, 200, "GET", "/customers/cust_a/alerts", srv.ReadKey, "")
		r.Decode(t, &got)
		if got.CustomerID != "cust_a" || got.ComputedAt != odometer.FormatTime(srv.Now()) || len(got.Alerts) != 2 {
			t.Fatalf("GET /customers/cust_a/alerts: %s", r.Body)
		}
		// Oldest first, ties (these three were made at one instant) by id.
		own, all := got.Alerts[0], got.Alerts[1]
		if own.ID != ids[0] {
			own, all = all, own
		}
		if (ids[0] < ids[1]) != (got.Alerts[0].ID == ids[0]) {
			t.Errorf("alerts in the order %s, %s", got.Alerts[0].ID, got.Alerts[1].ID)
		}
		// 13 January in Oslo; 11.5 so far, fired at 11.
		if own.ID != ids[0] || !own.Active || own.PeriodKey != "20260113" || own.PeriodStart != "2026-01-12T23:00:00.000Z" ||
			own.PeriodEnd != "2026-01-13T22:59:59.999Z" || own.Timezone != "Europe/Oslo" || own.Value != 11.5 || own.Count != 3 {
			t.Errorf("cust_a's own alert: %+v", own)
		}
		if own.Fired == nil || own.Fired.FiredAt != firedAt || own.Fired.Value != 11 {
			t.Errorf("cust_a's own alert fired %+v, want at %s with 11", own.Fired, firedAt)
		}
		// The cycle from the 5th in Oslo; not fired: null.
		if all.ID != ids[1] || all.CustomerID != "" || all.PeriodKey != "20260105" || all.PeriodStart != "2026-01-04T23:00:00.000Z" ||
			all.PeriodEnd != "2026-02-04T22:59:59.999Z" || all.Value != 300 || all.Count != 1 || all.Fired != nil {
			t.Errorf("the alert of every customer: %+v", all)
		}
		if !strings.Contains(string(r.Body), `"fired":null`) {
			t.Errorf("an alert not fired is not null: %s", r.Body)
		}
		// The pinned key: its own customer's alert only.
		got.Alerts = nil
		srv.MustDo(t, 200, "GET", "/customers/cust_a/alerts", pinned, "").Decode(t, &got)
		if len(got.Alerts) != 1 || got.Alerts[0].ID != ids[0] || got.Alerts[0].Value != 11.5 {
			t.Errorf("the pinned key sees %+v, want cust_a's own alert only", got.Alerts)
		}
		checkRefusal(t, srv.Do(t, "GET", "/customers/cust_b/alerts", pinned, ""), 404, "Not found", "")
		srv.MustDo(t, 404, "GET", "/customers/cust_nobody/alerts", srv.ReadKey, "")
	})
}
