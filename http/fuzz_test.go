package http

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// fuzzTarget is the handler over one real store, with what the fuzz
// function knows of the store: the seq of the newest event. The inputs of
// one fuzzing process run one after another, so every new event is the
// doing of the input at hand.
type fuzzTarget struct {
	name    string
	handler http.Handler
	store   odometer.Store
	key     string
	lastSeq int64
}

func newFuzzTargets(f *testing.F) []*fuzzTarget {
	cfg, err := odometer.ParseConfig("test", []byte(testConfigJSON))
	if err != nil {
		f.Fatal(err)
	}
	var targets []*fuzzTarget
	for _, fac := range storetest.Factories() {
		if fac.Skip != "" {
			continue
		}
		store := fac.Open(f)
		current := func() *odometer.Config { return cfg }
		now := func() time.Time { return testNow }
		s := &Server{
			Events: store, Keys: store, Aggs: store, Deliveries: store, Alerts: store,
			Aggregator: &odometer.Aggregator{Store: store, Config: current, Now: now},
			Config:     current, Now: now, Version: "test",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		secret, k := odometer.NewAPIKey(odometer.ScopeIngest, "", "fuzz", testNow)
		if err := store.CreateKey(context.Background(), k); err != nil {
			f.Fatal(err)
		}
		targets = append(targets, &fuzzTarget{name: fac.Name, handler: s.Handler(), store: store, key: secret})
	}
	return targets
}

// post answers a request, checking what every answer must be: never a
// 5xx, always JSON, an error message on every refusal.
func (ft *fuzzTarget) post(t *testing.T, path string, body []byte, hdr ...string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	req.URL.Path = path
	req.Header.Set("x-apikey", ft.key)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	ft.handler.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("%s: status %d: %s", ft.name, rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: Content-Type %q", ft.name, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s: status %d, body is not a JSON object: %q", ft.name, rec.Code, rec.Body)
	}
	if msg, _ := m["error"].(string); rec.Code >= 400 && msg == "" {
		t.Fatalf("%s: status %d without an error message: %s", ft.name, rec.Code, rec.Body)
	}
	return rec.Code, m
}

// newEvents returns the events stored since the last call, newest first.
func (ft *fuzzTarget) newEvents(t *testing.T) []odometer.Event {
	t.Helper()
	events, _, err := ft.store.FindEvents(context.Background(), odometer.EventFilter{Limit: odometer.MaxBatch + 1})
	if err != nil {
		t.Fatal(err)
	}
	var out []odometer.Event
	for _, e := range events {
		if e.Seq <= ft.lastSeq {
			break
		}
		out = append(out, e)
	}
	if len(out) > 0 {
		ft.lastSeq = out[0].Seq
	}
	return out
}

// stored reports whether an event with this id is stored.
func (ft *fuzzTarget) stored(t *testing.T, id, customerID, eventType string) bool {
	t.Helper()
	f := odometer.EventFilter{CustomerID: customerID, EventType: eventType, Limit: 1000}
	for {
		events, next, err := ft.store.FindEvents(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.ID == id {
				return true
			}
		}
		if next == "" {
			return false
		}
		f.Cursor = next
	}
}

// fuzzEventTypes are the paths' event types: the configured ones, and
// some that are not.
var fuzzEventTypes = []string{"api.calls", "storage.bytes", "response.time.ms", "nope", "API.CALLS", "api.calls ", "\xff"}

// FuzzUsageEvent posts arbitrary bodies (and Idempotency-Key headers) to
// POST /usage/{eventType}: never a 5xx, always JSON, and a 2xx only for an
// event then found stored; nothing stored on a refusal.
func FuzzUsageEvent(f *testing.F) {
	for _, seed := range []struct {
		typ  uint8
		key  string
		body string
	}{
		{0, "", `{"customerId": "cust_123", "value": 1}`},
		{1, "", `{"customerId": "cust_123", "value": 2.5e3, "metadata": {"region": "eu", "n": [1, {"x": null}]}}`},
		{2, "", `{"customerId": "c", "value": -0, "id": "evt-1", "timestamp": "2026-01-13T10:00:00Z"}`},
		{2, "", `{"customerId": "c", "value": 1, "id": "evt-1", "timestamp": "2026-01-13T10:00:00Z"}`},
		{0, "idem-1", `{"customerId": "c", "value": 1}`},
		{0, "idem-1", `{"customerId": "c", "value": 1, "id": "idem-2"}`},
		{3, "", `{"customerId": "c", "value": 1}`},
		{0, "", `{"customerId": "c", "value": 1e400}`},
		{0, "", `{"customerId": "c", "value": NaN}`},
		{0, "", `{"customerId": "c\u0000", "value": 1}`},
		{0, "", `{"customerId": "\ud800", "value": 1}`},
		{0, "", `{"customerId": "c", "value": 1, "timestamp": "2026-01-13T10:36:00+00:00"}`},
		{0, "", `{"customerId": "c", "value": 1, "timestamp": "2025-12-09T10:30:00Z"}`},
		{0, "", `[{"customerId": "c", "value": 1}]`},
		{0, "", `{"customerId": "c", "value": 1} x`},
		{0, "", `{"customerId": "c", "value": 1`},
		{0, "", ``},
		{0, "", `null`},
		{0, "", `{"CUSTOMERID": "c", "Value": 1}`},
		{0, "", `{"customerId": "c", "value": 1, "metadata": {"a": 1, "a": 2}}`},
		{5, " ", "{\"customerId\": \"c\xff\", \"value\": 1}"},
	} {
		f.Add(seed.typ, seed.key, []byte(seed.body))
	}
	targets := newFuzzTargets(f)
	f.Fuzz(func(t *testing.T, typ uint8, idemKey string, body []byte) {
		eventType := fuzzEventTypes[int(typ)%len(fuzzEventTypes)]
		for _, ft := range targets {
			var hdr []string
			if idemKey != "" {
				hdr = []string{"Idempotency-Key", idemKey}
			}
			code, m := ft.post(t, "/usage/"+eventType, body, hdr...)
			events := ft.newEvents(t)
			id, _ := m["id"].(string)
			customer, _ := m["customerId"].(string)
			switch code {
			case http.StatusCreated:
				if len(events) != 1 {
					t.Fatalf("%s: 201, and %d events stored", ft.name, len(events))
				}
				if e := events[0]; e.ID != id || e.CustomerID != customer || e.EventType != eventType {
					t.Fatalf("%s: 201 %v, and stored %+v", ft.name, m, e)
				}
			case http.StatusOK:
				if m["duplicate"] != true {
					t.Fatalf("%s: 200 without duplicate: %v", ft.name, m)
				}
				if len(events) != 0 {
					t.Fatalf("%s: a duplicate, and %d events stored", ft.name, len(events))
				}
				if !ft.stored(t, id, customer, eventType) {
					t.Fatalf("%s: a duplicate of %q, which is not stored", ft.name, id)
				}
			default:
				if code < 400 {
					t.Fatalf("%s: status %d: %v", ft.name, code, m)
				}
				if len(events) != 0 {
					t.Fatalf("%s: status %d, and %d events stored", ft.name, code, len(events))
				}
			}
		}
	})
}

// FuzzUsageBatch posts arbitrary bodies to POST /usagebatch: never a 5xx,
// always JSON, and a 2xx only when every new member is then stored;
// nothing stored on a refusal.
func FuzzUsageBatch(f *testing.F) {
	for _, seed := range []string{
		`[{"eventType": "api.calls", "customerId": "c", "value": 1}]`,
		`[{"eventType": "api.calls", "customerId": "c", "value": 1, "id": "b-1"}, {"eventType": "api.calls", "customerId": "c", "value": 1, "id": "b-1"}]`,
		`[{"eventType": "api.calls", "customerId": "c", "value": 1, "id": "b-1"}, {"eventType": "api.calls", "customerId": "c", "value": 2, "id": "b-1"}]`,
		`[{"eventType": "storage.bytes", "customerId": "c", "value": 1, "id": "b-2", "timestamp": "2026-01-13T09:00:00Z", "metadata": {"k": "v"}}, {"eventType": "response.time.ms", "customerId": "d", "value": 3}]`,
		`[{"eventType": "nope", "customerId": "c", "value": 1}, 1, null, "x", []]`,
		`[{"eventType": "api.calls", "customerId": "c", "value": "1"}]`,
		`[]`,
		`{}`,
		`[`,
		`[{"eventType": "api.calls", "customerId": "c", "value": 1}] []`,
		``,
		`null`,
	} {
		f.Add([]byte(seed))
	}
	targets := newFuzzTargets(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, ft := range targets {
			code, m := ft.post(t, "/usagebatch", body)
			events := ft.newEvents(t)
			switch code {
			case http.StatusCreated, http.StatusOK:
				count, _ := m["count"].(float64)
				dups, _ := m["duplicates"].(float64)
				if count < 1 || count > odometer.MaxBatch || dups < 0 || dups > count {
					t.Fatalf("%s: %d %v", ft.name, code, m)
				}
				if got, want := len(events), int(count-dups); got != want {
					t.Fatalf("%s: %d %v, and %d events stored, want %d", ft.name, code, m, got, want)
				}
				if (code == http.StatusOK) != (dups == count) {
					t.Fatalf("%s: %d %v", ft.name, code, m)
				}
			default:
				if code < 400 {
					t.Fatalf("%s: status %d: %v", ft.name, code, m)
				}
				if len(events) != 0 {
					t.Fatalf("%s: status %d, and %d events stored", ft.name, code, len(events))
				}
			}
		}
	})
}
