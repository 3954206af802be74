package sqlite

import (
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
