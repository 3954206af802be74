package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestBench(t *testing.T) {
	ts := startServer(t)
	admin := ts.flags(ts.AdminKey)

	t.Run("Batch", func(t *testing.T) {
		r := mustRun(t, append([]string{"bench", "--mode", "batch", "--events", "600", "--batch-size", "50", "--concurrency", "3",
			"--customers", "7", "--ids", "-o", "json"}, admin...)...)
		var rep benchReport
		decodeJSON(t, r.stdout, &rep)
		if got, want := [3]int64{rep.Events, rep.Requests, rep.Errors}, [3]int64{600, 12, 0}; got != want {
			t.Fatalf("events, requests, errors %v, want %v", got, want)
		}
		if rep.EventsPerSec <= 0 || rep.Latency.P50 <= 0 || rep.Latency.P50 > rep.Latency.P90 || rep.Latency.P90 > rep.Latency.P99 || rep.Latency.P99 > rep.Latency.Max {
			t.Fatalf("rate %v, latency %+v", rep.EventsPerSec, rep.Latency)
		}
		if rep.Trigger == nil || !strings.Contains(rep.Trigger.Detail, "600 events folded") || rep.Query == nil {
			t.Fatalf("second phase: trigger %+v, query %+v", rep.Trigger, rep.Query)
		}
		if got, want := ts.countEvents(t), 600; got != want {
			t.Fatalf("%d events stored, want %d", got, want)
		}
	})

	t.Run("Single", func(t *testing.T) {
		r := mustRun(t, append([]string{"bench", "--mode", "single", "--events", "40", "--concurrency", "4", "--no-aggregate"}, admin...)...)
		for _, s := range []string{"events:        40", "requests:      40", "p50 ", "p99 ", "max "} {
			if !strings.Contains(r.stdout, s) {
				t.Fatalf("report lacks %q:\n%s", s, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "trigger:") {
			t.Fatal("--no-aggregate ran a trigger")
		}
		if got, want := ts.countEvents(t), 640; got != want {
			t.Fatalf("%d events stored, want %d", got, want)
		}
	})

	t.Run("Duration", func(t *testing.T) {
		start := time.Now()
		r := mustRun(t, append([]string{"bench", "--duration", "300ms", "--concurrency", "2", "--no-aggregate", "-o", "json"}, admin...)...)
		var rep benchReport
		decodeJSON(t, r.stdout, &rep)
		if rep.Events == 0 || rep.Seconds < 0.3 {
			t.Fatalf("report %+v: want events over at least 300ms", rep)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Fatalf("bench took %s, want it to stop by itself after 300ms", d)
		}
	})

	t.Run("Interrupted", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		r := run(t, ctx, "", append([]string{"bench", "--duration", "1h", "--no-aggregate", "--event-type", "api.calls"}, admin...)...)
		if r.err == nil || !strings.Contains(r.err.Error(), "interrupted") {
			t.Fatalf("error %v, want interrupted", r.err)
		}
	})

	t.Run("ErrRemote", func(t *testing.T) {
		mustFail(t, "not on this machine", "bench", "--server", "http://192.0.2.1:8080", "--api-key", "k", "--events", "1")
	})
	t.Run("ErrKey", func(t *testing.T) {
		mustFail(t, "check --api-key", "bench", "--server", ts.URL, "--api-key", "odo_wrong", "--events", "10", "--event-type", "api.calls")
	})
	t.Run("ErrFlags", func(t *testing.T) {
		mustFail(t, "--mode must be", append([]string{"bench", "--mode", "stream"}, admin...)...)
		mustFail(t, "--batch-size must be", append([]string{"bench", "--batch-size", "1001"}, admin...)...)
		mustFail(t, "bench must know when to stop", append([]string{"bench", "--duration", "0"}, admin...)...)
	})
}
