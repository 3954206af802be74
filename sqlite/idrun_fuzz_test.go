package sqlite

import (
	"encoding/binary"
	"testing"
)

// FuzzIDRunMeta decodes arbitrary bytes as the meta of a run: a damaged
// meta is refused or, if it decodes, looked up without a panic. (At start
// a meta is only decoded once its checksum matched; this is what the
// checksum stands in front of.)
func FuzzIDRunMeta(f *testing.F) {
	dir := f.TempDir()
	var pairs []pair
	for i := 0; i < 600; i++ {
		pairs = append(pairs, pair{uint64(i) * 0x9e3779b97f4a7c15 >> 1, int64(i + 1)})
	}
	r, err := writeIDRun(dir, 1, 600, pairs)
	if err != nil {
		f.Fatal(err)
	}
	defer r.close()
	f.Add(encodeMeta(r.parts, r.first, r.sums), int64(600))
	f.Add([]byte{}, int64(0))
	f.Add(binary.LittleEndian.AppendUint64(nil, 1), int64(1))
	f.Fuzz(func(t *testing.T, meta []byte, count int64) {
		if count < 0 || count > 1<<20 {
			return
		}
		d := &idRun{count: count}
		if err := d.decodeMeta(meta); err != nil {
			return
		}
		for _, h := range []uint64{0, 1, 1 << 63, 1<<64 - 1, 0x9e3779b97f4a7c15} {
			d.mayHold(h)
		}
	})
}
