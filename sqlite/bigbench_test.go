package sqlite_test

// The id index at scale: a store of ODOMETER_BENCH_SIZES events
// (comma-separated; default 1,000,000) with random client ids, built once
// per machine by ingestbench.BigStore and cached (see there). For each
// size, in the order given, one op measures:
//
//   - open-s: sqlite.Open of the store at rest (the id index written, its
//     merges done), with the files in the page cache; heap-open-B/id and
//     rss-open-B/id: what the store holds then, per stored event;
//   - early-events/s, with ODOMETER_BENCH_EARLY set: batches of new ids
//     sent right after the open, while the global filter is built (100
//     batches, 300 from 50 million; their ids then count in the heap
//     figures below);
//   - filter-s: how long the global filter takes to build in the
//     background; heap-B/id, rss-B/id: what the store holds once it is;
//   - new-events/s: batches of 1000 events with new random ids, one
//     caller, 1000 batches;
//   - settle-s: the runs and merges that the new ids started, finished
//     before the next phase rather than beside it;
//   - dup-events/s: the same batches sent again, every event a duplicate;
//   - raw-events/s: the baseline, in the same file: as many rows inserted
//     by raw multi-row INSERTs as the store writes them, without any
//     deduplication.
//
// Afterwards the store is put back as it was: the events added are
// deleted and the index folder restored from hard links taken before.
// ODOMETER_BENCH_PROFILE and ODOMETER_BENCH_PROFILE_DUP name files for
// CPU profiles of the batches of new ids and of duplicates. The first use
// of a size also reports index-build-s: the first Open,
// which writes the index of a store that has none (as after an upgrade),
// and its merges. Run:
//
//	ODOMETER_BENCH_SIZES=10000000,100000000 go test -run '^$' -bench BenchmarkIDIndex -benchtime 1x -timeout 0 ./sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/internal/ingestbench"
	"github.com/odometer-dev/odometer/sqlite"
)

func benchSizes(tb testing.TB) []int {
	v := os.Getenv("ODOMETER_BENCH_SIZES")
	if v == "" {
		return []int{1_000_000}
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			tb.Fatalf("ODOMETER_BENCH_SIZES=%q: want numbers of events", v)
		}
		out = append(out, n)
	}
	return out
}

func BenchmarkIDIndex(b *testing.B) {
	for k, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("%d/events=%d", k, n), func(b *testing.B) {
			path := ingestbench.BigStore(b, n)
			ctx := context.Background()
			if _, err := os.Stat(path + ".ids"); err != nil {
				start := time.Now()
				s, err := sqlite.Open(ctx, path)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.SettleIDIndex(); err != nil {
					b.Fatal(err)
				}
				s.Close()
				b.ReportMetric(time.Since(start).Seconds(), "index-build-s")
			}
			for i := 0; i < b.N; i++ {
				benchIDIndex(b, path, n)
			}
		})
	}
}

func benchIDIndex(b *testing.B, path string, n int) {
	ctx := context.Background()
	// At rest: merges left by a run cut short are done first.
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.SettleIDIndex(); err != nil {
		b.Fatal(err)
	}
	s.Close()
	restore := snapshotIndex(b, path)
	defer restore(n)
	b.ReportMetric(loadAverage(), "load1")

	var before, after runtime.MemStats
	debug.FreeOSMemory()
	runtime.ReadMemStats(&before)
	rssBefore := rss()
	start := time.Now()
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	open := time.Since(start)
	debug.FreeOSMemory()
	runtime.ReadMemStats(&after)
	rssAfter := rss()
	b.ReportMetric(open.Seconds(), "open-s")
	b.ReportMetric((float64(after.HeapInuse)-float64(before.HeapInuse))/float64(n), "heap-open-B/id")
	b.ReportMetric(float64(rssAfter-rssBefore)/float64(n), "rss-open-B/id")
	// Right after the start, while the global filter is being built: new
	// ids ask every run's filters.
	filterStart := time.Now()
	now := time.Now().UTC()
	if os.Getenv("ODOMETER_BENCH_EARLY") != "" {
		early := 100
		if n >= 50_000_000 {
			early = 300
		}
		start = time.Now()
		for i := 0; i < early; i++ {
			if _, err := s.CreateEvents(ctx, ingestbench.NewEvents(ingestbench.Batch, now)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(early*ingestbench.Batch)/time.Since(start).Seconds(), "early-events/s")
	}
	// At rest: the global filter built in the background.
	if err := s.SettleIDIndex(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(time.Since(filterStart).Seconds(), "filter-s")
	debug.FreeOSMemory()
	runtime.ReadMemStats(&after)
	rssAfter = rss()
	b.ReportMetric((float64(after.HeapInuse)-float64(before.HeapInuse))/float64(n), "heap-B/id")
	b.ReportMetric(float64(rssAfter-rssBefore)/float64(n), "rss-B/id")
	b.ReportMetric(float64(s.IDRuns()), "runs")

	const batches = 1000
	reqs := make([][]odometer.Event, batches)
	for i := range reqs {
		reqs[i] = ingestbench.NewEvents(ingestbench.Batch, now)
	}
	stopProfile := profileTo(b, os.Getenv("ODOMETER_BENCH_PROFILE"))
	start = time.Now()
	for _, r := range reqs {
		dup, err := s.CreateEvents(ctx, r)
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range dup {
			if d {
				b.Fatal("a new id answered as a duplicate")
			}
		}
	}
	b.ReportMetric(float64(batches*ingestbench.Batch)/time.Since(start).Seconds(), "new-events/s")
	stopProfile()
	// The runs and merges the new ids started finish here, timed on their
	// own, so that the duplicates are not measured beside them.
	start = time.Now()
	if err := s.SettleIDIndex(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(time.Since(start).Seconds(), "settle-s")
	// The same batches again, as clients retrying, in another order.
	stopProfile = profileTo(b, os.Getenv("ODOMETER_BENCH_PROFILE_DUP"))
	start = time.Now()
	for i := range reqs {
		r := reqs[(i*7)%batches]
		for k := range r {
			r[k].Seq = 0
		}
		dup, err := s.CreateEvents(ctx, r)
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range dup {
			if !d {
				b.Fatal("a stored id answered as new")
			}
		}
	}
	b.ReportMetric(float64(batches*ingestbench.Batch)/time.Since(start).Seconds(), "dup-events/s")
	stopProfile()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}

	// The baseline, in the same file: the same rows inserted by raw
	// multi-row INSERTs (100 rows a statement, 1000 a transaction, as the
	// store writes them), with no deduplication at all.
	db := ingestbench.OpenRaw(b, path)
	defer db.Close()
	var seq int64
	if err := db.QueryRow(`SELECT max(seq) FROM events`).Scan(&seq); err != nil {
		b.Fatal(err)
	}
	q := `INSERT INTO events (seq, id, idh, fp, event_type, customer_id, value, metadata, ts, received_at) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,NULL,?,?),", 100), ",")
	for i := range reqs {
		reqs[i] = ingestbench.NewEvents(ingestbench.Batch, now)
	}
	args := make([]any, 0, 900)
	start = time.Now()
	for _, r := range reqs {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		st, err := tx.Prepare(q)
		if err != nil {
			b.Fatal(err)
		}
		for k := 0; k < len(r); k += 100 {
			args = args[:0]
			for _, e := range r[k : k+100] {
				seq++
				args = append(args, seq, e.ID, odometer.IDHash(e.ID), e.Fingerprint(), e.EventType, e.CustomerID, e.Value,
					e.Time.UnixMilli(), e.ReceivedAt.UnixMilli())
			}
			if _, err := st.Exec(args...); err != nil {
				b.Fatal(err)
			}
		}
		st.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batches*ingestbench.Batch)/time.Since(start).Seconds(), "raw-events/s")
}

// snapshotIndex links the files of the id index into a folder beside it,
// and returns what puts the store back: the events after seq n deleted,
// the index folder replaced by the links. Runs are never written in
// place, so the links keep them as they are.
func snapshotIndex(tb testing.TB, path string) func(n int) {
	dir := path + ".ids"
	snap := path + ".ids-snapshot"
	os.RemoveAll(snap)
	if err := os.Mkdir(snap, 0o755); err != nil {
		tb.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Link(filepath.Join(dir, e.Name()), filepath.Join(snap, e.Name())); err != nil {
			tb.Fatal(err)
		}
	}
	return func(n int) {
		db := ingestbench.OpenRaw(tb, path)
		defer db.Close()
		if _, err := db.Exec(`DELETE FROM events WHERE seq > ?`, n); err != nil {
			tb.Fatal(err)
		}
		if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			tb.Fatal(err)
		}
		if err := os.RemoveAll(dir); err != nil {
			tb.Fatal(err)
		}
		if err := os.Rename(snap, dir); err != nil {
			tb.Fatal(err)
		}
	}
}

// rss is the process's resident set in bytes (Linux), 0 where unknown.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// loadAverage is the machine's load average over the last minute, from
// /proc/loadavg (Linux); 0 where unknown. The machine is shared: the
// figures of a loaded run are read with it.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
