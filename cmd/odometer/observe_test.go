package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	odohttp "github.com/odometer-dev/odometer/http"
)

// syncBuffer is a buffer safe for the server and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// eventually waits up to 10 seconds for cond, which depends on work the
// server does on its own (start-up, the webhook sender).
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricValue returns the value of the sample of name whose labels
// include the pairs given, from a Prometheus text exposition.
func metricValue(tb testing.TB, text, name string, labels ...string) (float64, bool) {
	tb.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		tb.Fatalf("parse metrics: %v", err)
	}
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
			}
			if !found {
				continue next
			}
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

// TestServe_Observability runs the server as odometer serve does, drives
// it with the commands, reads /metrics, and checks that no key or secret
// reached the logs.
func TestServe_Observability(t *testing.T) {
	t.Setenv("ODOMETER_API_KEY", "")
	t.Setenv("DRY_RUN", "")
	var received atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	const hookSecret = "whsec_b2JzZXJ2YWJpbGl0eSB0ZXN0IHNlY3JldA=="
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "systemconfig.json")
	cfg := strings.Replace(strings.Replace(testConfigJSON, "https://billing.example.com/hooks/metering", receiver.URL+"/hook", 1),
		"whsec_dGVzdCBzZWNyZXQ=", hookSecret, 1)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	o := serveOptions{addr: "127.0.0.1:0", db: filepath.Join(dir, "odometer.db"), config: cfgPath, aggregateInterval: time.Hour,
		logFormat: "json", logLevel: "debug", maxEventBytes: odohttp.DefaultMaxEventBytes, maxBatchBytes: odohttp.DefaultMaxBatchBytes,
		allowPrivate: true}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, o, true, &stdout, &stderr) }()

	// The address is in the start-up log, the first admin key on stdout.
	var url string
	eventually(t, "the server to start", func() bool {
		sc := bufio.NewScanner(strings.NewReader(stderr.String()))
		for sc.Scan() {
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "odometer serving" {
				url = "http://" + l.Addr
				return true
			}
		}
		return false
	})
	admin := regexp.MustCompile(`odo_[0-9a-f]{48}`).FindString(stdout.String())
	if admin == "" {
		t.Fatalf("no admin key on stdout: %q", stdout.String())
	}
	srv := []string{"--server", url, "--api-key", admin}

	ingest := strings.TrimSpace(mustRun(t, append([]string{"keys", "create", "--scope", "ingest"}, srv...)...).stdout)
	hour := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	var lines []string
	for i := 0; i < 40; i++ {
		lines = append(lines, fmt.Sprintf(`{"eventType": "api.calls", "customerId": "cust_%d", "value": 1, "timestamp": %q}`,
			i%4, hour.Add(time.Duration(i)*time.Minute).Format(time.RFC3339)))
	}
	lines = append(lines, `{"eventType": "api.calls", "value": 1}`) // refused
	file := filepath.Join(dir, "events.ndjson")
	os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o600)
	run(t, nil, "", "send", file, "--server", url, "--api-key", ingest)
	run(t, nil, "", "send", file, "--server", url, "--api-key", ingest) // all duplicates

	wrong := "odo_" + strings.Repeat("5a", 24)
	for _, req := range []struct{ header, value, path string }{
		{"x-apikey", wrong, "/events"},
		{"Authorization", "Bearer " + wrong, "/config"},
		{"Authorization", "Bearer " + admin, "/keys"},
		{"", "", "/events?apikey=" + wrong},
		{"x-apikey", ingest, "/usage/api.calls?x-apikey=" + ingest},
	} {
		r, _ := http.NewRequest("GET", url+req.path, nil)
		if req.header != "" {
			r.Header.Set(req.header, req.value)
		}
		if resp, err := http.DefaultClient.Do(r); err == nil {
			resp.Body.Close()
		}
	}
	mustRun(t, append([]string{"trigger"}, srv...)...)
	eventually(t, "the webhooks of the 4 completed hours", func() bool { return received.Load() >= 4 })

	c := &odohttp.Client{URL: url, Key: admin}
	var text string
	eventually(t, "the deliveries and the scheduled run in the metrics", func() bool {
		var err error
		if text, err = c.Metrics(context.Background()); err != nil {
			t.Fatal(err)
		}
		d, _ := metricValue(t, text, "odometer_webhook_deliveries_total", "outcome", "delivered")
		s, _ := metricValue(t, text, "odometer_aggregation_runs_total", "trigger", "schedule")
		return d >= 4 && s >= 1
	})
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"odometer_events_ingested_total", []string{"result", "stored"}, 40},
		{"odometer_events_ingested_total", []string{"result", "duplicate"}, 40},
		{"odometer_ingest_refused_total", []string{"route", "/usagebatch", "reason", "invalid"}, 2},
		{"odometer_aggregation_runs_total", []string{"trigger", "api", "result", "ok"}, 1},
		{"odometer_aggregation_backlog_events", nil, 0},
		{"odometer_aggregation_lag_seconds", nil, 0},
		{"odometer_http_requests_total", []string{"route", "/events", "code", "401"}, 2},
	} {
		if got, ok := metricValue(t, text, tt.name, tt.labels...); !ok || got != tt.want {
			t.Errorf("%s%v = %v (found %v), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}

	logs := stderr.String()
	if !strings.Contains(logs, `"msg":"request"`) {
		t.Fatalf("no request was logged:\n%s", logs)
	}
	for name, secret := range map[string]string{"admin key": admin, "ingest key": ingest, "wrong key": wrong, "webhook secret": hookSecret} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s is in the logs", name)
		}
	}
}
