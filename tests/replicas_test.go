package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// The replica tests run several `odometer serve` processes on one
// PostgreSQL schema and check the result against one process on SQLite
// given the same events: replicas must add availability, never a
// difference in the aggregates or a period notified twice.

// replicaOps is one event type per op. Values are quarters and every
// event has a millisecond of its own, so every result is exact and does
// not depend on the order in which events are folded: first and last are
// decided by time, never by a tie broken by arrival, which differs
// between two databases.
var replicaOps = map[string]string{
	"api.calls": "sum", "api.latency": "avg", "api.low": "min", "api.peak": "max",
	"api.hits": "count", "api.first": "first", "api.last": "last",
}

const (
	replicaKey   = "odo_test_replica_admin_key_0123456789"
	replicaBatch = 1000
)

// replicaConfig writes a configuration with every period, the event types
// of replicaOps and one webhook per URL, and returns its path.
func replicaConfig(t *testing.T, hooks ...string) string {
	t.Helper()
	events := map[string]any{}
	for typ, op := range replicaOps {
		events[typ] = map[string]string{"op": op}
	}
	webhooks := []map[string]any{}
	for _, u := range hooks {
		webhooks = append(webhooks, map[string]any{"url": u, "secret": odometer.NewWebhookSecret(), "enabled": true})
	}
	b, err := json.Marshal(map[string]any{
		"periods":     []string{"hourly", "daily", "weekly", "monthly", "yearly"},
		"events":      events,
		"webhooks":    webhooks,
		"maxEventAge": "0",
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

// replicaSchema returns the URL of a new, empty PostgreSQL schema (see
// storetest.PostgresSchema), or skips the test without a server.
func replicaSchema(t *testing.T) string {
	t.Helper()
	if os.Getenv(storetest.PostgresEnv) == "" {
		t.Skip("replicas not tested: they need PostgreSQL. Run them with " + storetest.PostgresEnv +
			"=postgres://postgres@127.0.0.1:5432/test?sslmode=disable go test ./tests/ -run Replica")
	}
	u := storetest.PostgresSchema(t)
	if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		t.Skipf("%s must be a postgres:// URL for the binary's --db", storetest.PostgresEnv)
	}
	return u
}

// withURLParam returns the database URL u with one more query parameter.
func withURLParam(t *testing.T, u, name, value string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := p.Query()
	q.Set(name, value)
	p.RawQuery = q.Encode()
	return p.String()
}

// startReplica starts `odometer serve` on db with the scheduler running
// every interval and webhooks to loopback allowed.
func startReplica(t *testing.T, db, config string, interval time.Duration) *server {
	t.Helper()
	return startServer(t, serverOptions{DB: db, Config: config, Key: replicaKey, Env: []string{
		"ODOMETER_AGGREGATE_INTERVAL=" + interval.String(),
		"ODOMETER_WEBHOOK_ALLOW_PRIVATE=1",
	}})
}

// replicaEvent is one event of a POST /usagebatch body.
type replicaEvent struct {
	EventType  string  `json:"eventType"`
	ID         string  `json:"id"`
	CustomerID string  `json:"customerId"`
	Value      float64 `json:"value"`
	Timestamp  string  `json:"timestamp"`
}

// replicaBatches returns n events for customers customers as bodies of
// POST /usagebatch of replicaBatch events each. Every event has a
// millisecond of [from, to) of its own, in random order, so that each
// batch touches periods all over the range.
func replicaBatches(t *testing.T, n, customers int, from, to time.Time, prefix string) [][]byte {
	t.Helper()
	step := (to.Sub(from) / time.Duration(n)).Truncate(time.Millisecond)
	if step < time.Millisecond {
		t.Fatalf("%d events do not fit in %v one millisecond apart", n, to.Sub(from))
	}
	types := make([]string, 0, len(replicaOps))
	for typ := range replicaOps {
		types = append(types, typ)
	}
	slices.Sort(types)
	rng := rand.New(rand.NewPCG(uint64(n), uint64(customers)))
	at := rng.Perm(n)
	var bodies [][]byte
	batch := make([]replicaEvent, 0, replicaBatch)
	for i := range n {
		batch = append(batch, replicaEvent{
			EventType:  types[rng.IntN(len(types))],
			ID:         fmt.Sprintf("%s-%07d", prefix, i),
			CustomerID: fmt.Sprintf("cust_%02d", rng.IntN(customers)),
			Value:      float64(rng.IntN(4000)+1) / 4,
			Timestamp:  from.Add(time.Duration(at[i]) * step).UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		})
		if len(batch) == replicaBatch || i == n-1 {
			b, err := json.Marshal(batch)
			if err != nil {
				t.Fatal(err)
			}
			bodies = append(bodies, b)
			batch = batch[:0]
		}
	}
	return bodies
}

// postBatches posts every body from workers goroutines, body i to
// servers[i%len(servers)]. Each must be stored whole, as new; the error
// says how many were not.
func postBatches(t *testing.T, servers []*server, bodies [][]byte, workers int) error {
	t.Helper()
	next := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				s := servers[i%len(servers)]
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				status, body, _, err := s.do(ctx, "POST", "/usagebatch", bodies[i])
				cancel()
				var a ingestAnswer
				if err == nil {
					err = json.Unmarshal(body, &a)
				}
				if err != nil || status != http.StatusCreated || a.Count != replicaBatch || a.Duplicates != 0 {
					if failed.Add(1) <= 3 {
						t.Errorf("POST /usagebatch #%d to %s: status %d, %v: %s", i, s.Addr, status, err, body)
					}
				}
			}
		}()
	}
	for i := range bodies {
		next <- i
	}
	close(next)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d batches not stored", n, len(bodies))
	}
	return nil
}

// triggerAnswer is the body of a 200 to POST /aggregations/trigger.
type triggerAnswer struct {
	AggregationsCreated int `json:"aggregationsCreated"`
	EventsProcessed     int `json:"eventsProcessed"`
	PeriodsCompleted    int `json:"periodsCompleted"`
	PeriodsRevised      int `json:"periodsRevised"`
}

func (a triggerAnswer) idle() bool {
	return a.EventsProcessed == 0 && a.PeriodsCompleted == 0 && a.PeriodsRevised == 0
}

// trigger runs POST /aggregations/trigger and returns its answer.
func (s *server) trigger() (triggerAnswer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var a triggerAnswer
	status, body, _, err := s.do(ctx, "POST", "/aggregations/trigger", nil)
	if err != nil {
		return a, err
	}
	if status != http.StatusOK {
		return a, fmt.Errorf("POST /aggregations/trigger: status %d: %s", status, body)
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("POST /aggregations/trigger: %v: %s", err, body)
	}
	return a, nil
}

// triggerAll triggers every server at once and returns their answers.
func triggerAll(t *testing.T, servers []*server) []triggerAnswer {
	t.Helper()
	out := make([]triggerAnswer, len(servers))
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = s.trigger()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %s: %v", servers[i].Addr, err)
		}
	}
	return out
}

// metric returns the value of an unlabelled gauge of GET /metrics.
func (s *server) metric(t *testing.T, name string) float64 {
	t.Helper()
	a := s.mustSend(t, "GET", "/metrics", s.Key, nil)
	if a.Status != http.StatusOK {
		t.Fatalf("GET /metrics: status %d: %s", a.Status, a.Body)
	}
	for _, line := range strings.Split(string(a.Body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("GET /metrics: %s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("GET /metrics has no %s:\n%s", name, a.Body)
	return 0
}

// replicaAggregation is what the replica tests compare of an aggregation.
type replicaAggregation struct {
	ID          string             `json:"_id"`
	CustomerID  string             `json:"customerId"`
	Period      string             `json:"period"`
	PeriodKey   string             `json:"periodKey"`
	Events      map[string]float64 `json:"events"`
	EventCounts map[string]int64   `json:"eventCounts"`
	Complete    bool               `json:"complete"`
	Revision    int                `json:"revision"`
}

// key names the period of an aggregation, as a webhook payload does.
func (a *replicaAggregation) key() string { return a.CustomerID + " " + a.Period + " " + a.PeriodKey }

// pages reads every page of a GET that answers a JSON array and
// X-Next-Cursor, and calls add with each page's body.
func (s *server) pages(t *testing.T, path string, add func(body []byte) int) {
	t.Helper()
	cursor := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		a := s.mustSend(t, "GET", path+sep+q.Encode(), s.Key, nil)
		if a.Status != http.StatusOK {
			t.Fatalf("GET %s: status %d: %s", path, a.Status, a.Body)
		}
		n := add(a.Body)
		next := a.Header.Get("X-Next-Cursor")
		if next == "" || next == cursor || n == 0 {
			return
		}
		cursor = next
	}
}

// allAggregations reads every aggregation, of every period, page by page.
// An _id on two pages, or twice on one, is an error.
func (s *server) allAggregations(t *testing.T) map[string]*replicaAggregation {
	t.Helper()
	out := map[string]*replicaAggregation{}
	s.pages(t, "/aggregations", func(body []byte) int {
		var page []*replicaAggregation
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("GET /aggregations: %v", err)
		}
		for _, a := range page {
			if _, ok := out[a.ID]; ok {
				t.Errorf("GET /aggregations returned %s twice", a.ID)
			}
			out[a.ID] = a
		}
		return len(page)
	})
	return out
}

// replicaDelivery is what the replica tests check of a delivery.
type replicaDelivery struct {
	ID            string `json:"id"`
	Type          string `json:"type"`
	AggregationID string `json:"aggregationId"`
	Revision      int    `json:"revision"`
	Status        string `json:"status"`
	Attempts      int    `json:"attempts"`
}

// allDeliveries reads every delivery with the status ("" for all).
func (s *server) allDeliveries(t *testing.T, status string) []replicaDelivery {
	t.Helper()
	path := "/deliveries"
	if status != "" {
		path += "?status=" + status
	}
	var out []replicaDelivery
	s.pages(t, path, func(body []byte) int {
		var page []replicaDelivery
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("GET /deliveries: %v", err)
		}
		out = append(out, page...)
		return len(page)
	})
	return out
}

// compareAggregations checks that the replicas' aggregations are the
// reference's, field by field; revisions too when withRevision is set.
// It returns how many differ.
func compareAggregations(t *testing.T, got, want map[string]*replicaAggregation, withRevision bool) int {
	t.Helper()
	ids := map[string]bool{}
	for id := range got {
		ids[id] = true
	}
	for id := range want {
		ids[id] = true
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	slices.Sort(sorted)
	wrong := 0
	for _, id := range sorted {
		g, w := got[id], want[id]
		var why string
		switch {
		case g == nil:
			why = "missing on the replicas"
		case w == nil:
			why = "on the replicas only"
		case g.CustomerID != w.CustomerID || g.Period != w.Period || g.PeriodKey != w.PeriodKey:
			why = fmt.Sprintf("period %s, want %s", g.key(), w.key())
		case !reflect.DeepEqual(g.Events, w.Events) || !reflect.DeepEqual(g.EventCounts, w.EventCounts):
			why = fmt.Sprintf("events %v %v, want %v %v", g.Events, g.EventCounts, w.Events, w.EventCounts)
		case g.Complete != w.Complete:
			why = fmt.Sprintf("complete %v, want %v", g.Complete, w.Complete)
		case withRevision && g.Revision != w.Revision:
			why = fmt.Sprintf("revision %d, want %d", g.Revision, w.Revision)
		default:
			continue
		}
		wrong++
		if wrong <= 10 {
			t.Errorf("aggregation %s: %s", id, why)
		}
	}
	if len(want) == 0 {
		t.Errorf("the reference has no aggregation")
	}
	return wrong
}

// sqliteReference posts bodies to one odometer serve on a new SQLite file,
// triggers one run and returns its aggregations: what the replicas must
// agree with.
func sqliteReference(t *testing.T, bodies [][]byte) map[string]*replicaAggregation {
	t.Helper()
	s := startReplica(t, filepath.Join(t.TempDir(), "reference.db"), replicaConfig(t), time.Hour)
	if err := postBatches(t, []*server{s}, bodies, 4); err != nil {
		t.Fatalf("reference: %v", err)
	}
	if _, err := s.trigger(); err != nil {
		t.Fatalf("reference: %v", err)
	}
	return s.allAggregations(t)
}

// webhookLog is a webhook receiver that records every request's webhook-id
// and body and answers 200.
type webhookLog struct {
	mu    sync.Mutex
	got   map[string][][]byte
	total int
}

func newWebhookLog(t *testing.T) (*webhookLog, string) {
	h := &webhookLog{got: map[string][][]byte{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		id := r.Header.Get("webhook-id")
		h.got[id] = append(h.got[id], body)
		h.total++
		h.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return h, srv.URL + "/hooks"
}

// webhookBody is one webhook as the receiver decoded it.
type webhookBody struct {
	Type       string `json:"type"`
	CustomerID string `json:"customerId"`
	Period     string `json:"period"`
	Data       struct {
		PeriodKey   string             `json:"periodKey"`
		Revision    int                `json:"revision"`
		Events      map[string]float64 `json:"events"`
		EventCounts map[string]int64   `json:"eventCounts"`
	} `json:"data"`
}

func (r *webhookBody) key() string { return r.CustomerID + " " + r.Period + " " + r.Data.PeriodKey }

// TestReplicas: two replicas on one PostgreSQL schema, both aggregating
// every second and sending webhooks, take 100,000 events through both at
// once while both are triggered at once, wave after wave. The
// aggregations must be those of one SQLite process given the same events;
// every completed period notified exactly once (one webhook-id; a repeat
// of that id is allowed), and each later revision once; every delivery
// delivered.
func TestReplicas(t *testing.T) {
	db := replicaSchema(t)
	const (
		events    = 100_000
		customers = 10
		waves     = 10
	)
	hooks, hookURL := newWebhookLog(t)
	config := replicaConfig(t, hookURL)
	a := startReplica(t, withURLParam(t, db, "application_name", "odometer-a"), config, time.Second)
	b := startReplica(t, withURLParam(t, db, "application_name", "odometer-b"), config, time.Second)
	replicas := []*server{a, b}

	// The three whole days before today: every hour and day is complete,
	// and the week, month and year of today are not.
	today := time.Now().UTC().Truncate(24 * time.Hour)
	bodies := replicaBatches(t, events, customers, today.AddDate(0, 0, -3), today, "rep")

	// The events go in waves, batches alternating between the replicas;
	// both replicas are triggered at once as each wave starts. A run
	// lasts until it has caught up with the ingest, so each wave ends
	// with one replica's run, and the next wave's lock goes to whichever
	// replica takes it first: the triggers, or either scheduler.
	start := time.Now()
	var triggered []triggerAnswer
	found := make([]int, len(replicas)) // triggers that found events, by replica
	for w := range waves {
		answers := make(chan []triggerAnswer, 1)
		go func() { answers <- triggerAll(t, replicas) }()
		err := postBatches(t, replicas, bodies[w*len(bodies)/waves:(w+1)*len(bodies)/waves], 8)
		as := <-answers
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range as {
			if r.EventsProcessed > 0 {
				found[i]++
			}
		}
		triggered = append(triggered, as...)
	}
	ingested := time.Since(start)

	// Idle: both find nothing to do, nothing is left to fold and no
	// delivery is pending.
	rounds := 0
	for deadline := time.Now().Add(60 * time.Second); ; rounds++ {
		if time.Now().After(deadline) {
			t.Fatalf("replicas not idle after 60 s; replica a:\n%s\nreplica b:\n%s", a.Output(), b.Output())
		}
		idle := true
		for _, r := range triggerAll(t, replicas) {
			idle = idle && r.idle()
		}
		if idle && a.metric(t, "odometer_aggregation_backlog_events") == 0 && len(b.allDeliveries(t, "pending")) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	settled := time.Since(start)

	got := a.allAggregations(t)
	if fromB := b.allAggregations(t); !reflect.DeepEqual(got, fromB) {
		t.Errorf("the replicas show different aggregations: %d on a, %d on b", len(got), len(fromB))
	}
	want := sqliteReference(t, bodies)
	wrong := compareAggregations(t, got, want, false)

	// Deliveries: every one delivered, its webhook-id received. The first
	// problems are shown, the others counted.
	problems := 0
	fail := func(format string, args ...any) {
		t.Helper()
		if problems++; problems <= 20 {
			t.Errorf(format, args...)
		}
	}
	deliveries := a.allDeliveries(t, "")
	hooks.mu.Lock()
	byID := maps.Clone(hooks.got)
	requests := hooks.total
	hooks.mu.Unlock()
	seen := map[string]bool{}
	for _, d := range deliveries {
		if seen[d.ID] {
			fail("GET /deliveries returned %s twice", d.ID)
		}
		seen[d.ID] = true
		if d.Status != odometer.DeliveryDelivered {
			fail("delivery %s of %s: status %s after %d attempts, want delivered", d.ID, d.AggregationID, d.Status, d.Attempts)
		}
		if len(byID[d.ID]) == 0 {
			fail("delivery %s of %s revision %d is %s but its webhook-id was never received", d.ID, d.AggregationID, d.Revision, d.Status)
		}
	}

	// Webhooks by period: one aggregation.completed, then one
	// aggregation.updated per revision; repeats of one webhook-id carry
	// the same body.
	completed := map[string][]*webhookBody{}
	updated := map[string]map[int][]*webhookBody{}
	repeated := 0
	for id, bodies := range byID {
		if !seen[id] {
			fail("webhook-id %q received but not a delivery", id)
		}
		if len(bodies) > 1 {
			repeated++
		}
		for _, body := range bodies[1:] {
			if string(body) != string(bodies[0]) {
				fail("webhook-id %s received with two bodies:\n%s\n%s", id, bodies[0], body)
			}
		}
		r := &webhookBody{}
		if err := json.Unmarshal(bodies[0], r); err != nil {
			t.Fatalf("webhook %s: %v: %s", id, err, bodies[0])
		}
		switch r.Type {
		case odometer.AggregationCompleted:
			completed[r.key()] = append(completed[r.key()], r)
		case odometer.AggregationUpdated:
			if updated[r.key()] == nil {
				updated[r.key()] = map[int][]*webhookBody{}
			}
			updated[r.key()][r.Data.Revision] = append(updated[r.key()][r.Data.Revision], r)
		default:
			fail("webhook %s has the type %q", id, r.Type)
		}
	}
	complete, revised, revisions := 0, 0, 0
	for _, ag := range got {
		k := ag.key()
		if !ag.Complete {
			if len(completed[k])+len(updated[k]) > 0 {
				fail("%s is not complete but was notified", k)
			}
			continue
		}
		complete++
		if ag.Revision > 1 {
			revised++
			revisions += ag.Revision - 1
		}
		if got := len(completed[k]); got != 1 {
			fail("%s: aggregation.completed received under %d webhook-ids, want 1", k, got)
			continue
		}
		last := completed[k][0]
		for rev := 2; rev <= ag.Revision; rev++ {
			if got := len(updated[k][rev]); got != 1 {
				fail("%s: aggregation.updated of revision %d received under %d webhook-ids, want 1", k, rev, got)
				continue
			}
			last = updated[k][rev][0]
		}
		for rev := range updated[k] {
			if rev < 2 || rev > ag.Revision {
				fail("%s: aggregation.updated of revision %d received; the aggregation is at revision %d", k, rev, ag.Revision)
			}
		}
		if !reflect.DeepEqual(last.Data.Events, ag.Events) || !reflect.DeepEqual(last.Data.EventCounts, ag.EventCounts) {
			fail("%s: the last webhook (%s, revision %d) says %v %v; the aggregation is %v %v",
				k, last.Type, ag.Revision, last.Data.Events, last.Data.EventCounts, ag.Events, ag.EventCounts)
		}
	}
	periods := map[string]bool{}
	for _, ag := range got {
		periods[ag.key()] = true
	}
	for k := range completed {
		if !periods[k] {
			fail("aggregation.completed received for %s, which GET /aggregations does not have", k)
		}
	}
	if problems > 20 {
		t.Errorf("%d problems with deliveries and webhooks in all", problems)
	}
	if complete == 0 {
		t.Errorf("no complete aggregation: the test checks no webhook")
	}
	// Runs that did work, by replica: triggered, and scheduled (from
	// their logs).
	worked := func(s *server) int { return strings.Count(s.Output(), `"msg":"aggregated"`) }
	report(t, "replicas: %d events in %d batches through 2 replicas in %d waves in %.1f s (%.0f events/s), idle after %.1f s (%d idle checks); "+
		"runs that folded events: triggered %d on a and %d on b (of %d), scheduled %d on a and %d on b; "+
		"%d aggregations (%d complete, %d revised, %d revisions), %d differ from SQLite; "+
		"%d deliveries, %d webhook requests, %d webhook-ids received more than once",
		events, len(bodies), waves, ingested.Seconds(), float64(events)/ingested.Seconds(), settled.Seconds(), rounds,
		found[0], found[1], len(triggered), worked(a), worked(b),
		len(got), complete, revised, revisions, wrong,
		len(deliveries), requests, repeated)
}

// pgObserver is a connection of the test's own to the replicas' schema,
// to watch the aggregation's progress and locks.
type pgObserver struct {
	t    *testing.T
	conn *pgx.Conn
}

func newPGObserver(t *testing.T, db string) *pgObserver {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &pgObserver{t, conn}
}

// runState reads the aggregation progress that the store keeps: the
// watermark, and the pass in progress (its last seq, and the last
// customer folded).
func (o *pgObserver) runState() (watermark, to int64, after string) {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.conn.QueryRow(ctx, `SELECT watermark, run_to, run_after FROM meta`).Scan(&watermark, &to, &after); err != nil {
		o.t.Fatal(err)
	}
	return watermark, to, after
}

// holdsAdvisoryLock reports whether a session with the application name
// holds an advisory lock. After ingest it can only be the aggregation's.
func (o *pgObserver) holdsAdvisoryLock(app string) bool {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var held bool
	err := o.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1)`, app).Scan(&held)
	if err != nil {
		o.t.Fatal(err)
	}
	return held
}

// TestReplicaKilledMidRun: three replicas on one schema, their schedulers
// at an hour so that the test decides who aggregates. Replica a is
// triggered and killed with SIGKILL 200 ms after it takes the aggregation
// lock, before it commits anything; replica b is triggered and killed
// once it has committed part of its run; replica c must then finish the
// work within takeoverBound, and the aggregations must be those of one
// SQLite process given the same events.
func TestReplicaKilledMidRun(t *testing.T) {
	db := replicaSchema(t)
	const (
		events        = 500_000
		customers     = 12
		takeoverBound = 30 * time.Second
	)
	schema := ""
	if u, err := url.Parse(db); err == nil {
		schema = u.Query().Get("search_path")
	}
	config := replicaConfig(t)
	names := []string{"a", "b", "c"}
	replicas := map[string]*server{}
	apps := map[string]string{}
	for _, n := range names {
		apps[n] = "odometer-" + n + "-" + schema
		replicas[n] = startReplica(t, withURLParam(t, db, "application_name", apps[n]), config, time.Hour)
	}

	obs := newPGObserver(t, db)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	bodies := replicaBatches(t, events, customers, today.AddDate(0, 0, -3), today, "kill")
	start := time.Now()
	if err := postBatches(t, []*server{replicas["a"], replicas["b"], replicas["c"]}, bodies, 8); err != nil {
		t.Fatal(err)
	}
	ingested := time.Since(start)

	// kill triggers the replica, waits until ready says so and kills it
	// with SIGKILL, and reports the progress stored at the kill.
	kill := func(name string, ready func() bool) string {
		s := replicas[name]
		answered := make(chan error, 1)
		go func() {
			_, err := s.trigger()
			answered <- err
		}()
		deadline := time.Now().Add(60 * time.Second)
		for !ready() {
			select {
			case err := <-answered:
				t.Fatalf("replica %s finished its run (%v) before the kill: raise the event count", name, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %s: not ready to be killed after 60 s; its output:\n%s", name, s.Output())
			}
			time.Sleep(10 * time.Millisecond)
		}
		s.Kill()
		if err := <-answered; err == nil {
			t.Fatalf("replica %s finished its run just before the kill: raise the event count", name)
		}
		w, to, after := obs.runState()
		return fmt.Sprintf("watermark %d, pass to %d, after customer %q", w, to, after)
	}

	var lockedAt time.Time
	atA := kill("a", func() bool {
		if lockedAt.IsZero() && obs.holdsAdvisoryLock(apps["a"]) {
			lockedAt = time.Now()
		}
		return !lockedAt.IsZero() && time.Since(lockedAt) >= 200*time.Millisecond
	})
	_, _, afterA := obs.runState()
	atB := kill("b", func() bool {
		_, _, after := obs.runState()
		return after != afterA
	})
	killed := time.Now()
	res, err := replicas["c"].trigger()
	if err != nil {
		t.Fatalf("replica c: %v; its output:\n%s", err, replicas["c"].Output())
	}
	took := time.Since(killed)
	if got := replicas["c"].metric(t, "odometer_aggregation_backlog_events"); got != 0 {
		t.Errorf("backlog after replica c's run: %v events, want 0", got)
	}
	if took > takeoverBound {
		t.Errorf("replica c finished %v after the kill, want within %v", took, takeoverBound)
	}
	if res.EventsProcessed == 0 || res.EventsProcessed >= events {
		t.Errorf("replica c folded %d events, want some but not all %d: b's committed progress is lost or b had finished", res.EventsProcessed, events)
	}
	if again, err := replicas["c"].trigger(); err != nil || !again.idle() {
		t.Errorf("a second run after c's: %+v, %v; want nothing to do", again, err)
	}

	got := replicas["c"].allAggregations(t)
	want := sqliteReference(t, bodies)
	wrong := compareAggregations(t, got, want, true)
	report(t, "replica killed mid-run: %d events through 3 replicas in %.1f s; a killed 200 ms into its run (%s); "+
		"b killed after a commit (%s); c folded the remaining %d events (%.0f events/s) and finished %.2f s after the kill (bound %v); "+
		"%d aggregations, %d differ from SQLite",
		events, ingested.Seconds(), atA, atB, res.EventsProcessed, float64(res.EventsProcessed)/took.Seconds(), took.Seconds(), takeoverBound, len(got), wrong)
}
