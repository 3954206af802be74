package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
)

// openSmall opens a store whose id index writes a run every 64 ids, so
// that a few thousand events make runs of several tiers.
func openSmall(tb testing.TB, path string) *Store {
	tb.Helper()
	s, err := OpenOptions(context.Background(), path, Options{IDFlushAt: 64, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// settle runs the index's background work until none is left.
func settle(tb testing.TB, s *Store) {
	tb.Helper()
	if err := s.SettleIDIndex(); err != nil {
		tb.Fatal(err)
	}
}

func idEvents(from, n int) []odometer.Event {
	t := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	evs := make([]odometer.Event, n)
	for i := range evs {
		evs[i] = odometer.Event{ID: fmt.Sprintf("id-%06d", from+i), ClientID: true, EventType: "e", CustomerID: "c",
			Value: float64(from + i), Time: t, ReceivedAt: t}
	}
	return evs
}

// sendAll sends n events in batches of 100, and checks that each is new,
// or each a duplicate.
func sendAll(tb testing.TB, s *Store, n int, wantDup bool) {
	tb.Helper()
	for i := 0; i < n; i += 100 {
		evs := idEvents(i, min(100, n-i))
		dup, err := s.CreateEvents(context.Background(), evs)
		if err != nil {
			tb.Fatalf("batch at %d: %v", i, err)
		}
		for k, d := range dup {
			if d != wantDup {
				tb.Fatalf("%s: duplicate %v, want %v", evs[k].ID, d, wantDup)
			}
			if evs[k].Seq != int64(i+k+1) {
				tb.Fatalf("%s: seq %d, want %d", evs[k].ID, evs[k].Seq, i+k+1)
			}
		}
	}
}

func runFiles(tb testing.TB, path string) []string {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join(path+".ids", "*"+runExt))
	if err != nil {
		tb.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func TestIDIndex_Runs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odometer.db")
	s := openSmall(t, path)
	const n = 5000
	for i := 0; i < n; i += 500 {
		evs := idEvents(i, 500)
		dup, err := s.CreateEvents(context.Background(), evs)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(dup, true) {
			t.Fatal("a new id reported as a duplicate")
		}
		settle(t, s)
	}
	var merged bool
	for _, r := range s.ids.runs {
		merged = merged || r.count > 4*64
	}
	if len(s.ids.runs) < 2 || !merged {
		t.Fatalf("%d runs, merged %v: want several, some merged", len(s.ids.runs), merged)
	}
	sendAll(t, s, n, true)
	files := runFiles(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openSmall(t, path)
	defer s.Close()
	if got := runFiles(t, path); !slices.Equal(got, files) {
		t.Fatalf("runs after a restart %v, want those before %v", got, files)
	}
	s.ids.mu.Lock()
	kept := s.ids.global != nil
	s.ids.mu.Unlock()
	if !kept {
		t.Fatal("the global filter kept at the clean stop was not used")
	}
	sendAll(t, s, n, true)
	evs := idEvents(n, 100)
	dup, err := s.CreateEvents(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(dup, true) {
		t.Fatal("a new id reported as a duplicate after a restart")
	}

	// Deleted, their ids are new again, though the runs still name the
	// seqs of the deleted events; and sent once more, duplicates of the
	// new events.
	if _, err := s.DeleteEvents(context.Background(), odometer.EventFilter{CustomerID: "c"}); err != nil {
		t.Fatal(err)
	}
	for _, wantDup := range []bool{false, true} {
		for i := 0; i < n; i += 500 {
			evs := idEvents(i, 500)
			dup, err := s.CreateEvents(context.Background(), evs)
			if err != nil {
				t.Fatal(err)
			}
			for k, d := range dup {
				if d != wantDup || evs[k].Seq <= n+100 {
					t.Fatalf("%s after the delete: duplicate %v, seq %d; want %v, a new seq", evs[k].ID, d, evs[k].Seq, wantDup)
				}
			}
			settle(t, s)
		}
	}
}

// A damaged, missing or half-written run is never trusted: it is rebuilt
// from the events at start, and every id stays exact.
func TestIDIndex_Damaged(t *testing.T) {
	const n = 3000
	for _, tc := range []struct {
		name   string
		damage func(tb testing.TB, path string, runs []string)
	}{
		{"Filter", func(tb testing.TB, path string, runs []string) {
			// A byte of the meta of every run: its filters.
			for _, r := range runs {
				flipByte(tb, r, -trailerBytes-20)
			}
		}},
		{"Trailer", func(tb testing.TB, path string, runs []string) { flipByte(tb, runs[0], -8) }},
		{"Truncated", func(tb testing.TB, path string, runs []string) {
			fi, err := os.Stat(runs[len(runs)-1])
			if err != nil {
				tb.Fatal(err)
			}
			if err := os.Truncate(runs[len(runs)-1], fi.Size()/2); err != nil {
				tb.Fatal(err)
			}
		}},
		{"Missing", func(tb testing.TB, path string, runs []string) { os.Remove(runs[0]) }},
		{"MissingFolder", func(tb testing.TB, path string, runs []string) { os.RemoveAll(path + ".ids") }},
		{"GlobalFilter", func(tb testing.TB, path string, runs []string) {
			g := filepath.Join(path+".ids", globalFile)
			if _, err := os.Stat(g); err != nil {
				tb.Fatalf("no global filter kept at the clean stop: %v", err)
			}
			flipByte(tb, g, 100)
		}},
		{"GlobalFilterCut", func(tb testing.TB, path string, runs []string) {
			g := filepath.Join(path+".ids", globalFile)
			fi, err := os.Stat(g)
			if err != nil {
				tb.Fatal(err)
			}
			if err := os.Truncate(g, fi.Size()-1); err != nil {
				tb.Fatal(err)
			}
		}},
		{"Leftover", func(tb testing.TB, path string, runs []string) {
			if err := os.WriteFile(runs[0]+".tmp", []byte("half a run"), 0o644); err != nil {
				tb.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "odometer.db")
			s := openSmall(t, path)
			sendAll(t, s, n, false)
			settle(t, s)
			s.Close()
			runs := runFiles(t, path)
			if len(runs) < 2 {
				t.Fatalf("%d runs: the test proves less than it says", len(runs))
			}
			tc.damage(t, path, runs)

			s = openSmall(t, path)
			defer s.Close()
			sendAll(t, s, n, true)
			// What start rebuilt is whole: a second start trusts it.
			s.Close()
			if tmp, _ := filepath.Glob(filepath.Join(path+".ids", "*.tmp")); len(tmp) > 0 {
				t.Fatalf("leftover %v", tmp)
			}
			s = openSmall(t, path)
			sendAll(t, s, n, true)
		})
	}
}

// A block found damaged while the store runs fails the look-up, never
// answers wrong, and the run is rebuilt in the background.
func TestIDIndex_DamagedWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odometer.db")
	s := openSmall(t, path)
	defer s.Close()
	const n = 3000
	sendAll(t, s, n, false)
	settle(t, s)
	for _, r := range runFiles(t, path) {
		flipByte(t, r, 5)
	}
	var failed bool
	for i := 0; i < n; i += 100 {
		evs := idEvents(i, 100)
		dup, err := s.CreateEvents(context.Background(), evs)
		if err != nil {
			failed = true
			continue
		}
		for k, d := range dup {
			if !d {
				t.Fatalf("%s answered new", evs[k].ID)
			}
		}
	}
	if !failed {
		t.Fatal("no look-up met the damage: the test proves less than it says")
	}
	settle(t, s)
	sendAll(t, s, n, true)
}

// flipByte flips a byte of the file at off, from its end when negative.
func flipByte(tb testing.TB, path string, off int64) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if off < 0 {
		fi, err := f.Stat()
		if err != nil {
			tb.Fatal(err)
		}
		off += fi.Size()
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		tb.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		tb.Fatal(err)
	}
}

// Ids that share a hash keep every seq, in mem, in a run, and across
// blocks of a run.
func TestIDIndex_SharedHashes(t *testing.T) {
	ix := &idIndex{dir: t.TempDir(), flushAt: 1 << 20, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		mem: map[uint64]int64{}, extra: map[uint64][]int64{}, buf: make([]byte, blockBytes),
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	defer ix.closeRuns()
	var pairs []pair
	seq := int64(0)
	add := func(h uint64, k int) {
		for i := 0; i < k; i++ {
			seq++
			pairs = append(pairs, pair{h, seq})
		}
	}
	for h := uint64(100); h < 2000; h++ {
		add(h*1e15, 1)
	}
	add(7, 3)
	add(5e17+1, 600) // over two blocks and more
	add(1<<64-1, 2)
	want := map[uint64]int{7: 3, 5e17 + 1: 600, 1<<64 - 1: 2, 100e15: 1, 8: 0}
	check := func(stage string) {
		t.Helper()
		hs := make([]uint64, 0, len(want))
		for h := range want {
			hs = append(hs, h)
		}
		got := map[uint64]int{}
		hits, err := ix.lookup(hs, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range hits {
			got[hs[c.i]]++
		}
		for h, w := range want {
			if got[h] != w {
				t.Fatalf("%s: hash %d has %d seqs, want %d", stage, h, got[h], w)
			}
		}
	}
	ix.committedUpTo(pairs[:len(pairs)/2], pairs[len(pairs)/2-1].seq)
	ix.committedUpTo(pairs[len(pairs)/2:], seq)
	check("in memory")
	if did, err := ix.flush(true); err != nil || !did {
		t.Fatalf("flush: %v %v", did, err)
	}
	if ix.nmem != 0 || len(ix.mem) != 0 || len(ix.extra) != 0 {
		t.Fatalf("after a flush mem holds %d (%d, %d)", ix.nmem, len(ix.mem), len(ix.extra))
	}
	check("in a run")
	// Half of them again, in a second run, merged with the first.
	seq0 := seq
	for _, p := range pairs[:len(pairs)/2] {
		seq++
		ix.committedUpTo([]pair{{p.h, seq}}, seq)
	}
	ix.flush(true)
	for h := range want {
		for _, p := range pairs[:len(pairs)/2] {
			if p.h == h && p.seq <= seq0 {
				want[h]++
			}
		}
	}
	check("in two runs")
	// The newest place that holds a hash: the second run, for those in it.
	hits, err := ix.lookup([]uint64{100e15}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if newest := len(hits); newest != 1 {
		t.Fatalf("newest: %d seqs, want 1", newest)
	}
	r, err := ix.mergeRuns(ix.runs)
	if err != nil {
		t.Fatal(err)
	}
	ix.replace(slices.Clone(ix.runs), []*idRun{r})
	if len(ix.runs) != 1 {
		t.Fatalf("%d runs after a merge", len(ix.runs))
	}
	check("merged")
	if strings.Contains(filepath.Base(r.path), "tmp") {
		t.Fatal(r.path)
	}
}

// The global filter never forgets a key, and answers "maybe" for few
// others once it holds as many as it was sized for.
func TestBlockFilter(t *testing.T) {
	const n = 1 << 20
	f := newBlockFilter(n)
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = rng.Uint64()
		f.add(keys[i])
	}
	for _, k := range keys {
		if !f.mayHold(k) {
			t.Fatalf("key %d added and not held", k)
		}
	}
	fp := 0
	for i := 0; i < n; i++ {
		if f.mayHold(rng.Uint64()) {
			fp++
		}
	}
	rate := float64(fp) / n
	t.Logf("false positives at capacity: %.2f%%", 100*rate)
	if rate > 0.05 {
		t.Fatalf("false positive rate %.3f at capacity, want at most 0.05", rate)
	}
	if f.full() {
		t.Fatal("full at capacity")
	}
	f.add(1)
	if !f.full() {
		t.Fatal("not full past capacity")
	}
}

// A global filter damaged, cut or written for other runs is not used.
func TestReadBlockFilter(t *testing.T) {
	path := filepath.Join(t.TempDir(), globalFile)
	f := newBlockFilter(1000)
	for i := uint64(0); i < 1000; i++ {
		f.add(i * 7919)
	}
	if err := f.write(path, 42); err != nil {
		t.Fatal(err)
	}
	g, err := readBlockFilter(path, 42)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 1000; i++ {
		if !g.mayHold(i * 7919) {
			t.Fatalf("key %d lost", i*7919)
		}
	}
	if g.n.Load() != 1000 || g.cap != 1000 {
		t.Fatalf("n %d cap %d", g.n.Load(), g.cap)
	}
	if _, err := readBlockFilter(path, 43); !errors.Is(err, errStale) {
		t.Fatalf("other runs: %v, want errStale", err)
	}
	for _, off := range []int64{0, 10, 40, 500, -1} {
		b, _ := os.ReadFile(path)
		bad := filepath.Join(t.TempDir(), globalFile)
		if off < 0 {
			off += int64(len(b))
		}
		b[off] ^= 1
		os.WriteFile(bad, b, 0o644)
		if _, err := readBlockFilter(bad, 42); !errors.Is(err, errDamaged) {
			t.Fatalf("byte %d flipped: %v, want errDamaged", off, err)
		}
	}
}
