package sqlite

import (
	"errors"
	"os"
	"testing"
)

// TestIDRun_CutUnderTheMap: a run's file cut while it is mapped (by hand,
// or by a failing disk) is reported damaged on the next read of a block
// past the cut, never a crash of the process.
func TestIDRun_CutUnderTheMap(t *testing.T) {
	w, err := newIDRunWriter(t.TempDir(), 1, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 100_000; i++ {
		if err := w.add(pair{h: i * 2654435761, seq: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := w.finish()
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	buf := make([]byte, blockBytes)
	if _, err := r.readBlock(len(r.first)-1, buf); err != nil {
		t.Fatalf("the last block before the cut: %v", err)
	}
	if err := os.Truncate(r.path, blockBytes); err != nil {
		t.Fatal(err)
	}
	_, err = r.readBlock(len(r.first)-1, buf)
	if r.data != nil && !errors.Is(err, errDamaged) {
		t.Fatalf("a block past the cut: %v, want errDamaged", err)
	}
	if r.data == nil && err == nil {
		t.Fatal("a block past the cut read without an error")
	}
}
