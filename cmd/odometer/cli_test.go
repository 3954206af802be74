package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
	"github.com/odometer-dev/odometer/sqlite"
	"github.com/odometer-dev/odometer/storetest"
)

// testConfigJSON is the template's example configuration, with a webhook
// that is never called: no sender runs in these tests, so its deliveries
// stay pending.
const testConfigJSON = `{
  "periods": ["hourly", "daily", "weekly", "monthly", "yearly"],
  "events": {
    "api.calls":        { "op": "sum" },
    "storage.bytes":    { "op": "max" },
    "response.time.ms": { "op": "avg" }
  },
  "webhooks": [
    { "url": "https://billing.example.com/hooks/metering", "secret": "whsec_dGVzdCBzZWNyZXQ=", "enabled": true }
  ]
}`

// testServer is the API over a real SQLite store, on a real port.
type testServer struct {
	*httptest.Server
	API   *odohttp.Server
	Store *sqlite.Store

	AdminKey, IngestKey, ReadKey string

	mu   sync.Mutex
	logs bytes.Buffer
}

// startServer starts a server over a fresh store. wrap, when given, wraps
// its handler (to count, fail or cut requests).
func startServer(tb testing.TB, wrap ...func(http.Handler) http.Handler) *testServer {
	tb.Helper()
	return startServerWith(tb, nil, wrap...)
}

// startServerWith is startServer, with configure called on the API
// before it serves.
func startServerWith(tb testing.TB, configure func(*odohttp.Server), wrap ...func(http.Handler) http.Handler) *testServer {
	tb.Helper()
	cfg, err := odometer.ParseConfig("test", []byte(testConfigJSON))
	if err != nil {
		tb.Fatal(err)
	}
	store := storetest.OpenSQLite(tb)
	ts := &testServer{Store: store}
	current := func() *odometer.Config { return cfg }
	ts.API = &odohttp.Server{
		Events: store, Keys: store, Aggs: store, Deliveries: store, Alerts: store,
		Aggregator: &odometer.Aggregator{Store: store, Config: current, Now: time.Now},
		Config:     current, Now: time.Now, Version: "test",
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&ts.mu, &ts.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Ready:  store.Ping,
	}
	if configure != nil {
		configure(ts.API)
	}
	var h http.Handler = ts.API.Handler()
	for _, w := range wrap {
		h = w(h)
	}
	ts.Server = httptest.NewServer(h)
	tb.Cleanup(ts.Server.Close)
	for scope, key := range map[odometer.Scope]*string{odometer.ScopeAdmin: &ts.AdminKey, odometer.ScopeIngest: &ts.IngestKey, odometer.ScopeRead: &ts.ReadKey} {
		secret, k := odometer.NewAPIKey(scope, "", string(scope)+" test key", time.Now())
		if err := store.CreateKey(context.Background(), k); err != nil {
			tb.Fatal(err)
		}
		*key = secret
	}
	return ts
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}

// Logs returns what the server logged.
func (ts *testServer) Logs() string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.logs.String()
}

// client returns an API client with key.
func (ts *testServer) client(key string) *odohttp.Client {
	return &odohttp.Client{URL: ts.URL, Key: key}
}

// flags returns --server and --api-key for key.
func (ts *testServer) flags(key string) []string {
	return []string{"--server", ts.URL, "--api-key", key}
}

// countEvents counts the stored events.
func (ts *testServer) countEvents(tb testing.TB) int {
	tb.Helper()
	n := 0
	f := odometer.EventFilter{Limit: 10000}
	for {
		page, next, err := ts.Store.FindEvents(context.Background(), f)
		if err != nil {
			tb.Fatal(err)
		}
		n += len(page)
		if next == "" {
			return n
		}
		f.Cursor = next
	}
}

// mustPost posts a batch of events given as JSON objects.
func (ts *testServer) mustPost(tb testing.TB, events ...string) {
	tb.Helper()
	if _, err := ts.client(ts.IngestKey).SendBatch(context.Background(), []byte("["+strings.Join(events, ",")+"]")); err != nil {
		tb.Fatal(err)
	}
}

// result is what a command printed and returned.
type result struct {
	stdout, stderr string
	err            error
}

// run runs the command line args in process, with stdin as its input.
func run(tb testing.TB, ctx context.Context, stdin string, args ...string) result {
	tb.Helper()
	cmd := newRootCommand()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	if ctx == nil {
		ctx = context.Background()
	}
	err := cmd.ExecuteContext(ctx)
	return result{out.String(), errb.String(), err}
}

// mustRun runs args and fails unless the command succeeds.
func mustRun(tb testing.TB, args ...string) result {
	tb.Helper()
	r := run(tb, nil, "", args...)
	if r.err != nil {
		tb.Fatalf("odometer %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.err, r.stdout, r.stderr)
	}
	return r
}

// mustFail runs args and fails unless the command fails with an error
// that contains want.
func mustFail(tb testing.TB, want string, args ...string) result {
	tb.Helper()
	r := run(tb, nil, "", args...)
	if r.err == nil {
		tb.Fatalf("odometer %s: no error, want %q\nstdout:\n%s", strings.Join(args, " "), want, r.stdout)
	}
	if !strings.Contains(r.err.Error(), want) {
		tb.Fatalf("odometer %s: error %q, want it to contain %q", strings.Join(args, " "), r.err, want)
	}
	return r
}

// decodeJSON decodes s into v.
func decodeJSON(tb testing.TB, s string, v any) {
	tb.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		tb.Fatalf("decode %q: %v", s, err)
	}
}

// TestCommands_Help checks that every command has an example and answers
// --help.
func TestCommands_Help(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			path := strings.Fields(sub.CommandPath())[1:]
			t.Run(strings.Join(path, " "), func(t *testing.T) {
				if strings.TrimSpace(sub.Example) == "" && sub.Name() != "version" && sub.Name() != "serve" {
					t.Errorf("no example")
				}
				r := mustRun(t, append(path, "--help")...)
				if !strings.Contains(r.stdout, "Usage:") {
					t.Fatalf("--help printed no usage:\n%s", r.stdout)
				}
				if sub.Example != "" && !strings.Contains(r.stdout, "Examples:") {
					t.Fatalf("--help shows no example:\n%s", r.stdout)
				}
			})
			n++
			walk(sub)
		}
	}
	walk(newRootCommand())
	if n < 20 {
		t.Fatalf("%d commands, want at least 20", n)
	}
}

func TestCommands_Completion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		t.Run(shell, func(t *testing.T) {
			r := mustRun(t, "completion", shell)
			if !strings.Contains(r.stdout, "odometer") || len(r.stdout) < 1000 {
				t.Fatalf("completion %s printed %d bytes:\n%.300s", shell, len(r.stdout), r.stdout)
			}
		})
	}
	t.Run("Flags", func(t *testing.T) {
		r := mustRun(t, "__complete", "keys", "create", "--scope", "")
		for _, s := range []string{"ingest", "read", "admin"} {
			if !strings.Contains(r.stdout, s) {
				t.Fatalf("completion of --scope lacks %s:\n%s", s, r.stdout)
			}
		}
	})
}

// TestCommands_Environment checks that ODOMETER_URL and ODOMETER_API_KEY
// stand in for --server and --api-key, and that --help never shows a key.
func TestCommands_Environment(t *testing.T) {
	ts := startServer(t)
	t.Setenv("ODOMETER_URL", ts.URL)
	t.Setenv("ODOMETER_API_KEY", ts.AdminKey)
	mustRun(t, "trigger")
	r := mustRun(t, "events", "list", "--help")
	if strings.Contains(r.stdout, ts.AdminKey) {
		t.Fatal("--help shows the API key")
	}

	t.Run("ErrNoKey", func(t *testing.T) {
		t.Setenv("ODOMETER_API_KEY", "")
		mustFail(t, "no API key", "trigger")
	})
	t.Run("ErrWrongKey", func(t *testing.T) {
		mustFail(t, "check --api-key", "trigger", "--api-key", "odo_wrong")
	})
	t.Run("ErrScope", func(t *testing.T) {
		mustFail(t, "403", "trigger", "--api-key", ts.ReadKey)
	})
	t.Run("ErrServer", func(t *testing.T) {
		mustFail(t, "--server must be an http", "trigger", "--server", "ftp://x")
	})
}
