package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
	"github.com/odometer-dev/odometer/storetest"
)

// The requests are signed by Odometer's own signer, so these tests check
// that the example verifies what Odometer sends.

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

var testNow = time.Date(2026, 1, 14, 0, 5, 0, 0, time.UTC)

const completedBody = `{"type":"aggregation.completed","customerId":"cust_123","period":"daily","data":{"periodStart":"2026-01-13T00:00:00.000Z","periodEnd":"2026-01-13T23:59:59.999Z","periodKey":"20260113","timestamp":"2026-01-14T00:05:00.000Z","events":{"api.calls":1500,"storage.bytes":10000},"eventCounts":{"api.calls":150,"storage.bytes":150}},"created":1768349100}`

const updatedBody = `{"type":"aggregation.updated","customerId":"cust_123","period":"daily","data":{"periodStart":"2026-01-13T00:00:00.000Z","periodEnd":"2026-01-13T23:59:59.999Z","periodKey":"20260113","timestamp":"2026-01-14T03:00:00.000Z","events":{"api.calls":1600,"storage.bytes":10000},"eventCounts":{"api.calls":160,"storage.bytes":151},"revision":2,"previous":{"events":{"api.calls":1500,"storage.bytes":10000},"eventCounts":{"api.calls":150,"storage.bytes":150}}},"created":1768359600}`

// signed returns a request signed as Odometer signs it, at ts.
func signed(secret, id string, ts time.Time, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(body))
	sec := ts.Unix()
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Webhook-Timestamp", strconv.FormatInt(sec, 10))
	r.Header.Set("X-Webhook-Signature", odometer.SignTemplate(secret, sec, []byte(body)))
	r.Header.Set("webhook-id", id)
	r.Header.Set("webhook-timestamp", strconv.FormatInt(sec, 10))
	r.Header.Set("webhook-signature", odometer.SignStandard(secret, id, sec, []byte(body)))
	return r
}

func newTestReceiver(secret string) (*Receiver, *bytes.Buffer) {
	var out bytes.Buffer
	return &Receiver{Secret: secret, Now: func() time.Time { return testNow }, Out: &out}, &out
}

func serve(rc *Receiver, r *http.Request) int {
	w := httptest.NewRecorder()
	rc.ServeHTTP(w, r)
	return w.Code
}

func TestReceiver_OK(t *testing.T) {
	for _, secret := range []string{testSecret, "template-secret-123"} {
		t.Run(secret[:8], func(t *testing.T) {
			rc, out := newTestReceiver(secret)
			if got, want := serve(rc, signed(secret, "msg_1", testNow, completedBody)), 200; got != want {
				t.Fatalf("status %d, want %d", got, want)
			}
			want := "invoice\tcust_123\tdaily\t2026-01-13T00:00:00.000Z..2026-01-13T23:59:59.999Z\tapi.calls\tquantity=1500\tevents=150\tref=cust_123_daily_20260113#1\n" +
				"invoice\tcust_123\tdaily\t2026-01-13T00:00:00.000Z..2026-01-13T23:59:59.999Z\tstorage.bytes\tquantity=10000\tevents=150\tref=cust_123_daily_20260113#1\n"
			if got := out.String(); got != want {
				t.Fatalf("printed\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestReceiver_Updated(t *testing.T) {
	rc, out := newTestReceiver(testSecret)
	if got, want := serve(rc, signed(testSecret, "msg_2", testNow, updatedBody)), 200; got != want {
		t.Fatalf("status %d, want %d", got, want)
	}
	// storage.bytes did not change: no line for it.
	want := "correction\tcust_123\tdaily\t2026-01-13T00:00:00.000Z..2026-01-13T23:59:59.999Z\tapi.calls\tquantity=1600\twas=1500\tdelta=+100\tref=cust_123_daily_20260113#2\n"
	if got := out.String(); got != want {
		t.Fatalf("printed\n%s\nwant\n%s", got, want)
	}
}

// TestReceiver_Refused: nothing is printed for a request that fails a check.
func TestReceiver_Refused(t *testing.T) {
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
	}{
		{"ErrWrongSecret", func() *http.Request {
			return signed("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "msg_1", testNow, completedBody)
		}, 401},
		{"ErrBodyChanged", func() *http.Request {
			r := signed(testSecret, "msg_1", testNow, completedBody)
			r.Body = httptest.NewRequest("POST", "/", strings.NewReader(strings.Replace(completedBody, "1500", "15", 1))).Body
			return r
		}, 401},
		{"ErrStandardSignature", func() *http.Request {
			r := signed(testSecret, "msg_1", testNow, completedBody)
			r.Header.Set("webhook-signature", "v1,"+strings.Repeat("A", 43)+"=")
			return r
		}, 401},
		{"ErrTemplateSignature", func() *http.Request {
			r := signed(testSecret, "msg_1", testNow, completedBody)
			r.Header.Set("X-Webhook-Signature", "v1="+strings.Repeat("0", 64))
			return r
		}, 401},
		{"ErrIDChanged", func() *http.Request {
			r := signed(testSecret, "msg_1", testNow, completedBody)
			r.Header.Set("webhook-id", "msg_2")
			return r
		}, 401},
		{"ErrMissingHeaders", func() *http.Request {
			return httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(completedBody))
		}, 401},
		{"ErrOldTimestamp", func() *http.Request {
			return signed(testSecret, "msg_1", testNow.Add(-5*time.Minute-time.Second), completedBody)
		}, 400},
		{"ErrFutureTimestamp", func() *http.Request {
			return signed(testSecret, "msg_1", testNow.Add(5*time.Minute+time.Second), completedBody)
		}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, out := newTestReceiver(testSecret)
			if got := serve(rc, tt.req()); got != tt.status {
				t.Fatalf("status %d, want %d", got, tt.status)
			}
			if out.Len() != 0 {
				t.Fatalf("printed %q for a refused request", out.String())
			}
		})
	}
}

// TestReceiver_TimestampTolerance: five minutes either way is accepted.
func TestReceiver_TimestampTolerance(t *testing.T) {
	for i, ts := range []time.Time{testNow.Add(-5 * time.Minute), testNow.Add(5 * time.Minute)} {
		rc, _ := newTestReceiver(testSecret)
		if got, want := serve(rc, signed(testSecret, "msg_"+strconv.Itoa(i), ts, completedBody)), 200; got != want {
			t.Fatalf("timestamp %s: status %d, want %d", ts, got, want)
		}
	}
}

// TestReceiver_Duplicate: a second try of one delivery (same webhook-id,
// fresh timestamp and signatures) is acknowledged and not billed again;
// another id is.
func TestReceiver_Duplicate(t *testing.T) {
	rc, out := newTestReceiver(testSecret)
	for i, r := range []*http.Request{
		signed(testSecret, "msg_1", testNow, completedBody),
		signed(testSecret, "msg_1", testNow.Add(5*time.Second), completedBody),
	} {
		if got, want := serve(rc, r), 200; got != want {
			t.Fatalf("try %d: status %d, want %d", i+1, got, want)
		}
	}
	if got, want := strings.Count(out.String(), "\n"), 2; got != want {
		t.Fatalf("printed %d lines for one delivery tried twice, want %d", got, want)
	}
	serve(rc, signed(testSecret, "msg_other", testNow, completedBody))
	if got, want := strings.Count(out.String(), "\n"), 4; got != want {
		t.Fatalf("printed %d lines after a second delivery, want %d", got, want)
	}
}

// TestReceiver_RotatedSecret: webhook-signature may carry several
// signatures; one match is enough.
func TestReceiver_RotatedSecret(t *testing.T) {
	rc, out := newTestReceiver(testSecret)
	r := signed(testSecret, "msg_1", testNow, completedBody)
	old := odometer.SignStandard("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "msg_1", testNow.Unix(), []byte(completedBody))
	r.Header.Set("webhook-signature", old+" "+r.Header.Get("webhook-signature"))
	if got, want := serve(rc, r), 200; got != want || out.Len() == 0 {
		t.Fatalf("status %d, want %d and lines printed", got, want)
	}
}

// TestReceiver_FromOdometer: the real dispatcher delivers to the example
// over HTTP, and its completed day comes out as invoice lines.
func TestReceiver_FromOdometer(t *testing.T) {
	rc, out := newTestReceiver(testSecret)
	srv := httptest.NewServer(rc)
	defer srv.Close()
	cfg, err := odometer.ParseConfig("test", []byte(`{"periods": ["daily"], "events": {"api.calls": {"op": "sum"}},
		"webhooks": [{"url": "`+srv.URL+`/hooks", "secret": "`+testSecret+`"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	store := storetest.OpenSQLite(t)
	ctx := context.Background()
	day := time.Date(2026, 1, 13, 9, 0, 0, 0, time.UTC)
	for _, v := range []float64{10, 15, 25} {
		e := odometer.Event{ID: odometer.NewID("evt_"), EventType: "api.calls", CustomerID: "cust_test_a", Value: v,
			Time: day, TimeGiven: true, ReceivedAt: day}
		if _, err := store.CreateEvents(ctx, []odometer.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	now := func() time.Time { return testNow }
	current := func() *odometer.Config { return cfg }
	if _, err := (&odometer.Aggregator{Store: store, Config: current, Now: now}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	sender := odohttp.NewSender(true)
	defer sender.Close()
	d := &odometer.Dispatcher{Store: store, Sender: sender, Config: current, Now: now}
	if n, err := d.RunOnce(ctx); n != 1 || err != nil {
		t.Fatalf("RunOnce = %d, %v; want 1 try", n, err)
	}
	want := "invoice\tcust_test_a\tdaily\t2026-01-13T00:00:00.000Z..2026-01-13T23:59:59.999Z\tapi.calls\tquantity=50\tevents=3\tref=cust_test_a_daily_20260113#1\n"
	if got := out.String(); got != want {
		t.Fatalf("printed\n%s\nwant\n%s", got, want)
	}
	ds, _, err := store.FindDeliveries(ctx, odometer.DeliveryFilter{Limit: 10})
	if err != nil || len(ds) != 1 || ds[0].Status != odometer.DeliveryDelivered {
		t.Fatalf("deliveries %v, %v; want one delivered", ds, err)
	}
}
