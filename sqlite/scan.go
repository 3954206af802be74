package sqlite

import (
	"bufio"
	"container/heap"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/odometer-dev/odometer"
)

// scanRun is how many events are read, in seq order, by one short query
// and sorted in memory. Larger ranges are sorted as runs written to
// temporary files and merged: no read transaction stays open for the
// whole range, so the write-ahead log can be checkpointed while a long
// aggregation runs.
var scanRun = 1_000_000

// scanned is one event as the aggregator needs it.
type scanned struct {
	customer, eventType string
	seq                 int64
	value               float64
	ts                  int64
	metadata            []byte
}

// scanRunMetadata bounds the metadata bytes of one run in memory.
const scanRunMetadata = 64 << 20

// cmp orders by customer: the aggregator folds one customer at a time, in
// any order of its events.
func (a *scanned) cmp(b *scanned) int { return strings.Compare(a.customer, b.customer) }

// ScanEvents implements odometer.AggregationStore.
func (s *Store) ScanEvents(ctx context.Context, after, upto int64, fromCustomer string, metadataTypes []string, fn func(*odometer.Event) error) error {
	var runs []*os.File
	defer func() {
		for _, f := range runs {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	var last []scanned
	for next := after; next < upto; {
		batch, end, err := s.readRun(ctx, next, upto, fromCustomer, metadataTypes)
		if err != nil {
			return err
		}
		next = end
		slices.SortFunc(batch, func(a, b scanned) int { return a.cmp(&b) })
		if next >= upto && len(runs) == 0 {
			last = batch // all of it fits in one run: no file
			break
		}
		f, err := writeRun(batch)
		if err != nil {
			return fmt.Errorf("scan events: %w", err)
		}
		runs = append(runs, f)
	}
	var e odometer.Event
	emit := func(r *scanned) error {
		if r.customer != e.CustomerID {
			e.CustomerID = r.customer
		}
		if r.eventType != e.EventType {
			e.EventType = r.eventType
		}
		e.Seq, e.Value, e.Time, e.Metadata = r.seq, r.value, fromMS(r.ts), r.metadata
		return fn(&e)
	}
	if len(runs) == 0 {
		for i := range last {
			if err := ctx.Err(); err != nil && i%4096 == 0 {
				return err
			}
			if err := emit(&last[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return mergeRuns(runs, emit)
}

// readRun reads up to scanRun events with after < seq <= upto, in seq
// order, and returns them with the seq to continue after.
func (s *Store) readRun(ctx context.Context, after, upto int64, fromCustomer string, metadataTypes []string) ([]scanned, int64, error) {
	metadata := "NULL"
	var args []any
	if len(metadataTypes) > 0 {
		metadata = "CASE WHEN event_type IN (?" + strings.Repeat(",?", len(metadataTypes)-1) + ") THEN metadata END"
		for _, t := range metadataTypes {
			args = append(args, t)
		}
	}
	rows, err := s.read.QueryContext(ctx, `SELECT customer_id, event_type, seq, value, ts, `+metadata+` FROM events
		WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`, append(args, after, upto, scanRun)...)
	if err != nil {
		return nil, 0, storeError("scan events", err)
	}
	defer rows.Close()
	out := make([]scanned, 0, min(scanRun, int(min(upto-after, math.MaxInt32))))
	var customer, eventType sql.RawBytes
	strs := map[string]string{} // one string for each customer and type
	intern := func(b []byte) string {
		if s, ok := strs[string(b)]; ok {
			return s
		}
		s := string(b)
		strs[s] = s
		return s
	}
	n, metaBytes, full := 0, 0, false
	for rows.Next() {
		var r scanned
		if err := rows.Scan(&customer, &eventType, &r.seq, &r.value, &r.ts, &r.metadata); err != nil {
			return nil, 0, storeError("scan events", err)
		}
		n++
		after = r.seq
		if string(customer) <= fromCustomer {
			continue // done by the run that stopped midway
		}
		r.customer, r.eventType = intern(customer), intern(eventType)
		out = append(out, r)
		if metaBytes += len(r.metadata); metaBytes >= scanRunMetadata {
			full = true // a run holds at most this much metadata in memory
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, storeError("scan events", err)
	}
	if n < scanRun && !full {
		after = upto // the range is read
	}
	return out, after, nil
}

// writeRun writes sorted events to a temporary file.
func writeRun(batch []scanned) (*os.File, error) {
	f, err := os.CreateTemp("", "odometer-scan-*.run")
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var b []byte
	for i := range batch {
		r := &batch[i]
		b = binary.AppendUvarint(b[:0], uint64(len(r.customer)))
		b = append(b, r.customer...)
		b = binary.AppendUvarint(b, uint64(len(r.eventType)))
		b = append(b, r.eventType...)
		b = binary.AppendVarint(b, r.seq)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.value))
		b = binary.AppendVarint(b, r.ts)
		b = binary.AppendUvarint(b, uint64(len(r.metadata)))
		b = append(b, r.metadata...)
		if _, err := w.Write(b); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// runReader reads back what writeRun wrote.
type runReader struct {
	r   *bufio.Reader
	cur scanned
	// interned strings, so that equal values share one
	prevC, prevT string
}

func (rr *runReader) next() (bool, error) {
	str := func(prev *string) error {
		n, err := binary.ReadUvarint(rr.r)
		if err != nil {
			return err
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(rr.r, b); err != nil {
			return err
		}
		if string(b) != *prev {
			*prev = string(b)
		}
		return nil
	}
	if err := str(&rr.prevC); err != nil {
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		return false, err
	}
	if err := str(&rr.prevT); err != nil {
		return false, err
	}
	seq, err := binary.ReadVarint(rr.r)
	if err != nil {
		return false, err
	}
	var v [8]byte
	if _, err := io.ReadFull(rr.r, v[:]); err != nil {
		return false, err
	}
	ts, err := binary.ReadVarint(rr.r)
	if err != nil {
		return false, err
	}
	n, err := binary.ReadUvarint(rr.r)
	if err != nil {
		return false, err
	}
	var md []byte
	if n > 0 {
		md = make([]byte, n)
		if _, err := io.ReadFull(rr.r, md); err != nil {
			return false, err
		}
	}
	rr.cur = scanned{rr.prevC, rr.prevT, seq, math.Float64frombits(binary.LittleEndian.Uint64(v[:])), ts, md}
	return true, nil
}

type runHeap []*runReader

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return h[i].cur.cmp(&h[j].cur) < 0 }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(*runReader)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeRuns calls emit with the events of the sorted runs, in order.
func mergeRuns(runs []*os.File, emit func(*scanned) error) error {
	h := make(runHeap, 0, len(runs))
	for _, f := range runs {
		rr := &runReader{r: bufio.NewReaderSize(f, 1<<20)}
		ok, err := rr.next()
		if err != nil {
			return fmt.Errorf("scan events: read run: %w", err)
		}
		if ok {
			h = append(h, rr)
		}
	}
	heap.Init(&h)
	for h.Len() > 0 {
		rr := h[0]
		if err := emit(&rr.cur); err != nil {
			return err
		}
		ok, err := rr.next()
		if err != nil {
			return fmt.Errorf("scan events: read run: %w", err)
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	return nil
}
