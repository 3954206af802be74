package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
)

// writeFile writes body to name in a temporary directory.
func writeFile(tb testing.TB, name, body string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// sendJSON runs send with --output json and returns its summary.
func sendJSON(tb testing.TB, ctx context.Context, stdin string, args ...string) (sendSummary, result) {
	tb.Helper()
	r := run(tb, ctx, stdin, append([]string{"send", "-o", "json"}, args...)...)
	var sum sendSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		tb.Fatalf("send: no JSON summary (%v): %q\nstderr:\n%s", r.err, r.stdout, r.stderr)
	}
	return sum, r
}

func TestSend_NDJSON(t *testing.T) {
	ts := startServer(t)
	ts1 := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second).Format(time.RFC3339)
	file := writeFile(t, "events.ndjson", strings.Join([]string{
		`{"eventType": "api.calls", "customerId": "cust_a", "value": 10}`,
		`{"eventType": "api.calls", "customerId": "cust_a", "value": 10}`, // the same line again: another event
		``,
		`{"eventType": "api.calls", "customerId": "cust_b", "value": 5, "id": "own-1", "timestamp": "` + ts1 + `"}`,
		`{"eventType": "storage.bytes", "customerId": "cust_b", "value": 7, "metadata": {"region": "eu"}}`,
		`not json`,
		`{"eventType": "api.calls", "value": 1}`,
		`{"eventType": "nope", "customerId": "cust_a", "value": 1}`,
		`  {"eventType": "response.time.ms", "customerId": "cust_c", "value": 120}  `,
	}, "\n"))
	args := append([]string{file}, ts.flags(ts.IngestKey)...)

	sum, r := sendJSON(t, nil, "", args...)
	if r.err == nil || !strings.Contains(r.err.Error(), "3 events refused") {
		t.Fatalf("error %v, want 3 events refused", r.err)
	}
	if got, want := [4]int{sum.Events, sum.Stored, sum.Duplicates, sum.Refused}, [4]int{8, 5, 0, 3}; got != want {
		t.Fatalf("events, stored, duplicates, refused %v, want %v\n%s", got, want, r.stderr)
	}
	wantRefusals := map[int]string{6: "not a JSON object", 7: "customerId is required",
		8: "Invalid event type: nope. Must be one of: api.calls, storage.bytes, response.time.ms"}
	if got, want := len(sum.Refusals), len(wantRefusals); got != want {
		t.Fatalf("%d refusals, want %d: %+v", got, want, sum.Refusals)
	}
	for _, rf := range sum.Refusals {
		if want := wantRefusals[rf.Line]; rf.Reason != want {
			t.Errorf("line %d refused for %q, want %q", rf.Line, rf.Reason, want)
		}
		if !strings.Contains(r.stderr, fmt.Sprintf("line %d: refused: ", rf.Line)) {
			t.Errorf("line %d is not reported on stderr:\n%s", rf.Line, r.stderr)
		}
	}
	if got, want := ts.countEvents(t), 5; got != want {
		t.Fatalf("%d events stored, want %d", got, want)
	}
	events, _, err := ts.Store.FindEvents(context.Background(), odometer.EventFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]odometer.Event{}
	for _, e := range events {
		ids[e.ID] = e
	}
	if e, ok := ids["own-1"]; !ok || e.Time.Format(time.RFC3339) != ts1 {
		t.Fatalf("the event with its own id and timestamp: %+v", e)
	}
	abs, _ := filepath.Abs(file)
	abs, _ = filepath.EvalSymlinks(abs)
	line1 := eventID(abs, 1, []byte(`{"eventType": "api.calls", "customerId": "cust_a", "value": 10}`))
	if _, ok := ids[line1]; !ok {
		t.Fatalf("no event %s derived from line 1; ids %v", line1, keys(ids))
	}
	if e := ids[eventID(abs, 5, []byte(`{"eventType": "storage.bytes", "customerId": "cust_b", "value": 7, "metadata": {"region": "eu"}}`))]; string(e.Metadata) != `{"region":"eu"}` {
		t.Fatalf("metadata %q", e.Metadata)
	}

	t.Run("Again", func(t *testing.T) {
		sum, _ := sendJSON(t, nil, "", args...)
		if got, want := [3]int{sum.Stored, sum.Duplicates, sum.Refused}, [3]int{0, 5, 3}; got != want {
			t.Fatalf("stored, duplicates, refused %v, want %v", got, want)
		}
		if got, want := ts.countEvents(t), 5; got != want {
			t.Fatalf("%d events stored, want %d", got, want)
		}
	})

	t.Run("Fixed", func(t *testing.T) {
		// Fixing a refused line sends only that line anew.
		b, _ := os.ReadFile(file)
		fixed := strings.Replace(string(b), `{"eventType": "api.calls", "value": 1}`, `{"eventType": "api.calls", "customerId": "cust_d", "value": 1}`, 1)
		os.WriteFile(file, []byte(fixed), 0o600)
		sum, _ := sendJSON(t, nil, "", args...)
		if got, want := [3]int{sum.Stored, sum.Duplicates, sum.Refused}, [3]int{1, 5, 2}; got != want {
			t.Fatalf("stored, duplicates, refused %v, want %v", got, want)
		}
	})

	t.Run("Table", func(t *testing.T) {
		r := run(t, nil, "", append([]string{"send"}, args...)...)
		for _, s := range []string{"stored:     0", "duplicates: 6", "refused:    2", "1  not a JSON object"} {
			if !strings.Contains(r.stdout, s) {
				t.Fatalf("summary lacks %q:\n%s", s, r.stdout)
			}
		}
	})
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestSend_CSV(t *testing.T) {
	ts := startServer(t)
	file := writeFile(t, "events.csv", "\xEF\xBB\xBFcustomerId,eventType,value,id,timestamp,metadata\n"+
		"cust_a,api.calls,3,,,\n"+
		"cust_a,api.calls,3,,,\n"+
		`cust_b,storage.bytes,1e3,b-1,,"{""region"": ""eu""}"`+"\n"+
		"cust_c,api.calls,many,,,\n"+
		"cust_c,api.calls,2,,,[1]\n"+
		"cust_c,api.calls\n"+
		"cust_d,response.time.ms,-0.5,,"+time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)+",\n")
	args := append([]string{file}, ts.flags(ts.IngestKey)...)
	sum, r := sendJSON(t, nil, "", args...)
	if got, want := [4]int{sum.Events, sum.Stored, sum.Duplicates, sum.Refused}, [4]int{7, 4, 0, 3}; got != want {
		t.Fatalf("events, stored, duplicates, refused %v, want %v\n%s", got, want, r.stderr)
	}
	for _, want := range []refusal{{5, "value must be a number"}, {6, "metadata must be a JSON object"}, {7, "has 2 fields; the header has 6"}} {
		found := false
		for _, rf := range sum.Refusals {
			found = found || rf == want
		}
		if !found {
			t.Errorf("no refusal %+v in %+v", want, sum.Refusals)
		}
	}
	events, _, _ := ts.Store.FindEvents(context.Background(), odometer.EventFilter{CustomerID: "cust_b", Limit: 10})
	if len(events) != 1 || events[0].ID != "b-1" || events[0].Value != 1000 || string(events[0].Metadata) != `{"region":"eu"}` {
		t.Fatalf("cust_b: %+v", events)
	}
	sum, _ = sendJSON(t, nil, "", args...)
	if got, want := [2]int{sum.Stored, sum.Duplicates}, [2]int{0, 4}; got != want {
		t.Fatalf("again: stored, duplicates %v, want %v", got, want)
	}

	t.Run("ErrHeader", func(t *testing.T) {
		for _, tt := range []struct{ header, want string }{
			{"customerId,eventType,value,price", `unknown column "price"`},
			{"customerId,value", `column "eventType" is missing`},
			{"customerId,eventType,value,value", `column "value" appears twice`},
		} {
			f := writeFile(t, "bad.csv", tt.header+"\n")
			mustFail(t, tt.want, append([]string{"send", f}, ts.flags(ts.IngestKey)...)...)
		}
	})
}

func TestSend_Stdin(t *testing.T) {
	ts := startServer(t)
	input := `{"eventType": "api.calls", "customerId": "cust_a", "value": 1}` + "\n" + `{"eventType": "api.calls", "customerId": "cust_a", "value": 1}`
	args := append([]string{"-", "--source", "batch-7"}, ts.flags(ts.IngestKey)...)
	sum, r := sendJSON(t, nil, input, args...)
	if r.err != nil || sum.Stored != 2 {
		t.Fatalf("stored %d (%v), want 2", sum.Stored, r.err)
	}
	sum, _ = sendJSON(t, nil, input, args...)
	if sum.Stored != 0 || sum.Duplicates != 2 {
		t.Fatalf("again: %+v, want 2 duplicates", sum)
	}
	// Another source: other events.
	sum, _ = sendJSON(t, nil, input, append([]string{"-", "--source", "batch-8"}, ts.flags(ts.IngestKey)...)...)
	if sum.Stored != 2 {
		t.Fatalf("another source: stored %d, want 2", sum.Stored)
	}
	r = run(t, nil, input, append([]string{"send", "-"}, ts.flags(ts.IngestKey)...)...)
	if !strings.Contains(r.stderr, "without --source") {
		t.Fatalf("no warning about --source: %q", r.stderr)
	}
	if got, want := ts.countEvents(t), 6; got != want {
		t.Fatalf("%d events, want %d", got, want)
	}
}

func TestSend_Conflict(t *testing.T) {
	ts := startServer(t)
	ts.mustPost(t, `{"eventType": "api.calls", "customerId": "cust_a", "value": 1, "id": "x-1"}`)
	file := writeFile(t, "e.ndjson", `{"eventType": "api.calls", "customerId": "cust_a", "value": 1}
{"eventType": "api.calls", "customerId": "cust_a", "value": 2, "id": "x-1"}
{"eventType": "api.calls", "customerId": "cust_a", "value": 3}
`)
	sum, _ := sendJSON(t, nil, "", append([]string{file}, ts.flags(ts.IngestKey)...)...)
	if got, want := [3]int{sum.Stored, sum.Duplicates, sum.Refused}, [3]int{2, 0, 1}; got != want {
		t.Fatalf("stored, duplicates, refused %v, want %v", got, want)
	}
	if sum.Refusals[0].Line != 2 || !strings.Contains(sum.Refusals[0].Reason, `"x-1" is already stored, or given earlier in this request, with a different body`) {
		t.Fatalf("refusal %+v", sum.Refusals[0])
	}

	t.Run("InFile", func(t *testing.T) {
		// The same id twice in the file, with other bodies: the later line
		// is refused.
		file := writeFile(t, "e.ndjson", `{"eventType": "api.calls", "customerId": "cust_y", "value": 5, "id": "y-1"}
{"eventType": "api.calls", "customerId": "cust_y", "value": 6, "id": "y-1"}
`)
		sum, _ := sendJSON(t, nil, "", append([]string{file}, ts.flags(ts.IngestKey)...)...)
		if got, want := [2]int{sum.Stored, sum.Refused}, [2]int{1, 1}; got != want || sum.Refusals[0].Line != 2 {
			t.Fatalf("stored, refused %v, want %v; refusals %+v", got, want, sum.Refusals)
		}
		events, _, _ := ts.Store.FindEvents(context.Background(), odometer.EventFilter{CustomerID: "cust_y", Limit: 10})
		if len(events) != 1 || events[0].Value != 5 {
			t.Fatalf("cust_y: %+v, want the first line's event", events)
		}
	})
}

// TestSend_TooLarge checks that a batch over the server's body limit is
// split until it fits, and a line too large alone is refused.
func TestSend_TooLarge(t *testing.T) {
	ts := startServerWith(t, func(s *odohttp.Server) { s.MaxBatchBytes = 4000 })
	var lines []string
	for i := 0; i < 60; i++ {
		lines = append(lines, fmt.Sprintf(`{"eventType": "api.calls", "customerId": "cust_%d", "value": 1}`, i))
	}
	lines[30] = `{"eventType": "api.calls", "customerId": "cust_big", "value": 1, "metadata": {"x": "` + strings.Repeat("x", 5000) + `"}}`
	file := writeFile(t, "e.ndjson", strings.Join(lines, "\n"))
	sum, r := sendJSON(t, nil, "", append([]string{file}, ts.flags(ts.IngestKey)...)...)
	if got, want := [3]int{sum.Stored, sum.Duplicates, sum.Refused}, [3]int{59, 0, 1}; got != want {
		t.Fatalf("stored, duplicates, refused %v, want %v\n%s", got, want, r.stderr)
	}
	if sum.Refusals[0].Line != 31 || !strings.Contains(sum.Refusals[0].Reason, "too large") {
		t.Fatalf("refusal %+v", sum.Refusals[0])
	}
}

func TestSend_ErrKey(t *testing.T) {
	ts := startServer(t)
	file := writeFile(t, "e.ndjson", `{"eventType": "api.calls", "customerId": "cust_a", "value": 1}`)
	r := mustFail(t, "check --api-key", "send", file, "--server", ts.URL, "--api-key", "odo_wrong")
	if strings.Contains(r.stderr, "line 1: refused") {
		t.Fatal("a wrong key refused the line")
	}
	mustFail(t, "403", append([]string{"send", file}, ts.flags(ts.ReadKey)...)...)
}

// TestSend_Retries sends through a server that loses some answers after
// storing the batch, and answers others 503: every event is stored once.
func TestSend_Retries(t *testing.T) {
	defer func(d time.Duration) { retryBase = d }(retryBase)
	retryBase = time.Millisecond
	var n, lost, unavailable atomic.Int64
	ts := startServer(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/usagebatch" {
				h.ServeHTTP(w, r)
				return
			}
			switch n.Add(1) % 4 {
			case 1: // stored, but the answer never comes
				h.ServeHTTP(httptest.NewRecorder(), r)
				lost.Add(1)
				panic(http.ErrAbortHandler)
			case 3:
				unavailable.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"error": "The store is not ready"}`))
			default:
				h.ServeHTTP(w, r)
			}
		})
	})
	const lines = 5000
	file := writeNumbered(t, lines)
	sum, r := sendJSON(t, nil, "", append([]string{file, "--batch-size", "500", "--concurrency", "3"}, ts.flags(ts.IngestKey)...)...)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	if lost.Load() == 0 || unavailable.Load() == 0 {
		t.Fatalf("lost %d, unavailable %d: the test did not disturb the send", lost.Load(), unavailable.Load())
	}
	if got, want := sum.Stored+sum.Duplicates, lines; got != want || sum.Duplicates == 0 {
		t.Fatalf("stored %d + duplicates %d, want %d with duplicates (the lost answers)", sum.Stored, sum.Duplicates, want)
	}
	if got, want := ts.countEvents(t), lines; got != want {
		t.Fatalf("%d events stored, want %d", got, want)
	}
	if !strings.Contains(r.stderr, "trying again") {
		t.Fatalf("no retry reported:\n%s", r.stderr)
	}

	t.Run("ErrGiveUp", func(t *testing.T) {
		down := startServer(t, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusBadGateway)
			})
		})
		mustFail(t, "gave up after 3 tries", append([]string{"send", file, "--retries", "3"}, down.flags(down.IngestKey)...)...)
	})
}

// writeNumbered writes an NDJSON file of n api.calls events over 10
// customers, value i%7+1; every other one has a timestamp an hour ago.
func writeNumbered(tb testing.TB, n int) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "events.ndjson")
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	ts := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			fmt.Fprintf(w, `{"eventType": "api.calls", "customerId": "cust_%d", "value": %d, "timestamp": %q}`+"\n", i%10, i%7+1, ts)
		} else {
			fmt.Fprintf(w, `{"eventType": "api.calls", "customerId": "cust_%d", "value": %d}`+"\n", i%10, i%7+1)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	return p
}

func aggregationQuery(period string) odohttp.AggregationQuery {
	return odohttp.AggregationQuery{Period: period, Limit: 1000}
}

func numberedSum(n int) float64 {
	s := 0.0
	for i := 0; i < n; i++ {
		s += float64(i%7 + 1)
	}
	return s
}

// TestSend_Interrupted interrupts the send of a 100,000-line file midway
// and runs it again: every event is counted once.
func TestSend_Interrupted(t *testing.T) {
	lines := 100_000
	if testing.Short() {
		lines = 20_000
	}
	var batches atomic.Int64
	var inflight sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopAt := int64(lines / 1000 / 3)
	ts := startServer(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inflight.Add(1)
			defer inflight.Done()
			h.ServeHTTP(w, r)
			if r.URL.Path == "/usagebatch" && batches.Add(1) == stopAt {
				cancel()
			}
		})
	})
	file := writeNumbered(t, lines)
	args := append([]string{file}, ts.flags(ts.IngestKey)...)

	first, r := sendJSON(t, ctx, "", args...)
	if r.err == nil || !strings.Contains(r.err.Error(), "interrupted") || !first.Interrupted {
		t.Fatalf("first run: error %v, summary %+v; want interrupted", r.err, first)
	}
	inflight.Wait() // a request cut short may still be stored
	stored := ts.countEvents(t)
	if stored == 0 || stored >= lines || first.Stored > stored {
		t.Fatalf("first run stored %d (reported %d) of %d: want a part", stored, first.Stored, lines)
	}

	second, r := sendJSON(t, nil, "", args...)
	if r.err != nil {
		t.Fatalf("second run: %v\n%s", r.err, r.stderr)
	}
	if got, want := stored+second.Stored, lines; got != want {
		t.Fatalf("first run stored %d, second %d: %d, want %d", stored, second.Stored, got, want)
	}
	if got, want := second.Duplicates, stored; got != want {
		t.Fatalf("second run: %d duplicates, want %d (what the first stored)", got, want)
	}
	if got, want := ts.countEvents(t), lines; got != want {
		t.Fatalf("%d events stored, want %d", got, want)
	}
	t.Logf("first run: %d stored (%d reported) in %.2fs; second: %d stored, %d duplicates in %.2fs",
		stored, first.Stored, first.Seconds, second.Stored, second.Duplicates, second.Seconds)

	// The aggregates count every event once.
	mustRun(t, append([]string{"trigger"}, ts.flags(ts.AdminKey)...)...)
	aggs, _, err := ts.client(ts.ReadKey).Aggregations(context.Background(), aggregationQuery("yearly"))
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	var count int64
	for _, a := range aggs {
		sum += a.Events["api.calls"]
		count += a.EventCounts["api.calls"]
	}
	if got, want := count, int64(lines); got != want {
		t.Fatalf("yearly count %d, want %d", got, want)
	}
	if got, want := sum, numberedSum(lines); got != want {
		t.Fatalf("yearly sum %v, want %v", got, want)
	}
}

func TestProgressLine(t *testing.T) {
	for _, tt := range []struct {
		done, total int
		elapsed     time.Duration
		bar         bool
		want        string
	}{
		{0, 100, 0, false, "progress: 0/100 events (0%), 0 events/s, ETA ?"},
		{25, 100, time.Second, false, "progress: 25/100 events (25%), 25 events/s, ETA 3s"},
		{50, 100, 2 * time.Second, true, "[===============               ]  50% 50/100  25 events/s  ETA 2s"},
		{100, 100, 4 * time.Second, true, "[==============================] 100% 100/100  25 events/s  ETA 0s"},
	} {
		if got := progressLine(tt.done, tt.total, tt.elapsed, tt.bar); got != tt.want {
			t.Errorf("progressLine(%d, %d, %s, %v) = %q, want %q", tt.done, tt.total, tt.elapsed, tt.bar, got, tt.want)
		}
	}
}

func TestSend_Progress(t *testing.T) {
	ts := startServer(t)
	file := writeNumbered(t, 3000)
	r := run(t, nil, "", append([]string{"send", file, "--batch-size", "100", "--concurrency", "1", "--progress-every", "1ms"}, ts.flags(ts.IngestKey)...)...)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !strings.Contains(r.stderr, "progress: ") || !strings.Contains(r.stderr, "/3000 events") {
		t.Fatalf("no progress line:\n%s", r.stderr)
	}
}

func TestNDJSONItem(t *testing.T) {
	for _, tt := range []struct {
		line, want string
	}{
		{`{}`, `{"id":"ID"}`},
		{`{ }`, `{ "id":"ID"}`},
		{`{"a":1}`, `{"a":1,"id":"ID"}`},
		{`{"a":1,"id":null}`, `{"a":1,"id":null,"id":"ID"}`},
		{`{"a":1,"id":"mine"}`, `{"a":1,"id":"mine"}`},
	} {
		it, reason := ndjsonItem("src", 3, []byte(tt.line))
		if reason != "" {
			t.Fatalf("%s: refused: %s", tt.line, reason)
		}
		id := eventID("src", 3, []byte(tt.line))
		want := strings.Replace(tt.want, "ID", id, 1)
		if got := string(it.body); got != want {
			t.Errorf("%s: %s, want %s", tt.line, got, want)
		}
		if !json.Valid(it.body) {
			t.Errorf("%s: %s is not JSON", tt.line, it.body)
		}
	}
	if a, b := eventID("f", 1, []byte("x")), eventID("f", 2, []byte("x")); a == b || len(a) != 37 {
		t.Fatalf("ids %s %s: want distinct send: ids of 37 bytes", a, b)
	}
}
