package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
)

// alertReceiver is a webhook endpoint that keeps every
// usage.threshold_reached it gets, with the time it got it, after
// checking its signature.
type alertReceiver struct {
	secret string
	mu     sync.Mutex
	got    []receivedAlert
	bad    int
}

type receivedAlert struct {
	at      time.Time
	id      string
	payload odometer.ThresholdPayload
}

func newAlertReceiver(t *testing.T) (*alertReceiver, string) {
	t.Helper()
	r := &alertReceiver{secret: odometer.NewWebhookSecret()}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		at := time.Now()
		body, _ := io.ReadAll(req.Body)
		ts, _ := strconv.ParseInt(req.Header.Get("X-Webhook-Timestamp"), 10, 64)
		var p odometer.ThresholdPayload
		r.mu.Lock()
		defer r.mu.Unlock()
		if req.Header.Get("X-Webhook-Signature") != odometer.SignTemplate(r.secret, ts, body) || json.Unmarshal(body, &p) != nil {
			r.bad++
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if p.Type == odometer.UsageThresholdReached {
			r.got = append(r.got, receivedAlert{at, req.Header.Get("webhook-id"), p})
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL + "/hooks"
}

func (r *alertReceiver) alerts() []receivedAlert {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// alertConfig writes a configuration with api.calls (sum), the daily and
// monthly periods, and the receiver's webhook.
func alertConfig(t *testing.T, hook, secret string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"periods":  []string{"daily", "monthly"},
		"events":   map[string]any{"api.calls": map[string]string{"op": "sum"}},
		"webhooks": []map[string]any{{"url": hook, "secret": secret, "enabled": true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "systemconfig.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAlertLatency is the alerts' check: with the aggregation every five
// minutes, 1,000 customers each cross a threshold with one event, and
// usage.threshold_reached must reach the receiver within 10 s of that
// event's 201 (p99), once per customer, and never for the customers that
// stayed under. On SQLite with one server; on PostgreSQL with two
// replicas, the events sent through both.
func TestAlertLatency(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		recv, hook := newAlertReceiver(t)
		cfg := alertConfig(t, hook, recv.secret)
		srv := startServer(t, serverOptions{DB: filepath.Join(t.TempDir(), "odometer.db"), Config: cfg, Key: replicaKey, Env: []string{
			"ODOMETER_AGGREGATE_INTERVAL=5m", "ODOMETER_WEBHOOK_ALLOW_PRIVATE=1"}})
		alertLatency(t, recv, []*server{srv})
	})
	t.Run("postgres-2-replicas", func(t *testing.T) {
		db := replicaSchema(t)
		recv, hook := newAlertReceiver(t)
		cfg := alertConfig(t, hook, recv.secret)
		a := startReplica(t, db, cfg, 5*time.Minute)
		b := startReplica(t, db, cfg, 5*time.Minute)
		alertLatency(t, recv, []*server{a, b})
	})
}

func alertLatency(t *testing.T, recv *alertReceiver, servers []*server) {
	const (
		crossing  = 1000
		staying   = 200
		threshold = 10
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	send := func(s *server, method, path string, body any, want int) {
		t.Helper()
		b, _ := json.Marshal(body)
		status, resp, _, err := s.do(ctx, method, path, b)
		if err != nil || status != want {
			t.Fatalf("%s %s: %d %v: %s", method, path, status, err, resp)
		}
	}
	send(servers[0], "POST", "/alerts", map[string]any{"meter": "api.calls", "period": "monthly", "threshold": threshold}, http.StatusCreated)
	customer := func(i int) string { return fmt.Sprintf("cust_%04d", i) }

	// Every customer first gets 6 of its 10, in batches.
	var batch []map[string]any
	for i := range crossing + staying {
		batch = append(batch, map[string]any{"eventType": "api.calls", "customerId": customer(i), "value": 6})
		if len(batch) == 600 || i == crossing+staying-1 {
			send(servers[i%len(servers)], "POST", "/usagebatch", batch, http.StatusCreated)
			batch = nil
		}
	}

	// Then one event each, through every server at once: 5 more for the
	// customers that cross, 1 more for those that stay under.
	acked := make([]time.Time, crossing+staying)
	var wg sync.WaitGroup
	work := make(chan int)
	for w := range 16 {
		wg.Add(1)
		go func(s *server) {
			defer wg.Done()
			for i := range work {
				v := 1
				if i < crossing {
					v = 5
				}
				b, _ := json.Marshal(map[string]any{"customerId": customer(i), "value": v})
				status, resp, _, err := s.do(ctx, "POST", "/usage/api.calls", b)
				if err != nil || status != http.StatusCreated {
					t.Errorf("POST /usage/api.calls: %d %v: %s", status, err, resp)
					continue
				}
				acked[i] = time.Now()
			}
		}(servers[w%len(servers)])
	}
	// Interleaved: a customer that stays under every sixth.
	for i, j := 0, crossing; i < crossing || j < crossing+staying; {
		if j < crossing+staying && (i%5 == 4 || i >= crossing) {
			work <- j
			j++
		}
		if i < crossing {
			work <- i
			i++
		}
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	sent := time.Now()

	// Wait for every alert, then a little longer for any duplicate.
	for time.Since(sent) < 60*time.Second {
		seen := map[string]bool{}
		for _, a := range recv.alerts() {
			seen[a.payload.CustomerID] = true
		}
		if len(seen) >= crossing {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)

	first := map[string]receivedAlert{}
	ids := map[string]map[string]bool{} // customer -> webhook-ids
	falseAlerts := 0
	for _, a := range recv.alerts() {
		c := a.payload.CustomerID
		var i int
		if _, err := fmt.Sscanf(c, "cust_%d", &i); err != nil || i >= crossing {
			falseAlerts++
			t.Errorf("an alert for %s, which did not cross: %+v", c, a.payload)
			continue
		}
		if ids[c] == nil {
			ids[c] = map[string]bool{}
		}
		ids[c][a.id] = true
		if f, ok := first[c]; !ok || a.at.Before(f.at) {
			first[c] = a
		}
		if p := a.payload; p.Value != 11 || p.Threshold != threshold || p.Meter != "api.calls" || p.Period != "monthly" ||
			p.PeriodKey != time.Now().UTC().Format("200601") {
			t.Errorf("alert of %s: %+v, want value 11 of threshold 10 on api.calls, monthly, this month", c, p)
		}
	}
	duplicates := 0
	for c, set := range ids {
		if len(set) > 1 {
			duplicates += len(set) - 1
			t.Errorf("%s was alerted %d times", c, len(set))
		}
	}
	var lat []time.Duration
	for i := range crossing {
		a, ok := first[customer(i)]
		if !ok {
			continue
		}
		lat = append(lat, a.at.Sub(acked[i]))
	}
	if missing := crossing - len(lat); missing > 0 {
		t.Errorf("%d customers crossed and got no alert", missing)
	}
	fired := 0.0
	for _, s := range servers {
		fired += s.metric(t, "odometer_alerts_fired_total")
	}
	if fired != crossing {
		t.Errorf("odometer_alerts_fired_total over the servers: %v, want %d", fired, crossing)
	}
	if recv.bad > 0 {
		t.Errorf("%d webhooks with a bad signature or body", recv.bad)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	p50, p99 := pct(0.50), pct(0.99)
	report(t, "alert latency, --aggregate-interval 5m, %d server(s): %d customers crossed, %d alerted; from the 201 to the receiver p50 %v, p99 %v, max %v; duplicates %d; alerts for the %d customers that did not cross %d",
		len(servers), crossing, len(lat), p50.Round(time.Millisecond), p99.Round(time.Millisecond), pct(1).Round(time.Millisecond), duplicates, staying, falseAlerts)
	if p99 > 10*time.Second {
		t.Errorf("p99 %v, want at most 10 s", p99)
	}
}

// TestAlertDuringAggregation: an alert does not wait for an aggregation
// run, however long: a customer crosses its threshold while a run folds a
// large backlog (200,000 events over the last month), and the alert
// arrives within 10 s of the 201 all the same.
func TestAlertDuringAggregation(t *testing.T) {
	if testing.Short() {
		t.Skip("200,000 events")
	}
	recv, hook := newAlertReceiver(t)
	cfg := alertConfig(t, hook, recv.secret)
	srv := startServer(t, serverOptions{DB: filepath.Join(t.TempDir(), "odometer.db"), Config: cfg, Key: replicaKey, Env: []string{
		"ODOMETER_AGGREGATE_INTERVAL=5m", "ODOMETER_WEBHOOK_ALLOW_PRIVATE=1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	send := func(method, path string, body any, want int) []byte {
		t.Helper()
		b, _ := json.Marshal(body)
		status, resp, _, err := srv.do(ctx, method, path, b)
		if err != nil || status != want {
			t.Fatalf("%s %s: %d %v: %s", method, path, status, err, resp)
		}
		return resp
	}
	send("POST", "/alerts", map[string]any{"meter": "api.calls", "period": "daily", "threshold": 10}, http.StatusCreated)

	// The backlog: 200,000 events of 500 customers over the last 30 days,
	// none of them crossing today.
	const events = 200_000
	now := time.Now().UTC()
	var batch []map[string]any
	for i := range events {
		ts := now.Add(-time.Duration(i%(30*24*60)) * time.Minute).Add(-time.Hour)
		batch = append(batch, map[string]any{"eventType": "api.calls", "customerId": fmt.Sprintf("bulk_%03d", i%500), "value": 0.001,
			"timestamp": ts.Format(time.RFC3339Nano)})
		if len(batch) == 1000 {
			send("POST", "/usagebatch", batch, http.StatusCreated)
			batch = nil
		}
	}

	// A run over all of it, and while it runs, a customer crosses.
	runDone := make(chan time.Time, 1)
	go func() {
		status, resp, _, err := srv.do(ctx, "POST", "/aggregations/trigger", nil)
		if err != nil || status != http.StatusOK {
			t.Errorf("POST /aggregations/trigger: %d %v: %s", status, err, resp)
		}
		runDone <- time.Now()
	}()
	runStart := time.Now()
	time.Sleep(300 * time.Millisecond)
	send("POST", "/usage/api.calls", map[string]any{"customerId": "cust_x", "value": 11}, http.StatusCreated)
	acked := time.Now()
	var got *receivedAlert
	for time.Since(acked) < 30*time.Second && got == nil {
		for _, a := range recv.alerts() {
			if a.payload.CustomerID == "cust_x" {
				got = &a
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got == nil {
		t.Fatal("no alert for cust_x within 30 s")
	}
	var ended time.Time
	select {
	case ended = <-runDone:
	case <-time.After(5 * time.Minute):
		t.Fatal("the aggregation run did not end")
	}
	overlap := "still running"
	if ended.Before(acked) {
		overlap = "already over: the test proves less than it says"
	}
	latency := got.at.Sub(acked)
	report(t, "alert during an aggregation run of %d events (%v): from the 201 to the receiver %v; at the 201 the run was %s, and it ended %v after the alert came",
		events, ended.Sub(runStart).Round(time.Millisecond), latency.Round(time.Millisecond), overlap, ended.Sub(got.at).Round(time.Millisecond))
	if latency > 10*time.Second {
		t.Errorf("latency %v, want at most 10 s", latency)
	}
	if ended.Before(acked) {
		t.Errorf("the run was over (%v) before the 201 (%v)", ended.Sub(runStart), acked.Sub(runStart))
	}
	if n := len(recv.alerts()); n != 1 {
		t.Errorf("%d alerts, want 1", n)
	}
}
