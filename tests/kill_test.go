package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// killConfig is the configuration of the kill test: one event type per op
// whose result can be computed exactly from the stored events (sum, max
// and count), so that the aggregations can be checked against them.
const killConfig = `{
  "periods": ["hourly", "daily"],
  "events": {
    "api.calls": { "op": "sum", "description": "API calls" },
    "api.peak": { "op": "max", "description": "Peak of something" },
    "api.hits": { "op": "count", "description": "Hits" }
  },
  "meters": {
    "calls.byRegion": { "eventType": "api.calls", "op": "sum", "groupBy": ["region"] },
    "hits.users":     { "eventType": "api.hits", "op": "unique", "value": "$.user" },
    "peak.hours":     { "eventType": "api.peak", "op": "integral", "unit": "second", "groupBy": ["region"] }
  },
  "webhooks": []
}`

// killTypes are the event types of killConfig.
var killTypes = []string{"api.calls", "api.peak", "api.hits"}

const (
	killWorkers   = 16
	killBatchSize = 50
	killCustomers = 8
	killKey       = "odo_test_kill_admin_key_0123456789"
)

// killCycles is the number of kill and restart cycles: 3, or the value of
// ODOMETER_KILL_CYCLES for a longer run (for example 20).
func killCycles(t *testing.T) int {
	v := os.Getenv("ODOMETER_KILL_CYCLES")
	if v == "" {
		if testing.Short() {
			return 1
		}
		return 3
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("ODOMETER_KILL_CYCLES=%q: want a whole number of at least 1", v)
	}
	return n
}

// sentEvent is one event as the client sent it.
type sentEvent struct {
	EventType  string            `json:"eventType,omitempty"`
	ID         string            `json:"id"`
	CustomerID string            `json:"customerId"`
	Value      float64           `json:"value"`
	Metadata   map[string]string `json:"metadata"`
}

// ingestRequest is one POST and what became of it. The body is kept so
// that a retry sends exactly the same bytes.
type ingestRequest struct {
	path   string
	body   []byte
	events []sentEvent

	status int    // 0: no answer
	err    error  // transport error, or the body could not be read
	answer []byte // the body of the answer
}

func (r *ingestRequest) batch() bool { return r.path == "/usagebatch" }

// acked reports whether the server answered 2xx: from then on the events
// must be stored, whether or not the body of the answer arrived whole.
func (r *ingestRequest) acked() bool { return r.status >= 200 && r.status < 300 }

func newIngestRequest(rng *rand.Rand, cycle, worker, n int) *ingestRequest {
	ev := func(i int, batch bool) sentEvent {
		e := sentEvent{
			EventType:  killTypes[rng.IntN(len(killTypes))],
			ID:         fmt.Sprintf("k%d-w%02d-r%06d-%02d", cycle, worker, n, i),
			CustomerID: "cust_" + strconv.Itoa(rng.IntN(killCustomers)),
			// Quarters: exact in binary, so every sum is exact too.
			Value: float64(rng.IntN(400)+1) / 4,
			// For the meters: a region to group by, a user to count.
			Metadata: map[string]string{"region": []string{"eu", "us", "ap"}[rng.IntN(3)], "user": "u" + strconv.Itoa(rng.IntN(50))},
		}
		return e
	}
	r := &ingestRequest{}
	if rng.IntN(2) == 0 {
		r.events = []sentEvent{ev(0, false)}
		r.path = "/usage/" + r.events[0].EventType
		body := r.events[0]
		body.EventType = "" // the path names it
		r.body, _ = json.Marshal(body)
	} else {
		r.path = "/usagebatch"
		r.events = make([]sentEvent, killBatchSize)
		for i := range r.events {
			r.events[i] = ev(i, true)
		}
		r.body, _ = json.Marshal(r.events)
	}
	return r
}

func (r *ingestRequest) send(s *server) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.status, r.answer, _, r.err = s.do(ctx, "POST", r.path, r.body)
}

// ingestAnswer is the body of a 2xx answer to either route.
type ingestAnswer struct {
	Duplicate  bool `json:"duplicate"`
	Count      int  `json:"count"`
	Duplicates int  `json:"duplicates"`
}

// stored checks the answer to a request and reports whether its events
// were already stored before it: false for 201, true for a 200 duplicate.
// A batch is stored atomically, so a retried batch is all new or all
// duplicates, never part of each.
func (r *ingestRequest) stored() (before bool, err error) {
	var a ingestAnswer
	if err := json.Unmarshal(r.answer, &a); err != nil {
		return false, fmt.Errorf("POST %s: status %d, body %q: %v", r.path, r.status, r.answer, err)
	}
	switch {
	case !r.batch() && r.status == http.StatusCreated && !a.Duplicate:
		return false, nil
	case !r.batch() && r.status == http.StatusOK && a.Duplicate:
		return true, nil
	case r.batch() && r.status == http.StatusCreated && a.Count == len(r.events) && a.Duplicates == 0:
		return false, nil
	case r.batch() && r.status == http.StatusOK && a.Count == len(r.events) && a.Duplicates == len(r.events):
		return true, nil
	}
	return false, fmt.Errorf("POST %s (%d events): status %d, body %s", r.path, len(r.events), r.status, r.answer)
}

// killFigures are the counts printed at the end of the kill test.
type killFigures struct {
	cycles            int
	requests, events  int
	acked, ackedEv    int
	retried, retriedE int
	storedBefore      int // retried requests that had been stored before the kill
	lost, duplicated  int
	unexpected        int
	stored            int // events read back
	startKills        int // kills during start-up
	startKillsEarly   int // of them, before the server listened
}

// TestKillIngest posts events from many goroutines, kills the server with
// SIGKILL in the middle of the stream, restarts it on the same database
// and retries whatever got no answer. Every id that got a 2xx must be
// stored exactly once; a retry must answer 201 or 200 duplicate and never
// store an event twice; nothing that was not sent may appear. Then the
// daily aggregations must equal their sum, max and count computed from
// scratch over the stored events.
func TestKillIngest(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "systemconfig.json")
	if err := os.WriteFile(cfgPath, []byte(killConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	// The id index writes a run every 200 new ids, and merges them, so
	// that kills land while runs are written, merged and loaded.
	opts := serverOptions{DB: filepath.Join(dir, "odometer.db"), Config: cfgPath, Key: killKey, Dir: dir,
		Env: []string{"ODOMETER_SQLITE_ID_FLUSH=200"}}

	fig := killFigures{cycles: killCycles(t)}
	sent := map[string]sentEvent{}  // every id ever sent, by id
	ackedFirst := map[string]bool{} // ids whose first attempt got a 2xx
	srv := startServer(t, opts)
	for cycle := 1; cycle <= fig.cycles; cycle++ {
		delay := 300*time.Millisecond + rand.N(1200*time.Millisecond)
		reqs := ingestUntilKilled(srv, cycle, delay)
		var failed []*ingestRequest
		refused := 0
		for _, r := range reqs {
			fig.requests++
			fig.events += len(r.events)
			for _, e := range r.events {
				if _, ok := sent[e.ID]; ok {
					t.Fatalf("id %s sent twice by the test itself", e.ID)
				}
				sent[e.ID] = e
			}
			switch {
			case r.acked():
				for _, e := range r.events {
					ackedFirst[e.ID] = true
				}
				fig.acked++
				fig.ackedEv += len(r.events)
				if r.err != nil {
					continue // the answer was cut by the kill after its status
				}
				if before, err := r.stored(); err != nil {
					t.Errorf("cycle %d: first attempt: %v", cycle, err)
				} else if before {
					t.Errorf("cycle %d: first attempt of new ids answered as a duplicate: %s", cycle, r.answer)
				}
			case r.status != 0:
				// An answer that is not 2xx, before the kill: the server
				// refused a valid request.
				refused++
				if refused <= 3 {
					t.Errorf("cycle %d: POST %s: status %d: %s", cycle, r.path, r.status, r.answer)
				}
				failed = append(failed, r)
			default:
				failed = append(failed, r)
			}
		}
		if refused > 0 {
			t.Errorf("cycle %d: %d valid requests refused with a non-2xx status", cycle, refused)
		}
		t.Logf("cycle %d: killed after %v: %d requests, %d acknowledged, %d without an answer",
			cycle, delay.Round(time.Millisecond), len(reqs), len(reqs)-len(failed), len(failed))
		if len(reqs) == len(failed) {
			t.Fatalf("cycle %d: no request was acknowledged before the kill; server output:\n%s", cycle, srv.Output())
		}

		// Kills during start-up, while the id index loads; every other
		// cycle without its folder, so that start rebuilds it from the
		// events and is killed while it writes the runs.
		if cycle%2 == 0 {
			if err := os.RemoveAll(opts.DB + ".ids"); err != nil {
				t.Fatal(err)
			}
		}
		for range 3 {
			s, err := spawnServer(opts)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(rand.N(60 * time.Millisecond))
			s.Kill()
			fig.startKills++
			if !strings.Contains(s.Output(), "odometer serving") {
				fig.startKillsEarly++ // before it listened: while it opened the store
			}
		}

		srv = startServer(t, opts)
		storedBefore, err := retryAll(srv, failed)
		if err != nil {
			t.Fatalf("cycle %d: retry after restart: %v\nserver output:\n%s", cycle, err, srv.Output())
		}
		fig.retried += len(failed)
		for _, r := range failed {
			fig.retriedE += len(r.events)
		}
		fig.storedBefore += storedBefore
	}

	events := readAllEvents(t, srv)
	fig.stored = len(events)
	seen := map[string]int{}
	mismatch := 0
	for _, e := range events {
		seen[e.ID]++
		want, ok := sent[e.ID]
		if !ok {
			fig.unexpected++
			if fig.unexpected <= 5 {
				t.Errorf("event %s is stored but was never sent: %+v", e.ID, e)
			}
			continue
		}
		if seen[e.ID] == 2 {
			fig.duplicated++
			if fig.duplicated <= 5 {
				t.Errorf("event %s is stored more than once", e.ID)
			}
		}
		if e.EventType != want.EventType || e.CustomerID != want.CustomerID || e.Value != want.Value || !sameMetadata(e.Metadata, want.Metadata) {
			mismatch++
			if mismatch <= 5 {
				t.Errorf("event %s stored as %s/%s/%v, sent as %s/%s/%v",
					e.ID, e.EventType, e.CustomerID, e.Value, want.EventType, want.CustomerID, want.Value)
			}
		}
	}
	// Every id sent was either acknowledged or retried until acknowledged.
	for id := range sent {
		if seen[id] == 0 {
			fig.lost++
			if fig.lost <= 5 {
				when := "on its retry after the restart"
				if ackedFirst[id] {
					when = "before the kill"
				}
				t.Errorf("event %s was acknowledged %s but is not stored", id, when)
			}
		}
	}
	if got, want := fig.stored, len(sent); got != want {
		t.Errorf("GET /events returned %d events, want %d (one per id sent)", got, want)
	}

	checkDailyAggregates(t, srv, events)
	checkMetersFromScratch(t, srv, events, cfgPath)

	report(t, "kill test: cycles %d; requests %d (%d events); acknowledged %d (%d events); "+
		"retried %d (%d events, %d of them stored before the kill); kills during start-up %d (%d before the server listened); stored %d events; lost %d; duplicated %d; unexpected %d",
		fig.cycles, fig.requests, fig.events, fig.acked, fig.ackedEv,
		fig.retried, fig.retriedE, fig.storedBefore, fig.startKills, fig.startKillsEarly, fig.stored, fig.lost, fig.duplicated, fig.unexpected)
	if fig.lost != 0 || fig.duplicated != 0 || fig.unexpected != 0 || mismatch != 0 {
		t.Fatalf("lost %d, duplicated %d, unexpected %d, changed %d: want 0 each", fig.lost, fig.duplicated, fig.unexpected, mismatch)
	}
}

// ingestUntilKilled runs killWorkers goroutines posting single events and
// batches as fast as the server answers, kills the server after delay and
// returns every request sent.
func ingestUntilKilled(srv *server, cycle int, delay time.Duration) []*ingestRequest {
	var stop atomic.Bool
	var wg sync.WaitGroup
	perWorker := make([][]*ingestRequest, killWorkers)
	for w := range killWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(cycle), uint64(w)))
			for n := 0; !stop.Load(); n++ {
				r := newIngestRequest(rng, cycle, w, n)
				r.send(srv)
				perWorker[w] = append(perWorker[w], r)
			}
		}()
	}
	time.Sleep(delay) // the kill lands at a random point of the stream
	// Stop first, so that the requests without an answer are those in
	// flight at the kill, not new ones refused after it.
	stop.Store(true)
	srv.Kill()
	wg.Wait()
	var all []*ingestRequest
	for _, rs := range perWorker {
		all = append(all, rs...)
	}
	return all
}

// retryAll sends every request again, as it was, and checks each answer.
// It returns how many had in fact been stored before the kill.
func retryAll(srv *server, reqs []*ingestRequest) (int, error) {
	var mu sync.Mutex
	var firstErr error
	storedBefore := 0
	next := make(chan *ingestRequest)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range next {
				r.send(srv)
				var before bool
				err := r.err
				if err == nil {
					before, err = r.stored()
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("POST %s: %w", r.path, err)
				}
				if before {
					storedBefore++
				}
				mu.Unlock()
			}
		}()
	}
	for _, r := range reqs {
		next <- r
	}
	close(next)
	wg.Wait()
	return storedBefore, firstErr
}

// storedEvent is an event as GET /events returns it.
type storedEvent struct {
	ID         string          `json:"_id"`
	EventType  string          `json:"eventType"`
	CustomerID string          `json:"customerId"`
	Value      float64         `json:"value"`
	Day        string          `json:"day"`
	Timestamp  string          `json:"timestamp"`
	Metadata   json.RawMessage `json:"metadata"`
}

// readAllEvents pages through GET /events with the X-Next-Cursor header.
func readAllEvents(t *testing.T, srv *server) []storedEvent {
	t.Helper()
	var all []storedEvent
	cursor := ""
	for page := 0; ; page++ {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var events []storedEvent
		h := srv.getJSON(t, "/events?"+q.Encode(), &events)
		all = append(all, events...)
		next := h.Get("X-Next-Cursor")
		if next == "" {
			return all
		}
		if next == cursor || len(events) == 0 {
			t.Fatalf("GET /events page %d: cursor %q does not advance", page, next)
		}
		cursor = next
	}
}

// aggregation is the part of GET /aggregations the test reads.
type aggregation struct {
	CustomerID  string             `json:"customerId"`
	Period      string             `json:"period"`
	PeriodKey   string             `json:"periodKey"`
	Events      map[string]float64 `json:"events"`
	EventCounts map[string]int64   `json:"eventCounts"`
}
