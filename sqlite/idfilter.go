package sqlite

import (
	"bufio"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
)

// blockFilter is a split block Bloom filter (the layout of Parquet's): a
// key sets one bit in each of the eight 32-bit words of one 32-byte block,
// so that a look-up reads one cache line, however large the filter. It is
// the id index's first question about an id: a new id is told apart from
// every run with one memory access, where asking each run's own filter
// costs three per run.
//
// Bits are set and read atomically: ids are added while look-ups run.
type blockFilter struct {
	blocks []uint32 // 8 words a block
	n      atomic.Int64
	cap    int64
}

var sbbfSalt = [8]uint32{0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d, 0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31}

// globalBits is the filter's bits per key at its capacity: 8 bits, a
// false positive rate of about 3% when full, lower until then.
const globalBits = 8

func newBlockFilter(capacity int64) *blockFilter {
	nb := max(1, capacity*globalBits/256)
	return &blockFilter{blocks: make([]uint32, 8*nb), cap: capacity}
}

// mix spreads the bits of an id hash (FNV-64a) over the 64 bits: the
// finalizer of MurmurHash3.
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func (f *blockFilter) block(h uint64) []uint32 {
	i := ((h >> 32) * uint64(len(f.blocks)/8)) >> 32
	return f.blocks[8*i : 8*i+8 : 8*i+8]
}

func (f *blockFilter) add(h uint64) {
	h = mix(h)
	b := f.block(h)
	x := uint32(h)
	for i := range 8 {
		atomic.OrUint32(&b[i], 1<<((x*sbbfSalt[i])>>27))
	}
	f.n.Add(1)
}

// mayHold reports whether h may have been added: false is certain.
func (f *blockFilter) mayHold(h uint64) bool {
	h = mix(h)
	b := f.block(h)
	x := uint32(h)
	for i := range 8 {
		if atomic.LoadUint32(&b[i])&(1<<((x*sbbfSalt[i])>>27)) == 0 {
			return false
		}
	}
	return true
}

// full reports whether the filter holds more keys than it was sized for.
func (f *blockFilter) full() bool { return f.n.Load() > f.cap }

// The global filter is written beside the runs when the store closes, so
// that a restart after a clean stop need not build it again: magic, the
// seq the runs covered, capacity, keys, number of words, the words, and a
// CRC-32C of all that. It is used only if the runs cover the same seqs at
// the next start, and only if its checksum holds; otherwise it is built
// again in the background.
const (
	globalFile  = "global.filter"
	globalMagic = "odg1"
)

func (f *blockFilter) write(path string, covered int64) error {
	tmp := path + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	defer out.Close()
	w := bufio.NewWriterSize(out, 1<<20)
	sum := crc32.New(castagnoli)
	mw := io.MultiWriter(w, sum)
	head := []byte(globalMagic)
	for _, v := range []uint64{uint64(covered), uint64(f.cap), uint64(f.n.Load()), uint64(len(f.blocks))} {
		head = binary.LittleEndian.AppendUint64(head, v)
	}
	if _, err := mw.Write(head); err != nil {
		return err
	}
	buf := make([]byte, 0, 1<<16)
	for i := range f.blocks {
		buf = binary.LittleEndian.AppendUint32(buf, atomic.LoadUint32(&f.blocks[i]))
		if len(buf) == cap(buf) {
			if _, err := mw.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if _, err := mw.Write(buf); err != nil {
		return err
	}
	if _, err := w.Write(binary.LittleEndian.AppendUint32(nil, sum.Sum32())); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// readBlockFilter reads the global filter written at path for runs that
// covered seqs up to covered. It answers errDamaged for a file that fails
// a check, errStale for one written for other runs.
func readBlockFilter(path string, covered int64) (*blockFilter, error) {
	in, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(in, 1<<20)
	sum := crc32.New(castagnoli)
	tr := io.TeeReader(r, sum)
	head := make([]byte, 4+4*8)
	if _, err := io.ReadFull(tr, head); err != nil || string(head[:4]) != globalMagic {
		return nil, errDamaged
	}
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(head[4+8*i:]) }
	words := u(3)
	if words%8 != 0 || words == 0 || uint64(fi.Size()) != uint64(len(head))+4*words+4 {
		return nil, errDamaged
	}
	f := &blockFilter{blocks: make([]uint32, words), cap: int64(u(1))}
	f.n.Store(int64(u(2)))
	buf := make([]byte, 1<<16)
	for i := uint64(0); i < words; {
		n := min(uint64(len(buf)/4), words-i)
		if _, err := io.ReadFull(tr, buf[:4*n]); err != nil {
			return nil, errDamaged
		}
		for k := uint64(0); k < n; k++ {
			f.blocks[i+k] = binary.LittleEndian.Uint32(buf[4*k:])
		}
		i += n
	}
	want := sum.Sum32()
	var tail [4]byte
	if _, err := io.ReadFull(r, tail[:]); err != nil || binary.LittleEndian.Uint32(tail[:]) != want {
		return nil, errDamaged
	}
	if int64(u(0)) != covered {
		return nil, errStale
	}
	return f, nil
}

// errStale reports a global filter written for other runs than those of
// the index.
var errStale = errors.New("id index: global filter of other runs")
