package http

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// triggerResult is the answer of POST /aggregations/trigger.
type triggerResult struct {
	Message             string `json:"message"`
	AggregationsCreated int    `json:"aggregationsCreated"`
	AggregationsUpdated int    `json:"aggregationsUpdated"`
	EventsProcessed     int    `json:"eventsProcessed"`
	PeriodsCompleted    int    `json:"periodsCompleted"`
	PeriodsRevised      int    `json:"periodsRevised"`
}

func (ts *TestServer) mustTrigger(tb testing.TB) triggerResult {
	tb.Helper()
	var res triggerResult
	ts.MustDo(tb, http.StatusOK, "POST", "/aggregations/trigger", ts.AdminKey, "").Decode(tb, &res)
	if got, want := res.Message, "Aggregation triggered"; got != want {
		tb.Fatalf("message %q, want %q", got, want)
	}
	return res
}

// TestAcceptance is the template's own acceptance flow, over HTTP: 18
// events for three customers, a trigger, and the daily aggregations.
func TestAcceptance(t *testing.T) {
	type values struct{ calls, bytes, ms []float64 }
	customers := []struct {
		id     string
		values values
		// sum of api.calls, max of storage.bytes, avg of response.time.ms
		sum, max, avg float64
	}{
		{"cust_test_a", values{[]float64{10, 15, 25}, []float64{1000, 2500, 1500}, []float64{100, 200, 150}}, 50, 2500, 150},
		{"cust_test_b", values{[]float64{5, 10}, []float64{5000, 3000}, []float64{250, 350}}, 15, 5000, 300},
		{"cust_test_c", values{[]float64{100}, []float64{10000}, []float64{50}}, 100, 10000, 50},
	}
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		posted := 0
		for _, c := range customers {
			for typ, vs := range map[string][]float64{"api.calls": c.values.calls, "storage.bytes": c.values.bytes, "response.time.ms": c.values.ms} {
				for _, v := range vs {
					m := srv.MustPostEvent(t, typ, fmt.Sprintf(`{"customerId": %q, "value": %v, "metadata": {"test": true}}`, c.id, v))
					if m["message"] != "Event captured" || m["eventType"] != typ || m["customerId"] != c.id {
						t.Fatalf("answer %v", m)
					}
					posted++
				}
			}
		}
		if got, want := posted, 18; got != want {
			t.Fatalf("posted %d events, want %d", got, want)
		}

		// The events carry their period fields.
		var events []storedEvent
		srv.MustDo(t, http.StatusOK, "GET", "/events", srv.ReadKey, "").Decode(t, &events)
		if got, want := len(events), 18; got != want {
			t.Fatalf("%d events, want %d", got, want)
		}
		for _, e := range events {
			if e.Minute != "202601131030" || e.Hour != "2026011310" || e.Day != "20260113" || e.Week != "202603" || e.Month != "202601" || e.Year != "2026" {
				t.Fatalf("period fields of %+v", e)
			}
		}

		res := srv.mustTrigger(t)
		// 3 customers x 5 periods; nothing has ended yet.
		if got, want := res, (triggerResult{"Aggregation triggered", 15, 0, 18, 0, 0}); got != want {
			t.Fatalf("trigger %+v, want %+v", got, want)
		}

		var aggs []aggregationJSON
		srv.MustDo(t, http.StatusOK, "GET", "/aggregations?period=daily", srv.ReadKey, "").Decode(t, &aggs)
		if got, want := len(aggs), 3; got != want {
			t.Fatalf("%d daily aggregations, want %d", got, want)
		}
		byCustomer := map[string]aggregationJSON{}
		for _, a := range aggs {
			byCustomer[a.CustomerID] = a
		}
		for _, c := range customers {
			a, ok := byCustomer[c.id]
			if !ok {
				t.Fatalf("no daily aggregation of %s", c.id)
			}
			want := aggregationJSON{
				ID: c.id + "_daily_20260113", CustomerID: c.id, Period: odometer.Daily,
				PeriodStart: "2026-01-13T00:00:00.000Z", PeriodEnd: "2026-01-13T23:59:59.999Z", PeriodKey: "20260113",
				Timestamp: "2026-01-13T10:30:00.000Z",
				Events:    map[string]float64{"api.calls": c.sum, "storage.bytes": c.max, "response.time.ms": c.avg},
				EventCounts: map[string]int64{"api.calls": int64(len(c.values.calls)), "storage.bytes": int64(len(c.values.bytes)),
					"response.time.ms": int64(len(c.values.ms))},
				WebhookStatus: odometer.WebhookStatus{Delivered: false, Attempts: 0},
			}
			if !reflect.DeepEqual(a, want) {
				t.Fatalf("daily aggregation of %s:\n%+v, want\n%+v", c.id, a, want)
			}
		}

		// A trigger without new events changes nothing.
		if got, want := srv.mustTrigger(t), (triggerResult{Message: "Aggregation triggered"}); got != want {
			t.Fatalf("second trigger %+v, want %+v", got, want)
		}

		t.Run("Completed", func(t *testing.T) {
			srv.SetNow(time.Date(2026, 1, 14, 0, 5, 0, 0, time.UTC))
			defer srv.SetNow(testNow)
			// The hour and the day of each customer have ended.
			if got, want := srv.mustTrigger(t), (triggerResult{Message: "Aggregation triggered", PeriodsCompleted: 6}); got != want {
				t.Fatalf("trigger %+v, want %+v", got, want)
			}
			var daily []aggregationJSON
			srv.MustDo(t, http.StatusOK, "GET", "/aggregations?period=daily&complete=true", srv.ReadKey, "").Decode(t, &daily)
			if got, want := len(daily), 3; got != want {
				t.Fatalf("%d complete daily aggregations, want %d", got, want)
			}
			for _, a := range daily {
				if !a.Complete || a.Revision != 1 {
					t.Fatalf("aggregation %s: complete %v revision %d, want true 1", a.ID, a.Complete, a.Revision)
				}
			}
			var open []aggregationJSON
			srv.MustDo(t, http.StatusOK, "GET", "/aggregations?complete=false", srv.ReadKey, "").Decode(t, &open)
			if got, want := len(open), 9; got != want {
				t.Fatalf("%d incomplete aggregations, want %d (weeks, months, years)", got, want)
			}

			// A late event revises the completed day.
			srv.MustPostEvent(t, "api.calls", `{"customerId": "cust_test_a", "value": 5, "timestamp": "2026-01-13T12:00:00Z"}`)
			if got, want := srv.mustTrigger(t), (triggerResult{"Aggregation triggered", 1, 4, 1, 1, 1}); got != want {
				t.Fatalf("trigger %+v, want %+v", got, want)
			}
			var a []aggregationJSON
			srv.MustDo(t, http.StatusOK, "GET", "/aggregations?customerId=cust_test_a&period=daily", srv.ReadKey, "").Decode(t, &a)
			if len(a) != 1 || a[0].Events["api.calls"] != 55 || a[0].EventCounts["api.calls"] != 4 || a[0].Revision != 2 {
				t.Fatalf("revised day %+v, want api.calls 55 from 4 events, revision 2", a)
			}
		})
	})
}

func TestAggregations_Find(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		// Events of three days of customer a, one of b.
		srv.MustDo(t, http.StatusCreated, "POST", "/usagebatch", srv.IngestKey, `[
			{"eventType": "api.calls", "customerId": "a", "value": 1, "timestamp": "2026-01-11T05:00:00Z"},
			{"eventType": "api.calls", "customerId": "a", "value": 2, "timestamp": "2026-01-12T05:00:00Z"},
			{"eventType": "api.calls", "customerId": "a", "value": 3, "timestamp": "2026-01-13T05:00:00Z"},
			{"eventType": "api.calls", "customerId": "b", "value": 4, "timestamp": "2026-01-12T05:00:00Z"}
		]`)
		srv.mustTrigger(t)

		for _, tt := range []struct {
			name, query string
			want        []string
		}{
			{"DailyNewestFirst", "period=daily&customerId=a", []string{"a_daily_20260113", "a_daily_20260112", "a_daily_20260111"}},
			{"Daily", "period=daily", []string{"a_daily_20260113", "b_daily_20260112", "a_daily_20260112", "a_daily_20260111"}},
			{"Weekly", "period=weekly", []string{"b_weekly_202603", "a_weekly_202603", "a_weekly_202602"}},
			{"From", "period=daily&from=2026-01-12", []string{"a_daily_20260113", "b_daily_20260112", "a_daily_20260112"}},
			{"To", "period=daily&to=2026-01-12T00:00:00Z", []string{"b_daily_20260112", "a_daily_20260112", "a_daily_20260111"}},
			{"Limit", "period=hourly&limit=1", []string{"a_hourly_2026011305"}},
			{"Customer", "customerId=b", []string{"b_hourly_2026011205", "b_daily_20260112", "b_weekly_202603", "b_monthly_202601", "b_yearly_2026"}},
			{"Complete", "complete=true&period=daily", []string{"a_daily_20260112", "b_daily_20260112", "a_daily_20260111"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				var aggs []aggregationJSON
				srv.MustDo(t, http.StatusOK, "GET", "/aggregations?"+tt.query, srv.ReadKey, "").Decode(t, &aggs)
				var got []string
				for _, a := range aggs {
					got = append(got, a.ID)
				}
				if tt.name == "Customer" || tt.name == "Complete" {
					slices.Sort(got)
					want := slices.Clone(tt.want)
					slices.Sort(want)
					if !slices.Equal(got, want) {
						t.Fatalf("ids %q, want %q", got, want)
					}
					return
				}
				if !slices.Equal(got, tt.want) {
					t.Fatalf("ids %q, want %q", got, tt.want)
				}
			})
		}

		t.Run("Paging", func(t *testing.T) {
			var got []string
			cursor := ""
			for i := 0; ; i++ {
				if i > 20 {
					t.Fatal("paging does not end")
				}
				q := "/aggregations?limit=2"
				if cursor != "" {
					q += "&cursor=" + cursor
				}
				r := srv.MustDo(t, http.StatusOK, "GET", q, srv.ReadKey, "")
				var page []aggregationJSON
				r.Decode(t, &page)
				for _, a := range page {
					got = append(got, a.ID)
				}
				if cursor = r.Header.Get("X-Next-Cursor"); cursor == "" {
					break
				}
			}
			var all []aggregationJSON
			srv.MustDo(t, http.StatusOK, "GET", "/aggregations?limit=1000", srv.ReadKey, "").Decode(t, &all)
			var want []string
			for _, a := range all {
				want = append(want, a.ID)
			}
			// 3 hours, 3 days, 2 weeks, 1 month, 1 year of a; 5 of b.
			if len(want) != 15 || !slices.Equal(got, want) {
				t.Fatalf("paged %q, want the %d of %q", got, len(want), want)
			}
		})

		for _, tt := range []struct{ name, query, err string }{
			{"ErrPeriod", "period=weekly2", "Invalid period: weekly2. Must be one of: hourly, daily, weekly, monthly, yearly, billing"},
			{"ErrComplete", "complete=yes", "complete must be true or false"},
			{"ErrLimit", "limit=0", "limit must be a whole number from 1 to 1000"},
			{"ErrFrom", "from=soon", "from must be an ISO 8601 date or date-time, such as 2026-01-13 or 2026-01-13T10:00:00Z"},
			{"ErrCursor", "cursor=%25%25", "cursor is not valid"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				checkRefusal(t, srv.Do(t, "GET", "/aggregations?"+tt.query, srv.ReadKey, ""), http.StatusBadRequest, tt.err, "")
			})
		}
	})
}

// usageAnswer is the answer of GET /usage.
type usageAnswer struct {
	CustomerID string `json:"customerId"`
	EventType  string `json:"eventType"`
	Op         string `json:"op"`
	Window     string `json:"window"`
	Timezone   string `json:"timezone"`
	From       string `json:"from"`
	To         string `json:"to"`
	Usage      []struct {
		Key   string  `json:"key"`
		Start string  `json:"start"`
		End   string  `json:"end"`
		Value float64 `json:"value"`
		Count int64   `json:"count"`
	} `json:"usage"`
}

func TestUsage(t *testing.T) {
	type point struct {
		key, start, end string
		value           float64
		count           int64
	}
	tests := []struct {
		name, query string
		window, op  string
		from, to    string
		want        []point
	}{
		{
			name: "Hour", query: "customerId=u&eventType=api.calls&window=hour&from=2026-01-13T00:00:00Z&to=2026-01-13T11:00:00Z",
			window: "hour", op: "sum", from: "2026-01-13T00:00:00.000Z", to: "2026-01-13T11:00:00.000Z",
			want: []point{
				{"2026011309", "2026-01-13T09:00:00.000Z", "2026-01-13T09:59:59.999Z", 3, 2},
				{"2026011310", "2026-01-13T10:00:00.000Z", "2026-01-13T10:59:59.999Z", 4, 1},
			},
		},
		{
			name: "Day", query: "customerId=u&eventType=api.calls&window=day&from=2026-01-12&to=2026-01-14",
			window: "day", op: "sum", from: "2026-01-12T00:00:00.000Z", to: "2026-01-14T00:00:00.000Z",
			want: []point{
				{"20260112", "2026-01-12T00:00:00.000Z", "2026-01-12T23:59:59.999Z", 8, 1},
				{"20260113", "2026-01-13T00:00:00.000Z", "2026-01-13T23:59:59.999Z", 7, 3},
			},
		},
		{
			// The default is the current window: the day that holds now.
			name: "Default", query: "customerId=u&eventType=api.calls",
			window: "day", op: "sum", from: "2026-01-13T00:00:00.000Z", to: "2026-01-14T00:00:00.000Z",
			want: []point{{"20260113", "2026-01-13T00:00:00.000Z", "2026-01-13T23:59:59.999Z", 7, 3}},
		},
		{
			name: "Max", query: "customerId=u&eventType=storage.bytes&window=day&from=2026-01-12&to=2026-01-14",
			window: "day", op: "max", from: "2026-01-12T00:00:00.000Z", to: "2026-01-14T00:00:00.000Z",
			want: []point{{"20260113", "2026-01-13T00:00:00.000Z", "2026-01-13T23:59:59.999Z", 900, 2}},
		},
		{
			name: "Timezone", query: "customerId=u&eventType=api.calls&window=day&from=2026-01-12&to=2026-01-14&timezone=Asia/Tokyo",
			window: "day", op: "sum", from: "2026-01-12T00:00:00.000Z", to: "2026-01-14T00:00:00.000Z",
			// 2026-01-12T23:00Z is the 13th in Tokyo, and so is 09:00Z; 09:50Z and 10:20Z are 18:50 and 19:20 there.
			want: []point{{"20260113", "2026-01-12T15:00:00.000Z", "2026-01-13T14:59:59.999Z", 15, 4}},
		},
		{
			name: "Empty", query: "customerId=nobody&eventType=api.calls&window=hour&from=2026-01-13T00:00:00Z&to=2026-01-13T11:00:00Z",
			window: "hour", op: "sum", from: "2026-01-13T00:00:00.000Z", to: "2026-01-13T11:00:00.000Z",
		},
	}
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		srv.MustDo(t, http.StatusCreated, "POST", "/usagebatch", srv.IngestKey, `[
			{"eventType": "api.calls", "customerId": "u", "value": 8, "timestamp": "2026-01-12T23:00:00Z"},
			{"eventType": "api.calls", "customerId": "u", "value": 1, "timestamp": "2026-01-13T09:10:00Z"},
			{"eventType": "api.calls", "customerId": "u", "value": 2, "timestamp": "2026-01-13T09:50:00Z"},
			{"eventType": "api.calls", "customerId": "u", "value": 4, "timestamp": "2026-01-13T10:20:00Z"},
			{"eventType": "storage.bytes", "customerId": "u", "value": 900, "timestamp": "2026-01-13T09:10:00Z"},
			{"eventType": "storage.bytes", "customerId": "u", "value": 300, "timestamp": "2026-01-13T10:10:00Z"},
			{"eventType": "api.calls", "customerId": "other", "value": 1000, "timestamp": "2026-01-13T09:10:00Z"}
		]`)
		check := func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					var u usageAnswer
					srv.MustDo(t, http.StatusOK, "GET", "/usage?"+tt.query, srv.ReadKey, "").Decode(t, &u)
					if u.Window != tt.window || u.Op != tt.op || u.From != tt.from || u.To != tt.to || u.EventType == "" || u.CustomerID == "" {
						t.Fatalf("answer %+v, want window %s op %s from %s to %s", u, tt.window, tt.op, tt.from, tt.to)
					}
					var got []point
					for _, p := range u.Usage {
						got = append(got, point{p.Key, p.Start, p.End, p.Value, p.Count})
					}
					if !reflect.DeepEqual(got, tt.want) {
						t.Fatalf("usage %+v, want %+v", got, tt.want)
					}
				})
			}
		}
		// From the events before any aggregation, and from the buckets after.
		t.Run("Pending", check)
		srv.mustTrigger(t)
		t.Run("Aggregated", check)

		for _, tt := range []struct{ name, query, err string }{
			{"ErrCustomerRequired", "eventType=api.calls", "customerId is required"},
			{"ErrEventTypeRequired", "customerId=u", "eventType is required"},
			{"ErrEventType", "customerId=u&eventType=nope", fmt.Sprintf(errUnknownType, "nope")},
			{"ErrWindow", "customerId=u&eventType=api.calls&window=minute", "window must be one of: hour, day, week, month, year"},
			{"ErrTimezone", "customerId=u&eventType=api.calls&timezone=Mars/Olympus", "timezone must be an IANA time zone name, such as Europe/Oslo"},
			{"ErrTimezoneLocal", "customerId=u&eventType=api.calls&timezone=Local", "timezone must be an IANA time zone name, such as Europe/Oslo"},
			{"ErrFrom", "customerId=u&eventType=api.calls&from=x", "from must be an ISO 8601 date or date-time, such as 2026-01-13 or 2026-01-13T10:00:00Z"},
			{"ErrRange", "customerId=u&eventType=api.calls&from=2026-01-13&to=2026-01-12", "to must be after from"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				checkRefusal(t, srv.Do(t, "GET", "/usage?"+tt.query, srv.ReadKey, ""), http.StatusBadRequest, tt.err, "")
			})
		}
	})
}

func TestConfig(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		for _, key := range []string{srv.ReadKey, srv.AdminKey} {
			r := srv.MustDo(t, http.StatusOK, "GET", "/config", key, "")
			for _, s := range []string{testSecret, "t0p5ecret", "do_not_show"} {
				if strings.Contains(string(r.Body), s) {
					t.Fatalf("GET /config shows the webhook secret: %s", r.Body)
				}
			}
			var c struct {
				Periods     []string                     `json:"periods"`
				Events      map[string]map[string]string `json:"events"`
				Webhooks    []map[string]any             `json:"webhooks"`
				Timezone    string                       `json:"timezone"`
				MaxEventAge string                       `json:"maxEventAge"`
				GracePeriod string                       `json:"gracePeriod"`
			}
			r.Decode(t, &c)
			if got, want := c.Periods, []string{"hourly", "daily", "weekly", "monthly", "yearly"}; !slices.Equal(got, want) {
				t.Fatalf("periods %q, want %q", got, want)
			}
			wantEvents := map[string]map[string]string{
				"api.calls":        {"op": "sum", "description": "Total API calls"},
				"storage.bytes":    {"op": "max"},
				"response.time.ms": {"op": "avg"},
			}
			if !reflect.DeepEqual(c.Events, wantEvents) {
				t.Fatalf("events %v, want %v", c.Events, wantEvents)
			}
			wantHooks := []map[string]any{{"url": "https://billing.example.com/hooks/metering", "secret": "whsec_********", "enabled": true}}
			if !reflect.DeepEqual(c.Webhooks, wantHooks) {
				t.Fatalf("webhooks %v, want %v", c.Webhooks, wantHooks)
			}
			if c.Timezone != "UTC" || c.MaxEventAge != "35d" || c.GracePeriod != "0" {
				t.Fatalf("timezone %q maxEventAge %q gracePeriod %q, want UTC 35d 0", c.Timezone, c.MaxEventAge, c.GracePeriod)
			}
		}
		// The configuration in force is untouched by the redaction.
		if got, want := srv.Config.Webhooks[0].Secret, testSecret; got != want {
			t.Fatalf("secret in force %q, want %q", got, want)
		}
		checkRefusal(t, srv.Do(t, "GET", "/config", srv.IngestKey, ""), http.StatusForbidden, "This key's scope (ingest) does not allow this; it needs read", "")
	})
}
