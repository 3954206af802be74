package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
	"github.com/odometer-dev/odometer/sqlite"
)

// simClock is the injected clock of the outage tests.
type simClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *simClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// receiver is a webhook endpoint on a loopback port that can go down and
// come back on the same port. It records the webhook-id and body of every
// request, and answers 200 unless hold says to wait first.
type receiver struct {
	URL  string
	addr string

	mu    sync.Mutex
	srv   *http.Server
	got   map[string][][]byte // bodies by webhook-id
	total int
	// hold, when set, is waited on before each answer.
	hold chan struct{}
	// first is closed when the first request arrives.
	first     chan struct{}
	firstOnce sync.Once
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{addr: ln.Addr().String(), got: map[string][][]byte{}, first: make(chan struct{})}
	rc.URL = "http://" + rc.addr + "/hooks"
	rc.serve(ln)
	t.Cleanup(rc.Stop)
	return rc
}

func (rc *receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
	rc.mu.Lock()
	rc.srv = srv
	rc.mu.Unlock()
	go srv.Serve(ln)
}

// Stop takes the receiver down: connections to its port are refused.
func (rc *receiver) Stop() {
	rc.mu.Lock()
	srv := rc.srv
	rc.srv = nil
	rc.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Start brings the receiver back on its port.
func (rc *receiver) Start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", rc.addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", rc.addr, err)
	}
	rc.serve(ln)
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.firstOnce.Do(func() { close(rc.first) })
	rc.mu.Lock()
	id := r.Header.Get("webhook-id")
	rc.got[id] = append(rc.got[id], body)
	rc.total++
	hold := rc.hold
	rc.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-time.After(10 * time.Second):
		}
	}
	w.WriteHeader(http.StatusOK)
}

// count returns how many requests the receiver got.
func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.total
}

// received returns the bodies received with this webhook-id.
func (rc *receiver) received(id string) [][]byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.got[id]
}

// outageEnv is a real SQLite store with the aggregator and the
// dispatcher over it, on an injected clock.
type outageEnv struct {
	store  *sqlite.Store
	cfg    *odometer.Config
	clock  *simClock
	agg    *odometer.Aggregator
	disp   *odometer.Dispatcher
	sender *odohttp.Sender
}

func newOutageEnv(t *testing.T, start time.Time, receivers ...*receiver) *outageEnv {
	t.Helper()
	var hooks []map[string]any
	for _, rc := range receivers {
		hooks = append(hooks, map[string]any{"url": rc.URL, "secret": odometer.NewWebhookSecret(), "enabled": true})
	}
	b, _ := json.Marshal(map[string]any{
		"periods":  []string{"hourly", "daily"},
		"events":   map[string]any{"api.calls": map[string]string{"op": "sum"}},
		"webhooks": hooks,
	})
	cfg, err := odometer.ParseConfig("outage", b)
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "odometer.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	env := &outageEnv{store: store, cfg: cfg, clock: &simClock{now: start}}
	current := func() *odometer.Config { return cfg }
	env.agg = &odometer.Aggregator{Store: store, Config: current, Now: env.clock.Now}
	env.sender = odohttp.NewSender(true) // the receivers are on loopback
	t.Cleanup(env.sender.Close)
	env.disp = &odometer.Dispatcher{Store: store, Sender: env.sender, Config: current, Now: env.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Jitter: func() float64 { return 0 }}
	return env
}

// ingest stores one event for each customer, a minute before now.
func (env *outageEnv) ingest(t *testing.T, customers []string, n int) {
	t.Helper()
	now := env.clock.Now()
	var events []odometer.Event
	for _, c := range customers {
		events = append(events, odometer.Event{ID: fmt.Sprintf("out-%s-%05d", c, n), ClientID: true, EventType: "api.calls",
			CustomerID: c, Value: 1, Time: now.Add(-time.Minute), TimeGiven: true, ReceivedAt: now})
	}
	if _, err := env.store.CreateEvents(context.Background(), events); err != nil {
		t.Fatal(err)
	}
}

// step aggregates and dispatches at the clock's time.
func (env *outageEnv) step(t *testing.T) {
	t.Helper()
	if _, err := env.agg.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := env.disp.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// deliveries returns every delivery, by endpoint.
func (env *outageEnv) deliveries(t *testing.T) map[string][]*odometer.Delivery {
	t.Helper()
	out := map[string][]*odometer.Delivery{}
	f := odometer.DeliveryFilter{Limit: 1000}
	for {
		ds, next, err := env.store.FindDeliveries(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			out[d.Endpoint] = append(out[d.Endpoint], d)
		}
		if next == "" || len(ds) == 0 {
			return out
		}
		f.Cursor = next
	}
}

// completed returns the id of every completed aggregation.
func (env *outageEnv) completed(t *testing.T) []string {
	t.Helper()
	yes := true
	f := odometer.AggregationFilter{Complete: &yes, Limit: 1000}
	var ids []string
	for {
		aggs, next, err := env.store.FindAggregations(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range aggs {
			ids = append(ids, a.ID())
		}
		if next == "" || len(aggs) == 0 {
			return ids
		}
		f.Cursor = next
	}
}

// TestReceiverOutage: one webhook receiver is down for 80 simulated
// hours while events keep coming and periods keep completing; another is
// up all along. Once the first comes back, every completed period reaches
// it: by the retry schedule when its deliveries are still pending, or by
// POST /deliveries/{id}/retry when the schedule (about 75 hours) ran out
// and they failed. None is dropped; the healthy receiver is served on
// time throughout.
func TestReceiverOutage(t *testing.T) {
	down, up := newReceiver(t), newReceiver(t)
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	env := newOutageEnv(t, start, down, up)
	customers := []string{"cust_a", "cust_b", "cust_c"}
	const step = 15 * time.Minute
	const outage = 80 * time.Hour

	down.Stop()
	n := 0
	for env.clock.Now().Before(start.Add(outage)) {
		env.ingest(t, customers, n)
		n++
		env.step(t)
		env.clock.Advance(step)
	}
	if got := down.count(); got != 0 {
		t.Fatalf("the receiver that is down got %d requests", got)
	}
	failedInOutage, pendingAtReturn := 0, 0
	for _, d := range env.deliveries(t)[down.URL] {
		switch d.Status {
		case odometer.DeliveryFailed:
			failedInOutage++
		case odometer.DeliveryPending:
			pendingAtReturn++
		default:
			t.Errorf("delivery %s to the receiver that is down: status %s", d.ID, d.Status)
		}
	}
	if failedInOutage == 0 {
		t.Errorf("no delivery failed in an outage longer than the retry schedule")
	}

	// The receiver comes back; no new events. A day and a bit lets every
	// pending delivery reach its next try, 24 hours at most.
	down.Start(t)
	for end := env.clock.Now().Add(26 * time.Hour); env.clock.Now().Before(end); env.clock.Advance(step) {
		env.step(t)
	}

	// The failed deliveries are retried over the API, as an operator
	// would, and go out at the next dispatch.
	const adminKey = "odo_test_outage_admin_key"
	h := odometer.HashKey(adminKey)
	api := &odohttp.Server{Events: env.store, Keys: env.store, Aggs: env.store, Deliveries: env.store,
		Aggregator: env.agg, Config: func() *odometer.Config { return env.cfg }, Now: env.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AdminKeyHash: &h, Ready: env.store.Ping}
	hs := httptest.NewServer(api.Handler())
	defer hs.Close()
	retried := 0
	for _, d := range env.deliveries(t)[down.URL] {
		if d.Status != odometer.DeliveryFailed {
			continue
		}
		req, _ := http.NewRequest("POST", hs.URL+"/deliveries/"+d.ID+"/retry", nil)
		req.Header.Set("x-apikey", adminKey)
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /deliveries/%s/retry: status %d, want 202", d.ID, resp.StatusCode)
		}
		retried++
	}
	env.step(t)

	// Every completed period reached both receivers, each exactly once
	// by delivery, with the body recorded for it.
	completed := env.completed(t)
	byEndpoint := env.deliveries(t)
	lost, duplicated, firstTry := 0, 0, 0
	for _, rc := range []*receiver{down, up} {
		byAgg := map[string]*odometer.Delivery{}
		for _, d := range byEndpoint[rc.URL] {
			if d.Type != "aggregation.completed" {
				continue
			}
			if prev := byAgg[d.AggregationID]; prev != nil {
				t.Errorf("two aggregation.completed deliveries of %s to %s: %s and %s", d.AggregationID, rc.URL, prev.ID, d.ID)
			}
			byAgg[d.AggregationID] = d
		}
		for _, id := range completed {
			d := byAgg[id]
			if d == nil {
				lost++
				t.Errorf("completed period %s has no delivery to %s", id, rc.URL)
				continue
			}
			bodies := rc.received(d.ID)
			switch {
			case d.Status != odometer.DeliveryDelivered:
				lost++
				t.Errorf("delivery %s of %s to %s: status %s after %d tries (%s)", d.ID, id, rc.URL, d.Status, d.Attempts, d.LastError)
			case len(bodies) == 0:
				lost++
				t.Errorf("delivery %s of %s is marked delivered but %s never got it", d.ID, id, rc.URL)
			case string(bodies[0]) != string(d.Payload):
				t.Errorf("delivery %s: the receiver got %s, want %s", d.ID, bodies[0], d.Payload)
			}
			if len(bodies) > 1 {
				duplicated += len(bodies) - 1
			}
			if rc == up && d.Attempts == 1 {
				firstTry++
			}
		}
	}
	if got, want := firstTry, len(completed); got != want {
		t.Errorf("the receiver that stayed up got %d of %d periods on the first try", got, want)
	}
	if len(completed) < 200 {
		t.Errorf("only %d completed periods", len(completed))
	}
	report(t, "receiver outage: %v down, %d events; periods completed %d; to the receiver that was down: failed during the outage %d "+
		"(retried over the API %d), pending at its return %d; to the one that stayed up: %d on the first try; lost %d; duplicated %d",
		outage, n*len(customers), len(completed), failedInOutage, retried, pendingAtReturn, firstTry, lost, duplicated)
	if lost != 0 || duplicated != 0 {
		t.Fatalf("lost %d, duplicated %d: want 0 each", lost, duplicated)
	}
}

// TestSlowReceiver: a receiver that holds every request does not hold
// back another endpoint: with many periods due to both, the fast one gets
// all of its deliveries while the slow one still has not answered its
// first.
func TestSlowReceiver(t *testing.T) {
	slow, fast := newReceiver(t), newReceiver(t)
	release := make(chan struct{})
	slow.hold = release
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	env := newOutageEnv(t, start, slow, fast)
	customers := []string{"cust_a", "cust_b", "cust_c", "cust_d"}
	for i := range 24 {
		env.ingest(t, customers, i)
		env.clock.Advance(time.Hour)
	}
	if _, err := env.agg.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	done := make(chan int)
	go func() {
		n, err := env.disp.RunOnce(context.Background())
		if err != nil {
			t.Error(err)
		}
		done <- n
	}()
	select {
	case <-slow.first:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow receiver got no request within 10 s")
	}
	// While the slow receiver holds its requests, the fast one gets all.
	deadline := time.Now().Add(10 * time.Second)
	var fastDelivered, fastTotal int
	for {
		fastDelivered, fastTotal = 0, 0
		for _, d := range env.deliveries(t)[fast.URL] {
			fastTotal++
			if d.Status == odometer.DeliveryDelivered {
				fastDelivered++
			}
		}
		if fastTotal > 0 && fastDelivered == fastTotal {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fast receiver has %d of %d deliveries after 10 s while the slow one holds its requests", fastDelivered, fastTotal)
		}
		time.Sleep(10 * time.Millisecond)
	}
	slowAnswered := 0
	for _, d := range env.deliveries(t)[slow.URL] {
		if d.Status == odometer.DeliveryDelivered {
			slowAnswered++
		}
	}
	if slowAnswered != 0 {
		t.Fatalf("%d slow deliveries recorded before the slow receiver answered", slowAnswered)
	}
	close(release)
	tries := <-done
	slowDelivered := 0
	for _, d := range env.deliveries(t)[slow.URL] {
		if d.Status == odometer.DeliveryDelivered {
			slowDelivered++
		}
	}
	if slowDelivered != fastTotal {
		t.Errorf("the slow receiver has %d deliveries once released, want %d", slowDelivered, fastTotal)
	}
	report(t, "slow receiver: %d periods due to each endpoint; the fast one got all %d while the slow one held its first; "+
		"then the slow one got %d; %d tries in all", fastTotal, fastDelivered, slowDelivered, tries)
}
