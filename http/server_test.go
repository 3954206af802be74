package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// testConfigJSON is the template's example configuration, with its event
// types in an order that is not alphabetical (so that messages listing them
// show the file's order) and a webhook whose secret must never be shown.
const testConfigJSON = `{
  "periods": ["hourly", "daily", "weekly", "monthly", "yearly"],
  "events": {
    "api.calls":        { "op": "sum",   "description": "Total API calls" },
    "storage.bytes":    { "op": "max" },
    "response.time.ms": { "op": "avg" }
  },
  "webhooks": [
    { "url": "https://billing.example.com/hooks/metering", "secret": "whsec_t0p5ecret_do_not_show", "enabled": true }
  ]
}`

// testSecret is the webhook secret of testConfigJSON.
const testSecret = "whsec_t0p5ecret_do_not_show"

// testNow is the injected clock's starting time.
var testNow = time.Date(2026, 1, 13, 10, 30, 0, 0, time.UTC)

// errUnknownType is the template's message for an unknown event type under
// testConfigJSON.
const errUnknownType = "Invalid event type: %s. Must be one of: api.calls, storage.bytes, response.time.ms"

// TestServer is an API server over a real store, on a real port.
type TestServer struct {
	*httptest.Server
	API *Server
	// Handler is API's handler, which the server serves.
	Handler http.Handler
	Store   odometer.Store
	Config  *odometer.Config

	// AdminKey, IngestKey and ReadKey are keys created through the store.
	AdminKey, IngestKey, ReadKey string

	mu   sync.Mutex
	now  time.Time
	logs bytes.Buffer
}

// MustOpenServer opens a server over a fresh store from open, with
// testConfigJSON and the clock at testNow.
func MustOpenServer(tb testing.TB, open func(testing.TB) odometer.Store) *TestServer {
	tb.Helper()
	return MustOpenServerConfig(tb, open, testConfigJSON)
}

// MustOpenServerConfig is MustOpenServer with another configuration.
func MustOpenServerConfig(tb testing.TB, open func(testing.TB) odometer.Store, config string) *TestServer {
	tb.Helper()
	cfg, err := odometer.ParseConfig("test", []byte(config))
	if err != nil {
		tb.Fatal(err)
	}
	store := open(tb)
	ts := &TestServer{Store: store, Config: cfg, now: testNow}
	current := func() *odometer.Config { return cfg }
	ts.API = &Server{
		Events: store, Keys: store, Aggs: store, Deliveries: store, Alerts: store,
		Aggregator: &odometer.Aggregator{Store: store, Config: current, Now: ts.Now, Customers: store},
		Config:     current, Now: ts.Now, Version: "test",
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&ts.mu, &ts.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Ready:  store.Ping,
	}
	ts.Handler = ts.API.Handler()
	ts.Server = httptest.NewServer(ts.Handler)
	tb.Cleanup(func() {
		ts.Server.Close()
		if tb.Failed() {
			tb.Logf("server log:\n%s", ts.Logs())
		}
	})
	ts.AdminKey = ts.MustCreateKey(tb, odometer.ScopeAdmin, "")
	ts.IngestKey = ts.MustCreateKey(tb, odometer.ScopeIngest, "")
	ts.ReadKey = ts.MustCreateKey(tb, odometer.ScopeRead, "")
	return ts
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}

// Now is the injected clock.
func (ts *TestServer) Now() time.Time {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.now
}

// SetNow moves the injected clock.
func (ts *TestServer) SetNow(t time.Time) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.now = t
}

// Logs returns what the server logged so far.
func (ts *TestServer) Logs() string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.logs.String()
}

// MustCreateKey creates a key through the store and returns its secret.
func (ts *TestServer) MustCreateKey(tb testing.TB, scope odometer.Scope, customerID string) string {
	tb.Helper()
	secret, k := odometer.NewAPIKey(scope, customerID, string(scope)+" test key", ts.Now())
	if err := ts.Store.CreateKey(context.Background(), k); err != nil {
		tb.Fatal(err)
	}
	return secret
}

// Response is an answer of the server, read in full.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Error returns the "error" field of a JSON error body.
func (r *Response) Error() string {
	var v struct {
		Error string `json:"error"`
	}
	json.Unmarshal(r.Body, &v)
	return v.Error
}

// Map decodes the body as a JSON object.
func (r *Response) Map(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	r.Decode(tb, &m)
	return m
}

// Decode decodes the body into v.
func (r *Response) Decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.Body, err)
	}
}

// leaks are strings that reveal internals and must reach no client.
var leaks = []string{"sqlite", "SQLite", "SELECT", "/tmp/", "goroutine", ".go:"}

// checkBody fails unless body is JSON answered as JSON, revealing nothing
// of the server's internals.
func checkBody(tb testing.TB, method, path string, header http.Header, body []byte) {
	tb.Helper()
	if header.Get("X-Request-Id") == "" {
		tb.Errorf("%s %s: no X-Request-Id", method, path)
	}
	if strings.HasPrefix(path, "/metrics") && strings.HasPrefix(header.Get("Content-Type"), "text/plain") {
		return // Prometheus's text format
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	if !json.Valid(body) {
		tb.Errorf("%s %s: body is not JSON: %q", method, path, body)
	}
	for _, s := range leaks {
		if bytes.Contains(body, []byte(s)) {
			tb.Errorf("%s %s: body reveals %q: %s", method, path, s, body)
		}
	}
}

// Do sends a request with key in x-apikey (none when key is "") and the
// header pairs in hdr, and returns the answer, checked by checkBody.
func (ts *TestServer) Do(tb testing.TB, method, path, key, body string, hdr ...string) *Response {
	tb.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-apikey", key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	checkBody(tb, method, path, resp.Header, b)
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// MustDo is Do, failing unless the status is want.
func (ts *TestServer) MustDo(tb testing.TB, want int, method, path, key, body string, hdr ...string) *Response {
	tb.Helper()
	r := ts.Do(tb, method, path, key, body, hdr...)
	if r.Status != want {
		tb.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// MustPostEvent posts one event and fails unless it is captured (201).
func (ts *TestServer) MustPostEvent(tb testing.TB, eventType, body string) map[string]any {
	tb.Helper()
	return ts.MustDo(tb, http.StatusCreated, "POST", "/usage/"+eventType, ts.IngestKey, body).Map(tb)
}

// Events returns every stored event, newest first, read from the store.
func (ts *TestServer) Events(tb testing.TB) []odometer.Event {
	tb.Helper()
	var all []odometer.Event
	f := odometer.EventFilter{Limit: 1000}
	for {
		page, next, err := ts.Store.FindEvents(context.Background(), f)
		if err != nil {
			tb.Fatal(err)
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		f.Cursor = next
	}
}

// CountEvents counts the stored events.
func (ts *TestServer) CountEvents(tb testing.TB) int {
	tb.Helper()
	return len(ts.Events(tb))
}

// mustCount fails unless n events are stored.
func (ts *TestServer) mustCount(tb testing.TB, want int) {
	tb.Helper()
	if got := ts.CountEvents(tb); got != want {
		tb.Fatalf("stored events: %d, want %d", got, want)
	}
}

func TestServer_NotFound(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)
		for _, tt := range []struct{ method, path string }{
			{"GET", "/nope"},
			{"GET", "/usage/"},
			{"POST", "/usage/api.calls/extra"},
			{"GET", "/events/evt_1"},
			{"GET", "/aggregations/trigger/now"},
			{"POST", "/usagebatch/1"},
			{"GET", "/ui.php"},
		} {
			t.Run(tt.method+" "+tt.path, func(t *testing.T) {
				r := ts.Do(t, tt.method, tt.path, ts.AdminKey, "")
				if got, want := r.Status, http.StatusNotFound; got != want {
					t.Fatalf("status %d, want %d: %s", got, want, r.Body)
				}
				if got, want := r.Error(), "Not found"; got != want {
					t.Fatalf("error %q, want %q", got, want)
				}
			})
		}
	})
}

// TestServer_NonCanonicalPath: paths ServeMux would redirect, with an HTML
// page for a body, are answered in JSON: a 404 that names the path meant,
// and for /ui the dashboard's address.
func TestServer_NonCanonicalPath(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for _, tt := range []struct {
			method, path string
			status       int
			text         string // the error, or for a redirect its Location
		}{
			{"GET", "//events", http.StatusNotFound, "Not found: did you mean /events?"},
			{"GET", "/events/", http.StatusNotFound, "Not found"},
			{"GET", "/./keys", http.StatusNotFound, "Not found: did you mean /keys?"},
			{"GET", "/usage/../keys", http.StatusNotFound, "Not found: did you mean /keys?"},
			{"GET", "/events//", http.StatusNotFound, "Not found: did you mean /events/?"},
			{"POST", "//usage/api.calls", http.StatusNotFound, "Not found: did you mean /usage/api.calls?"},
			{"POST", "/usagebatch/.", http.StatusNotFound, "Not found: did you mean /usagebatch?"},
			{"GET", "//", http.StatusNotFound, "Not found: did you mean /?"},
			{"GET", "/ui//", http.StatusNotFound, "Not found: did you mean /ui/?"},
			{"GET", "/ui", http.StatusMovedPermanently, "/ui/"},
			{"POST", "/ui", http.StatusNotFound, "Not found"},
		} {
			t.Run(tt.method+" "+tt.path, func(t *testing.T) {
				req, err := http.NewRequest(tt.method, ts.URL+tt.path, strings.NewReader(`[{"eventType": "api.calls", "customerId": "c", "value": 1}]`))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("x-apikey", ts.AdminKey)
				resp, err := noFollow.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				checkBody(t, tt.method, tt.path, resp.Header, body)
				if got, want := resp.StatusCode, tt.status; got != want {
					t.Fatalf("status %d, want %d: %s", got, want, body)
				}
				r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
				got := r.Error()
				if tt.status == http.StatusMovedPermanently {
					got = resp.Header.Get("Location")
				}
				if got != tt.text {
					t.Fatalf("got %q, want %q: %s", got, tt.text, body)
				}
			})
		}
		ts.mustCount(t, 0)
	})
}

func TestServer_MethodNotAllowed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)
		// The methods of a pattern, in the order of the route table.
		allow := func(pattern string) string {
			var ms []string
			for _, rt := range routes {
				if rt.path == pattern {
					ms = append(ms, rt.method)
				}
			}
			return strings.Join(ms, ", ")
		}
		for _, tt := range []struct{ method, path, allow string }{
			{"POST", "/", "GET"},
			{"DELETE", "/ping", "GET"},
			{"POST", "/healthz", "GET"},
			{"POST", "/openapi.json", "GET"},
			{"GET", "/usage/api.calls", "POST"},
			{"DELETE", "/usage/api.calls", "POST"},
			{"GET", "/usagebatch", "POST"},
			{"PUT", "/events", allow("/events")},
			{"PATCH", "/events", allow("/events")},
			{"POST", "/config", "GET"},
			{"GET", "/aggregations/trigger", "POST"},
			{"PATCH", "/keys", "POST, GET"},
			{"GET", "/keys/key_1", "DELETE"},
			{"GET", "/deliveries/d_1/retry", allow("/deliveries/{id}/retry")},
		} {
			t.Run(tt.method+" "+tt.path, func(t *testing.T) {
				r := ts.Do(t, tt.method, tt.path, ts.AdminKey, "")
				if got, want := r.Status, http.StatusMethodNotAllowed; got != want {
					t.Fatalf("status %d, want %d: %s", got, want, r.Body)
				}
				if got, want := r.Header.Get("Allow"), tt.allow; got != want {
					t.Fatalf("Allow %q, want %q", got, want)
				}
				if got, want := r.Error(), "Method "+tt.method+" is not allowed here; allowed: "+tt.allow; got != want {
					t.Fatalf("error %q, want %q", got, want)
				}
			})
		}
	})
}

func TestServer_Public(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)

		t.Run("Info", func(t *testing.T) {
			var info struct {
				Status    string   `json:"status"`
				Service   string   `json:"service"`
				Version   string   `json:"version"`
				Endpoints []string `json:"endpoints"`
			}
			ts.MustDo(t, http.StatusOK, "GET", "/", "", "").Decode(t, &info)
			if got, want := info.Status, "ok"; got != want {
				t.Fatalf("status %q, want %q", got, want)
			}
			if got, want := info.Service, "odometer"; got != want {
				t.Fatalf("service %q, want %q", got, want)
			}
			if got, want := info.Version, "test"; got != want {
				t.Fatalf("version %q, want %q", got, want)
			}
			var want []string
			for _, rt := range routes {
				want = append(want, rt.method+" "+rt.path)
			}
			if !slices.Equal(info.Endpoints, want) {
				t.Fatalf("endpoints %q, want %q", info.Endpoints, want)
			}
		})

		t.Run("Ping", func(t *testing.T) {
			ts.SetNow(time.Date(2026, 3, 1, 8, 9, 10, 123e6, time.UTC))
			defer ts.SetNow(testNow)
			m := ts.MustDo(t, http.StatusOK, "GET", "/ping", "", "").Map(t)
			if got, want := m["status"], "ok"; got != want {
				t.Fatalf("status %v, want %v", got, want)
			}
			if got, want := m["timestamp"], "2026-03-01T08:09:10.123Z"; got != want {
				t.Fatalf("timestamp %v, want %v", got, want)
			}
		})

		t.Run("Healthz", func(t *testing.T) {
			m := ts.MustDo(t, http.StatusOK, "GET", "/healthz", "", "").Map(t)
			if got, want := m["status"], "ok"; got != want {
				t.Fatalf("status %v, want %v", got, want)
			}
		})

		t.Run("Readyz", func(t *testing.T) {
			m := ts.MustDo(t, http.StatusOK, "GET", "/readyz", "", "").Map(t)
			if got, want := m["status"], "ready"; got != want {
				t.Fatalf("status %v, want %v", got, want)
			}
		})

		t.Run("OpenAPI", func(t *testing.T) {
			r := ts.MustDo(t, http.StatusOK, "GET", "/openapi.json", "", "")
			if !bytes.Equal(r.Body, openapiJSON) {
				t.Fatal("GET /openapi.json is not the embedded document")
			}
		})

		t.Run("Headers", func(t *testing.T) {
			r := ts.MustDo(t, http.StatusOK, "GET", "/ping", "", "")
			if got, want := r.Header.Get("X-Content-Type-Options"), "nosniff"; got != want {
				t.Fatalf("X-Content-Type-Options %q, want %q", got, want)
			}
			r2 := ts.MustDo(t, http.StatusOK, "GET", "/ping", "", "")
			if r.Header.Get("X-Request-Id") == r2.Header.Get("X-Request-Id") {
				t.Fatal("two requests share a request id")
			}
		})
	})
}

func TestServer_ReadyzUnavailable(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)
		ts.API.Ready = func(context.Context) error {
			return errors.New("sqlite: open /tmp/odometer.db: disk I/O error")
		}
		r := ts.MustDo(t, http.StatusServiceUnavailable, "GET", "/readyz", "", "")
		m := r.Map(t)
		if got, want := m["status"], "unavailable"; got != want {
			t.Fatalf("status %v, want %v", got, want)
		}
		if got, want := m["error"], "The store is not ready"; got != want {
			t.Fatalf("error %v, want %v", got, want)
		}
	})
}

// TestServer_StoreClosed checks what a client sees when the store fails:
// a generic message and a request id, never the cause.
func TestServer_StoreClosed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)
		admin := "odo_env_admin_key"
		h := odometer.HashKey(admin)
		ts.API.AdminKeyHash = &h
		if err := ts.Store.Close(); err != nil {
			t.Fatal(err)
		}

		t.Run("ErrInternal", func(t *testing.T) {
			r := ts.MustDo(t, http.StatusInternalServerError, "GET", "/events", admin, "")
			m := r.Map(t)
			if got, want := m["error"], "Internal error."; got != want {
				t.Fatalf("error %v, want %v", got, want)
			}
			id := r.Header.Get("X-Request-Id")
			if got, want := m["requestId"], id; got != want {
				t.Fatalf("requestId %v, want %v", got, want)
			}
			if !strings.Contains(ts.Logs(), id) {
				t.Fatalf("the internal error is not logged with request id %s:\n%s", id, ts.Logs())
			}
		})

		t.Run("ErrUnavailable", func(t *testing.T) {
			// Called on the handler, not over the network: a request that
			// never returns must fail this test, not hang the server's Close.
			for i := 0; i < 20; i++ {
				req := httptest.NewRequest("POST", "/usage/api.calls", strings.NewReader(`{"customerId": "c", "value": 1}`))
				req.Header.Set("x-apikey", admin)
				rec := httptest.NewRecorder()
				done := make(chan struct{})
				go func() {
					defer close(done)
					ts.Handler.ServeHTTP(rec, req)
				}()
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					t.Fatalf("POST /usage/api.calls on a closed store: no answer after 5s (attempt %d)", i+1)
				}
				checkBody(t, "POST", "/usage/api.calls", rec.Header(), rec.Body.Bytes())
				if got, want := rec.Code, http.StatusServiceUnavailable; got != want {
					t.Fatalf("status %d, want %d: %s", got, want, rec.Body)
				}
				if got, want := rec.Header().Get("Retry-After"), "5"; got != want {
					t.Fatalf("Retry-After %q, want %q", got, want)
				}
			}
		})

		t.Run("ErrKeyLookup", func(t *testing.T) {
			r := ts.MustDo(t, http.StatusInternalServerError, "GET", "/events", "odo_some_other_key", "")
			if got, want := r.Error(), "Internal error."; got != want {
				t.Fatalf("error %q, want %q", got, want)
			}
		})
	})
}
