package storetest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// The deduplication contract of CreateEvents, the same for every store:
// a client id is stored once, ever; a repeat with the same fingerprint is
// a duplicate that takes the stored event's Seq; with another it is a
// conflict that stores nothing of its request.

func dedupEvent(id string, v float64) odometer.Event {
	return event(id, "c1", "e.sum", v, time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
}

// allEvents returns every stored event by id, failing on an id stored
// twice.
func allEvents(tb testing.TB, s odometer.EventStore) map[string]odometer.Event {
	tb.Helper()
	out := map[string]odometer.Event{}
	cursor := ""
	for {
		page, next, err := s.FindEvents(context.Background(), odometer.EventFilter{Limit: 1000, Cursor: cursor})
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range page {
			if _, ok := out[e.ID]; ok && e.ClientID {
				tb.Fatalf("id %s stored twice", e.ID)
			}
			out[e.ID] = e
		}
		if next == "" {
			return out
		}
		cursor = next
	}
}

func create(tb testing.TB, s odometer.EventStore, events ...odometer.Event) ([]odometer.Event, []bool, error) {
	tb.Helper()
	dup, err := s.CreateEvents(context.Background(), events)
	return events, dup, err
}

func TestCreateEvents_Dedup(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		t.Run("OK", func(t *testing.T) {
			s := open(t)
			evs, dup, err := create(t, s, dedupEvent("a", 1), dedupEvent("b", 2))
			if err != nil {
				t.Fatal(err)
			}
			if dup[0] || dup[1] || evs[0].Seq <= 0 || evs[1].Seq <= evs[0].Seq {
				t.Fatalf("dup %v, seqs %d %d: want two new events in order", dup, evs[0].Seq, evs[1].Seq)
			}
		})
		t.Run("Stored", func(t *testing.T) {
			s := open(t)
			first, _, err := create(t, s, dedupEvent("a", 1))
			if err != nil {
				t.Fatal(err)
			}
			evs, dup, err := create(t, s, dedupEvent("b", 2), dedupEvent("a", 1))
			if err != nil {
				t.Fatal(err)
			}
			if dup[0] || !dup[1] {
				t.Fatalf("dup %v, want [false true]", dup)
			}
			if got, want := evs[1].Seq, first[0].Seq; got != want {
				t.Fatalf("duplicate's seq %d, want the stored event's %d", got, want)
			}
			if got := len(allEvents(t, s)); got != 2 {
				t.Fatalf("%d events stored, want 2", got)
			}
		})
		t.Run("ErrConflictStored", func(t *testing.T) {
			s := open(t)
			if _, _, err := create(t, s, dedupEvent("a", 1)); err != nil {
				t.Fatal(err)
			}
			_, _, err := create(t, s, dedupEvent("b", 2), dedupEvent("a", 99))
			if got, want := odometer.ErrorCode(err), odometer.ECONFLICT; got != want {
				t.Fatalf("error %v, want %s", err, want)
			}
			if _, ok := allEvents(t, s)["b"]; ok {
				t.Fatal("an event of a conflicting request was stored")
			}
		})
		t.Run("WithinRequest", func(t *testing.T) {
			s := open(t)
			evs, dup, err := create(t, s, dedupEvent("a", 1), dedupEvent("a", 1), dedupEvent("b", 1))
			if err != nil {
				t.Fatal(err)
			}
			if dup[0] || !dup[1] || dup[2] {
				t.Fatalf("dup %v, want [false true false]", dup)
			}
			if evs[1].Seq != evs[0].Seq {
				t.Fatalf("repeat's seq %d, want %d", evs[1].Seq, evs[0].Seq)
			}
			_, _, err = create(t, s, dedupEvent("c", 1), dedupEvent("c", 2))
			if got, want := odometer.ErrorCode(err), odometer.ECONFLICT; got != want {
				t.Fatalf("error %v, want %s", err, want)
			}
			if got := len(allEvents(t, s)); got != 2 {
				t.Fatalf("%d events stored, want 2", got)
			}
		})
		t.Run("GeneratedIDs", func(t *testing.T) {
			s := open(t)
			e := dedupEvent("gen", 1)
			e.ClientID = false
			_, dup, err := create(t, s, e, e)
			if err != nil {
				t.Fatal(err)
			}
			if dup[0] || dup[1] {
				t.Fatalf("dup %v: a generated id is never a duplicate", dup)
			}
		})
		t.Run("DeletedThenSentAgain", func(t *testing.T) {
			s := open(t)
			if _, _, err := create(t, s, dedupEvent("a", 1)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.DeleteEvents(context.Background(), odometer.EventFilter{CustomerID: "c1"}); err != nil {
				t.Fatal(err)
			}
			evs, dup, err := create(t, s, dedupEvent("a", 2))
			if err != nil {
				t.Fatal(err)
			}
			if dup[0] || evs[0].Seq <= 0 {
				t.Fatalf("dup %v seq %d: an id deleted is new again", dup, evs[0].Seq)
			}
		})
		// Concurrent requests share group commits: ids repeated across
		// them are stored once, every answer names the one stored event,
		// and a conflicting request fails alone.
		t.Run("Concurrent", func(t *testing.T) {
			s := open(t)
			const clients, ids = 16, 200
			var wg sync.WaitGroup
			seqs := make([]map[string]int64, clients)
			errs := make([]error, clients)
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var evs []odometer.Event
					for i := 0; i < ids; i++ {
						evs = append(evs, dedupEvent(fmt.Sprintf("id-%d", (i*7+c)%ids), 1))
					}
					if c%4 == 3 {
						// A conflict: this request fails alone.
						evs = append(evs, dedupEvent("id-0", 2), dedupEvent(fmt.Sprintf("only-%d", c), 1))
					} else {
						evs = append(evs, dedupEvent(fmt.Sprintf("only-%d", c), 1))
					}
					_, err := s.CreateEvents(context.Background(), evs)
					errs[c] = err
					seqs[c] = map[string]int64{}
					for _, e := range evs {
						seqs[c][e.ID] = e.Seq
					}
				}()
			}
			wg.Wait()
			stored := allEvents(t, s)
			for c := 0; c < clients; c++ {
				only := fmt.Sprintf("only-%d", c)
				if c%4 == 3 {
					if got := odometer.ErrorCode(errs[c]); got != odometer.ECONFLICT {
						t.Fatalf("client %d: error %v, want a conflict", c, errs[c])
					}
					if _, ok := stored[only]; ok {
						t.Fatalf("client %d: an event of a conflicting request was stored", c)
					}
					continue
				}
				if errs[c] != nil {
					t.Fatalf("client %d: %v", c, errs[c])
				}
				if _, ok := stored[only]; !ok {
					t.Fatalf("client %d: its new event was not stored", c)
				}
				for id, seq := range seqs[c] {
					if got := stored[id].Seq; got != seq {
						t.Fatalf("client %d: %s answered seq %d, stored as %d", c, id, seq, got)
					}
				}
			}
			if got, want := len(stored), ids+clients-clients/4; got != want {
				t.Fatalf("%d events stored, want %d", got, want)
			}
		})
	})
}
