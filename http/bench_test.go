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
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
	"github.com/odometer-dev/odometer/sqlite"
)

// The workload: 10,000 customers, 7 event types, random UUIDv4 ids.
const (
	benchCustomers = 10_000
	benchBatch     = 1000
	// benchVersion changes the cache file when the generator changes.
	benchVersion = "1"
)

var benchTypes = []string{"api.calls", "storage.bytes", "response.time.ms", "compute.seconds",
	"bandwidth.bytes", "tokens.used", "jobs.run"}

// newUUID formats 16 random bytes as a UUIDv4.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// randN is a uniform random number below n.
func randN(n int) int {
	var b [8]byte
	rand.Read(b[:])
	return int(binary.LittleEndian.Uint64(b[:]) % uint64(n))
}

// newEvents makes n events of the workload, received at now.
func newEvents(n int, now time.Time) []odometer.Event {
	events := make([]odometer.Event, n)
	for i := range events {
		events[i] = odometer.Event{
			ID: newUUID(), ClientID: true,
			EventType:  benchTypes[randN(len(benchTypes))],
			CustomerID: fmt.Sprintf("cust_%05d", randN(benchCustomers)),
			Value:      float64(1 + randN(1000)),
			Time:       now, ReceivedAt: now,
		}
	}
	return events
}

func prefillSize(tb testing.TB) int {
	v := os.Getenv("ODOMETER_BENCH_PREFILL")
	if v == "" {
		return 10_000_000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		tb.Fatalf("ODOMETER_BENCH_PREFILL=%q: want a number of events", v)
	}
	return n
}

// schemaHash names the cache: a new migration or generator builds anew.
func schemaHash(tb testing.TB) string {
	dir := filepath.Join("..", "sqlite", "migrations")
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	h := sha256.New()
	io.WriteString(h, benchVersion)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		io.WriteString(h, e.Name())
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

var baseMu sync.Mutex

// basePath returns the cached file holding the prefill, building it first
// if needed through the store's own CreateEvents, so that it holds exactly
// what the store writes.
func basePath(tb testing.TB) string {
	baseMu.Lock()
	defer baseMu.Unlock()
	n := prefillSize(tb)
	dir := filepath.Join(os.TempDir(), "odometer-bench-"+schemaHash(tb))
	path := filepath.Join(dir, fmt.Sprintf("base-%d.db", n))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	tmp := filepath.Join(dir, fmt.Sprintf("build-%d-%d.db", n, os.Getpid()))
	start := time.Now()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, tmp)
	if err != nil {
		tb.Fatal(err)
	}
	for done := 0; done < n; {
		k := min(20_000, n-done)
		if _, err := s.CreateEvents(ctx, newEvents(k, time.Now().UTC())); err != nil {
			tb.Fatal(err)
		}
		done += k
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	// Fold the WAL into the file, so that a copy is the file alone.
	db := openRaw(tb, tmp)
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		tb.Fatal(err)
	}
	db.Close()
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(tmp + suffix)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("built %s: %d events in %v", path, n, time.Since(start).Round(time.Second))
	return path
}

// copyBase copies the prefilled file into a fresh directory.
func copyBase(tb testing.TB) string {
	src := basePath(tb)
	dst := filepath.Join(tb.TempDir(), "odometer.db")
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	// On disk before the clock starts: the write-back of the copy would
	// otherwise slow the fsyncs of the timed part.
	if err := out.Sync(); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
	return dst
}

// openRaw opens path with the store's pragmas (see Open in sqlite.go):
// the same durability (WAL, synchronous=FULL) and one connection, as the
// store's writer.
func openRaw(tb testing.TB, path string) *sql.DB {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(ON)",
		"cache_size(-32768)", "mmap_size(0)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	return db
}

// openBench opens the store on a fresh copy of the prefill.
func openBench(tb testing.TB) *sqlite.Store {
	path := copyBase(tb)
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// report sets events/s, ns/event and, once a baseline ran, the ratio to it.
func report(b *testing.B, events int, baseline float64) float64 {
	sec := b.Elapsed().Seconds()
	if sec == 0 || events == 0 {
		return 0
	}
	rate := float64(events) / sec
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(sec*1e9/float64(events), "ns/event")
	if baseline > 0 {
		b.ReportMetric(rate/baseline, "x-baseline")
	}
	return rate
}

// baselineRates holds the rates of the baseline runs of this process that
// were long enough to count.
var (
	baselineMu    sync.Mutex
	baselineRates []float64
)

// baselineRate is the mean rate of the baseline runs so far, measuring one
// if none ran.
func baselineRate(b *testing.B) float64 {
	baselineMu.Lock()
	n := len(baselineRates)
	baselineMu.Unlock()
	if n == 0 {
		r := runBaseline(b, 200, false)
		baselineMu.Lock()
		baselineRates = append(baselineRates, r)
		baselineMu.Unlock()
	}
	baselineMu.Lock()
	defer baselineMu.Unlock()
	sum := 0.0
	for _, r := range baselineRates {
		sum += r
	}
	return sum / float64(len(baselineRates))
}

const insertSQL = `INSERT INTO events (seq, id, idh, fp, event_type, customer_id, value, metadata, ts, received_at) VALUES (?,?,?,?,?,?,?,?,?,?)`

type baselineRow struct {
	id, eventType, customerID string
	idh, fp                   int64
	value                     float64
	ts, rcv                   int64
}

// runBaseline inserts txs transactions of 1000 rows into a copy of the
// prefill with a prepared INSERT, and returns the rate in rows/s. The rows
// are made before the clock starts: only the insert is timed, and only it
// counts in b's time when timed.
func runBaseline(b *testing.B, txs int, timed bool) float64 {
	tb := testing.TB(b)
	db := openRaw(tb, copyBase(tb))
	defer db.Close()
	ctx := context.Background()
	var seq int64
	if err := db.QueryRow(`SELECT coalesce(max(seq), 0) FROM events`).Scan(&seq); err != nil {
		tb.Fatal(err)
	}
	now := time.Now().UTC()
	rows := make([]baselineRow, txs*benchBatch)
	for i, e := range newEvents(len(rows), now) {
		rows[i] = baselineRow{id: e.ID, eventType: e.EventType, customerID: e.CustomerID,
			idh: odometer.IDHash(e.ID), fp: e.Fingerprint(), value: e.Value, ts: e.Time.UnixMilli(), rcv: e.ReceivedAt.UnixMilli()}
	}
	if timed {
		b.ResetTimer()
	}
	start := time.Now()
	for t := 0; t < txs; t++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			tb.Fatal(err)
		}
		ins, err := tx.PrepareContext(ctx, insertSQL)
		if err != nil {
			tb.Fatal(err)
		}
		for _, r := range rows[t*benchBatch : (t+1)*benchBatch] {
			seq++
			if _, err := ins.ExecContext(ctx, seq, r.id, r.idh, r.fp, r.eventType, r.customerID, r.value, nil, r.ts, r.rcv); err != nil {
				tb.Fatal(err)
			}
		}
		ins.Close()
		if err := tx.Commit(); err != nil {
			tb.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	if timed {
		b.StopTimer()
	}
	return float64(txs*benchBatch) / elapsed.Seconds()
}

// BenchmarkBaseline is the raw batched INSERT: one op is a transaction of
// 1000 rows.
func BenchmarkBaseline(b *testing.B) {
	runBaseline(b, b.N, true)
	rate := report(b, b.N*benchBatch, 0)
	if b.Elapsed() > time.Second {
		baselineMu.Lock()
		baselineRates = append(baselineRates, rate)
		baselineMu.Unlock()
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
	s := openBench(b)
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
	for i, e := range newEvents(n, time.Time{}) {
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
			base := baselineRate(b)
			u, key, c := benchServer(b, clients)
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = batchBody(benchBatch)
			}
			b.ResetTimer()
			runClients(b, clients, b.N, func(i int) error {
				return post(c, u+"/usagebatch", key, bodies[i], http.StatusCreated)
			})
			b.StopTimer()
			report(b, b.N*benchBatch, base)
		})
	}
}

// BenchmarkUsageEvent posts one event per request (POST
// /usage/{eventType}) from 64 concurrent clients: one op is one request.
func BenchmarkUsageEvent(b *testing.B) {
	b.Run("clients=64", func(b *testing.B) {
		base := baselineRate(b)
		u, key, c := benchServer(b, 64)
		paths := make([]string, b.N)
		bodies := make([][]byte, b.N)
		for i, e := range newEvents(b.N, time.Time{}) {
			paths[i] = u + "/usage/" + e.EventType
			bodies[i] = fmt.Appendf(nil, `{"customerId":%q,"value":%g,"id":%q}`, e.CustomerID, e.Value, e.ID)
		}
		b.ResetTimer()
		runClients(b, 64, b.N, func(i int) error {
			return post(c, paths[i], key, bodies[i], http.StatusCreated)
		})
		b.StopTimer()
		report(b, b.N, base)
	})
}

// runClients calls op for 0..n-1 from clients goroutines.
func runClients(b *testing.B, clients, n int, op func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := op(i); err != nil {
					once.Do(func() { b.Error(err) })
					return
				}
			}
		}()
	}
	wg.Wait()
}
