package sqlite_test

// Aggregation benchmarks beside their baseline, one SQL full-scan aggregate
// of the events table in the same store. The workload: ODOMETER_AGG_EVENTS
// events (default 10 million) of 10,000 customers and 7 event types over
// one day, all five periods; built once per machine and cached under
// os.TempDir(), in a folder named after the migrations. See
// docs/PERFORMANCE.md.

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/internal/ingestbench"
	"github.com/odometer-dev/odometer/sqlite"
)

var aggTypes = []string{"api.calls", "storage.bytes", "response.time.ms", "compute.seconds",
	"bandwidth.bytes", "tokens.used", "jobs.run"}

// aggDay is the day the base events fall on; the runs happen the day after.
var aggDay = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

func aggConfig(tb testing.TB) *odometer.Config {
	ops := []string{"sum", "max", "avg", "count", "min", "first", "last"}
	js := `{"periods": ["hourly", "daily", "weekly", "monthly", "yearly"], "maxEventAge": "0", "events": {`
	for i, t := range aggTypes {
		if i > 0 {
			js += ","
		}
		js += fmt.Sprintf("%q: {\"op\": %q}", t, ops[i])
	}
	js += "}}"
	c, err := odometer.ParseConfig("bench", []byte(js))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func aggEventCount() int {
	if n, err := strconv.Atoi(os.Getenv("ODOMETER_AGG_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 10_000_000
}

// aggBaseFile returns the cached file of n base events, building it once.
func aggBaseFile(tb testing.TB, n int) string {
	dir := filepath.Join(os.TempDir(), "odometer-aggbench-"+ingestbench.MigrationsHash(tb))
	path := filepath.Join(dir, fmt.Sprintf("base-%d.db", n))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	tmp := path + ".building"
	os.Remove(tmp)
	s, err := sqlite.Open(context.Background(), tmp)
	if err != nil {
		tb.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite3", "file:"+tmp+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	r := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	const per = 100
	stmt := "INSERT INTO events (seq, id, idh, fp, event_type, customer_id, value, metadata, ts, received_at) VALUES "
	for i := 0; i < per; i++ {
		if i > 0 {
			stmt += ","
		}
		stmt += "(?,?,NULL,0,?,?,?,NULL,?,?)"
	}
	seq := int64(0)
	for done := 0; done < n; {
		tx, err := db.Begin()
		if err != nil {
			tb.Fatal(err)
		}
		ins, err := tx.Prepare(stmt)
		if err != nil {
			tb.Fatal(err)
		}
		for k := 0; k < 1000 && done < n; k++ {
			args := make([]any, 0, per*7)
			for i := 0; i < per; i++ {
				seq++
				ts := aggDay.UnixMilli() + r.Int64N(86_400_000)
				args = append(args, seq, "evt_"+strconv.FormatInt(seq, 36), aggTypes[r.IntN(len(aggTypes))],
					fmt.Sprintf("cust_%05d", r.IntN(10_000)), float64(r.IntN(100000))/100, ts, ts)
			}
			if _, err := ins.Exec(args...); err != nil {
				tb.Fatal(err)
			}
			done += per
		}
		ins.Close()
		if err := tx.Commit(); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		tb.Fatal(err)
	}
	db.Close()
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("built %s with %d events in %s", path, n, time.Since(start).Round(time.Second))
	return path
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
	// On disk before a timer starts, so that no timed fsync pays for
	// writing back the copy.
	if err := out.Sync(); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}

// profileTo writes a CPU profile of what runs until the returned func is
// called, when path is set.
func profileTo(tb testing.TB, path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		tb.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// resetPeakRSS resets the process's peak resident set (Linux), so that
// peakRSS tells the peak of what runs after it.
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS returns the process's peak resident set in bytes (VmHWM), 0
// where it cannot be read.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// peakHeap samples the Go heap until stop is closed.
func peakHeap(stop chan struct{}) *atomic.Uint64 {
	var peak atomic.Uint64
	go func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return &peak
}

func openAggCopy(tb testing.TB, n int) (*sqlite.Store, string) {
	base := aggBaseFile(tb, n)
	path := filepath.Join(tb.TempDir(), "agg.db")
	copyFile(tb, base, path)
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	return s, path
}

// BenchmarkAggregate runs the baseline (one SQL full-scan GROUP BY), the
// full aggregation of every event, and an incremental run after 1% more
// events, in the same process.
func BenchmarkAggregate(b *testing.B) {
	n := aggEventCount()
	cfg := aggConfig(b)
	now := aggDay.Add(36*time.Hour + 30*time.Minute) // the next day, 12:30
	ctx := context.Background()

	var fullSeconds float64
	b.Run("baseline-sql-scan", func(b *testing.B) {
		s, path := openAggCopy(b, n)
		defer s.Close()
		db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=query_only(ON)&_pragma=cache_size(-32768)&_pragma=mmap_size(1073741824)")
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			rows, err := db.Query(`SELECT customer_id, event_type, count(*), sum(value), min(value), max(value) FROM events GROUP BY customer_id, event_type`)
			if err != nil {
				b.Fatal(err)
			}
			groups := 0
			for rows.Next() {
				var c, t string
				var cnt int64
				var sum, mn, mx float64
				if err := rows.Scan(&c, &t, &cnt, &sum, &mn, &mx); err != nil {
					b.Fatal(err)
				}
				groups++
			}
			rows.Close()
			if groups == 0 {
				b.Fatal("no groups")
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("full", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			s, _ := openAggCopy(b, n)
			agg := &odometer.Aggregator{Store: s, Config: func() *odometer.Config { return cfg }, Now: func() time.Time { return now }}
			runtime.GC()
			stop := make(chan struct{})
			peak := peakHeap(stop)
			resetPeakRSS()
			b.StartTimer()
			start := time.Now()
			res, err := agg.Run(ctx)
			if err != nil {
				b.Fatal(err)
			}
			fullSeconds = time.Since(start).Seconds()
			b.StopTimer()
			close(stop)
			if rss := peakRSS(); rss > 0 {
				b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MB")
			}
			if res.EventsProcessed != n {
				b.Fatalf("processed %d events, want %d", res.EventsProcessed, n)
			}
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(res.AggregationsCreated), "aggregations")
			s.Close()
			b.StartTimer()
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("incremental-1pct", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			s, _ := openAggCopy(b, n)
			agg := &odometer.Aggregator{Store: s, Config: func() *odometer.Config { return cfg }, Now: func() time.Time { return now }}
			if _, err := agg.Run(ctx); err != nil {
				b.Fatal(err)
			}
			// 1% more events, arriving over the last half hour.
			r := rand.New(rand.NewPCG(3, uint64(i)))
			more := n / 100
			for done := 0; done < more; {
				k := min(1000, more-done)
				evs := make([]odometer.Event, k)
				for j := range evs {
					t := now.Add(-time.Duration(r.Int64N(int64(30 * time.Minute))))
					evs[j] = odometer.Event{ID: odometer.NewID("evt_"), EventType: aggTypes[r.IntN(len(aggTypes))],
						CustomerID: fmt.Sprintf("cust_%05d", r.IntN(10_000)), Value: float64(r.IntN(1000)), Time: t, ReceivedAt: t}
				}
				if _, err := s.CreateEvents(ctx, evs); err != nil {
					b.Fatal(err)
				}
				done += k
			}
			runtime.GC()
			stop := make(chan struct{})
			peak := peakHeap(stop)
			stopProfile := profileTo(b, os.Getenv("ODOMETER_AGG_PROFILE"))
			b.StartTimer()
			start := time.Now()
			res, err := agg.Run(ctx)
			if err != nil {
				b.Fatal(err)
			}
			inc := time.Since(start).Seconds()
			stopProfile()
			b.StopTimer()
			close(stop)
			if res.EventsProcessed != more {
				b.Fatalf("processed %d events, want %d", res.EventsProcessed, more)
			}
			if fullSeconds > 0 {
				b.ReportMetric(100*inc/fullSeconds, "%-of-full")
			}
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
			s.Close()
			b.StartTimer()
		}
	})
}

// aggMetaBaseFile returns the cached base events with metadata: a model
// of 10 per customer and a user of 1,000, built once from the base file.
func aggMetaBaseFile(tb testing.TB, n int) string {
	base := aggBaseFile(tb, n)
	path := strings.TrimSuffix(base, ".db") + "-meta.db"
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp := path + ".building"
	os.Remove(tmp)
	copyFile(tb, base, tmp)
	db, err := sql.Open("sqlite3", "file:"+tmp+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	if _, err := db.Exec(`UPDATE events SET metadata = CAST('{"model":"m' || (seq % 10) || '","user":"u' || ((seq * 7919) % 1000) || '"}' AS BLOB)`); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		tb.Fatal(err)
	}
	db.Close()
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("built %s in %s", path, time.Since(start).Round(time.Second))
	return path
}

// aggMetersConfig is aggConfig with meters added.
func aggMetersConfig(tb testing.TB, meters string) *odometer.Config {
	c := aggConfig(tb)
	if meters == "" {
		return c
	}
	js := `{"periods": ["hourly", "daily", "weekly", "monthly", "yearly"], "maxEventAge": "0", "events": {`
	for i, t := range aggTypes {
		if i > 0 {
			js += ","
		}
		js += fmt.Sprintf("%q: {\"op\": %q}", t, c.Events[t].Op)
	}
	js += `}, "meters": ` + meters + `}`
	c, err := odometer.ParseConfig("bench", []byte(js))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// BenchmarkAggregateMeters: the full run of the events with metadata,
// with no meter beyond the event types (the baseline of this benchmark),
// then with a sum meter grouped by a dimension of 10 values per customer,
// a unique meter and a p95 meter; and the grouped meter's incremental run.
func BenchmarkAggregateMeters(b *testing.B) {
	n := aggEventCount()
	now := aggDay.Add(36*time.Hour + 30*time.Minute)
	ctx := context.Background()
	base := aggMetaBaseFile(b, n)
	open := func(b *testing.B) *sqlite.Store {
		path := filepath.Join(b.TempDir(), "agg.db")
		copyFile(b, base, path)
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	fulls := map[string]float64{}
	for _, v := range []struct{ name, meters string }{
		{"ungrouped", ""},
		{"grouped-sum", `{"calls.byModel": {"eventType": "api.calls", "op": "sum", "groupBy": ["model"]}}`},
		{"grouped-sum-every-type", func() string {
			js := "{"
			for i, t := range aggTypes {
				if i > 0 {
					js += ","
				}
				js += fmt.Sprintf(`"%s.byModel": {"eventType": %q, "op": "sum", "groupBy": ["model"]}`, t, t)
			}
			return js + "}"
		}()},
		{"unique", `{"calls.users": {"eventType": "api.calls", "op": "unique", "value": "$.user"}}`},
		{"p95", `{"calls.p95": {"eventType": "response.time.ms", "op": "p95"}}`},
	} {
		cfg := aggMetersConfig(b, v.meters)
		b.Run(v.name+"/full", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				s := open(b)
				agg := &odometer.Aggregator{Store: s, Config: func() *odometer.Config { return cfg }, Now: func() time.Time { return now }}
				runtime.GC()
				stop := make(chan struct{})
				peak := peakHeap(stop)
				b.StartTimer()
				start := time.Now()
				if _, err := agg.Run(ctx); err != nil {
					b.Fatal(err)
				}
				fulls[v.name] = time.Since(start).Seconds()
				b.StopTimer()
				close(stop)
				b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
				if u := fulls["ungrouped"]; u > 0 {
					b.ReportMetric(fulls[v.name]/u, "x-ungrouped")
				}
				s.Close()
				b.StartTimer()
			}
		})
		if v.name != "grouped-sum" {
			continue
		}
		b.Run(v.name+"/incremental-1pct", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				s := open(b)
				agg := &odometer.Aggregator{Store: s, Config: func() *odometer.Config { return cfg }, Now: func() time.Time { return now }}
				start := time.Now()
				if _, err := agg.Run(ctx); err != nil {
					b.Fatal(err)
				}
				full := time.Since(start).Seconds()
				r := rand.New(rand.NewPCG(3, uint64(i)))
				more := n / 100
				for done := 0; done < more; {
					k := min(1000, more-done)
					evs := make([]odometer.Event, k)
					for j := range evs {
						t := now.Add(-time.Duration(r.Int64N(int64(30 * time.Minute))))
						evs[j] = odometer.Event{ID: odometer.NewID("evt_"), EventType: aggTypes[r.IntN(len(aggTypes))],
							CustomerID: fmt.Sprintf("cust_%05d", r.IntN(10_000)), Value: float64(r.IntN(1000)), Time: t, ReceivedAt: t,
							Metadata: []byte(fmt.Sprintf(`{"model":"m%d","user":"u%d"}`, r.IntN(10), r.IntN(1000)))}
					}
					if _, err := s.CreateEvents(ctx, evs); err != nil {
						b.Fatal(err)
					}
					done += k
				}
				b.StartTimer()
				start = time.Now()
				if _, err := agg.Run(ctx); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(100*time.Since(start).Seconds()/full, "%-of-full")
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
		})
	}
}
