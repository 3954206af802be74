package http

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// scrape reads GET /metrics with key and parses it as Prometheus does.
func (ts *TestServer) scrape(tb testing.TB, key string) scraped {
	tb.Helper()
	req, _ := http.NewRequest("GET", ts.URL+"/metrics", nil)
	req.Header.Set("x-apikey", key)
	resp, err := ts.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET /metrics: status %d: %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		tb.Fatalf("GET /metrics: Content-Type %q, want text/plain", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		tb.Fatalf("GET /metrics: %v\n%s", err, b)
	}
	return scraped(fams)
}

type scraped map[string]*dto.MetricFamily

// value returns the value of the metric name with exactly the labels
// given as pairs, and whether it is there. A histogram's value is its
// sample count.
func (s scraped) value(name string, labels ...string) (float64, bool) {
	f := s[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		want := map[string]string{}
		for i := 0; i+1 < len(labels); i += 2 {
			want[labels[i]] = labels[i+1]
		}
		if len(m.Label) != len(want) {
			continue
		}
		match := true
		for _, l := range m.Label {
			if want[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func (s scraped) must(tb testing.TB, name string, labels ...string) float64 {
	tb.Helper()
	v, ok := s.value(name, labels...)
	if !ok {
		tb.Fatalf("no metric %s%v", name, labels)
	}
	return v
}

func TestMetrics_Scrape(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)
		ts.MustPostEvent(t, "api.calls", `{"customerId": "cust_a", "value": 1, "id": "m-1"}`)
		ts.MustDo(t, 200, "POST", "/usage/api.calls", ts.IngestKey, `{"customerId": "cust_a", "value": 1, "id": "m-1"}`)
		ts.MustDo(t, 409, "POST", "/usage/api.calls", ts.IngestKey, `{"customerId": "cust_a", "value": 2, "id": "m-1"}`)
		ts.MustDo(t, 201, "POST", "/usagebatch", ts.IngestKey, batchOf(5, "cust_b", nil))
		ts.MustDo(t, 422, "POST", "/usagebatch", ts.IngestKey, `[{"eventType": "api.calls", "value": 1}]`)
		ts.MustDo(t, 400, "POST", "/usage/nope", ts.IngestKey, `{"customerId": "cust_a", "value": 1}`)
		ts.MustDo(t, 413, "POST", "/usagebatch", ts.IngestKey, batchOf(1001, "cust_a", nil))
		ts.MustDo(t, 401, "POST", "/usagebatch", "odo_wrong", `[]`)
		ts.MustDo(t, 403, "POST", "/usagebatch", ts.ReadKey, `[]`)
		ts.MustDo(t, 200, "GET", "/events?customerId=cust_a", ts.ReadKey, "")
		ts.MustDo(t, 200, "GET", "/events?customerId=cust_b", ts.ReadKey, "")
		ts.MustDo(t, 404, "GET", "/nope", ts.ReadKey, "")
		ts.MustDo(t, 200, "POST", "/aggregations/trigger", ts.AdminKey, "")

		m := ts.scrape(t, ts.AdminKey)
		for _, tt := range []struct {
			name   string
			labels []string
			want   float64
		}{
			{"odometer_events_ingested_total", []string{"result", "stored"}, 6},
			{"odometer_events_ingested_total", []string{"result", "duplicate"}, 1},
			{"odometer_ingest_refused_total", []string{"route", "/usage/{eventType}", "reason", "conflict"}, 1},
			{"odometer_ingest_refused_total", []string{"route", "/usage/{eventType}", "reason", "invalid"}, 1},
			{"odometer_ingest_refused_total", []string{"route", "/usagebatch", "reason", "invalid"}, 1},
			{"odometer_ingest_refused_total", []string{"route", "/usagebatch", "reason", "too_large"}, 1},
			{"odometer_ingest_refused_total", []string{"route", "/usagebatch", "reason", "unauthorized"}, 1},
			{"odometer_ingest_refused_total", []string{"route", "/usagebatch", "reason", "forbidden"}, 1},
			// Requests are labelled by their route pattern, never the raw path.
			{"odometer_http_requests_total", []string{"method", "POST", "route", "/usage/{eventType}", "code", "201"}, 1},
			{"odometer_http_requests_total", []string{"method", "GET", "route", "/events", "code", "200"}, 2},
			{"odometer_http_requests_total", []string{"method", "GET", "route", "unmatched", "code", "404"}, 1},
			{"odometer_http_request_duration_seconds", []string{"method", "POST", "route", "/usagebatch"}, 5},
			{"odometer_aggregation_runs_total", []string{"trigger", "api", "result", "ok"}, 1},
			{"odometer_aggregation_run_duration_seconds", []string{"trigger", "api"}, 1},
			{"odometer_aggregation_backlog_events", nil, 0},
			{"odometer_aggregation_lag_seconds", nil, 0},
			{"odometer_webhook_outbox_pending", nil, 0},
			{"odometer_webhook_endpoints_disabled", nil, 0},
			{"odometer_build_info", []string{"version", "test"}, 1},
		} {
			t.Run(fmt.Sprint(tt.name, tt.labels), func(t *testing.T) {
				if got, want := m.must(t, tt.name, tt.labels...), tt.want; got != want {
					t.Fatalf("%s%v = %v, want %v", tt.name, tt.labels, got, want)
				}
			})
		}

		t.Run("Names", func(t *testing.T) {
			for name := range m {
				if !strings.HasPrefix(name, "odometer_") {
					t.Errorf("metric %s is not named odometer_…", name)
				}
			}
			if _, ok := m["odometer_go_goroutines"]; !ok {
				t.Error("no odometer_go_goroutines")
			}
		})

		t.Run("NoRawPaths", func(t *testing.T) {
			for _, f := range m {
				for _, mt := range f.Metric {
					for _, l := range mt.Label {
						if strings.Contains(l.GetValue(), "cust_") || strings.Contains(l.GetValue(), "api.calls") {
							t.Errorf("%s has a label from a raw path or query: %s=%s", f.GetName(), l.GetName(), l.GetValue())
						}
					}
				}
			}
		})

		t.Run("ErrNotAdmin", func(t *testing.T) {
			ts.MustDo(t, http.StatusForbidden, "GET", "/metrics", ts.ReadKey, "")
			ts.MustDo(t, http.StatusUnauthorized, "GET", "/metrics", "", "")
		})
	})
}

// TestMetrics_Lag checks that the lag and the backlog grow while events
// wait and drop to 0 when they are aggregated.
func TestMetrics_Lag(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)
		lag := func() (float64, float64) {
			m := ts.scrape(t, ts.AdminKey)
			return m.must(t, "odometer_aggregation_lag_seconds"), m.must(t, "odometer_aggregation_backlog_events")
		}
		if l, b := lag(); l != 0 || b != 0 {
			t.Fatalf("empty store: lag %v, backlog %v; want 0, 0", l, b)
		}

		ts.MustDo(t, 201, "POST", "/usagebatch", ts.IngestKey, batchOf(10, "cust_a", nil))
		ts.SetNow(testNow.Add(30 * time.Second))
		ts.MustPostEvent(t, "api.calls", `{"customerId": "cust_b", "value": 1}`)
		ts.SetNow(testNow.Add(90 * time.Second))
		if got, want := func() [2]float64 { l, b := lag(); return [2]float64{l, b} }(), [2]float64{90, 11}; got != want {
			t.Fatalf("after 11 events: lag, backlog %v, want %v", got, want)
		}

		ts.MustDo(t, 200, "POST", "/aggregations/trigger", ts.AdminKey, "")
		if l, b := lag(); l != 0 || b != 0 {
			t.Fatalf("after the trigger: lag %v, backlog %v; want 0, 0", l, b)
		}

		ts.SetNow(testNow.Add(100 * time.Second))
		ts.MustPostEvent(t, "api.calls", `{"customerId": "cust_c", "value": 1}`)
		ts.SetNow(testNow.Add(130 * time.Second))
		if l, b := lag(); l != 30 || b != 1 {
			t.Fatalf("one new event: lag %v, backlog %v; want 30, 1", l, b)
		}
	})
}

// TestMetrics_LagAtStart checks that events waiting when the server starts
// count from when they arrived.
func TestMetrics_LagAtStart(t *testing.T) {
	store := storetest.OpenSQLite(t)
	now := testNow
	if _, err := store.CreateEvents(context.Background(), []odometer.Event{{ID: "e1", EventType: "api.calls", CustomerID: "c",
		Value: 1, Time: now, ReceivedAt: now.Add(-time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	m := NewMetrics("test", func() time.Time { return now.Add(45 * time.Second) })
	m.bind(store, store, nil)
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "odometer_aggregation_lag_seconds" {
			if got, want := f.Metric[0].GetGauge().GetValue(), (time.Hour + 45*time.Second).Seconds(); got != want {
				t.Fatalf("lag %v, want %v", got, want)
			}
			return
		}
	}
	t.Fatal("no odometer_aggregation_lag_seconds")
}

// TestServer_LogsNoKeys checks that no key reaches the logs, whatever the
// request does with it.
func TestServer_LogsNoKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)
		created := ts.MustDo(t, 201, "POST", "/keys", ts.AdminKey, `{"scope": "ingest", "name": "logged?"}`).Map(t)
		newKey, _ := created["key"].(string)
		if newKey == "" {
			t.Fatal("no key created")
		}
		wrong := "odo_" + strings.Repeat("0123456789ab", 4)
		ts.MustPostEvent(t, "api.calls", `{"customerId": "cust_a", "value": 1}`)
		ts.MustDo(t, 201, "POST", "/usage/api.calls", newKey, `{"customerId": "cust_a", "value": 1}`)
		ts.MustDo(t, 200, "GET", "/events", ts.ReadKey, "", "Authorization", "Bearer "+ts.ReadKey)
		ts.MustDo(t, 401, "GET", "/events?apikey="+wrong, wrong, "")
		ts.MustDo(t, 401, "GET", "/config", "", "", "Authorization", "Bearer "+wrong)
		ts.MustDo(t, 400, "POST", "/usage/api.calls", ts.IngestKey, `{"customerId": "`+wrong+`", "value": "x"}`)
		ts.MustDo(t, 200, "GET", "/config", ts.ReadKey, "")
		ts.MustDo(t, 200, "POST", "/aggregations/trigger", ts.AdminKey, "")
		ts.scrape(t, ts.AdminKey)

		logs := ts.Logs()
		if !strings.Contains(logs, "msg=request") {
			t.Fatalf("no request was logged:\n%s", logs)
		}
		for name, secret := range map[string]string{"admin key": ts.AdminKey, "ingest key": ts.IngestKey, "read key": ts.ReadKey,
			"created key": newKey, "wrong key": wrong, "webhook secret": testSecret} {
			if strings.Contains(logs, secret) {
				t.Errorf("the %s is in the logs:\n%s", name, logs)
			}
		}
	})
}

// TestMetrics_Outbox checks the outbox depth and the delivery outcomes.
func TestMetrics_Outbox(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)
		// Two customers' 09:00 hours have ended at 10:30: one delivery each.
		ts.MustPostEvent(t, "api.calls", `{"customerId": "cust_a", "value": 1, "timestamp": "2026-01-13T09:10:00Z"}`)
		ts.MustPostEvent(t, "api.calls", `{"customerId": "cust_b", "value": 1, "timestamp": "2026-01-13T09:20:00Z"}`)
		ts.MustDo(t, 200, "POST", "/aggregations/trigger", ts.AdminKey, "")
		if got, want := ts.scrape(t, ts.AdminKey).must(t, "odometer_webhook_outbox_pending"), 2.0; got != want {
			t.Fatalf("outbox %v, want %v", got, want)
		}

		// The outcomes are counted as the sender records them.
		ds, _, err := ts.Store.FindDeliveries(context.Background(), odometer.DeliveryFilter{Limit: 10})
		if err != nil || len(ds) != 2 {
			t.Fatalf("deliveries %d, %v", len(ds), err)
		}
		now := testNow
		ds[0].Status, ds[0].Attempts, ds[0].DeliveredAt, ds[0].NextAttemptAt = odometer.DeliveryDelivered, 1, &now, nil
		next := now.Add(time.Minute)
		ds[1].Status, ds[1].Attempts, ds[1].NextAttemptAt, ds[1].LastError = odometer.DeliveryPending, 1, &next, "the endpoint answered 500"
		if err := ts.API.Metrics.Deliveries(ts.Store).RecordAttempts(context.Background(), ds); err != nil {
			t.Fatal(err)
		}
		m := ts.scrape(t, ts.AdminKey)
		for outcome, want := range map[string]float64{"delivered": 1, "retry": 1, "failed": 0, "dry_run": 0} {
			if got := m.must(t, "odometer_webhook_deliveries_total", "outcome", outcome); got != want {
				t.Errorf("deliveries %s: %v, want %v", outcome, got, want)
			}
		}
		if got, want := m.must(t, "odometer_webhook_outbox_pending"), 1.0; got != want {
			t.Fatalf("outbox after one delivery: %v, want %v", got, want)
		}
	})
}
