package http_test

// Ingest benchmarks over HTTP: a real server (httptest.NewServer) over a
// real SQLite file that already holds ODOMETER_BENCH_PREFILL events
// (default 10 million), beside the baseline of a raw batched INSERT of the
// same rows through database/sql and the same driver, with the same
// durability, into a copy of the same file. The prefill is built once per
// machine and cached under os.TempDir(), shared with the sqlite package's
// benchmarks. See docs/PERFORMANCE.md for the figures and the command.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
	"github.com/odometer-dev/odometer/internal/ingestbench"
)

// BenchmarkBaseline is the raw batched INSERT: one op is a transaction of
// 1000 rows.
func BenchmarkBaseline(b *testing.B) {
	ingestbench.RunBaseline(b, b.N, true)
	rate := ingestbench.Report(b, b.N*ingestbench.Batch, 0)
	if b.Elapsed() > time.Second {
		ingestbench.BaselineMu.Lock()
		ingestbench.BaselineRates = append(ingestbench.BaselineRates, rate)
		ingestbench.BaselineMu.Unlock()
	}
}

const benchConfig = `{
  "periods": ["hourly", "daily", "weekly", "monthly", "yearly"],
  "events": {
    "api.calls": {"op": "sum"}, "storage.bytes": {"op": "max"}, "response.time.ms": {"op": "avg"},
    "compute.seconds": {"op": "sum"}, "bandwidth.bytes": {"op": "sum"}, "tokens.used": {"op": "sum"},
    "jobs.run": {"op": "count"}
  },
  "webhooks": []
}`

// benchServer serves the API over a fresh copy of the prefill, and returns
// its URL, an ingest key and a client that keeps conns connections.
func benchServer(b *testing.B, conns int) (string, string, *http.Client) {
	s := ingestbench.OpenBench(b)
	cfg, err := odometer.ParseConfig("bench", []byte(benchConfig))
	if err != nil {
		b.Fatal(err)
	}
	secret, key := odometer.NewAPIKey(odometer.ScopeIngest, "", "bench", time.Now())
	if err := s.CreateKey(context.Background(), key); err != nil {
		b.Fatal(err)
	}
	srv := &odohttp.Server{Events: s, Keys: s, Aggs: s,
		Config: func() *odometer.Config { return cfg },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ts := httptest.NewServer(srv.Handler())
	b.Cleanup(ts.Close)
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	b.Cleanup(tr.CloseIdleConnections)
	return ts.URL, secret, &http.Client{Transport: tr}
}

// post sends body and checks the status.
func post(c *http.Client, url, key string, body []byte, want int) error {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("x-apikey", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, msg)
	}
	return nil
}

// batchBody is a POST /usagebatch body of the workload.
func batchBody(n int) []byte {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, e := range ingestbench.NewEvents(n, time.Time{}) {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"eventType":%q,"customerId":%q,"value":%g,"id":%q}`, e.EventType, e.CustomerID, e.Value, e.ID)
	}
	buf.WriteByte(']')
	return buf.Bytes()
}

// BenchmarkUsageBatch posts batches of 1000 events: one op is one request,
// from clients concurrent clients.
func BenchmarkUsageBatch(b *testing.B) {
	for _, clients := range []int{1, 4} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			base := ingestbench.BaselineRate(b)
			u, key, c := benchServer(b, clients)
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = batchBody(ingestbench.Batch)
			}
			b.ResetTimer()
			ingestbench.RunClients(b, clients, b.N, func(i int) error {
				return post(c, u+"/usagebatch", key, bodies[i], http.StatusCreated)
			})
			b.StopTimer()
			ingestbench.Report(b, b.N*ingestbench.Batch, base)
		})
	}
}

// BenchmarkUsageEvent posts one event per request (POST
// /usage/{eventType}) from 64 concurrent clients: one op is one request.
func BenchmarkUsageEvent(b *testing.B) {
	b.Run("clients=64", func(b *testing.B) {
		base := ingestbench.BaselineRate(b)
		u, key, c := benchServer(b, 64)
		paths := make([]string, b.N)
		bodies := make([][]byte, b.N)
		for i, e := range ingestbench.NewEvents(b.N, time.Time{}) {
			paths[i] = u + "/usage/" + e.EventType
			bodies[i] = fmt.Appendf(nil, `{"customerId":%q,"value":%g,"id":%q}`, e.CustomerID, e.Value, e.ID)
		}
		b.ResetTimer()
		ingestbench.RunClients(b, 64, b.N, func(i int) error {
			return post(c, paths[i], key, bodies[i], http.StatusCreated)
		})
		b.StopTimer()
		ingestbench.Report(b, b.N, base)
	})
}
