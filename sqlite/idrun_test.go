package sqlite

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"testing"
)

// TestIDRun_CutUnderTheMap: a run's file cut while it is mapped (by hand,
// or by a failing disk) is reported damaged on the next read of a block
// past the cut, never a crash of the process.
func TestIDRun_CutUnderTheMap(t *testing.T) {
	var pairs []pair
	for i := uint64(1); i <= 100_000; i++ {
		pairs = append(pairs, pair{h: i * 2654435761, seq: int64(i)})
	}
	r := mustWriteRun(t, pairs)
	defer r.close()
	buf := make([]byte, blockBytes)
	last := r.first[len(r.first)-1]
	if seqs, err := r.find(last, nil, buf); err != nil || len(seqs) != 1 {
		t.Fatalf("the last block before the cut: %v, %v", seqs, err)
	}
	if err := os.Truncate(r.path, blockBytes); err != nil {
		t.Fatal(err)
	}
	_, err := r.find(last, nil, buf)
	if r.data != nil && !errors.Is(err, errDamaged) {
		t.Fatalf("a block past the cut: %v, want errDamaged", err)
	}
	if r.data == nil && err == nil {
		t.Fatal("a block past the cut read without an error")
	}
}

// TestIDRun_BlockAfter: the search that starts where a hash falls finds
// the block a binary search finds, on uniform hashes and on runs where
// they are anything but (equal, clustered, at the ends of the range).
func TestIDRun_BlockAfter(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	shapes := map[string]func(n int) []uint64{
		"uniform": func(n int) []uint64 {
			f := make([]uint64, n)
			for i := range f {
				f[i] = r.Uint64()
			}
			return f
		},
		"clustered": func(n int) []uint64 {
			f := make([]uint64, n)
			for i := range f {
				f[i] = r.Uint64N(1000)
				if i%7 == 0 {
					f[i] = math.MaxUint64 - r.Uint64N(3)
				}
			}
			return f
		},
		"equal": func(n int) []uint64 {
			f := make([]uint64, n)
			for i := range f {
				f[i] = 42 + uint64(i/50)
			}
			return f
		},
	}
	for name, shape := range shapes {
		t.Run(name, func(t *testing.T) {
			for _, n := range []int{1, 2, 3, 10, 1000, 100_000} {
				run := &idRun{first: shape(n)}
				slices.Sort(run.first)
				asks := []uint64{0, 1, 41, 42, 43, math.MaxUint64, math.MaxUint64 - 1}
				for _, v := range run.first[:min(n, 200)] {
					asks = append(asks, v, v-1, v+1)
				}
				for range 2000 {
					asks = append(asks, r.Uint64(), run.first[r.IntN(n)])
				}
				for _, h := range asks {
					want := sort.Search(n, func(i int) bool { return run.first[i] > h })
					if got := run.blockAfter(h); got != want {
						t.Fatalf("n=%d h=%d: blockAfter %d, binary search %d", n, h, got, want)
					}
				}
			}
		})
	}
}

// TestIDRun_Find: every seq of a hash is found, and none of another, in a
// run of random hashes with some shared by several ids (across blocks
// too), and hashes at the ends of the range, each read twice.
func TestIDRun_Find(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var pairs []pair
	seq := int64(0)
	add := func(h uint64, times int) {
		for range times {
			seq++
			pairs = append(pairs, pair{h: h, seq: seq})
		}
	}
	for range 50_000 {
		add(r.Uint64(), 1)
	}
	add(0, 3)
	add(math.MaxUint64, 2)
	add(r.Uint64(), 700) // across three blocks
	for range 100 {
		add(r.Uint64(), 1+r.IntN(5))
	}
	want := map[uint64][]int64{}
	for _, p := range pairs {
		want[p.h] = append(want[p.h], p.seq)
	}
	run := mustWriteRun(t, pairs)
	defer run.close()
	buf := make([]byte, blockBytes)
	asks := []uint64{1, math.MaxUint64 - 1}
	for h := range want {
		asks = append(asks, h, h+1, h-1)
	}
	for pass := range 2 {
		for _, h := range asks {
			got, err := run.find(h, nil, buf)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			w := slices.Clone(want[h])
			slices.Sort(w)
			if !slices.Equal(got, w) {
				t.Fatalf("pass %d, hash %d: found %v, want %v", pass, h, got, w)
			}
		}
	}
}

// TestIDRun_FindPastTheLastBlock: a hash far above the last block's hashes,
// when they lie close together, is simply not there, mapped or read with
// pread: the guess inside the block does not overflow.
func TestIDRun_FindPastTheLastBlock(t *testing.T) {
	var pairs []pair
	for i := range blockEntries {
		pairs = append(pairs, pair{h: uint64(i + 1), seq: int64(i + 1)})
	}
	for i, h := range []uint64{1 << 40, 1<<40 + 1} {
		pairs = append(pairs, pair{h: h, seq: int64(blockEntries + 1 + i)})
	}
	run := mustWriteRun(t, pairs)
	defer run.close()
	buf := make([]byte, blockBytes)
	for _, mapped := range []bool{true, false} {
		if !mapped {
			run.unmapFile()
		}
		for _, h := range []uint64{math.MaxUint64 - 5, math.MaxUint64, 1<<40 + 2} {
			if got, err := run.find(h, nil, buf); err != nil || len(got) != 0 {
				t.Errorf("mapped %v, hash %d: %v, %v; want nothing", mapped, h, got, err)
			}
		}
		if got, err := run.find(1<<40+1, nil, buf); err != nil || !slices.Equal(got, []int64{blockEntries + 2}) {
			t.Errorf("mapped %v: the last hash: %v, %v", mapped, got, err)
		}
	}
}

// TestIDRun_DamagedAfterARead: a block damaged after it was read (a disk
// failing while the server runs) is found damaged at its next read, mapped
// or not, never searched as if whole: a hash it lost would be taken for a
// new id, and stored twice.
func TestIDRun_DamagedAfterARead(t *testing.T) {
	for _, mapped := range []bool{true, false} {
		var pairs []pair
		for i := uint64(1); i <= 1000; i++ {
			pairs = append(pairs, pair{h: i << 40, seq: int64(i)})
		}
		run := mustWriteRun(t, pairs)
		if !mapped {
			run.unmapFile()
		}
		buf := make([]byte, blockBytes)
		if got, err := run.find(1<<40, nil, buf); err != nil || !slices.Equal(got, []int64{1}) {
			t.Fatalf("mapped %v, before the damage: %v, %v", mapped, got, err)
		}
		f, err := os.OpenFile(run.path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{0x5a}, 5); err != nil { // the first pair's hash
			t.Fatal(err)
		}
		f.Close()
		if got, err := run.find(1<<40, nil, buf); !errors.Is(err, errDamaged) {
			t.Errorf("mapped %v, after the damage: %v, %v; want errDamaged", mapped, got, err)
		}
		run.close()
	}
}

// mustWriteRun writes pairs as a run of a new folder, covering seqs 1 to
// the highest of them.
func mustWriteRun(t *testing.T, pairs []pair) *idRun {
	t.Helper()
	var to int64
	for _, p := range pairs {
		to = max(to, p.seq)
	}
	r, err := writeIDRun(t.TempDir(), 1, to, pairs)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
