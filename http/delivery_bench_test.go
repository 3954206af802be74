package http_test

// Webhook delivery benchmarks: how many deliveries per second the real
// dispatcher drains from the SQLite outbox to a receiver on a loopback
// port, beside its two parts measured alone in the same run: the same
// requests through the same Sender with no store (SenderOnly), and the
// outbox with no HTTP (DryRun: claim, sign, record). BenchmarkSign is the
// signing cost of one delivery. Run:
//
//	go test -run '^$' -bench 'Delivery|Sign' -benchtime 5000x ./http

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
	"github.com/odometer-dev/odometer/storetest"
)

// deliveryBenchDay is the past day the benchmark's usage falls on.
var deliveryBenchDay = time.Date(2026, 1, 13, 0, 0, 0, 0, time.UTC)

// deliveryBenchReceiver answers 200 after reading the body, and counts.
func deliveryBenchReceiver(b *testing.B) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		hits.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(srv.Close)
	return srv, &hits
}

// deliveryBenchOutbox returns a store holding n pending deliveries to
// url, made the real way: n customers' usage on a past day, aggregated
// after the day's end.
func deliveryBenchOutbox(b *testing.B, n int, url string) (odometer.Store, *odometer.Config) {
	b.Helper()
	cfgJSON, _ := json.Marshal(map[string]any{
		"periods": []string{"daily"},
		"events": map[string]any{
			"api.calls":        map[string]string{"op": "sum"},
			"storage.bytes":    map[string]string{"op": "max"},
			"response.time.ms": map[string]string{"op": "avg"},
		},
		"webhooks": []map[string]any{{"url": url, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "enabled": true}},
	})
	cfg, err := odometer.ParseConfig("bench", cfgJSON)
	if err != nil {
		b.Fatal(err)
	}
	store := storetest.OpenSQLite(b)
	ctx := context.Background()
	types := []string{"api.calls", "storage.bytes", "response.time.ms"}
	var events []odometer.Event
	flush := func() {
		if _, err := store.CreateEvents(ctx, events); err != nil {
			b.Fatal(err)
		}
		events = events[:0]
	}
	for i := range n {
		for j, typ := range types {
			events = append(events, odometer.Event{ID: odometer.NewID("evt_"), EventType: typ, CustomerID: "cust_" + strconv.Itoa(i),
				Value: float64(i + j), Time: deliveryBenchDay.Add(time.Duration(i%86400) * time.Second), TimeGiven: true,
				ReceivedAt: deliveryBenchDay.Add(25 * time.Hour)})
		}
		if len(events) >= 999 {
			flush()
		}
	}
	if len(events) > 0 {
		flush()
	}
	agg := &odometer.Aggregator{Store: store, Config: func() *odometer.Config { return cfg },
		Now: func() time.Time { return deliveryBenchDay.Add(25 * time.Hour) }}
	res, err := agg.Run(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if res.PeriodsCompleted != n {
		b.Fatalf("%d periods completed, want %d", res.PeriodsCompleted, n)
	}
	return store, cfg
}

func deliveryBenchDispatcher(store odometer.Store, cfg *odometer.Config, sender odometer.WebhookSender) *odometer.Dispatcher {
	return &odometer.Dispatcher{Store: store, Sender: sender, Config: func() *odometer.Config { return cfg },
		Now: func() time.Time { return deliveryBenchDay.Add(25 * time.Hour) }, Logger: slog.New(slog.DiscardHandler)}
}

// drainBench times one RunOnce over b.N pending deliveries.
func drainBench(b *testing.B, dryRun bool) {
	srv, hits := deliveryBenchReceiver(b)
	store, cfg := deliveryBenchOutbox(b, b.N, srv.URL+"/hooks")
	sender := odohttp.NewSender(true)
	defer sender.Close()
	d := deliveryBenchDispatcher(store, cfg, sender)
	d.DryRun = dryRun
	b.ResetTimer()
	n, err := d.RunOnce(context.Background())
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if n != b.N {
		b.Fatalf("RunOnce made %d tries, want %d", n, b.N)
	}
	if pending, _, _ := store.FindDeliveries(context.Background(), odometer.DeliveryFilter{Status: odometer.DeliveryPending, Limit: 1}); len(pending) != 0 {
		b.Fatal("deliveries left pending")
	}
	if want := int64(b.N); !dryRun && hits.Load() != want {
		b.Fatalf("receiver got %d requests, want %d", hits.Load(), want)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

func BenchmarkDelivery(b *testing.B) {
	// The full path: claim from the outbox, sign, POST, record.
	b.Run("Dispatcher", func(b *testing.B) { drainBench(b, false) })
	// The outbox alone: claim, sign, record; nothing sent.
	b.Run("DryRun", func(b *testing.B) { drainBench(b, true) })
	// HTTP alone: the same signed requests through the same Sender, as
	// many in flight as one endpoint's lane allows, and no store.
	b.Run("SenderOnly", func(b *testing.B) {
		srv, hits := deliveryBenchReceiver(b)
		sender := odohttp.NewSender(true)
		defer sender.Close()
		body := deliveryBenchPayload()
		const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		ts := deliveryBenchDay.Unix()
		sem := make(chan struct{}, 16) // the dispatcher's default Concurrency
		var wg sync.WaitGroup
		var failed atomic.Int64
		b.ResetTimer()
		for i := range b.N {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				id := "msg_" + strconv.Itoa(i)
				res := sender.Send(context.Background(), odometer.WebhookRequest{URL: srv.URL + "/hooks", Body: body, Headers: map[string]string{
					"Content-Type": "application/json", "X-Webhook-Timestamp": strconv.FormatInt(ts, 10),
					"X-Webhook-Signature": odometer.SignTemplate(secret, ts, body), "webhook-id": id,
					"webhook-timestamp": strconv.FormatInt(ts, 10), "webhook-signature": odometer.SignStandard(secret, id, ts, body),
				}})
				if res.Err != nil || res.Status != 200 {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		if failed.Load() != 0 || hits.Load() != int64(b.N) {
			b.Fatalf("%d failed, %d received of %d", failed.Load(), hits.Load(), b.N)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	})
}

// deliveryBenchPayload is a typical aggregation.completed body.
func deliveryBenchPayload() []byte {
	p := odometer.WebhookPayload{Type: odometer.AggregationCompleted, CustomerID: "cust_123", Period: odometer.Daily,
		Data: odometer.PayloadData{PeriodStart: "2026-01-13T00:00:00.000Z", PeriodEnd: "2026-01-13T23:59:59.999Z",
			PeriodKey: "20260113", Timestamp: "2026-01-14T00:05:00.000Z",
			Events:      map[string]float64{"api.calls": 1500, "storage.bytes": 10000, "response.time.ms": 125},
			EventCounts: map[string]int64{"api.calls": 150, "storage.bytes": 150, "response.time.ms": 150}},
		Created: 1768350300}
	b, _ := json.Marshal(p)
	return b
}

// BenchmarkSign is the signing of one delivery: both signatures.
func BenchmarkSign(b *testing.B) {
	body := deliveryBenchPayload()
	b.SetBytes(int64(len(body)))
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	var sink int
	for i := 0; b.Loop(); i++ {
		ts := int64(1768350300 + i)
		sink += len(odometer.SignTemplate(secret, ts, body))
		sink += len(odometer.SignStandard(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body))
	}
	if sink == 0 {
		b.Fatal(fmt.Sprint(sink))
	}
}
