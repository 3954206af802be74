package odometer_test

// End-to-end tests of webhook delivery: events go into a real store, the
// real aggregator completes their periods and records the deliveries, and
// the real dispatcher and HTTP sender post them to a real receiver on a
// loopback port. Retry waits are crossed by moving the injected clock,
// never by sleeping.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/goleak"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
	"github.com/odometer-dev/odometer/sqlite"
	"github.com/odometer-dev/odometer/storetest"
)

// The events of these tests fall on deliveryDay; afterDay is just after
// its end, when the daily period is complete.
var (
	deliveryDay = time.Date(2026, 1, 13, 0, 0, 0, 0, time.UTC)
	afterDay    = time.Date(2026, 1, 14, 0, 5, 0, 0, time.UTC)
)

// webhookClock is the injected clock of the aggregator and dispatcher.
type webhookClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *webhookClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *webhookClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *webhookClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// hookRequest is one request a receiver got.
type hookRequest struct {
	Path      string
	Header    http.Header
	Body      []byte
	ID        string
	Timestamp int64
	// Err says why a check of the signatures or headers failed.
	Err error
}

// hookReceiver is a webhook endpoint on a real loopback port. It checks
// the template signature with its own code and the Standard Webhooks
// signature with the reference library, and answers as answer says
// (200 by default). Every request must pass the checks.
type hookReceiver struct {
	URL    string
	Secret string

	std  *standardwebhooks.Webhook
	addr string

	mu     sync.Mutex
	srv    *httptest.Server
	reqs   []hookRequest
	answer func(n int, w http.ResponseWriter, r *http.Request)
	// got receives each request, when set, after it is recorded.
	got chan hookRequest
}

// newHookReceiver starts a receiver. A secret starting with whsec_ is
// base64, as Standard Webhooks secrets are; any other is a template
// secret, used as the key as written. "" is a fresh whsec_ secret.
func newHookReceiver(tb testing.TB, secret string) *hookReceiver {
	tb.Helper()
	if secret == "" {
		secret = odometer.NewWebhookSecret()
	}
	rc := &hookReceiver{Secret: secret}
	var err error
	if strings.HasPrefix(secret, "whsec_") {
		rc.std, err = standardwebhooks.NewWebhook(secret)
	} else {
		rc.std, err = standardwebhooks.NewWebhookRaw([]byte(secret))
	}
	if err != nil {
		tb.Fatal(err)
	}
	rc.srv = httptest.NewServer(rc)
	rc.URL = rc.srv.URL + "/hooks"
	rc.addr = rc.srv.Listener.Addr().String()
	tb.Cleanup(func() {
		rc.Stop()
		for i, r := range rc.requests() {
			if r.Err != nil {
				tb.Errorf("request %d to %s: %v", i+1, rc.URL, r.Err)
			}
		}
	})
	return rc
}

// Stop takes the receiver down: nothing listens on its port.
func (rc *hookReceiver) Stop() {
	rc.mu.Lock()
	srv := rc.srv
	rc.srv = nil
	rc.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Start brings a stopped receiver up again on the same address.
func (rc *hookReceiver) Start(tb testing.TB) {
	tb.Helper()
	ln, err := net.Listen("tcp", rc.addr)
	if err != nil {
		tb.Fatalf("listen again on %s: %v", rc.addr, err)
	}
	srv := httptest.NewUnstartedServer(rc)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	rc.mu.Lock()
	rc.srv = srv
	rc.mu.Unlock()
}

func (rc *hookReceiver) requests() []hookRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.reqs)
}

func (rc *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	req := hookRequest{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, ID: r.Header.Get("webhook-id")}
	if err == nil {
		req.Timestamp, err = rc.verify(r.Header, body)
	}
	req.Err = err
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, req)
	n, answer, got := len(rc.reqs), rc.answer, rc.got
	rc.mu.Unlock()
	if got != nil {
		got <- req
	}
	if answer != nil {
		answer(n, w, r)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// verify checks both signatures of a request and returns its timestamp.
// The template one is checked here, from the contract's words; the
// Standard Webhooks one by the reference library. The timestamp is the
// dispatcher's injected clock, so the library's five-minute window
// (which reads the real clock) is left to the tests that move the clock.
func (rc *hookReceiver) verify(h http.Header, body []byte) (int64, error) {
	if got, want := h.Get("Content-Type"), "application/json"; got != want {
		return 0, fmt.Errorf("Content-Type %q, want %q", got, want)
	}
	ts := h.Get("X-Webhook-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("X-Webhook-Timestamp %q is not unix seconds", ts)
	}
	sig, ok := strings.CutPrefix(h.Get("X-Webhook-Signature"), "v1=")
	if !ok {
		return 0, fmt.Errorf("X-Webhook-Signature %q lacks v1=", h.Get("X-Webhook-Signature"))
	}
	got, err := hex.DecodeString(sig)
	if err != nil || strings.ToLower(sig) != sig {
		return 0, fmt.Errorf("X-Webhook-Signature %q is not lowercase hex", sig)
	}
	mac := hmac.New(sha256.New, []byte(rc.Secret))
	io.WriteString(mac, ts+".")
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return 0, errors.New("X-Webhook-Signature does not match")
	}
	if h.Get("webhook-timestamp") != ts {
		return 0, fmt.Errorf("webhook-timestamp %q differs from X-Webhook-Timestamp %q", h.Get("webhook-timestamp"), ts)
	}
	if !strings.HasPrefix(h.Get("webhook-id"), "msg_") {
		return 0, fmt.Errorf("webhook-id %q", h.Get("webhook-id"))
	}
	if err := rc.std.VerifyIgnoringTimestamp(body, h); err != nil {
		return 0, fmt.Errorf("standard webhooks: %w", err)
	}
	return sec, nil
}

// hookLogs collects what the dispatcher logs.
type hookLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *hookLogs) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

func (l *hookLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// deliveryEnv is a store with the aggregator and the dispatcher over it.
type deliveryEnv struct {
	Store      odometer.Store
	Config     *odometer.Config
	Clock      *webhookClock
	Aggregator *odometer.Aggregator
	Dispatcher *odometer.Dispatcher
	Sender     *odohttp.Sender
	Logs       *hookLogs
}

// newDeliveryEnv configures the given periods and one webhook per
// receiver, with the clock at afterDay and no jitter.
func newDeliveryEnv(tb testing.TB, store odometer.Store, periods []string, hooks ...*hookReceiver) *deliveryEnv {
	tb.Helper()
	type webhook struct {
		URL     string `json:"url"`
		Secret  string `json:"secret"`
		Enabled bool   `json:"enabled"`
	}
	var whs []webhook
	for _, h := range hooks {
		whs = append(whs, webhook{h.URL, h.Secret, true})
	}
	b, _ := json.Marshal(map[string]any{
		"periods": periods,
		"events": map[string]any{
			"api.calls":        map[string]string{"op": "sum"},
			"storage.bytes":    map[string]string{"op": "max"},
			"response.time.ms": map[string]string{"op": "avg"},
		},
		"webhooks": whs,
	})
	cfg, err := odometer.ParseConfig("test", b)
	if err != nil {
		tb.Fatal(err)
	}
	env := &deliveryEnv{Store: store, Config: cfg, Clock: &webhookClock{now: afterDay}, Logs: &hookLogs{}}
	current := func() *odometer.Config { return cfg }
	env.Aggregator = &odometer.Aggregator{Store: store, Config: current, Now: env.Clock.Now}
	// The receivers are on loopback: allow private targets.
	env.Sender = odohttp.NewSender(true)
	tb.Cleanup(env.Sender.Close)
	env.Dispatcher = &odometer.Dispatcher{Store: store, Sender: env.Sender, Config: current, Now: env.Clock.Now,
		Logger: slog.New(slog.NewTextHandler(env.Logs, nil)), Jitter: func() float64 { return 0 }}
	return env
}

// ingest stores one event of customer at the given event time.
func (env *deliveryEnv) ingest(tb testing.TB, customer, eventType string, value float64, at time.Time) {
	tb.Helper()
	e := odometer.Event{ID: odometer.NewID("evt_"), EventType: eventType, CustomerID: customer, Value: value,
		Time: at, TimeGiven: true, ReceivedAt: env.Clock.Now()}
	if _, err := env.Store.CreateEvents(context.Background(), []odometer.Event{e}); err != nil {
		tb.Fatal(err)
	}
}

// ingestDay stores the usage whose daily aggregation custADaily shows.
func (env *deliveryEnv) ingestDay(tb testing.TB, customer string) {
	tb.Helper()
	at := func(m int) time.Time { return deliveryDay.Add(10*time.Hour + time.Duration(m)*time.Minute) }
	env.ingest(tb, customer, "api.calls", 10, at(0))
	env.ingest(tb, customer, "api.calls", 15, at(1))
	env.ingest(tb, customer, "storage.bytes", 1000, at(2))
	env.ingest(tb, customer, "storage.bytes", 2500, at(3))
	env.ingest(tb, customer, "response.time.ms", 100, at(4))
	env.ingest(tb, customer, "response.time.ms", 200, at(5))
}

// dayPayload is the aggregation.completed body of ingestDay's usage, as
// SPEC.md shapes it, aggregated and completed at the instant at.
func dayPayload(customer string, at time.Time) string {
	return fmt.Sprintf(`{"type": "aggregation.completed", "customerId": %q, "period": "daily",
		"data": {"periodStart": "2026-01-13T00:00:00.000Z", "periodEnd": "2026-01-13T23:59:59.999Z", "periodKey": "20260113",
			"timestamp": %q,
			"events": {"api.calls": 25, "storage.bytes": 2500, "response.time.ms": 150},
			"eventCounts": {"api.calls": 2, "storage.bytes": 2, "response.time.ms": 2}},
		"created": %d}`, customer, odometer.FormatTime(at), at.Unix())
}

// checkPayload fails unless body is the JSON want, no field more or less.
func checkPayload(tb testing.TB, body []byte, want string) {
	tb.Helper()
	var got, exp any
	if err := json.Unmarshal(body, &got); err != nil {
		tb.Fatalf("payload %s: %v", body, err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		tb.Fatalf("expected payload: %v", err)
	}
	if !reflect.DeepEqual(got, exp) {
		tb.Fatalf("payload\n  got  %s\n  want %s", body, want)
	}
}

func (env *deliveryEnv) aggregate(tb testing.TB) odometer.RunResult {
	tb.Helper()
	res, err := env.Aggregator.Run(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

// dispatch runs the dispatcher once and returns how many tries it made.
func (env *deliveryEnv) dispatch(tb testing.TB) int {
	tb.Helper()
	n, err := env.Dispatcher.RunOnce(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// mustDispatch runs the dispatcher once and fails unless it made want tries.
func (env *deliveryEnv) mustDispatch(tb testing.TB, want int) {
	tb.Helper()
	if got := env.dispatch(tb); got != want {
		tb.Fatalf("at %s: RunOnce made %d tries, want %d", env.Clock.Now().Format(time.RFC3339), got, want)
	}
}

// deliveries returns the deliveries to endpoint, oldest first.
func (env *deliveryEnv) deliveries(tb testing.TB, endpoint string) []*odometer.Delivery {
	tb.Helper()
	ds, _, err := env.Store.FindDeliveries(context.Background(), odometer.DeliveryFilter{Limit: 1000})
	if err != nil {
		tb.Fatal(err)
	}
	var out []*odometer.Delivery
	for _, d := range slices.Backward(ds) {
		if d.Endpoint == endpoint {
			out = append(out, d)
		}
	}
	return out
}

// only returns the one delivery to endpoint.
func (env *deliveryEnv) only(tb testing.TB, endpoint string) *odometer.Delivery {
	tb.Helper()
	ds := env.deliveries(tb, endpoint)
	if len(ds) != 1 {
		tb.Fatalf("%d deliveries to %s, want 1", len(ds), endpoint)
	}
	return ds[0]
}

// aggregation returns the aggregation with this id.
func (env *deliveryEnv) aggregation(tb testing.TB, id string) *odometer.Aggregation {
	tb.Helper()
	customer, period, _, ok := odometer.ParseAggregationID(id)
	if !ok {
		tb.Fatalf("bad aggregation id %q", id)
	}
	aggs, _, err := env.Store.FindAggregations(context.Background(), odometer.AggregationFilter{CustomerID: customer, Period: period, Limit: 1000})
	if err != nil {
		tb.Fatal(err)
	}
	for _, a := range aggs {
		if a.ID() == id {
			return a
		}
	}
	tb.Fatalf("no aggregation %s", id)
	return nil
}

func checkTime(tb testing.TB, name string, got *time.Time, want time.Time) {
	tb.Helper()
	if got == nil || !got.Equal(want) {
		tb.Fatalf("%s = %v, want %s", name, got, want.Format(time.RFC3339))
	}
}

func checkStatus(tb testing.TB, d *odometer.Delivery, status string, attempts int) {
	tb.Helper()
	if d.Status != status || d.Attempts != attempts {
		tb.Fatalf("delivery %s: status %s after %d tries, want %s after %d (lastError %q)", d.ID, d.Status, d.Attempts, status, attempts, d.LastError)
	}
}

const custADaily = "cust_a_daily_20260113"

// TestDelivery_RetriesUntilDelivered: an endpoint that answers 500 twice
// gets the delivery on the third try, at the scheduled times, with the
// same webhook-id and a fresh timestamp and signatures each time; the
// aggregation shows delivered once every endpoint has it.
func TestDelivery_RetriesUntilDelivered(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		flaky := newHookReceiver(t, "")
		flaky.answer = func(n int, w http.ResponseWriter, r *http.Request) {
			if n <= 2 {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusOK)
		}
		// A template-era secret: not base64, keyed as written.
		steady := newHookReceiver(t, "template-secret-123")
		env := newDeliveryEnv(t, open(t), []string{"daily"}, flaky, steady)
		env.Clock.Set(deliveryDay.Add(12 * time.Hour))
		env.ingestDay(t, "cust_a")
		env.Clock.Set(afterDay)
		if got, want := env.aggregate(t).PeriodsCompleted, 1; got != want {
			t.Fatalf("PeriodsCompleted = %d, want %d", got, want)
		}

		t0 := afterDay
		env.mustDispatch(t, 2)
		d := env.only(t, flaky.URL)
		checkStatus(t, d, odometer.DeliveryPending, 1)
		if got, want := d.LastStatus, 500; got != want {
			t.Fatalf("LastStatus = %d, want %d", got, want)
		}
		checkTime(t, "NextAttemptAt", d.NextAttemptAt, t0.Add(5*time.Second))
		checkStatus(t, env.only(t, steady.URL), odometer.DeliveryDelivered, 1)
		ws := env.aggregation(t, custADaily).Webhook
		if ws.Delivered || ws.Attempts != 1 || ws.LastError != "the endpoint answered 500" || ws.DeliveredAt != nil {
			t.Fatalf("webhookStatus after one endpoint failed = %+v, want undelivered, 1 attempt, the 500", ws)
		}
		checkTime(t, "webhookStatus.lastAttemptAt", ws.LastAttemptAt, t0)

		env.Clock.Advance(4 * time.Second)
		env.mustDispatch(t, 0) // not due yet
		t1 := env.Clock.Advance(time.Second)
		env.mustDispatch(t, 1)
		d = env.only(t, flaky.URL)
		checkStatus(t, d, odometer.DeliveryPending, 2)
		checkTime(t, "NextAttemptAt", d.NextAttemptAt, t1.Add(5*time.Minute))

		t2 := env.Clock.Advance(5 * time.Minute)
		env.mustDispatch(t, 1)
		d = env.only(t, flaky.URL)
		checkStatus(t, d, odometer.DeliveryDelivered, 3)
		checkTime(t, "DeliveredAt", d.DeliveredAt, t2)
		if d.NextAttemptAt != nil || d.LastError != "" {
			t.Fatalf("delivered: NextAttemptAt %v, LastError %q, want none", d.NextAttemptAt, d.LastError)
		}
		ws = env.aggregation(t, custADaily).Webhook
		if !ws.Delivered || ws.Attempts != 3 || ws.LastError != "" || ws.DryRun {
			t.Fatalf("webhookStatus = %+v, want delivered after 3 attempts", ws)
		}
		checkTime(t, "webhookStatus.deliveredAt", ws.DeliveredAt, t2)
		env.Clock.Advance(48 * time.Hour)
		env.mustDispatch(t, 0)

		reqs := flaky.requests()
		if got, want := len(reqs), 3; got != want {
			t.Fatalf("flaky endpoint got %d requests, want %d", got, want)
		}
		sigs := map[string]bool{}
		for i, r := range reqs {
			if r.ID != d.ID {
				t.Errorf("try %d: webhook-id %q, want %q on every try", i+1, r.ID, d.ID)
			}
			if got, want := r.Timestamp, []time.Time{t0, t1, t2}[i].Unix(); got != want {
				t.Errorf("try %d: timestamp %d, want %d", i+1, got, want)
			}
			sigs[r.Header.Get("webhook-signature")] = true
			sigs[r.Header.Get("X-Webhook-Signature")] = true
			if r.Path != "/hooks" {
				t.Errorf("try %d: path %q", i+1, r.Path)
			}
			checkPayload(t, r.Body, dayPayload("cust_a", afterDay))
		}
		if got, want := len(sigs), 6; got != want {
			t.Errorf("%d distinct signatures over 3 tries, want %d (fresh each try)", got, want)
		}
		other := steady.requests()
		if len(other) != 1 || other[0].ID == d.ID {
			t.Fatalf("steady endpoint: %d requests, want 1 with its own webhook-id", len(other))
		}
		checkPayload(t, other[0].Body, dayPayload("cust_a", afterDay))
	})
}

// TestDelivery_FailsAfterSchedule: an endpoint down for the whole
// schedule gets ten tries, one per step of RetrySchedule, and the
// delivery then fails; POST /deliveries/{id}/retry sends it once more.
func TestDelivery_FailsAfterSchedule(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		rc := newHookReceiver(t, "")
		rc.Stop()
		env := newDeliveryEnv(t, open(t), []string{"daily"}, rc)
		env.ingestDay(t, "cust_a")
		env.aggregate(t)

		for i, wait := range odometer.RetrySchedule {
			if i > 0 {
				env.Clock.Advance(wait - time.Second)
				env.mustDispatch(t, 0)
				env.Clock.Advance(time.Second)
			}
			env.mustDispatch(t, 1)
			d := env.only(t, rc.URL)
			if !strings.Contains(d.LastError, "request failed") || d.LastStatus != 0 {
				t.Fatalf("try %d: LastError %q, LastStatus %d, want a transport error", i+1, d.LastError, d.LastStatus)
			}
			checkTime(t, "LastAttemptAt", d.LastAttemptAt, env.Clock.Now())
			if i < len(odometer.RetrySchedule)-1 {
				checkStatus(t, d, odometer.DeliveryPending, i+1)
				checkTime(t, "NextAttemptAt", d.NextAttemptAt, env.Clock.Now().Add(odometer.RetrySchedule[i+1]))
			}
		}
		d := env.only(t, rc.URL)
		checkStatus(t, d, odometer.DeliveryFailed, 10)
		if d.NextAttemptAt != nil {
			t.Fatalf("failed delivery has NextAttemptAt %v", d.NextAttemptAt)
		}
		if got, want := env.Clock.Now().Sub(afterDay), 75*time.Hour+35*time.Minute+5*time.Second; got != want {
			t.Fatalf("the schedule spans %s, want %s", got, want)
		}
		ws := env.aggregation(t, custADaily).Webhook
		if ws.Delivered || ws.Attempts != 10 || ws.LastError != d.LastError {
			t.Fatalf("webhookStatus = %+v, want undelivered after 10 attempts with lastError %q", ws, d.LastError)
		}
		checkTime(t, "webhookStatus.lastAttemptAt", ws.LastAttemptAt, env.Clock.Now())
		env.Clock.Advance(7 * 24 * time.Hour)
		env.mustDispatch(t, 0)

		// The receiver is back; an operator retries over the API.
		rc.Start(t)
		kicked := 0
		const adminKey = "odo_test_admin_key"
		h := odometer.HashKey(adminKey)
		api := &odohttp.Server{Events: env.Store, Keys: env.Store, Aggs: env.Store, Deliveries: env.Store,
			Kick: func() { kicked++ }, Config: func() *odometer.Config { return env.Config }, Now: env.Clock.Now,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AdminKeyHash: &h, Ready: env.Store.Ping}
		srv := httptest.NewServer(api.Handler())
		defer srv.Close()
		call := func(method, path string) (int, []byte) {
			t.Helper()
			req, _ := http.NewRequest(method, srv.URL+path, nil)
			req.Header.Set("x-apikey", adminKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, b
		}
		status, body := call("GET", "/deliveries?status=failed")
		var listed []odometer.Delivery
		if err := json.Unmarshal(body, &listed); status != 200 || err != nil || len(listed) != 1 || listed[0].ID != d.ID {
			t.Fatalf("GET /deliveries?status=failed = %d %s, want the failed delivery", status, body)
		}
		status, body = call("POST", "/deliveries/"+d.ID+"/retry")
		var retried odometer.Delivery
		if err := json.Unmarshal(body, &retried); status != http.StatusAccepted || err != nil || retried.Status != odometer.DeliveryPending {
			t.Fatalf("POST retry = %d %s, want 202 and a pending delivery", status, body)
		}
		if kicked != 1 {
			t.Fatalf("the retry kicked the dispatcher %d times, want 1", kicked)
		}
		env.mustDispatch(t, 1)
		d = env.only(t, rc.URL)
		checkStatus(t, d, odometer.DeliveryDelivered, 11)
		if got := rc.requests(); len(got) != 1 || got[0].ID != d.ID {
			t.Fatalf("receiver got %d requests after the retry, want 1 with id %s", len(got), d.ID)
		}
		if ws := env.aggregation(t, custADaily).Webhook; !ws.Delivered || ws.Attempts != 11 || ws.LastError != "" {
			t.Fatalf("webhookStatus = %+v, want delivered after 11 attempts", ws)
		}
		if status, body = call("POST", "/deliveries/"+d.ID+"/retry"); status != http.StatusConflict {
			t.Fatalf("retry of a delivered delivery = %d %s, want 409", status, body)
		}
		if status, body = call("POST", "/deliveries/msg_nosuchdelivery/retry"); status != http.StatusNotFound {
			t.Fatalf("retry of an unknown delivery = %d %s, want 404", status, body)
		}
	})
}

// TestDelivery_Jitter: each wait but the first gets up to 10% more.
func TestDelivery_Jitter(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		rc := newHookReceiver(t, "")
		rc.answer = func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }
		env := newDeliveryEnv(t, open(t), []string{"daily"}, rc)
		env.Dispatcher.Jitter = func() float64 { return 0.5 }
		env.ingestDay(t, "cust_a")
		env.aggregate(t)
		env.mustDispatch(t, 1)
		checkTime(t, "NextAttemptAt", env.only(t, rc.URL).NextAttemptAt, afterDay.Add(5250*time.Millisecond))
		env.Clock.Advance(5 * time.Second)
		env.mustDispatch(t, 0)
		env.Clock.Advance(250 * time.Millisecond)
		env.mustDispatch(t, 1)
	})
}

// TestDelivery_RetryAfter: a Retry-After longer than the next wait
// delays the next try to it (at most a day); a shorter one does not
// bring it forward.
func TestDelivery_RetryAfter(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter string
		want       time.Duration
	}{
		{"Longer", "120", 120 * time.Second},
		{"Shorter", "1", 5 * time.Second},
		{"CappedAtADay", "604800", 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
				rc := newHookReceiver(t, "")
				rc.answer = func(n int, w http.ResponseWriter, r *http.Request) {
					if n == 1 {
						w.Header().Set("Retry-After", tt.retryAfter)
						w.WriteHeader(http.StatusTooManyRequests)
						return
					}
					w.WriteHeader(http.StatusNoContent)
				}
				env := newDeliveryEnv(t, open(t), []string{"daily"}, rc)
				env.ingestDay(t, "cust_a")
				env.aggregate(t)
				env.mustDispatch(t, 1)
				d := env.only(t, rc.URL)
				checkTime(t, "NextAttemptAt", d.NextAttemptAt, afterDay.Add(tt.want))
				if got, want := d.LastStatus, 429; got != want {
					t.Fatalf("LastStatus = %d, want %d", got, want)
				}
				env.Clock.Set(afterDay.Add(tt.want - time.Millisecond))
				env.mustDispatch(t, 0)
				env.Clock.Set(afterDay.Add(tt.want))
				env.mustDispatch(t, 1)
				checkStatus(t, env.only(t, rc.URL), odometer.DeliveryDelivered, 2)
			})
		})
	}
}

// TestDelivery_GoneDisablesEndpoint: a 410 fails the delivery and
// disables the endpoint: nothing more is sent to it, while other
// endpoints go on, until one of its deliveries is retried.
func TestDelivery_GoneDisablesEndpoint(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		gone := newHookReceiver(t, "")
		gone.answer = func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				w.WriteHeader(http.StatusGone)
				return
			}
			w.WriteHeader(http.StatusOK)
		}
		ok := newHookReceiver(t, "")
		env := newDeliveryEnv(t, open(t), []string{"daily"}, gone, ok)
		ctx := context.Background()
		env.ingestDay(t, "cust_a")
		env.aggregate(t)
		env.mustDispatch(t, 2)
		first := env.only(t, gone.URL)
		checkStatus(t, first, odometer.DeliveryFailed, 1)
		if first.LastStatus != 410 || !strings.Contains(first.LastError, "410") || first.NextAttemptAt != nil {
			t.Fatalf("after 410: LastStatus %d, LastError %q, NextAttemptAt %v", first.LastStatus, first.LastError, first.NextAttemptAt)
		}
		disabled, err := env.Store.DisabledEndpoints(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, off := disabled[gone.URL]; !off || len(disabled) != 1 {
			t.Fatalf("DisabledEndpoints = %v, want only %s", disabled, gone.URL)
		}

		// A new period's notification: the healthy endpoint gets it, the
		// disabled one does not, however long we wait.
		env.ingestDay(t, "cust_b")
		env.Clock.Advance(time.Hour)
		env.aggregate(t)
		env.mustDispatch(t, 1)
		env.Clock.Advance(72 * time.Hour)
		env.mustDispatch(t, 0)
		if got := len(gone.requests()); got != 1 {
			t.Fatalf("disabled endpoint got %d requests, want the 1 before it was disabled", got)
		}
		if got := len(ok.requests()); got != 2 {
			t.Fatalf("healthy endpoint got %d requests, want 2", got)
		}
		waiting := env.deliveries(t, gone.URL)[1]
		checkStatus(t, waiting, odometer.DeliveryPending, 0)

		// Retrying the failed one enables the endpoint: both go out.
		if _, err := env.Store.RetryDelivery(ctx, first.ID, env.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		if disabled, _ := env.Store.DisabledEndpoints(ctx); len(disabled) != 0 {
			t.Fatalf("after a retry DisabledEndpoints = %v, want none", disabled)
		}
		env.mustDispatch(t, 2)
		for _, d := range env.deliveries(t, gone.URL) {
			if d.Status != odometer.DeliveryDelivered {
				t.Fatalf("delivery %s: %s, want delivered", d.ID, d.Status)
			}
		}
		ids := map[string]bool{}
		for _, r := range gone.requests() {
			ids[r.ID] = true
		}
		if !ids[first.ID] || !ids[waiting.ID] || len(ids) != 2 {
			t.Fatalf("the endpoint got ids %v, want %s and %s", ids, first.ID, waiting.ID)
		}
	})
}

// TestDelivery_RedirectNotFollowed: a 3xx is a failed try, and its
// Location is never requested.
func TestDelivery_RedirectNotFollowed(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
				rc := newHookReceiver(t, "")
				target := newHookReceiver(t, "")
				rc.answer = func(n int, w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, target.URL, code)
				}
				env := newDeliveryEnv(t, open(t), []string{"daily"}, rc)
				env.ingestDay(t, "cust_a")
				env.aggregate(t)
				env.mustDispatch(t, 1)
				d := env.only(t, rc.URL)
				checkStatus(t, d, odometer.DeliveryPending, 1)
				if d.LastStatus != code || !strings.Contains(d.LastError, "redirects are not followed") {
					t.Fatalf("LastStatus %d, LastError %q, want %d and the redirect named", d.LastStatus, d.LastError, code)
				}
				if got := len(target.requests()); got != 0 {
					t.Fatalf("the redirect target got %d requests, want 0", got)
				}
				if got := len(rc.requests()); got != 1 {
					t.Fatalf("the endpoint got %d requests, want 1", got)
				}
			})
		})
	}
}

// TestDelivery_LateEventSendsUpdated: an event arriving after its period
// was completed and delivered makes revision 2, sent as
// aggregation.updated with the values before it.
func TestDelivery_LateEventSendsUpdated(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		rc := newHookReceiver(t, "")
		env := newDeliveryEnv(t, open(t), []string{"daily"}, rc)
		env.ingestDay(t, "cust_a")
		env.aggregate(t)
		env.mustDispatch(t, 1)

		late := env.Clock.Advance(3 * time.Hour)
		env.ingest(t, "cust_a", "api.calls", 5, deliveryDay.Add(23*time.Hour))
		env.ingest(t, "cust_a", "storage.bytes", 4000, deliveryDay.Add(23*time.Hour))
		res := env.aggregate(t)
		if res.PeriodsRevised != 1 || res.PeriodsCompleted != 0 {
			t.Fatalf("RunResult = %+v, want 1 period revised", res)
		}
		ag := env.aggregation(t, custADaily)
		if ag.Revision != 2 || ag.Webhook.Delivered || ag.Webhook.Attempts != 0 {
			t.Fatalf("revised aggregation: revision %d, webhookStatus %+v, want revision 2, not yet delivered", ag.Revision, ag.Webhook)
		}
		env.mustDispatch(t, 1)
		reqs := rc.requests()
		if len(reqs) != 2 || reqs[0].ID == reqs[1].ID {
			t.Fatalf("receiver got %d requests, want 2 with distinct webhook-ids", len(reqs))
		}
		checkPayload(t, reqs[1].Body, fmt.Sprintf(`{"type": "aggregation.updated", "customerId": "cust_a", "period": "daily",
			"data": {"periodStart": "2026-01-13T00:00:00.000Z", "periodEnd": "2026-01-13T23:59:59.999Z", "periodKey": "20260113",
				"timestamp": %q,
				"events": {"api.calls": 30, "storage.bytes": 4000, "response.time.ms": 150},
				"eventCounts": {"api.calls": 3, "storage.bytes": 3, "response.time.ms": 2},
				"revision": 2,
				"previous": {"events": {"api.calls": 25, "storage.bytes": 2500, "response.time.ms": 150},
					"eventCounts": {"api.calls": 2, "storage.bytes": 2, "response.time.ms": 2}}},
			"created": %d}`, odometer.FormatTime(late), late.Unix()))
		ds := env.deliveries(t, rc.URL)
		if len(ds) != 2 || ds[1].Type != odometer.AggregationUpdated || ds[1].Revision != 2 {
			t.Fatalf("deliveries %+v, want the second an aggregation.updated of revision 2", ds)
		}
		if ws := env.aggregation(t, custADaily).Webhook; !ws.Delivered || ws.Attempts != 1 {
			t.Fatalf("webhookStatus of revision 2 = %+v, want delivered after 1 attempt", ws)
		}
	})
}

// TestDelivery_RestartResumes: the outbox survives a restart: a new
// dispatcher over the reopened file makes the third try at its scheduled
// time and counts on from the stored attempts.
func TestDelivery_RestartResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odometer.db")
	ctx := context.Background()
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	rc := newHookReceiver(t, "")
	rc.answer = func(n int, w http.ResponseWriter, r *http.Request) {
		if n <= 2 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
	env := newDeliveryEnv(t, store, []string{"daily"}, rc)
	env.ingestDay(t, "cust_a")
	env.aggregate(t)
	env.mustDispatch(t, 1)
	t1 := env.Clock.Advance(5 * time.Second)
	env.mustDispatch(t, 1)
	before := env.only(t, rc.URL)
	checkStatus(t, before, odometer.DeliveryPending, 2)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	store, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	env2 := newDeliveryEnv(t, store, []string{"daily"}, rc)
	env2.Clock.Set(t1.Add(5*time.Minute - time.Second))
	env2.mustDispatch(t, 0)
	t2 := env2.Clock.Advance(time.Second)
	env2.mustDispatch(t, 1)
	d := env2.only(t, rc.URL)
	checkStatus(t, d, odometer.DeliveryDelivered, 3)
	checkTime(t, "DeliveredAt", d.DeliveredAt, t2)
	reqs := rc.requests()
	if len(reqs) != 3 || reqs[2].ID != before.ID || reqs[2].Timestamp != t2.Unix() {
		t.Fatalf("receiver got %d requests; want the third with id %s at %d", len(reqs), before.ID, t2.Unix())
	}
	if ws := env2.aggregation(t, custADaily).Webhook; !ws.Delivered || ws.Attempts != 3 {
		t.Fatalf("webhookStatus = %+v, want delivered after 3 attempts", ws)
	}
}

// TestDelivery_RestartAfterCrashMidTry: a delivery claimed by a sender
// that died before recording its try is taken up again when its lease
// ends, not before.
func TestDelivery_RestartAfterCrashMidTry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odometer.db")
	ctx := context.Background()
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	rc := newHookReceiver(t, "")
	env := newDeliveryEnv(t, store, []string{"daily"}, rc)
	env.ingestDay(t, "cust_a")
	env.aggregate(t)
	claimed, err := store.ClaimDeliveries(ctx, rc.URL, afterDay, 2*time.Minute, 10)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("ClaimDeliveries = %d, %v; want 1", len(claimed), err)
	}
	store.Close()

	store, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	env2 := newDeliveryEnv(t, store, []string{"daily"}, rc)
	env2.Clock.Set(afterDay.Add(2*time.Minute - time.Second))
	env2.mustDispatch(t, 0)
	env2.Clock.Advance(time.Second)
	env2.mustDispatch(t, 1)
	checkStatus(t, env2.only(t, rc.URL), odometer.DeliveryDelivered, 1)
}

// TestDelivery_OnlyCompletedPeriods: a run while periods are open creates
// no delivery for them; each period's webhook goes out once it ends.
func TestDelivery_OnlyCompletedPeriods(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		rc := newHookReceiver(t, "")
		env := newDeliveryEnv(t, open(t), []string{"hourly", "daily"}, rc)
		env.Clock.Set(deliveryDay.Add(10*time.Hour + 30*time.Minute))
		env.ingest(t, "cust_a", "api.calls", 7, deliveryDay.Add(10*time.Hour+10*time.Minute))
		if res := env.aggregate(t); res.AggregationsCreated != 2 || res.PeriodsCompleted != 0 {
			t.Fatalf("RunResult = %+v, want 2 aggregations created and none completed", res)
		}
		if ds := env.deliveries(t, rc.URL); len(ds) != 0 {
			t.Fatalf("%d deliveries while every period is open, want 0", len(ds))
		}
		env.mustDispatch(t, 0)

		// 11:00: the hour has ended, the day has not.
		env.Clock.Set(deliveryDay.Add(11 * time.Hour))
		if got := env.aggregate(t).PeriodsCompleted; got != 1 {
			t.Fatalf("PeriodsCompleted = %d, want 1 (the hour)", got)
		}
		env.mustDispatch(t, 1)
		var p odometer.WebhookPayload
		if err := json.Unmarshal(rc.requests()[0].Body, &p); err != nil || p.Period != odometer.Hourly || p.Data.PeriodKey != "2026011310" {
			t.Fatalf("first webhook %s, want the hourly 2026011310", rc.requests()[0].Body)
		}

		env.Clock.Set(afterDay)
		if got := env.aggregate(t).PeriodsCompleted; got != 1 {
			t.Fatalf("PeriodsCompleted = %d, want 1 (the day)", got)
		}
		env.mustDispatch(t, 1)
		if err := json.Unmarshal(rc.requests()[1].Body, &p); err != nil || p.Period != odometer.Daily || p.Data.PeriodKey != "20260113" {
			t.Fatalf("second webhook %s, want the daily 20260113", rc.requests()[1].Body)
		}
	})
}

// TestDelivery_DryRun: with DRY_RUN nothing reaches the receiver; the
// payload is logged and the delivery and aggregation marked delivered,
// dry run.
func TestDelivery_DryRun(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		rc := newHookReceiver(t, "")
		env := newDeliveryEnv(t, open(t), []string{"daily"}, rc)
		env.Dispatcher.DryRun = true
		env.ingestDay(t, "cust_a")
		env.aggregate(t)
		env.mustDispatch(t, 1)
		if got := len(rc.requests()); got != 0 {
			t.Fatalf("DRY_RUN: the receiver got %d requests, want 0", got)
		}
		d := env.only(t, rc.URL)
		checkStatus(t, d, odometer.DeliveryDelivered, 1)
		if !d.DryRun {
			t.Fatal("delivery not marked dryRun")
		}
		ws := env.aggregation(t, custADaily).Webhook
		if !ws.Delivered || !ws.DryRun {
			t.Fatalf("webhookStatus = %+v, want delivered with dryRun", ws)
		}
		checkTime(t, "webhookStatus.deliveredAt", ws.DeliveredAt, afterDay)
		logs := env.Logs.String()
		for _, s := range []string{"DRY_RUN", d.ID, `periodKey`, "20260113"} {
			if !strings.Contains(logs, s) {
				t.Errorf("the log lacks %q:\n%s", s, logs)
			}
		}
		env.Clock.Advance(time.Hour)
		env.mustDispatch(t, 0)
	})
}

// slowReceiver answers after release is closed (or, at the latest, 2 s),
// telling when a request arrives and when its answer goes.
func slowReceiver(tb testing.TB) (rc *hookReceiver, arrived chan string, release, answered chan struct{}) {
	rc = newHookReceiver(tb, "")
	arrived, release, answered = make(chan string, 16), make(chan struct{}), make(chan struct{})
	var once sync.Once
	rc.answer = func(n int, w http.ResponseWriter, r *http.Request) {
		arrived <- r.Header.Get("webhook-id")
		select {
		case <-release:
		case <-time.After(2 * time.Second):
		}
		once.Do(func() { close(answered) })
		w.WriteHeader(http.StatusOK)
	}
	tb.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return rc, arrived, release, answered
}

// arrival waits for the slow receiver's next request, for at most 10 s.
func arrival(tb testing.TB, arrived chan string) {
	tb.Helper()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		tb.Fatal("the slow endpoint got no request within 10 s")
	}
}

// waitDelivered waits until the delivery with this id is recorded as
// delivered, and fails after 10 s.
func (env *deliveryEnv) waitDelivered(tb testing.TB, endpoint, id string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, d := range env.deliveries(tb, endpoint) {
			if (id == "" || d.ID == id) && d.Status == odometer.DeliveryDelivered {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	tb.Fatalf("delivery %s to %s not delivered within 10 s", id, endpoint)
}

// TestDelivery_SlowEndpoint: an endpoint that takes its time delays
// only its own deliveries: the other endpoint's are sent and recorded
// while the slow answer is still awaited.
func TestDelivery_SlowEndpoint(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		slow, arrived, release, answered := slowReceiver(t)
		fast := newHookReceiver(t, "")
		env := newDeliveryEnv(t, open(t), []string{"daily"}, slow, fast)
		env.ingestDay(t, "cust_a")
		env.aggregate(t)

		done := make(chan int)
		go func() {
			n, _ := env.Dispatcher.RunOnce(context.Background())
			done <- n
		}()
		arrival(t, arrived)
		env.waitDelivered(t, fast.URL, "")
		select {
		case <-answered:
			t.Fatal("the fast endpoint's delivery was recorded only after the slow endpoint answered")
		default:
		}
		close(release)
		if n := <-done; n != 2 {
			t.Fatalf("RunOnce made %d tries, want 2", n)
		}
		checkStatus(t, env.only(t, slow.URL), odometer.DeliveryDelivered, 1)
	})
}

// TestDispatcher_Run_SlowEndpoint: under Run, a delivery that becomes due
// while a slow endpoint's request is in flight goes out to the other
// endpoint at once, not after the slow answer.
func TestDispatcher_Run_SlowEndpoint(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		slow, arrived, release, answered := slowReceiver(t)
		fast := newHookReceiver(t, "")
		env := newDeliveryEnv(t, open(t), []string{"daily"}, slow, fast)
		env.ingestDay(t, "cust_a")
		env.aggregate(t)

		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() {
			env.Dispatcher.Run(ctx, time.Hour)
			close(stopped)
		}()
		defer func() { cancel(); <-stopped }()
		arrival(t, arrived)
		env.waitDelivered(t, fast.URL, "")

		// A second customer's period completes while the slow request
		// is still in flight.
		env.ingestDay(t, "cust_b")
		env.aggregate(t)
		env.Dispatcher.Kick()
		ds := env.deliveries(t, fast.URL)
		if len(ds) != 2 {
			t.Fatalf("%d deliveries to the fast endpoint, want 2", len(ds))
		}
		env.waitDelivered(t, fast.URL, ds[1].ID)
		select {
		case <-answered:
			t.Fatal("the fast endpoint's second delivery waited for the slow endpoint's answer")
		default:
		}
		close(release)
		// The slow endpoint's second delivery follows its first.
		arrival(t, arrived)
		for _, d := range env.deliveries(t, slow.URL) {
			env.waitDelivered(t, slow.URL, d.ID)
		}
	})
}

// TestDispatcher_Run_NoLeak: once Run's context is cancelled, Run returns
// after its requests, and with the sender, receiver and store closed no
// goroutine is left behind.
func TestDispatcher_Run_NoLeak(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ignore := goleak.IgnoreCurrent()
		rc := newHookReceiver(t, "")
		store := open(t)
		env := newDeliveryEnv(t, store, []string{"daily"}, rc)
		env.ingestDay(t, "cust_a")
		env.aggregate(t)

		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() {
			env.Dispatcher.Run(ctx, 10*time.Millisecond)
			close(stopped)
		}()
		env.waitDelivered(t, rc.URL, "")
		env.ingestDay(t, "cust_b")
		env.aggregate(t)
		env.Dispatcher.Kick()
		for _, d := range env.deliveries(t, rc.URL) {
			env.waitDelivered(t, rc.URL, d.ID)
		}
		cancel()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10 s of its context ending")
		}
		env.Sender.Close()
		rc.Stop()
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}
		goleak.VerifyNone(t, ignore)
	})
}
