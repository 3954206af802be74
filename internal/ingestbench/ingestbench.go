// Package ingestbench is the ingest workload that the benchmarks of the
// store and of the HTTP API share, with its baseline: a raw batched INSERT
// of the same rows through database/sql and the same driver, with the same
// durability, into a copy of the same file. The file already holds
// ODOMETER_BENCH_PREFILL events (default 10 million) with random ids,
// built once per machine and cached under os.TempDir(). See
// docs/PERFORMANCE.md for the figures and the commands.
package ingestbench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/sqlite"
)

// migrationsDir is the SQLite store's migrations, whose hash names the
// cached file: a new schema builds a new one.
func migrationsDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "sqlite", "migrations")
}

// The workload: 10,000 customers, 7 event types, random UUIDv4 ids.
const (
	Customers = 10_000
	Batch     = 1000
	// version changes the cache file when the generator changes.
	version = "1"
)

var Types = []string{"api.calls", "storage.bytes", "response.time.ms", "compute.seconds",
	"bandwidth.bytes", "tokens.used", "jobs.run"}

// NewUUID formats 16 random bytes as a UUIDv4.
func NewUUID() string {
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

// RandN is a uniform random number below n.
func RandN(n int) int {
	var b [8]byte
	rand.Read(b[:])
	return int(binary.LittleEndian.Uint64(b[:]) % uint64(n))
}

// NewEvents makes n events of the workload, received at now.
func NewEvents(n int, now time.Time) []odometer.Event {
	events := make([]odometer.Event, n)
	for i := range events {
		events[i] = odometer.Event{
			ID: NewUUID(), ClientID: true,
			EventType:  Types[RandN(len(Types))],
			CustomerID: fmt.Sprintf("cust_%05d", RandN(Customers)),
			Value:      float64(1 + RandN(1000)),
			Time:       now, ReceivedAt: now,
		}
	}
	return events
}

func PrefillSize(tb testing.TB) int {
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
func schemaHash(tb testing.TB) string { return hashMigrations(tb, version) }

// MigrationsHash returns a short hash of the SQLite migrations, for a
// benchmark to name the file it caches: a file built under other
// migrations may hold another layout, which goose would not redo.
func MigrationsHash(tb testing.TB) string { return hashMigrations(tb, "") }

func hashMigrations(tb testing.TB, salt string) string {
	dir := migrationsDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	h := sha256.New()
	io.WriteString(h, salt)
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
	n := PrefillSize(tb)
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
		if _, err := s.CreateEvents(ctx, NewEvents(k, time.Now().UTC())); err != nil {
			tb.Fatal(err)
		}
		done += k
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	// Fold the WAL into the file, so that a copy is the file alone.
	db := OpenRaw(tb, tmp)
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		tb.Fatal(err)
	}
	db.Close()
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(tmp + suffix)
	}
	// The id index goes with the file (its runs are named by seq, not by
	// the file's name).
	if err := os.Rename(tmp+".ids", path+".ids"); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("built %s: %d events in %v", path, n, time.Since(start).Round(time.Second))
	return path
}

// CopyBase copies the prefilled file, and the folder of its id index,
// into a fresh directory.
func CopyBase(tb testing.TB) string {
	src := basePath(tb)
	dst := filepath.Join(tb.TempDir(), "odometer.db")
	copyFile(tb, src, dst)
	if err := os.Mkdir(dst+".ids", 0o755); err != nil {
		tb.Fatal(err)
	}
	runs, err := os.ReadDir(src + ".ids")
	if err != nil && !os.IsNotExist(err) {
		tb.Fatal(err)
	}
	for _, r := range runs {
		copyFile(tb, filepath.Join(src+".ids", r.Name()), filepath.Join(dst+".ids", r.Name()))
	}
	return dst
}

func copyFile(tb testing.TB, src, dst string) {
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
}

// OpenRaw opens path with the store's pragmas (see Open in sqlite.go):
// the same durability (WAL, synchronous=FULL) and one connection, as the
// store's writer.
func OpenRaw(tb testing.TB, path string) *sql.DB {
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

// OpenBench opens the store on a fresh copy of the prefill.
func OpenBench(tb testing.TB) *sqlite.Store {
	path := CopyBase(tb)
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// report sets events/s, ns/event and, once a baseline ran, the ratio to it.
func Report(b *testing.B, events int, baseline float64) float64 {
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

// BaselineRates holds the rates of the baseline runs of this process that
// were long enough to count.
var (
	BaselineMu    sync.Mutex
	BaselineRates []float64
)

// baselineRate is the mean rate of the baseline runs so far, measuring one
// if none ran.
func BaselineRate(b *testing.B) float64 {
	BaselineMu.Lock()
	n := len(BaselineRates)
	BaselineMu.Unlock()
	if n == 0 {
		r := RunBaseline(b, 200, false)
		BaselineMu.Lock()
		BaselineRates = append(BaselineRates, r)
		BaselineMu.Unlock()
	}
	BaselineMu.Lock()
	defer BaselineMu.Unlock()
	sum := 0.0
	for _, r := range BaselineRates {
		sum += r
	}
	return sum / float64(len(BaselineRates))
}

const insertSQL = `INSERT INTO events (seq, id, idh, fp, event_type, customer_id, value, metadata, ts, received_at) VALUES (?,?,?,?,?,?,?,?,?,?)`

type baselineRow struct {
	id, eventType, customerID string
	idh, fp                   int64
	value                     float64
	ts, rcv                   int64
}

// RunBaseline inserts txs transactions of 1000 rows into a copy of the
// prefill with a prepared INSERT, and returns the rate in rows/s. The rows
// are made before the clock starts: only the insert is timed, and only it
// counts in b's time when timed.
func RunBaseline(b *testing.B, txs int, timed bool) float64 {
	tb := testing.TB(b)
	db := OpenRaw(tb, CopyBase(tb))
	defer db.Close()
	ctx := context.Background()
	var seq int64
	if err := db.QueryRow(`SELECT coalesce(max(seq), 0) FROM events`).Scan(&seq); err != nil {
		tb.Fatal(err)
	}
	now := time.Now().UTC()
	rows := make([]baselineRow, txs*Batch)
	for i, e := range NewEvents(len(rows), now) {
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
		for _, r := range rows[t*Batch : (t+1)*Batch] {
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
	return float64(txs*Batch) / elapsed.Seconds()
}

// RunClients calls op for 0..n-1 from clients goroutines.
func RunClients(b *testing.B, clients, n int, op func(i int) error) {
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
