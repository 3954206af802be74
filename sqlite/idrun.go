package sqlite

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/FastFilter/xorfilter"
)

// An idRun (a run) is an immutable file of the id index: the (id hash, seq) pairs of
// the client ids of the events with from <= seq <= to, sorted by hash, and
// after them what is kept in memory to search it without reading it: a
// binary fuse filter for each partition of about a million hashes, and the
// first hash of each block of blockEntries pairs. Only a hash that a
// filter may hold costs a read of the file: one block, or two.
//
// Layout:
//
//	pairs:   count × (hash uint64, seq int64), little endian
//	meta:    for each partition: first hash, filter; for each block: first
//	         hash, CRC-32C of the block
//	trailer: meta offset, meta length, count, from, to (uint64 each),
//	         CRC-32C of meta and trailer (uint32), magic (4 bytes)
//
// Every byte is checked before it is used: the meta and trailer when the
// run is opened, a block each time it is read. A run that fails a check is
// never trusted: it is rebuilt from the events table.
type idRun struct {
	from, to int64
	count    int64
	path     string
	f        *os.File
	data     []byte // the file, mapped; nil: read with pread
	parts    []runPart
	first    []uint64 // first hash of each block
	sums     []uint32 // CRC-32C of each block
	damaged  atomic.Bool
}

type runPart struct {
	first  uint64
	filter xorfilter.BinaryFuse[uint8]
}

const (
	pairBytes    = 16
	blockEntries = 256
	blockBytes   = blockEntries * pairBytes
	// partEntries is the size of a filter's partition: building a filter
	// takes about 30 bytes per key, so a merge of any size holds 30 MB.
	partEntries  = 1 << 20
	trailerBytes = 5*8 + 4 + 4
	runMagic     = "odx1"
	runExt       = ".ids"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errDamaged reports a run that failed a check.
var errDamaged = errors.New("id index: damaged run")

func runName(from, to int64) string {
	return fmt.Sprintf("%020d-%020d%s", from, to, runExt)
}

// parseRunName returns the range a run's file name claims.
func parseRunName(name string) (from, to int64, ok bool) {
	base, found := strings.CutSuffix(name, runExt)
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(base, "-")
	if !found {
		return 0, 0, false
	}
	from, err1 := strconv.ParseInt(a, 10, 64)
	to, err2 := strconv.ParseInt(b, 10, 64)
	return from, to, err1 == nil && err2 == nil && from >= 1 && from <= to
}

// pair is one entry of a run.
type pair struct {
	h   uint64
	seq int64
}

func comparePairs(a, b pair) int {
	if a.h != b.h {
		if a.h < b.h {
			return -1
		}
		return 1
	}
	if a.seq < b.seq {
		return -1
	}
	if a.seq > b.seq {
		return 1
	}
	return 0
}

// idRunWriter writes a run from pairs given in order.
type idRunWriter struct {
	path, tmp string
	f         *os.File
	w         *bufio.Writer
	from, to  int64
	count     int64
	block     []byte
	first     []uint64
	sums      []uint32
	parts     []runPart
	keys      []uint64 // hashes of the partition being filled, distinct
	partFirst uint64
	last      uint64
	b         xorfilter.BinaryFuseBuilder
}

func newIDRunWriter(dir string, from, to int64) (*idRunWriter, error) {
	path := filepath.Join(dir, runName(from, to))
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &idRunWriter{path: path, tmp: tmp, f: f, w: bufio.NewWriterSize(f, 1<<20), from: from, to: to,
		block: make([]byte, 0, blockBytes)}, nil
}

func (rw *idRunWriter) add(p pair) error {
	if rw.count > 0 && p.h < rw.last {
		return errors.New("id index: pairs out of order")
	}
	// A partition ends between two distinct hashes, so that every pair of
	// a hash is in the partition its filter answers for.
	if len(rw.keys) >= partEntries && p.h != rw.last {
		if err := rw.endPart(); err != nil {
			return err
		}
	}
	if len(rw.keys) == 0 {
		rw.partFirst = p.h
		rw.keys = append(rw.keys, p.h)
	} else if p.h != rw.last {
		rw.keys = append(rw.keys, p.h)
	}
	if len(rw.block) == 0 {
		rw.first = append(rw.first, p.h)
	}
	rw.block = binary.LittleEndian.AppendUint64(rw.block, p.h)
	rw.block = binary.LittleEndian.AppendUint64(rw.block, uint64(p.seq))
	if len(rw.block) == blockBytes {
		if err := rw.endBlock(); err != nil {
			return err
		}
	}
	rw.last = p.h
	rw.count++
	return nil
}

func (rw *idRunWriter) endBlock() error {
	rw.sums = append(rw.sums, crc32.Checksum(rw.block, castagnoli))
	_, err := rw.w.Write(rw.block)
	rw.block = rw.block[:0]
	return err
}

func (rw *idRunWriter) endPart() error {
	f, err := xorfilter.BuildBinaryFuse[uint8](&rw.b, rw.keys)
	if err != nil {
		return fmt.Errorf("id index: filter: %w", err)
	}
	// The builder reuses its memory; the filter keeps its own.
	f.Fingerprints = slices.Clone(f.Fingerprints)
	rw.parts = append(rw.parts, runPart{first: rw.partFirst, filter: f})
	rw.keys = rw.keys[:0]
	return nil
}

// finish writes the meta and trailer, makes the file durable under its
// name, and returns the run, open.
func (rw *idRunWriter) finish() (*idRun, error) {
	defer rw.abort()
	if len(rw.block) > 0 {
		if err := rw.endBlock(); err != nil {
			return nil, err
		}
	}
	if len(rw.keys) > 0 {
		if err := rw.endPart(); err != nil {
			return nil, err
		}
	}
	meta := encodeMeta(rw.parts, rw.first, rw.sums)
	metaOff := uint64(rw.count * pairBytes)
	tr := make([]byte, 0, trailerBytes)
	for _, v := range []uint64{metaOff, uint64(len(meta)), uint64(rw.count), uint64(rw.from), uint64(rw.to)} {
		tr = binary.LittleEndian.AppendUint64(tr, v)
	}
	sum := crc32.Update(crc32.Checksum(meta, castagnoli), castagnoli, tr)
	tr = binary.LittleEndian.AppendUint32(tr, sum)
	tr = append(tr, runMagic...)
	if _, err := rw.w.Write(meta); err != nil {
		return nil, err
	}
	if _, err := rw.w.Write(tr); err != nil {
		return nil, err
	}
	if err := rw.w.Flush(); err != nil {
		return nil, err
	}
	if err := rw.f.Sync(); err != nil {
		return nil, err
	}
	if err := rw.f.Close(); err != nil {
		return nil, err
	}
	rw.f = nil
	if err := os.Rename(rw.tmp, rw.path); err != nil {
		return nil, err
	}
	if err := syncDir(filepath.Dir(rw.path)); err != nil {
		return nil, err
	}
	f, err := os.Open(rw.path)
	if err != nil {
		return nil, err
	}
	r := &idRun{from: rw.from, to: rw.to, count: rw.count, path: rw.path, f: f,
		parts: rw.parts, first: rw.first, sums: rw.sums}
	r.mapFile()
	return r, nil
}

// abort removes the file of a run not finished.
func (rw *idRunWriter) abort() {
	if rw.f != nil {
		rw.f.Close()
		rw.f = nil
		os.Remove(rw.tmp)
	}
}

func encodeMeta(parts []runPart, first []uint64, sums []uint32) []byte {
	n := 8
	for _, p := range parts {
		n += 8 + 8 + 4*5 + len(p.filter.Fingerprints)
	}
	n += 8 + 12*len(first)
	b := make([]byte, 0, n)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(parts)))
	for _, p := range parts {
		f := &p.filter
		b = binary.LittleEndian.AppendUint64(b, p.first)
		b = binary.LittleEndian.AppendUint64(b, f.Seed)
		for _, v := range []uint32{f.SegmentLength, f.SegmentLengthMask, f.SegmentCount, f.SegmentCountLength, uint32(len(f.Fingerprints))} {
			b = binary.LittleEndian.AppendUint32(b, v)
		}
		b = append(b, f.Fingerprints...)
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(len(first)))
	for _, h := range first {
		b = binary.LittleEndian.AppendUint64(b, h)
	}
	for _, s := range sums {
		b = binary.LittleEndian.AppendUint32(b, s)
	}
	return b
}

// openIDRun opens the run at path and checks its meta and trailer; a run
// that fails a check answers errDamaged.
func openIDRun(path string, from, to int64) (*idRun, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := readIDRun(f, from, to)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.path = path
	r.mapFile()
	return r, nil
}

func readIDRun(f *os.File, from, to int64) (*idRun, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if size < trailerBytes {
		return nil, errDamaged
	}
	tr := make([]byte, trailerBytes)
	if _, err := f.ReadAt(tr, size-trailerBytes); err != nil {
		return nil, err
	}
	if string(tr[trailerBytes-4:]) != runMagic {
		return nil, errDamaged
	}
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(tr[8*i:]) }
	metaOff, metaLen, count := u(0), u(1), u(2)
	if int64(u(3)) != from || int64(u(4)) != to || metaOff != count*pairBytes ||
		metaOff+metaLen+trailerBytes != uint64(size) || metaLen > 1<<40 {
		return nil, errDamaged
	}
	meta := make([]byte, metaLen)
	if _, err := f.ReadAt(meta, int64(metaOff)); err != nil {
		return nil, err
	}
	sum := crc32.Update(crc32.Checksum(meta, castagnoli), castagnoli, tr[:5*8])
	if sum != binary.LittleEndian.Uint32(tr[5*8:]) {
		return nil, errDamaged
	}
	r := &idRun{from: from, to: to, count: int64(count), f: f}
	if err := r.decodeMeta(meta); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *idRun) decodeMeta(b []byte) error {
	short := func(n int) bool { return len(b) < n }
	if short(8) {
		return errDamaged
	}
	nparts := binary.LittleEndian.Uint64(b)
	b = b[8:]
	if nparts > uint64(len(b)) {
		return errDamaged
	}
	r.parts = make([]runPart, nparts)
	for i := range r.parts {
		if short(36) {
			return errDamaged
		}
		p := &r.parts[i]
		p.first = binary.LittleEndian.Uint64(b)
		f := &p.filter
		f.Seed = binary.LittleEndian.Uint64(b[8:])
		f.SegmentLength = binary.LittleEndian.Uint32(b[16:])
		f.SegmentLengthMask = binary.LittleEndian.Uint32(b[20:])
		f.SegmentCount = binary.LittleEndian.Uint32(b[24:])
		f.SegmentCountLength = binary.LittleEndian.Uint32(b[28:])
		n := int(binary.LittleEndian.Uint32(b[32:]))
		b = b[36:]
		// The shape of a binary fuse filter, so that no look-up reads past
		// its fingerprints: segments of a power of two, the mask one less,
		// and two segments after the last that a key starts in.
		l := uint64(f.SegmentLength)
		if short(n) || l == 0 || l&(l-1) != 0 || uint64(f.SegmentLengthMask) != l-1 ||
			uint64(f.SegmentCountLength)%l != 0 || uint64(f.SegmentCountLength)+2*l != uint64(n) {
			return errDamaged
		}
		f.Fingerprints = slices.Clone(b[:n])
		b = b[n:]
	}
	if short(8) {
		return errDamaged
	}
	nblocks := binary.LittleEndian.Uint64(b)
	b = b[8:]
	if nblocks != (uint64(r.count)+blockEntries-1)/blockEntries || uint64(len(b)) != 12*nblocks {
		return errDamaged
	}
	r.first = make([]uint64, nblocks)
	r.sums = make([]uint32, nblocks)
	for i := range r.first {
		r.first[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	b = b[8*nblocks:]
	for i := range r.sums {
		r.sums[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return nil
}

func (r *idRun) close() {
	r.unmapFile()
	if r.f != nil {
		r.f.Close()
	}
}

// mayHold reports whether the run may hold hash h: false is certain.
func (r *idRun) mayHold(h uint64) bool {
	// The last partition whose first hash is at most h.
	lo, hi := 0, len(r.parts)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.parts[m].first <= h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return false
	}
	return r.parts[lo-1].filter.Contains(h)
}

// blockLen is the number of pairs of block b.
func (r *idRun) blockLen(b int) int {
	if b == len(r.first)-1 {
		if n := int(r.count % blockEntries); n != 0 {
			return n
		}
	}
	return blockEntries
}

// block returns block b, checked against its CRC at every read (a block
// damaged after an earlier read is never trusted): from the mapped file,
// in place, with no copy (the caller guards against a fault, see find),
// or read into buf.
func (r *idRun) block(b int, buf []byte) ([]byte, error) {
	n := r.blockLen(b) * pairBytes
	off := int64(b) * blockBytes
	var blk []byte
	if r.data != nil {
		if off+int64(n) > int64(len(r.data)) {
			r.damaged.Store(true)
			return nil, fmt.Errorf("%w: %s, block %d", errDamaged, filepath.Base(r.path), b)
		}
		blk = r.data[off : off+int64(n)]
	} else {
		blk = buf[:n]
		if _, err := r.f.ReadAt(blk, off); err != nil {
			return nil, err
		}
	}
	if crc32.Checksum(blk, castagnoli) != r.sums[b] {
		r.damaged.Store(true)
		return nil, fmt.Errorf("%w: %s, block %d", errDamaged, filepath.Base(r.path), b)
	}
	return blk, nil
}

// find appends to seqs the seq of every pair of hash h. In a mapped run a
// fault (a file cut under the mapping) is reported damaged, never a crash.
func (r *idRun) find(h uint64, seqs []int64, buf []byte) (_ []int64, err error) {
	// Blocks before i start at or below h; the pairs of h begin in block
	// i-1, or before it when several blocks start with h.
	i := r.blockAfter(h)
	if i == 0 {
		return seqs, nil
	}
	b := i - 1
	for b > 0 && r.first[b] == h {
		b--
	}
	if r.data != nil {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			// Only a fault reading the mapping is damage; anything else
			// is a bug, and goes on as a panic.
			if v := recover(); v != nil {
				if _, fault := v.(interface{ Addr() uintptr }); !fault {
					panic(v)
				}
				r.damaged.Store(true)
				err = fmt.Errorf("%w: %s, block %d unreadable", errDamaged, filepath.Base(r.path), b)
			}
		}()
	}
	for ; b < i; b++ {
		blk, err := r.block(b, buf)
		if err != nil {
			return seqs, err
		}
		n := len(blk) / pairBytes
		k := r.firstAtLeast(b, blk, h)
		for ; k < n && binary.LittleEndian.Uint64(blk[k*pairBytes:]) == h; k++ {
			seqs = append(seqs, int64(binary.LittleEndian.Uint64(blk[k*pairBytes+8:])))
		}
	}
	return seqs, nil
}

// firstAtLeast returns the index of the first pair of block b (blk) whose
// hash is at least h, n if none. The pairs of a block are sorted by hash,
// spread evenly between its first hash and the next block's: the search
// starts where h falls and steps from there, a cache line or two of the
// block where a binary search reads eight.
func (r *idRun) firstAtLeast(b int, blk []byte, h uint64) int {
	n := len(blk) / pairBytes
	at := func(k int) uint64 { return binary.LittleEndian.Uint64(blk[k*pairBytes:]) }
	lo, hi := r.first[b], at(n-1)
	if b+1 < len(r.first) {
		hi = r.first[b+1]
	}
	// In the last block h may be far above its last hash: the guess is
	// clamped as a float, before a conversion that could overflow.
	k := 0
	if h > lo && hi > lo {
		if x := float64(h-lo) / float64(hi-lo) * float64(n); x < float64(n-1) {
			k = int(x)
		} else {
			k = n - 1
		}
	}
	if at(k) >= h {
		for k > 0 && at(k-1) >= h {
			k--
		}
		return k
	}
	for k < n && at(k) < h {
		k++
	}
	return k
}

// blockAfter returns the index of the first block whose first hash is
// above h. Hashes are uniform, so the search starts where h falls between
// the first and the last, and widens by doubling from there: a few reads
// of first, where a binary search over millions of blocks takes twenty.
func (r *idRun) blockAfter(h uint64) int {
	f := r.first
	n := len(f)
	if n == 0 || f[0] > h {
		return 0
	}
	g := n - 1
	if lo, hi := f[0], f[n-1]; h < hi {
		g = min(int(float64(h-lo)/float64(hi-lo)*float64(n-1)), n-1)
	}
	// Narrow to l < answer <= u, with f[l] <= h and f[u] > h (or u == n).
	var l, u int
	if f[g] <= h {
		l, u = g, g+1
		for s := 1; u < n && f[u] <= h; s *= 2 {
			l, u = u, min(u+s, n)
		}
	} else {
		l, u = g-1, g
		for s := 1; l > 0 && f[l] > h; s *= 2 {
			u, l = l, max(l-s, 0)
		}
	}
	return l + 1 + sort.Search(u-l-1, func(k int) bool { return f[l+1+k] > h })
}

// idRunReader reads a run's pairs in order, checking each block.
type idRunReader struct {
	r    *idRun
	sr   *bufio.Reader
	b    int
	blk  []byte
	pos  int
	cur  pair
	done bool
}

func newIDRunReader(r *idRun) *idRunReader {
	sr := bufio.NewReaderSize(io.NewSectionReader(r.f, 0, r.count*pairBytes), 1<<20)
	return &idRunReader{r: r, sr: sr, blk: make([]byte, blockBytes)}
}

// next advances to the next pair; false at the end or on an error.
func (rr *idRunReader) next() (bool, error) {
	if rr.pos == 0 || rr.pos == len(rr.blk) {
		if rr.b == len(rr.r.first) {
			rr.done = true
			return false, nil
		}
		rr.blk = rr.blk[:rr.r.blockLen(rr.b)*pairBytes]
		if _, err := io.ReadFull(rr.sr, rr.blk); err != nil {
			return false, err
		}
		if crc32.Checksum(rr.blk, castagnoli) != rr.r.sums[rr.b] {
			rr.r.damaged.Store(true)
			return false, fmt.Errorf("%w: %s, block %d", errDamaged, filepath.Base(rr.r.path), rr.b)
		}
		rr.b++
		rr.pos = 0
	}
	rr.cur = pair{binary.LittleEndian.Uint64(rr.blk[rr.pos:]), int64(binary.LittleEndian.Uint64(rr.blk[rr.pos+8:]))}
	rr.pos += pairBytes
	return true, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
