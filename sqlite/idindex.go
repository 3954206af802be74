package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// idIndex finds the seqs of the events whose client id has a given hash:
// the candidates that deduplication confirms on the events themselves.
// The events table is the truth; the index is derived from it and can
// always be rebuilt from it.
//
// The ids of the newest events are in a map in memory (mem). Every
// flushAt of them, they are written, sorted by hash, to an immutable file:
// a run, which covers a range of seqs (see idRun). Runs of about the same
// size are merged in the background, four at a time, so that there are a
// few of them, of sizes growing by four. In memory a run keeps only its
// filters and the first hash of each block: about 1.2 bytes per id. In
// front of all runs, a global filter (blockFilter) holds every id of every
// run: a new id costs one cache line there. An id it may hold asks each
// run's filters, and a run is read only where its filter answers "maybe"
// (0.4% of the time per run).
//
// At start the runs are opened (their meta read and checked, not their
// pairs) and only the events after the last run are read into mem: start
// does not read every id. A run that fails a check, or a range that no
// run covers, is rebuilt from the events table. The global filter is not
// kept on disk: it is built in the background after a start, and until
// it is, look-ups ask every run's filters.
type idIndex struct {
	dir string
	db  *sql.DB
	log *slog.Logger
	// flushAt is how many ids mem holds before they are written to a run.
	flushAt int

	// work is held by a step of background work: one at a time.
	work sync.Mutex
	// suspect is set when a damaged block was met: every run is checked.
	suspect atomic.Bool

	mu sync.Mutex
	// mem holds the ids of the events after the last run; extra the
	// further seqs of a hash that several ids share.
	mem   map[uint64]int64
	extra map[uint64][]int64
	nmem  int
	runs  []*idRun // by seq, contiguous from seq 1
	// covered is the last seq the runs cover; committed the last seq
	// whose commit is done. Every client id of an event with seq <=
	// committed is in runs or mem.
	covered, committed int64
	// global holds the hash of every id in the runs (nil until it is
	// built, after a start); pending is the one being built, which
	// flushes fill too.
	global, pending *blockFilter
	buf             []byte

	wake      chan struct{}
	build     chan struct{}
	stop      chan struct{}
	closeOnce sync.Once
	stopped   sync.WaitGroup
}

const (
	defaultFlushAt = 1 << 18
	// rebuildChunk is the ids of one run written by a rebuild, which holds
	// them in memory to sort them.
	rebuildChunk = 1 << 22
	mergeFanIn   = 4
)

// openIDIndex opens the index of the database at path, in the folder
// path+".ids", rebuilding what is missing or damaged, and starts its
// background work. maxSeq is the newest event's seq.
func openIDIndex(ctx context.Context, path string, db *sql.DB, maxSeq int64, log *slog.Logger, flushAt int) (*idIndex, error) {
	ix := &idIndex{dir: path + ".ids", db: db, log: log, flushAt: flushAt,
		mem: make(map[uint64]int64), extra: make(map[uint64][]int64),
		buf: make([]byte, blockBytes), wake: make(chan struct{}, 1), build: make(chan struct{}, 1), stop: make(chan struct{})}
	if err := ix.load(ctx, maxSeq); err != nil {
		ix.closeRuns()
		return nil, err
	}
	// The global filter of the last clean stop, if it is for these runs
	// and whole; else one is built in the background.
	g, err := readBlockFilter(filepath.Join(ix.dir, globalFile), ix.covered)
	switch {
	case err == nil:
		ix.global = g
	case errors.Is(err, errDamaged):
		ix.log.Warn("id index: damaged global filter; it is built again from the runs")
	}
	os.Remove(filepath.Join(ix.dir, globalFile+".tmp"))
	ix.stopped.Add(2)
	go ix.background()
	go ix.builder()
	if ix.global == nil || ix.global.full() {
		ix.build <- struct{}{}
	}
	return ix, nil
}

func (ix *idIndex) load(ctx context.Context, maxSeq int64) error {
	if err := os.MkdirAll(ix.dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(ix.dir)
	if err != nil {
		return err
	}
	type named struct {
		name     string
		from, to int64
	}
	var files []named
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			// A run whose writing was cut short.
			os.Remove(filepath.Join(ix.dir, name))
			continue
		}
		if from, to, ok := parseRunName(name); ok {
			files = append(files, named{name, from, to})
		}
	}
	// The longest run first among those of one start: a merge that was cut
	// short after its run was written leaves its inputs, which it covers.
	slices.SortFunc(files, func(a, b named) int {
		if a.from != b.from {
			return cmpInt(a.from, b.from)
		}
		return cmpInt(b.to, a.to)
	})
	var covered int64
	for _, f := range files {
		path := filepath.Join(ix.dir, f.name)
		if f.from <= covered {
			os.Remove(path) // covered by a longer run
			continue
		}
		if f.from > covered+1 {
			if err := ix.rebuild(ctx, covered+1, f.from-1); err != nil {
				return err
			}
			covered = f.from - 1
		}
		r, err := openIDRun(path, f.from, f.to)
		if errors.Is(err, errDamaged) {
			ix.log.Warn("id index: damaged run removed; its range is rebuilt from the events", "run", f.name)
			os.Remove(path)
			continue
		}
		if err != nil {
			return fmt.Errorf("id index: %w", err)
		}
		ix.runs = append(ix.runs, r)
		covered = f.to
	}
	ix.covered = covered
	// Many events past the runs (an index never built, or lost) are
	// written to runs; the few of the last moments are read into mem.
	if maxSeq-covered > int64(4*ix.flushAt) {
		if err := ix.rebuild(ctx, covered+1, maxSeq); err != nil {
			return err
		}
		ix.covered = maxSeq
	}
	rows, err := ix.db.QueryContext(ctx, `SELECT idh, seq FROM events WHERE seq > ? AND idh IS NOT NULL ORDER BY seq`, ix.covered)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var h, seq int64
		if err := rows.Scan(&h, &seq); err != nil {
			return err
		}
		ix.addLocked(uint64(h), seq)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	ix.committed = max(maxSeq, ix.covered)
	return nil
}

func cmpInt(a, b int64) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// rebuild writes runs for the events with from <= seq <= to, from the
// events table, rebuildChunk ids a run.
func (ix *idIndex) rebuild(ctx context.Context, from, to int64) error {
	start := time.Now()
	var total int
	for from <= to {
		rows, err := ix.db.QueryContext(ctx, `SELECT idh, seq FROM events WHERE seq >= ? AND seq <= ? AND idh IS NOT NULL ORDER BY seq LIMIT ?`,
			from, to, rebuildChunk)
		if err != nil {
			return fmt.Errorf("id index: rebuild: %w", err)
		}
		pairs := make([]pair, 0, 1024)
		for rows.Next() {
			var h, seq int64
			if err := rows.Scan(&h, &seq); err != nil {
				rows.Close()
				return fmt.Errorf("id index: rebuild: %w", err)
			}
			pairs = append(pairs, pair{uint64(h), seq})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("id index: rebuild: %w", err)
		}
		end := to
		if len(pairs) == rebuildChunk {
			end = pairs[len(pairs)-1].seq
		}
		// A range without client ids gets its run too, empty, so that the
		// next start does not read it again.
		r, err := writeIDRun(ix.dir, from, end, pairs)
		if err != nil {
			return fmt.Errorf("id index: rebuild: %w", err)
		}
		ix.runs = append(ix.runs, r)
		total += len(pairs)
		from = end + 1
	}
	ix.log.Info("id index: rebuilt from the events", "ids", total, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// writeIDRun sorts pairs and writes them as the run of [from, to].
func writeIDRun(dir string, from, to int64, pairs []pair) (*idRun, error) {
	slices.SortFunc(pairs, comparePairs)
	w, err := newIDRunWriter(dir, from, to)
	if err != nil {
		return nil, err
	}
	for _, p := range pairs {
		if err := w.add(p); err != nil {
			w.abort()
			return nil, err
		}
	}
	return w.finish()
}

// addLocked puts one id in mem; the caller holds mu or owns ix.
func (ix *idIndex) addLocked(h uint64, seq int64) {
	if _, ok := ix.mem[h]; ok {
		ix.extra[h] = append(ix.extra[h], seq)
	} else {
		ix.mem[h] = seq
	}
	ix.nmem++
}

// committedUpTo records a commit: its ids (hash, seq), and its last seq.
func (ix *idIndex) committedUpTo(ids []pair, last int64) {
	ix.mu.Lock()
	for _, p := range ids {
		ix.addLocked(p.h, p.seq)
	}
	ix.committed = max(ix.committed, last)
	full := ix.nmem >= ix.flushAt
	ix.mu.Unlock()
	if full {
		select {
		case ix.wake <- struct{}{}:
		default:
		}
	}
}

// hit is a candidate of a look-up: the seq of an event whose id has the
// hash asked at index i.
type hit struct {
	seq int64
	i   int
}

// lookup appends to hits the seqs stored under each hash of hs that has
// any, in no particular order. It holds mu: no run is removed while it
// reads them. Each run's filters are asked about every hash in one loop,
// whose memory accesses overlap.
//
// With newest, the search of a hash stops at the newest place that holds
// it (mem, then the runs from the newest): the seqs found are those of the
// most recent ids with that hash, usually the one asked about, where a
// retry's id is found at the cost of one run. A caller that finds none of
// them to be its id asks again without newest, for every seq.
func (ix *idIndex) lookup(hs []uint64, newest bool, hits []hit) ([]hit, error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	// The global filter first: most new ids end there.
	g := ix.global
	cands := make([]int, 0, 32)
	for i, h := range hs {
		if s, ok := ix.mem[h]; ok {
			hits = append(hits, hit{s, i})
			for _, s := range ix.extra[h] {
				hits = append(hits, hit{s, i})
			}
			if newest {
				continue
			}
		}
		if g == nil || g.mayHold(h) {
			cands = append(cands, i)
		}
	}
	maybe := make([]int, 0, 16)
	var buf []int64
	for k := len(ix.runs) - 1; k >= 0 && len(cands) > 0; k-- {
		r := ix.runs[k]
		maybe = maybe[:0]
		for _, i := range cands {
			if r.mayHold(hs[i]) {
				maybe = append(maybe, i)
			}
		}
		var held []int
		for _, i := range maybe {
			var err error
			if buf, err = r.find(hs[i], buf[:0], ix.buf); err != nil {
				ix.suspect.Store(true)
				ix.poke()
				return hits, err
			}
			for _, s := range buf {
				hits = append(hits, hit{s, i})
			}
			if len(buf) > 0 {
				held = append(held, i)
			}
		}
		if newest && len(held) > 0 {
			cands = slices.DeleteFunc(cands, func(i int) bool {
				_, ok := slices.BinarySearch(held, i)
				return ok
			})
		}
	}
	return hits, nil
}

func (ix *idIndex) poke() {
	select {
	case ix.wake <- struct{}{}:
	default:
	}
}

// close stops the background work, after the step in progress, and
// closes the runs. mem is not written: the next start reads it again from
// the events.
func (ix *idIndex) close() {
	first := false
	ix.closeOnce.Do(func() { close(ix.stop); first = true })
	ix.stopped.Wait()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	// Nothing runs any more: the global filter holds every id of the runs,
	// which cover seqs up to covered. It is kept for the next start.
	if first && ix.global != nil && !ix.global.full() {
		if err := ix.global.write(filepath.Join(ix.dir, globalFile), ix.covered); err != nil {
			ix.log.Warn("id index: global filter not kept", "err", err)
		}
	}
	ix.closeRuns()
}

func (ix *idIndex) closeRuns() {
	for _, r := range ix.runs {
		r.close()
	}
	ix.runs = nil
}

// background flushes mem to a run when it is full, repairs damaged runs,
// and merges runs, one step at a time.
func (ix *idIndex) background() {
	defer ix.stopped.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ix.stop:
			return
		case <-ix.wake:
		case <-tick.C:
		}
		for {
			did, err := ix.step()
			if err != nil {
				ix.log.Error("id index", "err", err)
				break
			}
			if !did {
				break
			}
			select {
			case <-ix.stop:
				return
			default:
			}
		}
	}
}

// builder builds the global filter, after a start and whenever it holds
// more ids than it was sized for. Until one is built, look-ups ask every
// run's filters.
func (ix *idIndex) builder() {
	defer ix.stopped.Done()
	for {
		select {
		case <-ix.stop:
			return
		case <-ix.build:
		}
		start := time.Now()
		n, err := ix.buildGlobal()
		if err != nil {
			ix.log.Error("id index: global filter", "err", err)
			// Again in a moment (a merge may have removed a run read).
			time.AfterFunc(time.Second, func() {
				select {
				case ix.build <- struct{}{}:
				default:
				}
			})
			continue
		}
		if n >= 0 {
			ix.log.Info("id index: global filter built", "ids", n, "took", time.Since(start).Round(time.Millisecond))
		}
	}
}

// buildGlobal builds a global filter from the runs, and returns how many
// ids it read; -1 when the index is closing.
func (ix *idIndex) buildGlobal() (int64, error) {
	open := func(runs []*idRun) ([]*idRun, error) {
		// Own handles, opened under mu: a merge may remove the files.
		var out []*idRun
		for _, r := range runs {
			f, err := os.Open(r.path)
			if err != nil {
				for _, o := range out {
					o.close()
				}
				return nil, err
			}
			out = append(out, &idRun{path: r.path, f: f, count: r.count, first: r.first, sums: r.sums})
		}
		return out, nil
	}
	read := func(f *blockFilter, runs []*idRun) (int64, error) {
		defer func() {
			for _, r := range runs {
				r.close()
			}
		}()
		var n int64
		for _, r := range runs {
			rr := newIDRunReader(r)
			for {
				ok, err := rr.next()
				if err != nil {
					return n, err
				}
				if !ok {
					break
				}
				f.add(rr.cur.h)
				if n++; n%(1<<20) == 0 {
					select {
					case <-ix.stop:
						return -1, nil
					default:
					}
				}
			}
		}
		return n, nil
	}
	ix.mu.Lock()
	var total int64
	for _, r := range ix.runs {
		total += r.count
	}
	snapTo := ix.covered
	runs, err := open(ix.runs)
	ix.mu.Unlock()
	if err != nil {
		return 0, err
	}
	f := newBlockFilter(total*3/2 + int64(4*ix.flushAt))
	n, err := read(f, runs)
	if err != nil || n < 0 {
		return n, err
	}
	// From now on flushes fill f too; the runs written since the
	// snapshot are read into it.
	ix.mu.Lock()
	ix.pending = f
	var newer []*idRun
	for _, r := range ix.runs {
		if r.to > snapTo {
			newer = append(newer, r)
		}
	}
	newer, err = open(newer)
	ix.mu.Unlock()
	if err == nil {
		var m int64
		m, err = read(f, newer)
		n += m
		if m < 0 {
			n = -1
		}
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.pending = nil
	if err != nil || n < 0 {
		return n, err
	}
	ix.global = f
	return n, nil
}

// step does one piece of background work, and reports whether it did.
func (ix *idIndex) step() (bool, error) {
	ix.work.Lock()
	defer ix.work.Unlock()
	if did, err := ix.flush(false); did || err != nil {
		return did, err
	}
	if did, err := ix.repair(); did || err != nil {
		return did, err
	}
	if did := ix.verify(); did {
		return true, nil
	}
	return ix.merge()
}

// flush writes the ids of mem to a run when mem is full, or when force
// and it holds any.
func (ix *idIndex) flush(force bool) (bool, error) {
	ix.mu.Lock()
	if ix.nmem == 0 || (!force && ix.nmem < ix.flushAt) || ix.committed <= ix.covered {
		ix.mu.Unlock()
		return false, nil
	}
	from, to := ix.covered+1, ix.committed
	pairs := make([]pair, 0, ix.nmem)
	for h, s := range ix.mem {
		pairs = append(pairs, pair{h, s})
	}
	for h, ss := range ix.extra {
		for _, s := range ss {
			pairs = append(pairs, pair{h, s})
		}
	}
	ix.mu.Unlock()

	r, err := writeIDRun(ix.dir, from, to, pairs)
	if err != nil {
		return false, fmt.Errorf("flush: %w", err)
	}
	// The global filters learn the run's ids before the run replaces mem:
	// a filter may hold more than the runs, never less.
	ix.mu.Lock()
	g, p := ix.global, ix.pending
	ix.mu.Unlock()
	addAll := func(f *blockFilter) {
		for _, q := range pairs {
			f.add(q.h)
		}
	}
	for _, f := range []*blockFilter{g, p} {
		if f != nil {
			addAll(f)
		}
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, f := range []*blockFilter{ix.global, ix.pending} {
		if f != nil && f != g && f != p {
			addAll(f) // begun or finished meanwhile
		}
	}
	ix.runs = append(ix.runs, r)
	ix.covered = to
	if ix.global != nil && ix.global.full() {
		select {
		case ix.build <- struct{}{}:
		default:
		}
	}
	// Drop from mem what the run holds: the ids committed up to to. Those
	// committed since the copy stay.
	for h, s := range ix.mem {
		more, several := ix.extra[h]
		if !several {
			if s <= to {
				delete(ix.mem, h)
				ix.nmem--
			}
			continue
		}
		keep := make([]int64, 0, 1+len(more))
		for _, q := range append([]int64{s}, more...) {
			if q > to {
				keep = append(keep, q)
			} else {
				ix.nmem--
			}
		}
		delete(ix.extra, h)
		delete(ix.mem, h)
		if len(keep) > 0 {
			ix.mem[h] = keep[0]
			if len(keep) > 1 {
				ix.extra[h] = keep[1:]
			}
		}
	}
	return true, nil
}

// verify reads every run whole, checking every block, once a damaged
// block was met: where the disk damaged one run it may have damaged
// others. What it finds damaged, repair rebuilds.
func (ix *idIndex) verify() bool {
	if !ix.suspect.Swap(false) {
		return false
	}
	ix.mu.Lock()
	runs := slices.Clone(ix.runs)
	ix.mu.Unlock()
	for _, r := range runs {
		rr := newIDRunReader(r)
		for {
			ok, err := rr.next()
			if err != nil || !ok {
				break
			}
		}
	}
	return true
}

// repair rebuilds, from the events, a run found damaged while in use.
func (ix *idIndex) repair() (bool, error) {
	ix.mu.Lock()
	var bad *idRun
	for _, r := range ix.runs {
		if r.damaged.Load() {
			bad = r
			break
		}
	}
	ix.mu.Unlock()
	if bad == nil {
		return false, nil
	}
	ix.log.Warn("id index: damaged run; rebuilding it from the events", "run", filepath.Base(bad.path))
	tmp := &idIndex{dir: ix.dir, db: ix.db, log: ix.log}
	if err := tmp.rebuild(context.Background(), bad.from, bad.to); err != nil {
		return false, err
	}
	ix.mu.Lock()
	ix.replace([]*idRun{bad}, tmp.runs)
	ix.mu.Unlock()
	return true, nil
}

// replace puts runs in place of old, which are contiguous in ix.runs, and
// removes the files of old. The caller holds mu.
func (ix *idIndex) replace(old, runs []*idRun) {
	i := slices.Index(ix.runs, old[0])
	if i < 0 {
		return
	}
	ix.runs = slices.Replace(ix.runs, i, i+len(old), runs...)
	for _, r := range old {
		r.close()
		os.Remove(r.path)
	}
}

// tier is a run's size class: runs of one tier are merged together.
func (ix *idIndex) tier(r *idRun) int {
	t := 0
	for n := r.count / int64(ix.flushAt); n >= mergeFanIn; n /= mergeFanIn {
		t++
	}
	return t
}

// merge merges the newest mergeFanIn adjacent runs of one tier, if any.
func (ix *idIndex) merge() (bool, error) {
	ix.mu.Lock()
	var in []*idRun
	for i := len(ix.runs) - mergeFanIn; i >= 0; i-- {
		t := ix.tier(ix.runs[i])
		same := true
		for _, r := range ix.runs[i+1 : i+mergeFanIn] {
			if ix.tier(r) != t {
				same = false
				break
			}
		}
		if same {
			in = slices.Clone(ix.runs[i : i+mergeFanIn])
			break
		}
	}
	ix.mu.Unlock()
	if in == nil {
		return false, nil
	}
	r, err := ix.mergeRuns(in)
	if err != nil {
		return false, fmt.Errorf("merge: %w", err)
	}
	if r == nil {
		return false, nil // stopped
	}
	ix.mu.Lock()
	ix.replace(in, []*idRun{r})
	ix.mu.Unlock()
	return true, nil
}

// mergeRuns writes the run of the pairs of in, which are contiguous. It
// returns nil when the index is closing.
func (ix *idIndex) mergeRuns(in []*idRun) (*idRun, error) {
	w, err := newIDRunWriter(ix.dir, in[0].from, in[len(in)-1].to)
	if err != nil {
		return nil, err
	}
	defer w.abort()
	rs := make([]*idRunReader, len(in))
	for i, r := range in {
		rs[i] = newIDRunReader(r)
		if _, err := rs[i].next(); err != nil {
			return nil, err
		}
	}
	for n := 0; ; n++ {
		if n%(1<<16) == 0 {
			select {
			case <-ix.stop:
				return nil, nil
			default:
			}
		}
		var min *idRunReader
		for _, rr := range rs {
			if !rr.done && (min == nil || comparePairs(rr.cur, min.cur) < 0) {
				min = rr
			}
		}
		if min == nil {
			break
		}
		if err := w.add(min.cur); err != nil {
			return nil, err
		}
		if _, err := min.next(); err != nil {
			return nil, err
		}
	}
	return w.finish()
}
