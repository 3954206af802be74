package sqlite_test

// Ingest benchmarks of the store itself, beside their baseline: a raw
// batched INSERT of the same rows through database/sql and the same
// driver, with the same durability. Every benchmark runs on a copy of one
// file that already holds ODOMETER_BENCH_PREFILL events (default 10
// million) with random ids, built once per machine and cached under
// os.TempDir(). See docs/PERFORMANCE.md for the figures and the command.

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/internal/ingestbench"
	"github.com/odometer-dev/odometer/sqlite"
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

// BenchmarkOpen opens the store on the prefill, with its id index written
// (see BenchmarkIDIndex for larger stores). heap-MB is what the open store
// holds.
func BenchmarkOpen(b *testing.B) {
	path := ingestbench.CopyBase(b)
	ctx := context.Background()
	var heap float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = float64(after.HeapInuse) - float64(before.HeapInuse)
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/open")
	b.ReportMetric(heap/1e6, "heap-MB")
	b.ReportMetric(float64(ingestbench.PrefillSize(b)), "prefill-events")
}

// BenchmarkCreateEvents stores batches of 1000 events: one op is one
// CreateEvents call, from clients concurrent callers.
func BenchmarkCreateEvents(b *testing.B) {
	for _, clients := range []int{1, 4} {
		b.Run(fmt.Sprintf("batch=1000/clients=%d", clients), func(b *testing.B) {
			base := ingestbench.BaselineRate(b)
			s := ingestbench.OpenBench(b)
			now := time.Now().UTC()
			reqs := make([][]odometer.Event, b.N)
			for i := range reqs {
				reqs[i] = ingestbench.NewEvents(ingestbench.Batch, now)
			}
			b.ResetTimer()
			ingestbench.RunClients(b, clients, b.N, func(i int) error {
				_, err := s.CreateEvents(context.Background(), reqs[i])
				return err
			})
			b.StopTimer()
			ingestbench.Report(b, b.N*ingestbench.Batch, base)
		})
	}
	b.Run("single/clients=64", func(b *testing.B) {
		base := ingestbench.BaselineRate(b)
		s := ingestbench.OpenBench(b)
		events := ingestbench.NewEvents(b.N, time.Now().UTC())
		b.ResetTimer()
		ingestbench.RunClients(b, 64, b.N, func(i int) error {
			_, err := s.CreateEvents(context.Background(), events[i:i+1])
			return err
		})
		b.StopTimer()
		ingestbench.Report(b, b.N, base)
	})
}
