package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
)

// TestScanEvents: every event of the range comes once, sorted by customer,
// whether it fits in one run or is merged from many, and
// a resumed pass skips the customers already done.
func TestScanEvents(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "scan.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var events []odometer.Event
	for i := 0; i < 500; i++ {
		events = append(events, odometer.Event{ID: fmt.Sprintf("e%d", i), ClientID: true,
			CustomerID: fmt.Sprintf("c%02d", rng.IntN(23)), EventType: []string{"a", "b", "c"}[rng.IntN(3)],
			Value: float64(i), Time: now.Add(time.Duration(i) * time.Minute), ReceivedAt: now})
		if i%3 != 0 {
			events[i].Metadata = []byte(fmt.Sprintf(`{"n":%d}`, i))
		}
	}
	if _, err := s.CreateEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	defer func(n int) { scanRun = n }(scanRun)
	for _, tt := range []struct {
		name       string
		run        int
		after      int64
		upto       int64
		from       string
		wantEvents int
	}{
		{"OneRun", 1_000_000, 0, 500, "", 500},
		{"ManyRuns", 37, 0, 500, "", 500},
		{"RunOfOne", 1, 100, 160, "", 60},
		{"Range", 50, 120, 380, "", 260},
		{"Resumed", 41, 0, 500, "c10", -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			scanRun = tt.run
			want := map[int64]bool{}
			for _, e := range events {
				if e.Seq > tt.after && e.Seq <= tt.upto && e.CustomerID > tt.from {
					want[e.Seq] = true
				}
			}
			if tt.wantEvents >= 0 && len(want) != tt.wantEvents {
				t.Fatalf("the test expects %d events, the data has %d", tt.wantEvents, len(want))
			}
			seen := map[int64]bool{}
			var prev string
			// Metadata of types a and b only, but in the run of 37 of none.
			types := []string{"a", "b"}
			if tt.run == 37 {
				types = nil
			}
			err := s.ScanEvents(ctx, tt.after, tt.upto, tt.from, types, func(e *odometer.Event) error {
				key := e.CustomerID
				if strings.Compare(key, prev) < 0 {
					return fmt.Errorf("%q after %q: not sorted", key, prev)
				}
				prev = key
				if seen[e.Seq] {
					return fmt.Errorf("seq %d twice", e.Seq)
				}
				seen[e.Seq] = true
				orig := events[e.Seq-1]
				if orig.CustomerID != e.CustomerID || orig.EventType != e.EventType || orig.Value != e.Value || !orig.Time.Equal(e.Time) {
					return fmt.Errorf("seq %d: %+v, stored %+v", e.Seq, e, orig)
				}
				want := orig.Metadata
				if types == nil || e.EventType == "c" {
					want = nil
				}
				if string(e.Metadata) != string(want) {
					return fmt.Errorf("seq %d (%s): metadata %q, want %q (read for %v)", e.Seq, e.EventType, e.Metadata, want, types)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(seen) != len(want) {
				t.Fatalf("%d events, want %d", len(seen), len(want))
			}
			for seq := range want {
				if !seen[seq] {
					t.Fatalf("seq %d missing", seq)
				}
			}
		})
	}
}
